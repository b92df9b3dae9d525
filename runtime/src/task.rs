//! A green thread: its identity, its coroutine and its park state.
//!
//! The park state machine lives in `park.rs`; the protocol that uses it is
//! the essay "Parking" at the top of `scheduler.rs`. What becomes of a
//! green thread when its runtime shuts down (cancelled and given a grace
//! period to unwind; then discarded if it never ran, abandoned if it is
//! still blocked) is the essay "Lifetime" there.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::num::NonZeroU64;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use crate::locals::LocalStorage;
use crate::panic::AbortOnUnwind;
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
    /// (Also what a thread switches back with from a trace-mode resume,
    /// which only the tracing worker sees: see `Task::serve_traces`.)
    Yield,
    /// A wait of `kind` (`park`, or spool's internal wait and `sleep`):
    /// switch out unless that kind's token arrived meanwhile (or, for an
    /// `interruptible` wait, a cancellation may be pending), with a timer
    /// that ends the wait without a token at `until`.
    Wait {
        kind: WaitKind,
        until: Option<Instant>,
        interruptible: bool,
    },
}

/// What a worker resumes a green thread with: the value its `suspend`
/// returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Go on running.
    Run,
    /// Capture your stack and switch straight back (see `serve_traces`).
    /// Passed in the switch itself, in a register, so the check every
    /// switch makes is a compare of a value it already holds, not a load
    /// from the task.
    Trace,
}

/// The yielder of a green thread's coroutine.
pub(crate) type GreenYielder = Yielder<Resume, Suspend>;

/// The coroutine type every green thread runs in.
pub(crate) type GreenCoroutine = Coroutine<Resume, Suspend, (), GuardedStack>;

/// Bytes of a spawned closure a task holds in its own allocation. A
/// larger closure (or one aligned to more than a word) is boxed. The
/// closure of a `spool::thread` spawn is the user's closure plus two
/// words; most capture a handful of handles and fit.
const INLINE_ENTRY_WORDS: usize = 8;

/// A green thread's closure between its spawn and its first run, held in
/// the task itself when it fits (a spawn allocates nothing for it: task
/// allocations are recycled), boxed otherwise.
///
/// The closure waits here rather than on the thread's stack so that the
/// stack is chosen, and first touched, by the worker that runs the thread
/// (see "Starting on a warm stack" in `scheduler.rs`); and it is run from
/// here in place, so the thread's first frame copies it once, where
/// passing it in the coroutine's closure copied it at every layer (a
/// quarter KiB more stack under every green thread).
///
/// # Invariant
/// While `vtable` is `Some(t)`, `data` holds a live `F` (inline) or `Box<F>`
/// written by `Entry::new`, and `t` is the table for that layout and that
/// `F`. Taking `vtable` moves the closure out, once: to run it (`run`) or
/// drop it (`discard`). Owner-only, as the task's other cells.
pub(crate) struct Entry {
    data: UnsafeCell<MaybeUninit<[usize; INLINE_ENTRY_WORDS]>>,
    vtable: Cell<Option<&'static EntryVTable>>,
}

/// How to run or drop the closure an `Entry` holds; one per closure type
/// and layout.
struct EntryVTable {
    /// Moves the closure out of `data` and runs it under `catch_unwind`.
    run: unsafe fn(*mut u8),
    /// Drops the closure in `data` unrun.
    drop: unsafe fn(*mut u8),
}

/// Holds `T`, a closure (`T = F`) or its box (`T = Box<F>`), in an entry.
struct Slot<T>(PhantomData<T>);

impl<T: FnOnce()> Slot<T> {
    const VTABLE: EntryVTable = EntryVTable {
        run: Self::run,
        drop: Self::drop,
    };

    /// The thread's closure's first frame.
    ///
    /// # Safety
    /// `data` holds a live `T`, which this moves out.
    unsafe fn run(data: *mut u8) {
        // SAFETY: the caller's contract; `Entry::new` wrote it aligned.
        let f = unsafe { ptr::read(data.cast::<T>()) };
        // The `spool` crate catches its closure's panics itself, to keep the
        // payload for `join`; this catch serves the engine's own
        // `Runtime::spawn`. The panic hook has reported the panic already.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            crate::panic::drop_payload(payload);
        }
    }

    /// # Safety
    /// As `run`.
    unsafe fn drop(data: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe { ptr::drop_in_place(data.cast::<T>()) }
    }
}

impl Entry {
    /// Holds `f` until the green thread first runs.
    ///
    /// # Safety
    /// As `Runtime::spawn_unchecked`: what `f` borrows must stay valid
    /// while `f` may still run or be dropped (the entry forgets `'a`).
    pub(crate) unsafe fn new<'a, F>(f: F) -> Entry
    where
        F: FnOnce() + Send + 'a,
    {
        let mut data = MaybeUninit::<[usize; INLINE_ENTRY_WORDS]>::uninit();
        let fits = std::mem::size_of::<F>() <= std::mem::size_of_val(&data)
            && std::mem::align_of::<F>() <= std::mem::align_of_val(&data);
        let vtable: &'static EntryVTable = if fits {
            // SAFETY: `data` is large and aligned enough (checked above).
            unsafe { data.as_mut_ptr().cast::<F>().write(f) };
            &Slot::<F>::VTABLE
        } else {
            // SAFETY: a box is one word, which `data` holds.
            unsafe { data.as_mut_ptr().cast::<Box<F>>().write(Box::new(f)) };
            &Slot::<Box<F>>::VTABLE
        };
        Entry {
            data: UnsafeCell::new(data),
            vtable: Cell::new(Some(vtable)),
        }
    }

    /// Runs the closure, if the entry holds one, containing its panic.
    ///
    /// # Safety
    /// Called on the green thread's own stack, by the thread itself (so
    /// the closure's frames live on its stack).
    unsafe fn run(&self) {
        if let Some(vtable) = self.vtable.take() {
            // SAFETY: the invariant: `data` held the closure `vtable` is
            // for, and taking `vtable` gave us the only right to move it.
            unsafe { (vtable.run)(self.data.get().cast()) }
        }
    }

    /// Drops the closure of a green thread that never ran (at shutdown),
    /// reporting and containing a panic from its destructors (see
    /// "Containment" in `panic.rs`): shutdown is no place to give up.
    pub(crate) fn discard(&self) {
        let Some(vtable) = self.vtable.take() else {
            return;
        };
        let data = self.data.get().cast();
        // SAFETY: as in `run`.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| unsafe { (vtable.drop)(data) })) {
            crate::write_stderr(
                "spool: the closure of a green thread that never ran panicked while being \
                 dropped unrun at shutdown; the panic is contained and shutdown continues\n",
            );
            crate::panic::drop_payload(payload);
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.discard();
    }
}

// SAFETY: the closure an entry holds was `Send` (`Entry::new`'s bound), and
// the entry owns it: moving the entry moves only it.
unsafe impl Send for Entry {}

/// A green thread's body through its life.
pub(crate) enum Body {
    /// Spawned, never run: the stack set aside for it (so that a spawn,
    /// like std's, fails when no stack can be had, rather than the
    /// thread's first run). Its closure is in `Task::entry`.
    Unstarted(GuardedStack),
    /// Run at least once; suspended, or running.
    Started(GreenCoroutine),
    /// Finished, its stack back in a cache (or dropped unrun at shutdown).
    Finished,
}

/// The coroutine of a green thread starting on `stack`, which runs the
/// closure in its task's `entry`.
///
/// The coroutine never unwinds into its worker (see "Containment" in
/// `panic.rs`): the closure runs under `catch_unwind`. It holds nothing
/// but its stack until its first resume, which its worker makes right
/// after building it.
pub(crate) fn start_coroutine(stack: GuardedStack) -> GreenCoroutine {
    let body = |yielder: &GreenYielder, _first: Resume| {
        let task = crate::worker::enter_green_thread(yielder);
        // SAFETY: we are the green thread, on its own stack.
        unsafe { task.entry.run() };
        destroy_locals();
    };
    GreenCoroutine::with_stack(stack, body)
}

/// Destroys the ending green thread's `spool::thread_local!` values. Out of
/// line: inlined, its frame would sit below the thread's closure for the
/// thread's whole life (256 bytes more stack on every green thread).
#[inline(never)]
fn destroy_locals() {
    // SAFETY: the thread's closure has returned (or unwound), so no
    // reference into its thread-local values is left.
    let destroyed = catch_unwind(|| unsafe { crate::locals::destroy_current_locals() });
    if let Err(payload) = destroyed {
        std::mem::forget(payload);
        crate::fatal(
            "a thread-local value of a green thread panicked on drop; aborting, \
             as std does (\"thread local panicked on drop\")",
        );
    }
}

/// What a green thread asked its worker to run should the runtime shut
/// down while the thread is suspended: `notify(data)` (see
/// `set_abandon_hook`).
#[derive(Clone, Copy)]
pub(crate) struct AbandonHook {
    data: *mut (),
    notify: unsafe fn(*mut ()),
}

/// Registers `notify(data)` to run if the calling green thread's runtime
/// stops while the thread is suspended (parked, sleeping, blocked or
/// runnable: still unfinished after the shutdown's grace period), that is,
/// when it will never run again. Returns `false`, and
/// registers nothing, outside a green thread. A later call replaces the
/// hook; [`clear_abandon_hook`] removes it.
///
/// This is what lets `spool::thread::JoinHandle::join` return an error
/// instead of waiting forever for a thread its runtime left blocked: the
/// hook completes the join with an error. It costs two plain stores into
/// the running thread; no allocation, no atomics.
///
/// The hook runs at most once, on the thread's worker OS thread, after the
/// worker has stopped running green threads and while the thread is
/// suspended for good: its stack is never resumed, unwound or freed, so the
/// hook may use what `data` points to there.
///
/// # Safety
/// Until the same green thread calls [`clear_abandon_hook`] (or sets
/// another hook), calling `notify(data)` on this thread's worker OS thread,
/// at any point where the thread is suspended, must be sound. `notify` must
/// not unwind: if it does, the process aborts.
///
/// ```
/// use spool_runtime::{clear_abandon_hook, set_abandon_hook, spawn_here, SpawnOptions};
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// static ABANDONED: AtomicBool = AtomicBool::new(false);
///
/// /// Ignores its data, so it is sound to call anywhere, any time.
/// unsafe fn note_abandoned(_: *mut ()) {
///     ABANDONED.store(true, Ordering::Relaxed);
/// }
///
/// // SAFETY: `note_abandoned` is sound to call anywhere.
/// assert!(!unsafe { set_abandon_hook(std::ptr::null_mut(), note_abandoned) });
/// let (tx, rx) = std::sync::mpsc::channel();
/// // SAFETY: the closure borrows nothing.
/// unsafe {
///     spawn_here(SpawnOptions::default(), move || {
///         // SAFETY: as above.
///         let registered = unsafe { set_abandon_hook(std::ptr::null_mut(), note_abandoned) };
///         spool_runtime::yield_now(); // a shutdown now would call the hook
///         clear_abandon_hook();
///         tx.send(registered).unwrap();
///     })
/// }
/// .unwrap();
/// assert!(rx.recv().unwrap());
/// assert!(!ABANDONED.load(Ordering::Relaxed)); // the global runtime never shuts down
/// ```
#[inline]
pub unsafe fn set_abandon_hook(data: *mut (), notify: unsafe fn(*mut ())) -> bool {
    match crate::scheduler::current_task() {
        Some(task) => {
            task.abandon_hook.set(Some(AbandonHook { data, notify }));
            true
        }
        None => false,
    }
}

/// Removes the calling green thread's abandon hook, if any (see
/// [`set_abandon_hook`]). Outside a green thread it does nothing.
///
/// ```
/// spool_runtime::clear_abandon_hook(); // harmless anywhere
/// ```
#[inline]
pub fn clear_abandon_hook() {
    if let Some(task) = crate::scheduler::current_task() {
        task.abandon_hook.set(None);
    }
}

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
    pub(crate) yielder: Cell<*const GreenYielder>,
    /// The reserved stack before the first run, the coroutine after (see
    /// `Body`).
    pub(crate) body: UnsafeCell<Body>,
    /// The closure, until the thread first runs it.
    pub(crate) entry: Entry,
    /// Values of `spool::thread_local!` keys for this green thread.
    pub(crate) locals: RefCell<LocalStorage>,
    /// Guard range, stack size and name, read by the overflow handler.
    pub(crate) running: RunningStack,
    /// Set when this green thread is known to have begun a panic (by the
    /// panic hook, or by `panicking()` when the answer was unambiguous);
    /// cleared when it is seen not panicking. See `crate::panicking`.
    pub(crate) unwinding: Cell<bool>,
    /// Where this green thread sits in its worker's registry of started,
    /// unfinished threads (`WorkerCore::threads`) while it is there.
    pub(crate) registry_index: Cell<usize>,
    /// What to run if the runtime shuts down while this thread is
    /// suspended (see `set_abandon_hook`).
    abandon_hook: Cell<Option<AbandonHook>>,
    /// The thread's cancel scopes (owner-only; see `cancel.rs`).
    pub(crate) cancel: crate::cancel::CancelState,
    /// The thread's root scope, which `JoinHandle::cancel` cancels; made on
    /// first use by either side (a `OnceLock`, so shared).
    pub(crate) cancel_root: crate::cancel::RootSlot,
    /// Where it was spawned and what it last waited for (owner-only; see
    /// `trace.rs`).
    pub(crate) trace: crate::trace::ThreadTrace,
    /// The stack a trace-mode resume captured; owner-only.
    pub(crate) captured: Cell<Option<Box<crate::trace::Stack>>>,
    /// The thread's `tracing` span, entered around every resume.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

// SAFETY: `state` and `worker` are atomics and `cancel_root` a `OnceLock`
// of a `Sync` value. Every other field is owner-only
// (see `# Invariant` on `Task`): it is touched only on the OS thread the green
// thread is pinned to, so sharing `&Task` across threads never lets two
// threads touch those cells at once. The thread's closure (in `entry` until
// the first run, on the coroutine's stack after) was `Send` when spawned, and
// once started the thread never leaves its worker's OS thread, so values
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
        stack: GuardedStack,
        entry: Entry,
        running: RunningStack,
        trace: crate::trace::ThreadTrace,
    ) -> Task {
        #[cfg(feature = "tracing")]
        let span = crate::trace::green_thread_span(id, running.name.as_deref());
        Task {
            id,
            state: ParkState::new(),
            worker: AtomicUsize::new(UNPINNED),
            shared,
            wait_gen: Cell::new(0),
            yielder: Cell::new(std::ptr::null()),
            body: UnsafeCell::new(Body::Unstarted(stack)),
            entry,
            locals: RefCell::new(LocalStorage::new()),
            running,
            unwinding: Cell::new(false),
            registry_index: Cell::new(usize::MAX),
            abandon_hook: Cell::new(None),
            cancel: Default::default(),
            cancel_root: Default::default(),
            trace,
            captured: Cell::new(None),
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// Makes a finished task, whose allocation a spawn reuses (see
    /// `WorkerCore::recycle_or_drop`), the new green thread's, equal to
    /// what `new` would make, field by field: building a whole `Task` and
    /// assigning it would copy every byte of it once more, the largest copy
    /// of a spawn.
    pub(crate) fn reuse(
        &mut self,
        id: NonZeroU64,
        stack: GuardedStack,
        new_entry: Entry,
        running: RunningStack,
        trace: crate::trace::ThreadTrace,
    ) {
        // Exhaustive, so a field added to `Task` cannot be left out here.
        let Task {
            id: old_id,
            state,
            worker,
            shared: _, // the recycling worker's runtime: the same
            wait_gen,
            yielder,
            body,
            entry,
            locals,
            running: old_running,
            unwinding,
            registry_index,
            abandon_hook,
            cancel,
            cancel_root,
            trace: old_trace,
            captured,
            #[cfg(feature = "tracing")]
            span,
        } = self;
        #[cfg(feature = "tracing")]
        {
            *span = crate::trace::green_thread_span(id, running.name.as_deref());
        }
        *old_id = id;
        *state = ParkState::new();
        *worker.get_mut() = UNPINNED;
        *wait_gen.get_mut() = 0;
        *yielder.get_mut() = std::ptr::null();
        // `recycle_or_drop` takes only finished tasks, whose coroutine is
        // gone (a started one must never be dropped here: see `Drop`).
        debug_assert!(matches!(body.get_mut(), Body::Finished));
        *body.get_mut() = Body::Unstarted(stack);
        *entry = new_entry;
        *locals.get_mut() = LocalStorage::new();
        *old_running = running;
        *unwinding.get_mut() = false;
        *registry_index.get_mut() = usize::MAX;
        *abandon_hook.get_mut() = None;
        *cancel = Default::default();
        *cancel_root = Default::default();
        *old_trace = trace;
        *captured.get_mut() = None;
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
        let body = unsafe { &mut *self.body.get() };
        if matches!(body, Body::Unstarted(_)) {
            // The entry contains a panic from the closure's destructors;
            // the reserved stack goes back to the pool.
            self.entry.discard();
            *body = Body::Finished;
        }
    }

    /// At shutdown, for a started green thread that will never run again:
    /// runs the abandon hook it registered, if any (see "Lifetime" in
    /// `scheduler.rs`).
    ///
    /// The caller must be the task's worker, after it stopped running green
    /// threads (so the task is suspended for good).
    pub(crate) fn abandon(&self) {
        let Some(hook) = self.abandon_hook.take() else {
            return;
        };
        let guard = AbortOnUnwind::naming(
            "Task::abandon: an abandon hook unwound into the worker",
            self,
        );
        // SAFETY: the green thread registered the hook and did not clear it,
        // so by `set_abandon_hook`'s contract the call is sound on this, its
        // worker's, OS thread while it is suspended, which it now is for
        // good (the caller's contract).
        unsafe { (hook.notify)(hook.data) };
        guard.disarm();
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
        if std::thread::panicking() {
            // SAFETY: forwarded (the caller's contract); `yielder` is this
            // coroutine's, as below.
            return unsafe { self.suspend_unwinding(yielder, why) };
        }
        self.unwinding.set(false);
        // SAFETY: `yielder` was set by this coroutine's entry closure to the
        // yielder corosensei placed on this coroutine's stack, which lives as
        // long as the coroutine runs; we are running on that stack now (the
        // caller's contract), so the pointer is valid.
        if unsafe { (*yielder).suspend(why) } == Resume::Trace {
            // SAFETY: as above.
            unsafe { self.serve_traces(yielder) };
        }
    }

    /// `suspend` while std says this OS thread is panicking. std counts
    /// panics per OS thread: while we are switched out in the middle of
    /// unwinding, the other green threads of this worker see that count.
    /// Record it so `crate::panicking` can tell them apart. Out of line, so
    /// the common switch stays short.
    ///
    /// # Safety
    /// As `suspend`'s, with the yielder `suspend` read.
    #[cold]
    #[inline(never)]
    unsafe fn suspend_unwinding(&self, yielder: *const GreenYielder, why: Suspend) {
        let core = if crate::panicking() {
            crate::worker::current()
        } else {
            None
        };
        if let Some(core) = core {
            core.suspended_unwinders
                .set(core.suspended_unwinders.get() + 1);
        }
        // SAFETY: as in `suspend` (the caller's contract).
        if unsafe { (*yielder).suspend(why) } == Resume::Trace {
            // SAFETY: as above.
            unsafe { self.serve_traces(yielder) };
        }
        if let Some(core) = core {
            core.suspended_unwinders
                .set(core.suspended_unwinders.get() - 1);
        }
    }
}

impl Task {
    /// A dump that wants stacks resumed this switched-out thread in *trace
    /// mode* (see `trace.rs`): capture the stack, switch straight back, and
    /// go on waiting as if nothing happened. It switches back with
    /// `Suspend::Yield`, which the tracing worker (`trace_task`) takes for
    /// "traced": no variant of its own, so the scheduler's decoding of a
    /// switch stays as it was. Out of line and cold: every switch checks
    /// the value it was resumed with (`Resume`), hardly any comes here.
    ///
    /// # Safety
    /// As `suspend`'s: called by the green thread itself, on its own stack,
    /// with the yielder `suspend` used.
    #[cold]
    #[inline(never)]
    unsafe fn serve_traces(&self, yielder: *const GreenYielder) {
        loop {
            self.captured
                .set(Some(Box::new(crate::trace::capture_stack(&self.running))));
            // SAFETY: the caller's contract.
            if unsafe { (*yielder).suspend(Suspend::Yield) } == Resume::Run {
                return;
            }
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        match std::mem::replace(self.body.get_mut(), Body::Finished) {
            Body::Started(coroutine) if coroutine.started() && !coroutine.done() => {
                // A green thread abandoned at shutdown (its worker's
                // registry holds every started one until then). Unwinding
                // it here could run its destructors on the wrong OS thread,
                // so it is leaked, like a goroutine blocked forever: its
                // stack and locals stay allocated and its destructors never
                // run (see "Lifetime" in `scheduler.rs`, which relies on
                // this).
                std::mem::forget(coroutine);
                std::mem::forget(std::mem::take(self.locals.get_mut()));
            }
            // Never started: the field `entry` drops the spawned closure,
            // which is `Send`, so any thread may do it, and contains a panic
            // from its destructors. (A coroutine is resumed as soon as it is
            // built, so a `Started` one that did not start holds nothing
            // but its stack.)
            other => drop(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An entry holding a closure that captures `N` bytes (plus a counter):
    /// run, it reports the bytes' sum; dropped, its capture is dropped once.
    fn entry_of<const N: usize>(
        ran: &Arc<AtomicUsize>,
        dropped: &Arc<AtomicUsize>,
    ) -> (Entry, usize) {
        let bytes = [3u8; N];
        let (ran, counted) = (ran.clone(), Counted(dropped.clone()));
        let f = move || {
            let _counted = &counted;
            ran.fetch_add(bytes.iter().map(|&b| b as usize).sum(), Ordering::SeqCst);
        };
        let size = std::mem::size_of_val(&f);
        // SAFETY: the closure is 'static.
        (unsafe { Entry::new(f) }, size)
    }

    fn check<const N: usize>() {
        let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (entry, size) = entry_of::<N>(&ran, &dropped);
        let inline = size <= INLINE_ENTRY_WORDS * std::mem::size_of::<usize>();
        // SAFETY: no green thread here; the closure borrows nothing from a
        // stack that could switch.
        unsafe { entry.run() };
        assert_eq!(
            ran.load(Ordering::SeqCst),
            3 * N,
            "{N} bytes (inline: {inline})"
        );
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "run, then dropped once");
        // Run once: a second run, and the entry's own drop, do nothing.
        // SAFETY: as above.
        unsafe { entry.run() };
        drop(entry);
        assert_eq!(ran.load(Ordering::SeqCst), 3 * N);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);

        let (ran, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (entry, _) = entry_of::<N>(&ran, &dropped);
        drop(entry);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "dropped unrun");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "{N} bytes dropped unrun once"
        );
    }

    /// Closures that fit the task (inline) and closures that do not
    /// (boxed) run once and are dropped once, unrun or after running.
    #[test]
    fn an_entry_runs_or_drops_its_closure_once_whatever_its_size() {
        check::<0>();
        check::<48>(); // with the two words captured besides: eight, inline
        check::<49>(); // one byte over: boxed
        check::<1000>();
        check::<5000>();
    }

    /// A closure whose captures need more alignment than a word is boxed,
    /// and runs.
    #[test]
    fn an_overaligned_closure_runs() {
        #[repr(align(64))]
        struct Aligned(u8);
        let ran = Arc::new(AtomicUsize::new(0));
        let (value, ran2) = (Aligned(7), ran.clone());
        let f = move || {
            assert_eq!(&value as *const Aligned as usize % 64, 0);
            ran2.fetch_add(value.0 as usize, Ordering::SeqCst);
        };
        // SAFETY: 'static closure; not on a green thread (see `check`).
        let entry = unsafe { Entry::new(f) };
        // SAFETY: as in `check`.
        unsafe { entry.run() };
        assert_eq!(ran.load(Ordering::SeqCst), 7);
    }

    /// A closure whose destructor panics, dropped unrun (at shutdown), is
    /// contained: the panic does not escape the entry.
    #[test]
    fn a_panicking_destructor_of_an_unrun_closure_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("boom from an unrun closure's capture");
            }
        }
        let bomb = Bomb;
        // SAFETY: 'static closure.
        let entry = unsafe {
            Entry::new(move || {
                let _bomb = &bomb;
            })
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(move || drop(entry)));
        assert!(outcome.is_ok(), "the panic escaped the entry");
    }
}
