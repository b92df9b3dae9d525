//! Send/recv handshakes across two threads (STYLE.md §7): every value
//! arrives exactly once, in order, and nobody is left parked (loom
//! reports that as a deadlock). The ring channels' models check the
//! handshake of "Buffered channels": a push or pop that finds no
//! waiter published, against a waiter registering at that moment.
use super::*;
use ::loom::sync::atomic::AtomicBool;
use ::loom::thread;

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
            cx.wait_until(None)
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
