//! Explicit runtime configuration: [`Runtime`], [`Builder`] and [`run`].
//!
//! Most programs never touch this module: the first spawn starts a global
//! runtime with one worker per core (or `SPOOL_WORKERS` workers). Use it to
//! choose the worker count and default stack size, to run several isolated
//! runtimes (tests do), to run a closure as a green thread and get its
//! result with [`run`], or to shut a runtime down with a grace period of
//! your choosing ([`Runtime::shutdown`], [`ShutdownReport`]), or to set
//! how long a green thread may hold its worker before the blocking
//! watchdog reports it ([`Builder::blocking_threshold`]).

use std::fmt;
use std::io;
use std::time::Duration;

use spool_runtime::RuntimeConfig;
pub use spool_runtime::{ShutdownReport, DEFAULT_BLOCKING_THRESHOLD, DEFAULT_SHUTDOWN_GRACE};

use crate::thread::{self, JoinHandle};

/// A set of worker OS threads running green threads.
///
/// Green threads spawned from inside a runtime's green threads (with
/// [`thread::spawn`]) run on that same runtime.
///
/// # Shutting down
/// Dropping a `Runtime` shuts it down as [`Runtime::shutdown`] does, with a
/// grace period of [`DEFAULT_SHUTDOWN_GRACE`] (one second):
///
/// 1. every green thread is cancelled with
///    [`CancelReason::Shutdown`](crate::cancel::CancelReason::Shutdown):
///    it unwinds from its next cancellation point (any blocking call of
///    spool's: `park`, `sleep`, a channel, a lock, a socket, `join`),
///    running its destructors, and its `join` returns the
///    [`Cancelled`](crate::cancel::Cancelled) payload. A thread that starts
///    during the grace (one that was queued, or one an unwinding thread
///    spawns) starts cancelled: its closure is dropped unrun and its `join`
///    returns the same payload;
/// 2. the workers keep running for up to the grace period, until every
///    cancelled thread has finished;
/// 3. then they stop. A thread that never ran has its closure dropped and
///    its `join` returns an error saying the runtime shut down. A thread
///    still blocked — where no cancellation reaches: in a
///    [`shield`](crate::cancel::shield), in an [`unblock`](crate::unblock)
///    whose closure does not return, or in a scope waiting for such a
///    thread — is *leaked*: it never runs again, its memory stays
///    allocated, its destructors do not run, and its `join` returns an
///    error saying the runtime shut down (a scope whose thread is leaked
///    returns too, reporting the thread as panicked unless it was joined).
///    A dropped runtime that leaked threads says how many in one line on
///    stderr.
///
/// The thread that drops the runtime waits with spool's own wait, which is
/// no cancellation point: a green thread of another runtime switches out
/// meanwhile. Dropped from one of its own green threads, the runtime cannot
/// wait (that thread is cancelled too): the shutdown goes on in the
/// background and the drop returns at once. The global runtime is never
/// dropped.
///
/// # The blocking watchdog
/// A worker runs one green thread at a time and gets its OS thread back
/// only when that thread reaches a blocking point: one of spool's blocking
/// calls (or [`thread::yield_now`]). A green thread that calls a blocking
/// std function (`std::thread::sleep`, a `std::sync::Mutex`, a std socket)
/// or computes for a long time stalls every other green thread on its
/// worker. A watchdog OS thread, started with the first runtime that
/// wants it, notices a
/// green thread that has run for longer than the runtime's threshold
/// without switching out and says so on stderr, once per spawn site:
///
/// ```text
/// spool: thread 'conn-17' (42) has run for 120 ms on worker 1 without reaching a blocking point (spawned at src/server.rs:44); a blocking std call or a long computation stalls every green thread on this worker — use spool's equivalent or spool::unblock
/// ```
///
/// The cure is spool's equivalent of the call (`spool::thread::sleep`,
/// `spool::sync`, `spool::net`), [`unblock`](crate::unblock) for a call
/// that has none, or [`thread::yield_now`] now and then in a long
/// computation. The threshold is [`DEFAULT_BLOCKING_THRESHOLD`] (100 ms),
/// or `SPOOL_BLOCKING_MS` (a whole number of milliseconds; `0` turns the
/// watchdog off), or what [`Builder::blocking_threshold`] sets. A
/// malformed `SPOOL_BLOCKING_MS` makes starting a runtime fail with
/// `InvalidInput` naming the variable.
///
/// The line is printed when the green thread finally switches out, so it
/// gives the whole length of the stall; the watchdog never interrupts the
/// thread or its call. Of a thread still running a second past the
/// threshold the watchdog says so itself, then, naming only the worker (it
/// may not read the thread's name while the thread runs), once per worker
/// (the named line still follows when the thread switches out). The
/// watchdog costs a store and a load per context switch.
///
/// ```
/// let rt = spool::Runtime::builder().workers(2).build().unwrap();
/// let answer = rt.run(|| {
///     let h = spool::thread::spawn(|| 6 * 7);
///     h.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct Runtime {
    inner: spool_runtime::Runtime,
}

/// Configures a [`Runtime`].
#[derive(Debug, Default, Clone)]
#[must_use = "call `build` or `build_global`"]
pub struct Builder {
    config: RuntimeConfig,
}

impl Builder {
    /// A builder with the defaults: workers from `SPOOL_WORKERS` or one per
    /// core; 256 KiB stacks; a blocking threshold from `SPOOL_BLOCKING_MS`
    /// or 100 ms.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Sets the number of worker OS threads (1 to 1024).
    pub fn workers(mut self, workers: usize) -> Builder {
        self.config.workers = Some(workers);
        self
    }

    /// Sets the default stack size of green threads, in bytes (rounded up
    /// to whole pages, at least 16 KiB, at most 1 GiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.config.stack_size = Some(bytes);
        self
    }

    /// Sets how long a green thread may run without reaching a blocking
    /// point before the watchdog reports it on stderr, once per spawn site
    /// (see [the blocking watchdog](Runtime#the-blocking-watchdog));
    /// `Duration::ZERO` turns the watchdog off for this runtime. Overrides
    /// `SPOOL_BLOCKING_MS`; the default is [`DEFAULT_BLOCKING_THRESHOLD`]
    /// (100 ms).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder()
    ///     .workers(1)
    ///     .blocking_threshold(Duration::from_millis(20))
    ///     .build()
    ///     .unwrap();
    /// rt.run(|| {
    ///     // Reported: holds the only worker for 50 ms.
    ///     std::thread::sleep(Duration::from_millis(50));
    ///     // Not reported: spool's sleep switches out.
    ///     spool::thread::sleep(Duration::from_millis(50));
    /// });
    /// ```
    pub fn blocking_threshold(mut self, threshold: Duration) -> Builder {
        self.config.blocking_threshold = Some(threshold);
        self
    }

    /// Starts the runtime. Fails with `InvalidInput` on a bad worker count
    /// or stack size (or a bad `SPOOL_WORKERS` or `SPOOL_BLOCKING_MS`). When worker threads or
    /// their epoll instances cannot be created, fails with the OS error's
    /// kind and a message naming what could not be created (and, when no
    /// descriptor is left, the limit to raise); the OS error itself is the
    /// error's `source()`, as described under
    /// [`spool::net`'s errors](crate::net#errors).
    pub fn build(self) -> io::Result<Runtime> {
        Ok(Runtime {
            inner: spool_runtime::Runtime::new(self.config)?,
        })
    }

    /// Starts the *global* runtime with this configuration, the one
    /// [`thread::spawn`] uses outside any runtime. Fails with
    /// `AlreadyExists` if it already runs (configure it before the first
    /// spawn).
    pub fn build_global(self) -> io::Result<()> {
        spool_runtime::init_global(self.config).map(|_| ())
    }
}

impl Runtime {
    /// A [`Builder`] to configure a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the default configuration.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// The number of worker OS threads.
    pub fn workers(&self) -> usize {
        self.inner.workers()
    }

    /// Runs `f` as a green thread on this runtime and blocks the caller
    /// (parks it, if the caller is itself a green thread) until `f`
    /// returns. `f` may borrow from the caller. A panic in `f` resumes in
    /// the caller.
    ///
    /// `f` runs inside the caller's cancel scopes, so a timeout or a cancel
    /// of the caller reaches it and its cancellation resumes in the caller;
    /// the wait itself is not a cancellation point, since `f` borrows from
    /// the caller's stack.
    ///
    /// # Panics
    /// If the green thread cannot be created (no stack could be had).
    #[track_caller]
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // SAFETY: we join the thread before returning (with a wait that no
        // cancellation cuts short), and `self` (so its
        // workers) outlives the call; if the thread never finishes we never
        // return, so its borrows stay valid. (Nor can the runtime be dropped
        // during the call and abandon the thread: `self` is borrowed. Were
        // it abandoned, its borrows would not be used again: see
        // `spool_runtime::Runtime::spawn_unchecked`.)
        let inner = unsafe {
            thread::Builder::new()
                .at(std::panic::Location::caller())
                .spawn_run(f, &self.inner)
        };
        match inner {
            Ok(inner) => match inner.join_to_end() {
                Ok(value) => value,
                Err(payload) => spool_runtime::cancel::resume(payload),
            },
            Err(e) => panic!("failed to spawn thread: {e}"),
        }
    }

    /// Spawns a green thread on this runtime, from any thread.
    ///
    /// # Panics
    /// As [`thread::spawn`].
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: 'static closure and result.
        match unsafe {
            thread::Builder::new()
                .at(std::panic::Location::caller())
                .spawn_unchecked(f, None, Some(&self.inner))
        } {
            Ok(inner) => JoinHandle::from_inner(inner),
            Err(e) => panic!("failed to spawn thread: {e}"),
        }
    }
}

impl Runtime {
    /// Shuts the runtime down: cancels every green thread with
    /// [`CancelReason::Shutdown`](crate::cancel::CancelReason::Shutdown),
    /// waits up to `grace` for them to unwind and finish, then stops the
    /// workers and leaks what is left, and reports how many threads it
    /// leaked (see [Shutting down](Runtime#shutting-down)). Dropping a
    /// runtime does the same with a grace of [`DEFAULT_SHUTDOWN_GRACE`].
    ///
    /// A zero `grace` gives the cancelled threads no time to unwind: the
    /// workers stop at once and every started, unfinished thread is
    /// leaked, which is what the report counts. A grace too long for an
    /// [`Instant`](std::time::Instant) to express (`Duration::MAX`) waits
    /// without limit.
    ///
    /// Called from one of this runtime's own green threads, it cannot wait
    /// (the caller is one of the threads it cancels, and it unwinds at its
    /// next cancellation point): it returns at once, the shutdown goes on
    /// in the background, and the report says so
    /// ([`ShutdownReport::is_in_background`]) without a count.
    ///
    /// ```
    /// use spool::cancel::{shield, CancelReason, Cancelled};
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder().workers(2).build().unwrap();
    /// let (tx, rx) = spool::sync::mpsc::channel::<u32>();
    /// let receiver = rt.spawn(move || rx.recv());
    /// // A shield keeps cancellation out: this one is leaked.
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let stuck = rt.spawn(move || {
    ///     started_tx.send(()).unwrap();
    ///     shield(|| loop { spool::thread::park() })
    /// });
    /// started.recv().unwrap();
    ///
    /// let report = rt.shutdown(Duration::from_millis(100));
    /// assert_eq!(report.leaked(), 1);
    /// eprintln!("{report}"); // 1 green thread did not finish within 100ms ...
    ///
    /// let payload = receiver.join().unwrap_err();
    /// let cancelled = Cancelled::from_payload(&payload).unwrap();
    /// assert_eq!(cancelled.reason(), &CancelReason::Shutdown);
    /// assert!(stuck.join().is_err()); // "the runtime shut down ..."
    /// drop(tx);
    /// ```
    pub fn shutdown(self, grace: Duration) -> ShutdownReport {
        self.inner.shutdown(grace)
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Runs `f` as a green thread on the global runtime (starting it if
/// needed) and returns its result; a panic in `f` resumes in the caller.
///
/// ```
/// let v = spool::run(|| spool::thread::current().name().map(String::from));
/// assert_eq!(v, None); // green threads are unnamed unless named
/// ```
///
/// # Panics
/// If the global runtime cannot start (for example a bad `SPOOL_WORKERS`)
/// or no stack can be had.
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let runtime = match spool_runtime::global() {
        Ok(runtime) => runtime,
        Err(e) => panic!("failed to start the spool runtime: {e}"),
    };
    // SAFETY: as `Runtime::run`; the global runtime is never dropped.
    let inner = unsafe {
        thread::Builder::new()
            .at(std::panic::Location::caller())
            .spawn_run(f, runtime)
    };
    match inner {
        Ok(inner) => match inner.join_to_end() {
            Ok(value) => value,
            Err(payload) => spool_runtime::cancel::resume(payload),
        },
        Err(e) => panic!("failed to spawn thread: {e}"),
    }
}
