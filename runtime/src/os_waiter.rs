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
//! # Counted waits
//! A wait without deadline counts its thread as asleep for the deadlock
//! check (`deadlock.rs`, `OS_WAITING`). A thread that has been woken but
//! has not run yet (its kernel thread not scheduled, for milliseconds on a
//! loaded machine, or for a whole period under a CPU quota) must not count:
//! otherwise every thread can look asleep while one is about to run, and a
//! healthy program is reported deadlocked. So the count belongs to the
//! `COUNTED` bit: the waiter counts itself and sets `COUNTED` with
//! `WAITING`, and whoever clears the bit — a waker in the same
//! read-modify-write that leaves `WOKEN` (or an interrupt that ends the
//! wait), or the waiter on its way out — takes the thread off the count,
//! exactly once. The waker clears `COUNTED` in the same CAS that sets
//! `WOKEN`, so it uncounts the wait its token will end, never a later one
//! (a separate clear could uncount the next wait, which no token ends).
//! Modelled in `loom_models` below.
//!
//! A socket wait on an OS thread blocks in `poll(2)` (`io_source.rs`),
//! which neither the condition variable nor std's token can end. The
//! thread polls an *interrupt descriptor* of its own alongside the socket
//! (an eventfd, made on first use and kept for the thread's life) and
//! marks itself `POLLING` around the `poll`; the same two-sided
//! read-modify-write argument as for `PARKING` makes an interrupter that
//! comes second make the descriptor readable, and a poller that comes
//! second not poll at all (see "Cancellation" in `io_source.rs`).

//!
//! # Spinning before sleeping
//! A wait looks for its token for a few microseconds before it blocks, as
//! crossbeam's waits do: 255 `pause`s in doubling steps (≈ 3 µs on the
//! machines measured), then eight `sched_yield`s (which also let a worker
//! sharing this CPU run the thread we wait for). A plain OS thread waiting
//! for a green thread (`join`, a lock, a condition variable, a channel) is
//! often answered within that when the worker runs on another core, and a
//! sleep on the condition variable costs a futex wait and wake: about
//! 20 µs between the two vCPUs measured. `main` spawning a green thread on
//! a 1-worker runtime that works for 0.3 / 1 / 2 / 5 µs and joining it,
//! median per spawn+join: 23–31 µs before whatever the work (one futex
//! sleep per join), 2.1–3.1 / 3.1–4.3 / 4.2–5.2 / 7.1–7.4 µs after (at
//! 5 µs about 40% of the joins outlast the spin and still sleep). The spin
//! is bounded, so a long wait sleeps
//! (`an_os_thread_waiting_long_for_a_green_thread_sleeps` in
//! `tests/runtime.rs`).

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use crate::io_source::InterruptFd;
use crate::loom::atomic::{AtomicU8, Ordering};

const WOKEN: u8 = 1;
const WAITING: u8 = 2;
const INTERRUPT: u8 = 4;
const MASKED: u8 = 8;
const PARKING: u8 = 16;
const POLLING: u8 = 32;
/// The thread counts in the deadlock check's `OS_WAITING` (see "Counted
/// waits").
const COUNTED: u8 = 64;

/// How many times a waiting thread looks for its token before it blocks
/// (see "Spinning before sleeping"): after each of the first
/// `PAUSE_STEPS` it spins for twice as many `pause`s as the time before,
/// after each of the others it yields its CPU. None under loom, where a
/// spin only multiplies the interleavings.
const SPIN_STEPS: u32 = if cfg!(loom) { 0 } else { PAUSE_STEPS + 8 };

/// The pausing steps of the spin: 1 + 2 + … + 128 = 255 `pause`s.
const PAUSE_STEPS: u32 = 8;

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
        // A brief spin first (see "Spinning before sleeping").
        for step in 0..SPIN_STEPS {
            if self.ready(interruptible) {
                return;
            }
            if step < PAUSE_STEPS {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        if self.ready(interruptible) {
            return;
        }
        // Counted as asleep inside spool, for the deadlock check — unless
        // its deadline will wake it (see "Counted waits"). Counted before
        // `COUNTED` is set: a wake in between leaves the bit to us, and we
        // uncount on the way out.
        let counted = deadline.is_none();
        if counted {
            crate::deadlock::os_wait_begin();
        }
        let _uncount = counted.then(|| Uncount(self));
        let mut guard = crate::scheduler::lock(&self.lock);
        let mut mark = if interruptible {
            WAITING
        } else {
            WAITING | MASKED
        };
        if counted {
            mark |= COUNTED;
        }
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

    /// Leaves a wake token; wakes the owner if it is blocked in `wait`
    /// (and takes it off the deadlock check's count: "Counted waits").
    pub(crate) fn wake(&self) {
        let before = wake_bits(&self.state);
        if before & COUNTED != 0 {
            crate::deadlock::os_wait_end();
        }
        if before & WAITING != 0 {
            self.notify();
        }
    }

    /// The waiter leaves a wait: off the count, unless a waker took it off.
    fn uncount(&self) {
        if uncount_bits(&self.state) {
            crate::deadlock::os_wait_end();
        }
    }

    /// Sets `INTERRUPT`; wakes the owner if it is blocked in a wait that is
    /// a cancellation point. Returns whether the owner is in the user's
    /// `park` (then the caller unparks it through std's handle).
    pub(crate) fn interrupt(&self) -> bool {
        let before = interrupt_bits(&self.state);
        if ends_wait(before) {
            if before & COUNTED != 0 {
                // Off the count, as for a wake.
                crate::deadlock::os_wait_end();
            }
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

/// Ends a counted wait's count on every way out of `wait` (see "Counted
/// waits").
struct Uncount<'a>(&'a OsWaiter);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        self.0.uncount();
    }
}

/// The waker's half of "Counted waits": sets `WOKEN` and clears `COUNTED`
/// in one read-modify-write (so it uncounts only the wait this token
/// ends); returns the bits before. AcqRel: releases the waker's writes to
/// the waiter's Acquire, as `fetch_or` did.
fn wake_bits(state: &AtomicU8) -> u8 {
    let mut before = state.load(Ordering::Relaxed);
    loop {
        match state.compare_exchange_weak(
            before,
            (before | WOKEN) & !COUNTED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return before,
            Err(actual) => before = actual,
        }
    }
}

/// An interrupt's half: sets `INTERRUPT`, and clears `COUNTED` in the same
/// read-modify-write if that ends the wait (`WAITING`, not `MASKED`);
/// returns the bits before.
fn interrupt_bits(state: &AtomicU8) -> u8 {
    let mut before = state.load(Ordering::Relaxed);
    loop {
        let after = if ends_wait(before) {
            (before | INTERRUPT) & !COUNTED
        } else {
            before | INTERRUPT
        };
        match state.compare_exchange_weak(before, after, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return before,
            Err(actual) => before = actual,
        }
    }
}

/// Whether an interrupt ends the wait in `state`: one is under way
/// (`WAITING`) and is a cancellation point (not `MASKED`).
fn ends_wait(state: u8) -> bool {
    state & WAITING != 0 && state & MASKED == 0
}

/// The waiter's half: clears `COUNTED`; returns whether it was still set
/// (then the waiter uncounts itself).
fn uncount_bits(state: &AtomicU8) -> bool {
    state.fetch_and(!COUNTED, Ordering::AcqRel) & COUNTED != 0
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The count of "Counted waits": a waiter makes two counted waits in a
    //! row while a waker leaves one token; the count (`OS_WAITING`'s
    //! stand-in) never goes below zero, ends at zero, and a wait that no
    //! token ends stays counted until its waiter leaves it.
    //!
    //! Mutation seen caught: the waker sets `WOKEN` with one `fetch_or` and
    //! clears `COUNTED` with a separate `fetch_and` — the clear can land on
    //! the waiter's second wait, which no token ends, and uncount it
    //! ("uncounted while waiting with no token").
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// One counted wait of the waiter, spinning (a yield) for the token;
    /// `token_coming` says whether one will come.
    fn counted_wait(state: &AtomicU8, count: &AtomicUsize, token_coming: bool) {
        count.fetch_add(1, Ordering::SeqCst);
        state.fetch_or(WAITING | COUNTED, Ordering::Relaxed);
        if !token_coming {
            // No token can end this wait: it stays counted while it lasts.
            for _ in 0..2 {
                let counted = state.load(Ordering::Acquire) & COUNTED != 0;
                let woken = state.load(Ordering::Acquire) & WOKEN != 0;
                assert!(counted || woken, "uncounted while waiting with no token");
                loom::thread::yield_now();
            }
        } else {
            // `ready`: consume the token, keeping `COUNTED` as it is.
            loop {
                let s = state.load(Ordering::Relaxed);
                if s & WOKEN != 0
                    && state
                        .compare_exchange(
                            s,
                            s & !(WOKEN | WAITING),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    break;
                }
                loom::thread::yield_now();
            }
        }
        state.fetch_and(!WAITING, Ordering::Relaxed);
        if uncount_bits(state) {
            count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn loom_a_wake_uncounts_only_the_wait_it_ends() {
        loom::model(|| {
            let state = Arc::new(AtomicU8::new(0));
            let count = Arc::new(AtomicUsize::new(0));
            let waker = {
                let (state, count) = (state.clone(), count.clone());
                loom::thread::spawn(move || {
                    if wake_bits(&state) & COUNTED != 0 {
                        let before = count.fetch_sub(1, Ordering::SeqCst);
                        assert!(before > 0, "count below zero");
                    }
                })
            };
            // The first wait ends with the token; the second has none.
            counted_wait(&state, &count, true);
            counted_wait(&state, &count, false);
            waker.join().unwrap();
            assert_eq!(count.load(Ordering::SeqCst), 0, "count left over");
        });
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
