//! Socket readiness: how a blocking-style `read` parks a green thread.
//!
//! # Shape
//! An [`IoSource`] wraps one non-blocking file descriptor. Its shared part,
//! a `Readiness`, holds for each direction (read, write) a *generation*
//! counter and a list of waiting threads. The descriptor is registered
//! with a worker's `epoll` lazily, the first time a green thread has to
//! wait on it, and with the worker that green thread is pinned to (so the
//! usual case — one green thread per connection — gets its events on its
//! own worker; see `reactor.rs`). Registration is edge-triggered
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
//! event that can carry it. The worker's registration table
//! (`reactor::Registrations`) owns one strong reference from registration
//! on. Dropping the `IoSource` removes the descriptor from epoll and moves
//! that reference to the worker's *release list* rather than dropping it:
//! events already fetched by an `epoll_wait` in progress may still name it.
//! The worker empties its release list only between a finished dispatch
//! and its next `epoll_wait`, which can no longer return the removed
//! descriptor, and once more as it exits.
//!
//! One lock (the table's) orders a deregistration against the worker's
//! exit, so a record is freed exactly once whichever comes first: a
//! deregistration before the exit leaves the record on the release list,
//! which the exit empties; one after it finds the worker exited and has
//! nothing to hand over, because the exit dropped every record it held.
//! (Deciding with a flag and handing over under a second lock, as an
//! earlier version did, leaked the record when the exit fell in between.)
//!
//! # Outliving a runtime
//! A socket can outlive the runtime it was first registered with (a test
//! that builds a runtime per case, a listener made under one runtime and
//! served under another), and a green thread of one runtime can wait on a
//! socket registered with a worker of another. The rules:
//!
//! 1. A socket is registered with at most one running worker. A green
//!    thread that has to wait registers it with its own worker only if it
//!    is registered nowhere or with a worker that has exited; otherwise it
//!    waits on the existing registration, and that worker's events wake it
//!    (a wake reaches a green thread of any runtime).
//! 2. A worker exits after its last `epoll_wait`. Under its table's lock it
//!    marks itself exited and takes every record; then it advances both
//!    generations of each and wakes their waiters, and drops its
//!    references. From then on its epoll instance reports nothing.
//! 3. A woken waiter retries its operation; if that still says
//!    `WouldBlock`, it finds the registration's worker exited and moves the
//!    registration to its own worker (`EPOLL_CTL_ADD` reports data that is
//!    already there). The old registration is just a name by then: its
//!    record reference went with the exit.
//!
//! **Why no waiter is stranded on an exited worker.** The exit marks the
//! worker exited before it advances any generation, and a waiter reads the
//! generation before its attempt, then the exited mark (in `register`),
//! then the generation again under the waiters' lock. If its first read
//! already sees the advanced generation, the release–acquire pair on the
//! generation makes it see the mark too, so it registers elsewhere. If not,
//! the usual argument of "Why no readiness event is lost" applies to the
//! exit's wakeup as to any event: either the waiter sees the generation
//! move under the lock and retries, or it is on the list when the exit
//! takes the lock to wake it. The model `loom_models` at the end of this
//! file checks this handshake, and that marking the exit after the wakeup
//! would strand a waiter.
//!
//! # On plain OS threads
//! There is no reactor to park on, so a thread that is not a green thread
//! waits in `poll(2)` on the one descriptor, which blocks only itself (see
//! `io_source/os_wait.rs`).
//!
//! # Cancellation
//! Every wait of [`IoSource::io`] and [`IoSource::read_stream`] is a
//! cancellation point (`cancel.rs`), and only the wait: an operation that
//! succeeds without waiting returns its result even in a cancelled thread,
//! so a read that got data returns it and the cancellation is raised at the
//! next cancellation point (rule R2). The operation has not happened when
//! a wait is cancelled — the bytes stay in the socket — and the descriptor
//! is left as it is: a cancellation never closes or shuts down a socket.
//!
//! * A green thread waits with `crate::cancellable_wait`, which also ends
//!   at the thread's effective deadline. Cancelled, it takes itself off
//!   the direction's waiter list and unwinds; an event that arrived
//!   meanwhile has moved the generation, so the next attempt (by this
//!   thread or another) sees it.
//! * A plain OS thread blocks in `poll(2)`, which no condition variable or
//!   park token ends. It polls a second descriptor of its own alongside
//!   the socket, an eventfd (a pipe elsewhere) that an interrupt makes
//!   readable, and bounds the poll by its effective deadline. The
//!   handshake that keeps an interrupt from falling between the thread's
//!   last check and its `poll` is the `POLLING` bit of `os_waiter.rs`,
//!   modelled in `os_wait.rs`. Rejected: a signal (`pthread_kill`) to
//!   break the `poll` with `EINTR` — one that lands just before the
//!   `poll` is lost unless the mask is juggled with `ppoll`, and signals
//!   belong to the program; polling in short slices — it costs wakeups
//!   forever and still answers late.
//! * A thread already unwinding while cancelled (rule R1) does not wait:
//!   the operation fails at once with an error of kind `TimedOut` saying
//!   the thread is cancelled. This is what lets a `BufWriter` whose peer
//!   never reads be dropped during a cancellation: its flush fails instead
//!   of hanging.

use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cancel::{self, Check};
use crate::reactor::Registrations;
use crate::scheduler::{lock, Shared};
use crate::trace::{SocketOp, WaitReason};
use crate::ThreadHandle;

mod os_wait;

pub(crate) use os_wait::InterruptFd;

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

    /// Wakes the waiters of both directions as if an event had arrived:
    /// each retries its operation. Called when the worker the descriptor
    /// was registered with exits (see "Outliving a runtime").
    pub(crate) fn wake_all(&self) {
        self.read.wake();
        self.write.wake();
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

/// Where a descriptor is registered: the runtime, the worker and the slot
/// in that worker's registration table.
struct Registration {
    shared: &'static Shared,
    worker: usize,
    slot: usize,
}

impl Registration {
    fn sources(&self) -> &'static Registrations {
        &self.shared.workers[self.worker].sources
    }
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
    /// The registration table of `registration`'s worker (null: none),
    /// read without the lock.
    registered: AtomicPtr<Registrations>,
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

    /// The error a wait returns instead of waiting while the thread is
    /// cancelled and already unwinding (rule R1): of kind `TimedOut`, with
    /// a message saying the thread is cancelled. For socket operations that
    /// wait in other ways (a retry after a pause) to fail the same way.
    ///
    /// ```
    /// let e = spool_runtime::IoSource::cancelled_error();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// assert!(e.to_string().contains("cancelled"));
    /// ```
    pub fn cancelled_error() -> io::Error {
        cancelled_while_unwinding()
    }

    /// Runs `op` until it returns something other than `WouldBlock`,
    /// waiting for `direction` readiness in between.
    ///
    /// With a `deadline`, gives up once it has passed and returns the error
    /// a timed-out blocking socket call returns (`EAGAIN`, of kind
    /// `WouldBlock`). `op` is always tried at least once.
    ///
    /// Each wait is a cancellation point: a cancelled thread unwinds with
    /// [`Cancelled`](crate::cancel::Cancelled) (and a thread that is
    /// already unwinding gets an error of kind `TimedOut`); a result `op`
    /// returned is always returned. See "Cancellation" in this module.
    ///
    /// A wait is recorded for thread dumps as a socket read or write (see
    /// [`io_as`](IoSource::io_as)) at the caller's call site, or that of
    /// the `#[track_caller]` chain that leads here.
    #[track_caller]
    pub fn io<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let what = match direction {
            Direction::Read => SocketOp::Read,
            Direction::Write => SocketOp::Write,
        };
        self.io_as(what, Location::caller(), direction, deadline, op)
    }

    /// As [`io`](IoSource::io), its waits recorded for thread dumps as the
    /// socket operation `what` (an `accept` waits for `Read` readiness, a
    /// `connect` for `Write`) at the call site `site` of the public
    /// blocking call.
    ///
    /// ```no_run
    /// # fn demo(source: &spool_runtime::IoSource, listener: &std::net::TcpListener) {
    /// use spool_runtime::{trace::SocketOp, Direction};
    /// use std::panic::Location;
    /// let site = Location::caller();
    /// let accepted = source.io_as(SocketOp::Accept, site, Direction::Read, None, || {
    ///     listener.accept()
    /// });
    /// # }
    /// ```
    pub fn io_as<R>(
        &self,
        what: SocketOp,
        site: &'static Location<'static>,
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
            self.wait_after(direction, seen, deadline, what, site)?;
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
    #[track_caller]
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
            let site = Location::caller();
            self.wait_after(Direction::Read, seen, deadline, SocketOp::Read, site)?;
        }
    }

    /// Waits until the generation of `direction` differs from `seen`: a
    /// cancellation point (see "Cancellation" above). The wait is recorded
    /// for thread dumps as `what` on this socket, at `site`.
    fn wait_after(
        &self,
        direction: Direction,
        seen: u64,
        deadline: Option<Instant>,
        what: SocketOp,
        site: &'static Location<'static>,
    ) -> io::Result<()> {
        let Some(core) = crate::worker::current().filter(|_| crate::in_green_thread()) else {
            return os_wait::wait(self.fd, direction, deadline);
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
        crate::trace::note_wait(WaitReason::Socket(self.fd, what), site);
        let withdraw = || {
            let id = me.id();
            lock(&waiters.parked).retain(|t| t.id() != id);
        };
        loop {
            match crate::cancellable_wait(deadline) {
                Check::Continue => {
                    // A stray wake (left by an earlier wait) leaves the
                    // generation unchanged: wait again.
                    if waiters.generation.load(Ordering::Acquire) != seen {
                        return Ok(());
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        withdraw();
                        return Err(timed_out());
                    }
                }
                Check::Raise(cancelled) => {
                    // Nothing was read or written yet, so nothing is lost:
                    // an event that came meanwhile moved the generation for
                    // whoever tries next.
                    withdraw();
                    cancel::raise(cancelled);
                }
                Check::Unwinding => {
                    withdraw();
                    return Err(cancelled_while_unwinding());
                }
            }
        }
    }

    /// Registers the descriptor with worker `worker` of `shared`, unless it
    /// is registered already with a worker that is still running (see
    /// "Outliving a runtime").
    fn register(&self, shared: &'static Shared, worker: usize) -> io::Result<()> {
        let current = self.registered.load(Ordering::Acquire);
        // SAFETY: a non-null `registered` points into a runtime's `Shared`,
        // which is leaked and so lives for the rest of the process.
        if !current.is_null() && !unsafe { &*current }.has_exited() {
            return Ok(());
        }
        let mut registration = lock(&self.registration);
        if let Some(old) = registration.as_ref() {
            if !old.sources().has_exited() {
                return Ok(()); // another thread registered meanwhile
            }
            // The old worker's exit dropped its reference to the record and
            // woke its waiters: only the name is left to forget.
            *registration = None;
            self.registered.store(ptr::null_mut(), Ordering::Release);
        }
        let sources = &shared.workers[worker].sources;
        let slot = sources
            .register(self.fd, &self.readiness)
            .map_err(describe_register_error)?;
        *registration = Some(Registration {
            shared,
            worker,
            slot,
        });
        self.registered
            .store(ptr::from_ref(sources).cast_mut(), Ordering::Release);
        Ok(())
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        let registration = self
            .registration
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(registration) = registration.take() {
            // The descriptor is still open (the contract of `new`), so this
            // removes exactly our registration.
            registration
                .sources()
                .deregister(self.fd, registration.slot);
        }
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

/// The error of an operation that would wait while the thread is
/// cancelled and already unwinding (rule R1 in `cancel.rs`), or cancelled
/// in a `panic = "abort"` build, which cannot unwind.
fn cancelled_while_unwinding() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        if cfg!(panic = "abort") {
            "spool: the thread is cancelled: an I/O operation that would wait fails at once \
             (this build cannot unwind, so cancellation is cooperative)"
        } else {
            "spool: the thread is cancelled: an I/O operation that would wait fails at once \
             while the thread unwinds"
        },
    )
}

/// Adds the limit and the fix, where known, to an error from registering a
/// descriptor with epoll; the OS error stays its source (see
/// `crate::Described`).
fn describe_register_error(e: io::Error) -> io::Error {
    let message = match e.raw_os_error() {
        Some(libc::ENOSPC) => "spool: cannot watch a socket: the per-user epoll watch limit \
             (/proc/sys/fs/epoll/max_user_watches) is reached: raise it with sysctl"
            .to_string(),
        Some(libc::ENOMEM) => {
            "spool: cannot watch a socket: the kernel is out of memory".to_string()
        }
        _ => "spool: cannot watch a socket".to_string(),
    };
    crate::Described::wrap(e, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Runtime, RuntimeConfig, SpawnOptions};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::{mpsc, Barrier, Weak};
    use std::time::Duration;

    /// A connected pair of non-blocking Unix stream sockets.
    fn socket_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let rc = unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "socketpair: {}", io::Error::last_os_error());
        // SAFETY: socketpair succeeded, so both are fresh descriptors that
        // nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn read_fd(fd: RawFd) -> io::Result<usize> {
        let mut buf = [0u8; 16];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// Registers `source` with the worker of a one-worker `runtime`: a
    /// green thread waits for it with a deadline that has already passed.
    fn register_on(runtime: &Runtime, source: &Arc<IoSource>) {
        let (done, finished) = mpsc::channel();
        let waiter = Arc::clone(source);
        runtime
            .spawn(SpawnOptions::default(), move || {
                let fd = waiter.fd();
                let result = waiter.io(Direction::Read, Some(Instant::now()), || read_fd(fd));
                drop(waiter);
                done.send(result.map_err(|e| e.kind())).unwrap();
            })
            .unwrap();
        let result = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(result, Err(io::ErrorKind::WouldBlock));
        assert!(lock(&source.registration).is_some(), "not registered");
    }

    /// The window: `IoSource::drop` decides that its worker still runs, the
    /// worker exits and frees what was released to it, then the drop hands
    /// over its record, which nobody frees any more. Each round drops the
    /// source on one OS thread while another drops the runtime, the drop
    /// delayed by a different amount each round to sweep the worker's exit.
    #[test]
    fn a_source_dropped_while_its_worker_exits_frees_its_readiness_record() {
        let mut leaked = 0;
        const ROUNDS: u32 = 4000;
        for round in 0..ROUNDS {
            let runtime = Runtime::new(RuntimeConfig {
                workers: Some(1),
                ..RuntimeConfig::default()
            })
            .unwrap();
            let (fd, _peer) = socket_pair();
            // SAFETY: `fd` stays open until after the source is dropped.
            let source = Arc::new(unsafe { IoSource::new(fd.as_raw_fd()) });
            register_on(&runtime, &source);
            let record: Weak<Readiness> = Arc::downgrade(&source.readiness);
            let start = Arc::new(Barrier::new(2));
            let dropper = {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    let delay = Duration::from_nanos(u64::from(round % 100) * 500);
                    let spin = Instant::now();
                    while spin.elapsed() < delay {
                        std::hint::spin_loop();
                    }
                    drop(Arc::into_inner(source).expect("the only reference"));
                    drop(fd);
                })
            };
            start.wait();
            drop(runtime);
            dropper.join().unwrap();
            if record.strong_count() != 0 {
                leaked += 1;
            }
        }
        assert_eq!(leaked, 0, "{leaked} of {ROUNDS} readiness records leaked");
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The handshake of "Outliving a runtime": a worker's exit against a
    //! thread that is about to wait on a descriptor registered with it.
    //! The model mirrors the orderings of the code: `exit` is
    //! `Registrations::close` followed by `Readiness::wake_all`; `wait` is
    //! `IoSource::io` with `register` and `wait_after` inlined, for an
    //! operation that keeps saying `WouldBlock`.
    //!
    //! Run with
    //! `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.
    use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    #[derive(Default)]
    struct Descriptor {
        /// The registration's worker has exited (`Registrations::exited`).
        exited: AtomicBool,
        /// The read direction's generation.
        generation: AtomicU64,
        /// Whether the waiter is on the read direction's list.
        listed: Mutex<bool>,
        /// The waiter was unparked.
        woken: AtomicBool,
        /// The exit has finished waking.
        exit_done: AtomicBool,
    }

    /// How the waiter's wait ended.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        /// It found the worker exited and registered with its own.
        Moved,
        /// The exit's wakeup reached it.
        Woken,
    }

    fn exit(d: &Descriptor, mark_first: bool) {
        if mark_first {
            d.exited.store(true, Ordering::Release);
        }
        // `Waiters::wake`.
        d.generation.fetch_add(1, Ordering::AcqRel);
        if !mark_first {
            d.exited.store(true, Ordering::Release);
        }
        let mut listed = d.listed.lock().unwrap();
        if std::mem::take(&mut *listed) {
            d.woken.store(true, Ordering::Release);
        }
        drop(listed);
        d.exit_done.store(true, Ordering::Release);
    }

    fn wait(d: &Descriptor) -> Outcome {
        loop {
            let seen = d.generation.load(Ordering::Acquire);
            // The operation says `WouldBlock`; `register` looks at the
            // registration's worker.
            if d.exited.load(Ordering::Acquire) {
                return Outcome::Moved;
            }
            {
                let mut listed = d.listed.lock().unwrap();
                if d.generation.load(Ordering::Acquire) != seen {
                    continue; // an event came: retry the operation
                }
                *listed = true;
            }
            // Parked until unparked.
            loop {
                if d.exit_done.load(Ordering::Acquire) {
                    assert!(
                        d.woken.load(Ordering::Acquire),
                        "stranded: parked on an exited worker that did not wake it"
                    );
                }
                if d.woken.load(Ordering::Acquire) {
                    return Outcome::Woken;
                }
                thread::yield_now();
            }
        }
    }

    fn exit_against_a_waiter(mark_first: bool) {
        loom::model(move || {
            let d = Arc::new(Descriptor::default());
            let worker = {
                let d = Arc::clone(&d);
                thread::spawn(move || exit(&d, mark_first))
            };
            let outcome = wait(&d);
            worker.join().unwrap();
            assert!(matches!(outcome, Outcome::Moved | Outcome::Woken));
        });
    }

    #[test]
    fn a_worker_exit_strands_no_waiter() {
        exit_against_a_waiter(true);
    }

    /// The deliberate mutation: marking the worker exited after advancing
    /// the generation lets a waiter read the new generation, miss the
    /// mark, and park after the exit has woken everyone.
    #[test]
    #[should_panic(expected = "stranded")]
    fn marking_the_exit_after_the_wakeup_strands_a_waiter() {
        exit_against_a_waiter(false);
    }
}
