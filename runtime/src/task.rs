//! A green thread: its identity, its coroutine and its park state machine.
//!
//! # The park state
//!
//! `Task::state` is one atomic word holding the green thread's *wait state*.
//! It is the only field touched by other OS threads, and every transition is
//! named here (STYLE.md §6; the protocol itself is the essay "Parking" at the
//! top of `scheduler.rs`).
//!
//! | value              | meaning                                                     |
//! |--------------------|-------------------------------------------------------------|
//! | `EMPTY`            | no token; the thread is running, queued, or about to park   |
//! | `NOTIFIED`         | an `unpark` token is waiting to be consumed                 |
//! | `PARKED`           | switched out in `park`; whoever leaves this state queues it |
//! | `SLEEPING`         | switched out in `sleep`; only its timer queues it           |
//! | `SLEEPING│NOTIFIED`| sleeping, and a token arrived that `park` will consume      |
//!
//! Impossible combinations: `PARKED` never coexists with `SLEEPING`, and
//! coexists with `NOTIFIED` only for the instant between an unpark's
//! `fetch_or` and its store of `NOTIFIED`, while the thread is still
//! switched out (an unpark *replaces* `PARKED` by `NOTIFIED`). Only the owning
//! worker enters `PARKED` or `SLEEPING`, and only after the coroutine has
//! switched out, so a thread is never queued while it still runs.
//!
//! The rule that makes double scheduling impossible: **the one party whose
//! atomic operation takes the state out of `PARKED` (or clears `SLEEPING`)
//! queues the task**; every other party sees that it lost and does nothing.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use crate::locals::LocalStorage;
use crate::scheduler::Shared;
use crate::stack::GuardedStack;
use crate::sys::RunningStack;

/// No token, not parked.
pub(crate) const EMPTY: u32 = 0;
/// An unpark token is present.
pub(crate) const NOTIFIED: u32 = 1;
/// Switched out in `park`/`park_timeout`.
pub(crate) const PARKED: u32 = 2;
/// Switched out in `sleep`; unpark only leaves a token.
pub(crate) const SLEEPING: u32 = 4;

/// `Task::worker` before the green thread first runs: it may still be stolen.
pub(crate) const UNPINNED: usize = usize::MAX;

/// Why a green thread switched out; returned from its coroutine to the
/// worker, which finishes the transition on its own stack.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Suspend {
    /// `yield_now`: queue me again behind the other runnable threads.
    Yield,
    /// `park`: enter `PARKED` unless a token arrived meanwhile.
    Park,
    /// `park_timeout`: as `Park`, with a timer that wakes without a token.
    ParkUntil(Instant),
    /// `sleep`: enter `SLEEPING`; only the timer (or later a cancel) wakes.
    Sleep(Instant),
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
    /// The park state; see the table at the top of this file.
    pub(crate) state: AtomicU32,
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

impl Task {
    pub(crate) fn new(
        id: NonZeroU64,
        shared: &'static Shared,
        coroutine: GreenCoroutine,
        running: RunningStack,
    ) -> Task {
        Task {
            id,
            state: AtomicU32::new(EMPTY),
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

    /// Worker side of `park`, run after the coroutine switched out:
    /// `EMPTY → PARKED`. Returns `false` when a token arrived while the
    /// thread was switching out; the worker then queues it again at once.
    pub(crate) fn transition_to_parked(&self) -> bool {
        // Release publishes everything the thread wrote before parking to
        // the unparker that takes it out of PARKED (it uses Acquire).
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => {
                debug_assert_eq!(state, NOTIFIED, "transition_to_parked: bad state");
                false
            }
        }
    }

    /// Worker side of `sleep`: set `SLEEPING`, keeping any token.
    pub(crate) fn transition_to_sleeping(&self) {
        let prev = self.state.fetch_or(SLEEPING, Ordering::AcqRel);
        debug_assert_eq!(
            prev & (PARKED | SLEEPING),
            0,
            "transition_to_sleeping: bad state"
        );
    }

    /// `unpark`: leave a token; returns `true` when the caller took the
    /// thread out of `PARKED` and must therefore queue it.
    ///
    /// This is always a read-modify-write, even when a token is already
    /// there. A plain load that sees `NOTIFIED` and returns would not
    /// *release* the unparker's earlier writes to the thread that consumes
    /// the token: the consumer's Acquire would synchronize only with the
    /// older unpark that left the token, and it could miss the write this
    /// unpark announces, park, and sleep forever (on x86 the unparker's
    /// store may still sit in its store buffer). The RMW joins the release
    /// sequence that the consumer's Acquire reads from.
    pub(crate) fn transition_to_notified(&self) -> bool {
        let prev = self.state.fetch_or(NOTIFIED, Ordering::AcqRel);
        if prev == PARKED {
            // We took it out of PARKED (the state is now PARKED|NOTIFIED,
            // which every other party treats as "taken": a timer's
            // CAS(PARKED → EMPTY) fails, other unparks see the token).
            // Clear PARKED and queue the thread.
            self.state.store(NOTIFIED, Ordering::Release);
            return true;
        }
        false
    }

    /// Timer side of `park_timeout`: `PARKED → EMPTY` (a wakeup without a
    /// token). Returns `true` when the caller must queue the thread.
    pub(crate) fn transition_from_timed_park(&self) -> bool {
        self.state
            .compare_exchange(PARKED, EMPTY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Timer side of `sleep`: clear `SLEEPING`. Returns `true` when the
    /// caller cleared it and must queue the thread.
    pub(crate) fn transition_from_sleeping(&self) -> bool {
        self.state.fetch_and(!SLEEPING, Ordering::AcqRel) & SLEEPING != 0
    }

    /// Green-thread side, after resuming from `park`: consume the token, if
    /// any. Acquire pairs with the unparker's Release.
    pub(crate) fn consume_token(&self) {
        self.state.swap(EMPTY, Ordering::Acquire);
    }

    /// Green-thread side, before parking: take a waiting token instead of
    /// switching out. Returns `true` if there was one.
    pub(crate) fn try_consume_token(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
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
