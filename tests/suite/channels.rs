//! Behaviour of `spool::sync::{mpmc, mpsc, oneshot}`, public API only.
//!
//! Like `tests/suite/thread.rs`, every test in the `rt_test!` block runs in three
//! configurations: `one_worker` (the body is a green thread of a fresh
//! one-worker runtime, so its green counterparts share its OS thread),
//! `two_workers` (wakeups cross OS threads) and `os_thread` (the body runs
//! on the test's plain OS thread; its green counterparts run on the global
//! runtime). Tests that also want a plain OS thread as a counterpart spawn
//! one with `std::thread`.
//!
//! The `go_*` tests rewrite scenarios of Go's channel tests,
//! `src/runtime/chan_test.go` (TestChan, TestNonblockRecvRace,
//! TestSelfSelect, TestSelectFairness, TestPseudoRandomSend,
//! TestMultiConsumer), `test/chan/select3.go` (blocking and non-blocking
//! cases), `test/chan/sieve1.go` (a chain of filters) and
//! `test/chan/doubleselect.go` (no value delivered twice through selects),
//! in Rust against spool's channels; the code is our own.
//!
//! Each test runs under a watchdog that aborts the process, naming the
//! test, if it hangs: a lost wakeup fails instead of hanging `cargo test`.

use crate::common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::sync::mpmc::{
    self, after, bounded, never, select, tick, unbounded, RecvError, RecvTimeoutError, Select,
    SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use spool::sync::{mpsc, oneshot};
use spool::thread;
use spool::Runtime;

/// Per-test watchdog limit.
const LIMIT: Duration = Duration::from_secs(60);
/// Upper bound for "returns soon".
const GENEROUS: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

rt_test! {
    fn basic_state_queries() {
        let (s, r) = bounded::<i32>(2);
        assert_eq!((s.capacity(), r.capacity()), (Some(2), Some(2)));
        assert!(s.is_empty() && !s.is_full());
        s.send(1).unwrap();
        s.send(2).unwrap();
        assert_eq!((s.len(), r.len()), (2, 2));
        assert!(s.is_full() && r.is_full());
        assert_eq!(s.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(r.recv(), Ok(1));
        assert_eq!(r.try_recv(), Ok(2));
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty));

        let (s0, r0) = bounded::<i32>(0);
        assert_eq!(s0.capacity(), Some(0));
        assert!(s0.is_full() && r0.is_empty());
        assert_eq!(s0.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(r0.try_recv(), Err(TryRecvError::Empty));

        let (su, ru) = unbounded::<i32>();
        assert_eq!(su.capacity(), None);
        for i in 0..1000 {
            su.try_send(i).unwrap();
        }
        assert!(!su.is_full());
        assert_eq!(ru.len(), 1000);
        assert!(s.same_channel(&s.clone()) && !s.same_channel(&s0));
        assert!(r.same_channel(&r.clone()) && !r.same_channel(&r0));
    }

    fn rendezvous_send_waits_for_receiver() {
        let (s, r) = bounded(0);
        let sent = Arc::new(AtomicBool::new(false));
        let flag = sent.clone();
        let t = thread::spawn(move || {
            s.send(7).unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        thread::sleep(ms(20));
        assert!(!sent.load(Ordering::SeqCst), "a rendezvous send completed without a receiver");
        assert_eq!(r.recv(), Ok(7));
        t.join().unwrap();
        assert!(sent.load(Ordering::SeqCst));
    }

    fn rendezvous_with_os_thread_both_ways() {
        let (s, r) = bounded(0);
        let (back_s, back_r) = bounded(0);
        let os = std::thread::spawn(move || {
            for i in 0..200 {
                let v: i32 = r.recv().unwrap();
                back_s.send(v + i).unwrap();
            }
        });
        for i in 0..200 {
            s.send(i).unwrap();
            assert_eq!(back_r.recv(), Ok(2 * i));
        }
        os.join().unwrap();
    }

    fn values_come_back_in_errors() {
        // Receiver gone: every kind of send hands the value back.
        let (s, r) = bounded::<String>(1);
        drop(r);
        assert_eq!(s.send("a".into()), Err(SendError("a".to_string())));
        assert_eq!(s.try_send("b".into()), Err(TrySendError::Disconnected("b".to_string())));
        assert_eq!(
            s.send_timeout("c".into(), ms(1)),
            Err(SendTimeoutError::Disconnected("c".to_string()))
        );
        assert_eq!(s.send("d".into()).unwrap_err().into_inner(), "d");

        // A blocked rendezvous sender gets its value back when the last
        // receiver is dropped.
        let (s, r) = bounded::<String>(0);
        let t = thread::spawn(move || s.send("kept".to_string()));
        thread::sleep(ms(10));
        drop(r);
        assert_eq!(t.join().unwrap(), Err(SendError("kept".to_string())));

        // Same for a blocked buffered sender, across an OS thread.
        let (s, r) = bounded::<u32>(1);
        s.send(1).unwrap();
        let t = std::thread::spawn(move || s.send(2));
        thread::sleep(ms(10));
        drop(r);
        assert_eq!(t.join().unwrap(), Err(SendError(2)));

        // A timed-out send hands the value back too.
        let (s, _r) = bounded::<u32>(0);
        assert_eq!(s.send_timeout(5, ms(5)), Err(SendTimeoutError::Timeout(5)));
    }

    fn blocked_senders_keep_their_turn() {
        // A send that blocked on a full channel goes before any send that
        // comes later, as in Go: the receive that frees a slot moves the
        // oldest blocked message into it before it returns, so a later
        // `try_send` finds the channel full and blocked senders are never
        // overtaken (or starved) by fresh ones.
        let (s, r) = bounded::<&str>(1);
        s.send("first").unwrap();
        let mut senders = Vec::new();
        for msg in ["a", "b"] {
            let s = s.clone();
            senders.push(thread::spawn(move || s.send(msg).unwrap()));
            // Let it block on the full channel: "a" before "b".
            thread::sleep(ms(50));
        }
        assert_eq!(r.recv(), Ok("first"));
        assert_eq!(s.try_send("late"), Err(TrySendError::Full("late")), "a later send overtook a blocked one");
        assert_eq!(r.recv(), Ok("a"));
        assert_eq!(s.try_send("late"), Err(TrySendError::Full("late")), "a later send overtook a blocked one");
        assert_eq!(r.recv(), Ok("b"));
        s.send("late").unwrap();
        assert_eq!(r.recv(), Ok("late"));
        for sender in senders {
            sender.join().unwrap();
        }
    }

    fn receivers_drain_before_disconnect() {
        for cap in [1, 5, usize::MAX] {
            let (s, r) = if cap == usize::MAX { unbounded() } else { bounded(cap) };
            let n = cap.min(5);
            for i in 0..n {
                s.send(i).unwrap();
            }
            drop(s);
            assert_eq!(r.iter().collect::<Vec<_>>(), (0..n).collect::<Vec<_>>());
            assert_eq!(r.recv(), Err(RecvError));
            assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected));
            assert_eq!(r.recv_timeout(ms(1)), Err(RecvTimeoutError::Disconnected));
        }
    }

    fn blocked_receiver_wakes_on_disconnect() {
        let (s, r) = bounded::<i32>(0);
        let t = thread::spawn(move || r.recv());
        let (s2, r2) = unbounded::<i32>();
        let os = std::thread::spawn(move || r2.recv());
        thread::sleep(ms(10));
        drop(s);
        drop(s2);
        assert_eq!(t.join().unwrap(), Err(RecvError));
        assert_eq!(os.join().unwrap(), Err(RecvError));
    }

    fn iter_ends_on_disconnect() {
        let (s, r) = bounded(3);
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let s = s.clone();
                thread::spawn(move || (0..100).for_each(|i| s.send(p * 1000 + i).unwrap()))
            })
            .collect();
        drop(s);
        let mut got: Vec<i32> = r.iter().collect();
        got.sort_unstable();
        let mut want: Vec<i32> = (0..3).flat_map(|p| (0..100).map(move |i| p * 1000 + i)).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        producers.into_iter().for_each(|p| p.join().unwrap());
        // `&Receiver` and `Receiver` are iterable too.
        let (s, r) = unbounded();
        s.send(1).unwrap();
        drop(s);
        assert_eq!((&r).into_iter().count(), 1);
        assert_eq!(r.into_iter().count(), 0);
    }

    fn zero_and_max_timeouts() {
        let (s, r) = bounded::<i32>(1);
        assert_eq!(r.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Timeout));
        s.send_timeout(1, Duration::ZERO).unwrap();
        assert_eq!(s.send_timeout(2, Duration::ZERO), Err(SendTimeoutError::Timeout(2)));
        assert_eq!(r.recv_timeout(Duration::ZERO), Ok(1));
        // `Duration::MAX` waits as long as it takes.
        let t = thread::spawn(move || {
            thread::sleep(ms(5));
            s.send(3).unwrap();
            s.send_timeout(4, Duration::MAX).unwrap();
            s.send_timeout(5, Duration::MAX).unwrap();
        });
        assert_eq!(r.recv_timeout(Duration::MAX), Ok(3));
        thread::sleep(ms(5));
        assert_eq!(r.recv_timeout(Duration::MAX), Ok(4));
        assert_eq!(r.recv_deadline(Instant::now() + GENEROUS), Ok(5));
        t.join().unwrap();
        // Timeouts take about as long as asked.
        let (_s, r) = bounded::<i32>(0);
        let start = Instant::now();
        assert_eq!(r.recv_timeout(ms(20)), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= ms(20) && start.elapsed() < GENEROUS);
    }

    fn many_clones_mpmc() {
        let (s, r) = bounded(4);
        let total = Arc::new(AtomicUsize::new(0));
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let r = r.clone();
                let total = total.clone();
                thread::spawn(move || {
                    for v in r.iter() {
                        total.fetch_add(v, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        drop(r);
        let producers: Vec<_> = (0..3)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || (1..=1000).for_each(|i| s.send(i).unwrap()))
            })
            .collect();
        drop(s);
        producers.into_iter().for_each(|p| p.join().unwrap());
        consumers.into_iter().for_each(|c| c.join().unwrap());
        assert_eq!(total.load(Ordering::Relaxed), 3 * 500 * 1001);
    }

    fn select_macro_all_arm_kinds() {
        let (s1, r1) = unbounded::<i32>();
        let (s2, r2) = bounded::<i32>(1);
        s1.send(1).unwrap();
        select! {
            recv(r1) -> v => assert_eq!(v, Ok(1)),
            recv(r2) -> _ => panic!("r2 is empty"),
        }
        select! {
            send(s2, 2) -> res => res.unwrap(),
            recv(r1) -> _ => panic!("r1 is empty"),
        }
        let got = select! {
            recv(r2) -> v => { v.unwrap() * 10 }
            default => 0,
        };
        assert_eq!(got, 20);
        let got = select! {
            recv(r1) -> _ => 1,
            default => 2
        };
        assert_eq!(got, 2);
        let start = Instant::now();
        select! {
            recv(r1) -> _ => panic!("nothing was sent"),
            default(ms(10)) => assert!(start.elapsed() >= ms(10)),
        }
        // The message of a send arm is evaluated only if that arm runs.
        let evaluated = std::cell::Cell::new(false);
        s2.send(0).unwrap(); // full now
        select! {
            send(s2, { evaluated.set(true); 1 }) -> _ => panic!("full"),
            default => {}
        }
        assert!(!evaluated.get());
        // A temporary receiver works as an arm.
        select! {
            recv(after(ms(1))) -> t => assert!(t.is_ok()),
        }
    }

    fn select_with_only_disconnected_channels_returns() {
        let (s, r) = unbounded::<i32>();
        drop(s);
        let (s2, r2) = bounded::<i32>(0);
        drop(r2);
        let start = Instant::now();
        for _ in 0..10 {
            select! {
                recv(r) -> v => assert_eq!(v, Err(RecvError)),
                send(s2, 5) -> res => assert_eq!(res, Err(SendError(5))),
            }
        }
        assert!(start.elapsed() < GENEROUS);
        // A blocked select wakes when its channel disconnects.
        let (s3, r3) = bounded::<i32>(0);
        let t = thread::spawn(move || {
            select! {
                recv(r3) -> v => v,
            }
        });
        thread::sleep(ms(10));
        drop(s3);
        assert_eq!(t.join().unwrap(), Err(RecvError));
    }

    fn select_fairness() {
        // Three always-ready arms: each must win a reasonable share.
        let (s1, r1) = unbounded::<()>();
        let (s2, r2) = unbounded::<()>();
        let (s3, r3) = bounded::<()>(10_001);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            s1.send(()).unwrap();
            s2.send(()).unwrap();
            select! {
                recv(r1) -> v => { v.unwrap(); counts[0] += 1 }
                recv(r2) -> v => { v.unwrap(); counts[1] += 1 }
                send(s3, ()) -> v => { v.unwrap(); counts[2] += 1 }
            }
            let _ = r1.try_recv();
            let _ = r2.try_recv();
        }
        drop(r3);
        for (arm, &n) in counts.iter().enumerate() {
            assert!(n > 2_500, "arm {arm} chosen {n} times of 10000: {counts:?}");
        }
    }

    fn select_rendezvous_both_directions() {
        // A select sending and a select receiving on the same rendezvous
        // channels meet each other (as well as blocking counterparts).
        let (s, r) = bounded::<u32>(0);
        let (stop_s, stop_r) = bounded::<()>(0);
        let t = thread::spawn(move || {
            let mut sum = 0;
            loop {
                select! {
                    recv(r) -> v => sum += v.unwrap(),
                    recv(stop_r) -> _ => return sum,
                }
            }
        });
        for i in 0..500 {
            select! {
                send(s, i) -> res => res.unwrap(),
            }
        }
        for i in 500..1000 {
            s.send(i).unwrap();
        }
        stop_s.send(()).unwrap();
        assert_eq!(t.join().unwrap(), (0..1000).sum::<u32>());

        // A select's send meets a plain OS thread's blocking recv.
        let (s, r) = bounded::<u32>(0);
        let os = std::thread::spawn(move || r.iter().sum::<u32>());
        for i in 0..200 {
            select! {
                send(s, i) -> res => res.unwrap(),
                default(GENEROUS) => panic!("no receiver"),
            }
        }
        drop(s);
        assert_eq!(os.join().unwrap(), (0..200).sum::<u32>());
    }

    fn select_struct_api() {
        let (s1, r1) = unbounded::<i32>();
        let (s2, r2) = bounded::<i32>(0);
        let mut sel = Select::new();
        let i1 = sel.recv(&r1);
        let i2 = sel.send(&s2);
        assert!(sel.try_select().is_err());
        assert!(sel.select_timeout(ms(5)).is_err());
        s1.send(9).unwrap();
        let oper = sel.select();
        assert_eq!(oper.index(), i1);
        assert_eq!(oper.recv(&r1), Ok(9));
        let t = thread::spawn(move || r2.recv());
        let oper = sel.select();
        assert_eq!(oper.index(), i2);
        oper.send(&s2, 4).unwrap();
        assert_eq!(t.join().unwrap(), Ok(4));
        sel.remove(i2);
        s1.send(1).unwrap();
        assert_eq!(sel.select_deadline(Instant::now() + GENEROUS).unwrap().recv(&r1), Ok(1));
    }

    fn timers_after_tick_never() {
        let start = Instant::now();
        let a = after(ms(10));
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
        let fired = a.recv().unwrap();
        assert!(fired >= start + ms(10) && start.elapsed() < GENEROUS);
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty), "after() delivers once");
        assert_eq!(a.recv_timeout(ms(5)), Err(RecvTimeoutError::Timeout));

        let t = tick(ms(5));
        let mut last = start;
        for _ in 0..3 {
            let at = t.recv().unwrap();
            assert!(at >= last);
            last = at;
        }
        let n = never::<i32>();
        assert_eq!(n.recv_timeout(ms(5)), Err(RecvTimeoutError::Timeout));
        assert_eq!(n.try_recv(), Err(TryRecvError::Empty));

        // Timers in a select: the earlier one wins; never() never does.
        let (_s, idle) = unbounded::<i32>();
        let start = Instant::now();
        select! {
            recv(idle) -> _ => panic!("idle"),
            recv(never::<i32>()) -> _ => panic!("never"),
            recv(after(ms(10))) -> _ => {}
            recv(after(ms(2_000))) -> _ => panic!("the later timer fired first"),
        }
        let e = start.elapsed();
        assert!(e >= ms(10) && e < GENEROUS, "{e:?}");
        let ticker = tick(ms(3));
        let mut ticks = 0;
        while ticks < 3 {
            select! {
                recv(ticker) -> _ => ticks += 1,
                recv(idle) -> _ => panic!("idle"),
            }
        }
    }

    fn mpsc_mirrors_std() {
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        thread::spawn(move || tx2.send(1).unwrap()).join().unwrap();
        tx.send(2).unwrap();
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
        assert_eq!(rx.recv_timeout(ms(1)), Err(mpsc::RecvTimeoutError::Timeout));
        drop(tx);
        assert_eq!(rx.recv(), Err(mpsc::RecvError));
        assert_eq!(rx.recv_timeout(Duration::MAX), Err(mpsc::RecvTimeoutError::Disconnected));

        let (tx, rx) = mpsc::sync_channel(0);
        assert_eq!(tx.try_send(1), Err(mpsc::TrySendError::Full(1)));
        let t = std::thread::spawn(move || rx.iter().collect::<Vec<i32>>());
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        drop(tx);
        assert_eq!(t.join().unwrap(), (0..10).collect::<Vec<_>>());

        let (tx, rx) = mpsc::sync_channel::<String>(1);
        drop(rx);
        // std's own error types, with the value inside.
        let err: std::sync::mpsc::SendError<String> = tx.send("v".into()).unwrap_err();
        assert_eq!(err.0, "v");
        assert_eq!(tx.try_send("w".into()), Err(mpsc::TrySendError::Disconnected("w".into())));
    }

    fn oneshot_channel() {
        let (tx, rx) = oneshot::channel();
        let t = thread::spawn(move || tx.send(String::from("once")).unwrap());
        assert_eq!(rx.recv().as_deref(), Ok("once"));
        t.join().unwrap();
        assert_eq!(rx.recv(), Err(oneshot::RecvError));

        let (tx, rx) = oneshot::channel::<u8>();
        assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
        assert_eq!(rx.recv_timeout(ms(1)), Err(oneshot::RecvTimeoutError::Timeout));
        drop(tx);
        assert_eq!(rx.recv_timeout(ms(1)), Err(oneshot::RecvTimeoutError::Disconnected));

        let (tx, rx) = oneshot::channel();
        drop(rx);
        assert_eq!(tx.send(vec![1]), Err(oneshot::SendError(vec![1])));
    }

    fn error_types_match_crossbeam() {
        assert_eq!(SendError(1).to_string(), "sending on a disconnected channel");
        assert_eq!(format!("{:?}", SendError(1)), "SendError(..)");
        assert_eq!(TrySendError::Full(1).to_string(), "sending on a full channel");
        assert_eq!(format!("{:?}", TrySendError::Disconnected(1)), "Disconnected(..)");
        assert_eq!(SendTimeoutError::Timeout(1).to_string(), "timed out waiting on send operation");
        assert_eq!(RecvError.to_string(), "receiving on an empty and disconnected channel");
        assert_eq!(TryRecvError::Empty.to_string(), "receiving on an empty channel");
        assert_eq!(RecvTimeoutError::Disconnected.to_string(), "channel is empty and disconnected");
        assert_eq!(mpmc::TrySelectError.to_string(), "all operations in select would block");
        assert_eq!(mpmc::SelectTimeoutError.to_string(), "timed out waiting on select");
        assert_eq!(TrySendError::from(SendError(3)), TrySendError::Disconnected(3));
        assert_eq!(TryRecvError::from(RecvError), TryRecvError::Disconnected);
        assert!(SendTimeoutError::Timeout(()).is_timeout());
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(SendError(1));
        assert_eq!(boxed.to_string(), "sending on a disconnected channel");
    }

    fn select_ready_reports_without_performing() {
        let (s1, r1) = unbounded::<i32>();
        let (s0, r0) = bounded::<i32>(0);
        let mut sel = Select::new();
        let i1 = sel.recv(&r1);
        let i0 = sel.send(&s0);
        assert_eq!(sel.try_ready(), Err(mpmc::TryReadyError));
        assert_eq!(sel.ready_timeout(ms(5)), Err(mpmc::ReadyTimeoutError));
        // A message makes the receive ready; `ready` leaves it queued.
        s1.send(1).unwrap();
        assert_eq!(sel.ready(), i1);
        assert_eq!(r1.len(), 1);
        assert_eq!(r1.try_recv(), Ok(1));
        // A blocked rendezvous receiver (green, then a plain OS thread)
        // makes the send ready, and wakes a blocked `ready`.
        let t = thread::spawn(move || {
            thread::sleep(ms(5));
            r0.recv()
        });
        assert_eq!(sel.ready(), i0);
        s0.send(7).unwrap();
        assert_eq!(t.join().unwrap(), Ok(7));
        // A disconnected channel is ready.
        drop(s1);
        let mut sel = Select::new();
        let i = sel.recv(&r1);
        assert_eq!(sel.ready_deadline(Instant::now() + GENEROUS), Ok(i));
    }

    fn select_clone_and_owned_selected_operation() {
        let (s, r) = unbounded::<i32>();
        let mut sel = Select::new();
        let i = sel.recv(&r);
        let mut copy = sel.clone();
        s.send(1).unwrap();
        s.send(2).unwrap();
        // The selected operation does not borrow the `Select`.
        let oper = sel.select();
        sel.remove(i);
        assert_eq!(oper.recv(&r), Ok(1));
        assert_eq!(copy.select().recv(&r), Ok(2));
    }

    // ----- Go: test/chan/sieve1.go -----
    fn go_sieve_chain_of_filters() {
        // Each prime gets a green thread filtering its multiples out of the
        // stream, connected by rendezvous channels.
        let (s, mut r) = bounded::<u32>(0);
        thread::spawn(move || {
            for i in 2.. {
                if s.send(i).is_err() {
                    return; // the sieve is done
                }
            }
        });
        let mut primes = Vec::new();
        for _ in 0..25 {
            let prime = r.recv().unwrap();
            primes.push(prime);
            let (next_s, next_r) = bounded::<u32>(0);
            let input = std::mem::replace(&mut r, next_r);
            thread::spawn(move || {
                for v in input.iter() {
                    if v % prime != 0 && next_s.send(v).is_err() {
                        return;
                    }
                }
            });
        }
        drop(r); // disconnects the chain, stage by stage
        assert_eq!(
            primes,
            [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]
        );
    }

    // ----- Go: test/chan/doubleselect.go -----
    fn go_double_select_delivers_once() {
        // One sender selects over four rendezvous channels; receivers on
        // each (green and OS threads, some through selects) must never see
        // a value twice.
        const N: u32 = 2_000;
        let chans: Vec<_> = (0..4).map(|_| bounded::<u32>(0)).collect();
        let (out_s, out_r) = unbounded::<u32>();
        let mut receivers = Vec::new();
        for (k, (_, r)) in chans.iter().enumerate() {
            let (r, out_s) = (r.clone(), out_s.clone());
            let work = move || {
                for v in r.iter() {
                    out_s.send(v).unwrap();
                }
            };
            if k == 3 {
                let h = std::thread::spawn(work);
                receivers.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce()>);
            } else {
                let h = thread::spawn(work);
                receivers.push(Box::new(move || h.join().unwrap()));
            }
        }
        drop(out_s);
        let senders: Vec<_> = chans.into_iter().map(|(s, _)| s).collect();
        for i in 0..N {
            select! {
                send(senders[0], i) -> res => res.unwrap(),
                send(senders[1], i) -> res => res.unwrap(),
                send(senders[2], i) -> res => res.unwrap(),
                send(senders[3], i) -> res => res.unwrap(),
            }
        }
        drop(senders);
        receivers.into_iter().for_each(|join| join());
        let mut seen = HashSet::new();
        for v in out_r.iter() {
            assert!(seen.insert(v), "value {v} delivered twice");
        }
        assert_eq!(seen.len(), N as usize);
    }

    // ----- Go: src/runtime/chan_test.go, TestChan -----
    fn go_chan_semantics_by_capacity() {
        for cap in 0..12usize {
            // A receive from an empty channel blocks until a send.
            let (s, r) = bounded::<usize>(cap);
            let got = Arc::new(AtomicBool::new(false));
            let flag = got.clone();
            let t = thread::spawn(move || {
                let v = r.recv();
                flag.store(true, Ordering::SeqCst);
                (v, r)
            });
            thread::sleep(ms(2));
            assert!(!got.load(Ordering::SeqCst), "cap {cap}: recv from empty channel");
            s.send(0).unwrap();
            let (v, r) = t.join().unwrap();
            assert_eq!(v, Ok(0));

            // A send to a full channel blocks until a receive.
            for i in 0..cap {
                s.send(i).unwrap();
            }
            let sent = Arc::new(AtomicBool::new(false));
            let flag = sent.clone();
            let s2 = s.clone();
            let t = thread::spawn(move || {
                s2.send(0).unwrap();
                flag.store(true, Ordering::SeqCst);
            });
            thread::sleep(ms(2));
            assert!(!sent.load(Ordering::SeqCst), "cap {cap}: send to full channel");
            r.recv().unwrap();
            t.join().unwrap();
            while r.try_recv().is_ok() {}

            // Closing: queued values first, then the zero value with !ok.
            for i in 0..cap {
                s.send(i).unwrap();
            }
            drop(s);
            for i in 0..cap {
                assert_eq!(r.recv(), Ok(i), "cap {cap}");
            }
            for _ in 0..3 {
                assert_eq!(r.recv(), Err(RecvError));
            }

            // FIFO through one producer, and len/cap.
            let (s, r) = bounded(cap);
            let t = thread::spawn(move || (0..100).for_each(|i| s.send(i).unwrap()));
            for i in 0..100 {
                assert_eq!(r.recv(), Ok(i), "cap {cap}");
            }
            t.join().unwrap();
            let (s, r) = bounded::<usize>(cap);
            for i in 0..cap {
                s.send(i).unwrap();
            }
            assert_eq!((r.len(), r.capacity()), (cap, Some(cap)));
        }
    }

    // ----- Go: TestNonblockRecvRace -----
    fn go_nonblock_recv_race() {
        for _ in 0..200 {
            let (s, r) = bounded(1);
            s.send(1).unwrap();
            let t = thread::spawn(move || {
                select! {
                    recv(r) -> _ => {}
                    default => panic!("chan is not ready"),
                }
            });
            drop(s);
            t.join().unwrap();
        }
    }

    // ----- Go: TestSelfSelect -----
    fn go_self_select() {
        // Two threads each select over a send and a receive on the same
        // channel; a select must never pair with itself.
        for cap in [0, 1] {
            let (s, r) = bounded::<usize>(cap);
            let workers: Vec<_> = (0..2)
                .map(|p| {
                    let (s, r) = (s.clone(), r.clone());
                    thread::spawn(move || {
                        for i in 0..300 {
                            if p == 0 || i % 2 == 0 {
                                select! {
                                    send(s, p) -> res => res.unwrap(),
                                    recv(r) -> v => {
                                        let v = v.unwrap();
                                        assert!(cap != 0 || v != p, "self receive");
                                    }
                                }
                            } else {
                                select! {
                                    recv(r) -> v => {
                                        let v = v.unwrap();
                                        assert!(cap != 0 || v != p, "self receive");
                                    }
                                    send(s, p) -> res => res.unwrap(),
                                }
                            }
                        }
                    })
                })
                .collect();
            // With cap 1 a select may end with a value left over; drain it
            // in the background so a last send cannot block forever.
            let drain = {
                let r = r.clone();
                thread::spawn(move || while r.recv_timeout(ms(200)).is_ok() {})
            };
            workers.into_iter().for_each(|w| w.join().unwrap());
            drop((s, r));
            drain.join().unwrap();
        }
    }

    // ----- Go: TestPseudoRandomSend -----
    fn go_pseudo_random_send() {
        let n = 100;
        for cap in [0, n] {
            let (s, r) = bounded::<u8>(cap);
            let t = thread::spawn(move || (0..n).map(|_| r.recv().unwrap()).collect::<Vec<_>>());
            for _ in 0..n {
                select! {
                    send(s, 0) -> res => res.unwrap(),
                    send(s, 1) -> res => res.unwrap(),
                }
            }
            let got = t.join().unwrap();
            let ones = got.iter().filter(|&&v| v == 1).count();
            assert!(ones >= n / 10 && ones <= n - n / 10, "cap {cap}: {ones} ones of {n}");
        }
    }

    // ----- Go: TestMultiConsumer -----
    fn go_multi_consumer() {
        const N: usize = 2000;
        let (s, r) = bounded::<usize>(0);
        let (done_s, done_r) = bounded::<(usize, usize)>(4);
        for _ in 0..4 {
            let (r, done_s) = (r.clone(), done_s.clone());
            thread::spawn(move || {
                let (mut count, mut sum) = (0, 0);
                for v in r.iter() {
                    count += 1;
                    sum += v;
                }
                done_s.send((count, sum)).unwrap();
            });
        }
        drop((r, done_s));
        for i in 0..N {
            s.send(i).unwrap();
        }
        drop(s);
        let (count, sum) = done_r.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!((count, sum), (N, N * (N - 1) / 2));
    }

    // ----- Go: test/chan/select3.go -----
    fn go_select3_blocking_and_nonblocking() {
        // A select on a nil-like (never) channel and an empty one blocks...
        let (_s, empty) = unbounded::<i32>();
        let start = Instant::now();
        let res = Select::new()
            .select_timeout(ms(0))
            .map(|_| ());
        assert!(res.is_err(), "an empty select times out");
        let nv = never::<i32>();
        let mut sel = Select::new();
        sel.recv(&empty);
        sel.recv(&nv);
        assert!(sel.select_timeout(ms(10)).is_err());
        assert!(start.elapsed() >= ms(10));
        // ...and one on a closed channel never blocks.
        let (s, closed) = bounded::<i32>(0);
        drop(s);
        for _ in 0..10 {
            select! {
                recv(closed) -> v => assert!(v.is_err()),
                recv(empty) -> _ => panic!("empty"),
            }
        }
        // A buffered channel with space never blocks a send select.
        let (s, _r) = bounded::<i32>(10);
        for i in 0..10 {
            select! {
                send(s, i) -> res => res.unwrap(),
                default => panic!("space was available"),
            }
        }
    }
}

/// Exactly-once delivery of many messages between 4 producers and 4
/// consumers, half green threads on two workers and half plain OS threads,
/// over each channel kind. Messages per kind: 1,000,000 in release builds,
/// 250,000 in debug builds (to keep the debug suite fast).
#[test]
fn stress_exactly_once_across_green_and_os_threads() {
    let _watchdog = common::Watchdog::new("stress_exactly_once_across_green_and_os_threads", LIMIT);
    let total: usize = if cfg!(debug_assertions) {
        250_000
    } else {
        1_000_000
    };
    let rt = Arc::new(Runtime::builder().workers(2).build().unwrap());
    for cap in [Some(0), Some(1), Some(64), None] {
        let (s, r) = match cap {
            Some(cap) => bounded::<usize>(cap),
            None => unbounded::<usize>(),
        };
        let per_producer = total / 4;
        let mut producers = Vec::new();
        let mut consumers = Vec::new();
        for p in 0..4 {
            let s = s.clone();
            let work = move || {
                for i in 0..per_producer {
                    s.send(p * per_producer + i).unwrap();
                }
            };
            if p % 2 == 0 {
                let h = rt.spawn(work);
                producers.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce()>);
            } else {
                let h = std::thread::spawn(work);
                producers.push(Box::new(move || h.join().unwrap()));
            }
        }
        for c in 0..4 {
            let r = r.clone();
            let work = move || r.iter().collect::<Vec<usize>>();
            if c % 2 == 0 {
                let h = rt.spawn(work);
                consumers
                    .push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() -> Vec<usize>>);
            } else {
                let h = std::thread::spawn(work);
                consumers.push(Box::new(move || h.join().unwrap()));
            }
        }
        drop((s, r));
        producers.into_iter().for_each(|join| join());
        let mut seen = vec![false; total];
        let mut count = 0;
        for join in consumers {
            for v in join() {
                assert!(!seen[v], "{cap:?}: message {v} received twice");
                seen[v] = true;
                count += 1;
            }
        }
        assert_eq!(count, total, "{cap:?}: messages lost");
    }
}

/// Many selects and blocking operations racing on shared rendezvous and
/// buffered channels: every message is received exactly once.
#[test]
fn stress_select_exactly_once() {
    let _watchdog = common::Watchdog::new("stress_select_exactly_once", LIMIT);
    let rt = Runtime::builder().workers(2).build().unwrap();
    let n: usize = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let (s0, r0) = bounded::<usize>(0);
    let (s1, r1) = bounded::<usize>(1);
    let mut handles = Vec::new();
    for p in 0..2 {
        let (s0, s1) = (s0.clone(), s1.clone());
        handles.push(rt.spawn(move || {
            for i in (p..n).step_by(2) {
                select! {
                    send(s0, i) -> res => res.unwrap(),
                    send(s1, i) -> res => res.unwrap(),
                }
            }
            Vec::<usize>::new()
        }));
    }
    drop((s0, s1));
    let mut consumers = Vec::new();
    for c in 0..3 {
        let (r0, r1) = (r0.clone(), r1.clone());
        let work = move || {
            let mut got = Vec::new();
            let (mut open0, mut open1) = (true, true);
            while open0 || open1 {
                if c == 0 {
                    // A blocking receiver on one channel only.
                    match r0.recv() {
                        Ok(v) => got.push(v),
                        Err(_) => open0 = false,
                    }
                    open1 = false;
                    continue;
                }
                select! {
                    recv(if open0 { r0.clone() } else { never() }) -> v => match v {
                        Ok(v) => got.push(v),
                        Err(_) => open0 = false,
                    },
                    recv(if open1 { r1.clone() } else { never() }) -> v => match v {
                        Ok(v) => got.push(v),
                        Err(_) => open1 = false,
                    },
                }
            }
            got
        };
        if c == 2 {
            let h = std::thread::spawn(work);
            consumers.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() -> Vec<usize>>);
        } else {
            let h = rt.spawn(work);
            consumers.push(Box::new(move || h.join().unwrap()));
        }
    }
    drop((r0, r1));
    for h in handles {
        h.join().unwrap();
    }
    let mut seen = HashSet::new();
    for join in consumers {
        for v in join() {
            assert!(seen.insert(v), "message {v} received twice");
        }
    }
    assert_eq!(seen.len(), n, "messages lost");
}

#[test]
fn select_biased_prefers_the_first_ready_arm() {
    let _watchdog = common::Watchdog::new("select_biased_prefers_the_first_ready_arm", LIMIT);
    let (s1, r1) = unbounded::<i32>();
    let (s2, r2) = unbounded::<i32>();
    for _ in 0..100 {
        s1.send(1).unwrap();
        s2.send(2).unwrap();
        mpmc::select_biased! {
            recv(r1) -> v => assert_eq!(v, Ok(1)),
            recv(r2) -> _ => panic!("the first ready arm must win"),
        }
        assert_eq!(r2.recv(), Ok(2));
    }
    let got = mpmc::select_biased! {
        recv(r1) -> _ => 1,
        default => 0,
    };
    assert_eq!(got, 0);
}

/// The channel types can cross threads like crossbeam's and std's.
#[test]
fn channel_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<mpmc::Sender<String>>();
    send_sync::<mpmc::Receiver<String>>();
    send_sync::<mpsc::Sender<String>>();
    send_sync::<mpsc::SyncSender<String>>();
    send::<mpsc::Receiver<String>>();
    send::<oneshot::Sender<String>>();
    send::<oneshot::Receiver<String>>();
}
