//! [`Once`]: one-time initialisation, parking green threads that wait.
//!
//! # Algorithm
//! `state` is `INCOMPLETE`, `RUNNING`, `COMPLETE` or `POISONED`. The thread
//! that wins `CAS(INCOMPLETE|POISONED → RUNNING)` runs the closure; on the
//! way out (normally or unwinding) a guard stores `COMPLETE` or `POISONED`
//! (`Release`) and then, under the wait list's lock, wakes every waiter.
//! A thread that finds `RUNNING` takes the list lock, re-checks `state`
//! and only then enqueues and parks; when woken it looks at `state` again.
//! *No lost wakeup:* the finisher stores `state` before taking the list
//! lock, so a waiter whose critical section comes after the finisher's
//! sees the new state and does not wait, and one whose section comes
//! before is in the list the finisher drains.
//! *Orderings:* `Acquire` loads of `state` (and the waiter's `Acquire` of
//! its wake reason) pair with the finisher's `Release` store, so whatever
//! the closure wrote is visible to every thread that sees `COMPLETE`.
//!
//! *Cancellation.* A thread that waits for the running closure parks in a
//! cancellation point (only then: the completed fast path is untouched). A
//! cancelled waiter withdraws; if the finisher woke it first it returns
//! normally (rule R2; the finisher wakes every waiter, so there is nothing
//! to pass on); a thread already unwinding waits as usual (rule R1). A
//! closure that a *cancellation* unwinds does not poison the `Once`: the
//! initialisation did not happen, so the state goes back to what it was
//! (`INCOMPLETE`, or `POISONED` if an earlier run panicked) and the next
//! caller runs its own closure. Only a panic poisons.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::waitlist::{WaitList, Waited, Waiter, WAITING};
use crate::loom::cancel;

const INCOMPLETE: u32 = 0;
const RUNNING: u32 = 1;
const COMPLETE: u32 = 2;
const POISONED: u32 = 3;

/// Wake reason: the running closure finished (or panicked).
const DONE: u32 = 1;

/// A synchronisation primitive to run a one-time initialisation, like
/// [`std::sync::Once`]. Threads that arrive while the closure runs park
/// (green threads switch, OS threads block) until it has finished.
///
/// ```
/// use spool::sync::Once;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static INIT: Once = Once::new();
/// static VALUE: AtomicU32 = AtomicU32::new(0);
/// INIT.call_once(|| VALUE.store(42, Ordering::Relaxed));
/// INIT.call_once(|| VALUE.store(0, Ordering::Relaxed)); // does not run
/// assert_eq!(VALUE.load(Ordering::Relaxed), 42);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    state: AtomicU32,
    waiters: WaitList,
}

/// The state handed to [`Once::call_once_force`]'s closure: whether an
/// earlier closure panicked.
///
/// ```
/// let once = spool::sync::Once::new();
/// once.call_once_force(|state| assert!(!state.is_poisoned()));
/// ```
#[derive(Debug)]
pub struct OnceState {
    poisoned: bool,
}

/// Initialiser of a static [`Once`], as std's deprecated `ONCE_INIT`.
///
/// ```
/// # #![allow(deprecated)]
/// static O: spool::sync::Once = spool::sync::ONCE_INIT;
/// O.call_once(|| {});
/// ```
#[deprecated(note = "the `Once::new()` function is now preferred")]
#[allow(clippy::declare_interior_mutable_const)] // std declares it so too
#[cfg(not(loom))] // `Once::new` is not `const` under loom (`crate::loom`)
pub const ONCE_INIT: Once = Once::new();

impl OnceState {
    /// Whether the `Once` was poisoned before this call (an earlier
    /// closure panicked).
    ///
    /// ```
    /// use spool::sync::Once;
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    /// let once = Once::new();
    /// let _ = catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("fail"))));
    /// once.call_once_force(|state| assert!(state.is_poisoned()));
    /// assert!(once.is_completed());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

impl Once {
    crate::loom::const_fn! {
        /// Creates a new `Once`; `const`, so it can be a `static`.
        ///
        /// ```
        /// static START: spool::sync::Once = spool::sync::Once::new();
        /// assert!(!START.is_completed());
        /// ```
        #[must_use]
        pub fn new() -> Once {
            Once {
                state: AtomicU32::new(INCOMPLETE),
                waiters: WaitList::new(),
            }
        }
    }

    /// Runs `f` if no closure has completed on this `Once` yet; exactly one
    /// of the concurrent callers runs it and the others park until it has
    /// finished. Panics if an earlier closure panicked (the `Once` is
    /// poisoned), as std.
    ///
    /// # Cancellation
    /// A caller that parks (another thread's closure is running) waits in a
    /// cancellation point: if cancelled it unwinds with
    /// [`Cancelled`](crate::cancel::Cancelled) unless the closure finished
    /// first; a thread already unwinding waits as usual. If a cancellation
    /// unwinds `f` itself, the `Once` is not poisoned (a cancellation is
    /// not a panic): it stays incomplete, and the next caller runs its
    /// closure.
    ///
    /// ```
    /// use spool::sync::{Arc, Once};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let once = Arc::new(Once::new());
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let threads: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let (once, runs) = (once.clone(), runs.clone());
    ///         spool::thread::spawn(move || once.call_once(|| {
    ///             runs.fetch_add(1, Ordering::Relaxed);
    ///         }))
    ///     })
    ///     .collect();
    /// for t in threads {
    ///     t.join().unwrap();
    /// }
    /// assert_eq!(runs.load(Ordering::Relaxed), 1);
    /// ```
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        self.call(false, &mut |_| {
            if let Some(f) = f.take() {
                f();
            }
        });
    }

    /// As [`call_once`](Once::call_once), but also runs `f` when the `Once`
    /// is poisoned, telling it so through [`OnceState`]; if `f` returns, the
    /// `Once` is complete.
    ///
    /// ```
    /// use spool::sync::Once;
    /// let once = Once::new();
    /// once.call_once_force(|state| assert!(!state.is_poisoned()));
    /// once.call_once_force(|_| unreachable!());
    /// ```
    #[track_caller]
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        self.call(true, &mut |state| {
            if let Some(f) = f.take() {
                f(state);
            }
        });
    }

    /// Whether a closure has completed (`false` while one runs, and when
    /// the `Once` is poisoned).
    ///
    /// ```
    /// let once = spool::sync::Once::new();
    /// assert!(!once.is_completed());
    /// once.call_once(|| {});
    /// assert!(once.is_completed());
    /// ```
    #[inline]
    pub fn is_completed(&self) -> bool {
        // `Acquire`: see "Orderings".
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    /// Parks until a closure has completed on this `Once` (run by another
    /// thread). Panics if the `Once` is or becomes poisoned.
    ///
    /// # Cancellation
    /// A cancellation point when it parks, as for
    /// [`call_once`](Once::call_once).
    ///
    /// ```
    /// use spool::sync::{Arc, Once};
    /// let once = Arc::new(Once::new());
    /// let once2 = Arc::clone(&once);
    /// let waiter = spool::thread::spawn(move || once2.wait());
    /// once.call_once(|| {});
    /// waiter.join().unwrap();
    /// ```
    #[track_caller]
    pub fn wait(&self) {
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                POISONED => panic_poisoned(),
                _ => self.park_while(|s| s == INCOMPLETE || s == RUNNING),
            }
        }
    }

    /// Parks until a closure has completed, or until the `Once` is
    /// poisoned (then returns without panicking). A cancellation point when
    /// it parks, as [`wait`](Once::wait).
    ///
    /// ```
    /// let once = spool::sync::Once::new();
    /// once.call_once(|| {});
    /// once.wait_force();
    /// ```
    #[track_caller]
    pub fn wait_force(&self) {
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE | POISONED => return,
                _ => self.park_while(|s| s == INCOMPLETE || s == RUNNING),
            }
        }
    }

    /// Parks until a closure has completed, waiting through poisoned
    /// runs (for `OnceLock::wait`).
    #[track_caller]
    pub(crate) fn wait_complete(&self) {
        while !self.is_completed() {
            self.park_while(|s| s != COMPLETE);
        }
    }

    #[cold]
    #[track_caller]
    fn call(&self, ignore_poison: bool, f: &mut dyn FnMut(&OnceState)) {
        loop {
            let state = self.state.load(Ordering::Acquire);
            match state {
                COMPLETE => return,
                POISONED if !ignore_poison => panic_poisoned(),
                INCOMPLETE | POISONED => {
                    // `Acquire` on success: a poisoned run's partial writes
                    // are visible to the retry.
                    if self
                        .state
                        .compare_exchange(state, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    let finish = Finish {
                        once: self,
                        outcome: POISONED,
                        before: state,
                    };
                    f(&OnceState {
                        poisoned: state == POISONED,
                    });
                    let mut finish = finish;
                    finish.outcome = COMPLETE;
                    return; // `finish` publishes and wakes
                }
                _ => self.park_while(|s| s == RUNNING),
            }
        }
    }

    /// Enqueues and parks if `state` still satisfies `blocked` under the
    /// list lock (see "No lost wakeup"); a cancellation point (see
    /// "Cancellation"). The caller looks at `state` again.
    #[track_caller]
    fn park_while(&self, blocked: impl Fn(u32) -> bool) {
        let waiter = Waiter::new(0, Instant::now());
        {
            let mut list = self.waiters.lock();
            if !blocked(self.state.load(Ordering::Acquire)) {
                return;
            }
            list.push_back(waiter.clone());
        }
        crate::loom::note_wait(spool_runtime::trace::WaitReason::Once(
            crate::loom::object_id(self),
        ));
        match waiter.wait_cancellable(None) {
            Waited::Woken(_) => {}
            Waited::Cancelled(cancelled) => {
                if self.waiters.withdraw(&waiter) == WAITING {
                    cancel::raise(cancelled);
                }
                // Woken before we left: the run finished (rule R2).
            }
            // Rule R1: wait as usual.
            Waited::Unwinding => {
                waiter.wait();
            }
            Waited::TimedOut => unreachable!("a wait without a deadline timed out"),
        }
    }
}

/// Ends a run: stores its outcome and wakes every waiter, also when the
/// closure unwinds (then the outcome stays `POISONED` for a panic, and is
/// the state before the run for a cancellation: see "Cancellation").
struct Finish<'a> {
    once: &'a Once,
    outcome: u32,
    /// The state the run started from (`INCOMPLETE` or `POISONED`).
    before: u32,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let outcome = if self.outcome == POISONED && cancel::unwinding_from_cancel() {
            self.before
        } else {
            self.outcome
        };
        // `Release`: publishes the closure's writes (see "Orderings").
        self.once.state.store(outcome, Ordering::Release);
        let woken = self.once.waiters.lock().wake_all(DONE);
        for woken in woken {
            woken.unpark();
        }
    }
}

#[cold]
#[track_caller]
fn panic_poisoned() -> ! {
    panic!("Once instance has previously been poisoned");
}

impl Default for Once {
    /// A new, incomplete `Once`.
    ///
    /// ```
    /// let once: spool::sync::Once = Default::default();
    /// assert!(!once.is_completed());
    /// ```
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").finish_non_exhaustive()
    }
}
