//! Cancellation and `spool::unblock` / `spool::unblock_abandon`: `unblock`
//! is shielded (its closure runs to the end and its value is returned; the
//! cancellation comes at the next cancellation point), the closure runs
//! inside the caller's cancel scopes so it can cooperate, and
//! `unblock_abandon` returns at once on cancellation, leaving its closure
//! to finish on its own.
//!
//! The tests in the `rt_test!` block run in three configurations (see
//! `tests/common`); on the plain OS thread `unblock` runs its closure
//! inline, while `unblock_abandon` still uses the pool.

use crate::common;

use std::io::Read;
use std::panic::{catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{is_child, run_child};
use spool::cancel::{checkpoint, current_deadline, is_cancelled, CancelScope, Cancelled};
use spool::os::unix::net::UnixStream;
use spool::time::timeout;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(60);
/// The timeout put around calls that would wait long.
const SHORT: Duration = Duration::from_millis(30);
/// How long a closure waits for an event before declaring it missing.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Cancels `scope` from a plain OS thread after `delay`.
fn cancel_later(scope: &CancelScope, delay: Duration) -> std::thread::JoinHandle<()> {
    let scope = scope.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        scope.cancel();
    })
}

/// Sends on its channel when dropped.
struct DropSignal(mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Polls `is_cancelled` until it says yes; false after [`GIVE_UP`].
fn wait_for_cancellation() -> bool {
    let start = Instant::now();
    while !is_cancelled() {
        if start.elapsed() > GIVE_UP {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

rt_test! {
    fn unblock_returns_its_value_and_the_cancellation_comes_next() {
        let mut got = None;
        let start = Instant::now();
        let result = timeout(SHORT, || {
            got = Some(spool::unblock(|| {
                std::thread::sleep(Duration::from_millis(200));
                7
            }));
            checkpoint();
        });
        assert!(result.is_err(), "the deadline passed during the call");
        assert_eq!(got, Some(7), "the value of the finished call is kept");
        assert!(start.elapsed() >= Duration::from_millis(200), "returned before f");
    }

    fn unblock_in_a_cancelled_scope_does_not_start() {
        let scope = CancelScope::new();
        scope.cancel();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        assert!(scope.run(|| spool::unblock(move || flag.store(true, Ordering::Relaxed))).is_none());
        assert!(!ran.load(Ordering::Relaxed));
    }

    fn code_inside_unblock_sees_the_callers_cancellation() {
        let scope = CancelScope::new();
        let canceller = cancel_later(&scope, Duration::from_millis(20));
        // The closure returns normally, so `run` returns its value.
        assert_eq!(scope.run(|| spool::unblock(wait_for_cancellation)), Some(true));
        canceller.join().unwrap();
    }

    fn a_checkpoint_inside_unblock_unwinds_the_caller_as_the_cancellation() {
        let scope = CancelScope::new();
        let canceller = cancel_later(&scope, Duration::from_millis(20));
        let result = scope.run(|| {
            spool::unblock(|| {
                let start = Instant::now();
                while start.elapsed() < GIVE_UP {
                    checkpoint();
                    std::thread::sleep(Duration::from_millis(1));
                }
                "never cancelled"
            })
        });
        assert_eq!(result, None);
        canceller.join().unwrap();
    }

    fn the_callers_deadline_reaches_code_inside_unblock() {
        let deadline = timeout(GIVE_UP, || spool::unblock(current_deadline)).unwrap();
        assert!(deadline.is_some());
    }

    fn spool_io_inside_unblock_ends_with_the_callers_timeout() {
        let (a, _b) = UnixStream::pair().unwrap();
        let result = timeout(SHORT, || spool::unblock(move || (&a).read(&mut [0; 4])));
        assert!(result.is_err());
    }

    fn a_pool_thread_leaves_its_callers_scopes_behind() {
        for _ in 0..10 {
            let scope = CancelScope::new();
            let handle = scope.clone();
            let seen = scope.run(|| {
                spool::unblock(move || {
                    handle.cancel();
                    is_cancelled()
                })
            });
            assert_eq!(seen, Some(true));
            assert!(!spool::unblock(is_cancelled), "a scope outlived its call");
        }
    }

    fn unblock_abandon_returns_at_once_and_lets_f_finish() {
        let (release, gate) = mpsc::channel::<()>();
        let (dropped_tx, dropped) = mpsc::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let result = {
            let finished = Arc::clone(&finished);
            timeout(SHORT, || {
                spool::unblock_abandon(move || {
                    let _ = gate.recv_timeout(GIVE_UP); // a call that ignores cancellation
                    finished.store(true, Ordering::SeqCst);
                    DropSignal(dropped_tx)
                })
            })
        };
        assert!(result.is_err());
        assert!(!finished.load(Ordering::SeqCst), "returned only after f");
        release.send(()).unwrap();
        // f finishes on its own, and its result is dropped.
        dropped.recv_timeout(GIVE_UP).unwrap();
        assert!(finished.load(Ordering::SeqCst));
    }

    fn unblock_abandon_ends_a_sleep_at_the_deadline() {
        let result = timeout(SHORT, || {
            spool::unblock_abandon(|| std::thread::sleep(Duration::from_secs(10)))
        });
        assert!(result.is_err());
    }

    fn unblock_abandon_hands_a_result_to_exactly_one_side() {
        for _ in 0..100 {
            let scope = CancelScope::new();
            let handle = scope.clone();
            let (dropped_tx, dropped) = mpsc::channel();
            // f cancels the caller's scope and returns: a caller that sees
            // the result first returns it (also when it notices the
            // cancellation after the result arrived); one that sees the
            // cancellation first leaves, and the pool drops the result.
            let value = scope.run(|| {
                spool::unblock_abandon(move || {
                    handle.cancel();
                    DropSignal(dropped_tx)
                })
            });
            if let Some(result) = value {
                assert!(dropped.try_recv().is_err(), "dropped while the caller held it");
                drop(result);
            }
            dropped.recv_timeout(GIVE_UP).expect("the result is dropped");
            assert!(dropped.recv().is_err(), "dropped twice");
        }
    }

    fn unblock_abandon_returns_values_and_passes_panics_on() {
        assert_eq!(spool::unblock_abandon(|| 6 * 7), 42);
        // Raised without the panic hook, so nothing is printed.
        let caught = catch_unwind(|| {
            spool::unblock_abandon(|| -> u8 { resume_unwind(Box::new("in the pool")) })
        });
        let payload = caught.unwrap_err();
        assert_eq!(common::payload_text(&*payload), "in the pool");
        assert!(Cancelled::from_payload(&payload).is_none());
    }

    fn a_checkpoint_inside_unblock_abandon_unwinds_the_caller() {
        let scope = CancelScope::new();
        let handle = scope.clone();
        let result = scope.run(|| {
            spool::unblock_abandon(move || {
                handle.cancel();
                checkpoint();
                "not cancelled"
            })
        });
        assert_eq!(result, None);
    }
}

/// Nothing is printed for a cancellation that unwinds a closure on a pool
/// thread: it comes back to the caller as the `Cancelled` unwind.
#[test]
fn a_cancellation_inside_unblock_prints_nothing() {
    let child = run_child("child_cancellation_inside_unblock", &[]);
    assert!(child.status.success(), "child failed: {child:?}");
    assert!(child.stdout.contains("cancelled as expected"), "{child:?}");
    assert!(!child.stderr.contains("panicked"), "{}", child.stderr);
}

#[test]
fn child_cancellation_inside_unblock() {
    if !is_child("child_cancellation_inside_unblock") {
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let result = rt.run(|| {
        let scope = CancelScope::new();
        let canceller = cancel_later(&scope, Duration::from_millis(10));
        let result = scope.run(|| {
            spool::unblock(|| loop {
                checkpoint();
                std::thread::sleep(Duration::from_millis(1));
            })
        });
        canceller.join().unwrap();
        result
    });
    assert!(result.is_none());
    println!("cancelled as expected");
}
