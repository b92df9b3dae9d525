//! A green thread: its identity, its coroutine and its park state.
//!
//! The park state machine lives in `park.rs`; the protocol that uses it is
//! the essay "Parking" at the top of `scheduler.rs`.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use crate::locals::LocalStorage;
use crate::park::{ParkState, WaitKind};
use crate::scheduler::Shared;
use crate::stack::GuardedStack;
use crate::sys::RunningStack;

/// `Task::worker` before the green thread first runs: it may still be stolen.
pub(crate) const UNPINNED: usize = usize::MAX;

/// Set in `Task::worker`, with a worker's index, on a never-run green
/// thread that a spawn placed in that worker's inbox (see "Placement" in
/// `scheduler.rs`); the worker counts it as placed until it first runs.
/// (`UNPINNED` has this bit set too: test for it first.)
pub(crate) const PLACED: usize = 1 << (usize::BITS - 2);

/// Why a green thread switched out; returned from its coroutine to the
/// worker, which finishes the transition on its own stack.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Suspend {
    /// `yield_now`: queue me again behind the other runnable threads.
    Yield,
    /// A wait of `kind` (`park`, or spool's internal wait and `sleep`):
    /// switch out unless that kind's token arrived meanwhile, with a timer
    /// that ends the wait without a token at `until`.
    Wait {
        kind: WaitKind,
        until: Option<Instant>,
    },
}

/// The coroutine type every green thread runs in.
pub(crate) type GreenCoroutine = Coroutine<(), Suspend, (), GuardedStack>;

/// The next unclaimed thread id. Green threads and plain OS threads draw
/// from one counter so their ids never collide.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ids a worker claims at once, so spawning on a worker does not contend
/// on `NEXT_ID` with the other workers.
pub(crate) const ID_BLOCK: u64 = 1024;

/// Claims `count` consecutive fresh ids; returns the first.
pub(crate) fn claim_thread_ids(count: u64) -> u64 {
    // Relaxed: ids only need to be unique, which fetch_add guarantees.
    let first = NEXT_ID.fetch_add(count, Ordering::Relaxed);
    if first > u64::MAX / 2 {
        crate::fatal("claim_thread_ids: thread id counter exhausted");
    }
    first
}

/// Returns a fresh, never-reused thread id.
pub fn next_thread_id() -> NonZeroU64 {
    match crate::worker::current() {
        Some(core) => core.next_thread_id(),
        None => NonZeroU64::new(claim_thread_ids(1)).unwrap_or(NonZeroU64::MIN),
    }
}

/// One green thread.
///
/// # Invariant
/// Fields other than `state` and `worker` are *owner-only*: they are read or
/// written only on the OS thread of the worker that runs this green thread
/// (`worker`), either by the green thread itself or by that worker between
/// two resumes, or by the holder of the last reference in `Drop`. Before the
/// first resume (`worker == UNPINNED`) the task sits in exactly one queue and
/// the worker that takes it out becomes its owner.
pub(crate) struct Task {
    pub(crate) id: NonZeroU64,
    /// The park state (see `park.rs`).
    pub(crate) state: ParkState,
    /// Index of the worker this green thread is pinned to, or `UNPINNED`.
    pub(crate) worker: AtomicUsize,
    /// The runtime the green thread belongs to.
    pub(crate) shared: &'static Shared,
    /// Generation of the current timed wait; a timer entry carrying an older
    /// generation is stale and ignored (lazy timer cancellation).
    pub(crate) wait_gen: Cell<u64>,
    /// The coroutine's yielder, set when the coroutine first runs.
    pub(crate) yielder: Cell<*const Yielder<(), Suspend>>,
    /// The coroutine; `None` once it has finished and its stack went back to
    /// the pool.
    pub(crate) coroutine: UnsafeCell<Option<GreenCoroutine>>,
    /// Values of `spool::thread_local!` keys for this green thread.
    pub(crate) locals: RefCell<LocalStorage>,
    /// Guard range, stack size and name, read by the overflow handler.
    pub(crate) running: RunningStack,
    /// Set when this green thread is known to have begun a panic (by the
    /// panic hook, or by `panicking()` when the answer was unambiguous);
    /// cleared when it is seen not panicking. See `crate::panicking`.
    pub(crate) unwinding: Cell<bool>,
}

// SAFETY: `state` and `worker` are atomics. Every other field is owner-only
// (see `# Invariant` on `Task`): it is touched only on the OS thread the green
// thread is pinned to, so sharing `&Task` across threads never lets two
// threads touch those cells at once. The coroutine's closure was `Send` when
// spawned, and once started it never leaves its worker's OS thread, so values
// created on its stack never cross threads.
unsafe impl Sync for Task {}
// SAFETY: see the `Sync` impl; moving an `Arc<Task>` between threads moves
// only the right to touch `state` and `worker` and to drop the task, and
// `Drop` leaks (never drops) a started coroutine and its locals.
unsafe impl Send for Task {}

/// A panic cannot leave a `Task` half-updated for another thread to see:
/// shared state is one atomic word, everything else is owner-only. This
/// makes `spool::thread::Thread` unwind-safe, like `std::thread::Thread`.
impl std::panic::RefUnwindSafe for Task {}

impl Task {
    pub(crate) fn new(
        id: NonZeroU64,
        shared: &'static Shared,
        coroutine: GreenCoroutine,
        running: RunningStack,
    ) -> Task {
        Task {
            id,
            state: ParkState::new(),
            worker: AtomicUsize::new(UNPINNED),
            shared,
            wait_gen: Cell::new(0),
            yielder: Cell::new(std::ptr::null()),
            coroutine: UnsafeCell::new(Some(coroutine)),
            locals: RefCell::new(LocalStorage::new()),
            running,
            unwinding: Cell::new(false),
        }
    }

    /// The green thread's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.running.name.as_deref()
    }

    /// At shutdown: drops the closure of a green thread that never ran, so
    /// its `join` learns that it never will. A started one stays suspended
    /// and is leaked by `Drop` once its last handle goes.
    ///
    /// The caller must have taken the task out of a queue (so it owns it:
    /// see `# Invariant`).
    pub(crate) fn discard_if_unstarted(&self) {
        // SAFETY: the caller took the task out of a queue, so it is the
        // task's owner and nothing runs on its stack.
        let coroutine = unsafe { &mut *self.coroutine.get() };
        if coroutine.as_ref().is_some_and(|c| !c.started()) {
            drop(coroutine.take());
        }
    }

    /// Switch out of the running green thread to its worker.
    ///
    /// Must be called by the green thread itself, on its own stack.
    #[inline]
    pub(crate) fn suspend(&self, why: Suspend) {
        let yielder = self.yielder.get();
        if yielder.is_null() {
            crate::fatal("Task::suspend: green thread has no yielder");
        }
        // std counts panics per OS thread: while we are switched out in the
        // middle of unwinding, the other green threads of this worker see
        // that count. Record it so `crate::panicking` can tell them apart.
        let unwinding = if std::thread::panicking() {
            crate::panicking()
        } else {
            self.unwinding.set(false);
            false
        };
        let core = if unwinding {
            crate::worker::current()
        } else {
            None
        };
        if let Some(core) = core {
            core.suspended_unwinders
                .set(core.suspended_unwinders.get() + 1);
        }
        // SAFETY: `yielder` was set by this coroutine's entry closure to the
        // yielder corosensei placed on this coroutine's stack, which lives as
        // long as the coroutine runs; we are running on that stack now (the
        // caller's contract), so the pointer is valid.
        unsafe { (*yielder).suspend(why) };
        if let Some(core) = core {
            core.suspended_unwinders
                .set(core.suspended_unwinders.get() - 1);
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let Some(coroutine) = self.coroutine.get_mut().take() else {
            return;
        };
        if coroutine.started() && !coroutine.done() {
            // A green thread suspended forever (nobody can wake it any
            // more, or its runtime shut down). Unwinding it here could run
            // its destructors on the wrong OS thread, so it is leaked, like
            // a goroutine blocked forever: its stack and locals stay
            // allocated and its destructors never run.
            std::mem::forget(coroutine);
            std::mem::forget(std::mem::take(self.locals.get_mut()));
        } else {
            // Never started: dropping drops the spawned closure, which is
            // `Send`, so any thread may do it.
            drop(coroutine);
        }
    }
}
