//! Explicit runtime configuration: [`Runtime`], [`Builder`] and [`run`].
//!
//! Most programs never touch this module: the first spawn starts a global
//! runtime with one worker per core (or `SPOOL_WORKERS` workers). Use it to
//! choose the worker count and default stack size, to run several isolated
//! runtimes (tests do), or to run a closure as a green thread and get its
//! result with [`run`].

use std::fmt;
use std::io;

use spool_runtime::RuntimeConfig;

use crate::thread::{self, JoinHandle};

/// A set of worker OS threads running green threads.
///
/// Green threads spawned from inside a runtime's green threads (with
/// [`thread::spawn`]) run on that same runtime. Dropping a `Runtime` stops
/// its workers; green threads that have not finished by then never run
/// again: one that never started has its closure dropped, one left blocked
/// is leaked (its memory stays allocated, its destructors do not run), and
/// joining either returns an error saying the runtime shut down. A scope
/// whose thread is left blocked returns too, reporting the thread as
/// panicked unless it was joined.
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
    /// core; 256 KiB stacks.
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

    /// Starts the runtime. Fails with `InvalidInput` on a bad worker count
    /// or stack size (or a bad `SPOOL_WORKERS`). When worker threads or
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
        let inner = unsafe { thread::Builder::new().spawn_run(f, &self.inner) };
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
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: 'static closure and result.
        match unsafe { thread::Builder::new().spawn_unchecked(f, None, Some(&self.inner)) } {
            Ok(inner) => JoinHandle::from_inner(inner),
            Err(e) => panic!("failed to spawn thread: {e}"),
        }
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
    let inner = unsafe { thread::Builder::new().spawn_run(f, runtime) };
    match inner {
        Ok(inner) => match inner.join_to_end() {
            Ok(value) => value,
            Err(payload) => spool_runtime::cancel::resume(payload),
        },
        Err(e) => panic!("failed to spawn thread: {e}"),
    }
}
