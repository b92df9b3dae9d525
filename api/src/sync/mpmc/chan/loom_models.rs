//! Send/recv handshakes across two threads: every value
//! arrives exactly once, in order, and nobody is left parked (loom
//! reports that as a deadlock). The ring channels' models check the
//! handshake of "Buffered channels": a push or pop that finds no
//! waiter published, against a waiter registering at that moment.
use super::*;
use crate::loom::chan_cancel::{Cancelled, Token};
use crate::sync::mpmc::context::ABORTED;
use crate::sync::mpmc::{bounded, Flavor, Receiver, Select};
use ::loom::sync::atomic::AtomicBool;
use ::loom::thread;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f` on a second thread and returns a way to wait for it that
/// tolerates a late `unpark` from a channel (a selector may unpark a
/// waiter that already saw its selection and moved on, which the
/// engine treats as a spurious wakeup, but loom's `join` does not).
fn spawn(f: impl FnOnce() + 'static) -> impl FnOnce() {
    let done = Arc::new(AtomicBool::new(false));
    let main = thread::current();
    {
        let done = done.clone();
        thread::spawn(move || {
            f();
            done.store(true, Ordering::Release);
            main.unpark();
        });
    }
    move || {
        while !done.load(Ordering::Acquire) {
            thread::park();
        }
    }
}

/// `loom::model` with at most `PREEMPTIONS` preemptions per execution
/// (tokio's practice for models this size): the ring's spins and the
/// lock make the unbounded space too large to finish, and known bugs of
/// this kind show up within two or three preemptions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = ::loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTIONS);
    builder.check(f);
}

const PREEMPTIONS: usize = 4;

/// Nothing left behind: the channel is empty and no entry is listed.
fn assert_idle(chan: &Chan<u32>) {
    assert!(matches!(chan.try_recv(), Err(TryRecvError::Empty)));
    let inner = chan.lock();
    assert!(inner.senders.0.is_empty() && inner.receivers.0.is_empty());
}

/// The sender sends `1..=n`, the receiver receives `n` messages; then
/// the channel is empty.
fn deliver(cap: usize, n: u32) {
    model(move || {
        let chan = Arc::new(Chan::new(cap));
        let join = {
            let chan = chan.clone();
            spawn(move || {
                for i in 1..=n {
                    chan.send(i, None).unwrap();
                }
            })
        };
        for i in 1..=n {
            assert_eq!(chan.recv(None).unwrap(), i);
        }
        join();
        assert_idle(&chan);
    });
}

#[test]
fn rendezvous_delivers_once() {
    deliver(0, 1);
}

#[test]
fn rendezvous_disconnect_hands_back_the_blocked_message() {
    // A blocked sender's message waits in its entry; a disconnection
    // must leave that entry for the sender to take the message back.
    model(|| {
        let chan = Arc::new(Chan::new(0));
        let join = {
            let chan = chan.clone();
            spawn(move || {
                let result = chan.send(5u32, None);
                assert!(matches!(result, Err(SendTimeoutError::Disconnected(5))));
            })
        };
        chan.remove_receiver();
        join();
        assert!(chan.lock().senders.0.is_empty());
    });
}

#[test]
fn ring_push_wakes_a_registering_receiver() {
    // The receiver finds the ring empty and registers while the push
    // happens: either the push sees the published waiter, or the
    // receiver's re-check after the fence sees the message.
    deliver(2, 1);
}

#[test]
fn bounded_one_delivers_in_order() {
    // The second send finds the slot full and registers while the
    // receiver's pop frees it: the same handshake the other way.
    deliver(1, 2);
}

#[test]
fn a_select_claim_written_later_wakes_the_receiver() {
    // A select claims the slot (the ring looks empty from it on) and
    // writes it afterwards; or drops its selection, leaving a hole,
    // and sends again: the receiver skips the hole.
    for complete in [true, false] {
        model(move || {
            let chan = Arc::new(Chan::new(2));
            let join = {
                let chan = chan.clone();
                spawn(move || {
                    let slot = chan.select_try_send().expect("room");
                    if complete {
                        assert!(chan.complete_send(slot, 7).is_ok());
                    } else {
                        chan.release_send(slot);
                        chan.send(7, None).unwrap();
                    }
                })
            };
            assert_eq!(chan.recv(None).unwrap(), 7);
            join();
            assert_idle(&chan);
        });
    }
}

/// What `Select::run` does for a select with one send operation on `chan`,
/// up to the selection: the slot its `SelectedOperation` would hold.
fn select_send(chan: &Chan<u32>) -> SendSlot<u32> {
    let cx = Context::current();
    loop {
        if let Some(slot) = chan.select_try_send() {
            return slot;
        }
        cx.reset();
        let state = if chan.register_send(&cx, FIRST_OPERATION) {
            if cx.try_select(ABORTED) {
                ABORTED
            } else {
                cx.state()
            }
        } else {
            cx.wait_until(None, WaitSite::here(WaitReason::Send(0)))
                .expect("no deadline and no cancellation")
        };
        chan.unregister_send(&cx, FIRST_OPERATION);
        if state >= FIRST_OPERATION {
            let packet = cx.take_packet();
            if !packet.is_null() {
                // SAFETY: a receiver of this channel left the packet for
                // our selected send operation; we take it once.
                return unsafe { chan.packet_slot(packet) };
            }
        }
    }
}

#[test]
fn an_abandoned_rendezvous_selection_releases_the_receiver() {
    // A select pairs its send with the receiver — by choosing a blocked
    // receiver, or by being chosen from the wait list by a `try_recv` or
    // `recv` — and then drops its selection ("Abandoned selections"), and
    // sends normally. The receiver's `try_recv` reports `Empty` (or
    // already catches the later message), its `recv` gets the later
    // message, and nobody is left parked.
    model(|| {
        let chan = Arc::new(Chan::new(0));
        let join = {
            let chan = chan.clone();
            spawn(move || {
                let slot = select_send(&chan);
                chan.release_send(slot);
                chan.send(9, None).unwrap();
            })
        };
        match chan.try_recv() {
            Ok(msg) => assert_eq!(msg, 9),
            Err(TryRecvError::Empty) => assert_eq!(chan.recv(None).unwrap(), 9),
            Err(TryRecvError::Disconnected) => panic!("nobody disconnected"),
        }
        join();
        assert_idle(&chan);
    });
}

/// "Waking only a sleeper" (`chan.rs`): a selector decides the
/// waiter's outcome, settles its packet, and unparks it only if it
/// announced its sleep; the waiter re-checks after announcing, for its
/// state and then for its packet. Whatever the interleaving, it returns
/// with the selector's outcome and message; loom reports a waiter left
/// parked by a skipped wake as a deadlock.
#[test]
fn a_selector_wakes_a_waiter_that_announced_its_sleep() {
    model(|| {
        let cx = Context::current(); // a fresh one under loom
        let packet = Packet::empty(None);
        let join = {
            let (cx, packet) = (cx.clone(), packet.clone());
            spawn(move || {
                assert!(cx.try_select(FIRST_OPERATION));
                // SAFETY: our CAS selected the waiter: we alone fill
                // its (empty) packet.
                unsafe { packet.fill(7u32) };
                cx.unpark();
            })
        };
        let outcome = cx.wait_until(None, WaitSite::here(WaitReason::Recv(0)));
        assert_eq!(outcome.ok(), Some(FIRST_OPERATION));
        // SAFETY: we are the packet's waiter, and take it once.
        assert_eq!(unsafe { packet.wait_take(&cx) }, Some(7));
        join();
    });
}

// ---- cancellation (see "Cancellation" at the top of `chan.rs`) ----------
//
// The counterpart that claims the waiter and the canceller are one thread,
// in both orders: loom's `unpark` also wakes a thread blocked on a loom
// mutex (which then fails loom's own lock assertion), so the cancel's wake
// must not come from a third thread at an arbitrary moment. The waiter's
// reaction still interleaves freely with both steps: with the claim
// first, the waiter may see the cancel before it sees that it was
// claimed; with the cancel first, its abort races the claim's CAS.

/// Runs `f` on a second thread; the returned closure waits for it (as
/// `spawn`) and returns its result.
fn spawn_with<R: 'static>(f: impl FnOnce() -> R + 'static) -> impl FnOnce() -> R {
    let result = Arc::new(Mutex::new(None));
    let join = {
        let result = result.clone();
        spawn(move || {
            let value = f();
            *lock(&result) = Some(value);
        })
    };
    move || {
        join();
        let value = lock(&result).take();
        value.expect("the thread stored its result")
    }
}

/// Whether `payload` is the (stand-in) cancellation.
fn is_cancellation(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<Cancelled>()
}

/// The channel behind a receiver.
fn chan_of(r: &Receiver<u32>) -> &Chan<u32> {
    match &r.flavor {
        Flavor::Chan(chan) => chan,
        _ => unreachable!("a channel receiver"),
    }
}

/// Nothing left registered: no wait-list entry, no observer.
fn assert_withdrawn(chan: &Chan<u32>) {
    let inner = chan.lock();
    assert!(inner.senders.0.is_empty() && inner.receivers.0.is_empty());
    assert!(inner.recv_observers.0.is_empty() && inner.send_observers.0.is_empty());
}

/// Runs `claim` and cancels `token`, in the order `cancel_first` says;
/// returns what `claim` returned.
fn claim_and_cancel<R>(cancel_first: bool, token: &Token, claim: impl FnOnce() -> R) -> R {
    if cancel_first {
        token.cancel();
        claim()
    } else {
        let result = claim();
        token.cancel();
        result
    }
}

#[test]
fn a_cancel_racing_a_senders_claim_in_select_loses_nothing() {
    // A select waits to receive on a rendezvous channel while a sender's
    // `try_send` tries to claim it (the CAS `WAITING → operation`) and the
    // select is cancelled (its own CAS `WAITING → ABORTED`). Exactly one
    // CAS wins: the sender's — the select returns the message although it
    // is cancelled (rule R2) — or the select's — it withdraws and unwinds,
    // and the send fails, keeping its message. Either way the message
    // exists exactly once and nothing stays registered.
    for cancel_first in [false, true] {
        model(move || {
            let (s, r) = bounded::<u32>(0);
            let token = Token::arm();
            let peer = {
                // A clone: dropping the peer's sender must not disconnect.
                let (s, token) = (s.clone(), token.clone());
                spawn_with(move || claim_and_cancel(cancel_first, &token, || s.try_send(5)))
            };
            let selected = catch_unwind(AssertUnwindSafe(|| {
                let mut sel = Select::new();
                sel.recv(&r);
                sel.select().recv(&r)
            }));
            let sent = peer();
            match selected {
                Ok(received) => {
                    assert_eq!(received, Ok(5));
                    assert!(sent.is_ok(), "received a message that was never sent");
                }
                Err(payload) => {
                    assert!(is_cancellation(&*payload));
                    assert!(
                        sent.is_err(),
                        "a message sent to a cancelled select was lost"
                    );
                }
            }
            assert_withdrawn(chan_of(&r));
            drop(s);
        });
    }
}

#[test]
fn a_cancel_racing_a_receivers_claim_of_a_blocked_send_loses_nothing() {
    // A rendezvous `send` waits with its message in its entry; a
    // receiver's `try_recv` claims the entry (taking the message) while
    // the sender is cancelled. The send returns `Ok` exactly when the
    // receiver got the message; a cancelled send hands nothing over.
    for cancel_first in [false, true] {
        model(move || {
            let chan = Arc::new(Chan::new(0));
            let token = Token::arm();
            let peer = {
                let (chan, token) = (chan.clone(), token.clone());
                spawn_with(move || claim_and_cancel(cancel_first, &token, || chan.try_recv().ok()))
            };
            let sent = catch_unwind(AssertUnwindSafe(|| chan.send(5u32, None)));
            let received = peer();
            match sent {
                Ok(result) => {
                    assert!(result.is_ok());
                    assert_eq!(received, Some(5));
                }
                Err(payload) => {
                    assert!(is_cancellation(&*payload));
                    assert_eq!(received, None, "a cancelled send was received");
                }
            }
            assert!(chan.lock().senders.0.is_empty());
        });
    }
}

#[test]
fn a_receive_cancelled_while_unwinding_leaves_the_message_in_the_ring() {
    // Rule R1 on a ring channel: a `recv` whose thread is cancelled while
    // unwinding fails with `Timeout` instead of raising. A message pushed
    // meanwhile (the ring's registration handshake racing the cancel) is
    // then either returned or left in the channel, never lost.
    for cancel_first in [false, true] {
        model(move || {
            let chan = Arc::new(Chan::new(1));
            let token = Token::arm_unwinding();
            let peer = {
                let (chan, token) = (chan.clone(), token.clone());
                spawn_with(move || {
                    claim_and_cancel(cancel_first, &token, || chan.try_send(5u32).is_ok())
                })
            };
            let received = chan.recv(None);
            assert!(peer(), "a ring of one with room");
            match received {
                Ok(msg) => {
                    assert_eq!(msg, 5);
                    assert!(matches!(chan.try_recv(), Err(TryRecvError::Empty)));
                }
                Err(RecvTimeoutError::Timeout) => assert_eq!(chan.try_recv().ok(), Some(5)),
                Err(RecvTimeoutError::Disconnected) => panic!("nobody disconnected"),
            }
            assert_idle(&chan);
        });
    }
}

#[test]
fn ring_disconnect_hands_back_a_blocked_message() {
    // A `send` blocked on a full ring keeps its message in its entry (see
    // "Hand-off to blocked senders"); the last receiver leaving must give
    // it back, not drop it with the entry or leave the sender parked.
    model(|| {
        let chan = Arc::new(Chan::new(1));
        chan.try_send(1u32).unwrap();
        let join = {
            let chan = chan.clone();
            spawn(move || {
                let result = chan.send(5u32, None);
                assert!(matches!(result, Err(SendTimeoutError::Disconnected(5))));
            })
        };
        chan.remove_receiver();
        join();
        assert!(chan.lock().senders.0.is_empty());
    });
}

#[test]
fn a_cancel_racing_a_hand_off_to_a_blocked_ring_send_loses_nothing() {
    // A `send` waits on a full ring of one; a receiver's `try_recv` frees
    // the slot and moves the blocked message into the ring (the context
    // CAS `WAITING → operation`) while the sender is cancelled (its CAS
    // `WAITING → ABORTED`). The send returns `Ok` exactly when its
    // message is in the ring; a cancelled send leaves nothing behind (a
    // claimed slot it lost becomes a hole, which receivers skip).
    for cancel_first in [false, true] {
        model(move || {
            let chan = Arc::new(Chan::new(1));
            chan.try_send(1u32).unwrap();
            let token = Token::arm();
            let peer = {
                let (chan, token) = (chan.clone(), token.clone());
                spawn_with(move || claim_and_cancel(cancel_first, &token, || chan.try_recv().ok()))
            };
            let sent = catch_unwind(AssertUnwindSafe(|| chan.send(5u32, None)));
            assert_eq!(peer(), Some(1));
            match sent {
                Ok(result) => {
                    assert!(result.is_ok());
                    assert_eq!(chan.try_recv().ok(), Some(5), "a sent message is missing");
                }
                Err(payload) => {
                    assert!(is_cancellation(&*payload));
                }
            }
            assert_idle(&chan);
        });
    }
}
