//! Cancellation of `spool::sync`'s waits, through the public API only:
//! every blocking wait of a lock or coordination primitive is a
//! cancellation point, a cancelled `Condvar` wait holds the mutex again
//! before it unwinds, a cancellation poisons nothing, a wakeup racing a
//! cancel is never lost (rule R2), and a thread already unwinding (rule
//! R1) returns early from `Condvar::wait`, fails fast from the timed waits
//! and waits as usual for the rest.
//!
//! As in `tests/suite/sync_locks.rs`, the tests in `rt_test!` blocks run on a
//! one-worker runtime, a two-worker runtime and a plain OS thread, under a
//! watchdog (a wait that a cancellation does not end hangs, and the
//! watchdog names it). The races are shared with the stress run
//! (`tests/stress/cancel.rs`), which plays far more rounds.

use crate::common;
#[path = "../stress/cancel.rs"]
mod races;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Duration;

use races::On;
use spool::cancel::{checkpoint, is_cancelled, CancelScope, Cancelled};
use spool::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spool::sync::{
    Arc, Barrier, Condvar, Event, LazyLock, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup,
};
use spool::thread;
use spool::time::timeout;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);
/// The timeout put around a wait that nothing else ends.
const SHORT: Duration = Duration::from_millis(10);
/// A wait that must not end by itself during a test.
const FOREVER: Duration = Duration::from_secs(600);
/// Rounds of each race here (the stress run plays many more).
const ROUNDS: usize = if cfg!(debug_assertions) { 300 } else { 3_000 };

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `f` in a destructor while the thread unwinds from a cancellation,
/// so rule R1 applies to its blocking calls; returns what `f` returned.
fn during_cancel_unwind<T>(f: impl FnOnce() -> T) -> T {
    struct RunOnDrop<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for RunOnDrop<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let scope = CancelScope::new();
    scope.cancel();
    let mut result = None;
    let ran = scope.run(|| {
        let _cleanup = RunOnDrop(Some(|| {
            assert!(thread::panicking() && is_cancelled(), "not under rule R1");
            result = Some(f());
        }));
        checkpoint();
    });
    assert!(ran.is_none(), "the scope's cancellation did not unwind it");
    result.expect("the destructor ran")
}

rt_test! {
    // ---- Condvar ---------------------------------------------------------

    fn condvar_waits_are_cancellation_points() {
        let (m, cv) = (Mutex::new(0u32), Condvar::new());
        let waits: [(&str, &dyn Fn()); 5] = [
            ("wait", &|| drop(cv.wait(m.lock().unwrap()))),
            ("wait_while", &|| drop(cv.wait_while(m.lock().unwrap(), |_| true))),
            ("wait_timeout", &|| drop(cv.wait_timeout(m.lock().unwrap(), FOREVER))),
            ("wait_timeout_while", &|| {
                drop(cv.wait_timeout_while(m.lock().unwrap(), FOREVER, |_| true))
            }),
            ("wait_timeout_ms", &|| {
                #[allow(deprecated)]
                drop(cv.wait_timeout_ms(m.lock().unwrap(), u32::MAX));
            }),
        ];
        for (name, wait) in waits {
            // A spurious wakeup may end `wait` early: loop as callers do.
            let result = timeout(SHORT, || loop {
                wait();
            });
            assert!(result.is_err(), "Condvar::{name} was not cancelled");
            assert!(!m.is_poisoned(), "a cancelled Condvar::{name} poisoned the mutex");
            assert!(m.try_lock().is_ok(), "a cancelled Condvar::{name} left the mutex locked");
        }
        // The withdrawn waiters left the list: a notify reaches a new one.
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let waiter = {
            let pair = pair.clone();
            thread::spawn(move || drop(pair.1.wait_while(pair.0.lock().unwrap(), |go| !*go)))
        };
        *pair.0.lock().unwrap() = true;
        pair.1.notify_one();
        waiter.join().unwrap();
    }

    fn a_cancelled_condvar_wait_relocks_the_mutex_before_unwinding() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let scope = CancelScope::new();
        let released = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (pair, scope, released) = (pair.clone(), scope.clone(), released.clone());
            thread::spawn(move || {
                let (m, cv) = &*pair;
                let ended = scope.run(|| {
                    let mut waiting = m.lock().unwrap();
                    *waiting = true;
                    drop(cv.wait_while(waiting, |_| true));
                });
                assert!(ended.is_none());
                // Unwinding dropped the guard, which must have owned the
                // mutex: it was not ours to release before the holder did.
                assert!(released.load(Ordering::SeqCst), "unwound without the mutex");
            })
        };
        // Once the waiter has set the flag and waits, take the mutex.
        let held = loop {
            let guard = pair.0.lock().unwrap();
            if *guard {
                break guard;
            }
            drop(guard);
            thread::sleep(ms(1));
        };
        scope.cancel();
        // The cancelled waiter must block re-locking while we hold it.
        thread::sleep(ms(20));
        assert!(!waiter.is_finished(), "the cancelled wait ended without the mutex");
        released.store(true, Ordering::SeqCst);
        drop(held);
        waiter.join().unwrap();
        assert!(!pair.0.is_poisoned());
    }

    fn a_notified_then_cancelled_condvar_wait_returns_normally() {
        // The notification is taken before the waiter runs again, and the
        // cancel comes before it looks: the wakeup wins (rule R2) and the
        // cancellation is raised at the next cancellation point.
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let scope = CancelScope::new();
        let waiter = {
            let (pair, scope) = (pair.clone(), scope.clone());
            thread::spawn(move || {
                let (m, cv) = &*pair;
                scope.run(|| {
                    let mut n = m.lock().unwrap();
                    *n = 1;
                    n = cv.wait_while(n, |n| *n == 1).unwrap();
                    let seen = *n;
                    drop(n);
                    // Still cancelled: the next cancellation point unwinds.
                    let raised = catch_unwind(AssertUnwindSafe(checkpoint));
                    let raised = raised.map_err(|p| Cancelled::from_payload(&p).is_some());
                    (seen, raised)
                })
            })
        };
        let mut n = loop {
            let n = pair.0.lock().unwrap();
            if *n == 1 {
                break n;
            }
            drop(n);
            thread::sleep(ms(1));
        };
        *n = 2;
        // Notify and cancel while holding the mutex: the waiter cannot run
        // its withdrawal before both.
        pair.1.notify_one();
        scope.cancel();
        drop(n);
        let result = waiter.join().unwrap();
        assert_eq!(result, Some((2, Err(true))));
    }

    fn condvar_under_rule_r1() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let (m, cv) = &*pair;
        // `wait` returns early (a spurious wakeup), with the mutex locked.
        during_cancel_unwind(|| {
            let mut guard = cv.wait(m.lock().unwrap()).unwrap();
            *guard = false; // we own it
        });
        // Timed waits fail fast, reporting a timeout.
        let timed_out = during_cancel_unwind(|| {
            cv.wait_timeout(m.lock().unwrap(), FOREVER).unwrap().1.timed_out()
        });
        assert!(timed_out);
        let timed_out = during_cancel_unwind(|| {
            cv.wait_timeout_while(m.lock().unwrap(), FOREVER, |done| !*done)
                .unwrap()
                .1
                .timed_out()
        });
        assert!(timed_out);
        // `wait_while` returns only once the condition is false: it waits
        // as usual, masked.
        let setter = {
            let pair = pair.clone();
            thread::spawn(move || {
                thread::sleep(ms(20));
                *pair.0.lock().unwrap() = true;
                pair.1.notify_all();
            })
        };
        let done = during_cancel_unwind(|| *cv.wait_while(m.lock().unwrap(), |done| !*done).unwrap());
        assert!(done);
        setter.join().unwrap();
        assert!(!m.is_poisoned());
    }

    // ---- poisoning ---------------------------------------------------------

    fn a_cancellation_does_not_poison() {
        let (m, rw) = (Mutex::new(0), RwLock::new(0));
        let result = timeout(SHORT, || {
            let _m = m.lock().unwrap();
            let _w = rw.write().unwrap();
            thread::sleep(FOREVER);
        });
        assert!(result.is_err());
        assert!(!m.is_poisoned(), "a cancellation poisoned a Mutex");
        assert!(!rw.is_poisoned(), "a cancellation poisoned an RwLock");
        // A panic still poisons, also after a cancellation was caught on
        // this thread (a quiet panic: `resume_unwind` skips the hook).
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _m = m.lock().unwrap();
            resume_unwind(Box::new("a panic, quietly"));
        }));
        assert!(caught.is_err());
        assert!(m.is_poisoned(), "a panic after a cancellation did not poison");
    }

    fn a_cancelled_once_closure_does_not_poison() {
        let once = Once::new();
        let result = timeout(SHORT, || once.call_once(|| thread::sleep(FOREVER)));
        assert!(result.is_err());
        assert!(!once.is_completed());
        let mut ran = false;
        once.call_once(|| ran = true); // not poisoned: runs
        assert!(ran && once.is_completed());

        let cell = OnceLock::new();
        let result = timeout(SHORT, || *cell.get_or_init(|| {
            thread::sleep(FOREVER);
            1
        }));
        assert!(result.is_err());
        assert_eq!(cell.get(), None);
        assert_eq!(*cell.get_or_init(|| 2), 2);
    }

    // ---- Mutex, RwLock, Once: the slow paths ------------------------------

    fn lock_waits_are_cancellation_points() {
        let m = Arc::new(Mutex::new(0));
        let held = m.lock().unwrap();
        assert!(timeout(SHORT, || drop(m.lock())).is_err(), "Mutex::lock was not cancelled");
        drop(held);
        // The withdrawn waiter left no `QUEUED` behind that would stall us.
        *m.lock().unwrap() += 1;
        assert!(m.try_lock().is_ok());

        let rw = Arc::new(RwLock::new(0));
        let writer = rw.write().unwrap();
        assert!(timeout(SHORT, || drop(rw.read())).is_err(), "RwLock::read was not cancelled");
        assert!(timeout(SHORT, || drop(rw.write())).is_err(), "RwLock::write was not cancelled");
        drop(writer);
        assert!(rw.try_write().is_ok());
        assert!(rw.try_read().is_ok());

        // A cancelled writer at the head of the queue must not hold back
        // the readers queued behind it once the lock is free.
        let reader = rw.read().unwrap();
        let scope = CancelScope::new();
        let blocked_writer = {
            let (rw, scope) = (rw.clone(), scope.clone());
            thread::spawn(move || scope.run(|| drop(rw.write())))
        };
        thread::sleep(ms(5)); // let it queue (if not, the test still holds)
        let second_reader = {
            let rw = rw.clone();
            thread::spawn(move || *rw.read().unwrap())
        };
        thread::sleep(ms(5));
        scope.cancel();
        assert_eq!(blocked_writer.join().unwrap(), None);
        drop(reader);
        assert_eq!(second_reader.join().unwrap(), 0);
        assert!(rw.try_write().is_ok());
    }

    fn locks_wait_as_usual_under_rule_r1() {
        let m = Arc::new(Mutex::new(0));
        let released = Arc::new(AtomicBool::new(false));
        let holding = Arc::new(Event::new());
        let holder = {
            let (m, released, holding) = (m.clone(), released.clone(), holding.clone());
            thread::spawn(move || {
                let mut guard = m.lock().unwrap();
                holding.set();
                thread::sleep(ms(20));
                *guard = 1;
                released.store(true, Ordering::SeqCst);
            })
        };
        holding.wait();
        let seen = during_cancel_unwind(|| *m.lock().unwrap());
        assert!(released.load(Ordering::SeqCst), "locked before the holder released");
        assert_eq!(seen, 1);
        holder.join().unwrap();
        assert!(!m.is_poisoned());
    }

    fn once_waiters_are_cancellation_points() {
        let once = Arc::new(Once::new());
        let cell = Arc::new(OnceLock::new());
        let (started, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let runner = {
            let (once, cell) = (once.clone(), cell.clone());
            let (started, release) = (started.clone(), release.clone());
            thread::spawn(move || {
                cell.get_or_init(|| {
                    once.call_once(|| {
                        started.set();
                        release.wait();
                    });
                    7
                });
            })
        };
        started.wait();
        assert!(timeout(SHORT, || once.call_once(|| unreachable!())).is_err());
        assert!(timeout(SHORT, || once.wait()).is_err());
        assert!(timeout(SHORT, || once.wait_force()).is_err());
        assert!(timeout(SHORT, || *cell.wait()).is_err());
        assert!(timeout(SHORT, || *cell.get_or_init(|| unreachable!())).is_err());
        release.set();
        runner.join().unwrap();
        assert!(once.is_completed());
        assert_eq!(cell.get(), Some(&7));
    }

    // ---- Semaphore, Barrier, WaitGroup, Event ------------------------------

    fn semaphore_waits_are_cancellation_points() {
        let sem = Arc::new(Semaphore::new(0));
        assert!(timeout(SHORT, || sem.acquire().forget()).is_err());
        assert!(timeout(SHORT, || sem.acquire_timeout(FOREVER).map(|p| p.forget())).is_err());
        // The cancelled waiters left the queue: a release goes to the count.
        sem.add_permits(1);
        assert_eq!(sem.available_permits(), 1);
        // Rule R1: `acquire_timeout` fails fast, `acquire` waits as usual.
        let permit = sem.acquire();
        assert!(during_cancel_unwind(|| sem.acquire_timeout(FOREVER).is_none()));
        let releaser = {
            let sem = sem.clone();
            thread::spawn(move || {
                thread::sleep(ms(20));
                sem.add_permits(1);
            })
        };
        during_cancel_unwind(|| sem.acquire().forget());
        releaser.join().unwrap();
        drop(permit);
        assert_eq!(sem.available_permits(), 1);
    }

    fn a_cancelled_barrier_waiter_leaves_its_round() {
        let barrier = Arc::new(Barrier::new(2));
        assert!(timeout(SHORT, || barrier.wait()).is_err());
        // Had the cancelled arrival counted, this one would pass alone.
        let alone = {
            let barrier = barrier.clone();
            thread::spawn(move || barrier.wait().is_leader())
        };
        thread::sleep(ms(20));
        assert!(!alone.is_finished(), "a thread passed a barrier for two alone");
        let me = barrier.wait().is_leader();
        assert!(me ^ alone.join().unwrap());
        // Rule R1: a barrier wait does not return early.
        let partner = {
            let barrier = barrier.clone();
            thread::spawn(move || {
                thread::sleep(ms(20));
                barrier.wait().is_leader()
            })
        };
        let me = during_cancel_unwind(|| barrier.wait().is_leader());
        assert!(me ^ partner.join().unwrap());
    }

    fn wait_group_and_event_waits_are_cancellation_points() {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        assert!(timeout(SHORT, || wg.wait()).is_err());
        assert!(timeout(SHORT, || wg.wait_timeout(FOREVER)).is_err());
        assert!(!during_cancel_unwind(|| wg.wait_timeout(FOREVER)));
        let event = Arc::new(Event::new());
        assert!(timeout(SHORT, || event.wait()).is_err());
        assert!(timeout(SHORT, || event.wait_timeout(FOREVER)).is_err());
        assert!(!during_cancel_unwind(|| event.wait_timeout(FOREVER)));
        // Rule R1: `wait` waits as usual.
        let finisher = {
            let (wg, event) = (wg.clone(), event.clone());
            thread::spawn(move || {
                thread::sleep(ms(20));
                wg.done();
                thread::sleep(ms(5));
                event.set();
            })
        };
        during_cancel_unwind(|| wg.wait());
        assert_eq!(wg.count(), 0);
        during_cancel_unwind(|| event.wait());
        assert!(event.is_set());
        finisher.join().unwrap();
    }

    // ---- races (rule R2) --------------------------------------------------

    fn notify_one_racing_a_cancel_is_never_lost() {
        races::notify_one_races_cancel(ROUNDS, On::Green, On::Green, 11);
        races::notify_one_races_cancel(ROUNDS / 3, On::Os, On::Green, 12);
        races::notify_one_races_cancel(ROUNDS / 3, On::Green, On::Os, 13);
    }

    fn a_permit_racing_a_cancel_is_never_lost() {
        races::permit_races_cancel(ROUNDS, On::Green, On::Green, 21);
        races::permit_races_cancel(ROUNDS / 3, On::Os, On::Green, 22);
    }

    fn a_barrier_arrival_racing_a_cancel_is_counted_once() {
        races::arrival_races_cancel(ROUNDS, On::Green, On::Green, 31);
        races::arrival_races_cancel(ROUNDS / 3, On::Os, On::Green, 32);
    }

    fn an_event_set_racing_a_cancel_reaches_every_waiter() {
        races::set_races_cancel(ROUNDS, On::Green, On::Green, 41);
        races::set_races_cancel(ROUNDS / 3, On::Green, On::Os, 42);
    }

    fn an_unlock_racing_a_cancel_is_never_lost() {
        races::unlock_races_cancel(ROUNDS, On::Green, On::Green, 51);
        races::unlock_races_cancel(ROUNDS / 3, On::Os, On::Green, 52);
    }
}

/// A `LazyLock` whose initialiser a cancellation unwound is poisoned, as
/// for a panic (the initialiser is gone). On the test's own thread, whose
/// panic message the harness captures.
#[test]
fn a_cancelled_lazy_lock_initialiser_poisons_it() {
    let _watchdog = common::Watchdog::new("a_cancelled_lazy_lock_initialiser_poisons_it", LIMIT);
    let runs = Arc::new(AtomicUsize::new(0));
    let lazy = {
        let runs = runs.clone();
        LazyLock::new(move || {
            runs.fetch_add(1, Ordering::SeqCst);
            thread::sleep(FOREVER);
            0
        })
    };
    assert!(timeout(SHORT, || *lazy).is_err());
    let second = catch_unwind(AssertUnwindSafe(|| *lazy));
    assert!(
        second.is_err(),
        "a LazyLock whose initialiser was cancelled gave a value"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
