//! Socket readiness: how a blocking-style `read` parks a green thread.
//!
//! # Shape
//! An [`IoSource`] wraps one non-blocking file descriptor. Its shared part,
//! a `Readiness`, holds for each direction (read, write) a *generation*
//! counter and a list of waiting threads. The descriptor is registered
//! with a worker's `epoll` lazily, the first time a green thread has to
//! wait on it, and with the worker that green thread is pinned to (so the
//! usual case — one green thread per connection — gets its events on its
//! own worker, ARCHITECTURE.md decision 3). Registration is edge-triggered
//! for both directions at once; the epoll token is the address of the
//! `Readiness`.
//!
//! # Why no readiness event is lost
//! An operation reads the direction's generation *before* trying the
//! system call. If the call says `WouldBlock`, the thread takes the
//! direction's lock and, under it, compares the generation with what it
//! read before: changed means an event arrived after the attempt, so it
//! retries at once; unchanged means no event has been dispatched since,
//! so it adds itself to the waiters and waits (`crate::wait`, which leaves
//! the user's park token alone). The reactor dispatching an event first
//! increments the generation, then takes the same lock and wakes every
//! waiter. Either the waiter's check comes after the
//! increment (it retries) or its registration comes before the dispatcher
//! takes the lock (it is woken). Edge-triggered registration is safe to do
//! lazily after a `WouldBlock`: `EPOLL_CTL_ADD` reports a descriptor that
//! is already ready, so data that arrived between the attempt and the
//! registration still produces an event.
//!
//! # Lifetime of a token
//! The epoll token is a raw pointer, so the `Readiness` must outlive every
//! event that can carry it. The registration owns one strong reference.
//! Dropping the `IoSource` removes the descriptor from epoll and hands that
//! reference to the worker's *release list* rather than dropping it: events
//! already fetched by an `epoll_wait` in progress may still name it. The
//! worker empties its release list only between a finished dispatch and
//! its next `epoll_wait`, which can no longer return the removed
//! descriptor.
//!
//! # Outliving a runtime
//! A socket can outlive the runtime it was first registered with (a test
//! that builds a runtime per case, a listener made in `main`). When that
//! runtime's worker has exited, its epoll instance is closed and will
//! never report anything again, so the next green thread to wait moves the
//! registration to its own worker. The old record's reference is dropped
//! there and then: no `epoll_wait` of the exited worker can run any more.
//!
//! # On plain OS threads
//! There is no reactor to park on, so a thread that is not a green thread
//! waits in `poll(2)` on the one descriptor, which blocks only itself.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::scheduler::{lock, Remote, Shared};
use crate::ThreadHandle;

/// Which readiness an operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Data to read, a connection to accept, or end of stream.
    Read,
    /// Room to write, or a finished connect.
    Write,
}

/// One direction's readiness.
#[derive(Default)]
struct Waiters {
    /// Incremented on every dispatched event for this direction.
    generation: AtomicU64,
    /// Threads parked until `generation` changes.
    parked: Mutex<Vec<ThreadHandle>>,
}

/// The part of an `IoSource` the reactor reaches through the epoll token.
#[derive(Default)]
pub(crate) struct Readiness {
    read: Waiters,
    write: Waiters,
    /// Set once an event reported the read side closed or an error: a
    /// pending end of stream or error makes the next read return at once,
    /// however short the last read was (see `read_stream`).
    read_closed: AtomicBool,
}

impl Readiness {
    fn waiters(&self, direction: Direction) -> &Waiters {
        match direction {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// Called by the worker that owns the registration for each event.
    pub(crate) fn dispatch(&self, event: &mio::event::Event) {
        // Errors and hang-ups wake both sides: their next attempt reports
        // the error or end of stream.
        let failed = event.is_error();
        if failed || event.is_read_closed() {
            // Before the generation moves (in `wake`), so a reader that
            // sees the new generation sees this too.
            self.read_closed.store(true, Ordering::Relaxed);
        }
        if failed || event.is_readable() || event.is_read_closed() {
            self.read.wake();
        }
        if failed || event.is_writable() || event.is_write_closed() {
            self.write.wake();
        }
    }
}

impl Waiters {
    fn wake(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut parked = lock(&self.parked);
        // Waking under the lock keeps the vector's capacity; `wake` never
        // takes this lock, so it cannot deadlock.
        for thread in parked.drain(..) {
            thread.wake();
        }
    }
}

/// Where a descriptor is registered: the runtime and the worker.
struct Registration {
    shared: &'static Shared,
    worker: usize,
    token: Token,
}

/// A non-blocking file descriptor that green threads can wait on.
///
/// [`IoSource::io`] runs a non-blocking system call and, while it reports
/// `WouldBlock`, parks the calling green thread until the descriptor's
/// readiness changes (or blocks a plain OS thread in `poll(2)`). Any number
/// of threads may wait on one source at once, in either direction.
pub struct IoSource {
    fd: RawFd,
    readiness: Arc<Readiness>,
    /// The read generation at which a green thread last saw the stream
    /// drained (a short read), or `u64::MAX`; see `read_stream`.
    read_drained: AtomicU64,
    /// Where the descriptor is registered, if anywhere. Changed only under
    /// its lock; `registered` mirrors it for the lock-free fast path.
    registration: Mutex<Option<Registration>>,
    /// The worker of `registration` (null: none), read without the lock.
    registered: AtomicPtr<Remote>,
}

impl IoSource {
    /// Wraps `fd`, which must already be in non-blocking mode.
    ///
    /// # Safety
    /// `fd` must stay open, and refer to the same open file, until the
    /// `IoSource` is dropped: dropping it removes `fd` from the epoll set it
    /// was registered with, which must not touch another file's
    /// registration.
    pub unsafe fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            readiness: Arc::new(Readiness::default()),
            read_drained: AtomicU64::new(u64::MAX),
            registration: Mutex::new(None),
            registered: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The wrapped descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Runs `op` until it returns something other than `WouldBlock`,
    /// waiting for `direction` readiness in between.
    ///
    /// With a `deadline`, gives up once it has passed and returns the error
    /// a timed-out blocking socket call returns (`EAGAIN`, of kind
    /// `WouldBlock`). `op` is always tried at least once.
    pub fn io<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let waiters = self.readiness.waiters(direction);
        loop {
            let seen = waiters.generation.load(Ordering::Acquire);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return result,
            }
            self.wait_after(direction, seen, deadline)?;
        }
    }

    /// As [`io`](IoSource::io) for `Read`, for a read of up to `len` bytes
    /// from a TCP socket, saving a system call per
    /// wait.
    ///
    /// A stream read that returns fewer bytes than asked for (but some) has
    /// emptied the socket's receive queue. Any data arriving after that
    /// makes epoll report the descriptor again (edge-triggered readiness
    /// fires on every arrival that finds the descriptor not already
    /// queued, and a queued report is dispatched after the arrival), so the
    /// read generation will move past the one read before the short read.
    /// Until it does, the next read in a green thread can skip the attempt
    /// that would only say `WouldBlock` and wait at once. (This is what
    /// tokio does when it clears readiness after a short read.) A pending
    /// end of stream or error is the exception — a short read can stop just
    /// before a FIN whose report was dispatched earlier — so once epoll has
    /// reported the read side closed or an error, reads always try. Plain OS
    /// threads, which wait in `poll(2)` and never see the generation move,
    /// always try first. Only for TCP: a short datagram says nothing about
    /// the queue, and a Unix stream read can stop short at a boundary
    /// between messages with different credentials.
    pub fn read_stream(
        &self,
        len: usize,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        if !crate::in_green_thread() {
            return self.io(Direction::Read, deadline, op);
        }
        let waiters = &self.readiness.read;
        loop {
            let seen = waiters.generation.load(Ordering::Acquire);
            let closed = self.readiness.read_closed.load(Ordering::Relaxed);
            if closed || seen != self.read_drained.load(Ordering::Relaxed) {
                match op() {
                    Ok(n) if n > 0 && n < len => {
                        self.read_drained.store(seen, Ordering::Relaxed);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    result => return result,
                }
            }
            self.wait_after(Direction::Read, seen, deadline)?;
        }
    }

    /// Waits until the generation of `direction` differs from `seen`.
    fn wait_after(
        &self,
        direction: Direction,
        seen: u64,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let Some(core) = crate::worker::current().filter(|_| crate::in_green_thread()) else {
            return poll_fd(self.fd, direction, deadline);
        };
        self.register(core.shared, core.index)?;
        let waiters = self.readiness.waiters(direction);
        let me = crate::current();
        {
            let mut parked = lock(&waiters.parked);
            if waiters.generation.load(Ordering::Acquire) != seen {
                return Ok(());
            }
            parked.push(me.clone());
        }
        loop {
            match deadline {
                None => crate::wait(),
                Some(deadline) => {
                    if Instant::now() >= deadline {
                        let id = me.id();
                        lock(&waiters.parked).retain(|t| t.id() != id);
                        return Err(timed_out());
                    }
                    crate::wait_until(deadline);
                }
            }
            // A stray wake (left by an earlier wait) leaves the generation
            // unchanged: wait again.
            if waiters.generation.load(Ordering::Acquire) != seen {
                return Ok(());
            }
        }
    }

    /// Registers the descriptor with worker `worker` of `shared`, unless it
    /// is registered already with a worker that is still running.
    fn register(&self, shared: &'static Shared, worker: usize) -> io::Result<()> {
        let current = self.registered.load(Ordering::Acquire);
        // SAFETY: a non-null `registered` points into a runtime's `Shared`,
        // which is leaked and so lives for the rest of the process.
        if !current.is_null() && !unsafe { &*current }.has_exited() {
            return Ok(());
        }
        let mut registration = lock(&self.registration);
        if let Some(old) = registration.as_ref() {
            let remote = &old.shared.workers[old.worker];
            if !remote.has_exited() {
                return Ok(()); // another thread registered meanwhile
            }
            // The old worker's epoll instance is closed and its loop has
            // ended (`has_exited`), so no event can name the old token any
            // more: take its reference back.
            remote.io_sources.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: the token holds the pointer from `Arc::into_raw` whose
            // strong reference the registration owned; the registration is
            // being discarded, so it is taken back exactly once.
            drop(unsafe { Arc::from_raw(old.token.0 as *const Readiness) });
            *registration = None;
            self.registered.store(ptr::null_mut(), Ordering::Release);
        }
        let token = Token(Arc::into_raw(Arc::clone(&self.readiness)) as usize);
        let remote = &shared.workers[worker];
        let result = remote.with_registry(|registry| {
            registry.register(
                &mut SourceFd(&self.fd),
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
        });
        if let Err(e) = result {
            // SAFETY: the pointer came from `Arc::into_raw` just above and
            // was never handed to epoll (registration failed).
            drop(unsafe { Arc::from_raw(token.0 as *const Readiness) });
            return Err(describe_register_error(e));
        }
        remote.io_sources.fetch_add(1, Ordering::Relaxed);
        *registration = Some(Registration {
            shared,
            worker,
            token,
        });
        self.registered
            .store(ptr::from_ref(remote).cast_mut(), Ordering::Release);
        Ok(())
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        let registration = self
            .registration
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        let Some(registration) = registration.take() else {
            return;
        };
        let remote = &registration.shared.workers[registration.worker];
        // An exited worker polls no more, so no event can name the token.
        if remote.has_exited() {
            remote.io_sources.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: see `register`; the registration is discarded here,
            // so its reference is taken back exactly once.
            drop(unsafe { Arc::from_raw(registration.token.0 as *const Readiness) });
            return;
        }
        // The descriptor is still open (the contract of `new`), so this
        // removes exactly our registration. A worker that has exited has
        // closed its registry; its epoll instance is gone with it.
        let _ = remote.with_registry(|registry| registry.deregister(&mut SourceFd(&self.fd)));
        remote.io_sources.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `token` holds the pointer from `Arc::into_raw` in
        // `register`, whose strong reference the registration owned; it is
        // taken back exactly once, here.
        let readiness = unsafe { Arc::from_raw(registration.token.0 as *const Readiness) };
        remote.release(readiness);
    }
}

impl std::fmt::Debug for IoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoSource")
            .field("fd", &self.fd)
            .field(
                "worker",
                &lock(&self.registration).as_ref().map(|r| r.worker),
            )
            .finish()
    }
}

/// The error of a timed-out wait: what a blocking socket with
/// `SO_RCVTIMEO`/`SO_SNDTIMEO` returns, so ported code sees no difference.
fn timed_out() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

fn describe_register_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => io::Error::new(
            e.kind(),
            format!(
                "spool: cannot watch a socket: {e}; the per-user epoll watch limit \
                 (/proc/sys/fs/epoll/max_user_watches) is reached: raise it with sysctl"
            ),
        ),
        Some(libc::ENOMEM) => io::Error::new(
            e.kind(),
            format!("spool: cannot watch a socket: {e}; the kernel is out of memory"),
        ),
        _ => io::Error::new(e.kind(), format!("spool: cannot watch a socket: {e}")),
    }
}

/// Blocks the calling OS thread until `fd` is ready for `direction`, an
/// error or hang-up is pending, or `deadline` passes.
fn poll_fd(fd: RawFd, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
    let events = match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                // Round up so the wait never ends before the deadline.
                let ms = left.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        };
        let mut pollfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: `pollfd` is a valid, exclusively borrowed array of one
        // element for the duration of the call.
        let n = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        match n {
            n if n > 0 => return Ok(()),
            0 => {} // timed out: the loop checks the deadline
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}
