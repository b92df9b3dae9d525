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
//!
//! # Looking in from outside: dump signal and monitor console
//! Two opt-in ways to see every green thread of a running program without
//! changing its code, both served by one OS thread of spool's,
//! `spool-monitor`, that uses no green thread and no worker, so they work
//! while every worker is wedged:
//!
//! * `SPOOL_DUMP_SIGNAL=SIGQUIT` (or `SIGUSR1`, `SIGUSR2`; the name with
//!   or without `SIG`, in any case, or its number) or
//!   [`Builder::dump_signal`]: on that signal the program prints
//!   [`spool::debug::dump`](crate::debug::dump) to stderr and keeps
//!   running (`kill -QUIT <pid>`, or Ctrl-\ in a terminal).
//! * `SPOOL_MONITOR=127.0.0.1:48802` (an IP address and port, or
//!   `localhost:PORT`, or a Unix socket path starting with `/` or `./`) or
//!   [`Builder::monitor`]: a line-based console, for `nc 127.0.0.1 48802`
//!   or `nc -U ./spool.sock`. Loopback only: a non-loopback address is
//!   refused unless `SPOOL_MONITOR_ALLOW_REMOTE=1` or
//!   [`Builder::allow_remote_monitor`] says otherwise, since whoever
//!   connects can read every thread's state and cancel threads. Its
//!   commands (each reply ends with a line holding a single `.`):
//!
//!   | command | reply |
//!   |---|---|
//!   | `ps` | one line per green thread: id, name, state or wait reason, for how long, worker |
//!   | `where ID` | that thread's block of the dump: wait, call site, spawn site, cancel scopes |
//!   | `tree` | the threads nested under their cancel scopes and task groups |
//!   | `dump` | the whole dump, as the dump signal prints it |
//!   | `cancel ID` | cancels the thread as `JoinHandle::cancel` does (reason: "cancelled from the monitor console"); says whether it was found |
//!   | `stats` | per runtime and worker: live threads, threads queued to start, sockets, sleeping; parked and runnable counts; the `unblock` pool's threads and queue |
//!   | `help` | the commands |
//!   | `quit` | closes the connection |
//!
//!   An unknown command gets a one-line `error:` reply and the connection
//!   stays open; a client that disconnects mid-reply ends only its own
//!   connection. Up to 16 clients are served at once, each by an OS
//!   thread. `stats` reads counters the engine keeps anyway; it does not
//!   count context switches or each worker's queue of woken threads,
//!   which would cost the scheduling path.
//!
//! The variables are read when a runtime starts (the global one on first
//! use), like every variable in [the table](crate#configuration); a
//! malformed value is an `InvalidInput` error at that start, naming the
//! variable, the value and its accepted forms, and a non-loopback address
//! without the opt-in is a `PermissionDenied` one. Builder options win
//! over the variables. A console from `SPOOL_MONITOR` serves the whole
//! process for its lifetime; one from [`Builder::monitor`] closes when its
//! runtime is dropped (a Unix socket's file is removed). The signal's
//! handler, once installed, stays; any handler the program had for that
//! signal is replaced.

use std::fmt;
use std::io;
use std::time::Duration;

use spool_runtime::RuntimeConfig;
pub use spool_runtime::{ShutdownReport, DEFAULT_BLOCKING_THRESHOLD, DEFAULT_SHUTDOWN_GRACE};

pub use crate::monitor::{DumpSignal, MonitorAddr, ParseError};

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
    /// What the start set up for the dump signal and console; dropped
    /// after `inner`, so the console outlives the shutdown.
    monitor: crate::monitor::Started,
}

/// Configures a [`Runtime`].
///
/// ```
/// use std::time::Duration;
///
/// let rt = spool::runtime::Builder::new()
///     .workers(2)
///     .stack_size(128 * 1024)
///     .blocking_threshold(Duration::from_millis(50))
///     .build()?;
/// assert_eq!(rt.workers(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
#[must_use = "call `build` or `build_global`"]
pub struct Builder {
    config: RuntimeConfig,
    monitor: crate::monitor::Options,
}

impl Builder {
    /// A builder with the defaults: workers from `SPOOL_WORKERS` or one per
    /// core; stacks of `SPOOL_STACK_SIZE` or `RUST_MIN_STACK` bytes or
    /// 256 KiB; a blocking threshold from `SPOOL_BLOCKING_MS` or 100 ms
    /// (see [Configuration](crate#configuration) for every variable).
    ///
    /// ```
    /// let rt = spool::runtime::Builder::new().workers(1).build().unwrap();
    /// assert_eq!(rt.run(|| 1 + 1), 2);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Sets the number of worker OS threads (1 to 1024).
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(3).build()?;
    /// assert_eq!(rt.workers(), 3);
    /// // Out of range: an error that names the bounds, not a panic.
    /// let err = spool::Runtime::builder().workers(0).build().err().unwrap();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Builder {
        self.config.workers = Some(workers);
        self
    }

    /// Sets the default stack size of green threads, in bytes (rounded up
    /// to whole pages, at least 16 KiB, at most 1 GiB). Overrides
    /// `SPOOL_STACK_SIZE` and `RUST_MIN_STACK`;
    /// [`thread::Builder::stack_size`] overrides it for one thread.
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).stack_size(1 << 20).build().unwrap();
    /// assert_eq!(rt.stack_size(), 1 << 20);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.config.stack_size = Some(bytes);
        self
    }

    /// Prints a dump of every green thread to stderr on `signal`, and keeps
    /// running (see [Looking in from outside](self#looking-in-from-outside-dump-signal-and-monitor-console)).
    /// Overrides `SPOOL_DUMP_SIGNAL`.
    ///
    /// ```
    /// use spool::runtime::DumpSignal;
    ///
    /// let rt = spool::Runtime::builder()
    ///     .workers(1)
    ///     .dump_signal(DumpSignal::Usr2)
    ///     .build()
    ///     .unwrap();
    /// // `kill -USR2 <pid>` now prints the dump.
    /// # drop(rt);
    /// ```
    pub fn dump_signal(mut self, signal: DumpSignal) -> Builder {
        self.monitor.signal = Some(signal);
        self
    }

    /// Serves the monitor console on `address` (a TCP address or a Unix
    /// socket path; see [Looking in from outside](self#looking-in-from-outside-dump-signal-and-monitor-console)),
    /// until the runtime is dropped. Overrides `SPOOL_MONITOR`. Port 0
    /// picks a free port: [`Runtime::monitor_addr`] tells which.
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    ///
    /// let rt = spool::Runtime::builder()
    ///     .workers(1)
    ///     .monitor("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
    ///     .build()
    ///     .unwrap();
    /// let Some(spool::runtime::MonitorAddr::Tcp(addr)) = rt.monitor_addr() else { panic!() };
    /// let mut console = std::net::TcpStream::connect(addr).unwrap();
    /// console.write_all(b"ps\n").unwrap();
    /// let mut lines = BufReader::new(console).lines().map(Result::unwrap);
    /// let greeting: Vec<_> = lines.by_ref().take_while(|l| l != ".").collect();
    /// assert!(greeting[0].starts_with("spool monitor"));
    /// let ps: Vec<_> = lines.take_while(|l| l != ".").collect();
    /// assert!(ps.iter().any(|l| l.starts_with("runtime ")));
    /// ```
    pub fn monitor(mut self, address: impl Into<MonitorAddr>) -> Builder {
        self.monitor.address = Some(address.into());
        self
    }

    /// Allows (or forbids) a monitor console on an address other than
    /// loopback, which is refused otherwise: whoever connects can read
    /// every thread's state and cancel threads. Overrides
    /// `SPOOL_MONITOR_ALLOW_REMOTE`.
    ///
    /// ```
    /// // A console on every interface is refused unless allowed.
    /// let err = spool::Runtime::builder()
    ///     .workers(1)
    ///     .monitor("0.0.0.0:0".parse::<std::net::SocketAddr>().unwrap())
    ///     .build()
    ///     .err()
    ///     .unwrap();
    /// assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    /// ```
    pub fn allow_remote_monitor(mut self, allow: bool) -> Builder {
        self.monitor.allow_remote = Some(allow);
        self
    }

    /// What the runtime does on a global deadlock — every thread parked
    /// and nothing left that could wake one (see
    /// [`spool::debug`](crate::debug#deadlocks)): print a report and a dump
    /// (the default), also exit with status 2 as Go does, or nothing.
    /// Without it, `SPOOL_DEADLOCK` (`report`, `fatal`, `off`) decides.
    ///
    /// ```
    /// use spool::debug::DeadlockMode;
    ///
    /// let rt = spool::Runtime::builder().deadlock(DeadlockMode::Off).build().unwrap();
    /// assert_eq!(rt.run(|| 1), 1);
    /// ```
    pub fn deadlock(mut self, mode: crate::debug::DeadlockMode) -> Builder {
        self.config.deadlock = Some(mode);
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
    /// or stack size, or on a bad value of any variable it reads (see
    /// [Configuration](crate#configuration): the message names the
    /// variable, the value and what is accepted), with `PermissionDenied` on a
    /// non-loopback monitor address without
    /// [`allow_remote_monitor`](Builder::allow_remote_monitor), and with
    /// the OS error's kind when the console's socket cannot be bound. When
    /// worker threads or their epoll instances cannot be created, fails with the OS error's
    /// kind and a message naming what could not be created (and, when no
    /// descriptor is left, the limit to raise); the OS error itself is the
    /// error's `source()`, as described under
    /// [`spool::net`'s errors](crate::net#errors).
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).build()?;
    /// assert_eq!(rt.run(|| "on a green thread"), "on a green thread");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<Runtime> {
        crate::debug::install_reporter();
        let monitor = crate::monitor::start(&self.monitor)
            .map_err(|error| spool_runtime::config::and_engine_errors(error, &self.config))?;
        Ok(Runtime {
            inner: spool_runtime::Runtime::new(self.config)?,
            monitor,
        })
    }

    /// Starts the *global* runtime with this configuration, the one
    /// [`thread::spawn`] uses outside any runtime. Fails with
    /// `AlreadyExists` if it already runs (configure it before the first
    /// spawn).
    ///
    /// ```
    /// // First, before anything spawns:
    /// spool::Runtime::builder().workers(2).build_global()?;
    /// let h = spool::thread::spawn(|| 1 + 1); // runs on that global runtime
    /// assert_eq!(h.join().unwrap(), 2);
    /// // Too late now: it runs.
    /// let err = spool::Runtime::builder().build_global().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_global(self) -> io::Result<()> {
        crate::debug::install_reporter();
        let monitor = crate::monitor::start(&self.monitor)
            .map_err(|error| spool_runtime::config::and_engine_errors(error, &self.config))?;
        spool_runtime::init_global(self.config)?;
        // The global runtime is never dropped: neither is its console.
        monitor.keep();
        Ok(())
    }
}

impl Runtime {
    /// A [`Builder`] to configure a runtime.
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).build()?;
    /// # drop(rt);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the default configuration.
    ///
    /// ```
    /// let rt = spool::Runtime::new()?; // one worker per core, or SPOOL_WORKERS
    /// assert_eq!(rt.run(|| 2 + 2), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// The number of worker OS threads.
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(2).build()?;
    /// assert_eq!(rt.workers(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.inner.workers()
    }

    /// The default stack size of this runtime's green threads, in bytes:
    /// what [`Builder::stack_size`], `SPOOL_STACK_SIZE` or `RUST_MIN_STACK`
    /// asked for, or 256 KiB, rounded up to whole pages.
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).stack_size(100_000).build().unwrap();
    /// assert!(rt.stack_size() >= 100_000); // rounded up to whole pages
    /// ```
    pub fn stack_size(&self) -> usize {
        self.inner.stack_size()
    }

    /// The address the monitor console serves this runtime on (the port
    /// chosen, when [`Builder::monitor`] asked for port 0), if one does.
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.monitor_addr(), None); // unless SPOOL_MONITOR is set
    /// # drop(rt);
    /// ```
    pub fn monitor_addr(&self) -> Option<&MonitorAddr> {
        self.monitor.address()
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
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).build()?;
    /// let words = vec!["borrowed", "from", "the", "caller"];
    /// // `f` may borrow: `run` returns only after it has.
    /// let n = rt.run(|| words.iter().map(|w| w.len()).sum::<usize>());
    /// assert_eq!(n, 21);
    /// // A timeout around `run` reaches the green thread.
    /// let r = spool::time::timeout(std::time::Duration::from_millis(5), || {
    ///     rt.run(|| spool::thread::sleep(std::time::Duration::from_secs(60)))
    /// });
    /// assert!(r.is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// ```
    /// let rt = spool::Runtime::builder().workers(1).build()?;
    /// let h = rt.spawn(|| spool::thread::current().id());
    /// // Joinable from any thread; green threads it spawns stay on `rt`.
    /// let id = h.join().unwrap();
    /// assert_ne!(id, spool::thread::current().id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
                .spawn_in(f, None, Some(&self.inner))
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
/// If the global runtime cannot start (for example a bad `SPOOL_WORKERS`:
/// the message names the variable, see [Configuration](crate#configuration))
/// or no stack can be had.
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    crate::debug::install_reporter();
    crate::monitor::hook_global_start();
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
