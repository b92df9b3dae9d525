//! The engine under [`spool`](https://docs.rs/spool): guarded stacks,
//! coroutines, per-worker schedulers, reactors and timers.
//!
//! Users depend on the `spool` crate, whose `thread` module mirrors
//! `std::thread`. This crate is its small engine interface:
//!
//! * [`Runtime`] — a set of worker OS threads running green threads;
//!   [`global`] is the implicitly started one.
//! * [`spawn_here`] / [`Runtime::spawn`] — start a green thread.
//! * [`park`], [`park_timeout`], [`sleep`], [`yield_now`] and
//!   [`ThreadHandle::unpark`] — the one blocking primitive and its friends.
//!   Each works in a green thread (it switches out) and on a plain OS thread
//!   (it blocks the OS thread), which is what lets the same `spool` types
//!   work on both.
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

mod io_source;
mod locals;
mod loom;
mod panic;
mod park;
mod reactor;
mod scheduler;
mod stack;
mod sys;
mod task;
mod timer;
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
pub use task::{clear_abandon_hook, next_thread_id, set_abandon_hook};

use task::{Suspend, Task};

/// Default stack size of a green thread, in bytes (256 KiB).
pub const DEFAULT_STACK_SIZE: usize = stack::DEFAULT_STACK_SIZE;

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
    thread: std::thread::Thread,
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
    pub fn unpark(&self) {
        match &self.inner {
            Inner::Green(task) => {
                if task.state.transition_to_notified() {
                    task.shared.schedule(Arc::clone(task));
                }
            }
            Inner::Os(os) => os.thread.unpark(),
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
}

/// A handle to the calling thread: the running green thread, or else the
/// calling OS thread.
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
    let os = OS_THREAD.with(|cell| {
        cell.get_or_init(|| {
            let thread = std::thread::current();
            Arc::new(OsThread {
                id: next_thread_id(),
                name: thread.name().map(Into::into),
                thread,
            })
        })
        .clone()
    });
    ThreadHandle {
        inner: Inner::Os(os),
    }
}

/// Whether the caller runs inside a green thread.
pub fn in_green_thread() -> bool {
    scheduler::current_task().is_some()
}

/// The id of the calling thread, without creating a handle.
pub fn current_id() -> NonZeroU64 {
    match scheduler::current_task() {
        Some(task) => task.id,
        None => current().id(),
    }
}

/// Blocks until the calling thread's token is available, then consumes it.
#[inline]
pub fn park() {
    let Some(task) = scheduler::current_task() else {
        std::thread::park();
        return;
    };
    if task.state.try_consume_token() {
        return;
    }
    task.suspend(Suspend::Park);
    task.state.consume_token();
}

/// As [`park`], but returns after `timeout` at the latest.
pub fn park_timeout(timeout: Duration) {
    let Some(task) = scheduler::current_task() else {
        std::thread::park_timeout(timeout);
        return;
    };
    if task.state.try_consume_token() || timeout.is_zero() {
        return;
    }
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        // Further away than an `Instant` can express: no timer needed.
        park();
        return;
    };
    task.suspend(Suspend::ParkUntil(deadline));
    // Either our timer fired (state EMPTY) or a token woke us first
    // (NOTIFIED), leaving the timer entry stale.
    let woken_by_token = task.state.consume_token();
    end_timed_wait(task, woken_by_token);
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
pub fn sleep(duration: Duration) {
    let Some(task) = scheduler::current_task() else {
        std::thread::sleep(duration);
        return;
    };
    if duration.is_zero() {
        yield_now();
        return;
    }
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return;
        }
        // Sleep in bounded steps so an absurd duration cannot overflow.
        let step = (duration - elapsed).min(Duration::from_secs(86_400 * 365));
        task.suspend(Suspend::Sleep(Instant::now() + step));
        end_timed_wait(task, false);
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
/// thread, yields the OS thread).
#[inline]
pub fn yield_now() {
    match scheduler::current_task() {
        Some(task) => task.suspend(Suspend::Yield),
        None => std::thread::yield_now(),
    }
}

/// Aborts the process after printing a message naming a broken invariant
/// (STYLE.md §9): continuing would risk silent corruption.
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

/// Adds the limit and the fix to an error from creating a file descriptor.
pub(crate) fn describe_fd_error(error: io::Error, what: &str) -> io::Error {
    if error.raw_os_error() == Some(libc::EMFILE) || error.raw_os_error() == Some(libc::ENFILE) {
        io::Error::new(
            error.kind(),
            format!(
                "spool: cannot create {what}: {error}; the open-file limit (RLIMIT_NOFILE, see `ulimit -n`) \
                 is reached: raise it or close descriptors"
            ),
        )
    } else {
        io::Error::new(
            error.kind(),
            format!("spool: cannot create {what}: {error}"),
        )
    }
}
