//! [`unblock_abandon`]: `unblock` for `'static` closures that a cancelled
//! caller leaves behind.
//!
//! # The hand-off
//! The caller and the pool thread share a reference-counted [`Handoff`]:
//! a mutex over the call's state (pending, done with a result, or
//! abandoned) and the caller's handle. The pool thread, when the closure
//! returns, takes the lock: a pending call becomes done, and it wakes the
//! caller after releasing the lock; an abandoned one keeps nothing, and
//! the result is dropped on the pool thread. The caller waits in
//! `cancellable_wait`, taking a done result under the same lock; cancelled,
//! it takes the lock once more: a pending call becomes abandoned and the
//! caller unwinds, but a call that is done already is returned (rule R2: a
//! completed operation beats a late cancellation). One lock decides, so
//! exactly one of "the caller gets the result" and "the pool drops it"
//! happens. A wake that reaches a caller that has moved on is a stale wake
//! token, which spool's waits tolerate. Since nothing of the caller's
//! stack is shared, the caller may leave at any moment. The loom models at
//! the bottom check both outcomes of the race, and that abandoning without
//! looking at the state loses a finished result.

use std::thread;

use spool_runtime::cancel::{self, Check};
use spool_runtime::trace::WaitReason;

use crate::loom::thread::{current, Thread};
use crate::loom::{Arc, Mutex};

/// Runs the blocking function `f` on spool's pool of OS threads, as
/// [`unblock`](crate::unblock) does, but returns at once if the caller is
/// cancelled meanwhile, leaving `f` to finish on its own.
///
/// Use it for calls that ignore cancellation and whose result the caller
/// can do without: a DNS lookup, a blocking C library call with no way to
/// stop it, a long read of a file. On cancellation the caller unwinds
/// right away (with [`Cancelled`](crate::cancel::Cancelled), like any
/// cancellation point); the pool thread goes on running `f`, and drops its
/// result when it returns. Because `f` may outlive the caller's frame, it
/// and its result must be `'static`.
///
/// * If `f` finished before the caller noticed its cancellation, its value
///   is returned (or its panic resumed), and the cancellation is raised at
///   the next cancellation point.
/// * The entry is a cancellation point: a cancelled caller does not start
///   `f`.
/// * `f` runs inside the caller's cancel scopes (see
///   [`unblock`](crate::unblock#cancellation)), so it can still notice the
///   cancellation and stop early to free its pool thread.
/// * While the caller is already unwinding and cancelled (rule R1 of
///   [`spool::cancel`](crate::cancel)), it waits for `f` as usual, since it
///   has no error to return and must not unwind again.
///
/// Unlike `unblock`, a call from a plain OS thread also goes to the pool,
/// so that a cancellation of the OS thread ends its wait too.
///
/// ```
/// use std::time::Duration;
///
/// let result = spool::time::timeout(Duration::from_millis(20), || {
///     // Does not notice cancellation; the pool thread sleeps on alone.
///     spool::unblock_abandon(|| std::thread::sleep(Duration::from_secs(2)))
/// });
/// assert!(result.is_err()); // returned at the deadline, not after 2 s
/// ```
///
/// # Panics
/// A panic in `f` is caught on the pool thread and resumed in the caller,
/// as with `unblock` (or dropped unseen, if the caller has left).
#[track_caller]
pub fn unblock_abandon<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_abandoning(f, WaitReason::Unblock)
}

/// `unblock_abandon`, its wait recorded as `reason` for thread dumps (a
/// host name resolution is one).
#[track_caller]
pub(crate) fn run_abandoning<F, T>(f: F, reason: WaitReason) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if let Check::Raise(cancelled) = cancel::check() {
        cancel::raise(cancelled);
    }
    let handoff = Arc::new(Handoff::new(current()));
    let delivery = Arc::clone(&handoff);
    let scopes = super::scopes_to_lend();
    super::pool().submit(Box::new(move || {
        delivery.complete(super::run_closure(scopes, f));
    }));
    if let Some(result) = handoff.take() {
        return super::finish(result);
    }
    crate::loom::note_wait(reason);
    loop {
        if let Some(result) = handoff.take() {
            return super::finish(result);
        }
        match spool_runtime::cancellable_wait(None) {
            Check::Continue => {}
            Check::Raise(cancelled) => match handoff.abandon() {
                Some(result) => return super::finish(result),
                None => cancel::raise(cancelled),
            },
            // Already unwinding: no error to return, so wait for `f` as
            // `unblock` does (a masked wait, which the cancellation does
            // not end).
            Check::Unwinding => loop {
                if let Some(result) = handoff.take() {
                    return super::finish(result);
                }
                spool_runtime::wait();
            },
        }
    }
}

/// Where the pool leaves a call's outcome for a caller that may have left;
/// see "The hand-off" above.
pub(super) struct Handoff<T> {
    state: Mutex<State<T>>,
    caller: Thread,
}

/// A call's outcome, as far as the caller is concerned.
enum State<T> {
    /// `f` is running; the caller waits for it.
    Pending,
    /// `f` returned or panicked; the result waits for the caller.
    Done(thread::Result<T>),
    /// The caller took the result.
    Taken,
    /// The caller left: the result is dropped by the pool.
    Abandoned,
}

impl<T> Handoff<T> {
    fn new(caller: Thread) -> Handoff<T> {
        Handoff {
            state: Mutex::new(State::Pending),
            caller,
        }
    }

    fn lock(&self) -> crate::loom::MutexGuard<'_, State<T>> {
        // Nothing panics under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pool side: hands the result to the caller and wakes it, or drops it
    /// if the caller left. Returns whether the caller gets it.
    fn complete(&self, result: thread::Result<T>) -> bool {
        let mut state = self.lock();
        match *state {
            State::Pending => {
                *state = State::Done(result);
                drop(state);
                self.caller.wake();
                true
            }
            _ => {
                drop(state);
                // Dropped outside the lock: `T`'s destructor may block.
                drop(result);
                false
            }
        }
    }

    /// Caller side: the result, if the call is done.
    fn take(&self) -> Option<thread::Result<T>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(result) => Some(result),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Caller side, cancelled: leaves a pending call behind (`None`), or
    /// takes the result of one that is done already (rule R2).
    fn abandon(&self) -> Option<thread::Result<T>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Abandoned) {
            State::Done(result) => {
                *state = State::Taken;
                Some(result)
            }
            _ => None,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The race of "The hand-off": a pool thread completing the call
    //! against the caller either waiting for it or abandoning it. Loom
    //! reports a caller left waiting with nobody to wake it as a deadlock.
    //! Run with
    //! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p spool-rt --release --lib loom`.
    use super::*;
    use ::loom::sync::atomic::{AtomicBool, Ordering};
    use ::loom::thread::spawn;

    /// Records that it was dropped.
    struct Outcome(Arc<AtomicBool>);

    impl Drop for Outcome {
        fn drop(&mut self) {
            assert!(!self.0.swap(true, Ordering::Relaxed), "dropped twice");
        }
    }

    /// Abandoning without looking at the state (the mutation).
    fn abandon_blindly<T>(handoff: &Handoff<T>) -> Option<thread::Result<T>> {
        *handoff.lock() = State::Abandoned;
        None
    }

    fn cancelled_caller(blindly: bool) {
        ::loom::model(move || {
            let handoff = Arc::new(Handoff::new(current()));
            let dropped = Arc::new(AtomicBool::new(false));
            let pool = {
                let (handoff, dropped) = (Arc::clone(&handoff), Arc::clone(&dropped));
                spawn(move || handoff.complete(Ok(Outcome(dropped))))
            };
            let taken = if blindly {
                abandon_blindly(&handoff)
            } else {
                handoff.abandon()
            };
            let delivered = pool.join().unwrap();
            assert_eq!(
                delivered,
                taken.is_some(),
                "lost: the pool handed over a result the caller never took"
            );
            drop(taken);
            drop(handoff);
            assert!(
                dropped.load(Ordering::Relaxed),
                "the result was never dropped"
            );
        });
    }

    #[test]
    fn loom_unblock_abandon_the_result_goes_to_exactly_one_side() {
        cancelled_caller(false);
    }

    /// The deliberate mutation: a caller that marks the call abandoned
    /// without checking whether it is done loses a finished result.
    #[test]
    #[should_panic(expected = "lost")]
    fn loom_unblock_abandon_blind_abandoning_loses_a_result() {
        cancelled_caller(true);
    }

    #[test]
    fn loom_unblock_abandon_a_waiting_caller_is_woken() {
        ::loom::model(|| {
            let handoff = Arc::new(Handoff::new(current()));
            let pool = {
                let handoff = Arc::clone(&handoff);
                spawn(move || handoff.complete(Ok(7)))
            };
            let value = loop {
                if let Some(result) = handoff.take() {
                    break result.unwrap();
                }
                crate::loom::thread::wait();
            };
            assert_eq!(value, 7);
            assert!(pool.join().unwrap());
        });
    }
}
