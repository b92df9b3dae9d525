//! Cancellation as users see it: timeouts around blocking calls, cancelling
//! threads through their handles, cancel scopes and shields, and the three
//! rules (R1 never unwind while unwinding, R2 a completed operation beats a
//! late cancellation, R3 a timeout is an error, not a cancellation).
//!
//! Most tests run in the three configurations of `rt_test!` (the body green
//! on one worker, green on two workers, or on the test's plain OS thread).
//! Tests that need a clean stderr or a process of their own (nothing is
//! printed for a cancellation; a scope run twice at once panics; thread-
//! local destructors) re-run this binary as a child (`common::run_child`;
//! they are in `cancel/children.rs`).
//! Waits that must end because of a cancellation are long (an hour), so a
//! cancellation that does not arrive hangs and the watchdog names the test.

#[path = "cancel/children.rs"]
mod children;
use crate::common;

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{is_child, payload_text, run_child, ChildOutput, Watchdog};
use spool::cancel::{self, CancelReason, CancelScope, Cancelled};
use spool::thread;
use spool::time::{timeout, timeout_at, Elapsed};
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(120);

/// A wait that only a cancellation ends.
const LONG: Duration = Duration::from_secs(3600);

/// A deadline that passes while the body is blocked.
const SHORT: Duration = Duration::from_millis(20);

/// How long a helper lets the other thread block before acting (the tests
/// stay correct if it did not block yet; they then exercise less).
const SETTLE: Duration = Duration::from_millis(20);

/// What a child test prints when it ran and passed.
const CHILD_PASSED: &str = "test result: ok. 1 passed";

// `Elapsed`, `Cancelled` and `CancelReason` cross threads (a join payload, an
// error sent back); a scope handle is shared with whoever cancels it.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Elapsed>();
    send_sync::<Cancelled>();
    send_sync::<CancelReason>();
    send_sync::<CancelScope>();
};

/// The `Cancelled` in a join or `catch_unwind` payload; panics (naming the
/// payload) if it is a panic's.
#[track_caller]
fn cancelled(payload: &Box<dyn Any + Send>) -> &Cancelled {
    match Cancelled::from_payload(payload) {
        Some(cancelled) => cancelled,
        None => panic!(
            "expected a cancellation, got a panic: {}",
            payload_text(&**payload)
        ),
    }
}

/// Polls `condition` (sleeping shielded, so a cancellation of the caller
/// does not cut the poll short) until it holds.
fn wait_for(condition: impl Fn() -> bool) {
    cancel::shield(|| {
        while !condition() {
            thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Parks until cancelled (a park may return spuriously).
fn park_forever() -> ! {
    loop {
        thread::park();
    }
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A second runtime, never dropped, for `Runtime::run` from every
/// configuration.
fn side_runtime() -> &'static Runtime {
    static SIDE: OnceLock<Runtime> = OnceLock::new();
    SIDE.get_or_init(|| Runtime::builder().workers(1).build().unwrap())
}

rt_test! {
    // -- timeouts around each blocking call of the core -----------------------

    fn timeout_ends_a_sleep() {
        let r = timeout(SHORT, || thread::sleep(LONG));
        assert!(r.is_err());
    }

    fn timeout_ends_a_park() {
        let r = timeout(SHORT, || park_forever());
        assert!(r.is_err());
    }

    fn timeout_ends_a_park_timeout() {
        let r = timeout(SHORT, || loop {
            thread::park_timeout(LONG);
        });
        assert!(r.is_err());
    }

    fn timeout_ends_a_join() {
        let release = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let (r2, f2) = (release.clone(), finished.clone());
        let child = thread::spawn(move || {
            wait_for(|| r2.load(Ordering::SeqCst));
            f2.store(true, Ordering::SeqCst);
        });
        let r = timeout(SHORT, move || child.join());
        assert!(r.is_err(), "the join outlived its timeout");
        // The child runs on, detached, and finishes.
        release.store(true, Ordering::SeqCst);
        wait_for(|| finished.load(Ordering::SeqCst));
    }

    fn timeout_ends_a_yield_loop() {
        let r = timeout(SHORT, || loop {
            thread::yield_now();
        });
        assert!(r.is_err());
    }

    fn timeout_ends_a_checkpoint_loop() {
        let r = timeout(SHORT, || loop {
            cancel::checkpoint();
            std::hint::spin_loop();
        });
        assert!(r.is_err());
    }

    fn timeout_returns_the_value_of_a_body_that_finishes() {
        assert_eq!(timeout(LONG, || 7), Ok(7));
        let r = timeout(LONG, || {
            thread::sleep(Duration::from_millis(1));
            thread::park_timeout(Duration::from_millis(1));
            thread::yield_now();
            "done"
        });
        assert_eq!(r, Ok("done"));
    }

    // -- JoinHandle::cancel -----------------------------------------------------

    fn cancel_ends_a_blocked_thread() {
        let parked = thread::spawn(|| park_forever());
        let sleeping = thread::spawn(|| thread::sleep(LONG));
        thread::sleep(SETTLE);
        parked.cancel();
        sleeping.cancel();
        let me = thread::current().id();
        for payload in [parked.join().unwrap_err(), sleeping.join().unwrap_err()] {
            let c = cancelled(&payload);
            assert_eq!(c.reason(), &CancelReason::Requested(None));
            assert_eq!(c.cancelled_by(), Some(me));
        }
    }

    fn cancel_with_carries_its_reason_and_the_canceller() {
        let t = thread::spawn(|| thread::sleep(LONG));
        let canceller = thread::current().id();
        t.cancel_with(CancelReason::requested("no longer needed"));
        let payload = t.join().unwrap_err();
        let c = cancelled(&payload);
        assert_eq!(c.reason(), &CancelReason::requested("no longer needed"));
        assert_eq!(c.cancelled_by(), Some(canceller));
        assert!(c.to_string().contains("no longer needed"), "{c}");
    }

    fn cancel_is_idempotent_and_the_first_reason_wins() {
        let t = thread::spawn(|| park_forever());
        t.cancel_with(CancelReason::requested("first"));
        t.cancel();
        t.cancel_with(CancelReason::Shutdown);
        t.cancel();
        let payload = t.join().unwrap_err();
        assert_eq!(cancelled(&payload).reason(), &CancelReason::requested("first"));
    }

    fn cancel_of_a_finished_thread_has_no_effect() {
        let t = thread::spawn(|| 5);
        wait_for(|| t.is_finished());
        t.cancel();
        t.cancel();
        assert_eq!(t.join().unwrap(), 5);
    }

    fn cancel_of_a_thread_that_never_started_drops_its_closure_unrun() {
        // A runtime whose only worker is held by a thread blocking the OS
        // thread: nothing spawned on it can start until it is released.
        let rt = Runtime::builder().workers(1).build().unwrap();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        let holder = rt.spawn(move || {
            held_tx.send(()).unwrap();
            hold_rx.recv().unwrap(); // blocks the worker on purpose
        });
        held_rx.recv().unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = SetOnDrop(dropped.clone());
        let ran2 = ran.clone();
        let t = rt.spawn(move || {
            let _guard = guard;
            ran2.store(true, Ordering::SeqCst);
        });
        t.cancel();
        hold_tx.send(()).unwrap();
        let payload = t.join().unwrap_err();
        assert!(Cancelled::from_payload(&payload).is_some());
        assert!(!ran.load(Ordering::SeqCst), "the closure of a thread cancelled before it started ran");
        assert!(dropped.load(Ordering::SeqCst), "the unrun closure was not dropped");
        holder.join().unwrap();
    }

    // -- scopes reach the children of thread::scope ------------------------------

    fn timeout_reaches_the_children_of_a_scope() {
        let r = timeout(SHORT, || {
            thread::scope(|s| {
                s.spawn(|| park_forever());
                s.spawn(|| thread::sleep(LONG));
                s.spawn(|| thread::scope(|s| {
                    s.spawn(|| park_forever());
                }));
            })
        });
        assert!(r.is_err(), "the scope's children ignored the timeout");
    }

    fn timeout_reaches_a_scope_body_that_joins_its_children() {
        let r = timeout(SHORT, || {
            thread::scope(|s| {
                let a = s.spawn(|| park_forever());
                let b = s.spawn(|| thread::sleep(LONG));
                (a.join().unwrap(), b.join().unwrap())
            })
        });
        assert!(r.is_err());
    }

    fn a_join_whose_thread_was_cancelled_with_the_joiner_raises_the_joiners_cancellation() {
        // The child ends by the cancellation of a scope the joiner is in too
        // before the joiner reaches `join`: `join` must not hand the
        // joiner that payload as a result (`unwrap` would turn it into a
        // panic); the joiner is cancelled, so `join` unwinds with it.
        let scope = CancelScope::new();
        let handle = scope.clone();
        let r = scope.run(|| {
            thread::scope(|s| {
                let t = s.spawn(|| park_forever());
                handle.cancel();
                wait_for(|| t.is_finished());
                t.join().unwrap()
            })
        });
        assert!(r.is_none());
    }

    fn a_scoped_child_cancelled_alone_does_not_cancel_the_scope() {
        let r = timeout(LONG, || {
            thread::scope(|s| {
                let t = s.spawn(|| park_forever());
                t.cancel();
                let payload = t.join().unwrap_err();
                assert!(Cancelled::from_payload(&payload).is_some());
                let u = s.spawn(|| park_forever());
                u.cancel();
                3
            })
        });
        assert_eq!(r, Ok(3));
    }

    fn runtime_run_inside_a_timeout_returns_only_after_its_thread_ended() {
        // `run`'s thread borrows from the caller: the caller must not leave
        // before it ends. It inherits the caller's scopes, so the timeout
        // reaches it.
        let ended = AtomicBool::new(false);
        let r = timeout(SHORT, || {
            side_runtime().run(|| {
                struct Ended<'a>(&'a AtomicBool);
                impl Drop for Ended<'_> {
                    fn drop(&mut self) {
                        // Slow, so a caller that does not wait is caught.
                        std::thread::sleep(Duration::from_millis(50));
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _ended = Ended(&ended);
                thread::sleep(LONG);
            })
        });
        assert!(ended.load(Ordering::SeqCst), "Runtime::run returned while its thread still ran");
        assert!(r.is_err());
    }

    // -- nesting, R3 -------------------------------------------------------------

    fn nested_timeouts_where_the_outer_fires_first() {
        let inner_returned = AtomicBool::new(false);
        let r = timeout(SHORT, || {
            let inner = timeout(LONG, || thread::sleep(LONG));
            inner_returned.store(true, Ordering::SeqCst);
            inner
        });
        assert!(r.is_err());
        assert!(!inner_returned.load(Ordering::SeqCst), "the inner timeout returned");

        let outer = CancelScope::new().with_timeout(SHORT);
        let inner = CancelScope::new().with_timeout(LONG);
        let r = outer.run(|| {
            let r = inner.run(|| park_forever());
            inner_returned.store(true, Ordering::SeqCst);
            r
        });
        assert!(r.is_none());
        assert!(!inner_returned.load(Ordering::SeqCst), "the inner scope's run returned");
    }

    fn nested_timeouts_where_the_inner_fires_first() {
        let r = timeout(LONG, || timeout(SHORT, || thread::sleep(LONG)));
        assert!(matches!(r, Ok(Err(_))), "{r:?}");
    }

    fn a_body_that_returns_after_its_deadline_returns_ok() {
        let r = timeout(Duration::from_millis(2), || {
            let start = Instant::now();
            // No cancellation point: the deadline passes unnoticed.
            while start.elapsed() < Duration::from_millis(10) {
                std::hint::spin_loop();
            }
            7
        });
        assert_eq!(r, Ok(7));
    }

    fn an_outer_cancellation_passes_through_a_timeout_unchanged() {
        let outer = CancelScope::new();
        let handle = outer.clone();
        let timeout_returned = AtomicBool::new(false);
        let r = outer.run(|| {
            let r = timeout(LONG, || {
                handle.cancel_with(CancelReason::requested("outer"));
                thread::sleep(LONG);
            });
            timeout_returned.store(true, Ordering::SeqCst);
            r
        });
        assert!(r.is_none());
        assert!(!timeout_returned.load(Ordering::SeqCst));
        // As a payload: the outer scope's, with its reason.
        let outer = CancelScope::new();
        outer.cancel_with(CancelReason::requested("outer"));
        let id = outer.id();
        let r = outer.run(|| {
            let caught = catch_unwind(|| timeout(LONG, || thread::sleep(LONG)));
            let payload = caught.expect_err("the timeout returned");
            let c = cancelled(&payload);
            assert_eq!(c.scope(), id);
            assert_eq!(c.reason(), &CancelReason::requested("outer"));
            resume_unwind(payload)
        });
        assert!(r.is_none());
    }

    fn a_panic_passes_through_a_timeout() {
        let caught = catch_unwind(|| {
            timeout(LONG, || -> () { resume_unwind(Box::new("a panic in the body")) })
        });
        let payload = caught.unwrap_err();
        assert!(Cancelled::from_payload(&payload).is_none());
        assert_eq!(payload_text(&*payload), "a panic in the body");
        let caught = catch_unwind(|| {
            CancelScope::new().run(|| -> () { resume_unwind(Box::new("a panic in the body")) })
        });
        assert!(caught.is_err());
    }

    fn a_deadline_in_the_past_cancels_at_the_first_cancellation_point() {
        let past = Instant::now();
        thread::sleep(Duration::from_millis(1));
        let reached = AtomicBool::new(false);
        let r = timeout_at(past, || {
            reached.store(true, Ordering::SeqCst);
            cancel::checkpoint();
            unreachable!("checkpoint returned past the deadline");
        });
        assert_eq!(r.unwrap_err().deadline(), past);
        assert!(reached.load(Ordering::SeqCst));
        // Without a cancellation point, the body finishes (R3).
        assert_eq!(timeout_at(past, || 1), Ok(1));
        assert_eq!(timeout(Duration::ZERO, || thread::sleep(LONG)).map_err(|_| ()), Err(()));
        let scope = CancelScope::new().with_deadline(past);
        assert!(scope.is_cancelled());
        assert_eq!(scope.run(thread::park), None);
    }

    fn duration_max_means_no_deadline() {
        assert_eq!(timeout(Duration::MAX, cancel::current_deadline), Ok(None));
        let scope = CancelScope::new().with_timeout(Duration::MAX);
        assert_eq!(scope.deadline(), None);
        assert_eq!(scope.run(|| {
            thread::sleep(Duration::from_millis(1));
            cancel::current_deadline()
        }), Some(None));
    }

    // -- catch_unwind, R1, R2 -----------------------------------------------------

    fn a_swallowed_cancellation_is_raised_again_at_the_next_point() {
        let scope = CancelScope::new();
        scope.cancel();
        let swallowed = AtomicUsize::new(0);
        let r = scope.run(|| {
            for _ in 0..3 {
                let caught = catch_unwind(cancel::checkpoint);
                let payload = caught.expect_err("checkpoint in a cancelled scope returned");
                assert!(Cancelled::from_payload(&payload).is_some());
                swallowed.fetch_add(1, Ordering::SeqCst);
            }
            let caught = catch_unwind(|| thread::sleep(LONG));
            assert!(caught.is_err());
            thread::park();
            unreachable!("park in a cancelled scope returned");
        });
        assert!(r.is_none());
        assert_eq!(swallowed.load(Ordering::SeqCst), 3);

        let r = timeout(SHORT, || {
            let _ = catch_unwind(|| thread::sleep(LONG));
            thread::sleep(LONG);
        });
        assert!(r.is_err());
    }

    fn sleep_and_park_in_a_drop_during_a_cancellation_return_early() {
        struct BlockOnDrop(Arc<AtomicBool>);
        impl Drop for BlockOnDrop {
            fn drop(&mut self) {
                // Each would unwind a second time, or wait an hour.
                thread::sleep(LONG);
                thread::park();
                thread::park_timeout(LONG);
                thread::yield_now();
                cancel::checkpoint();
                assert!(cancel::is_cancelled());
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let done = Arc::new(AtomicBool::new(false));
        let scope = CancelScope::new();
        scope.cancel();
        let d = done.clone();
        assert!(scope.run(move || {
            let _block = BlockOnDrop(d);
            thread::sleep(LONG);
        }).is_none());
        assert!(done.swap(false, Ordering::SeqCst));

        let d = done.clone();
        assert!(timeout(SHORT, move || {
            let _block = BlockOnDrop(d);
            park_forever();
        }).is_err());
        assert!(done.swap(false, Ordering::SeqCst));

        let d = done.clone();
        let t = thread::spawn(move || {
            let _block = BlockOnDrop(d);
            thread::sleep(LONG);
        });
        thread::sleep(SETTLE);
        t.cancel();
        assert!(Cancelled::from_payload(&t.join().unwrap_err()).is_some());
        assert!(done.load(Ordering::SeqCst));
    }

    fn a_join_in_a_drop_during_a_cancellation_waits_as_usual() {
        struct JoinOnDrop(Option<thread::JoinHandle<u32>>, Arc<AtomicUsize>);
        impl Drop for JoinOnDrop {
            fn drop(&mut self) {
                let joined = self.0.take().unwrap().join();
                self.1.store(joined.unwrap() as usize, Ordering::SeqCst);
            }
        }
        let result = Arc::new(AtomicUsize::new(0));
        let r = timeout(SHORT, || {
            let child = thread::spawn(|| {
                // Not inside the timeout: it finishes in its own time.
                thread::sleep(Duration::from_millis(50));
                41
            });
            let _join = JoinOnDrop(Some(child), result.clone());
            thread::sleep(LONG);
        });
        assert!(r.is_err());
        assert_eq!(result.load(Ordering::SeqCst), 41);
    }

    fn a_cancel_racing_an_unpark_loses_no_token() {
        // The cancel and the unpark both land while the thread is parked.
        // Either its park returns (taking the token: R2) or the park is
        // cancelled and the token waits for the next park.
        for _ in 0..20 {
            let scope = CancelScope::new();
            let handle = scope.clone();
            let me = thread::current();
            let helper = thread::spawn(move || {
                thread::sleep(Duration::from_millis(2));
                handle.cancel();
                me.unpark();
            });
            if scope.run(thread::park).is_none() {
                // Hangs (and the watchdog names the test) if it was lost.
                thread::park();
            }
            helper.join().unwrap();
        }
    }

    // -- shields, deadlines moved while running, queries --------------------------

    fn a_shield_blocks_an_outer_cancel_and_an_outer_deadline() {
        let outer = CancelScope::new();
        outer.cancel();
        let r = outer.run(|| {
            let inside = cancel::shield(|| {
                thread::sleep(Duration::from_millis(5));
                thread::park_timeout(Duration::from_millis(1));
                thread::yield_now();
                cancel::checkpoint();
                (cancel::is_cancelled(), cancel::current_deadline())
            });
            assert_eq!(inside, (false, None));
            // Leaving the shield uncovers the outer cancellation.
            assert!(cancel::is_cancelled());
            cancel::checkpoint();
            unreachable!("the outer cancellation was lost at the shield's exit");
        });
        assert!(r.is_none());

        let r = timeout(Duration::from_millis(2), || {
            let slept = cancel::shield(|| {
                let start = Instant::now();
                thread::sleep(Duration::from_millis(30));
                start.elapsed()
            });
            assert!(slept >= Duration::from_millis(30));
            thread::sleep(LONG);
        });
        assert!(r.is_err());

        // A thread cancelled through its handle finishes its shielded part.
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let t = thread::spawn(move || {
            cancel::shield(|| thread::sleep(Duration::from_millis(30)));
            f.store(true, Ordering::SeqCst);
            thread::sleep(LONG);
        });
        thread::sleep(Duration::from_millis(5));
        t.cancel();
        assert!(t.join().is_err());
        assert!(finished.load(Ordering::SeqCst));
    }

    fn a_shielded_scope_can_still_be_cancelled_itself() {
        let outer = CancelScope::new();
        outer.cancel();
        let inner = CancelScope::new().shield(true).with_timeout(SHORT);
        let r = outer.run(|| inner.run(|| thread::sleep(LONG)));
        assert_eq!(r, Some(None));
    }

    fn set_deadline_from_another_thread_takes_effect_while_running() {
        let scope = CancelScope::new();
        let handle = scope.clone();
        let running = Arc::new(AtomicBool::new(false));
        let r2 = running.clone();
        let setter = thread::spawn(move || {
            wait_for(|| r2.load(Ordering::SeqCst));
            thread::sleep(SETTLE);
            handle.set_deadline(Some(Instant::now() + Duration::from_millis(5)));
        });
        let r = scope.run(|| {
            running.store(true, Ordering::SeqCst);
            thread::sleep(LONG);
        });
        assert!(r.is_none(), "the new deadline did not reach the sleeping thread");
        setter.join().unwrap();

        // Also for a thread blocked in an untimed park, and through a
        // scope it inherited.
        let scope = CancelScope::new();
        let handle = scope.clone();
        let r = scope.run(|| {
            thread::scope(|s| {
                s.spawn(|| park_forever());
                s.spawn(move || {
                    thread::sleep(SETTLE);
                    handle.set_deadline(Some(Instant::now()));
                });
            })
        });
        assert!(r.is_none());

        // Removing a deadline before it passes lets the body finish.
        let scope = CancelScope::new().with_timeout(Duration::from_millis(1));
        scope.set_deadline(None);
        assert_eq!(scope.run(|| { thread::sleep(Duration::from_millis(5)); 1 }), Some(1));
    }

    fn current_deadline_and_is_cancelled_follow_the_scopes() {
        assert_eq!(cancel::current_deadline(), None);
        assert!(!cancel::is_cancelled());
        let far = Instant::now() + LONG;
        let near = Instant::now() + LONG / 2;
        let r = timeout_at(far, || {
            assert_eq!(cancel::current_deadline(), Some(far));
            let inner = timeout_at(near, cancel::current_deadline);
            assert_eq!(inner, Ok(Some(near)));
            let later = timeout_at(far + LONG, cancel::current_deadline);
            assert_eq!(later, Ok(Some(far)));
            assert_eq!(cancel::shield(cancel::current_deadline), None);
            assert_eq!(cancel::current_deadline(), Some(far));
            cancel::is_cancelled()
        });
        assert_eq!(r, Ok(false));
        assert_eq!(cancel::current_deadline(), None);

        let scope = CancelScope::new();
        assert!(!scope.is_cancelled());
        scope.cancel();
        assert!(scope.is_cancelled());
        assert_eq!(scope.run(cancel::is_cancelled), Some(true));
        assert!(!cancel::is_cancelled());
        // Another thread's cancellation is not ours.
        let t = thread::spawn(|| park_forever());
        t.cancel();
        assert!(!cancel::is_cancelled());
        assert!(t.join().is_err());
    }

    fn elapsed_is_an_ordinary_error_that_becomes_timed_out() {
        let deadline = Instant::now();
        let e = timeout_at(deadline, || thread::sleep(LONG)).unwrap_err();
        assert_eq!(e.deadline(), deadline);
        assert!(!e.to_string().is_empty());
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        fn read() -> std::io::Result<u32> {
            timeout(Duration::ZERO, || {
                thread::sleep(LONG);
                5
            })?;
            Ok(0)
        }
        assert_eq!(read().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    fn a_scope_runs_again_after_it_returned() {
        let scope = CancelScope::new();
        assert_eq!(scope.run(|| 1), Some(1));
        assert_eq!(scope.run(|| 2), Some(2));
        scope.cancel();
        assert_eq!(scope.run(|| 3), Some(3));
        assert_eq!(scope.run(thread::park), None);
    }
}
