//! What every spool socket type is made of: a std socket in non-blocking
//! mode, its readiness source, and std's per-socket settings that a
//! non-blocking descriptor cannot keep for us (timeouts, blocking mode).
//!
//! As with std, `try_clone` duplicates the descriptor, so every clone owns
//! its own descriptor (and its own epoll registration, made the first time
//! a green thread waits on it). std keeps timeouts in the kernel, on the
//! open file all clones share, so setting one through any clone applies to
//! all; spool keeps them in user space (a non-blocking descriptor ignores
//! `SO_RCVTIMEO`), in `Settings` shared by the clones, for the same effect.

use std::io;
use std::os::fd::AsRawFd;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool_runtime::trace::SocketOp;
use spool_runtime::{Direction, IoSource};

/// A socket `S` whose blocking operations park the calling green thread.
pub(crate) struct Io<S: AsRawFd> {
    /// Declared first so it is dropped first: the descriptor must still be
    /// open when the source removes it from epoll (`IoSource::new`).
    source: IoSource,
    socket: S,
    settings: Arc<Settings>,
}

/// What std keeps per open file and spool per set of clones.
#[derive(Default)]
struct Settings {
    /// Read and write timeouts in nanoseconds; 0 means none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// Set by `set_nonblocking(true)`: report `WouldBlock` instead of
    /// waiting, as a non-blocking std socket does.
    nonblocking: AtomicBool,
}

impl<S: AsRawFd> Io<S> {
    /// Wraps `socket`, which the caller has put in non-blocking mode.
    pub(crate) fn new(socket: S) -> Io<S> {
        Io::with_settings(socket, Arc::default())
    }

    fn with_settings(socket: S, settings: Arc<Settings>) -> Io<S> {
        // SAFETY: the descriptor belongs to `socket`, which the `Io` owns
        // and drops only after `source` (field order), so it stays open and
        // names the same file for the source's whole life.
        let source = unsafe { IoSource::new(socket.as_raw_fd()) };
        Io {
            source,
            socket,
            settings,
        }
    }

    /// A clone over the descriptor `duplicate` makes (std's `try_clone`),
    /// sharing this socket's settings.
    pub(crate) fn try_clone(
        &self,
        duplicate: impl FnOnce(&S) -> io::Result<S>,
    ) -> io::Result<Io<S>> {
        let socket = duplicate(&self.socket)
            .map_err(|e| super::describe_exhaustion(e, "a clone of a socket"))?;
        Ok(Io::with_settings(socket, Arc::clone(&self.settings)))
    }

    /// Whether clones of this socket are alive (they share its file status
    /// flags, so it must stay non-blocking for them).
    pub(crate) fn has_clones(&self) -> bool {
        Arc::strong_count(&self.settings) > 1
    }

    /// The std socket, for the calls that never block.
    pub(crate) fn get(&self) -> &S {
        &self.socket
    }

    /// Takes the std socket back, ending the readiness registration.
    pub(crate) fn into_inner(self) -> S {
        let Io { source, socket, .. } = self;
        // Deregister while the descriptor is still open.
        drop(source);
        socket
    }

    /// Runs a read-side operation (read, recv, accept, peek) with std's
    /// blocking semantics: waits for readiness, up to the read timeout.
    #[track_caller]
    pub(crate) fn read<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let timeout = &self.settings.read_timeout;
        self.run(Direction::Read, SocketOp::Read, timeout, op)
    }

    /// As `read`, for an `accept` (a dump says so).
    #[track_caller]
    pub(crate) fn accept<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let timeout = &self.settings.read_timeout;
        self.run(Direction::Read, SocketOp::Accept, timeout, op)
    }

    /// As `read`, for a read of up to `len` bytes from a stream socket:
    /// skips the attempt that would only say `WouldBlock` after a short
    /// read (see `IoSource::read_stream`).
    #[track_caller]
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.settings.nonblocking.load(Ordering::Relaxed) || len == 0 {
            return op(&self.socket);
        }
        entry_checkpoint();
        let deadline = deadline_after(&self.settings.read_timeout);
        self.source.read_stream(len, deadline, || op(&self.socket))
    }

    /// As `read`, for write-side operations (write, send), with the write
    /// timeout.
    #[track_caller]
    pub(crate) fn write<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let timeout = &self.settings.write_timeout;
        self.run(Direction::Write, SocketOp::Write, timeout, op)
    }

    /// Runs `op` with std's blocking semantics, its waits recorded for
    /// thread dumps as `what` at the caller's call site.
    #[track_caller]
    fn run<R>(
        &self,
        direction: Direction,
        what: SocketOp,
        timeout: &AtomicU64,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.settings.nonblocking.load(Ordering::Relaxed) {
            return op(&self.socket);
        }
        entry_checkpoint();
        let deadline = deadline_after(timeout);
        let site = Location::caller();
        self.source
            .io_as(what, site, direction, deadline, || op(&self.socket))
    }

    /// Runs `op` until it stops reporting `WouldBlock`, waiting for
    /// `direction` readiness up to `deadline` in between, whatever the
    /// socket's timeouts and blocking mode: for a non-blocking `connect`,
    /// whose `op` reports `WouldBlock` while the connection is in progress.
    /// Its waits are recorded for thread dumps as a `connect` at `site`.
    pub(crate) fn run_until<R>(
        &self,
        site: &'static Location<'static>,
        direction: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let what = SocketOp::Connect;
        self.source
            .io_as(what, site, direction, deadline, || op(&self.socket))
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.settings.read_timeout, timeout)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.settings.write_timeout, timeout)
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        load_timeout(&self.settings.read_timeout)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        load_timeout(&self.settings.write_timeout)
    }

    /// Whether `set_nonblocking(true)` is in force.
    pub(crate) fn is_nonblocking(&self) -> bool {
        self.settings.nonblocking.load(Ordering::Relaxed)
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.settings
            .nonblocking
            .store(nonblocking, Ordering::Relaxed);
    }
}

/// When an operation started now with the timeout in `slot` must give up
/// (`None`: no timeout, or one too far away to express).
fn deadline_after(slot: &AtomicU64) -> Option<Instant> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        nanos => Instant::now().checked_add(Duration::from_nanos(nanos)),
    }
}

/// std's rule: a zero timeout is an error, `None` clears it.
fn store_timeout(slot: &AtomicU64, timeout: Option<Duration>) -> io::Result<()> {
    let nanos = match timeout {
        None => 0,
        Some(d) if d.is_zero() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ))
        }
        // Saturates at about 584 years: longer is forever in practice.
        Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
    };
    slot.store(nanos, Ordering::Relaxed);
    Ok(())
}

fn load_timeout(slot: &AtomicU64) -> Option<Duration> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        nanos => Some(Duration::from_nanos(nanos)),
    }
}

impl<S: AsRawFd + std::fmt::Debug> std::fmt::Debug for Io<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.socket.fmt(f)
    }
}

/// Implements std's descriptor traits and conversions, and `Debug`, for a
/// spool socket type `$spool` (a struct with an `io: Io<$std>` field);
/// `$from_std` wraps a std socket.
macro_rules! fd_conversions {
    ($spool:ident, $std:ty, $from_std:path) => {
        impl ::std::os::fd::AsFd for $spool {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(self.io.get())
            }
        }

        impl ::std::os::fd::AsRawFd for $spool {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(self.io.get())
            }
        }

        /// Takes ownership of a socket descriptor; it is switched to
        /// non-blocking mode and its timeouts carry over.
        impl From<::std::os::fd::OwnedFd> for $spool {
            fn from(fd: ::std::os::fd::OwnedFd) -> $spool {
                <$spool>::from(<$std>::from(fd))
            }
        }

        impl ::std::os::fd::FromRawFd for $spool {
            /// # Safety
            /// As [`std::os::fd::FromRawFd::from_raw_fd`]: `fd` must be an
            /// open socket descriptor owned by the caller.
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $spool {
                // SAFETY: forwarded from this function's contract.
                <$spool>::from(unsafe { <$std as ::std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        /// The socket's descriptor, still in non-blocking mode (`into_std`
        /// gives a blocking std socket).
        impl From<$spool> for ::std::os::fd::OwnedFd {
            fn from(socket: $spool) -> ::std::os::fd::OwnedFd {
                ::std::os::fd::OwnedFd::from(socket.io.into_inner())
            }
        }

        impl ::std::os::fd::IntoRawFd for $spool {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                ::std::os::fd::IntoRawFd::into_raw_fd(::std::os::fd::OwnedFd::from(self))
            }
        }

        /// Wraps a std socket. It is switched to non-blocking mode (a
        /// failure to do so, which needs an invalid descriptor, shows up
        /// as the error of the first operation) and its timeouts carry over.
        impl From<$std> for $spool {
            fn from(socket: $std) -> $spool {
                $from_std(socket)
            }
        }

        impl ::std::fmt::Debug for $spool {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&self.io, f)
            }
        }
    };
}

pub(crate) use fd_conversions;

/// The cancellation point at the entry of a blocking socket call, so a loop
/// whose reads always find data (or whose writes always find room) is still
/// cancelled: a cancelled thread unwinds before the call does anything, so
/// no byte is lost. While the thread is already unwinding, the call goes on
/// (rule R1) and fails only if it would have to wait.
#[inline]
fn entry_checkpoint() {
    if let spool_runtime::cancel::Check::Raise(cancelled) = spool_runtime::cancel::check() {
        spool_runtime::cancel::raise(cancelled)
    }
}
