//! Every channel wait is a cancellation point: a receive, a send that
//! must wait, a `select`, `ready`, a `oneshot` or `mpsc` receive ends when
//! its thread is cancelled (a `timeout` around it, `JoinHandle::cancel`, a
//! `CancelScope` cancelled from another thread), and withdraws whatever it
//! registered first, so nothing is lost or duplicated:
//! * a cancelled wait leaves no registration behind: a later message goes
//!   to another receiver or stays in the channel, a later receive does not
//!   pair with a cancelled send, and a cancelled send hands nothing over;
//! * a message handed over before the cancel was seen is returned (rule R2
//!   of `spool::cancel`), and the races between a hand-over and a cancel
//!   deliver every message exactly once (many iterations; more in release
//!   builds, which CI also runs);
//! * while a thread is already unwinding (rule R1), a channel call in a
//!   destructor fails fast with its error (a send hands its message back)
//!   instead of unwinding again or hanging.
//!
//! Like `tests/suite/channels.rs`, every test in the `rt_test!` block runs on a
//! one-worker runtime, a two-worker runtime and a plain OS thread.

use crate::common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spool::cancel::{CancelScope, Cancelled};
use spool::sync::mpmc::{
    self, after, bounded, never, select, unbounded, Receiver, RecvError, RecvTimeoutError, Select,
    SendError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use spool::sync::{mpsc, oneshot};
use spool::thread;
use spool::time::timeout;
use spool::Runtime;

/// Per-test watchdog limit: a wait that a cancel cannot end hangs instead.
const LIMIT: Duration = Duration::from_secs(60);

/// The timeout put around a call that would block for good.
const SHORT: Duration = Duration::from_millis(10);

/// Longer than any test: the call's own timeout, which must not be what
/// ends it.
const HOUR: Duration = Duration::from_secs(3600);

/// Release builds run the races ten times as often.
const RACES: u64 = if cfg!(debug_assertions) { 200 } else { 2_000 };

/// A capacity above the lock-free ring's largest, so the channel keeps its
/// messages in the locked queue.
const LARGE: usize = 70_000;

/// One channel of each kind of storage: an unbounded and a large bounded
/// locked queue, a lock-free ring, and a rendezvous channel.
fn flavours<T>() -> Vec<(&'static str, Sender<T>, Receiver<T>)> {
    let (s0, r0) = unbounded();
    let (s1, r1) = bounded(LARGE);
    let (s2, r2) = bounded(4);
    let (s3, r3) = bounded(0);
    vec![
        ("unbounded", s0, r0),
        ("large bounded", s1, r1),
        ("ring", s2, r2),
        ("rendezvous", s3, r3),
    ]
}

/// Fills a bounded channel (`cap` messages of `fill`) so that a send waits.
fn fill<T: Clone>(s: &Sender<T>, cap: usize, fill: T) {
    for _ in 0..cap {
        assert!(s.try_send(fill.clone()).is_ok(), "room while filling");
    }
}

/// Blocks until a sender waits on `r`'s channel (or a message is there),
/// without taking anything.
fn until_sendable(r: &Receiver<u64>) {
    let mut sel = Select::new();
    sel.recv(r);
    sel.ready();
}

/// Runs its closure when dropped: a destructor that runs while its thread
/// unwinds from a cancellation.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

rt_test! {
    fn a_timeout_ends_a_blocked_receive() {
        for (what, s, r) in flavours::<u64>() {
            assert!(timeout(SHORT, || r.recv()).is_err(), "{what}: recv");
            assert!(timeout(SHORT, || r.recv_timeout(HOUR)).is_err(), "{what}: recv_timeout");
            assert!(timeout(SHORT, || r.iter().next()).is_err(), "{what}: iter");
            // Nothing is left registered: a rendezvous send finds nobody
            // waiting, a buffered one stays for the next receive.
            if what == "rendezvous" {
                assert_eq!(s.try_send(1), Err(TrySendError::Full(1)), "{what}");
            } else {
                s.send(1).unwrap();
                assert_eq!(r.try_recv(), Ok(1), "{what}");
            }
            // And the channel still works for a receive that waits.
            let sender = thread::spawn(move || s.send(2).unwrap());
            assert_eq!(r.recv(), Ok(2), "{what}");
            sender.join().unwrap();
        }
        let (_tx, rx) = mpsc::channel::<u64>();
        assert!(timeout(SHORT, || rx.recv()).is_err(), "mpsc recv");
        assert!(timeout(SHORT, || rx.recv_timeout(HOUR)).is_err(), "mpsc recv_timeout");
        assert!(timeout(SHORT, || rx.iter().next()).is_err(), "mpsc iter");
        let (_tx, rx) = mpsc::sync_channel::<u64>(0);
        assert!(timeout(SHORT, || rx.recv()).is_err(), "sync_channel recv");
        let (_tx, rx) = oneshot::channel::<u64>();
        assert!(timeout(SHORT, || rx.recv()).is_err(), "oneshot recv");
        assert!(timeout(SHORT, || rx.recv_timeout(HOUR)).is_err(), "oneshot recv_timeout");
        assert!(timeout(SHORT, || never::<u64>().recv()).is_err(), "never");
        assert!(timeout(SHORT, || after(HOUR).recv()).is_err(), "after");
    }

    fn a_cancelled_blocked_send_hands_nothing_over() {
        for (what, s, r) in flavours::<Option<Arc<()>>>() {
            let Some(cap) = s.capacity() else {
                continue; // an unbounded send never waits
            };
            let witness = Arc::new(());
            fill(&s, cap, None);
            let sent = timeout(SHORT, || s.send(Some(witness.clone())));
            assert!(sent.is_err(), "{what}: send");
            let sent = timeout(SHORT, || s.send_timeout(Some(witness.clone()), HOUR));
            assert!(sent.is_err(), "{what}: send_timeout");
            // Dropped with the unwind, not left in the channel.
            assert_eq!(Arc::strong_count(&witness), 1, "{what}: a cancelled message survived");
            assert_eq!(r.len(), cap, "{what}");
            for _ in 0..cap {
                assert_eq!(r.try_recv(), Ok(None), "{what}");
            }
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty), "{what}");
        }
        let (tx, rx) = mpsc::sync_channel::<u64>(0);
        assert!(timeout(SHORT, || tx.send(1)).is_err(), "sync_channel(0) send");
        assert_eq!(rx.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));
        let (tx, rx) = mpsc::sync_channel::<u64>(1);
        tx.send(1).unwrap();
        assert!(timeout(SHORT, || tx.send(2)).is_err(), "sync_channel(1) send");
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]);
    }

    fn join_handle_cancel_ends_a_blocked_rendezvous_send() {
        let (s, r) = bounded::<u64>(0);
        let sender = {
            let s = s.clone();
            thread::spawn(move || s.send(7))
        };
        until_sendable(&r);
        sender.cancel();
        let payload = sender.join().unwrap_err();
        assert!(Cancelled::from_payload(&payload).is_some(), "ended by its cancellation");
        // The sender withdrew without handing its message over (`s` keeps
        // the channel connected, so a left-over entry would pair).
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        drop(s);
    }

    fn a_scope_cancelled_from_another_thread_ends_a_receive() {
        let (_s, r) = bounded::<u64>(0);
        let scope = CancelScope::new();
        let canceller = {
            let scope = scope.clone();
            std::thread::spawn(move || {
                std::thread::sleep(SHORT);
                scope.cancel();
            })
        };
        assert_eq!(scope.run(|| r.recv()), None);
        canceller.join().unwrap();
    }

    fn a_cancelled_select_withdraws_every_registration() {
        for how in ["select", "select_timeout", "select!", "ready", "ready_timeout"] {
            let (s1, r1) = unbounded::<u64>();
            let (s2, r2) = bounded::<u64>(0);
            let (s3, r3) = bounded::<u64>(1);
            let (s4, r4) = bounded::<u64>(0);
            s3.send(0).unwrap(); // full: the select's send on it waits
            let result = timeout(SHORT, || {
                let mut sel = Select::new();
                sel.recv(&r1);
                sel.recv(&r2);
                sel.send(&s3);
                sel.send(&s4);
                match how {
                    "select" => {
                        let oper = sel.select();
                        panic!("{how}: chose operation {}", oper.index());
                    }
                    "select_timeout" => {
                        let oper = sel.select_timeout(HOUR);
                        panic!("{how}: returned {}", oper.is_ok());
                    }
                    "select!" => select! {
                        recv(r1) -> m => panic!("{how}: recv {m:?}"),
                        recv(r2) -> m => panic!("{how}: recv {m:?}"),
                        send(s3, 3) -> m => panic!("{how}: send {m:?}"),
                        send(s4, 4) -> m => panic!("{how}: send {m:?}"),
                    },
                    "ready" => panic!("{how}: {}", sel.ready()),
                    _ => panic!("{how}: {:?}", sel.ready_timeout(HOUR)),
                }
            });
            assert!(result.is_err(), "{how}");
            // No receive of the select is left: a rendezvous send finds
            // nobody, and a waiting receiver gets the next message.
            assert_eq!(s2.try_send(1), Err(TrySendError::Full(1)), "{how}");
            let other = thread::spawn(move || r2.recv());
            s2.send(2).unwrap();
            assert_eq!(other.join().unwrap(), Ok(2), "{how}");
            s1.send(5).unwrap();
            assert_eq!(r1.try_recv(), Ok(5), "{how}: the message stays for others");
            // No send of the select is left either.
            assert_eq!(r4.try_recv(), Err(TryRecvError::Empty), "{how}");
            assert_eq!(r3.recv(), Ok(0), "{how}");
            assert_eq!(s3.try_send(3), Ok(()), "{how}: the freed slot stays free");
            assert_eq!(r3.try_recv(), Ok(3), "{how}");
            drop((s4, r3));
        }
    }

    fn a_message_racing_a_receivers_cancel_arrives_exactly_once() {
        for (what, s, r) in flavours::<u64>() {
            for i in 0..RACES {
                if what == "rendezvous" {
                    race_rendezvous_recv(&s, &r, i);
                } else {
                    race_buffered_recv(&s, &r, i);
                }
            }
        }
    }

    fn a_rendezvous_send_racing_its_cancel_arrives_exactly_once() {
        let (s, r) = bounded::<u64>(0);
        for i in 0..RACES {
            race_rendezvous_send(&s, &r, i);
        }
    }

    fn a_channel_call_in_a_destructor_during_a_cancellation_fails_fast() {
        let (full, _full_rx) = bounded::<u64>(1);
        full.send(0).unwrap();
        let (rendezvous, _rendezvous_rx) = bounded::<u64>(0);
        let (_idle_tx, idle) = unbounded::<u64>();
        let (sync_tx, _sync_rx) = mpsc::sync_channel::<u64>(0);
        let (_one_tx, one_rx) = oneshot::channel::<u64>();
        let log = RefCell::new(Vec::new());
        let result = timeout(SHORT, || {
            let _cleanup = OnDrop(|| {
                let mut log = log.borrow_mut();
                log.push(format!("{:?}", full.send(1)));
                log.push(format!("{:?}", full.send_timeout(2, HOUR)));
                log.push(format!("{:?}", rendezvous.send(3)));
                log.push(format!("{:?}", sync_tx.send(4)));
                log.push(format!("{:?}", idle.recv()));
                log.push(format!("{:?}", idle.recv_timeout(HOUR)));
                log.push(format!("{:?}", one_rx.recv()));
                log.push(format!("{:?}", never::<u64>().recv()));
                let mut sel = Select::new();
                sel.recv(&idle);
                log.push(format!("{:?}", sel.select_timeout(HOUR).map(|o| o.index())));
                log.push(format!("{:?}", sel.ready_timeout(HOUR)));
            });
            idle.recv()
        });
        assert!(result.is_err());
        let expected = [
            format!("{:?}", Err::<(), _>(SendError(1))),
            format!("{:?}", Err::<(), _>(SendTimeoutError::Timeout(2))),
            format!("{:?}", Err::<(), _>(SendError(3))),
            format!("{:?}", Err::<(), _>(std::sync::mpsc::SendError(4))),
            format!("{:?}", Err::<u64, _>(RecvError)),
            format!("{:?}", Err::<u64, _>(RecvTimeoutError::Timeout)),
            format!("{:?}", Err::<u64, _>(RecvError)),
            format!("{:?}", Err::<u64, _>(RecvError)),
            format!("{:?}", Err::<usize, _>(mpmc::SelectTimeoutError)),
            format!("{:?}", Err::<usize, _>(mpmc::ReadyTimeoutError)),
        ];
        assert_eq!(log.into_inner(), expected);
    }

    fn a_select_without_deadline_in_a_destructor_during_a_cancellation_blocks_as_usual() {
        // It has no error to return, so it waits (masked) for its message.
        let (s, r) = unbounded::<u64>();
        let got = RefCell::new(None);
        let result = timeout(SHORT, || {
            let _cleanup = OnDrop(|| {
                let sender = {
                    let s = s.clone();
                    thread::spawn(move || {
                        spool::time::sleep(SHORT);
                        s.send(9).unwrap();
                    })
                };
                let mut sel = Select::new();
                sel.recv(&r);
                *got.borrow_mut() = Some(sel.select().recv(&r));
                let _ = sender.join();
            });
            never::<()>().recv()
        });
        assert!(result.is_err());
        assert_eq!(got.into_inner(), Some(Ok(9)));
    }
}

/// How a race's canceller and its counterpart take turns: yields to let
/// the other side go first (or not), so the hand-over lands before, during
/// and after the cancel.
fn stagger(i: u64) {
    for _ in 0..(i.wrapping_mul(7) % 4) {
        thread::yield_now();
    }
}

/// Busy-waits a little, differently for each `i`: with two workers, the
/// other side's reaction to a cancel is then caught at different points.
fn spin(i: u64) {
    for _ in 0..(i.wrapping_mul(13) % 200) {
        std::hint::spin_loop();
    }
}

/// A receive on a buffered channel, cancelled while `i` is sent: either
/// the receive returns it, or it stays in the channel.
fn race_buffered_recv(s: &Sender<u64>, r: &Receiver<u64>, i: u64) {
    let scope = CancelScope::new();
    let receiver = {
        let (r, scope) = (r.clone(), scope.clone());
        let by_select = i % 3 == 1;
        thread::spawn(move || {
            scope.run(|| {
                if by_select {
                    select! { recv(r) -> m => m }
                } else {
                    r.recv()
                }
            })
        })
    };
    stagger(i);
    if i % 2 == 1 {
        scope.cancel();
        spin(i);
        s.send(i).unwrap();
    } else {
        s.send(i).unwrap();
        spin(i);
        scope.cancel();
    }
    let got = receiver.join().unwrap();
    let left = r.try_recv().ok();
    match (got, left) {
        (Some(Ok(m)), None) | (None, Some(m)) => assert_eq!(m, i, "another message"),
        other => panic!("message {i}: received and left in the channel: {other:?}"),
    }
}

/// A receive on a rendezvous channel, cancelled while a sender offers `i`
/// with `try_send` until the receiver has returned: the offer succeeds
/// exactly when the receiver returns the message.
fn race_rendezvous_recv(s: &Sender<u64>, r: &Receiver<u64>, i: u64) {
    let scope = CancelScope::new();
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (r, scope, done) = (r.clone(), scope.clone(), done.clone());
        let by_select = i % 3 == 1;
        thread::spawn(move || {
            let got = scope.run(|| {
                if by_select {
                    select! { recv(r) -> m => m }
                } else {
                    r.recv()
                }
            });
            done.store(true, Ordering::Release);
            got
        })
    };
    let cancel_at = i % 5;
    let mut attempts = 0;
    let sent = loop {
        if attempts == cancel_at {
            scope.cancel();
            spin(i);
        }
        attempts += 1;
        match s.try_send(i) {
            Ok(()) => break true,
            Err(TrySendError::Full(_)) if done.load(Ordering::Acquire) => break false,
            Err(TrySendError::Full(_)) => thread::yield_now(),
            Err(TrySendError::Disconnected(_)) => unreachable!("the receiver is alive"),
        }
    };
    scope.cancel();
    let got = receiver.join().unwrap();
    match (sent, got) {
        (true, Some(Ok(m))) => assert_eq!(m, i, "another message"),
        (false, None) => {}
        other => panic!("message {i}: (sent, received) = {other:?}"),
    }
}

/// A rendezvous send of `i`, cancelled while a receiver polls with
/// `try_recv` until the sender has returned: the receiver gets the message
/// exactly when the send reports success.
fn race_rendezvous_send(s: &Sender<u64>, r: &Receiver<u64>, i: u64) {
    let scope = CancelScope::new();
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (s, scope, done) = (s.clone(), scope.clone(), done.clone());
        let by_select = i % 3 == 1;
        thread::spawn(move || {
            let sent = scope.run(|| {
                if by_select {
                    select! { send(s, i) -> res => res }
                } else {
                    s.send(i)
                }
            });
            done.store(true, Ordering::Release);
            sent
        })
    };
    let cancel_at = i % 5;
    let mut attempts = 0;
    let got = loop {
        if attempts == cancel_at {
            scope.cancel();
            spin(i);
        }
        attempts += 1;
        // Read `done` before trying: a sender that finished before the
        // try has either handed the message over or withdrawn.
        let finished = done.load(Ordering::Acquire);
        match r.try_recv() {
            Ok(m) => break Some(m),
            Err(TryRecvError::Empty) if finished => break None,
            Err(TryRecvError::Empty) => thread::yield_now(),
            Err(TryRecvError::Disconnected) => unreachable!("the sender is alive"),
        }
    };
    scope.cancel();
    let sent = sender.join().unwrap();
    match (sent, got) {
        (Some(Ok(())), Some(m)) => assert_eq!(m, i, "another message"),
        (None, None) => {}
        other => panic!("message {i}: (sent, received) = {other:?}"),
    }
}

// A loop whose channel calls never have to wait is cancelled too: every
// blocking send and receive is a cancellation point on entry, before it
// does anything, so nothing is taken or handed over by the cancelled call.
mod on_entry {
    use super::*;

    rt_test! {
        fn a_receive_that_would_not_wait_is_still_a_cancellation_point() {
            let (tx, rx) = unbounded::<u32>();
            for i in 0..10 {
                tx.send(i).unwrap();
            }
            let received = std::cell::Cell::new(0);
            let scope = CancelScope::new();
            let canceller = scope.clone();
            let outcome = scope.run(|| {
                // Messages are always there: only the entry check can end this.
                for msg in rx.iter() {
                    received.set(received.get() + 1);
                    if msg == 4 {
                        canceller.cancel();
                    }
                }
            });
            assert_eq!(outcome, None, "the loop ran to the end of the channel");
            assert_eq!(received.get(), 5, "the cancelled receive took a message");
            assert_eq!(rx.try_recv(), Ok(5), "the next message stays in the channel");
        }

        fn a_send_that_would_not_wait_is_still_a_cancellation_point() {
            let (tx, rx) = unbounded::<u32>();
            let scope = CancelScope::new();
            scope.cancel();
            assert_eq!(scope.run(|| tx.send(1)), None);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "a cancelled send handed its message over");
            let (tx2, rx2) = bounded::<u32>(1);
            tx2.send(7).unwrap();
            let sel_scope = CancelScope::new().with_timeout(Duration::ZERO);
            let selected = sel_scope.run(|| {
                let mut sel = Select::new();
                sel.recv(&rx2);
                sel.select().index()
            });
            assert_eq!(selected, None, "a ready select ran in a cancelled scope");
            assert_eq!(rx2.try_recv(), Ok(7), "the cancelled select took the message");
        }
    }
}
