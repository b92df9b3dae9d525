//! `WaitGroup`: Go's `sync.WaitGroup`, for green threads and OS threads.
//!
//! The counter is an atomic; waiters queue in a [`WaitList`]. `done` that
//! brings the counter to zero takes the list lock *after* the decrement and
//! wakes everyone queued; a waiter checks the counter under the same lock
//! before queueing. So either the waiter's check comes after that lock (and
//! sees zero) or its push comes before it (and it is woken): no waiter
//! sleeps through the last `done`.

use std::fmt;
use std::time::{Duration, Instant};

use super::waitlist::{WaitList, Waiter, WAITING};
use crate::loom::atomic::{AtomicUsize, Ordering};

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
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until the count is zero.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the count is zero or `timeout` has passed; `true` if the
    /// count reached zero.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return self.count() == 0;
        }
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.count() == 0 {
            return true;
        }
        let waiter = Waiter::new(0, Instant::now());
        {
            let mut list = self.waiters.lock();
            if self.count() == 0 {
                return true;
            }
            list.push_back(waiter.clone());
        }
        let mut reason = waiter.wait_until(deadline);
        if reason == WAITING {
            reason = self.waiters.cancel(&waiter);
        }
        reason == DONE
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
