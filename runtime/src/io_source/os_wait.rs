//! Socket waits of plain OS threads: `poll(2)` on the socket and on the
//! thread's interrupt descriptor, a cancellation point like a green
//! thread's wait (see "Cancellation" in `io_source.rs`).
//!
//! # Why an interrupt cannot fall between the check and the `poll`
//! The waiter checks its cancellation status (`cancel::check`), then marks
//! itself `POLLING` with one read-modify-write of its `OsWaiter` word that
//! also reads `INTERRUPT`; a canceller marks the scope cancelled, then sets
//! `INTERRUPT` with one read-modify-write that also reads `POLLING`. The
//! two RMWs are ordered, so whichever comes second sees the other's bit:
//! a canceller that comes second makes the interrupt descriptor readable,
//! and the `poll` (begun already or not yet) returns at once; a waiter
//! that comes second does not poll, and its next check sees the
//! cancellation. The descriptor stays readable until the waiter drains it,
//! so an interrupt that lands before the `poll` starts is not lost; one
//! that lands after the waiter left only makes a later `poll` return
//! early, and every caller loops. The model `loom_models` below checks the
//! handshake, and that testing `INTERRUPT` with a load before setting
//! `POLLING` strands the waiter.
//!
//! # The interrupt descriptor
//! An eventfd on Linux (a pipe elsewhere), non-blocking, made the first
//! time the thread waits on a socket and kept for its life, so a thread
//! that never does costs nothing. It lives in the thread's `OsWaiter`,
//! which every handle to the thread keeps alive, so a canceller never
//! writes to a descriptor that was closed and reused. If it cannot be made
//! (no descriptor left), the thread polls in slices of
//! `UNINTERRUPTED_SLICE` instead, noticing a cancellation late but still
//! noticing it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::{cancelled_while_unwinding, timed_out, Direction};
use crate::cancel::{self, Check};

/// The longest `poll` of a thread that has no interrupt descriptor.
const UNINTERRUPTED_SLICE: Duration = Duration::from_millis(50);

/// Blocks the calling OS thread until `fd` is ready for `direction` (or an
/// error or hang-up is pending), `deadline` passes (`EAGAIN`), or the
/// thread is cancelled (unwinds; while unwinding, an error of kind
/// `TimedOut`).
pub(super) fn wait(fd: RawFd, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        match cancel::check() {
            Check::Continue => {}
            Check::Raise(cancelled) => cancel::raise(cancelled),
            Check::Unwinding => return Err(cancelled_while_unwinding()),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out());
        }
        // Bounded by the effective deadline too: the check above notices
        // the scope expire.
        if poll_once(fd, direction, crate::cancel_bound(deadline))? {
            return Ok(());
        }
    }
}

/// One `poll` until `until`, ended early by an interrupt. `Ok(true)`: the
/// socket is ready; `Ok(false)`: look again.
fn poll_once(fd: RawFd, direction: Direction, until: Option<Instant>) -> io::Result<bool> {
    crate::with_os_waiter(|waiter| {
        let Some(waiter) = waiter else {
            // Thread-locals being destroyed: the thread has no scopes left,
            // so nothing can interrupt it.
            return poll(fd, direction, None, until);
        };
        let Some(interrupt) = waiter.interrupt_fd() else {
            let slice = Instant::now() + UNINTERRUPTED_SLICE;
            return poll(
                fd,
                direction,
                None,
                Some(until.map_or(slice, |u| u.min(slice))),
            );
        };
        if !waiter.begin_poll() {
            return Ok(false); // an interrupt is pending: check first
        }
        let polled = poll(fd, direction, Some(interrupt), until);
        waiter.end_poll();
        polled
    })
}

/// One `poll(2)` on `fd` and `interrupt` (drained if it fired) until
/// `until`; whether `fd` reported anything.
fn poll(
    fd: RawFd,
    direction: Direction,
    interrupt: Option<&InterruptFd>,
    until: Option<Instant>,
) -> io::Result<bool> {
    let timeout_ms = match until {
        None => -1,
        Some(until) => {
            let left = until.saturating_duration_since(Instant::now());
            // Round up so the wait never ends before `until`.
            let ms = left.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    };
    let events = match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut fds = [
        libc::pollfd {
            fd,
            events,
            revents: 0,
        },
        // A negative descriptor is ignored by `poll`.
        libc::pollfd {
            fd: interrupt.map_or(-1, InterruptFd::fd),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a valid, exclusively borrowed array of two elements
    // for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::Interrupted => Ok(false),
            _ => Err(e),
        };
    }
    if fds[1].revents != 0 {
        if let Some(interrupt) = interrupt {
            interrupt.drain();
        }
    }
    Ok(fds[0].revents != 0)
}

/// A descriptor another thread can make readable, to end a `poll` that
/// includes it: an eventfd on Linux, a pipe elsewhere. Non-blocking.
pub(crate) struct InterruptFd {
    read: OwnedFd,
    /// The pipe's write end (the eventfd is both ends at once).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    write: OwnedFd,
}

impl InterruptFd {
    /// A fresh descriptor, not readable.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<InterruptFd> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let read = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(InterruptFd { read })
    }

    /// A fresh descriptor, not readable.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<InterruptFd> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe succeeded: two fresh descriptors nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            // SAFETY: fcntl on a descriptor we own, with integer arguments.
            unsafe {
                let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(InterruptFd { read, write })
    }

    /// The descriptor to poll for reading.
    pub(crate) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the descriptor readable (it stays so until `drain`).
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let (fd, len) = (self.read.as_raw_fd(), 8);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let (fd, len) = (self.write.as_raw_fd(), 1);
        // SAFETY: `one` is valid for reads of `len` (at most 8) bytes. A
        // failure can only be `EAGAIN`: the counter or pipe is full, so
        // the descriptor is readable already.
        unsafe { libc::write(fd, std::ptr::from_ref(&one).cast(), len) };
    }

    /// Makes the descriptor unreadable again (until the next `signal`).
    fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `buf` is valid for writes of its length; the
            // descriptor is non-blocking, so an empty one fails at once.
            let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // The eventfd resets in one read; a pipe is empty after a
            // short read.
            if n < 0 || (n as usize) < buf.len() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: &InterruptFd) -> bool {
        let mut pollfd = libc::pollfd {
            fd: fd.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid `pollfd`; a zero timeout never blocks.
        unsafe { libc::poll(&mut pollfd, 1, 0) == 1 }
    }

    #[test]
    fn an_interrupt_descriptor_is_readable_from_signal_to_drain() {
        let fd = InterruptFd::new().unwrap();
        assert!(!readable(&fd));
        fd.signal();
        fd.signal();
        assert!(readable(&fd));
        fd.drain();
        assert!(!readable(&fd));
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The `POLLING` handshake of "Why an interrupt cannot fall between the
    //! check and the `poll`": a waiter whose socket never becomes ready
    //! against one canceller. The model mirrors the orderings of the code:
    //! the waiter is `wait` with `cancel::check`, `OsWaiter::begin_poll`
    //! and `end_poll` inlined; the canceller is `ScopeInner::cancel`
    //! followed by `OsWaiter::interrupt`. The interrupt descriptor is a
    //! flag that `signal` sets and `drain` clears.
    //!
    //! Run with
    //! `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.
    use loom::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    const INTERRUPT: u8 = 4;
    const POLLING: u8 = 32;

    #[derive(Default)]
    struct Waiter {
        /// The `OsWaiter` word.
        state: AtomicU8,
        /// The scope's cancellation mark.
        cancelled: AtomicBool,
        /// The interrupt descriptor is readable.
        readable: AtomicBool,
        /// The canceller has finished.
        done: AtomicBool,
    }

    fn cancel(w: &Waiter) {
        w.cancelled.store(true, Ordering::Release);
        let before = w.state.fetch_or(INTERRUPT, Ordering::AcqRel);
        if before & POLLING != 0 {
            w.readable.store(true, Ordering::Release);
        }
        w.done.store(true, Ordering::Release);
    }

    /// Returns once the waiter has seen its cancellation.
    fn wait(w: &Waiter, test_with_a_load: bool) {
        loop {
            // `cancel::check`: a pending interrupt is taken, then the
            // scopes are read.
            if w.state.load(Ordering::Relaxed) & INTERRUPT != 0 {
                w.state.fetch_and(!INTERRUPT, Ordering::AcqRel);
                if w.cancelled.load(Ordering::Acquire) {
                    return;
                }
            }
            // `begin_poll`.
            if test_with_a_load {
                if w.state.load(Ordering::Acquire) & INTERRUPT != 0 {
                    continue;
                }
                w.state.fetch_or(POLLING, Ordering::AcqRel);
            } else if w.state.fetch_or(POLLING, Ordering::AcqRel) & INTERRUPT != 0 {
                w.state.fetch_and(!POLLING, Ordering::Relaxed);
                continue;
            }
            // `poll`: the socket never becomes ready.
            loop {
                if w.readable.load(Ordering::Acquire) {
                    w.readable.store(false, Ordering::Relaxed); // `drain`
                    break;
                }
                assert!(
                    !w.done.load(Ordering::Acquire) || w.readable.load(Ordering::Acquire),
                    "stranded: polling after the canceller left without signalling"
                );
                thread::yield_now();
            }
            // `end_poll`.
            w.state.fetch_and(!POLLING, Ordering::Relaxed);
        }
    }

    fn cancel_against_a_poller(test_with_a_load: bool) {
        loom::model(move || {
            let w = Arc::new(Waiter::default());
            let canceller = {
                let w = Arc::clone(&w);
                thread::spawn(move || cancel(&w))
            };
            wait(&w, test_with_a_load);
            canceller.join().unwrap();
        });
    }

    #[test]
    fn a_cancel_reaches_a_thread_in_poll() {
        cancel_against_a_poller(false);
    }

    /// The deliberate mutation: testing `INTERRUPT` with a load and then
    /// setting `POLLING` lets the canceller's RMW fall in between, see no
    /// `POLLING`, and leave the descriptor silent.
    #[test]
    #[should_panic(expected = "stranded")]
    fn testing_the_interrupt_before_marking_the_poll_strands_the_waiter() {
        cancel_against_a_poller(true);
    }
}
