//! Where a green thread leaves its result for `join`, and how a scope
//! counts its running children.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use spool_runtime::cancel::{raise, Cancelled, Check, Inherited};
use spool_runtime::trace::WaitReason;
use spool_runtime::{ThreadHandle, ThreadId};

/// The thread is running; nobody waits yet.
const RUNNING: u8 = 0;
/// A joiner stored its handle in `joiner` and waits to be woken.
const WAITING: u8 = 1;
/// `result` is written; the thread will never touch the packet again.
const DONE: u8 = 2;

/// Shared between a spawned thread and its `JoinHandle`.
///
/// # Invariant
/// `result` is written only by the spawned thread, before `state` becomes
/// `DONE` (Release), and read only by the joiner after it saw `DONE`
/// (Acquire). `joiner` is written only by the (single) joiner before it moves
/// `state` from `RUNNING` to `WAITING` (Release), and read only by the
/// spawned thread after it saw `WAITING` (Acquire).
pub(crate) struct Packet<'scope, T> {
    state: AtomicU8,
    result: UnsafeCell<Option<crate::thread::Result<T>>>,
    joiner: UnsafeCell<Option<ThreadHandle>>,
    scope: Option<Arc<ScopeData>>,
    /// The cancel scopes the thread runs in: those of its `scope` call, or
    /// of the caller of `Runtime::run`.
    inherited: Option<Inherited>,
    _borrows: PhantomData<&'scope ()>,
}

// SAFETY: the cells are accessed under the protocol in `# Invariant`, so the
// packet is a one-shot handoff of a `T` from one thread to another, which
// needs `T: Send` only.
unsafe impl<T: Send> Sync for Packet<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Packet<'_, T> {}

impl<'scope, T> Packet<'scope, T> {
    pub(crate) fn new(scope: Option<Arc<ScopeData>>) -> Arc<Packet<'scope, T>> {
        let inherited = scope.as_ref().map(|scope| {
            scope.increment_num_running_threads();
            scope.inherited.clone()
        });
        Packet::with(scope, inherited)
    }

    /// The packet of `Runtime::run`'s thread, which borrows from the
    /// caller: it runs in the caller's cancel scopes, so a cancellation of
    /// the caller reaches it (the caller itself waits for it, see
    /// `join_to_end`). Not while the caller unwinds: the thread's
    /// cancellation would resume in the caller, a second unwind (rule R1).
    pub(crate) fn for_run() -> Arc<Packet<'scope, T>> {
        let inherited = (!spool_runtime::panicking()).then(spool_runtime::cancel::inherit);
        Packet::with(None, inherited)
    }

    fn with(scope: Option<Arc<ScopeData>>, inherited: Option<Inherited>) -> Arc<Packet<'scope, T>> {
        Arc::new(Packet {
            state: AtomicU8::new(RUNNING),
            result: UnsafeCell::new(None),
            joiner: UnsafeCell::new(None),
            scope,
            inherited,
            _borrows: PhantomData,
        })
    }

    /// Spawned-thread side: publish the result and wake the joiner.
    fn complete(&self, result: crate::thread::Result<T>) {
        // SAFETY: only the spawned thread writes `result`, once, before DONE
        // (see `# Invariant`); no joiner reads it before DONE.
        unsafe { *self.result.get() = Some(result) };
        if self.state.swap(DONE, Ordering::AcqRel) == WAITING {
            // SAFETY: WAITING means the joiner wrote `joiner` and released
            // it with its CAS; our AcqRel swap acquired it, and the joiner
            // does not touch it again.
            if let Some(joiner) = unsafe { (*self.joiner.get()).as_ref() } {
                joiner.wake();
            }
        }
    }

    /// Forgets the result of a thread that was never created.
    pub(crate) fn discard_result(&mut self) {
        *self.result.get_mut() = None;
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Joiner side: wait for the result and take it. A cancellation point
    /// (see `wait_and_take`).
    ///
    /// A thread that ended by a cancellation its joiner shares (a scoped
    /// child cancelled with the scope's caller) did not produce a value for
    /// the joiner either: when the joiner is cancelled too, `join` unwinds
    /// with the joiner's cancellation rather than hand it the child's
    /// payload as a result (which `join().unwrap()` would turn into a
    /// panic).
    #[track_caller]
    pub(crate) fn join(&self, thread: ThreadId) -> crate::thread::Result<T> {
        let result = self.wait_and_take(true, thread);
        if let Err(payload) = &result {
            if Cancelled::from_payload(payload).is_some() {
                if let Check::Raise(cancelled) = spool_runtime::cancel::check() {
                    drop(result);
                    raise(cancelled);
                }
            }
        }
        result
    }

    /// Joiner side, not a cancellation point: waits for the thread to end
    /// whatever happens. For `Runtime::run`, whose thread borrows from the
    /// caller's stack, so the caller must not unwind before it has ended.
    #[track_caller]
    pub(crate) fn join_to_end(&self, thread: ThreadId) -> crate::thread::Result<T> {
        self.wait_and_take(false, thread)
    }

    /// Waits for the result and takes it; if `cancellable`, a cancelled
    /// joiner gives up waiting and unwinds. `thread` is the one joined (for
    /// thread dumps).
    #[track_caller]
    fn wait_and_take(&self, cancellable: bool, thread: ThreadId) -> crate::thread::Result<T> {
        if self.state.load(Ordering::Acquire) != DONE {
            // SAFETY: we are the only joiner (`join` consumes the handle)
            // and the spawned thread reads `joiner` only after WAITING.
            unsafe { *self.joiner.get() = Some(spool_runtime::current()) };
            if self
                .state
                .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Exactly one wake from `complete` is on its way. Wait
                // until DONE (spool's own wait: the user's park token is
                // left alone); a stale wake only costs another check.
                // A cancellation point: a cancelled joiner gives up (the
                // handle is consumed, so the thread is detached and a late
                // wake of ours is harmless), unless the thread finished
                // meanwhile (rule R2). While unwinding, it waits as usual
                // (rule R1).
                crate::loom::note_wait(WaitReason::Join(thread));
                while self.state.load(Ordering::Acquire) != DONE {
                    if !cancellable {
                        spool_runtime::wait();
                        continue;
                    }
                    match spool_runtime::cancellable_wait(None) {
                        Check::Continue => {}
                        Check::Raise(cancelled) => {
                            if self.state.load(Ordering::Acquire) != DONE {
                                raise(cancelled);
                            }
                        }
                        Check::Unwinding => spool_runtime::wait(),
                    }
                }
            }
        }
        // SAFETY: DONE was observed with Acquire: the spawned thread wrote
        // `result` before and will not touch it again.
        let result = unsafe { (*self.result.get()).take() };
        result
            .unwrap_or_else(|| panic!("spool: join found no result: the thread was already joined"))
    }
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        // A thread ended by cancellation did not panic: a scope whose
        // children were cancelled with it does not report a panic.
        let (unhandled_panic, cancelled) = match self.result.get_mut() {
            Some(Err(payload)) => {
                let cancelled = Cancelled::from_payload(payload).is_some();
                (!cancelled, cancelled)
            }
            _ => (false, false),
        };
        // Drop the result (it may borrow from the scope) before telling the
        // scope this thread is gone; a panicking destructor must not unwind
        // into whichever thread drops the packet. The second payload is
        // never dropped: the process aborts first, as std's does.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| *self.result.get_mut() = None)) {
            std::mem::forget(payload);
            spool_runtime_abort("thread result panicked on drop");
        }
        if let Some(scope) = &self.scope {
            scope.decrement_num_running_threads(unhandled_panic, cancelled);
        }
    }
}

fn spool_runtime_abort(what: &str) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "fatal runtime error: {what}, aborting");
    std::process::abort()
}

/// `join`'s error for a thread whose runtime shut down before it ran.
const NEVER_RAN: &str = "spool: the runtime shut down before this green thread ran";

/// `join`'s error for a thread its runtime's shutdown left blocked.
const ABANDONED: &str =
    "spool: the runtime shut down while this green thread was blocked; it will never finish";

/// The spawned side of a packet: owns the thread's closure until it runs,
/// and completes the packet exactly once — with the closure's result, or
/// with an error if the closure is dropped unrun (its runtime shut down
/// first) or the thread is abandoned blocked (see "Lifetime" in the
/// engine's `scheduler.rs`) — so `join` never hangs.
///
/// # Invariant
/// The closure is dropped (or has run) *before* the packet is completed
/// and released: completing is what lets `join` and `scope` return, after
/// which whatever the closure borrows may be freed.
pub(crate) struct Completion<'scope, F, T> {
    /// The thread's closure, until it runs.
    f: Option<F>,
    packet: Option<Arc<Packet<'scope, T>>>,
}

impl<'scope, F, T> Completion<'scope, F, T>
where
    F: FnOnce() -> T,
{
    pub(crate) fn new(packet: Arc<Packet<'scope, T>>, f: F) -> Self {
        Completion {
            f: Some(f),
            packet: Some(packet),
        }
    }

    /// Runs the thread's closure and publishes its result.
    pub(crate) fn run(mut self) {
        let Some(f) = self.f.take() else {
            return;
        };
        // Should the runtime shut down while the closure is blocked, its
        // worker completes the packet through this hook.
        let slot: *mut Option<Arc<Packet<'scope, T>>> = &mut self.packet;
        // SAFETY: `abandon::<T>` takes the packet out of `slot` and completes
        // it. `slot` points to `self`, on this green thread's stack, which
        // this function does not touch until `clear_abandon_hook` below; an
        // abandoned thread is never resumed, so its stack stays allocated
        // and untouched for good. `abandon` does not unwind: `complete`
        // does not panic, and the packet's drop aborts rather than unwind.
        unsafe { spool_runtime::set_abandon_hook(slot.cast(), abandon::<T>) };
        // A thread cancelled before it started never runs its closure: `f`
        // is dropped unrun and `join` gets the `Cancelled` payload. A scoped
        // child runs inside the cancel scopes of its `scope` call, and the
        // thread of `Runtime::run` inside those of its caller. (Only they
        // pay for that wrapper: in unoptimised builds every closure layer
        // copies `f`'s captures onto the thread's stack.)
        let inherited = self
            .packet
            .as_ref()
            .and_then(|packet| packet.inherited.clone());
        let result = if let Some(inherited) = inherited {
            run_inherited(inherited, f)
        } else if let Some(cancelled) = cancelled_before_start() {
            drop_unrun(f, cancelled)
        } else {
            catch_unwind(AssertUnwindSafe(f))
        };
        // Thread-local values die before `join` returns, as with std.
        // SAFETY: the thread's closure has returned (or unwound), so no
        // reference into its thread-local values is left.
        if let Err(payload) = catch_unwind(|| unsafe { spool_runtime::destroy_current_locals() }) {
            std::mem::forget(payload);
            spool_runtime_abort("thread local panicked on drop");
        }
        spool_runtime::clear_abandon_hook();
        if let Some(packet) = self.packet.take() {
            packet.complete(result);
        }
    }
}

/// The cancellation of a thread cancelled before it started. Out of line
/// and not generic, so that in unoptimised builds the frame under every
/// green thread stays small (each parked thread keeps it resident).
#[inline(never)]
fn cancelled_before_start() -> Option<Box<Cancelled>> {
    match spool_runtime::cancel::check() {
        Check::Raise(cancelled) => Some(Box::new(cancelled)),
        _ => None,
    }
}

/// Drops the closure of a thread cancelled before it started; its result
/// is the cancellation (or a panic from the closure's destructors).
#[inline(never)]
fn drop_unrun<F, T>(f: F, cancelled: Box<Cancelled>) -> crate::thread::Result<T> {
    catch_unwind(AssertUnwindSafe(move || drop(f)))?;
    Err(cancelled)
}

/// Runs the closure of a scoped child (or of `Runtime::run`'s thread)
/// inside the cancel scopes it inherits (unless it is cancelled before it
/// starts).
#[inline(never)]
fn run_inherited<F: FnOnce() -> T, T>(inherited: Inherited, f: F) -> crate::thread::Result<T> {
    catch_unwind(AssertUnwindSafe(move || {
        inherited.run(move || {
            spool_runtime::cancel::checkpoint();
            f()
        })
    }))
}

/// The abandon hook of a running thread (see `Completion::run`): completes
/// its packet with an error saying the runtime shut down, which wakes the
/// joiner or, for a scoped thread, lets the scope return.
///
/// # Safety
/// `slot` is the `packet` field of a `Completion` whose thread is suspended
/// for good.
unsafe fn abandon<T>(slot: *mut ()) {
    let slot = slot.cast::<Option<Arc<Packet<'_, T>>>>();
    // SAFETY: the caller's contract: the slot is valid, and nothing else
    // touches it now that its thread never runs again.
    if let Some(packet) = unsafe { (*slot).take() } {
        packet.complete(Err(Box::new(ABANDONED)));
    }
}

impl<F, T> Drop for Completion<'_, F, T> {
    fn drop(&mut self) {
        // Only an unrun closure is still here: drop it first, and only then
        // complete (see `# Invariant`).
        if let Some(f) = self.f.take() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(f))) {
                use std::io::Write;
                let _ = std::io::stderr().write_all(
                    b"spool: the closure of a green thread that never ran panicked while being \
                      dropped unrun; the panic is contained\n",
                );
                if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                    std::mem::forget(second);
                    spool_runtime_abort("a panic payload panicked while being dropped");
                }
            }
        }
        if let Some(packet) = self.packet.take() {
            packet.complete(Err(Box::new(NEVER_RAN)));
        }
    }
}

/// What a `scope` knows of its children.
pub(crate) struct ScopeData {
    /// The cancel scopes of the `scope` call, which its children inherit.
    inherited: Inherited,
    num_running_threads: AtomicUsize,
    a_thread_panicked: AtomicBool,
    a_thread_was_cancelled: AtomicBool,
    main_thread: ThreadHandle,
}

impl ScopeData {
    pub(crate) fn new() -> ScopeData {
        ScopeData {
            inherited: spool_runtime::cancel::inherit(),
            num_running_threads: AtomicUsize::new(0),
            a_thread_panicked: AtomicBool::new(false),
            a_thread_was_cancelled: AtomicBool::new(false),
            main_thread: spool_runtime::current(),
        }
    }

    fn increment_num_running_threads(&self) {
        // Relaxed: the count is only ever read for zero after the
        // decrements, which synchronize through Release/Acquire.
        if self.num_running_threads.fetch_add(1, Ordering::Relaxed) > usize::MAX / 2 {
            spool_runtime_abort("too many running threads in thread scope");
        }
    }

    fn decrement_num_running_threads(&self, panicked: bool, cancelled: bool) {
        if panicked {
            self.a_thread_panicked.store(true, Ordering::Relaxed);
        }
        if cancelled {
            self.a_thread_was_cancelled.store(true, Ordering::Relaxed);
        }
        // Release: the child's last touches of borrowed data happen before
        // the scope sees zero (Acquire in `wait_all`).
        if self.num_running_threads.fetch_sub(1, Ordering::Release) == 1 {
            self.main_thread.wake();
        }
    }

    /// Blocks until every child has finished. Not a cancellation point: the
    /// children borrow from the caller's stack, so it cannot unwind before
    /// they end; a cancellation reaches them instead (they inherit the
    /// caller's scopes).
    ///
    /// `site` is the call site recorded for thread dumps: the scope's or
    /// the task group's.
    pub(crate) fn wait_all(&self, site: &'static Location<'static>) {
        if self.num_running_threads.load(Ordering::Acquire) == 0 {
            return;
        }
        crate::loom::note_wait_at(WaitReason::ScopeExit, site);
        while self.num_running_threads.load(Ordering::Acquire) != 0 {
            spool_runtime::wait();
        }
    }

    pub(crate) fn a_thread_panicked(&self) -> bool {
        self.a_thread_panicked.load(Ordering::Relaxed)
    }

    /// Whether a child that nobody joined ended by cancellation.
    pub(crate) fn a_thread_was_cancelled(&self) -> bool {
        self.a_thread_was_cancelled.load(Ordering::Relaxed)
    }
}
