//! `Semaphore`: a counted set of permits, acquired with an RAII guard.
//!
//! # Protocol
//! The permit count is an atomic; a fast-path `acquire` takes a permit with
//! a compare-exchange. Waiters queue FIFO in a [`WaitList`]. A release
//! takes the list lock and, if a waiter is queued, hands its permit straight
//! to the head waiter (wake reason [`GRANTED`]) without ever adding it to the
//! count; only with no waiter queued does it add the permit to the count.
//! So "waiters queued ⇒ count is 0" holds whenever the list lock is held,
//! and a waiter that re-checks the count under the lock before queueing
//! (the wait list's step 1) cannot miss a release: the release either came
//! before its check (it sees the permit) or takes the lock after its push
//! (it finds the waiter). Handing permits over in FIFO order means no
//! waiter starves behind later arrivals.
//!
//! *Cancellation.* A waiter that times out or is cancelled withdraws from
//! the list (step 4 in `waitlist.rs`); if a release handed it a permit
//! first, the permit is its own and the call returns it (rule R2: the
//! cancellation is raised at the next cancellation point). So a permit is
//! never lost to a cancelled waiter: it either returns it to its caller or
//! was never given one.

use std::fmt;
use std::time::{Duration, Instant};

use super::waitlist::{WaitList, Waited, Waiter, WAITING};
use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::loom::cancel::{self, Cancelled};

/// Wake reason: the releaser handed this waiter a permit.
const GRANTED: u32 = 1;

/// Permits beyond this are not counted (`add_permits` saturates here).
const MAX_PERMITS: usize = usize::MAX >> 4;

/// Why a wait for a permit ended without one.
#[derive(Debug)]
enum NoPermit {
    TimedOut,
    Cancelled(Cancelled),
    /// Cancelled while already unwinding (rule R1).
    Unwinding,
}

/// A counting semaphore for green threads and OS threads alike.
///
/// [`acquire`](Semaphore::acquire) parks the calling green thread (not its
/// worker) until a permit is free and returns a [`SemaphorePermit`] that
/// gives the permit back when dropped. Waiters are served in arrival order.
///
/// # Examples
/// Limit how many green threads use a resource at once:
/// ```
/// use spool::sync::{Arc, Semaphore};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let slots = Arc::new(Semaphore::new(3));
/// let inside = Arc::new(AtomicUsize::new(0));
/// let handles: Vec<_> = (0..20)
///     .map(|_| {
///         let (slots, inside) = (slots.clone(), inside.clone());
///         spool::thread::spawn(move || {
///             let _permit = slots.acquire();
///             assert!(inside.fetch_add(1, Ordering::SeqCst) < 3);
///             spool::thread::yield_now();
///             inside.fetch_sub(1, Ordering::SeqCst);
///         })
///     })
///     .collect();
/// handles.into_iter().for_each(|h| h.join().unwrap());
/// assert_eq!(slots.available_permits(), 3);
/// ```
pub struct Semaphore {
    permits: AtomicUsize,
    waiters: WaitList,
}

/// A permit of a [`Semaphore`]; dropping it gives the permit back.
///
/// ```
/// use spool::sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// {
///     let _permit = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// } // dropped: given back
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    crate::loom::const_fn! {
        /// A semaphore with `permits` permits (saturating at `usize::MAX >>
        /// 4`). Usable in a `static`.
        ///
        /// ```
        /// use spool::sync::Semaphore;
        ///
        /// // At most 8 concurrent connections, from a `static`.
        /// static CONNECTIONS: Semaphore = Semaphore::new(8);
        /// let _permit = CONNECTIONS.acquire();
        /// assert_eq!(CONNECTIONS.available_permits(), 7);
        /// ```
        pub fn new(permits: usize) -> Semaphore {
            Semaphore {
                permits: AtomicUsize::new(if permits > MAX_PERMITS { MAX_PERMITS } else { permits }),
                waiters: WaitList::new(),
            }
        }
    }

    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Cancellation
    /// A cancellation point when it must wait: a cancelled thread unwinds
    /// with [`Cancelled`](crate::cancel::Cancelled) without a permit,
    /// unless one was handed to it first (then it returns it, and the
    /// cancellation is raised at the next cancellation point: no permit is
    /// lost). A thread already unwinding waits as usual (the masked wait),
    /// as for a lock.
    ///
    /// ```
    /// use spool::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(0);
    /// // Nobody releases a permit: the timeout cancels the wait.
    /// assert!(spool::time::timeout(Duration::from_millis(5), || sem.acquire().forget()).is_err());
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        match self.acquire_until(None, true) {
            Ok(permit) => permit,
            Err(NoPermit::Cancelled(cancelled)) => cancel::raise(cancelled),
            Err(other) => unreachable!("an unbounded, blocking acquire failed: {other:?}"),
        }
    }

    /// Takes a permit if one is free right now.
    ///
    /// ```
    /// let sem = spool::sync::Semaphore::new(1);
    /// let held = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none()); // never waits
    /// drop(held);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        // `then`, not `then_some`: a permit built eagerly and dropped on
        // failure would release a permit nobody took.
        self.try_take().then(|| SemaphorePermit { semaphore: self })
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none was free
    /// in time. A zero timeout is [`try_acquire`](Self::try_acquire); a
    /// timeout too large to express waits forever.
    ///
    /// # Cancellation
    /// A cancellation point when it must wait, as
    /// [`acquire`](Self::acquire); a thread already unwinding fails fast
    /// with `None` instead of waiting.
    ///
    /// ```
    /// use spool::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(1);
    /// let first = sem.acquire_timeout(Duration::from_millis(1));
    /// assert!(first.is_some());
    /// assert!(sem.acquire_timeout(Duration::from_millis(1)).is_none());
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        if let Some(permit) = self.try_acquire() {
            return Some(permit);
        }
        if timeout.is_zero() {
            return None;
        }
        match self.acquire_until(Instant::now().checked_add(timeout), false) {
            Ok(permit) => Some(permit),
            Err(NoPermit::Cancelled(cancelled)) => cancel::raise(cancelled),
            Err(NoPermit::TimedOut | NoPermit::Unwinding) => None,
        }
    }

    /// The number of permits free right now.
    ///
    /// ```
    /// let sem = spool::sync::Semaphore::new(2);
    /// let _one = sem.acquire();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.load(Ordering::Acquire)
    }

    /// Adds `n` permits (waking up to `n` waiters), as if `n` permits had
    /// been released. The count saturates at `usize::MAX >> 4`.
    ///
    /// ```
    /// use spool::sync::{Arc, Semaphore};
    ///
    /// let gate = Arc::new(Semaphore::new(0));
    /// let gate2 = gate.clone();
    /// let waiter = spool::thread::spawn(move || gate2.acquire().forget());
    /// gate.add_permits(1); // wakes the waiter
    /// waiter.join().unwrap();
    /// assert_eq!(gate.available_permits(), 0);
    /// ```
    pub fn add_permits(&self, n: usize) {
        for _ in 0..n {
            if !self.release_one() {
                break;
            }
        }
    }

    fn try_take(&self) -> bool {
        let mut current = self.permits.load(Ordering::Relaxed);
        while current > 0 {
            match self.permits.compare_exchange_weak(
                current,
                current - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Takes a permit, waiting until `deadline` (`None`: none) at most; a
    /// cancellation point. Under rule R1 it goes on waiting (masked) if
    /// `block_while_unwinding`, else fails with `Unwinding`.
    #[track_caller]
    fn acquire_until(
        &self,
        deadline: Option<Instant>,
        block_while_unwinding: bool,
    ) -> Result<SemaphorePermit<'_>, NoPermit> {
        let permit = || SemaphorePermit { semaphore: self };
        if self.try_take() {
            return Ok(permit());
        }
        let waiter = Waiter::new(0, Instant::now());
        {
            let mut list = self.waiters.lock();
            // Step 1 of the wait list: re-check under the lock. Queued
            // waiters imply a zero count, so a free permit here is ours.
            if self.try_take() {
                return Ok(permit());
            }
            list.push_back(waiter.clone());
        }
        crate::loom::note_wait(spool_runtime::trace::WaitReason::Semaphore(
            crate::loom::object_id(self),
        ));
        let failed = match waiter.wait_cancellable(deadline) {
            // `GRANTED` is the only wake reason.
            Waited::Woken(_) => return Ok(permit()),
            Waited::TimedOut => NoPermit::TimedOut,
            Waited::Cancelled(cancelled) => NoPermit::Cancelled(cancelled),
            Waited::Unwinding if block_while_unwinding => match waiter.wait_until(deadline) {
                WAITING => NoPermit::TimedOut,
                _ => return Ok(permit()),
            },
            Waited::Unwinding => NoPermit::Unwinding,
        };
        // Leave the list, unless a permit was handed to us meanwhile: then
        // it is ours (rule R2), and returning it loses nothing.
        if self.waiters.withdraw(&waiter) == GRANTED {
            return Ok(permit());
        }
        Err(failed)
    }

    /// Gives one permit back: to the head waiter if any, else to the count.
    /// `false` if the count is saturated.
    fn release_one(&self) -> bool {
        let woken = {
            let mut list = self.waiters.lock();
            match list.wake_front(GRANTED) {
                Some(woken) => woken,
                None => {
                    let current = self.permits.load(Ordering::Relaxed);
                    if current >= MAX_PERMITS {
                        return false;
                    }
                    self.permits.fetch_add(1, Ordering::Release);
                    return true;
                }
            }
        };
        woken.unpark();
        true
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good: the semaphore has one permit fewer.
    ///
    /// ```
    /// let sem = spool::sync::Semaphore::new(3);
    /// sem.acquire().forget(); // one permit fewer, for good
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.release_one();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Exhaustive models of the acquire/release hand-over. Loom reports a
    //! thread left parked with nobody to unpark it as a deadlock, so "no
    //! lost wakeup" needs no assertion of its own.
    use super::*;
    use ::loom::sync::atomic::AtomicUsize as Inside;
    use ::loom::sync::Arc;
    use ::loom::thread;

    /// `threads` threads each take one of `permits` permits, check that no
    /// more than `permits` are inside, and give it back; afterwards every
    /// permit is free again and nobody is queued.
    fn hand_over(threads: usize, permits: usize) {
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let sem = Arc::new(Semaphore::new(permits));
            let inside = Arc::new(Inside::new(0));
            let run = move |sem: &Semaphore, inside: &Inside| {
                let _permit = sem.acquire();
                assert!(inside.fetch_add(1, Ordering::Relaxed) < permits);
                thread::yield_now();
                inside.fetch_sub(1, Ordering::Relaxed);
            };
            let others: Vec<_> = (1..threads)
                .map(|_| {
                    let (sem, inside) = (sem.clone(), inside.clone());
                    thread::spawn(move || run(&sem, &inside))
                })
                .collect();
            run(&sem, &inside);
            for other in others {
                other.join().unwrap();
            }
            assert_eq!(sem.available_permits(), permits);
            assert!(sem.waiters.lock().is_empty());
        });
    }

    #[test]
    fn loom_semaphore_one_permit_two_threads() {
        hand_over(2, 1);
    }

    #[test]
    fn loom_semaphore_one_permit_three_threads() {
        hand_over(3, 1);
    }

    /// A release racing the cancel of the waiter it hands its permit to
    /// (the wait list's withdrawal against a waker's pop, with the waiter
    /// woken by the cancel, by the release, or both): the waiter either
    /// returns the permit (rule R2) or leaves without it, and then the
    /// permit is in the count. A permit handed to a waiter that then
    /// reported a cancellation would be lost: the count stays 0.
    #[test]
    fn a_permit_racing_a_cancel_is_not_lost() {
        ::loom::model(|| {
            let sem = Arc::new(Semaphore::new(0));
            let canceller = crate::loom::cancel::Canceller::new();
            let waiter = {
                let (sem, canceller) = (sem.clone(), canceller.clone());
                thread::spawn(move || {
                    let _installed = canceller.install();
                    match sem.acquire_until(None, true) {
                        Ok(permit) => {
                            permit.forget();
                            true
                        }
                        Err(NoPermit::Cancelled(_)) => false,
                        Err(other) => panic!("an unbounded acquire failed: {other:?}"),
                    }
                })
            };
            let releaser = {
                let sem = sem.clone();
                thread::spawn(move || sem.add_permits(1))
            };
            canceller.cancel();
            let kept = waiter.join().unwrap();
            releaser.join().unwrap();
            assert_eq!(
                sem.available_permits(),
                usize::from(!kept),
                "a permit was lost"
            );
            assert!(sem.waiters.lock().is_empty());
        });
    }
}
