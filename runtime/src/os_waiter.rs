//! spool's own wait for plain OS threads: the counterpart of a green
//! thread's `WOKEN`/`WAITING` bits (see "Two tokens" in `park.rs`).
//!
//! A plain OS thread blocked in a spool lock, channel or `join` must not
//! use std's park token, which belongs to the user. Each OS thread known to
//! spool (`OsThread` in `lib.rs`) carries one `OsWaiter`: a three-state
//! word with a mutex and condition variable behind it for the slow path.
//!
//! | state     | meaning                                                    |
//! |-----------|------------------------------------------------------------|
//! | `EMPTY`   | no wake token; the thread is not blocked in `wait`          |
//! | `WOKEN`   | a wake token is present                                     |
//! | `WAITING` | the thread is (about to be) blocked on the condition variable |
//!
//! `wake` always swaps in `WOKEN` (a read-modify-write, so it releases the
//! waker's writes to the waiter's Acquire even when a token was already
//! there; the same reason as `ParkState::transition_to_notified`). If it
//! replaced `WAITING` it takes the mutex before notifying: the waiter moves
//! `EMPTY → WAITING` under that mutex and re-checks the state after every
//! return from the condition variable, so the notification cannot fall
//! between its check and its sleep.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

const EMPTY: u8 = 0;
const WOKEN: u8 = 1;
const WAITING: u8 = 2;

/// One OS thread's wait/wake pair.
pub(crate) struct OsWaiter {
    state: AtomicU8,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl OsWaiter {
    pub(crate) fn new() -> OsWaiter {
        OsWaiter {
            state: AtomicU8::new(EMPTY),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Blocks the calling OS thread (which must own this waiter) until a
    /// wake token is present, then consumes it; or until `deadline`.
    pub(crate) fn wait(&self, deadline: Option<Instant>) {
        // Acquire: pairs with the waker's swap, so its writes are visible.
        if self
            .state
            .compare_exchange(WOKEN, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let mut guard = crate::scheduler::lock(&self.lock);
        if self
            .state
            .compare_exchange(EMPTY, WAITING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // A wake arrived since the first check.
            self.state.swap(EMPTY, Ordering::Acquire);
            return;
        }
        loop {
            guard = match deadline {
                None => self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Timed out: leave EMPTY, consuming a wake that may
                        // have raced with the timeout (the caller re-checks
                        // its condition either way).
                        self.state.swap(EMPTY, Ordering::Acquire);
                        return;
                    }
                    self.condvar
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            if self
                .state
                .compare_exchange(WOKEN, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // Spurious condition-variable wakeup: still WAITING.
        }
    }

    /// Leaves a wake token; wakes the owner if it is blocked in `wait`.
    pub(crate) fn wake(&self) {
        if self.state.swap(WOKEN, Ordering::AcqRel) == WAITING {
            // Taking the lock orders this notification after the waiter's
            // move to WAITING and its entry into the condition variable.
            drop(crate::scheduler::lock(&self.lock));
            self.condvar.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_wake_before_the_wait_is_kept() {
        let waiter = OsWaiter::new();
        waiter.wake();
        waiter.wake();
        waiter.wait(None); // returns at once: one token
        let start = Instant::now();
        waiter.wait(Some(Instant::now() + Duration::from_millis(20)));
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "tokens added up"
        );
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let waiter = Arc::new(OsWaiter::new());
        for _ in 0..1_000 {
            let other = {
                let waiter = waiter.clone();
                std::thread::spawn(move || waiter.wake())
            };
            waiter.wait(None);
            other.join().unwrap();
        }
    }
}
