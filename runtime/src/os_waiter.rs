//! spool's own wait for plain OS threads: the counterpart of a green
//! thread's `WOKEN`/`WAITING`/`INTERRUPT`/`MASKED` bits (see "Two tokens"
//! and "Interrupts" in `park.rs`).
//!
//! A plain OS thread blocked in a spool lock, channel or `join` must not
//! use std's park token, which belongs to the user. Each OS thread known to
//! spool (`OsThread` in `lib.rs`) carries one `OsWaiter`: a word of bits
//! with a mutex and condition variable behind it for the slow path.
//!
//! | bit         | meaning                                                    |
//! |-------------|------------------------------------------------------------|
//! | `WOKEN`     | a wake token is present                                     |
//! | `WAITING`   | the thread is (about to be) blocked on the condition variable |
//! | `INTERRUPT` | a cancellation may be pending (see `cancel.rs`)             |
//! | `MASKED`    | the current wait is not a cancellation point                |
//! | `PARKING`   | the thread is in the user's `park` (std's park token)        |
//! | `POLLING`   | the thread is in `poll(2)` with its interrupt descriptor     |
//!
//! `wake` and `interrupt` are read-modify-writes (so they release the
//! caller's writes to the waiter's Acquire even when the bit was already
//! there; the same reason as `ParkState::transition_to_notified`). If the
//! waiter was `WAITING` (and, for `interrupt`, not `MASKED`) they take the
//! mutex before notifying: the waiter sets `WAITING` under that mutex and
//! re-checks the word after every return from the condition variable, so
//! the notification cannot fall between its check and its sleep.
//!
//! The user's `park` on an OS thread stays std's (`std::thread::park`), so
//! code mixing std's and spool's handles keeps working. An interrupt must
//! still end it: the parker sets `PARKING` and the interrupter sets
//! `INTERRUPT`, each with one read-modify-write of this word, so whichever
//! comes second sees the other: the parker does not park, or the
//! interrupter unparks it (which may leave std's token behind: one
//! spurious return of a later `park`, which std's contract allows).
//!
//! A socket wait on an OS thread blocks in `poll(2)` (`io_source.rs`),
//! which neither the condition variable nor std's token can end. The
//! thread polls an *interrupt descriptor* of its own alongside the socket
//! (an eventfd, made on first use and kept for the thread's life) and
//! marks itself `POLLING` around the `poll`; the same two-sided
//! read-modify-write argument as for `PARKING` makes an interrupter that
//! comes second make the descriptor readable, and a poller that comes
//! second not poll at all (see "Cancellation" in `io_source.rs`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use crate::io_source::InterruptFd;

const WOKEN: u8 = 1;
const WAITING: u8 = 2;
const INTERRUPT: u8 = 4;
const MASKED: u8 = 8;
const PARKING: u8 = 16;
const POLLING: u8 = 32;

/// One OS thread's wait/wake pair.
pub(crate) struct OsWaiter {
    state: AtomicU8,
    lock: Mutex<()>,
    condvar: Condvar,
    /// What an interrupt makes readable while the owner is `POLLING`;
    /// made on the first socket wait (`None`: it could not be made).
    poll_interrupt: OnceLock<Option<InterruptFd>>,
}

impl OsWaiter {
    pub(crate) fn new() -> OsWaiter {
        OsWaiter {
            state: AtomicU8::new(0),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
            poll_interrupt: OnceLock::new(),
        }
    }

    /// Tries to end the wait without blocking: consumes a wake token (and
    /// returns `true`), or returns `true` for an `interruptible` wait while
    /// `INTERRUPT` is set.
    fn ready(&self, interruptible: bool) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WOKEN != 0 {
                // Acquire: pairs with the waker's RMW, so its writes are
                // visible.
                match self.state.compare_exchange_weak(
                    state,
                    state & !(WOKEN | WAITING | MASKED),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(actual) => state = actual,
                }
            } else if interruptible && state & INTERRUPT != 0 {
                self.state.fetch_and(!(WAITING | MASKED), Ordering::Acquire);
                return true;
            } else {
                return false;
            }
        }
    }

    /// Blocks the calling OS thread (which must own this waiter) until a
    /// wake token is present, then consumes it; or until `deadline`; or, if
    /// `interruptible`, until `INTERRUPT` is set (which it leaves set).
    pub(crate) fn wait(&self, deadline: Option<Instant>, interruptible: bool) {
        if self.ready(interruptible) {
            return;
        }
        // Counted as asleep inside spool, for the deadlock check — unless
        // its deadline will wake it.
        let _waiting = deadline.is_none().then(crate::deadlock::OsWaiting::begin);
        let mut guard = crate::scheduler::lock(&self.lock);
        let mark = if interruptible {
            WAITING
        } else {
            WAITING | MASKED
        };
        self.state.fetch_or(mark, Ordering::Relaxed);
        loop {
            if self.ready(interruptible) {
                return;
            }
            guard = match deadline {
                None => self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Timed out: consume a wake that may have raced with
                        // the timeout (the caller re-checks its condition
                        // either way).
                        self.state
                            .fetch_and(!(WOKEN | WAITING | MASKED), Ordering::Acquire);
                        return;
                    }
                    self.condvar
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Leaves a wake token; wakes the owner if it is blocked in `wait`.
    pub(crate) fn wake(&self) {
        if self.state.fetch_or(WOKEN, Ordering::AcqRel) & WAITING != 0 {
            self.notify();
        }
    }

    /// Sets `INTERRUPT`; wakes the owner if it is blocked in a wait that is
    /// a cancellation point. Returns whether the owner is in the user's
    /// `park` (then the caller unparks it through std's handle).
    pub(crate) fn interrupt(&self) -> bool {
        let before = self.state.fetch_or(INTERRUPT, Ordering::AcqRel);
        if before & WAITING != 0 && before & MASKED == 0 {
            self.notify();
        }
        if before & POLLING != 0 {
            // Set before `POLLING` was (see `begin_poll`), so it is there.
            if let Some(Some(fd)) = self.poll_interrupt.get() {
                fd.signal();
            }
        }
        before & PARKING != 0
    }

    /// Takes the mutex, then notifies: the lock orders the notification
    /// after the waiter's move to `WAITING` and its entry into the
    /// condition variable.
    fn notify(&self) {
        drop(crate::scheduler::lock(&self.lock));
        self.condvar.notify_one();
    }

    /// Whether `INTERRUPT` is set (a plain load; see `take_interrupt`).
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.state.load(Ordering::Relaxed) & INTERRUPT != 0
    }

    /// Clears `INTERRUPT`, synchronizing with the interrupter's release.
    pub(crate) fn take_interrupt(&self) -> bool {
        self.state.fetch_and(!INTERRUPT, Ordering::AcqRel) & INTERRUPT != 0
    }

    /// Sets `INTERRUPT` on itself (the owner found itself cancelled).
    pub(crate) fn set_interrupt(&self) {
        self.state.fetch_or(INTERRUPT, Ordering::Relaxed);
    }

    /// The owner enters the user's `park`: returns `false` (and does not
    /// mark itself) if `INTERRUPT` is already set and `interruptible`.
    pub(crate) fn begin_park(&self, interruptible: bool) -> bool {
        let before = self.state.fetch_or(PARKING, Ordering::AcqRel);
        if interruptible && before & INTERRUPT != 0 {
            self.state.fetch_and(!PARKING, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The owner leaves the user's `park`.
    pub(crate) fn end_park(&self) {
        self.state.fetch_and(!PARKING, Ordering::Relaxed);
    }

    /// The owner's interrupt descriptor, made on first use; `None` if it
    /// cannot be made (no descriptor left), and then its socket waits
    /// notice an interrupt only when they next wake.
    pub(crate) fn interrupt_fd(&self) -> Option<&InterruptFd> {
        self.poll_interrupt
            .get_or_init(|| InterruptFd::new().ok())
            .as_ref()
    }

    /// The owner is about to wait in `poll(2)` with its interrupt
    /// descriptor (made already, by `interrupt_fd`): returns `false` (and
    /// does not mark itself) if `INTERRUPT` is already set.
    pub(crate) fn begin_poll(&self) -> bool {
        // AcqRel: pairs with `interrupt`'s RMW, whichever comes second
        // sees the other's bit (and the interrupter sees the descriptor
        // made before this).
        let before = self.state.fetch_or(POLLING, Ordering::AcqRel);
        if before & INTERRUPT != 0 {
            self.state.fetch_and(!POLLING, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The owner's `poll(2)` returned.
    pub(crate) fn end_poll(&self) {
        self.state.fetch_and(!POLLING, Ordering::Relaxed);
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
        waiter.wait(None, false); // returns at once: one token
        let start = Instant::now();
        waiter.wait(Some(Instant::now() + Duration::from_millis(20)), false);
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "tokens added up"
        );
    }

    #[test]
    fn an_interrupt_ends_an_interruptible_wait_and_stays_set() {
        let waiter = Arc::new(OsWaiter::new());
        for _ in 0..200 {
            let other = {
                let waiter = waiter.clone();
                std::thread::spawn(move || assert!(!waiter.interrupt()))
            };
            waiter.wait(None, true); // hangs if the interrupt is lost
            other.join().unwrap();
            assert!(waiter.interrupt_pending());
            // Still set: the next interruptible wait returns at once, and
            // leaves no wake token behind.
            waiter.wait(None, true);
            assert!(waiter.take_interrupt());
            assert!(!waiter.interrupt_pending());
        }
        assert_eq!(waiter.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_interrupt_does_not_end_a_masked_wait() {
        let waiter = Arc::new(OsWaiter::new());
        waiter.interrupt();
        // Set before the wait: a masked wait still waits (to its deadline).
        let start = Instant::now();
        waiter.wait(Some(Instant::now() + Duration::from_millis(20)), false);
        assert!(start.elapsed() >= Duration::from_millis(20));
        // Set during the wait: neither. Only the wake ends it.
        let other = {
            let waiter = waiter.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                waiter.interrupt();
                std::thread::sleep(Duration::from_millis(20));
                waiter.wake();
            })
        };
        let start = Instant::now();
        waiter.wait(None, false);
        assert!(start.elapsed() >= Duration::from_millis(30));
        other.join().unwrap();
        assert!(waiter.take_interrupt());
        assert_eq!(waiter.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn begin_park_and_interrupt_never_both_miss() {
        // Sequential: an interrupt first makes `begin_park` refuse; a park
        // first makes `interrupt` ask for an unpark.
        let waiter = OsWaiter::new();
        waiter.interrupt();
        assert!(!waiter.begin_park(true));
        assert!(waiter.take_interrupt());
        assert!(waiter.begin_park(true));
        assert!(waiter.interrupt(), "the interrupter was not told to unpark");
        waiter.end_park();
        assert!(waiter.take_interrupt());
        // A park that is no cancellation point parks whatever the bits.
        waiter.interrupt();
        assert!(waiter.begin_park(false));
        waiter.end_park();
        assert!(waiter.take_interrupt());
        // Racing: the parker never sleeps through an interrupt.
        let waiter = Arc::new(OsWaiter::new());
        let parker = std::thread::current();
        for _ in 0..1_000 {
            let other = {
                let (waiter, parker) = (waiter.clone(), parker.clone());
                std::thread::spawn(move || {
                    if waiter.interrupt() {
                        parker.unpark();
                    }
                })
            };
            if waiter.begin_park(true) {
                // Until the interrupt: parks may return spuriously.
                while !waiter.interrupt_pending() {
                    std::thread::park();
                }
            }
            waiter.end_park();
            other.join().unwrap();
            assert!(waiter.take_interrupt());
        }
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let waiter = Arc::new(OsWaiter::new());
        for _ in 0..1_000 {
            let other = {
                let waiter = waiter.clone();
                std::thread::spawn(move || waiter.wake())
            };
            waiter.wait(None, false);
            other.join().unwrap();
        }
    }
}
