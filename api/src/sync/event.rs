//! `Event`: Curio's event — a flag that threads can wait to see set.
//!
//! Same shape as `WaitGroup`: `set` stores the flag and then takes the
//! wait-list lock to wake everyone queued; a waiter checks the flag under
//! that lock before queueing, so it cannot sleep through a `set`. A
//! waiter's wait is a cancellation point, cancelled as in `wait_group.rs`.

use std::fmt;
use std::time::{Duration, Instant};

use super::waitlist::{WaitList, Waited, Waiter, WAITING};
use crate::loom::atomic::{AtomicBool, Ordering};
use crate::loom::cancel::{self, Cancelled};

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
        ///
        /// ```
        /// use spool::sync::Event;
        ///
        /// static SHUTDOWN: Event = Event::new();
        /// assert!(!SHUTDOWN.is_set());
        /// ```
        pub fn new() -> Event {
            Event {
                set: AtomicBool::new(false),
                waiters: WaitList::new(),
            }
        }
    }

    /// Sets the event and wakes every waiter.
    ///
    /// ```
    /// use spool::sync::{Arc, Event};
    ///
    /// let go = Arc::new(Event::new());
    /// let go2 = go.clone();
    /// let runner = spool::thread::spawn(move || go2.wait());
    /// go.set(); // wakes every waiter, and later waits return at once
    /// runner.join().unwrap();
    /// go.wait();
    /// ```
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
        let woken = self.waiters.lock().wake_all(SET);
        woken.into_iter().for_each(|w| w.unpark());
    }

    /// Clears the event: later waits wait for the next `set`.
    ///
    /// ```
    /// use spool::sync::Event;
    /// use std::time::Duration;
    ///
    /// let e = Event::new();
    /// e.set();
    /// e.clear(); // waits wait again, for the next `set`
    /// assert!(!e.wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn clear(&self) {
        self.set.store(false, Ordering::Release);
    }

    /// Whether the event is set.
    ///
    /// ```
    /// let e = spool::sync::Event::new();
    /// assert!(!e.is_set());
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Waits until the event is set (returns at once if it is).
    ///
    /// # Cancellation
    /// A cancellation point when it must wait: a cancelled thread unwinds
    /// with [`Cancelled`](crate::cancel::Cancelled), unless the event was
    /// set first (then it returns, and the cancellation is raised at the
    /// next cancellation point). A thread already unwinding waits as usual
    /// (the masked wait): `wait` promises the event was set when it
    /// returns, so it cannot return early.
    ///
    /// ```
    /// use spool::sync::Event;
    /// use std::time::Duration;
    ///
    /// let never = Event::new();
    /// assert!(spool::time::timeout(Duration::from_millis(5), || never.wait()).is_err());
    /// ```
    #[track_caller]
    pub fn wait(&self) {
        if let Err(cancelled) = self.wait_until(None, true) {
            cancel::raise(cancelled);
        }
    }

    /// Waits until the event is set or `timeout` has passed; `true` if it
    /// was set.
    ///
    /// # Cancellation
    /// A cancellation point, as [`wait`](Event::wait); a thread already
    /// unwinding fails fast with `false` instead of waiting.
    ///
    /// ```
    /// use spool::sync::Event;
    /// use std::time::Duration;
    ///
    /// let event = Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_millis(1)));
    /// ```
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return self.is_set();
        }
        match self.wait_until(Instant::now().checked_add(timeout), false) {
            Ok(set) => set,
            Err(cancelled) => cancel::raise(cancelled),
        }
    }

    /// Waits until the event is set or `deadline` (`None`: none); a
    /// cancellation point. `Ok(false)` on timeout, and under rule R1
    /// unless `block_while_unwinding` (then it goes on waiting, masked).
    #[track_caller]
    fn wait_until(
        &self,
        deadline: Option<Instant>,
        block_while_unwinding: bool,
    ) -> Result<bool, Cancelled> {
        if self.is_set() {
            return Ok(true);
        }
        let waiter = Waiter::new(0, Instant::now());
        {
            let mut list = self.waiters.lock();
            if self.is_set() {
                return Ok(true);
            }
            list.push_back(waiter.clone());
        }
        crate::loom::note_wait(spool_runtime::trace::WaitReason::Event(
            crate::loom::object_id(self),
        ));
        let failed = match waiter.wait_cancellable(deadline) {
            Waited::Woken(reason) => return Ok(reason == SET),
            Waited::TimedOut => None,
            Waited::Cancelled(cancelled) => Some(cancelled),
            Waited::Unwinding if block_while_unwinding => match waiter.wait_until(deadline) {
                WAITING => None,
                reason => return Ok(reason == SET),
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
            reason => Ok(reason == SET),
        }
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
