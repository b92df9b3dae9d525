//! [`Condvar`]: std's condition variable, parking green threads.
//!
//! # Algorithm
//! A `Condvar` is just a [`WaitList`]. `wait` pushes a waiter *while still
//! holding the mutex*, then unlocks the mutex, parks until woken, and locks
//! the mutex again. `notify_one` pops the head waiter and wakes it;
//! `notify_all` pops them all. Notifications are not stored: a notify with
//! nobody waiting does nothing, exactly as std.
//!
//! *No lost wakeup.* A thread that changes the predicate does it under the
//! mutex, hence after the waiter released it, hence after the waiter's push
//! (which came before its unlock); the notify that follows (under the
//! mutex or after it) takes the list lock after that push and finds the
//! waiter. *Timeout racing a notify.* A waiter whose deadline passes
//! withdraws through [`WaitList::withdraw`]: if a `notify_one` popped it first,
//! it reports "not timed out" and keeps the notification, so a notify is
//! never lost to a timed-out waiter (see step 4 in `waitlist.rs`).
//!
//! *Cancellation.* Every wait is a cancellation point. A cancelled waiter
//! withdraws the same way; if a `notify_one` popped it first, the
//! notification is its own and the wait returns normally (rule R2: the
//! cancellation is raised at the next cancellation point), so a notify is
//! never lost to a cancelled waiter either. Either way the waiter takes
//! the mutex back — with `raw_lock_masked`, which a cancellation does not
//! interrupt — before it returns or unwinds, so the guard the unwind drops
//! owns the mutex, and since a cancellation is not a panic, dropping it
//! does not poison the mutex (`poison.rs`). Under rule R1 (cancelled while
//! already unwinding) `wait` and the timed waits return early; the
//! `_while` waits, whose contract is to return only once the condition is
//! false, go on waiting with the masked wait.

use std::fmt;
use std::sync::{LockResult, PoisonError};
use std::time::{Duration, Instant};

use spool_runtime::trace::WaitReason;

use super::mutex::MutexGuard;
use super::waitlist::{WaitList, Waited, Waiter, WAITING};
use crate::loom::cancel::{self, Cancelled};
use crate::loom::thread;

/// Wake reason of a notified waiter.
const NOTIFIED: u32 = 1;

/// How one wait on a condvar ended (the mutex is locked again in every
/// case).
pub(super) enum Outcome {
    Notified,
    TimedOut,
    /// Cancelled before a notification: withdrawn; the caller unwinds.
    Cancelled(Cancelled),
    /// Cancelled while already unwinding (rule R1): withdrawn; the caller
    /// returns early.
    Unwinding,
}

/// What a wait does when cancelled while already unwinding (rule R1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WhileUnwinding {
    /// Return early (a spurious wakeup, or a timeout for a timed wait).
    ReturnEarly,
    /// Go on waiting with the masked wait, until notified or timed out.
    Block,
}

/// A condition variable, like [`std::sync::Condvar`]: blocks a thread
/// until another notifies it, parking the waiting green thread (or OS
/// thread) instead of blocking its worker.
///
/// Use it with a [`Mutex`](super::Mutex) guarding the condition, and
/// re-check the condition after waking ([`Condvar::wait_while`] does it for
/// you).
///
/// ```
/// use spool::sync::{Arc, Condvar, Mutex};
/// use spool::thread;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = Arc::clone(&pair);
/// thread::spawn(move || {
///     let (lock, cvar) = &*pair2;
///     *lock.lock().unwrap() = true;
///     cvar.notify_one();
/// });
/// let (lock, cvar) = &*pair;
/// let mut started = lock.lock().unwrap();
/// while !*started {
///     started = cvar.wait(started).unwrap();
/// }
/// ```
pub struct Condvar {
    waiters: WaitList,
}

/// Whether a timed wait on a [`Condvar`] returned because its time ran out.
///
/// ```
/// use spool::sync::{Condvar, Mutex};
/// use std::time::Duration;
/// let (m, c) = (Mutex::new(()), Condvar::new());
/// let (_guard, result) = c.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(result.timed_out());
/// ```
#[derive(Debug, PartialEq, Eq, Copy, Clone)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because the timeout elapsed.
    ///
    /// ```
    /// use spool::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    /// let (m, c) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = c.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
    /// assert!(r.timed_out());
    /// ```
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    crate::loom::const_fn! {
        /// Creates a condition variable; `const`, so it can be a `static`.
        ///
        /// ```
        /// static READY: spool::sync::Condvar = spool::sync::Condvar::new();
        /// READY.notify_all(); // nobody waits: does nothing
        /// ```
        #[must_use]
        pub fn new() -> Condvar {
            Condvar {
                waiters: WaitList::new(),
            }
        }
    }

    /// Unlocks the guard's mutex and parks until notified, then locks it
    /// again. `Err` (with the guard inside) if the mutex is poisoned when
    /// re-locked. May return spuriously, as std's.
    ///
    /// # Cancellation
    /// A cancellation point: a cancelled thread takes the mutex back and
    /// unwinds with [`Cancelled`](crate::cancel::Cancelled), dropping the
    /// guard — which does not poison the mutex — unless it was notified
    /// first (then it returns normally, and the cancellation is raised at
    /// the next cancellation point: no notification is lost). A thread
    /// already unwinding returns early, as a spurious wakeup, with the mutex
    /// locked again (after letting other threads run, so a wait loop in a
    /// destructor still makes progress).
    ///
    /// ```
    /// use spool::sync::{Arc, Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let pair2 = Arc::clone(&pair);
    /// spool::thread::spawn(move || {
    ///     *pair2.0.lock().unwrap() = 1;
    ///     pair2.1.notify_one();
    /// });
    /// let mut n = pair.0.lock().unwrap();
    /// while *n == 0 {
    ///     n = pair.1.wait(n).unwrap();
    /// }
    /// assert_eq!(*n, 1);
    /// ```
    #[track_caller]
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let (guard, outcome) = self.wait_inner(guard, None, WhileUnwinding::ReturnEarly);
        if let Outcome::Cancelled(cancelled) = outcome {
            // The unwind drops the guard, which owns the mutex again.
            cancel::raise(cancelled);
        }
        poison_result(guard)
    }

    /// Waits while `condition` holds: returns (with the mutex locked) once
    /// it returns `false`, checking it first and after every wakeup.
    ///
    /// # Cancellation
    /// A cancellation point, as [`wait`](Condvar::wait). A thread already
    /// unwinding does not return early: its contract is to return only once
    /// `condition` is false, so it waits as usual (the masked wait).
    ///
    /// ```
    /// use spool::sync::{Arc, Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(true), Condvar::new()));
    /// let pair2 = Arc::clone(&pair);
    /// spool::thread::spawn(move || {
    ///     *pair2.0.lock().unwrap() = false;
    ///     pair2.1.notify_one();
    /// });
    /// let pending = pair.1.wait_while(pair.0.lock().unwrap(), |p| *p).unwrap();
    /// assert!(!*pending);
    /// ```
    #[track_caller]
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            let (relocked, outcome) = self.wait_inner(guard, None, WhileUnwinding::Block);
            guard = relocked;
            if let Outcome::Cancelled(cancelled) = outcome {
                cancel::raise(cancelled);
            }
            guard = poison_result(guard)?;
        }
        Ok(guard)
    }

    /// As [`wait`](Condvar::wait), but gives up after `dur`; the result
    /// says whether it timed out. A notification that races the timeout is
    /// never lost: the waiter then reports it was notified.
    ///
    /// # Cancellation
    /// A cancellation point, as [`wait`](Condvar::wait). A thread already
    /// unwinding returns early with the mutex locked again, reporting a
    /// timeout (unless it was notified).
    ///
    /// ```
    /// use spool::sync::{Condvar, Mutex};
    /// use std::time::{Duration, Instant};
    /// let (m, c) = (Mutex::new(()), Condvar::new());
    /// let start = Instant::now();
    /// let (_g, r) = c.wait_timeout(m.lock().unwrap(), Duration::from_millis(5)).unwrap();
    /// assert!(r.timed_out() && start.elapsed() >= Duration::from_millis(5));
    /// ```
    #[track_caller]
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        // A deadline past what an `Instant` can express waits forever.
        let deadline = Instant::now().checked_add(dur);
        let (guard, timed_out) = self.wait_timed(guard, deadline);
        match poison_result(guard) {
            Ok(guard) => Ok((guard, WaitTimeoutResult(timed_out))),
            Err(e) => Err(PoisonError::new((
                e.into_inner(),
                WaitTimeoutResult(timed_out),
            ))),
        }
    }

    /// Deprecated twin of [`wait_timeout`](Condvar::wait_timeout), kept as
    /// in std: returns the guard and whether it timed out. A cancellation
    /// point, as `wait_timeout`.
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// use spool::sync::{Condvar, Mutex};
    /// let (m, c) = (Mutex::new(()), Condvar::new());
    /// let (_g, timed_out) = c.wait_timeout_ms(m.lock().unwrap(), 1).unwrap();
    /// assert!(timed_out);
    /// ```
    #[deprecated(note = "replaced by `spool::sync::Condvar::wait_timeout`")]
    #[track_caller]
    pub fn wait_timeout_ms<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        ms: u32,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        let deadline = Instant::now().checked_add(Duration::from_millis(u64::from(ms)));
        let (guard, timed_out) = self.wait_timed(guard, deadline);
        match poison_result(guard) {
            Ok(guard) => Ok((guard, timed_out)),
            Err(e) => Err(PoisonError::new((e.into_inner(), timed_out))),
        }
    }

    /// Waits while `condition` holds, for at most `dur` in total. The
    /// result is `timed_out()` if the time ran out with the condition still
    /// true.
    ///
    /// # Cancellation
    /// A cancellation point, as [`wait`](Condvar::wait). A thread already
    /// unwinding returns early, reporting a timeout if the condition still
    /// holds.
    ///
    /// ```
    /// use spool::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    /// let (m, c) = (Mutex::new(0), Condvar::new());
    /// let (n, r) = c
    ///     .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(2), |n| *n == 0)
    ///     .unwrap();
    /// assert!(r.timed_out() && *n == 0);
    /// ```
    #[track_caller]
    pub fn wait_timeout_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = Instant::now().checked_add(dur);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            let (relocked, outcome) = self.wait_inner(guard, deadline, WhileUnwinding::ReturnEarly);
            let timed_out = match outcome {
                Outcome::Notified => false,
                Outcome::TimedOut | Outcome::Unwinding => true,
                Outcome::Cancelled(cancelled) => cancel::raise(cancelled),
            };
            // As std: a poisoned mutex ends the loop with this wait's result.
            guard = match poison_result(relocked) {
                Ok(guard) => guard,
                Err(e) => {
                    return Err(PoisonError::new((
                        e.into_inner(),
                        WaitTimeoutResult(timed_out),
                    )))
                }
            };
            if matches!(outcome, Outcome::Unwinding) {
                // Rule R1: fail fast, reporting a timeout unless the
                // condition came true meanwhile.
                let timed_out = condition(&mut *guard);
                return Ok((guard, WaitTimeoutResult(timed_out)));
            }
        }
    }

    /// Wakes one thread waiting on this condvar, if there is one (the one
    /// that has waited longest). Not stored if nobody waits.
    ///
    /// ```
    /// use spool::sync::{Arc, Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let pair2 = Arc::clone(&pair);
    /// let waiter = spool::thread::spawn(move || {
    ///     let _ready = pair2.1.wait_while(pair2.0.lock().unwrap(), |r| !*r).unwrap();
    /// });
    /// *pair.0.lock().unwrap() = true;
    /// pair.1.notify_one();
    /// waiter.join().unwrap();
    /// ```
    pub fn notify_one(&self) {
        let woken = self.waiters.lock().wake_front(NOTIFIED);
        if let Some(woken) = woken {
            woken.unpark();
        }
    }

    /// Wakes every thread waiting on this condvar.
    ///
    /// ```
    /// use spool::sync::{Arc, Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let pair = Arc::clone(&pair);
    ///         spool::thread::spawn(move || {
    ///             let _go = pair.1.wait_while(pair.0.lock().unwrap(), |go| !*go).unwrap();
    ///         })
    ///     })
    ///     .collect();
    /// *pair.0.lock().unwrap() = true;
    /// pair.1.notify_all();
    /// for w in waiters {
    ///     w.join().unwrap();
    /// }
    /// ```
    pub fn notify_all(&self) {
        let woken = self.waiters.lock().wake_all(NOTIFIED);
        for woken in woken {
            woken.unpark();
        }
    }

    /// One timed wait for `wait_timeout`: the guard and whether it timed
    /// out (also under rule R1); unwinds if cancelled.
    #[track_caller]
    fn wait_timed<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let (guard, outcome) = self.wait_inner(guard, deadline, WhileUnwinding::ReturnEarly);
        match outcome {
            Outcome::Notified => (guard, false),
            Outcome::TimedOut | Outcome::Unwinding => (guard, true),
            Outcome::Cancelled(cancelled) => cancel::raise(cancelled),
        }
    }

    /// The wait itself: enqueue, unlock, wait until notified, `deadline`
    /// (`None`: none) or a cancellation, lock again. The mutex is locked
    /// again whatever the outcome; the caller unwinds on `Cancelled`.
    #[track_caller]
    pub(super) fn wait_inner<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
        while_unwinding: WhileUnwinding,
    ) -> (MutexGuard<'a, T>, Outcome) {
        let reason = WaitReason::Condvar(crate::loom::object_id(self));
        self.wait_as(guard, deadline, while_unwinding, reason)
    }

    /// `wait_inner`, recording the wait as `reason` for thread dumps (a
    /// `Barrier` waits on its condvar as a barrier wait).
    #[track_caller]
    pub(super) fn wait_as<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
        while_unwinding: WhileUnwinding,
        reason: WaitReason,
    ) -> (MutexGuard<'a, T>, Outcome) {
        let mutex = MutexGuard::mutex(&guard);
        let waiter = Waiter::new(0, Instant::now());
        // Enqueue while still holding the mutex ("No lost wakeup").
        self.waiters.lock().push_back(waiter.clone());
        // The guard stays alive (it keeps its poison record, as std's does)
        // but is not used while the mutex is unlocked.
        mutex.raw_unlock();
        crate::loom::note_wait(reason);
        let outcome = match waiter.wait_cancellable(deadline) {
            Waited::Woken(_) => Outcome::Notified,
            Waited::TimedOut => self.withdraw(&waiter, Outcome::TimedOut),
            Waited::Cancelled(cancelled) => self.withdraw(&waiter, Outcome::Cancelled(cancelled)),
            Waited::Unwinding => match while_unwinding {
                WhileUnwinding::ReturnEarly => {
                    let outcome = self.withdraw(&waiter, Outcome::Unwinding);
                    // Let other threads run (and take the mutex) before we
                    // return early: a wait loop in a destructor then still
                    // makes progress instead of spinning. `yield_now` is a
                    // cancellation point that never unwinds a thread
                    // already unwinding (rule R1).
                    thread::yield_now();
                    outcome
                }
                WhileUnwinding::Block => match waiter.wait_until(deadline) {
                    WAITING => self.withdraw(&waiter, Outcome::TimedOut),
                    _ => Outcome::Notified,
                },
            },
        };
        mutex.raw_lock_masked();
        (guard, outcome)
    }

    /// Leaves the list after a timeout or a cancellation: `Notified` if a
    /// notify popped the waiter first (the notification is its own), else
    /// `otherwise`.
    fn withdraw(&self, waiter: &crate::loom::Arc<Waiter>, otherwise: Outcome) -> Outcome {
        if self.waiters.withdraw(waiter) == WAITING {
            otherwise
        } else {
            Outcome::Notified
        }
    }
}

/// `Ok(guard)`, or `Err` with the guard inside if its mutex is poisoned.
fn poison_result<T>(guard: MutexGuard<'_, T>) -> LockResult<MutexGuard<'_, T>> {
    if MutexGuard::mutex(&guard).is_poisoned() {
        Err(PoisonError::new(guard))
    } else {
        Ok(guard)
    }
}

impl Default for Condvar {
    /// A new condition variable.
    ///
    /// ```
    /// let c: spool::sync::Condvar = Default::default();
    /// c.notify_one();
    /// ```
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Exhaustive models of a condvar wait racing a notify.
    //! A waiter left parked with nobody to wake it is a loom deadlock.
    use super::*;
    use crate::sync::Mutex;
    use ::loom::sync::Arc;
    use ::loom::thread;

    /// `while !flag { wait }` against `flag = true; notify_one()`: the
    /// waiter's enqueue (under the mutex) races the notify.
    #[test]
    fn notify_one_is_not_missed() {
        ::loom::model(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let notifier = {
                let pair = pair.clone();
                thread::spawn(move || {
                    *pair.0.lock().unwrap() = true;
                    pair.1.notify_one();
                })
            };
            let mut ready = pair.0.lock().unwrap();
            while !*ready {
                ready = pair.1.wait(ready).unwrap();
            }
            drop(ready);
            notifier.join().unwrap();
            assert!(pair.1.waiters.lock().is_empty());
        });
    }

    /// A `wait_timeout` that times out (loom has no time: a zero timeout
    /// goes straight to the cancel path) races a `notify_one` meant for
    /// whoever waits, with a second, untimed waiter. If the notify popped
    /// the timed waiter, it must report "notified" (and then passes the
    /// notification on, as a waiter that no longer wants it would);
    /// reporting a timeout instead would swallow it and leave the second
    /// waiter parked forever.
    #[test]
    fn a_timed_out_waiter_does_not_swallow_notify_one() {
        // Three threads: bounded to 3 preemptions (a few seconds).
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let untimed = {
                let pair = pair.clone();
                thread::spawn(move || {
                    let mut ready = pair.0.lock().unwrap();
                    while !*ready {
                        ready = pair.1.wait(ready).unwrap();
                    }
                })
            };
            let notifier = {
                let pair = pair.clone();
                thread::spawn(move || {
                    *pair.0.lock().unwrap() = true;
                    pair.1.notify_one();
                })
            };
            let ready = pair.0.lock().unwrap();
            if *ready {
                drop(ready);
            } else {
                let (ready, result) = pair.1.wait_timeout(ready, Duration::ZERO).unwrap();
                drop(ready);
                if !result.timed_out() {
                    pair.1.notify_one();
                }
            }
            untimed.join().unwrap();
            notifier.join().unwrap();
            assert!(pair.1.waiters.lock().is_empty());
        });
    }

    /// Runs `f`, catching a modelled cancellation's unwind.
    fn catch_cancel<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
            if !payload.is::<crate::loom::cancel::Cancelled>() {
                std::panic::resume_unwind(payload);
            }
        })
    }

    /// Cancel vs notify on a wait list: two threads wait for a token, one
    /// of them cancellable; a `notify_one` for one token races the cancel.
    /// The cancelled waiter either takes the token (notified first: rule
    /// R2) or unwinds, and then the other waiter must be woken. A waiter
    /// that swallowed the notification and unwound would leave the other
    /// parked forever: a loom deadlock.
    #[test]
    fn notify_one_racing_a_cancel_is_not_lost() {
        // Three threads with a mutex: bounded to 2 preemptions (seconds).
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let pair = Arc::new((Mutex::new(0usize), Condvar::new()));
            let canceller = crate::loom::cancel::Canceller::new();
            let cancellable = {
                let (pair, canceller) = (pair.clone(), canceller.clone());
                thread::spawn(move || {
                    let _installed = canceller.install();
                    let (tokens, cvar) = &*pair;
                    // Its `lock` may be cancelled too (where it parks).
                    let Ok(locked) = catch_cancel(|| tokens.lock()) else {
                        return false;
                    };
                    let mut tokens = locked.unwrap();
                    while *tokens == 0 {
                        let (relocked, outcome) =
                            cvar.wait_inner(tokens, None, WhileUnwinding::Block);
                        tokens = relocked;
                        if let Outcome::Cancelled(_) = outcome {
                            return false;
                        }
                    }
                    *tokens -= 1;
                    true
                })
            };
            let other = {
                let pair = pair.clone();
                thread::spawn(move || {
                    let (tokens, cvar) = &*pair;
                    let mut tokens = cvar
                        .wait_while(tokens.lock().unwrap(), |t| *t == 0)
                        .unwrap();
                    *tokens -= 1;
                })
            };
            *pair.0.lock().unwrap() += 1;
            pair.1.notify_one();
            canceller.cancel();
            if cancellable.join().unwrap() {
                // It took the token: the other waiter needs one too.
                *pair.0.lock().unwrap() += 1;
                pair.1.notify_one();
            }
            other.join().unwrap();
            assert_eq!(*pair.0.lock().unwrap(), 0);
            assert!(pair.1.waiters.lock().is_empty());
        });
    }
}
