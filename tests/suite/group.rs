//! Task groups (`spool::group`) as users see them: the first failure
//! cancels every sibling wherever it is blocked, and the body too; results
//! and errors; borrowing; nesting; the group's own cancellation and
//! deadline, and a timeout around it; scale. The builder's limit and the
//! helpers (`all`, `race`, `start`) are in `group/helpers.rs`; panics,
//! supervisor groups and `thread::scope` in `group/panics.rs`.
//!
//! Every test runs in the three configurations of `rt_test!` (green on one
//! worker, green on two workers, on the test's plain OS thread). Waits
//! that only a cancellation can end are an hour long, so a cancellation
//! that does not arrive hangs and the watchdog names the test. Outcomes
//! are asserted, never durations.
//!
//! Some tests panic on purpose; a panic hook installed before any runtime
//! starts keeps those quiet (see `quiet_panics`).

use crate::common;

use std::error::Error as _;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use common::payload_text;
use spool::cancel::{self, CancelReason, Cancelled, ScopeId};
use spool::group::{Builder, GroupError};
use spool::net::{TcpListener, TcpStream};
use spool::sync::{mpmc, mpsc};
use spool::thread;
use spool::time::{timeout, Elapsed};
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(120);

/// A wait that only a cancellation ends.
const LONG: Duration = Duration::from_secs(3600);

/// A deadline that passes while the group is blocked.
const SHORT: Duration = Duration::from_millis(20);

/// How long to let threads that began a wait block before acting (the
/// tests stay correct if they did not block yet; they then exercise less).
const SETTLE: Duration = Duration::from_millis(20);

// A group's error crosses threads (returned from a child of an outer
// group), and so does a child's join error.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<GroupError<io::Error>>();
    send_sync::<spool::group::JoinError>();
};

/// A panic payload that is neither `&str` nor `String`.
#[derive(Debug, PartialEq)]
struct Marker(u32);

/// `rt_test!` under the name the group test files use. The panics they
/// cause on purpose stay quiet in a passing run like every test's: see
/// `common`'s "Panic messages".
macro_rules! group_tests {
    ($($tt:tt)*) => {
        rt_test! { $($tt)* }
    };
}

// After the macro they use.
#[path = "group/helpers.rs"]
mod helpers;
#[path = "group/panics.rs"]
mod panics;

/// The waits of `until_cancelled`: how many began, and the cancellations
/// that ended them.
#[derive(Default)]
struct Seen {
    entered: AtomicUsize,
    cancellations: StdMutex<Vec<Cancelled>>,
}

impl Seen {
    /// Runs `wait`, which only a cancellation ends, records that
    /// cancellation and lets it unwind on. Typed as a child's (or body's)
    /// result, which it never returns.
    fn until_cancelled<T, E>(&self, wait: impl FnOnce() -> T) -> Result<(), E> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let payload = match catch_unwind(AssertUnwindSafe(wait)) {
            Ok(_) => panic!("a wait that only a cancellation ends returned"),
            Err(payload) => payload,
        };
        if let Some(cancelled) = Cancelled::from_payload(&payload) {
            self.cancellations.lock().unwrap().push(cancelled.clone());
        }
        resume_unwind(payload)
    }

    /// Waits until `n` waits have begun, and a little more so that they
    /// are blocked: a failure after that finds every sibling blocked.
    fn wait_entered(&self, n: usize) {
        cancel::shield(|| {
            while self.entered.load(Ordering::SeqCst) < n {
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(SETTLE);
        });
    }

    fn reasons(&self) -> Vec<CancelReason> {
        let seen = self.cancellations.lock().unwrap();
        seen.iter().map(|c| c.reason().clone()).collect()
    }

    fn scopes(&self) -> Vec<ScopeId> {
        let seen = self.cancellations.lock().unwrap();
        seen.iter().map(Cancelled::scope).collect()
    }

    /// Asserts that exactly `n` waits began and were cancelled, each with
    /// `reason`.
    #[track_caller]
    fn assert(&self, n: usize, reason: CancelReason) {
        assert_eq!(self.entered.load(Ordering::SeqCst), n, "waits that began");
        assert_eq!(self.reasons(), vec![reason; n]);
    }

    /// Asserts that every wait that began (at least `min`: a deadline may
    /// pass before a child starts, and then it never runs) was cancelled
    /// with `reason`.
    #[track_caller]
    fn assert_every(&self, min: usize, reason: CancelReason) {
        let entered = self.entered.load(Ordering::SeqCst);
        assert!(entered >= min, "only {entered} waits began");
        assert_eq!(self.reasons(), vec![reason; entered]);
    }
}

/// Counts its drops.
struct CountOnDrop<'a>(&'a AtomicUsize);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Parks until cancelled (a park may return spuriously).
fn park_forever() -> ! {
    loop {
        thread::park();
    }
}

/// A `spool::sync::Mutex` locked by a plain OS thread, outside any group,
/// until dropped.
struct HeldLock {
    mutex: Arc<spool::sync::Mutex<()>>,
    release: Option<std::sync::mpsc::Sender<()>>,
    holder: Option<std::thread::JoinHandle<()>>,
}

impl HeldLock {
    fn new() -> HeldLock {
        let mutex = Arc::new(spool::sync::Mutex::new(()));
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let m = mutex.clone();
        let holder = std::thread::spawn(move || {
            let _guard = m.lock().unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        locked.recv().unwrap();
        HeldLock {
            mutex,
            release: Some(release),
            holder: Some(holder),
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.release.take();
        if let Some(holder) = self.holder.take() {
            holder.join().unwrap();
        }
    }
}

group_tests! {
    // -- the first failure cancels everything -----------------------------------

    fn a_child_failure_cancels_siblings_blocked_anywhere_and_the_body() {
        let seen = &Seen::default();
        let (_mpmc_tx, mpmc_rx) = mpmc::unbounded::<u32>();
        let (_mpsc_tx, mpsc_rx) = mpsc::channel::<u32>();
        let (_body_tx, body_rx) = mpsc::channel::<u32>();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lock = HeldLock::new();
        let err = spool::group(|g| {
            g.spawn(|| seen.until_cancelled(|| mpmc_rx.recv()));
            g.spawn(move || seen.until_cancelled(|| mpsc_rx.recv()));
            g.spawn(|| seen.until_cancelled(|| listener.accept()));
            g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
            g.spawn(|| seen.until_cancelled(|| lock.mutex.lock().map(drop)));
            g.spawn_named("failer", || {
                seen.wait_entered(6);
                Err::<(), _>("boom")
            });
            seen.until_cancelled(|| body_rx.recv())
        })
        .unwrap_err();
        assert_eq!(err.len(), 1, "cancelled threads were recorded as failures: {err:?}");
        let first = err.first().expect("the failure");
        assert_eq!(*first.error(), "boom");
        assert_eq!(first.thread_name(), Some("failer"));
        assert!(!first.is_body());
        seen.assert(6, CancelReason::SiblingFailed);
        // The sockets and the lock are usable after the group.
        drop(lock);
        TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(listener.accept().is_ok());
    }

    fn cancelled_siblings_join_as_cancelled_and_the_failed_child_as_failed() {
        let seen = &Seen::default();
        let mut scope = None;
        let err = spool::group(|g| {
            scope = Some(g.cancel_scope().id());
            let sleeper = g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
            let parked = g.spawn(|| seen.until_cancelled(park_forever));
            let failer = g.spawn_named("failer", || {
                seen.wait_entered(2);
                Err::<(), _>("boom")
            });
            // Shielded, so the body sees the join results instead of
            // being cancelled with its siblings.
            cancel::shield(|| {
                for sibling in [sleeper, parked] {
                    let joined = sibling.join().unwrap_err();
                    assert!(joined.is_cancelled(), "{joined}");
                    let cancelled = joined.cancelled().expect("the cancellation");
                    assert_eq!(*cancelled.reason(), CancelReason::SiblingFailed);
                }
                let joined = failer.join().unwrap_err();
                assert!(joined.is_failed(), "{joined}");
                assert_eq!(joined.thread_name(), Some("failer"));
            });
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.into_first(), Some("boom"));
        seen.assert(2, CancelReason::SiblingFailed);
        assert_eq!(seen.scopes(), vec![scope.unwrap(); 2], "cancelled by another scope than the group's");
    }

    fn the_bodys_err_cancels_the_children() {
        let seen = &Seen::default();
        let (_tx, rx) = mpmc::unbounded::<u32>();
        let err = spool::group(|g| {
            g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
            g.spawn(|| seen.until_cancelled(|| rx.recv()));
            seen.wait_entered(2);
            Err::<(), _>("the body failed")
        })
        .unwrap_err();
        assert_eq!(err.len(), 1);
        let first = err.first().unwrap();
        assert_eq!(*first.error(), "the body failed");
        assert!(first.is_body());
        assert_eq!(first.thread_id(), thread::current().id(), "the body runs on the caller");
        seen.assert(2, CancelReason::SiblingFailed);
    }

    fn the_body_blocked_in_a_join_is_cancelled_by_a_childs_failure() {
        let seen = &Seen::default();
        let err = spool::group(|g| {
            let slow = g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
            g.spawn(|| {
                seen.wait_entered(2);
                Err::<(), _>("boom")
            });
            seen.until_cancelled(|| slow.join())
        })
        .unwrap_err();
        assert_eq!(err.into_first(), Some("boom"));
        seen.assert(2, CancelReason::SiblingFailed);
    }

    fn a_failure_is_an_error_even_when_the_body_returned_ok() {
        let (tx, rx) = mpsc::channel::<()>();
        let r = spool::group(|g| {
            g.spawn(move || {
                rx.recv().unwrap();
                Err::<(), _>("late")
            });
            tx.send(()).unwrap();
            Ok(42)
        });
        let err = r.unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err.into_first(), Some("late"));
    }

    fn a_group_where_nothing_fails_returns_the_bodys_value() {
        let r = spool::group(|g| {
            let a = g.spawn(|| Ok::<_, ()>(20));
            let b = g.spawn(|| {
                thread::sleep(Duration::from_millis(1));
                Ok(22)
            });
            Ok(a.join().unwrap() + b.join().unwrap())
        });
        assert_eq!(r.unwrap(), 42);
    }

    // -- borrowing ----------------------------------------------------------------

    fn children_borrow_a_vec_mutably_and_the_caller_reads_it_after() {
        let mut v: Vec<u64> = (0..64).collect();
        let factor = 3;
        spool::group(|g| {
            for x in v.iter_mut() {
                let factor = &factor;
                g.spawn(move || {
                    if *x % 2 == 0 {
                        thread::yield_now();
                    }
                    *x *= *factor;
                    Ok::<_, ()>(())
                });
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(v, (0..64).map(|i| i * 3).collect::<Vec<u64>>());
    }

    fn children_spawn_siblings_that_borrow_from_the_caller() {
        let mut v = vec![0usize; 64];
        spool::group(|g| {
            for (c, chunk) in v.chunks_mut(8).enumerate() {
                g.spawn(move || {
                    for (i, x) in chunk.iter_mut().enumerate() {
                        g.spawn(move || {
                            *x = c * 8 + i;
                            Ok::<_, ()>(())
                        });
                    }
                    Ok(())
                });
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(v, (0..64).collect::<Vec<_>>());
    }

    fn a_child_spawns_a_sibling_after_the_body_returned_and_the_group_waits_for_it() {
        let ran = AtomicBool::new(false);
        let r = spool::group(|g| {
            g.spawn(|| {
                thread::sleep(SETTLE);
                g.spawn(|| {
                    thread::sleep(SETTLE);
                    ran.store(true, Ordering::SeqCst);
                    Ok(())
                });
                Ok::<_, ()>(())
            });
            Ok("returned")
        });
        assert_eq!(r.unwrap(), "returned");
        assert!(ran.load(Ordering::SeqCst), "the group returned before a late sibling ended");
    }

    // -- nested groups --------------------------------------------------------------

    fn an_inner_failure_handled_by_the_body_does_not_cancel_the_outer_group() {
        let seen = &Seen::default();
        let (tx, rx) = mpsc::channel::<&str>();
        let r = spool::group(|g| {
            let sibling = g.spawn(move || Ok::<_, String>(rx.recv().unwrap()));
            let inner = spool::group(|h| {
                h.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                h.spawn(|| {
                    seen.wait_entered(1);
                    Err::<(), _>("inner failed")
                });
                Ok(())
            });
            assert_eq!(inner.unwrap_err().into_first(), Some("inner failed"));
            assert!(!cancel::is_cancelled(), "the inner failure cancelled the outer body");
            tx.send("the outer group goes on").unwrap();
            Ok(sibling.join().unwrap())
        });
        assert_eq!(r.unwrap(), "the outer group goes on");
        seen.assert(1, CancelReason::SiblingFailed);
    }

    fn an_inner_group_error_returned_by_the_body_fails_the_outer_group() {
        let seen = &Seen::default();
        let err = spool::group(|g| -> Result<(), GroupError<&str>> {
            g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
            spool::group(|h| {
                h.spawn(|| {
                    seen.wait_entered(1);
                    Err::<(), _>("inner failed")
                });
                Ok(())
            })?;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.len(), 1);
        let first = err.first().unwrap();
        assert!(first.is_body());
        assert_eq!(first.error().first().map(|f| *f.error()), Some("inner failed"));
        seen.assert(1, CancelReason::SiblingFailed);
    }

    fn an_inner_group_error_returned_by_a_child_fails_the_outer_group() {
        let seen = &Seen::default();
        let (_tx, rx) = mpsc::channel::<u32>();
        let err = spool::group(|g| {
            g.spawn_named("inner-runner", || {
                spool::group(|h| {
                    h.spawn(|| {
                        seen.wait_entered(1);
                        Err::<(), _>("inner failed")
                    });
                    Ok(())
                })
            });
            seen.until_cancelled(|| rx.recv())
        })
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err.first().unwrap().thread_name(), Some("inner-runner"));
        assert_eq!(err.into_first().unwrap().into_first(), Some("inner failed"));
        seen.assert(1, CancelReason::SiblingFailed);
    }

    fn an_inner_groups_timeout_does_not_cancel_the_outer_group() {
        let seen = &Seen::default();
        let r = spool::group(|g| {
            let (tx, rx) = mpsc::channel::<u32>();
            let sibling = g.spawn(move || Ok::<_, ()>(rx.recv().unwrap()));
            let inner = Builder::new().timeout(SHORT).run(|h| -> Result<(), ()> {
                h.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                seen.until_cancelled(|| thread::sleep(LONG))
            });
            assert!(inner.unwrap_err().is_timeout());
            assert!(!cancel::is_cancelled(), "the inner deadline cancelled the outer body");
            tx.send(5).unwrap();
            Ok(sibling.join().unwrap())
        });
        assert_eq!(r.unwrap(), 5);
        seen.assert_every(1, CancelReason::Deadline);
    }

    fn an_outer_failure_cancels_the_children_of_an_inner_group() {
        let seen = &Seen::default();
        let (_tx, rx) = mpmc::unbounded::<u32>();
        let mut outer = None;
        let err = spool::group(|g| {
            outer = Some(g.cancel_scope().id());
            g.spawn(|| {
                spool::group(|h| -> Result<(), &str> {
                    h.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                    h.spawn(|| seen.until_cancelled(|| rx.recv()));
                    seen.until_cancelled(|| thread::sleep(LONG))
                })
                .map_err(|_| "the inner group failed")
            });
            g.spawn(|| {
                seen.wait_entered(3);
                Err::<(), _>("outer failed")
            });
            Ok(())
        })
        .unwrap_err();
        // The inner group was cancelled from outside: no failure of its own.
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err.into_first(), Some("outer failed"));
        seen.assert(3, CancelReason::SiblingFailed);
        assert_eq!(seen.scopes(), vec![outer.unwrap(); 3]);
    }

    fn an_outer_timeout_cancels_the_children_of_an_inner_group() {
        let seen = &Seen::default();
        let err = Builder::new()
            .timeout(SHORT)
            .run(|_| {
                spool::group(|h| -> Result<(), ()> {
                    h.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                    seen.until_cancelled(|| thread::sleep(LONG))
                })
                .map_err(|_| "the inner group failed")
            })
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(err.is_empty());
        seen.assert_every(1, CancelReason::Deadline);
    }

    // -- the group's own cancellation, deadlines, timeouts around it -----------------

    fn a_builder_timeout_ends_a_blocked_body_and_its_children() {
        let seen = &Seen::default();
        let (_tx, rx) = mpsc::channel::<u32>();
        let err = Builder::new()
            .timeout(SHORT)
            .run(|g| -> Result<(), ()> {
                g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                seen.until_cancelled(|| rx.recv())
            })
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(err.first().is_none() && err.is_empty());
        assert!(err.into_first().is_none());
        seen.assert_every(1, CancelReason::Deadline);
    }

    fn a_deadline_that_cancels_children_after_the_body_returned_is_a_timeout() {
        let seen = &Seen::default();
        let err = Builder::new()
            .deadline(Instant::now() + SHORT)
            .run(|g| {
                g.spawn(|| seen.until_cancelled(park_forever));
                seen.wait_entered(1);
                Ok::<_, ()>("the body's value")
            })
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        seen.assert(1, CancelReason::Deadline);
    }

    fn a_child_the_deadline_cancelled_before_it_ran_makes_a_timeout() {
        // The deadline has passed: the child never runs, and its work is
        // not done, so the group cannot return the body's value.
        let ran = AtomicBool::new(false);
        let r = Builder::new().deadline(Instant::now()).run(|g| {
            g.spawn(|| {
                ran.store(true, Ordering::SeqCst);
                Ok(())
            });
            Ok::<_, ()>("the body's value")
        });
        assert!(!ran.load(Ordering::SeqCst));
        let err = r.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }

    fn a_timeout_around_a_group_reaches_every_child_and_the_body() {
        let seen = &Seen::default();
        let (_tx, rx) = mpmc::unbounded::<u32>();
        let r = timeout(SHORT, || {
            spool::group(|g| -> Result<(), ()> {
                g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                g.spawn(|| seen.until_cancelled(|| rx.recv()));
                g.spawn(|| seen.until_cancelled(park_forever));
                seen.until_cancelled(|| rx.recv())
            })
        });
        let _: Elapsed = r.unwrap_err();
        seen.assert_every(1, CancelReason::Deadline);
    }

    fn a_timeout_around_a_group_whose_body_returned_still_elapses() {
        // The body returned, but its children were cancelled from outside:
        // the caller's cancellation resumes through the group.
        let seen = &Seen::default();
        let r = timeout(SHORT, || {
            spool::group(|g| {
                g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                g.spawn(|| seen.until_cancelled(park_forever));
                seen.wait_entered(2);
                Ok::<_, ()>(1)
            })
        });
        let _: Elapsed = r.unwrap_err();
        seen.assert(2, CancelReason::Deadline);
    }

    fn a_timeout_that_cancelled_a_child_before_it_ran_elapses() {
        let ran = AtomicBool::new(false);
        let r = timeout(Duration::ZERO, || {
            spool::group(|g| {
                g.spawn(|| {
                    ran.store(true, Ordering::SeqCst);
                    Ok::<_, ()>(())
                });
                Ok::<_, ()>(1)
            })
        });
        assert!(!ran.load(Ordering::SeqCst));
        let _: Elapsed = r.unwrap_err();
    }

    fn cancel_from_a_child_ends_the_group_with_no_failure() {
        let seen = &Seen::default();
        let (_tx, rx) = mpsc::channel::<u32>();
        let err = spool::group(|g| {
            g.spawn(|| {
                seen.wait_entered(2);
                g.cancel();
                g.cancel(); // idempotent
                Ok::<_, ()>(())
            });
            g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
            seen.until_cancelled(|| rx.recv())
        })
        .unwrap_err();
        assert!(err.first().is_none() && err.is_empty(), "{err:?}");
        assert!(!err.is_timeout());
        let cancelled = err.cancelled().expect("the group's cancellation");
        assert_eq!(*cancelled.reason(), CancelReason::Requested(None));
        seen.assert(2, CancelReason::Requested(None));
    }

    fn a_handle_cancels_its_child_alone() {
        let seen = &Seen::default();
        let (started_tx, started) = mpsc::channel::<()>();
        let (tx, rx) = mpsc::channel::<u32>();
        let r = spool::group(|g| {
            let sleeper = g.spawn(move || {
                started_tx.send(()).unwrap();
                seen.until_cancelled(|| thread::sleep(LONG))
            });
            let doubler = g.spawn(move || Ok::<_, ()>(rx.recv().unwrap() * 2));
            started.recv().unwrap();
            sleeper.cancel();
            let joined = sleeper.join().unwrap_err();
            assert!(joined.is_cancelled(), "{joined}");
            assert!(!cancel::is_cancelled(), "cancelling a child cancelled the body");
            tx.send(21).unwrap();
            Ok(doubler.join().unwrap())
        });
        assert_eq!(r.unwrap(), 42, "a cancelled child is no failure");
        seen.assert(1, CancelReason::Requested(None));
    }

    // -- scale ------------------------------------------------------------------------

    fn ten_thousand_children_in_one_group() {
        let count = AtomicUsize::new(0);
        let r = spool::group(|g| {
            for i in 0..10_000 {
                let count = &count;
                g.spawn(move || {
                    if i % 3 == 0 {
                        thread::yield_now();
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, ()>(())
                });
            }
            Ok("done")
        });
        assert_eq!(r.unwrap(), "done");
        assert_eq!(count.load(Ordering::Relaxed), 10_000);
    }

    // -- the error ----------------------------------------------------------------------

    fn the_error_names_the_group_and_the_first_failure_and_its_source_is_the_first_error() {
        let err = Builder::new()
            .name("fetch")
            .run(|g| {
                g.spawn_named("db", || Err::<(), _>(io::Error::other("connection refused")));
                Ok(())
            })
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("'fetch'") && text.contains("'db'") && text.contains("connection refused"),
            "{text}"
        );
        assert_eq!(err.group_name(), Some("fetch"));
        let source = err.source().expect("a source");
        assert_eq!(source.to_string(), "connection refused");
        let first: &io::Error = err.first().unwrap().error();
        assert!(
            std::ptr::eq(source.downcast_ref::<io::Error>().unwrap(), first),
            "the source is not the first error"
        );
        // Through `?` into a boxed error, the message survives.
        let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
        assert!(boxed.to_string().contains("connection refused"));

        // A group cancelled with no failure says so.
        let err = Builder::new()
            .name("idle")
            .run(|g| {
                g.cancel();
                thread::sleep(LONG);
                Ok::<_, io::Error>(())
            })
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("'idle'") && text.contains("cancel"), "{text}");

        // A timeout too far for an `Instant` is no deadline.
        let r = Builder::new().timeout(Duration::MAX).run(|g| {
            g.spawn(|| {
                thread::sleep(Duration::from_millis(1));
                Ok::<_, io::Error>(())
            });
            Ok(1)
        });
        assert_eq!(r.unwrap(), 1);
    }
}
