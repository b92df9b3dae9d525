//! Cancellation: cancel scopes, deadlines, and how a blocked thread learns
//! that it is cancelled.
//!
//! # The model
//! A *cancel scope* is a region of one thread's code, entered only through
//! a closure ([`CancelScope::run`]), that can be cancelled from anywhere by
//! whoever holds a clone of its handle, or by its deadline. Scopes nest:
//! each thread has a *chain* of the scopes it is inside, innermost last. A
//! thread is **effectively cancelled** when a scope on its chain, from the
//! innermost outwards up to and including the first *shielded* one, is
//! cancelled; its **effective deadline** is the earliest deadline over the
//! same part of the chain. When an effectively cancelled thread reaches a
//! *cancellation point* (any blocking call of spool's, or [`checkpoint`]),
//! the call unwinds with a [`Cancelled`] payload, running destructors like a
//! panic that nobody prints (it is raised with `resume_unwind`, which skips
//! the panic hook). The `run` of the cancelled scope catches it and returns
//! `None`; when several scopes of the chain are cancelled, the outermost of
//! them is named, so the unwind goes straight to it.
//!
//! A green thread also has a *root* scope, created on demand, which is
//! what `JoinHandle::cancel` cancels. Scoped children and `unblock`'s pool
//! threads *inherit* the chain of the thread that started them (up to its
//! first shield, and its root): they become members of those scopes, and a
//! cancel of any of them reaches them.
//!
//! # Delivery: an interrupt bit, rechecked lazily
//! Checking the chain at every blocking call would cost O(depth); trio
//! keeps an eagerly updated status per task for this reason. spool keeps
//! less: one `INTERRUPT` bit in each thread's park word (`park.rs`,
//! `os_waiter.rs`) meaning "your status may have changed, recheck it", and
//! the thread's effective deadline cached in a cell. A cancellation point
//! first does one relaxed load of the park word it touches anyway, and one
//! comparison with the cached deadline if there is one: O(1), and nothing
//! at all for a thread that never entered a scope. Only when the bit is set
//! or the deadline has passed does it walk the chain (`recheck`).
//!
//! Cancelling a scope marks it (under its lock), then *interrupts* every
//! member thread: sets the bit and, if the member is switched out in a
//! wait that is a cancellation point, queues it (the wait returns as if
//! spuriously, leaving no token: no `unpark` or wake is faked or used up).
//! `recheck` clears the bit *before* reading the scopes, so a cancel that
//! lands during the walk sets it again: no cancellation is lost (the loom
//! model `a_cancel_during_a_recheck_is_not_lost` in `park.rs`). If the walk
//! finds the thread cancelled it sets the bit again: the status stays
//! visible to the next cancellation point, so a `catch_unwind` that
//! swallows a `Cancelled` sees it raised again. Deadlines need no timer:
//! every interruptible wait is bounded by the cached effective deadline, so
//! the thread wakes at it, and the walk marks an expired scope cancelled
//! with [`CancelReason::Deadline`] (interrupting its other members too).
//! Moving a running scope's deadline interrupts its members so they
//! recompute the cache.
//!
//! # The three rules
//! * **R1 — never unwind while unwinding.** A second unwind during an
//!   unwind aborts the process. When a thread that is already unwinding (a
//!   panic, or the cancellation itself, in a destructor) reaches a
//!   cancellation point while effectively cancelled, [`check`] answers
//!   [`Check::Unwinding`] instead of [`Check::Raise`], and the call fails
//!   fast with its own error, returns early (`sleep`, `park`), or blocks
//!   as usual with a *masked* wait (`join`, locks).
//! * **R2 — a completed operation beats a late cancellation.** A blocking
//!   call that finds itself cancelled first withdraws from whatever it
//!   waited on, then checks once more whether its operation completed
//!   meanwhile; if it did, it returns the value and leaves the cancellation
//!   for the next cancellation point.
//! * **`panic = "abort"`**: nothing can unwind, so [`check`] never answers
//!   `Raise`: every cancellation point behaves as under R1, and cancellation
//!   is cooperative (blocking calls fail with their errors or return early,
//!   [`is_cancelled`] says why).
//! * **R3 — a timeout is an error, not a cancellation**: see
//!   `spool::time::timeout`, built on [`CancelScope::run`] returning `None`
//!   only for its own scope.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::num::NonZeroU64;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{scheduler, ThreadHandle, ThreadId};

/// Why a scope was cancelled.
///
/// ```
/// use spool::cancel::{CancelReason, CancelScope};
///
/// let scope = CancelScope::new();
/// scope.cancel_with(CancelReason::requested("user pressed stop"));
/// let result = scope.run(|| spool::thread::sleep(std::time::Duration::from_secs(60)));
/// assert_eq!(result, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Someone called `cancel` or `cancel_with`, optionally saying why.
    Requested(Option<Arc<str>>),
    /// The scope's deadline passed.
    Deadline,
    /// Another thread of the same group failed.
    SiblingFailed,
    /// The runtime is shutting down.
    Shutdown,
}

impl CancelReason {
    /// A requested cancellation with a message saying why.
    ///
    /// ```
    /// use spool::cancel::CancelReason;
    ///
    /// let reason = CancelReason::requested("user pressed stop");
    /// assert_eq!(reason.to_string(), "cancellation requested: user pressed stop");
    /// ```
    pub fn requested(message: impl Into<Arc<str>>) -> CancelReason {
        CancelReason::Requested(Some(message.into()))
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Requested(None) => f.write_str("cancellation requested"),
            CancelReason::Requested(Some(message)) => {
                write!(f, "cancellation requested: {message}")
            }
            CancelReason::Deadline => f.write_str("deadline passed"),
            CancelReason::SiblingFailed => f.write_str("a sibling thread failed"),
            CancelReason::Shutdown => f.write_str("the runtime is shutting down"),
        }
    }
}

/// Identifies one cancel scope (unique for the life of the process).
///
/// ```
/// use spool::cancel::CancelScope;
///
/// let (a, b) = (CancelScope::new(), CancelScope::new());
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id(), a.clone().id()); // a clone is the same scope
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ScopeId(NonZeroU64);

impl ScopeId {
    /// The id as a number, unique for the life of the process.
    ///
    /// ```
    /// let scope = spool::cancel::CancelScope::new();
    /// println!("scope #{}", scope.id().as_u64());
    /// ```
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }

    fn next() -> ScopeId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        ScopeId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }
}

/// The unwind payload of a cancelled thread: why, which scope, and who.
///
/// A cancellation unwinds like a panic, so code that catches unwinds sees
/// it; [`Cancelled::from_payload`] tells the two apart. It is not printed,
/// and `JoinHandle::join` of a thread that ended by cancellation returns it
/// as the `Err` payload.
///
/// ```
/// use spool::cancel::{Cancelled, CancelReason};
///
/// let child = spool::thread::spawn(|| spool::thread::park());
/// child.cancel();
/// let payload = child.join().unwrap_err();
/// let cancelled = Cancelled::from_payload(&payload).expect("cancelled, not panicked");
/// assert!(matches!(cancelled.reason(), CancelReason::Requested(None)));
/// ```
#[derive(Clone, Debug)]
pub struct Cancelled {
    reason: CancelReason,
    scope: ScopeId,
    by: Option<ThreadId>,
}

impl Cancelled {
    /// The `Cancelled` in an unwind payload (from `catch_unwind` or
    /// `JoinHandle::join`), or `None` if the payload is a panic's.
    ///
    /// ```
    /// use spool::cancel::Cancelled;
    ///
    /// // A panic's payload is no cancellation.
    /// let panicked = std::panic::catch_unwind(|| panic!("bug")).unwrap_err();
    /// assert!(Cancelled::from_payload(&panicked).is_none());
    /// // A cancelled thread's is.
    /// let child = spool::thread::spawn(|| spool::thread::park());
    /// child.cancel();
    /// assert!(Cancelled::from_payload(&child.join().unwrap_err()).is_some());
    /// ```
    pub fn from_payload(payload: &Box<dyn Any + Send>) -> Option<&Cancelled> {
        payload.downcast_ref::<Cancelled>()
    }

    /// Why the scope was cancelled.
    ///
    /// ```
    /// use spool::cancel::{CancelReason, Cancelled};
    ///
    /// let child = spool::thread::spawn(|| spool::thread::park());
    /// child.cancel_with(CancelReason::requested("shutting down"));
    /// let payload = child.join().unwrap_err();
    /// let cancelled = Cancelled::from_payload(&payload).unwrap();
    /// assert_eq!(cancelled.reason(), &CancelReason::requested("shutting down"));
    /// ```
    pub fn reason(&self) -> &CancelReason {
        &self.reason
    }

    /// The scope that was cancelled.
    ///
    /// ```
    /// use spool::cancel::Cancelled;
    ///
    /// let child = spool::thread::spawn(|| spool::thread::park());
    /// child.cancel(); // cancels the child's root scope
    /// let payload = child.join().unwrap_err();
    /// let cancelled = Cancelled::from_payload(&payload).unwrap();
    /// println!("scope #{} was cancelled", cancelled.scope().as_u64());
    /// ```
    pub fn scope(&self) -> ScopeId {
        self.scope
    }

    /// The thread that called `cancel`, or `None` for a deadline.
    ///
    /// ```
    /// use spool::cancel::{CancelReason, Cancelled};
    ///
    /// let child = spool::thread::spawn(|| spool::thread::park());
    /// child.cancel_with(CancelReason::requested("shutting down"));
    /// let payload = child.join().unwrap_err();
    /// let cancelled = Cancelled::from_payload(&payload).unwrap();
    /// assert_eq!(cancelled.cancelled_by(), Some(spool::thread::current().id()));
    /// ```
    pub fn cancelled_by(&self) -> Option<ThreadId> {
        self.by
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled: {}", self.reason)
    }
}

impl std::error::Error for Cancelled {}

/// What a cancellation point must do, as [`check`] answers it.
#[derive(Debug)]
pub enum Check {
    /// Not cancelled: go on.
    Continue,
    /// Effectively cancelled: withdraw, then (unless the operation completed
    /// meanwhile, rule R2) unwind with [`raise`].
    Raise(Cancelled),
    /// Effectively cancelled while already unwinding (rule R1): do not
    /// unwind; fail fast with the call's own error, return early, or block
    /// as usual with a masked wait.
    Unwinding,
}

/// A cancel scope's shared state.
pub(crate) struct ScopeInner {
    id: ScopeId,
    /// A green thread's root scope (what `JoinHandle::cancel` cancels),
    /// not one a program entered: dumps leave inherited roots out of the
    /// scope tree.
    root: bool,
    /// Set once, when the scope is cancelled (never cleared).
    cancelled: AtomicBool,
    shield: AtomicBool,
    /// Entered by a `run` right now.
    running: AtomicBool,
    data: Mutex<ScopeData>,
}

struct ScopeData {
    cancel: Option<Cancelled>,
    /// A name for dumps (a task group's).
    label: Option<Arc<str>>,
    deadline: Option<Instant>,
    /// The thread running the scope's `run`, if any (to interrupt on
    /// cancel). Kept apart from `members` so entering a scope allocates
    /// nothing beyond the scope itself.
    runner: Option<ThreadHandle>,
    /// Other threads whose chain holds this scope: those that inherited it
    /// (to interrupt on cancel).
    members: Slab<ThreadHandle>,
}

impl ScopeInner {
    fn new(deadline: Option<Instant>, root: bool) -> Arc<ScopeInner> {
        Arc::new(ScopeInner {
            id: ScopeId::next(),
            root,
            cancelled: AtomicBool::new(false),
            shield: AtomicBool::new(false),
            running: AtomicBool::new(false),
            data: Mutex::new(ScopeData {
                cancel: None,
                label: None,
                deadline,
                runner: None,
                members: Slab::default(),
            }),
        })
    }

    fn data(&self) -> std::sync::MutexGuard<'_, ScopeData> {
        scheduler::lock(&self.data)
    }

    /// Marks the scope cancelled (the first reason wins) and interrupts its
    /// members. Idempotent.
    fn cancel(&self, reason: CancelReason, by: Option<ThreadId>) {
        let mut data = self.data();
        if data.cancel.is_some() {
            return;
        }
        data.cancel = Some(Cancelled {
            reason,
            scope: self.id,
            by,
        });
        // Release: a member's `take_interrupt` (Acquire, through the
        // interrupt's RMW chain) then sees the mark.
        self.cancelled.store(true, Ordering::Release);
        data.interrupt_all();
    }

    /// The cancellation, if the scope is cancelled; marks it cancelled by
    /// its deadline first if that has passed by `now`.
    fn cancellation(&self, now: &mut Option<Instant>) -> Option<Cancelled> {
        if self.cancelled.load(Ordering::Acquire) {
            return self.data().cancel.clone();
        }
        let deadline = self.data().deadline?;
        let now = *now.get_or_insert_with(Instant::now);
        if now < deadline {
            return None;
        }
        self.cancel(CancelReason::Deadline, None);
        self.data().cancel.clone()
    }

    fn deadline(&self) -> Option<Instant> {
        self.data().deadline
    }

    /// The running thread enters: returns the deadline and whether the
    /// scope is a shield, in the same critical section.
    fn enter_runner(&self, thread: ThreadHandle) -> (Option<Instant>, bool) {
        let mut data = self.data();
        data.runner = Some(thread);
        (data.deadline, self.shield.load(Ordering::Relaxed))
    }

    fn leave_runner(&self) {
        let runner = self.data().runner.take();
        // Dropped outside the lock: a handle's drop may recycle a task.
        drop(runner);
    }

    fn add_member(&self, thread: ThreadHandle) -> usize {
        self.data().members.insert(thread)
    }

    fn remove_member(&self, slot: usize) {
        let removed = self.data().members.remove(slot);
        // Dropped outside the lock: a handle's drop may recycle a task.
        drop(removed);
    }
}

impl ScopeData {
    /// Interrupts every thread whose chain holds the scope, under the
    /// scope's lock (so a member cannot leave, and a new one sees the new
    /// status when it enters). Interrupting only touches the thread's park
    /// word and, to queue it, its runtime's queues, which never take a
    /// scope's lock: no lock-order cycle.
    fn interrupt_all(&self) {
        if let Some(runner) = &self.runner {
            runner.interrupt();
        }
        for member in self.members.slots.iter().flatten() {
            member.interrupt();
        }
    }
}

/// A minimal slab: O(1) insert and remove by slot.
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Clone> Slab<T> {
    fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(value);
                slot
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<T> {
        let value = self.slots.get_mut(slot)?.take();
        if value.is_some() {
            self.free.push(slot);
        }
        value
    }
}

/// A scope on a thread's chain, with the member slot to give back (an
/// inherited scope) or `usize::MAX` (a scope the thread runs).
struct Link {
    scope: Arc<ScopeInner>,
    slot: usize,
}

/// One thread's cancellation state: owner-only (only the thread itself
/// touches it), in its `Task` or, for an OS thread, in a thread-local.
///
/// Small on purpose: every green thread carries one, and a thread that
/// never enters a scope never allocates its chain.
#[derive(Default)]
pub(crate) struct CancelState {
    /// The effective deadline as of the last recheck, scope entry or exit.
    pub(crate) deadline: Cell<Option<Instant>>,
    /// The scopes, made on first entry.
    chain: RefCell<Option<Box<Chain>>>,
    /// The unwind in flight, if any, is a cancellation's (set by `raise`,
    /// cleared by the panic hook and where a scope catches the unwind):
    /// see [`unwinding_from_cancel`].
    raising: Cell<bool>,
}

/// A thread's chain of scopes.
#[derive(Default)]
struct Chain {
    /// Scopes inherited from the thread that started this one, outermost
    /// first (see `Inherited`).
    inherited: Vec<Link>,
    /// Scopes this thread entered with `run`, outermost first.
    entered: Vec<Link>,
}

/// The chain of a thread that never entered a scope.
static NO_CHAIN: Chain = Chain {
    inherited: Vec::new(),
    entered: Vec::new(),
};

impl CancelState {
    /// The chain, to read.
    fn chain(&self) -> std::cell::Ref<'_, Chain> {
        std::cell::Ref::map(self.chain.borrow(), |chain| {
            chain.as_deref().unwrap_or(&NO_CHAIN)
        })
    }

    /// The chain, to change (made on first use).
    fn chain_mut(&self) -> std::cell::RefMut<'_, Chain> {
        std::cell::RefMut::map(self.chain.borrow_mut(), |chain| {
            &mut **chain.get_or_insert_with(Box::default)
        })
    }
}

/// The calling thread's park word, as far as interrupts go.
enum Bits<'a> {
    Green(&'a crate::task::Task),
    Os(&'a crate::os_waiter::OsWaiter),
    /// An OS thread whose thread-locals are being destroyed: no scopes.
    None,
}

impl Bits<'_> {
    #[inline]
    fn pending(&self) -> bool {
        match self {
            Bits::Green(task) => task.state.interrupt_pending(),
            Bits::Os(waiter) => waiter.interrupt_pending(),
            Bits::None => false,
        }
    }

    fn take(&self) {
        match self {
            Bits::Green(task) => {
                task.state.take_interrupt();
            }
            Bits::Os(waiter) => {
                waiter.take_interrupt();
            }
            Bits::None => {}
        }
    }

    fn set(&self) {
        match self {
            Bits::Green(task) => task.state.set_interrupt(),
            Bits::Os(waiter) => waiter.set_interrupt(),
            Bits::None => {}
        }
    }

    fn root(&self) -> Option<&Arc<ScopeInner>> {
        match self {
            Bits::Green(task) => task.cancel_root.get(),
            _ => None,
        }
    }
}

thread_local! {
    /// The cancellation state of a plain OS thread.
    static OS_CANCEL: CancelState = CancelState::default();
}

/// Runs `f` with the calling thread's cancellation state and park word.
/// On an OS thread whose `OS_CANCEL` is destroyed already (a spool call
/// from another thread-local's destructor) the state is a throwaway one:
/// scopes entered there work as plain closures, never cancelled.
#[inline]
fn with_current<R>(f: impl FnOnce(&CancelState, Bits<'_>) -> R) -> R {
    if let Some(task) = scheduler::current_task() {
        return f(&task.cancel, Bits::Green(task));
    }
    let mut f = Some(f);
    let result = OS_CANCEL.try_with(|state| {
        crate::with_os_waiter(|waiter| {
            let bits = waiter.map_or(Bits::None, Bits::Os);
            f.take().map(|f| f(state, bits))
        })
    });
    match (result, f) {
        (Ok(Some(result)), _) => result,
        (_, Some(f)) => f(&CancelState::default(), Bits::None),
        (_, None) => crate::fatal("cancel::with_current: the closure ran but returned nothing"),
    }
}

/// Whether the calling thread is cancelled, and what its cancellation
/// points must do (see [`Check`]). O(1) unless a cancellation may be
/// pending. This is what every blocking call of spool asks.
///
/// The green-thread fast path touches only the task (no closure, no
/// thread-local): it runs at every blocking call, on stacks whose every
/// touched page is resident memory.
#[inline]
pub fn check() -> Check {
    match scheduler::current_task() {
        Some(task) => {
            if !task.state.interrupt_pending() && task.cancel.deadline.get().is_none() {
                return Check::Continue;
            }
            check_green(task)
        }
        None => check_os(),
    }
}

/// `check` for a green thread that has an interrupt pending or a deadline.
#[inline(never)]
fn check_green(task: &crate::task::Task) -> Check {
    let bits = Bits::Green(task);
    if !bits.pending()
        && task
            .cancel
            .deadline
            .get()
            .is_some_and(|d| Instant::now() < d)
    {
        return Check::Continue;
    }
    recheck(&task.cancel, &bits)
}

/// `check` on a plain OS thread.
#[inline(never)]
fn check_os() -> Check {
    with_current(|state, bits| {
        if !bits.pending() {
            match state.deadline.get() {
                None => return Check::Continue,
                Some(deadline) if Instant::now() < deadline => return Check::Continue,
                Some(_) => {}
            }
        }
        recheck(state, &bits)
    })
}

/// The slow path of `check`: walks the chain.
#[cold]
fn recheck(state: &CancelState, bits: &Bits<'_>) -> Check {
    // Clear first, then read the scopes: a cancel after the clear sets the
    // bit again (see the module's essay).
    bits.take();
    let (cancelled, deadline) = walk(state, bits.root());
    state.deadline.set(deadline);
    match cancelled {
        None => Check::Continue,
        Some(cancelled) => {
            bits.set();
            // A build with `panic = "abort"` cannot unwind at all: there
            // cancellation is cooperative, and every cancellation point
            // behaves as under R1.
            if cfg!(panic = "abort") || crate::panicking() {
                Check::Unwinding
            } else {
                Check::Raise(cancelled)
            }
        }
    }
}

/// Visits the effective part of the chain, innermost first: the scopes the
/// thread entered, then its root, then the inherited ones, stopping after
/// the first shield.
fn visit_effective(
    state: &CancelState,
    root: Option<&Arc<ScopeInner>>,
    mut visit: impl FnMut(&ScopeInner),
) {
    let mut visit = |scope: &ScopeInner| -> bool {
        visit(scope);
        // Go on outwards unless this scope is a shield.
        !scope.shield.load(Ordering::Relaxed)
    };
    let chain = state.chain();
    let mut outwards = chain.entered.iter().rev().all(|link| visit(&link.scope));
    if outwards {
        if let Some(root) = root {
            outwards = visit(root);
        }
    }
    if outwards {
        chain.inherited.iter().rev().all(|link| visit(&link.scope));
    }
}

/// The outermost cancellation on the effective part of the chain, and the
/// earliest deadline of its scopes not yet cancelled.
fn walk(
    state: &CancelState,
    root: Option<&Arc<ScopeInner>>,
) -> (Option<Cancelled>, Option<Instant>) {
    let mut now = None;
    let mut found = None;
    let mut deadline: Option<Instant> = None;
    visit_effective(state, root, |scope| match scope.cancellation(&mut now) {
        Some(cancelled) => found = Some(cancelled),
        None => deadline = earliest(deadline, scope.deadline()),
    });
    (found, deadline)
}

/// After the inherited part of the chain changed: recompute the cached
/// deadline and make the next cancellation point recheck.
fn chain_changed(state: &CancelState, bits: &Bits<'_>) {
    state.deadline.set(walk_deadline(state, bits.root()));
    bits.set();
}

/// The earliest of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The effective deadline, without marking expired scopes.
fn walk_deadline(state: &CancelState, root: Option<&Arc<ScopeInner>>) -> Option<Instant> {
    let mut deadline: Option<Instant> = None;
    visit_effective(state, root, |scope| {
        deadline = earliest(deadline, scope.deadline());
    });
    deadline
}

/// Unwinds the calling thread with `cancelled` as the payload, without
/// running the panic hook (so nothing is printed).
pub fn raise(cancelled: Cancelled) -> ! {
    if let Some(task) = scheduler::current_task() {
        // The panic hook, which records this for `crate::panicking`, is
        // skipped by `resume_unwind`.
        task.unwinding.set(true);
    }
    with_current(|state, _| state.raising.set(true));
    resume_unwind(Box::new(cancelled))
}

/// Whether the calling thread is unwinding because of a cancellation
/// (raised by [`raise`]) rather than a panic. A cancellation is not a
/// failure, so a lock whose guard its unwind drops is not poisoned.
///
/// `raise` marks the unwind; the runtime's panic hook and a scope that
/// catches it clear the mark. So the answer can be wrong in corners: a
/// program that replaces the panic hook *and* swallows a `Cancelled` with
/// its own `catch_unwind` may see a later panic taken for a cancellation
/// (not poisoning); a panic caught inside a destructor during a
/// cancellation's unwind clears the mark for the rest of that unwind; and
/// a `Cancelled` payload moved to another thread and resumed there with
/// `std::panic::resume_unwind` is not marked (both then poison, as for a
/// panic).
pub fn unwinding_from_cancel() -> bool {
    crate::panicking() && with_current(|state, _| state.raising.get())
}

/// Called by the panic hook: the unwind that starts now is a panic's.
pub(crate) fn panic_began() {
    with_current(|state, _| state.raising.set(false));
}

/// As [`std::panic::resume_unwind`], for code that caught an unwind and
/// passes it on (a scope, `thread::scope`, `unblock`, `Runtime::run`):
/// records whether it is a cancellation's, so the locks it unwinds through
/// are not poisoned by a cancellation (see [`unwinding_from_cancel`]).
pub fn resume(payload: Box<dyn Any + Send>) -> ! {
    let cancelling = Cancelled::from_payload(&payload).is_some();
    with_current(|state, _| state.raising.set(cancelling));
    resume_unwind(payload)
}

/// The calling thread's effective cancellation, if it is effectively
/// cancelled: unlike [`check`], whatever it is doing (also while
/// unwinding, and in a build with `panic = "abort"`). For code that must
/// tell an error caused by a cooperative cancellation from a failure.
pub fn cancellation() -> Option<Cancelled> {
    with_current(|state, bits| walk(state, bits.root()).0)
}

/// Tells the runtime that the unwind the calling thread just caught (with
/// `catch_unwind`) ends there and will not be resumed: the mark that
/// [`unwinding_from_cancel`] reads is cleared, as a scope does when it
/// catches its own cancellation. For code that turns a caught
/// [`Cancelled`] into a value (a task group's result) instead of passing
/// it on with [`resume`].
pub fn unwind_caught() {
    with_current(|state, _| state.raising.set(false));
}

/// A cancellation point: unwinds with [`Cancelled`] if the calling thread
/// is effectively cancelled (and not already unwinding). For long CPU loops
/// that make no blocking call.
///
/// ```
/// use spool::cancel::{checkpoint, CancelScope};
///
/// let scope = CancelScope::new();
/// let handle = scope.clone();
/// let result = scope.run(|| {
///     let mut n = 0u64;
///     loop {
///         n += 1;
///         if n == 1_000 {
///             handle.cancel();
///         }
///         checkpoint();
///     }
/// });
/// assert_eq!(result, None);
/// ```
pub fn checkpoint() {
    if let Check::Raise(cancelled) = check() {
        raise(cancelled)
    }
}

/// Whether the calling thread is effectively cancelled, without unwinding:
/// for CPU loops that want to stop cleanly, FFI callbacks that must not
/// unwind, and code inside `unblock`.
///
/// ```
/// use spool::cancel::{is_cancelled, CancelScope};
///
/// let scope = CancelScope::new();
/// scope.cancel();
/// let seen = scope.run(|| is_cancelled());
/// assert_eq!(seen, Some(true));
/// assert!(!is_cancelled());
/// ```
pub fn is_cancelled() -> bool {
    !matches!(check(), Check::Continue)
}

/// The calling thread's effective deadline: the earliest deadline over its
/// scopes up to the first shield, or `None`.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(spool::cancel::current_deadline(), None);
/// let r = spool::time::timeout(Duration::from_secs(5), || spool::cancel::current_deadline());
/// assert!(r.unwrap().is_some());
/// ```
pub fn current_deadline() -> Option<Instant> {
    with_current(|state, bits| walk_deadline(state, bits.root()))
}

/// The calling thread's effective deadline as last cached (no walk): what
/// an interruptible wait is bounded by.
#[inline]
pub(crate) fn cached_deadline() -> Option<Instant> {
    match scheduler::current_task() {
        Some(task) => task.cancel.deadline.get(),
        None => with_current(|state, _| state.deadline.get()),
    }
}

/// Runs `f` shielded from every enclosing scope: no cancellation from
/// outside reaches the cancellation points inside (for cleanup that must
/// finish, like sending a goodbye message). Deadlines of enclosing scopes
/// do not apply either; put a `timeout` inside to bound it.
///
/// ```
/// use spool::cancel::{is_cancelled, shield, CancelScope};
/// use std::time::Duration;
///
/// let scope = CancelScope::new();
/// scope.cancel();
/// let result = scope.run(|| {
///     // Cancelled already, but the shielded cleanup runs to its end.
///     let finished = shield(|| {
///         spool::thread::sleep(Duration::from_millis(5));
///         !is_cancelled()
///     });
///     assert!(finished);
///     spool::cancel::checkpoint(); // unwinds: the scope is cancelled
///     unreachable!()
/// });
/// assert_eq!(result, None);
/// ```
pub fn shield<T>(f: impl FnOnce() -> T) -> T {
    let scope = CancelScope::new().shield(true);
    match scope.enter(f) {
        Ok(value) => value,
        // Nobody else holds this scope, so only a panic or an outer
        // cancellation (impossible through a shield, but passed on) can end
        // it early.
        Err(payload) => resume(payload),
    }
}

/// A region of code that can be cancelled, by a call on any clone of its
/// handle or by its deadline.
///
/// The handle is `Clone + Send + Sync`: keep a clone to cancel the scope
/// from another thread. The scope is entered only through
/// [`run`](CancelScope::run), so it can never be left out of order or from
/// another thread.
///
/// ```
/// use spool::cancel::CancelScope;
/// use std::time::Duration;
///
/// let scope = CancelScope::new();
/// let canceller = scope.clone();
/// let t = spool::thread::spawn(move || {
///     spool::thread::sleep(Duration::from_millis(10));
///     canceller.cancel();
/// });
/// let (tx, rx) = spool::sync::mpsc::channel::<()>();
/// // Nobody sends: the cancel ends the receive.
/// assert!(scope.run(|| rx.recv()).is_none());
/// drop(tx);
/// t.join().unwrap();
/// ```
#[derive(Clone)]
pub struct CancelScope {
    inner: Arc<ScopeInner>,
}

impl Default for CancelScope {
    fn default() -> Self {
        CancelScope::new()
    }
}

impl fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelScope")
            .field("id", &self.inner.id)
            .field("cancelled", &self.is_cancelled())
            .field("deadline", &self.deadline())
            .field("shield", &self.inner.shield.load(Ordering::Relaxed))
            .finish()
    }
}

impl CancelScope {
    /// A scope with no deadline, not cancelled.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    /// use std::time::Duration;
    ///
    /// let scope = CancelScope::new(); // no deadline, not cancelled
    /// let canceller = scope.clone();
    /// spool::thread::spawn(move || {
    ///     spool::thread::sleep(Duration::from_millis(5));
    ///     canceller.cancel();
    /// });
    /// let r = scope.run(|| spool::thread::sleep(Duration::from_secs(60)));
    /// assert_eq!(r, None); // cancelled from the other thread
    /// ```
    pub fn new() -> CancelScope {
        CancelScope {
            inner: ScopeInner::new(None, false),
        }
    }

    /// Sets the deadline: the scope cancels itself (with
    /// [`CancelReason::Deadline`]) once it has passed. A deadline in the
    /// past cancels at the first cancellation point.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    /// use std::time::{Duration, Instant};
    ///
    /// let scope = CancelScope::new().with_deadline(Instant::now() + Duration::from_millis(5));
    /// assert_eq!(scope.run(|| spool::thread::sleep(Duration::from_secs(60))), None);
    /// ```
    pub fn with_deadline(self, deadline: Instant) -> CancelScope {
        self.set_deadline(Some(deadline));
        self
    }

    /// Sets the deadline `timeout` from now; `Duration::MAX` (or anything
    /// too far for an `Instant`) means no deadline.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    /// use std::time::Duration;
    ///
    /// let scope = CancelScope::new().with_timeout(Duration::from_millis(5));
    /// assert_eq!(scope.run(|| spool::thread::park()), None);
    /// ```
    pub fn with_timeout(self, timeout: Duration) -> CancelScope {
        self.set_deadline(Instant::now().checked_add(timeout));
        self
    }

    /// Makes the scope a shield (or not): cancellations of the scopes
    /// around it do not reach the code inside, and their deadlines do not
    /// apply. The scope itself can still be cancelled.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    ///
    /// let outer = CancelScope::new();
    /// outer.cancel();
    /// let inner = outer.run(|| {
    ///     CancelScope::new().shield(true).run(|| spool::cancel::is_cancelled())
    /// });
    /// // Inside the shield the outer cancellation is not seen; after it, the
    /// // outer scope's body returned normally.
    /// assert_eq!(inner, Some(Some(false)));
    /// ```
    pub fn shield(self, shield: bool) -> CancelScope {
        self.inner.shield.store(shield, Ordering::Relaxed);
        self.interrupt_members();
        self
    }

    /// Runs `f` inside the scope. Returns `None` exactly when *this* scope's
    /// cancellation unwound `f`; a panic, or the cancellation of an
    /// enclosing scope, passes through. If `f` returns normally its value
    /// is returned, even if the scope was cancelled meanwhile.
    ///
    /// # Panics
    /// If the scope is already running (entered by a `run` that has not
    /// returned, on this or another thread): a scope is a region of one
    /// thread's code. Clone the handle to cancel it from elsewhere; make a
    /// new scope to run code elsewhere.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    ///
    /// let scope = CancelScope::new();
    /// assert_eq!(scope.run(|| 7), Some(7));
    /// scope.cancel();
    /// assert_eq!(scope.run(|| { spool::cancel::checkpoint(); 7 }), None);
    /// ```
    #[track_caller]
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        match self.enter(f) {
            Ok(value) => Some(value),
            Err(payload) => match Cancelled::from_payload(&payload) {
                Some(cancelled) if cancelled.scope == self.inner.id => None,
                _ => resume(payload),
            },
        }
    }

    /// Enters the scope, runs `f` and leaves it, catching any unwind.
    #[track_caller]
    fn enter<T>(&self, f: impl FnOnce() -> T) -> Result<T, Box<dyn Any + Send>> {
        if self.inner.running.swap(true, Ordering::Acquire) {
            panic!(
                "CancelScope::run: this scope is already running (entered by a run that \
                 has not returned, on this or another thread); a scope covers one thread's \
                 code: clone it to cancel it from elsewhere, or make a new scope"
            );
        }
        let _running = ClearOnDrop(&self.inner.running);
        let (deadline, shielded) = self.inner.enter_runner(crate::current());
        with_current(|state, bits| {
            state.chain_mut().entered.push(Link {
                scope: self.inner.clone(),
                slot: usize::MAX,
            });
            // Entering a scope only adds to the status: its deadline joins
            // the cache (a shield's replaces it), and if it is cancelled
            // already (before we became a member, so nobody interrupted us)
            // the next cancellation point must look.
            let cached = if shielded {
                deadline
            } else {
                earliest(state.deadline.get(), deadline)
            };
            state.deadline.set(cached);
            if self.inner.cancelled.load(Ordering::Acquire) {
                bits.set();
            }
        });
        let _leave = Leave(&self.inner);
        let result = catch_unwind(AssertUnwindSafe(f));
        if result.is_err() {
            // The unwind ends here (`run` and `shield` resume it anew).
            with_current(|state, _| state.raising.set(false));
        }
        result
    }

    /// Cancels the scope: every cancellation point inside it unwinds from
    /// now on (the scope's `run` then returns `None`). Idempotent; never
    /// blocks; works before, during and after `run`.
    ///
    /// ```
    /// let scope = spool::cancel::CancelScope::new();
    /// scope.cancel();
    /// assert!(scope.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.inner.cancel(
            CancelReason::Requested(None),
            Some(crate::current_thread_id()),
        );
    }

    /// Cancels the scope with a reason, which the [`Cancelled`] payload
    /// carries. The first cancellation's reason is kept.
    ///
    /// ```
    /// use spool::cancel::{CancelReason, CancelScope};
    ///
    /// let scope = CancelScope::new();
    /// scope.cancel_with(CancelReason::requested("shutting down"));
    /// scope.cancel_with(CancelReason::Shutdown); // ignored: already cancelled
    /// let payload = std::panic::catch_unwind(|| {
    ///     scope.run(|| spool::cancel::checkpoint());
    /// });
    /// assert!(payload.is_ok()); // `run` caught its own cancellation
    /// ```
    pub fn cancel_with(&self, reason: CancelReason) {
        self.inner.cancel(reason, Some(crate::current_thread_id()));
    }

    /// Whether the scope is cancelled (by a call or by its deadline).
    ///
    /// ```
    /// use std::time::Duration;
    /// let scope = spool::cancel::CancelScope::new().with_timeout(Duration::ZERO);
    /// assert!(scope.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation(&mut None).is_some()
    }

    /// The scope's deadline, if it has one.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(spool::cancel::CancelScope::new().with_deadline(at).deadline(), Some(at));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }

    /// Moves (or, with `None`, removes) the deadline, also while the scope
    /// runs: its threads wake and go by the new one. A deadline that already
    /// passed cancels the scope at its next cancellation point; removing
    /// one does not undo a cancellation.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    /// use std::time::{Duration, Instant};
    ///
    /// let scope = CancelScope::new().with_timeout(Duration::from_millis(1));
    /// scope.set_deadline(None);
    /// assert_eq!(scope.run(|| { spool::thread::sleep(Duration::from_millis(5)); 1 }), Some(1));
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        let mut data = self.inner.data();
        data.deadline = deadline;
        // Its threads recompute their effective deadline.
        data.interrupt_all();
    }

    /// Names the scope in thread dumps (`spool::debug`): a task group
    /// names its scope after the group.
    ///
    /// ```
    /// let scope = spool::cancel::CancelScope::new().with_name("requests");
    /// assert_eq!(scope.name().as_deref(), Some("requests"));
    /// ```
    pub fn with_name(self, name: impl Into<Arc<str>>) -> CancelScope {
        self.inner.data().label = Some(name.into());
        self
    }

    /// The scope's name, if it was given one.
    ///
    /// ```
    /// let scope = spool::cancel::CancelScope::new().with_name("request 17");
    /// assert_eq!(scope.name().as_deref(), Some("request 17"));
    /// ```
    pub fn name(&self) -> Option<Arc<str>> {
        self.inner.data().label.clone()
    }

    /// This scope's id, as [`Cancelled::scope`] reports it.
    ///
    /// ```
    /// use spool::cancel::CancelScope;
    ///
    /// let scope = CancelScope::new();
    /// assert_eq!(scope.clone().id(), scope.id());
    /// assert_ne!(CancelScope::new().id(), scope.id());
    /// ```
    pub fn id(&self) -> ScopeId {
        self.inner.id
    }

    fn interrupt_members(&self) {
        self.inner.data().interrupt_all();
    }
}

/// Clears a flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Leaves an entered scope when dropped (also while unwinding).
struct Leave<'a>(&'a Arc<ScopeInner>);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let link = with_current(|state, bits| {
            let link = state.chain_mut().entered.pop();
            // Leaving a scope only takes from the status, except for a
            // shield, which may uncover a cancelled outer scope. A scope
            // with a deadline may have set the cached one.
            let shielded = self.0.shield.load(Ordering::Relaxed);
            if shielded || state.deadline.get().is_some() {
                state.deadline.set(walk_deadline(state, bits.root()));
            }
            if shielded {
                bits.set();
            }
            link
        });
        match link {
            Some(link) if Arc::ptr_eq(&link.scope, self.0) => link.scope.leave_runner(),
            // An OS thread whose thread-locals are being destroyed has no
            // chain: the scope was entered into a throwaway one (see
            // `with_current`), and is left the same way.
            None if !has_state() => self.0.leave_runner(),
            // Scopes are entered only through closures, so they are left in
            // order; anything else is a broken invariant of this module.
            _ => crate::fatal("CancelScope: scopes left out of order"),
        }
    }
}

/// Whether the calling thread has a cancellation state of its own: not an
/// OS thread whose thread-locals (`OS_CANCEL`) are destroyed already. A
/// thread-local, once destroyed, stays unavailable, so a scope entered
/// without a state is also left without one.
fn has_state() -> bool {
    scheduler::current_task().is_some() || OS_CANCEL.try_with(|_| ()).is_ok()
}

/// The scopes a thread inherits from the thread that started it: scoped
/// children from the `thread::scope` call, `unblock`'s pool thread from its
/// caller. Captured on the parent with [`inherit`], entered on the child
/// with [`Inherited::run`].
#[derive(Clone, Default)]
pub struct Inherited {
    /// Outermost first.
    scopes: Vec<Arc<ScopeInner>>,
}

impl fmt::Debug for Inherited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inherited")
            .field("scopes", &self.scopes.len())
            .finish()
    }
}

/// The calling thread's effective chain (up to and including its first
/// shield, and its root scope), for a thread it starts to inherit.
pub fn inherit() -> Inherited {
    let task = scheduler::current_task();
    with_current(|state, _| {
        let mut scopes = Vec::new();
        let mut outwards = true;
        let chain = state.chain();
        for link in chain.entered.iter().rev() {
            scopes.push(link.scope.clone());
            if link.scope.shield.load(Ordering::Relaxed) {
                outwards = false;
                break;
            }
        }
        if outwards {
            if let Some(task) = task {
                scopes.push(root_of(task).clone());
            }
            for link in chain.inherited.iter().rev() {
                scopes.push(link.scope.clone());
                if link.scope.shield.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        scopes.reverse();
        Inherited { scopes }
    })
}

impl Inherited {
    /// Runs `f` on the calling thread (a thread that has not entered any
    /// scope of its own) as a member of the inherited scopes.
    pub fn run<T>(self, f: impl FnOnce() -> T) -> T {
        if self.scopes.is_empty() {
            return f();
        }
        let me = crate::current();
        with_current(|state, bits| {
            let mut chain = state.chain_mut();
            let inherited = &mut chain.inherited;
            for scope in self.scopes {
                let slot = scope.add_member(me.clone());
                inherited.push(Link { scope, slot });
            }
            drop(chain);
            chain_changed(state, &bits);
        });
        let _leave = LeaveInherited;
        f()
    }
}

/// Leaves the inherited scopes when dropped.
struct LeaveInherited;

impl Drop for LeaveInherited {
    fn drop(&mut self) {
        let links = with_current(|state, bits| {
            let links = std::mem::take(&mut state.chain_mut().inherited);
            chain_changed(state, &bits);
            links
        });
        for link in links {
            link.scope.remove_member(link.slot);
        }
    }
}

/// A green thread's root scope, made on first use.
fn root_of(task: &crate::task::Task) -> &Arc<ScopeInner> {
    task.cancel_root.get_or_init(|| ScopeInner::new(None, true))
}

/// The root scope slot of a green thread (in its `Task`).
pub(crate) type RootSlot = OnceLock<Arc<ScopeInner>>;

/// Cancels a green thread's root scope (`JoinHandle::cancel`, and a
/// runtime's shutdown), in the name of `by`.
pub(crate) fn cancel_thread(
    task: &crate::task::Task,
    handle: &ThreadHandle,
    reason: CancelReason,
    by: Option<ThreadId>,
) {
    root_of(task).cancel(reason, by);
    // The thread itself is not a member of its own root: interrupt it.
    handle.interrupt();
}

/// The scopes on a green thread's chain, outermost first, for a dump (read
/// by the thread's owner worker between resumes).
pub(crate) fn scope_records(task: &crate::task::Task) -> Vec<crate::trace::ScopeRecord> {
    let chain = task.cancel.chain();
    let record = |scope: &Arc<ScopeInner>| {
        let data = scope.data();
        crate::trace::ScopeRecord {
            id: scope.id,
            label: data.label.clone(),
            deadline: data.deadline,
            cancelled: data.cancel.is_some(),
        }
    };
    // Inherited roots (the spawner's `JoinHandle::cancel` scope) are not
    // part of the structure a dump shows: a task group's body and its
    // children must meet under the group's scope.
    let mut scopes: Vec<_> = chain
        .inherited
        .iter()
        .filter(|l| !l.scope.root)
        .map(|l| record(&l.scope))
        .collect();
    if let Some(root) = task.cancel_root.get() {
        if root.cancelled.load(Ordering::Relaxed) {
            scopes.push(record(root));
        }
    }
    scopes.extend(chain.entered.iter().map(|l| record(&l.scope)));
    scopes
}
