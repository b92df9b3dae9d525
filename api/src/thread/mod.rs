//! Green threads with `std::thread`'s API.
//!
//! Every item here mirrors the item of the same name in [`std::thread`], so
//! a program ports by changing `std::thread` to `spool::thread` in its
//! paths. The difference is underneath: [`spawn`] starts a *green* thread —
//! a stackful coroutine on a guarded stack (256 KiB unless
//! [configured](crate#configuration)), scheduled on a few
//! worker OS threads — and every blocking call ([`JoinHandle::join`],
//! [`park`], [`sleep`], [`yield_now`]) switches to another green thread
//! instead of blocking the OS thread.
//!
//! The same functions work on plain OS threads (`main`, threads from
//! `std::thread::spawn`): there they block the OS thread, so programs can
//! be ported one part at a time. The first spawn from outside a runtime
//! starts the global runtime (one worker per core, or `SPOOL_WORKERS`).
//!
//! ```
//! use spool::thread;
//! use std::time::Duration;
//!
//! let handle = thread::Builder::new()
//!     .name("worker".into())
//!     .spawn(|| {
//!         thread::sleep(Duration::from_millis(1));
//!         format!("hello from {}", thread::current().name().unwrap())
//!     })
//!     .unwrap();
//! assert_eq!(handle.join().unwrap(), "hello from worker");
//! ```
//!
//! # What a green thread must not do
//! A green thread shares its worker OS thread with others, so a call that
//! blocks the *OS thread* (a `std::sync::Mutex` held by a green thread that
//! is switched out, `std::thread::sleep`, a blocking `std::net` read) stalls
//! every green thread on that worker until it returns. Use spool's
//! counterparts. Values in `std::thread_local!` are per *worker*, shared by
//! the green threads on it; use [`spool::thread_local!`](crate::thread_local)
//! for per-green-thread values (next section).
//!
//! # Thread-local storage
//! `std::thread_local!` keeps one value per *OS* thread, so the green
//! threads of one worker share its values. A started green thread never
//! moves to another worker, so no other OS thread ever touches the values
//! it sees; but among the green threads of the worker:
//!
//! * **As with std** (one value, sound): values initialised without
//!   blocking on spool and not borrowed across a blocking call. A `const`
//!   initialiser, or a lazy one that calls no blocking spool function
//!   (`sleep`, `join`, `park`, a lock or `Condvar` that waits, a channel
//!   send or receive, a socket operation, [`unblock`](crate::unblock)), is
//!   run once per worker, and a `with` closure that does not block is never
//!   interleaved with another green thread's.
//! * **Shared, but sound**: a `&T` (a `RefCell` borrow, an iterator) held
//!   across a blocking call. Another green thread of the worker may run in
//!   between and sees, and may change, the same value; a `RefCell` borrowed
//!   across the call makes its `borrow_mut` panic.
//! * **Unsound**: a lazy initialiser that blocks on spool. While it is
//!   parked, another green thread of the worker finds the value still
//!   uninitialised and runs the initialiser too; when both finish, std
//!   stores the second value over the first and drops the first, which the
//!   first green thread may already be borrowing inside `with` — a
//!   use-after-free, from safe code.
//!
//! spool cannot prevent the last case: std's storage is private to std
//! (reached through the compiler's thread-local support, with no hook for
//! a runtime to give each green thread its own copy), and spool cannot
//! detect it either — a green thread that parks has no way to know that
//! one of its callers is a std initialiser (nothing marks those frames,
//! and the same blocking call is fine everywhere else).
//!
//! [`spool::thread_local!`](crate::thread_local) has none of these limits:
//! each green thread (and each OS thread) gets its own value, stored in
//! the green thread itself, and its initialiser may block. It takes std's
//! syntax unchanged, so a port swaps the macro name:
//!
//! ```
//! use std::cell::RefCell;
//! // Before: std::thread_local! { ... }
//! spool::thread_local! {
//!     static BUFFER: RefCell<String> = RefCell::new(String::new());
//! }
//! BUFFER.with_borrow_mut(|b| b.push_str("mine"));
//! let theirs = spool::thread::spawn(|| BUFFER.with_borrow(|b| b.len())).join().unwrap();
//! assert_eq!(theirs, 0);
//! ```
//!
//! The same trap exists in std's one-time initialisers: a
//! `std::sync::OnceLock::get_or_init`, `LazyLock` or `Once::call_once`
//! whose initialiser blocks on spool makes every other thread that reaches
//! it meanwhile block its *OS thread* until it is done. A green thread of
//! the initialiser's own worker reaching it blocks that worker, so the
//! parked initialiser can never resume: the worker deadlocks, silently.
//! [`spool::sync::OnceLock`](crate::sync::OnceLock),
//! [`LazyLock`](crate::sync::LazyLock) and [`Once`](crate::sync::Once)
//! park the waiting green threads instead.

mod local;
mod packet;
mod scoped;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use spool_runtime::{SpawnOptions, ThreadHandle};

pub use local::{AccessError, LocalKey};
pub use scoped::{scope, Scope, ScopedJoinHandle};
pub use std::thread::{available_parallelism, Result};

use packet::{Completion, Packet, ScopeData};

/// Thread closures bigger than this many bytes are boxed at once (see
/// `Builder::spawn_unchecked`).
const BOX_CLOSURES_OVER: usize = 1024;

pub use spool_runtime::ThreadId;

/// A handle to a thread: its id, its name, and [`Thread::unpark`].
///
/// ```
/// use spool::thread;
/// let t = thread::Builder::new().name("named".into()).spawn(|| {}).unwrap();
/// assert_eq!(t.thread().name(), Some("named"));
/// t.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Thread {
    handle: ThreadHandle,
}

impl Thread {
    fn from_handle(handle: ThreadHandle) -> Thread {
        Thread { handle }
    }

    /// The thread's unique identifier.
    ///
    /// ```
    /// use spool::thread;
    ///
    /// let child = thread::spawn(|| thread::current().id());
    /// let id = child.thread().id();
    /// assert_eq!(child.join().unwrap(), id);
    /// assert_ne!(id, thread::current().id());
    /// ```
    pub fn id(&self) -> ThreadId {
        self.handle.thread_id()
    }

    /// The thread's name, if it was given one (`"main"` for the main
    /// thread, as with std).
    ///
    /// ```
    /// use spool::thread;
    ///
    /// let named = thread::Builder::new().name("worker-1".into()).spawn(|| ()).unwrap();
    /// assert_eq!(named.thread().name(), Some("worker-1"));
    /// assert_eq!(thread::spawn(|| ()).thread().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.handle.name()
    }

    /// Makes the thread's token available: if it is parked it wakes, and
    /// otherwise its next [`park`] returns at once. Tokens do not add up.
    ///
    /// ```
    /// use spool::thread;
    /// let t = thread::spawn(|| thread::park());
    /// t.thread().unpark();
    /// t.join().unwrap();
    /// ```
    pub fn unpark(&self) {
        self.handle.unpark();
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// Thread factory: sets the name and stack size of a new green thread.
///
/// ```
/// use spool::thread;
/// let h = thread::Builder::new()
///     .name("big-stack".into())
///     .stack_size(1 << 20)
///     .spawn(|| 6 * 7)
///     .unwrap();
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[derive(Debug, Default)]
#[must_use = "must eventually spawn the thread"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    /// The call site of the public spawn function, for dumps.
    site: Option<&'static std::panic::Location<'static>>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    ///
    /// ```
    /// let h = spool::thread::Builder::new().spawn(|| "default name and stack").unwrap();
    /// assert_eq!(h.join().unwrap(), "default name and stack");
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread; the name appears in panic messages and
    /// [`Thread::name`].
    ///
    /// # Panics
    /// As std's, the spawn panics if the name contains a NUL byte
    /// (`"thread name may not contain interior null bytes"`).
    ///
    /// # Differences from std
    /// std also gives the name to the OS thread, where Linux keeps its first
    /// 15 bytes (what `ps` and debuggers show). A green thread has no OS
    /// thread of its own: the name is spool's, shown whole by
    /// [`Thread::name`], panic messages and thread dumps
    /// ([`crate::debug`]), while the OS threads keep their workers' names
    /// (`spool-worker-N`).
    ///
    /// ```
    /// let h = spool::thread::Builder::new()
    ///     .name("loader".into())
    ///     .spawn(|| spool::thread::current().name().map(String::from))
    ///     .unwrap();
    /// assert_eq!(h.join().unwrap().as_deref(), Some("loader"));
    /// ```
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the stack size in bytes. Sizes are rounded up to whole pages
    /// (and to a 16 KiB minimum); sizes over 1 GiB make `spawn` fail with
    /// `InvalidInput`. Untouched stack pages cost no memory. Without it the
    /// thread gets its runtime's default: what
    /// [`runtime::Builder::stack_size`](crate::runtime::Builder::stack_size),
    /// `SPOOL_STACK_SIZE` or `RUST_MIN_STACK` set, or 256 KiB (std's
    /// default is 2 MiB: deep recursion may need this).
    ///
    /// ```
    /// use spool::thread;
    /// // About 4 MiB of frames: more than the default stack holds.
    /// fn depth(n: u32) -> u32 {
    ///     let frame = std::hint::black_box([n; 1024]);
    ///     if n == 0 { 0 } else { 1 + depth(frame[7] - 1) }
    /// }
    /// let h = thread::Builder::new().stack_size(16 << 20).spawn(|| depth(1000)).unwrap();
    /// assert_eq!(h.join().unwrap(), 1000);
    /// ```
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    fn options(self) -> SpawnOptions {
        SpawnOptions {
            name: self.name,
            stack_size: self.stack_size,
            site: self.site,
        }
    }

    /// Records `site` as where the thread is spawned (unless one is
    /// recorded already), for dumps.
    pub(crate) fn at(mut self, site: &'static std::panic::Location<'static>) -> Builder {
        self.site.get_or_insert(site);
        self
    }

    /// Spawns a green thread, returning an error — which names the limit
    /// and the fix — when no stack can be had or the runtime cannot start.
    ///
    /// ```
    /// let h = spool::thread::Builder::new().name("adder".into()).spawn(|| 2 + 2)?;
    /// assert_eq!(h.join().unwrap(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let this = self.at(std::panic::Location::caller());
        // SAFETY: `F` and `T` are 'static: nothing they borrow can end.
        unsafe { this.spawn_in(f, None, None) }.map(JoinHandle)
    }

    /// Spawns a green thread without the `'static` bounds of
    /// [`spawn`](Builder::spawn) on the closure and its result, as std's
    /// `Builder::spawn_unchecked`.
    ///
    /// # Safety
    /// As std's: the caller must make sure the thread has ended (joined, or
    /// its end otherwise awaited) before any borrow in `f` or in its result
    /// ends. A runtime that shuts down with the thread still parked
    /// abandons it (see [`crate::runtime`]): it never runs again, so it
    /// never uses those borrows either. Prefer [`scope`], which checks this.
    ///
    /// ```
    /// let data = vec![1, 2, 3];
    /// // SAFETY: joined below, before `data` goes away.
    /// let h = unsafe {
    ///     spool::thread::Builder::new().spawn_unchecked(|| data.iter().sum::<i32>())
    /// }
    /// .unwrap();
    /// assert_eq!(h.join().unwrap(), 6);
    /// drop(data);
    /// ```
    #[track_caller]
    pub unsafe fn spawn_unchecked<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let this = self.at(std::panic::Location::caller());
        // SAFETY: forwarded from this function's contract.
        let inner = unsafe { this.spawn_in(f, None, None) }?;
        // SAFETY: the two types differ only in the lifetime the packet's
        // `_borrows` marker carries, which is no part of its layout; the
        // borrows it stood for are the caller's to keep alive (this
        // function's contract).
        let inner =
            unsafe { std::mem::transmute::<JoinInner<'_, T>, JoinInner<'static, T>>(inner) };
        Ok(JoinHandle(inner))
    }

    /// Spawns a scoped green thread in `scope`; see [`scope`].
    ///
    /// ```
    /// let data = vec![1, 2, 3];
    /// let sum = spool::thread::scope(|s| {
    ///     let h = spool::thread::Builder::new()
    ///         .name("summer".into())
    ///         .spawn_scoped(s, || data.iter().sum::<i32>())?;
    ///     Ok::<_, std::io::Error>(h.join().unwrap())
    /// })?;
    /// assert_eq!(sum, 6);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let this = self.at(std::panic::Location::caller());
        // SAFETY: `scope` does not return before every thread spawned in
        // it has finished (or been abandoned by its runtime's shutdown,
        // after which it never uses its borrows again) and dropped its
        // packet (see `scoped.rs`), so the 'scope borrows outlive every use
        // the thread makes of them.
        unsafe { this.spawn_in(f, Some(scope.data.clone()), None) }.map(ScopedJoinHandle::new)
    }

    /// # Safety
    /// What `f` and `T` borrow must outlive the thread (see
    /// `spool_runtime::Runtime::spawn_unchecked`).
    pub(crate) unsafe fn spawn_in<'a, F, T>(
        self,
        f: F,
        scope: Option<Arc<ScopeData>>,
        runtime: Option<&spool_runtime::Runtime>,
    ) -> io::Result<JoinInner<'a, T>>
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        // As std's spawn (with its message), and before anything is
        // counted in `scope`.
        if let Some(name) = &self.name {
            if name.contains('\0') {
                let _ = std::ffi::CString::new(name.as_str())
                    .expect("thread name may not contain interior null bytes");
            }
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { self.spawn_packet(f, Packet::new(scope), runtime) }
    }

    /// Spawns the thread of `Runtime::run`, which runs in the caller's
    /// cancel scopes; the caller waits for it with `JoinInner::join_to_end`.
    ///
    /// # Safety
    /// As `spawn_unchecked`.
    pub(crate) unsafe fn spawn_run<'a, F, T>(
        self,
        f: F,
        runtime: &spool_runtime::Runtime,
    ) -> io::Result<JoinInner<'a, T>>
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.spawn_packet(f, Packet::for_run(), Some(runtime)) }
    }

    /// `spawn_unchecked` once the packet is made.
    ///
    /// # Safety
    /// As `spawn_unchecked`.
    unsafe fn spawn_packet<'a, F, T>(
        self,
        f: F,
        packet: Arc<Packet<'a, T>>,
        runtime: Option<&spool_runtime::Runtime>,
    ) -> io::Result<JoinInner<'a, T>>
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        // A big closure is boxed before it is moved any further: the green
        // thread then moves it out of the box only to call it. Unboxed, each
        // move on the way (into the completion, out of it, into
        // `catch_unwind`) is a copy on the new thread's stack in an
        // unoptimised build, and a few copies of a 64 KiB closure overflow a
        // 256 KiB stack. (The engine boxes any closure over eight words
        // until the thread first runs, see `Entry` in its `task.rs`; this
        // boxes before the moves on the way there.)
        if std::mem::size_of::<F>() > BOX_CLOSURES_OVER {
            // SAFETY: forwarded; the box borrows what `f` borrows.
            unsafe { self.spawn_completion(Box::new(f), packet, runtime) }
        } else {
            // SAFETY: forwarded from this function's contract.
            unsafe { self.spawn_completion(f, packet, runtime) }
        }
    }

    /// `spawn_unchecked` once the closure's size is settled.
    ///
    /// # Safety
    /// As `spawn_unchecked`.
    unsafe fn spawn_completion<'a, F, T>(
        self,
        f: F,
        mut packet: Arc<Packet<'a, T>>,
        runtime: Option<&spool_runtime::Runtime>,
    ) -> io::Result<JoinInner<'a, T>>
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        // The completion owns `f`, so the closure is dropped before the
        // packet is completed, whichever way the thread ends.
        let completion = Completion::new(packet.clone(), f);
        let main = move || completion.run();
        let options = self.options();
        // SAFETY: forwarded from this function's contract.
        let spawned = unsafe {
            match runtime {
                Some(runtime) => runtime.spawn_unchecked(options, main),
                None => {
                    if !spool_runtime::in_green_thread() {
                        // Possibly the first spawn, starting the global runtime.
                        crate::debug::install_reporter();
                        crate::monitor::hook_global_start();
                    }
                    spool_runtime::spawn_here(options, main)
                }
            }
        };
        match spawned {
            Ok(handle) => Ok(JoinInner {
                thread: Thread::from_handle(handle),
                packet,
            }),
            Err(e) => {
                // The closure was dropped unrun, and its `Completion` left
                // an error in the packet. A thread that was never created
                // did not panic: clear it, so a scope does not report one.
                if let Some(packet) = Arc::get_mut(&mut packet) {
                    packet.discard_result();
                }
                Err(e)
            }
        }
    }
}

/// What `JoinHandle` and `ScopedJoinHandle` share.
pub(crate) struct JoinInner<'scope, T> {
    thread: Thread,
    packet: Arc<Packet<'scope, T>>,
}

impl<T> JoinInner<'_, T> {
    #[track_caller]
    pub(crate) fn join(self) -> Result<T> {
        self.packet.join(self.thread.id())
    }

    /// Waits for the thread to end, not a cancellation point (see
    /// `Builder::spawn_run`).
    #[track_caller]
    pub(crate) fn join_to_end(self) -> Result<T> {
        self.packet.join_to_end(self.thread.id())
    }

    pub(crate) fn cancel(&self, reason: crate::cancel::CancelReason) {
        self.thread.handle.cancel(reason);
    }
}

/// An owned permission to join a green thread (wait for it to finish and
/// take its result). Dropping it detaches the thread.
///
/// ```
/// let h = spool::thread::spawn(|| "done");
/// assert_eq!(h.join().unwrap(), "done");
/// ```
pub struct JoinHandle<T>(JoinInner<'static, T>);

impl<T> JoinHandle<T> {
    pub(crate) fn from_inner(inner: JoinInner<'static, T>) -> Self {
        JoinHandle(inner)
    }

    /// Waits for the thread to finish. Returns its result, or `Err` with
    /// the panic payload if it panicked (as [`std::panic::catch_unwind`]).
    /// If the thread's runtime is dropped before the thread finishes (it
    /// never started, or it was left blocked), `Err` carries a `&str` that
    /// says the runtime shut down: such a thread never finishes.
    ///
    /// ```
    /// let h = spool::thread::spawn(|| panic!("oops"));
    /// let err = h.join().unwrap_err();
    /// assert_eq!(err.downcast_ref::<&str>(), Some(&"oops"));
    /// ```
    ///
    /// A cancellation point (see [`spool::cancel`](crate::cancel)): a
    /// cancelled caller stops waiting and unwinds (the thread runs on,
    /// detached), unless the thread finished meanwhile; a thread that ended
    /// by a cancellation the caller is also cancelled by makes `join`
    /// unwind with the caller's cancellation rather than return it. While
    /// the caller is already unwinding, `join` waits as usual.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let slow = spool::thread::spawn(|| spool::thread::sleep(Duration::from_millis(200)));
    /// let waited = spool::time::timeout(Duration::from_millis(5), move || slow.join());
    /// assert!(waited.is_err()); // the timeout ended the wait, not the thread
    /// ```
    #[track_caller]
    pub fn join(self) -> Result<T> {
        self.0.join()
    }

    /// The thread's handle.
    ///
    /// ```
    /// use spool::thread;
    ///
    /// let h = thread::spawn(|| thread::park());
    /// h.thread().unpark(); // wake it through its handle
    /// h.join().unwrap();
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.0.thread
    }

    /// Whether the thread has finished running its closure (so `join` will
    /// not block).
    ///
    /// ```
    /// let h = spool::thread::spawn(|| 1);
    /// while !h.is_finished() {
    ///     spool::thread::yield_now();
    /// }
    /// assert_eq!(h.join().unwrap(), 1); // does not block
    /// ```
    pub fn is_finished(&self) -> bool {
        self.0.packet.is_finished()
    }

    /// Cancels the thread: its outermost cancel scope is cancelled, so its
    /// next cancellation point (any blocking call of spool's, or
    /// [`checkpoint`](crate::cancel::checkpoint)) unwinds, running its
    /// destructors, and [`join`](JoinHandle::join) returns `Err` with a
    /// payload that [`Cancelled::from_payload`](crate::cancel::Cancelled::from_payload)
    /// recognizes. A thread that has not started yet never runs its
    /// closure. Idempotent, never blocks; a finished thread is not affected.
    /// Only the holder of the handle can cancel the thread.
    ///
    /// ```
    /// use spool::cancel::Cancelled;
    ///
    /// let (tx, rx) = spool::sync::mpsc::channel::<u32>();
    /// let t = spool::thread::spawn(move || rx.recv()); // nobody sends
    /// t.cancel();
    /// let payload = t.join().unwrap_err();
    /// assert!(Cancelled::from_payload(&payload).is_some());
    /// drop(tx);
    /// ```
    pub fn cancel(&self) {
        self.0.cancel(crate::cancel::CancelReason::Requested(None));
    }

    /// As [`cancel`](JoinHandle::cancel), with the reason the
    /// [`Cancelled`](crate::cancel::Cancelled) payload carries.
    ///
    /// ```
    /// use spool::cancel::{CancelReason, Cancelled};
    ///
    /// let t = spool::thread::spawn(|| spool::thread::sleep(std::time::Duration::from_secs(60)));
    /// t.cancel_with(CancelReason::requested("no longer needed"));
    /// let payload = t.join().unwrap_err();
    /// let why = Cancelled::from_payload(&payload).unwrap().reason();
    /// assert_eq!(why, &CancelReason::requested("no longer needed"));
    /// ```
    pub fn cancel_with(&self, reason: crate::cancel::CancelReason) {
        self.0.cancel(reason);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}

/// Spawns a green thread and returns its [`JoinHandle`].
///
/// # Panics
/// As `std::thread::spawn`, if the thread cannot be created; the message
/// names the limit that was hit. Use [`Builder::spawn`] to get the error
/// instead.
///
/// ```
/// use spool::thread;
/// let handles: Vec<_> = (0..100).map(|i| thread::spawn(move || i * 2)).collect();
/// let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 9900);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(e) => panic!("failed to spawn thread: {e}"),
    }
}

/// A handle to the calling thread (green or OS).
///
/// ```
/// let t = spool::thread::current();
/// assert_eq!(t.id(), spool::thread::current().id());
/// ```
pub fn current() -> Thread {
    Thread::from_handle(spool_runtime::current())
}

/// Blocks until the current thread's token is available, then consumes it.
/// As with std, it may also return spuriously: call it in a loop that
/// checks a condition.
///
/// As with std, spool's other blocking calls (locks, channels, sockets,
/// [`JoinHandle::join`], [`sleep`], `unblock`) never consume the token nor
/// are ended by it: an [`unpark`](Thread::unpark) that arrives while the
/// thread is blocked in one of them is kept for its next `park`.
///
/// ```
/// use spool::thread;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let flag = Arc::new(AtomicBool::new(false));
/// let f = flag.clone();
/// let parked = thread::spawn(move || {
///     while !f.load(Ordering::Acquire) {
///         thread::park();
///     }
/// });
/// flag.store(true, Ordering::Release);
/// parked.thread().unpark();
/// parked.join().unwrap();
/// ```
#[inline]
#[track_caller]
pub fn park() {
    spool_runtime::park();
}

/// As [`park`], but returns after `dur` at the latest.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// spool::thread::spawn(|| spool::thread::park_timeout(Duration::from_millis(5))).join().unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
#[track_caller]
pub fn park_timeout(dur: Duration) {
    spool_runtime::park_timeout(dur);
}

/// Deprecated twin of [`park_timeout`], kept as in std.
///
/// ```
/// #![allow(deprecated)]
/// spool::thread::park_timeout_ms(1); // spool::thread::park_timeout(Duration::from_millis(1))
/// ```
#[deprecated(note = "replaced by `spool::thread::park_timeout`")]
#[track_caller]
pub fn park_timeout_ms(ms: u32) {
    park_timeout(Duration::from_millis(u64::from(ms)));
}

/// Puts the current thread to sleep for at least `dur`. In a green thread
/// this switches to other green threads; the worker's timer wakes it.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// spool::thread::sleep(Duration::from_millis(2));
/// assert!(start.elapsed() >= Duration::from_millis(2));
/// ```
#[track_caller]
pub fn sleep(dur: Duration) {
    spool_runtime::sleep(dur);
}

/// Deprecated twin of [`sleep`], kept as in std.
///
/// ```
/// #![allow(deprecated)]
/// spool::thread::sleep_ms(1); // spool::thread::sleep(Duration::from_millis(1))
/// ```
#[deprecated(note = "replaced by `spool::thread::sleep`")]
#[track_caller]
pub fn sleep_ms(ms: u32) {
    sleep(Duration::from_millis(u64::from(ms)));
}

/// Whether the current thread is unwinding because of a panic, answered per
/// *green* thread (std's count is per OS thread; see
/// `spool_runtime::panicking` for the one case that can still mislead it).
///
/// ```
/// assert!(!spool::thread::panicking());
/// struct Probe;
/// impl Drop for Probe {
///     fn drop(&mut self) {
///         assert!(spool::thread::panicking());
///     }
/// }
/// let r = spool::thread::spawn(|| {
///     let _probe = Probe;
///     panic!("unwinding");
/// })
/// .join();
/// assert!(r.is_err());
/// ```
pub fn panicking() -> bool {
    spool_runtime::panicking()
}

/// Lets the other runnable green threads of this worker run first.
///
/// ```
/// spool::thread::spawn(|| spool::thread::yield_now()).join().unwrap();
/// ```
#[inline]
pub fn yield_now() {
    spool_runtime::yield_now();
}
