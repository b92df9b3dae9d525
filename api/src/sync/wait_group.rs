//! `WaitGroup`: Go's `sync.WaitGroup`, for green threads and OS threads.
//!
//! The counter is an atomic; waiters queue in a [`WaitList`]. `done` that
//! brings the counter to zero takes the list lock *after* the decrement and
//! wakes everyone queued; a waiter checks the counter under the same lock
//! before queueing. So either the waiter's check comes after that lock (and
//! sees zero) or its push comes before it (and it is woken): no waiter
//! sleeps through the last `done`. A waiter's wait is a cancellation
//! point; a cancelled waiter withdraws, and returns normally if the last
//! `done` woke it first (the wake-all leaves nothing to pass on).

use std::fmt;
use std::time::{Duration, Instant};

use super::waitlist::{WaitList, Waited, Waiter, WAITING};
use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::loom::cancel::{self, Cancelled};

/// Wake reason: the counter reached zero.
const DONE: u32 = 1;

/// Waits for a collection of tasks to finish, as Go's `sync.WaitGroup`:
/// [`add`](WaitGroup::add) the number of tasks, have each call
/// [`done`](WaitGroup::done) when it finishes, and [`wait`](WaitGroup::wait)
/// until the count is back to zero. A `WaitGroup` can be reused once a
/// `wait` has returned.
///
/// # Examples
/// ```
/// use spool::sync::{Arc, WaitGroup};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let wg = Arc::new(WaitGroup::new());
/// let finished = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     wg.add(1);
///     let (wg, finished) = (wg.clone(), finished.clone());
///     spool::thread::spawn(move || {
///         finished.fetch_add(1, Ordering::SeqCst);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(finished.load(Ordering::SeqCst), 100);
/// ```
pub struct WaitGroup {
    count: AtomicUsize,
    waiters: WaitList,
}

impl WaitGroup {
    crate::loom::const_fn! {
        /// A wait group with a count of zero. Usable in a `static`.
        ///
        /// ```
        /// use spool::sync::WaitGroup;
        ///
        /// static STARTED: WaitGroup = WaitGroup::new();
        /// assert_eq!(STARTED.count(), 0);
        /// STARTED.wait(); // a zero count: returns at once
        /// ```
        pub fn new() -> WaitGroup {
            WaitGroup {
                count: AtomicUsize::new(0),
                waiters: WaitList::new(),
            }
        }
    }

    /// Adds `n` to the count of unfinished tasks.
    ///
    /// # Panics
    /// If the count would overflow `usize`.
    ///
    /// ```
    /// use spool::sync::{Arc, WaitGroup};
    ///
    /// let wg = Arc::new(WaitGroup::new());
    /// wg.add(3); // before spawning, as in Go
    /// for _ in 0..3 {
    ///     let wg = wg.clone();
    ///     spool::thread::spawn(move || wg.done());
    /// }
    /// wg.wait();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn add(&self, n: usize) {
        let before = self.count.fetch_add(n, Ordering::AcqRel);
        if before.checked_add(n).is_none() {
            self.count.fetch_sub(n, Ordering::AcqRel);
            panic!("spool::sync::WaitGroup::add: the count overflows usize");
        }
    }

    /// Marks one task finished; when the count reaches zero every waiter
    /// wakes.
    ///
    /// # Panics
    /// If the count is already zero (more `done`s than `add`s), as Go's
    /// panics on a negative counter: that is a bug in the caller.
    ///
    /// ```
    /// let wg = spool::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// // One more `done` than `add`s panics, as Go's does.
    /// assert!(std::panic::catch_unwind(|| wg.done()).is_err());
    /// ```
    pub fn done(&self) {
        let update = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        match update {
            Err(_) => panic!("spool::sync::WaitGroup::done: called more times than add"),
            Ok(1) => {
                let woken = self.waiters.lock().wake_all(DONE);
                woken.into_iter().for_each(|w| w.unpark());
            }
            Ok(_) => {}
        }
    }

    /// The number of unfinished tasks.
    ///
    /// ```
    /// let wg = spool::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.done();
    /// assert_eq!(wg.count(), 1);
    /// ```
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until the count is zero.
    ///
    /// # Cancellation
    /// A cancellation point when it must wait: a cancelled thread unwinds
    /// with [`Cancelled`](crate::cancel::Cancelled), unless the count
    /// reached zero first (then it returns, and the cancellation is raised
    /// at the next cancellation point). A thread already unwinding waits as
    /// usual (the masked wait), as `join` does: returning early would break
    /// the promise that the tasks have finished.
    ///
    /// ```
    /// use spool::sync::WaitGroup;
    /// use std::time::Duration;
    ///
    /// let wg = WaitGroup::new();
    /// wg.add(1); // never done
    /// assert!(spool::time::timeout(Duration::from_millis(5), || wg.wait()).is_err());
    /// ```
    #[track_caller]
    pub fn wait(&self) {
        if let Err(cancelled) = self.wait_until(None, true) {
            cancel::raise(cancelled);
        }
    }

    /// Waits until the count is zero or `timeout` has passed; `true` if the
    /// count reached zero.
    ///
    /// # Cancellation
    /// A cancellation point, as [`wait`](WaitGroup::wait); a thread already
    /// unwinding fails fast with `false` instead of waiting.
    ///
    /// ```
    /// use spool::sync::WaitGroup;
    /// use std::time::Duration;
    ///
    /// let wg = WaitGroup::new();
    /// wg.add(1);
    /// assert!(!wg.wait_timeout(Duration::from_millis(1)));
    /// wg.done();
    /// assert!(wg.wait_timeout(Duration::from_millis(1)));
    /// ```
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return self.count() == 0;
        }
        match self.wait_until(Instant::now().checked_add(timeout), false) {
            Ok(done) => done,
            Err(cancelled) => cancel::raise(cancelled),
        }
    }

    /// Waits until the count is zero or `deadline` (`None`: none); a
    /// cancellation point. `Ok(false)` on timeout, and under rule R1
    /// unless `block_while_unwinding` (then it goes on waiting, masked).
    #[track_caller]
    fn wait_until(
        &self,
        deadline: Option<Instant>,
        block_while_unwinding: bool,
    ) -> Result<bool, Cancelled> {
        if self.count() == 0 {
            return Ok(true);
        }
        let waiter = Waiter::new(0, Instant::now());
        {
            let mut list = self.waiters.lock();
            if self.count() == 0 {
                return Ok(true);
            }
            list.push_back(waiter.clone());
        }
        crate::loom::note_wait(spool_runtime::trace::WaitReason::WaitGroup(
            crate::loom::object_id(self),
        ));
        let failed = match waiter.wait_cancellable(deadline) {
            Waited::Woken(reason) => return Ok(reason == DONE),
            Waited::TimedOut => None,
            Waited::Cancelled(cancelled) => Some(cancelled),
            Waited::Unwinding if block_while_unwinding => match waiter.wait_until(deadline) {
                WAITING => None,
                reason => return Ok(reason == DONE),
            },
            Waited::Unwinding => None,
        };
        // Leave the list, unless we were woken meanwhile: then the wait
        // completed, and that wins over a late cancellation (rule R2).
        match self.waiters.withdraw(&waiter) {
            WAITING => match failed {
                Some(cancelled) => Err(cancelled),
                None => Ok(false),
            },
            reason => Ok(reason == DONE),
        }
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}
