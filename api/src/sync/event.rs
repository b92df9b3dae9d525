//! `Event`: Curio's event — a flag that threads can wait to see set.
//!
//! Same shape as `WaitGroup`: `set` stores the flag and then takes the
//! wait-list lock to wake everyone queued; a waiter checks the flag under
//! that lock before queueing, so it cannot sleep through a `set`.

use std::fmt;
use std::time::{Duration, Instant};

use super::waitlist::{WaitList, Waiter, WAITING};
use crate::loom::atomic::{AtomicBool, Ordering};

/// Wake reason: the event was set.
const SET: u32 = 1;

/// A flag that green threads and OS threads can wait on, as Curio's
/// `Event`: [`set`](Event::set) wakes every waiter and lets later waits
/// return at once until [`clear`](Event::clear).
///
/// # Examples
/// ```
/// use spool::sync::{Arc, Event};
///
/// let ready = Arc::new(Event::new());
/// let waiters: Vec<_> = (0..10)
///     .map(|_| {
///         let ready = ready.clone();
///         spool::thread::spawn(move || ready.wait())
///     })
///     .collect();
/// ready.set();
/// waiters.into_iter().for_each(|h| h.join().unwrap());
/// assert!(ready.is_set());
/// ```
pub struct Event {
    set: AtomicBool,
    waiters: WaitList,
}

impl Event {
    crate::loom::const_fn! {
        /// An event that is not set. Usable in a `static`.
        pub fn new() -> Event {
            Event {
                set: AtomicBool::new(false),
                waiters: WaitList::new(),
            }
        }
    }

    /// Sets the event and wakes every waiter.
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
        let woken = self.waiters.lock().wake_all(SET);
        woken.into_iter().for_each(|w| w.unpark());
    }

    /// Clears the event: later waits wait for the next `set`.
    pub fn clear(&self) {
        self.set.store(false, Ordering::Release);
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Waits until the event is set (returns at once if it is).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the event is set or `timeout` has passed; `true` if it
    /// was set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return self.is_set();
        }
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        let waiter = Waiter::new(0, Instant::now());
        {
            let mut list = self.waiters.lock();
            if self.is_set() {
                return true;
            }
            list.push_back(waiter.clone());
        }
        let mut reason = waiter.wait_until(deadline);
        if reason == WAITING {
            reason = self.waiters.cancel(&waiter);
        }
        reason == SET
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish_non_exhaustive()
    }
}
