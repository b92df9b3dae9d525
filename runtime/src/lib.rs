//! The engine under [`spool`](https://docs.rs/spool-rt): guarded stacks,
//! coroutines, per-worker schedulers, reactors and timers.
//!
//! Users depend on the `spool` crate, whose `thread` module mirrors
//! `std::thread`. This crate is its small engine interface:
//!
//! * [`Runtime`] — a set of worker OS threads running green threads;
//!   [`global`] is the implicitly started one. [`Runtime::shutdown`] (and
//!   dropping it) cancels its green threads and gives them a grace period
//!   to unwind ([`ShutdownReport`]).
//! * [`spawn_here`] / [`Runtime::spawn`] — start a green thread.
//! * [`park`], [`park_timeout`], [`sleep`], [`yield_now`] and
//!   [`ThreadHandle::unpark`] — the user's blocking primitive and its
//!   friends, with std's semantics.
//! * [`wait`], [`wait_until`] and [`ThreadHandle::wake`] — the same
//!   mechanism with a token of its own, for `spool`'s locks, channels,
//!   sockets and `join`, so they never consume or fake the user's park
//!   token. Each of these works in a green thread (it switches out) and on
//!   a plain OS thread (it blocks the OS thread), which is what lets the
//!   same `spool` types work on both.
//! * [`with_local_storage`] — the table behind `spool::thread_local!`.
//! * [`set_abandon_hook`] — what to do for a green thread its runtime's
//!   shutdown leaves blocked (how `join` learns it will never finish).
//! * [`IoSource`] — a non-blocking descriptor whose operations park the
//!   green thread until the worker's reactor reports readiness (the base of
//!   `spool::net`).
//!
//! The design — pinning, the park handshake, why no wakeup is lost — is
//! written at the top of `scheduler.rs`.
//!
//! ```
//! use spool_runtime::{park, spawn_here, SpawnOptions, ThreadHandle};
//! use std::sync::mpsc;
//!
//! let main = spool_runtime::current();
//! let (tx, rx) = mpsc::channel();
//! // SAFETY: the closure borrows nothing.
//! unsafe {
//!     spawn_here(SpawnOptions::default(), move || {
//!         tx.send(spool_runtime::in_green_thread()).unwrap();
//!         main.unpark();
//!     })
//! }
//! .unwrap();
//! park(); // may wake spuriously only if someone else unparks us
//! assert!(rx.recv().unwrap());
//! ```

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(not(unix))]
compile_error!("spool supports unix-like systems only (Linux is the primary target)");

pub mod cancel;
pub mod config;
pub mod deadlock;
mod io_source;
mod locals;
mod loom;
pub mod monitor_hooks;
mod os_waiter;
mod panic;
mod park;
mod reactor;
mod scheduler;
mod shutdown;
mod stack;
mod sys;
mod task;
mod timer;
pub mod trace;
mod watchdog;
mod worker;

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::num::NonZeroU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use io_source::{Direction, IoSource};
pub use locals::{destroy_current_locals, new_local_slot, with_local_storage, LocalStorage};
pub use scheduler::{
    global, init_global, spawn_here, Runtime, RuntimeConfig, SpawnOptions, MAX_WORKERS,
};
pub use shutdown::{ShutdownReport, DEFAULT_SHUTDOWN_GRACE};
pub use task::{clear_abandon_hook, next_thread_id, set_abandon_hook};
pub use watchdog::DEFAULT_BLOCKING_THRESHOLD;

use park::WaitKind;
use task::{Suspend, Task};

/// Default stack size of a green thread, in bytes (256 KiB), when neither
/// a builder, `SPOOL_STACK_SIZE` nor `RUST_MIN_STACK` sets another (see
/// [`config`]).
///
/// ```
/// assert_eq!(spool_runtime::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = stack::DEFAULT_STACK_SIZE;

/// A unique identifier for a running thread, green or OS.
///
/// ```
/// let here = spool::thread::current().id();
/// let there = spool::thread::spawn(|| spool::thread::current().id()).join().unwrap();
/// assert_ne!(here, there);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ThreadId(NonZeroU64);

impl ThreadId {
    /// The id as a number, unique for the life of the process.
    ///
    /// ```
    /// let id = spool::thread::spawn(|| spool::thread::current().id()).join().unwrap();
    /// println!("thread {}", id.as_u64()); // as dumps and the monitor console name it
    /// ```
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }
}

/// The calling thread's id.
pub fn current_thread_id() -> ThreadId {
    ThreadId(current_id())
}

/// A handle to a green thread or a plain OS thread: its id, its name, and
/// the right to unpark it.
#[derive(Clone)]
pub struct ThreadHandle {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    /// Never dropped implicitly: `ThreadHandle`'s `Drop` moves it out to
    /// recycle the task's allocation.
    Green(ManuallyDrop<Arc<Task>>),
    Os(Arc<OsThread>),
}

/// What spool knows of a plain OS thread.
struct OsThread {
    id: NonZeroU64,
    name: Option<Box<str>>,
    /// std's handle: the user's park token (`park`/`unpark`).
    thread: std::thread::Thread,
    /// spool's own wait (`wait`/`wake`), so spool's waits never touch the
    /// user's token; see "Two tokens" in `park.rs`. `None` for a handle
    /// made while the thread's thread-local storage was being destroyed
    /// (see `current`): its waits and wakes fall back to std's token.
    waiter: Option<os_waiter::OsWaiter>,
}

impl ThreadHandle {
    pub(crate) fn green(task: Arc<Task>) -> ThreadHandle {
        ThreadHandle {
            inner: Inner::Green(ManuallyDrop::new(task)),
        }
    }

    /// The thread's unique id.
    pub fn id(&self) -> NonZeroU64 {
        match &self.inner {
            Inner::Green(task) => task.id,
            Inner::Os(os) => os.id,
        }
    }

    /// The thread's id as a [`ThreadId`].
    pub fn thread_id(&self) -> ThreadId {
        ThreadId(self.id())
    }

    /// The thread's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match &self.inner {
            Inner::Green(task) => task.name(),
            Inner::Os(os) => os.name.as_deref(),
        }
    }

    /// Whether this is a green thread (as opposed to a plain OS thread).
    pub fn is_green(&self) -> bool {
        matches!(self.inner, Inner::Green(_))
    }

    /// Makes the thread's token available: a parked thread wakes; otherwise
    /// its next `park` returns at once. Tokens do not accumulate.
    ///
    /// A thread blocked in one of spool's own waits ([`wait`]: a lock, a
    /// channel, a socket, `join`) is not woken: the token waits for its
    /// next `park`, as with std, whose blocking calls never touch it.
    pub fn unpark(&self) {
        match &self.inner {
            Inner::Green(task) => {
                if task.state.transition_to_notified(WaitKind::Park) {
                    task.shared.schedule(Arc::clone(task));
                }
            }
            Inner::Os(os) => os.thread.unpark(),
        }
    }

    /// Ends the thread's current or next [`wait`] (spool's own wait, used
    /// by its locks, channels, sockets and `join`); the user's park token is
    /// untouched. Wakes do not accumulate, and a wake that arrives when the
    /// thread is not waiting makes its next `wait` return at once, so a
    /// waiter must check its condition in a loop.
    pub fn wake(&self) {
        match &self.inner {
            Inner::Green(task) => {
                if task.state.transition_to_notified(WaitKind::Internal) {
                    task.shared.schedule(Arc::clone(task));
                }
            }
            Inner::Os(os) => match &os.waiter {
                Some(waiter) => waiter.wake(),
                None => os.thread.unpark(),
            },
        }
    }
}

impl ThreadHandle {
    /// Tells the thread that its cancellation status may have changed: sets
    /// its interrupt bit and ends its current wait if that wait is a
    /// cancellation point (see "Interrupts" in `park.rs`). Leaves no token.
    pub(crate) fn interrupt(&self) {
        match &self.inner {
            Inner::Green(task) => {
                if task.state.interrupt() {
                    task.shared.schedule(Arc::clone(task));
                }
            }
            Inner::Os(os) => {
                if let Some(waiter) = &os.waiter {
                    if waiter.interrupt() {
                        os.thread.unpark();
                    }
                }
            }
        }
    }

    /// Cancels the thread's root scope (what `spool::thread::JoinHandle::cancel`
    /// does): every cancellation point of the thread unwinds from now on,
    /// except inside a shield. Idempotent and never blocks; a thread that
    /// has finished is not affected. Does nothing for a plain OS thread,
    /// which has no root scope (enter a `CancelScope` there instead).
    pub fn cancel(&self, reason: cancel::CancelReason) {
        if let Inner::Green(task) = &self.inner {
            cancel::cancel_thread(task, self, reason, Some(current_thread_id()));
        }
    }
}

impl Drop for ThreadHandle {
    fn drop(&mut self) {
        if let Inner::Green(task) = &mut self.inner {
            // SAFETY: the handle is being dropped and `task` is never used
            // again; this is the one place that takes it.
            let task = unsafe { ManuallyDrop::take(task) };
            match worker::current() {
                Some(core) => core.recycle_or_drop(task),
                None => drop(task),
            }
        }
    }
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("green", &self.is_green())
            .finish_non_exhaustive()
    }
}

thread_local! {
    static OS_THREAD: OnceLock<Arc<OsThread>> = const { OnceLock::new() };
    /// The OS thread's spool id. Kept apart from `OS_THREAD` because it
    /// needs no destructor, so it stays readable while the thread's other
    /// thread-locals are destroyed at exit (see `current`).
    static OS_THREAD_ID: std::cell::Cell<Option<NonZeroU64>> = const { std::cell::Cell::new(None) };
}

/// A handle to the calling thread: the running green thread, or else the
/// calling OS thread.
///
/// Works while the OS thread's thread-local storage is being destroyed
/// (a spool call from another thread-local value's destructor): the
/// handle is then made afresh and its [`wait`]/[`ThreadHandle::wake`] use
/// std's park token, since spool's own per-thread state is gone.
pub fn current() -> ThreadHandle {
    if let Some(core) = worker::current() {
        let task = core.current.get();
        if !task.is_null() {
            // SAFETY: `current` points at the task being resumed, and the
            // worker holds an `Arc` to it for the whole resume; we are in
            // that resume (on the task's stack), so bumping the count of
            // that live `Arc` is sound.
            let task = unsafe {
                Arc::increment_strong_count(task);
                Arc::from_raw(task)
            };
            return ThreadHandle::green(task);
        }
    }
    // During thread exit `OS_THREAD` may be destroyed already while other
    // thread-locals' destructors still call spool (a channel receive in a
    // destructor): then an uncached handle with the same id, whose waits
    // use std's park token (spool's own waiter lived in `OS_THREAD`).
    let os = OS_THREAD
        .try_with(|cell| cell.get_or_init(|| new_os_thread(true)).clone())
        .unwrap_or_else(|_| new_os_thread(false));
    ThreadHandle {
        inner: Inner::Os(os),
    }
}

/// What spool knows of the calling OS thread, freshly made; with spool's
/// own waiter unless the thread's thread-locals are being destroyed.
fn new_os_thread(with_waiter: bool) -> Arc<OsThread> {
    let thread = std::thread::current();
    let id = OS_THREAD_ID.with(|id| {
        let assigned = id.get().unwrap_or_else(next_thread_id);
        id.set(Some(assigned));
        assigned
    });
    Arc::new(OsThread {
        id,
        name: thread.name().map(Into::into),
        thread,
        waiter: with_waiter.then(os_waiter::OsWaiter::new),
    })
}

/// Runs `f` with the calling OS thread's waiter, or with `None` while its
/// thread-local storage is being destroyed.
fn with_os_waiter<R>(f: impl FnOnce(Option<&os_waiter::OsWaiter>) -> R) -> R {
    let mut f = Some(f);
    let result = OS_THREAD.try_with(|cell| {
        let os = cell.get_or_init(|| new_os_thread(true));
        f.take().map(|f| f(os.waiter.as_ref()))
    });
    match (result, f) {
        (Ok(Some(result)), _) => result,
        (_, Some(f)) => f(None),
        (_, None) => fatal("with_os_waiter: the closure ran but returned nothing"),
    }
}

/// Whether the caller runs inside a green thread.
pub fn in_green_thread() -> bool {
    scheduler::current_task().is_some()
}

/// Whether the calling green thread is the only one its worker could run
/// now: none queued on the worker, none woken into its inbox. `false`
/// outside a green thread.
///
/// A waiting green thread alone on its worker may keep yielding for a
/// moment instead of parking: its worker would otherwise spin idle (see
/// "Worker sleeping" in `scheduler.rs`), and a waiter still yielding sees
/// its counterpart's hand-off without a wake through the worker's inbox.
///
/// ```
/// // A green thread with nothing else to run beside it.
/// assert!(spool::thread::spawn(spool_runtime::alone_on_worker).join().unwrap());
/// assert!(!spool_runtime::alone_on_worker()); // `main` is not a green thread
/// ```
pub fn alone_on_worker() -> bool {
    match worker::current() {
        Some(core) if scheduler::current_task().is_some() => core.has_nothing_queued(),
        _ => false,
    }
}

/// The id of the calling thread, without creating a handle.
pub fn current_id() -> NonZeroU64 {
    match scheduler::current_task() {
        Some(task) => task.id,
        None => current().id(),
    }
}

/// Blocks until the calling thread's token is available, then consumes it.
///
/// A cancellation point: unwinds with [`cancel::Cancelled`] if the thread
/// is cancelled (or returns early, if it is already unwinding). A park that
/// took the token returns even when a cancel arrived meanwhile (the
/// cancellation is raised at the next cancellation point), and one that
/// unwinds leaves an `unpark` that raced it for the next park: no token is
/// lost to a cancellation.
#[inline]
#[track_caller]
pub fn park() {
    park_until(None);
}

/// As [`park`], but returns after `timeout` at the latest.
#[track_caller]
pub fn park_timeout(timeout: Duration) {
    if timeout.is_zero() {
        // Consumes a present token, as std does, without waiting.
        park_until(Some(Instant::now()));
        return;
    }
    // Further away than an `Instant` can express: no deadline.
    park_until(Instant::now().checked_add(timeout));
}

/// The user's park: until the token, `deadline`, or a cancellation.
/// Always inlined: the wait note made it big enough for the compiler to
/// call it out of line, which cost a park/unpark round trip 3% more
/// instructions (callgrind, `park_unpark_pingpong/1w`).
#[inline(always)]
#[track_caller]
fn park_until(deadline: Option<Instant>) {
    let Some(task) = scheduler::current_task() else {
        return os_park_until(deadline);
    };
    // Kept shallow: `park` is where most green threads sit, and in an
    // unoptimised build every frame under it is stack memory each parked
    // thread keeps resident. A thread with cancel scopes takes the
    // out-of-line path.
    if task.state.interrupt_pending() || task.cancel.deadline.get().is_some() {
        return green_park_cancellable(task, deadline);
    }
    if task.state.consume_token(WaitKind::Park) || deadline.is_some_and(|d| Instant::now() >= d) {
        return;
    }
    trace::note_task_wait(
        task,
        trace::WaitReason::Park,
        std::panic::Location::caller(),
    );
    // A park that took the token returns (rule R2), even if a cancel came
    // too: the cancellation stays pending for the next cancellation point.
    let took_token = green_wait(task, WaitKind::Park, deadline, true);
    if !took_token && task.state.interrupt_pending() {
        cancel_after_park();
    }
}

/// `park_until` for a green thread with a cancellation pending or a
/// deadline to honour.
#[inline(never)]
#[track_caller]
fn green_park_cancellable(task: &Task, deadline: Option<Instant>) {
    match cancel::check() {
        cancel::Check::Continue => {}
        cancel::Check::Raise(cancelled) => cancel::raise(cancelled),
        // Already unwinding: return early (a spurious wakeup).
        cancel::Check::Unwinding => return,
    }
    if task.state.consume_token(WaitKind::Park) || deadline.is_some_and(|d| Instant::now() >= d) {
        return;
    }
    trace::note_task_wait(
        task,
        trace::WaitReason::Park,
        std::panic::Location::caller(),
    );
    // As in `park_until`: a park that took the token returns (rule R2).
    if !green_wait(task, WaitKind::Park, cancel_bound(deadline), true) {
        cancel_after_park();
    }
}

/// After a park that may have been ended by a cancellation: raise it.
#[inline(never)]
fn cancel_after_park() {
    cancel_point();
}

/// The user's park on a plain OS thread, a cancellation point.
#[inline(never)]
fn os_park_until(deadline: Option<Instant>) {
    match cancel::check() {
        cancel::Check::Continue => {}
        cancel::Check::Raise(cancelled) => cancel::raise(cancelled),
        cancel::Check::Unwinding => return,
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return;
    }
    let parked = os_park(deadline);
    if let cancel::Check::Raise(cancelled) = cancel::check() {
        if parked {
            // std's park cannot say whether it took a token left by the
            // user's `unpark` or by the interrupt (both are std's one
            // token): leave one, so an `unpark` racing the cancel is not
            // lost (rule R2). At worst the next park returns spuriously,
            // which std's contract allows.
            os_leave_park_token();
        }
        cancel::raise(cancelled)
    }
}

/// The user's park on a plain OS thread: std's token, ended early by an
/// interrupt (see `os_waiter.rs`) and bounded by the effective deadline.
/// Returns whether it parked (and so may have taken std's token).
fn os_park(deadline: Option<Instant>) -> bool {
    let deadline = cancel_bound(deadline);
    with_os_waiter(|waiter| {
        let parking = waiter.is_none_or(|w| w.begin_park(true));
        if parking {
            let _waiting = deadline.is_none().then(deadlock::OsWaiting::begin);
            match deadline {
                None => std::thread::park(),
                Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
            }
        }
        if let Some(waiter) = waiter {
            waiter.end_park();
        }
        parking
    })
}

/// Leaves std's park token for the calling OS thread (nothing while its
/// thread-local storage is being destroyed: `std::thread::current` may
/// fail then).
fn os_leave_park_token() {
    let _ = OS_THREAD.try_with(|cell| {
        if let Some(os) = cell.get() {
            os.thread.unpark();
        }
    });
}

/// `until`, bounded by the calling thread's cached effective deadline (an
/// interruptible wait must wake at it to notice the scope expire).
#[inline]
fn cancel_bound(until: Option<Instant>) -> Option<Instant> {
    match cancel::cached_deadline() {
        None => until,
        Some(deadline) => Some(until.map_or(deadline, |u| u.min(deadline))),
    }
}

/// One wait that is a cancellation point, for spool's blocking calls: asks
/// [`cancel::check`] first and returns its answer at once unless it is
/// `Continue`; otherwise waits as [`wait_until`] (or [`wait`] with `None`)
/// does — but also ends when the thread's cancellation status may have
/// changed, and at its effective deadline — and then answers `check` again.
///
/// The caller loops: on `Continue` it rechecks its own condition; on
/// `Raise` it withdraws from what it waited on, returns its value if the
/// operation completed meanwhile (rule R2), and else calls
/// [`cancel::raise`]; on `Unwinding` (rule R1) it fails fast with its
/// error, returns early, or waits with the masked [`wait`].
#[inline]
pub fn cancellable_wait(until: Option<Instant>) -> cancel::Check {
    let Some(task) = scheduler::current_task() else {
        return os_cancellable_wait(until);
    };
    // The fast path, for a thread with no interrupt pending and no
    // deadline: its cached deadline can change only through its own scope
    // entry (not during this call) or a recheck, which the interrupt bit
    // triggers.
    if task.state.interrupt_pending() || task.cancel.deadline.get().is_some() {
        return green_cancellable_wait(task, until);
    }
    if until.is_some_and(|u| Instant::now() >= u) {
        return cancel::Check::Continue;
    }
    green_wait(task, WaitKind::Internal, until, true);
    if task.state.interrupt_pending() {
        return cancel::check();
    }
    cancel::Check::Continue
}

/// `cancellable_wait` for a green thread with an interrupt pending or a
/// deadline.
#[inline(never)]
fn green_cancellable_wait(task: &Task, until: Option<Instant>) -> cancel::Check {
    match cancel::check() {
        cancel::Check::Continue => {}
        other => return other,
    }
    if until.is_some_and(|u| Instant::now() >= u) {
        return cancel::Check::Continue;
    }
    green_wait(task, WaitKind::Internal, cancel_bound(until), true);
    cancel::check()
}

/// `cancellable_wait` on a plain OS thread.
#[inline(never)]
fn os_cancellable_wait(until: Option<Instant>) -> cancel::Check {
    match cancel::check() {
        cancel::Check::Continue => {}
        other => return other,
    }
    if until.is_some_and(|u| Instant::now() >= u) {
        return cancel::Check::Continue;
    }
    let bound = cancel_bound(until);
    with_os_waiter(|waiter| match waiter {
        Some(waiter) => waiter.wait(bound, true),
        None => match bound {
            None => std::thread::park(),
            Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
        },
    });
    cancel::check()
}

/// Blocks in one of spool's own waits until [`ThreadHandle::wake`] is
/// called for this thread, or spuriously. The building block of spool's
/// locks, channels, sockets and `join`: unlike [`park`] it neither consumes
/// nor is ended by the user's park token (see "Two tokens" in the engine's
/// `park.rs`), so a `while !ready { park() }` loop keeps an `unpark` that
/// arrives while the thread waits inside spool.
///
/// Not a cancellation point: a cancel does not end it (spool's blocking
/// calls that are cancellation points use [`cancellable_wait`]).
///
/// A wake that arrived before the call makes it return at once, so the
/// usual shape is: register `current()` where the waker will find it,
/// check the condition, `wait()`, check again.
///
/// ```
/// use spool_runtime::{current, wait};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let me = current();
/// let setter = {
///     let ready = ready.clone();
///     std::thread::spawn(move || {
///         ready.store(true, Ordering::Release);
///         me.wake();
///     })
/// };
/// while !ready.load(Ordering::Acquire) {
///     wait();
/// }
/// setter.join().unwrap();
/// ```
#[inline]
pub fn wait() {
    match scheduler::current_task() {
        Some(task) => {
            green_wait(task, WaitKind::Internal, None, false);
        }
        None => with_os_waiter(|waiter| match waiter {
            Some(waiter) => waiter.wait(None, false),
            None => std::thread::park(),
        }),
    }
}

/// As [`wait`], but returns at `deadline` at the latest.
pub fn wait_until(deadline: Instant) {
    match scheduler::current_task() {
        Some(task) => {
            if Instant::now() < deadline {
                green_wait(task, WaitKind::Internal, Some(deadline), false);
            }
        }
        None => with_os_waiter(|waiter| match waiter {
            Some(waiter) => waiter.wait(Some(deadline), false),
            None => std::thread::park_timeout(deadline.saturating_duration_since(Instant::now())),
        }),
    }
}

/// One wait of `kind` by the running green thread: returns at once if the
/// kind's token is there, else switches out until the token, the timer or
/// (if `interruptible`) an interrupt. Returns whether it took the token.
#[inline]
fn green_wait(task: &Task, kind: WaitKind, until: Option<Instant>, interruptible: bool) -> bool {
    if task.state.consume_token(kind) {
        return true;
    }
    task.suspend(Suspend::Wait {
        kind,
        until,
        interruptible,
    });
    // The timer fired (no token), or a token or an interrupt woke us first,
    // leaving the timer entry stale.
    let woken_by_token = task.state.consume_token(kind);
    if until.is_some() {
        let timer_pending = woken_by_token || (interruptible && task.state.interrupt_pending());
        end_timed_wait(task, timer_pending);
    }
    woken_by_token
}

/// Ends a timed wait: later firings of its timer are stale.
fn end_timed_wait(task: &Task, timer_pending: bool) {
    task.wait_gen.set(task.wait_gen.get().wrapping_add(1));
    if timer_pending {
        if let Some(core) = worker::current() {
            core.note_timer_cancelled();
        }
    }
}

/// Puts the calling thread to sleep for at least `duration`. An `unpark`
/// during the sleep does not end it; it leaves a token for the next `park`.
///
/// A cancellation point: a cancel (or the deadline of an enclosing scope)
/// ends the sleep by unwinding with [`cancel::Cancelled`]; a thread that is
/// already unwinding returns early instead.
#[track_caller]
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        yield_now();
        return;
    }
    trace::note_wait(trace::WaitReason::Sleep, std::panic::Location::caller());
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return;
        }
        // Sleep in bounded steps so an absurd duration cannot overflow. A
        // sleep is an internal wait that nobody wakes: an early return (a
        // stale wake token) only goes round the loop.
        let step = (duration - elapsed).min(Duration::from_secs(86_400 * 365));
        match cancellable_wait(Some(Instant::now() + step)) {
            cancel::Check::Continue => {}
            cancel::Check::Raise(cancelled) => cancel::raise(cancelled),
            cancel::Check::Unwinding => return,
        }
    }
}

/// Whether the calling thread is unwinding because of a panic.
///
/// std keeps its panic count per *OS* thread, so when a green thread
/// switches out in the middle of unwinding (a destructor that blocks), the
/// other green threads of its worker would see `std::thread::panicking()`
/// return `true`. This function answers for the calling *green* thread:
/// when no green thread of this worker is switched out mid-unwind, std's
/// answer is exact; otherwise it is the thread's own record, set when it
/// began to panic (by spool's panic hook) and cleared when it is seen not
/// panicking. The one case it can still get wrong needs a program that both
/// replaces the panic hook and blocks inside a destructor while unwinding.
/// `std::sync::Mutex` poisoning uses std's per-OS-thread answer and so can
/// still be misled in that situation.
pub fn panicking() -> bool {
    let os_thread_panicking = std::thread::panicking();
    let Some(task) = scheduler::current_task() else {
        return os_thread_panicking;
    };
    if !os_thread_panicking {
        task.unwinding.set(false);
        return false;
    }
    let others_unwinding = worker::current().is_some_and(|core| core.suspended_unwinders.get() > 0);
    if others_unwinding {
        task.unwinding.get()
    } else {
        // The count belongs to this thread alone.
        task.unwinding.set(true);
        true
    }
}

/// Lets other runnable green threads of this worker run (or, on an OS
/// thread, yields the OS thread). A cancellation point.
#[inline(always)]
pub fn yield_now() {
    match scheduler::current_task() {
        Some(task) => {
            if task.state.interrupt_pending() || task.cancel.deadline.get().is_some() {
                cancel_point();
            }
            task.suspend(Suspend::Yield);
        }
        None => {
            cancel_point();
            std::thread::yield_now();
        }
    }
}

/// A cancellation point that unwinds if the thread is cancelled (and not
/// unwinding already); out of line, off the fast paths.
#[inline(never)]
fn cancel_point() {
    if let cancel::Check::Raise(cancelled) = cancel::check() {
        cancel::raise(cancelled)
    }
}

/// As [`yield_now`], but not a cancellation point (like [`wait`]): for
/// spool's own spin-before-waiting loops, which must withdraw what they
/// registered before a cancellation may unwind them; the wait that follows
/// the spin is the cancellation point.
///
/// ```
/// let scope = spool_runtime::cancel::CancelScope::new();
/// scope.cancel();
/// // Returns normally although the scope is cancelled.
/// assert_eq!(scope.run(|| spool_runtime::yield_masked()), Some(()));
/// ```
#[inline]
pub fn yield_masked() {
    match scheduler::current_task() {
        Some(task) => task.suspend(Suspend::Yield),
        None => std::thread::yield_now(),
    }
}

/// Aborts the process after printing a message naming a broken invariant
///: continuing would risk silent corruption.
#[cold]
pub(crate) fn fatal(message: &str) -> ! {
    write_stderr(&format!("spool: fatal runtime error: {message}\n"));
    std::process::abort()
}

/// Writes to stderr without locking or panicking.
pub(crate) fn write_stderr(message: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(message.as_bytes());
}

/// Adds what spool was creating, and for descriptor exhaustion the limit
/// that was hit and the fix, to an error from creating a file descriptor.
///
/// The result keeps `error`'s kind, and `error` itself is its
/// [`source`](std::error::Error::source) (see [`Described`]).
pub(crate) fn describe_fd_error(error: io::Error, what: &str) -> io::Error {
    let message = match error.raw_os_error() {
        Some(libc::EMFILE) => format!(
            "spool: cannot create {what}: the process's open-file limit \
             (RLIMIT_NOFILE, `ulimit -n`) is reached: raise it or close descriptors"
        ),
        Some(libc::ENFILE) => format!(
            "spool: cannot create {what}: the system-wide open-file limit \
             (/proc/sys/fs/file-max) is reached: raise it with sysctl fs.file-max \
             or close descriptors"
        ),
        _ => format!("spool: cannot create {what}"),
    };
    Described::wrap(error, message)
}

/// An OS error with what spool was doing when it happened and, where spool
/// knows them, the limit that was hit and the fix.
///
/// An `io::Error` cannot carry both a message and an OS error code: one
/// made by `io::Error::new` answers `raw_os_error()` with `None`. So the
/// wrapped error keeps the code's kind, shows the OS error's text after the
/// message, and returns the original `io::Error` from `source()`, where
/// `raw_os_error()` works:
///
/// ```text
/// let code = e.raw_os_error().or_else(|| {
///     e.get_ref()?.source()?.downcast_ref::<io::Error>()?.raw_os_error()
/// });
/// ```
#[derive(Debug)]
pub(crate) struct Described {
    message: String,
    source: io::Error,
}

impl Described {
    /// `source` with `message` in front, as an `io::Error` of the same kind.
    pub(crate) fn wrap(source: io::Error, message: String) -> io::Error {
        io::Error::new(source.kind(), Described { message, source })
    }
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.source)
    }
}

impl std::error::Error for Described {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An error equal to `error` in kind, text and OS error code (`io::Error`
/// is not `Clone`), for an error kept to be reported more than once.
pub(crate) fn duplicate_error(error: &io::Error) -> io::Error {
    if let Some(code) = error.raw_os_error() {
        return io::Error::from_raw_os_error(code);
    }
    match error.get_ref().and_then(|e| e.downcast_ref::<Described>()) {
        Some(described) => Described::wrap(
            duplicate_error(&described.source),
            described.message.clone(),
        ),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}
