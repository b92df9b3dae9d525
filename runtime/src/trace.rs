//! Introspection: what every green thread is doing, and since when.
//!
//! # What is recorded, and what it costs
//! Each green thread carries a small *trace* (`ThreadTrace`, in its
//! `Task`): where it was spawned and by whom, written once at spawn, and
//! what it last waited for — a [`WaitReason`], the call site of the public
//! blocking call (`#[track_caller]`) and when the wait began — written by
//! the thread itself on the *slow* path of a blocking call, just before it
//! switches out. A blocking call that completes at once records nothing.
//! The record is a few plain stores into cells the thread owns; the time is
//! not read from the clock but from a coarse clock (`coarse_now`) that the
//! workers refresh as they go (at each maintenance pass, before and after
//! they sleep), so a wait's "since" is late by at most a worker's
//! maintenance interval — microseconds while it is busy.
//!
//! # Reading the traces: ask the owners
//! A trace is owner-only, like the rest of a `Task` (see `task.rs`): only
//! the worker a green thread is pinned to may read it, between two resumes.
//! So a dump does not read other workers' threads: it *asks* each worker,
//! through the same inbox flag a wakeup uses (no cost on the scheduling
//! path: the worker looks only when the flag is set), and each worker
//! walks its own registry of started threads (`WorkerCore::threads`) and
//! hands back one [`ThreadRecord`] per thread. The worker answers at its
//! next turn, or at once if it sleeps (the request wakes it). A worker that
//! does not answer in time is running one green thread that has not
//! reached a blocking point for that long — the very thing a dump is often
//! taken to find — and the dump says so instead of hanging. Every worker of
//! every runtime is asked before any answer is awaited, and the patience
//! is one wait for all of them: a busy runtime then costs the others no
//! time to answer, the caller's own included (a green thread's own worker
//! answers once the caller switches out to wait). The caller is woken once,
//! by the last answer of all: woken by another runtime's answer first, it
//! would be runnable, not waiting, when its own worker recorded it.
//!
//! # Who holds a lock
//! A thread waiting for a spool `Mutex` (or for a `RwLock` that a writer
//! holds) waits for the *holder*, and a wait-for cycle through holders is a
//! deadlock, so a dump names the holder. It must name who holds the lock
//! *when the dump looks*: an owner noted when the wait began goes stale as
//! soon as the lock is handed over to another waiter, and would give false
//! cycles or miss true ones.
//!
//! The holder is not recorded in the lock. A dump must never dereference a
//! lock that may have been freed, and all it knows of a lock is the id a
//! waiter noted (the lock's address). Instead each green thread's trace
//! keeps a tiny list of the ids of the locks it holds now (`HeldLocks`,
//! [`HELD_SLOTS`] entries, owner-only cells like the rest of the trace):
//! the thread adds an id itself on every path that acquires the lock
//! (`note_held`: the fast path, after a spin, after a wakeup, after a
//! handover), and removes it on the unlock (`note_released`; guards may
//! drop in any order). A worker answering a dump copies each thread's list
//! into its record, and once every worker has answered the dump builds
//! `id → holder` from all the lists and resolves each waiting thread's
//! [`WaitReason::Mutex`] (and `RwLock*`) owner from it. The dump reads
//! only ids, never a lock: sound whatever became of the lock. An id in a
//! list is a lock that its guard keeps alive (a guard borrows its lock),
//! so two listed ids never belong to different locks at one address.
//!
//! Costs and limits, all in the direction of *unknown*, never *wrong*:
//! * The list is reached through the running task (a thread-local read):
//!   a few loads and one store per lock and per unlock, no atomics. A
//!   plain OS thread records nothing: a lock held by an OS thread (which a
//!   dump does not list) shows without a holder.
//! * A thread holding more than [`HELD_SLOTS`] locks at once does not
//!   record the extra ones: those show without a holder.
//! * A lock handed over to a waiter that has not run since (woken, still
//!   queued) is in nobody's list yet: no holder until it runs.
//! * The workers answer one after another, not at one instant: threads
//!   stuck in a cycle do not move, so every worker sees them the same
//!   whenever it answers and the cycle is exact; threads of different
//!   workers that keep taking and releasing locks may, rarely, be caught
//!   at different moments in positions that look like a cycle. A cycle
//!   seen in two dumps is a deadlock.
//! * A guard that is leaked (`mem::forget`) keeps its id in the list; if
//!   its lock is then freed, a new lock at the same address would show
//!   that thread as its holder. Likewise a guard dropped by another green
//!   thread than the one that locked (guards are not `Send`, but the green
//!   threads of one worker share std's thread-locals, where a guard can be
//!   parked): the locker's list keeps the id until the locker ends.
//!   Besides the workers' different moments (above), these are the only
//!   ways a holder can be wrong; the dump stays sound, as it reads ids
//!   only.
//!
//! # Names in logs
//! `std::thread::current()` on a green thread is its *worker's* std
//! handle, so a logger that prints thread names prints the worker's
//! (`spool-worker-1`). Swapping the worker's name on every resume would
//! cost a system call per switch and would not reach std's handle anyway.
//! Instead, with the `tracing` feature, every green thread gets a
//! `tracing` span, `green_thread{id=… name=…}`, which its worker enters
//! around each resume: every event the thread emits is inside it, so a
//! subscriber that prints span context (tracing-subscriber's `fmt` does by
//! default) names the green thread. Without the feature nothing is
//! compiled in; with it and no subscriber, a disabled span costs a branch
//! per resume. A span the green thread enters itself and holds across a
//! blocking call stays on the worker's span stack while other green
//! threads run (tracing keeps that stack per OS thread): hold such spans
//! only between blocking calls. `log` users name the thread from
//! `spool::thread::current().name()` in their format.

use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cancel::ScopeId;
use crate::scheduler::{lock, Shared};
use crate::{ThreadHandle, ThreadId};

/// The operation of a socket wait.
///
/// ```
/// use spool::debug::{SocketOp, WaitReason};
///
/// let reason = WaitReason::Socket(7, SocketOp::Read);
/// assert_eq!(reason.describe(), "socket fd 7 read");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketOp {
    /// `accept`.
    Accept,
    /// `connect`.
    Connect,
    /// A read or receive.
    Read,
    /// A write or send.
    Write,
}

/// What a blocked thread waits for.
///
/// An object's id (a channel's, a lock's, ...) is the address of its
/// shared state: the same for every thread waiting on that object while it
/// lives, and printed in hex (`mutex #0x55d0c2a4b7e0`).
///
/// ```
/// use spool::debug::WaitReason;
/// use spool::sync::mpmc;
///
/// let (_tx, rx) = mpmc::bounded::<()>(1);
/// let waiter = spool::thread::spawn(move || { let _ = rx.recv(); });
/// let reason = loop {
///     let dump = spool::debug::dump();
///     let t = dump.threads().find(|t| t.id() == waiter.thread().id());
///     if let Some(reason) = t.filter(|t| t.is_waiting()).and_then(|t| t.wait_reason()) {
///         break reason;
///     }
///     spool::thread::sleep(std::time::Duration::from_millis(5));
/// };
/// assert!(matches!(reason, WaitReason::Recv(_)));
/// waiter.cancel();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitReason {
    /// `park` or `park_timeout`.
    Park,
    /// `sleep`, until the instant it ends.
    Sleep,
    /// `join` of a thread.
    Join(ThreadId),
    /// The exit of a `thread::scope` or task group, for its children.
    ScopeExit,
    /// A channel receive (the channel's id).
    Recv(u64),
    /// A channel send (the channel's id).
    Send(u64),
    /// A `select` over this many operations.
    Select(usize),
    /// A `Mutex` (its id), and the thread that holds it when known. A
    /// dump fills in the holder as of the dump (see "Who holds a lock" in
    /// the module's essay); a blocking call notes `None`.
    Mutex(u64, Option<ThreadId>),
    /// A `RwLock` read lock (its id), and the thread that holds it for
    /// writing when known (as for `Mutex`).
    RwLockRead(u64, Option<ThreadId>),
    /// A `RwLock` write lock (its id), and the thread that holds it for
    /// writing when known (as for `Mutex`; readers are not recorded).
    RwLockWrite(u64, Option<ThreadId>),
    /// A `Condvar` (its id).
    Condvar(u64),
    /// A `Barrier` (its id).
    Barrier(u64),
    /// A `Semaphore` (its id).
    Semaphore(u64),
    /// A `WaitGroup` (its id).
    WaitGroup(u64),
    /// An `Event` (its id).
    Event(u64),
    /// A `Once`, `OnceLock` or `LazyLock` being initialised by another
    /// thread (its id).
    Once(u64),
    /// A socket (its file descriptor) and the operation.
    Socket(i32, SocketOp),
    /// A job on the blocking pool (`unblock`).
    Unblock,
    /// A host name resolution.
    Resolve,
    /// A wait of spool's not described more precisely.
    Other(&'static str),
}

impl WaitReason {
    /// A short description, as the dump prints it.
    ///
    /// ```
    /// use spool::debug::WaitReason;
    /// assert_eq!(WaitReason::Sleep.describe(), "sleep");
    /// assert_eq!(WaitReason::Mutex(0x10, None).describe(), "mutex #0x10");
    /// ```
    pub fn describe(&self) -> String {
        match self {
            WaitReason::Park => "park".into(),
            WaitReason::Sleep => "sleep".into(),
            WaitReason::Join(id) => format!("join of thread {}", id.as_u64()),
            WaitReason::ScopeExit => "scope exit (waiting for its threads)".into(),
            WaitReason::Recv(id) => format!("channel receive on channel #{id:#x}"),
            WaitReason::Send(id) => format!("channel send on channel #{id:#x}"),
            WaitReason::Select(n) => format!("select over {n} operations"),
            WaitReason::Mutex(id, Some(owner)) => {
                format!("mutex #{id:#x} held by thread {}", owner.as_u64())
            }
            WaitReason::Mutex(id, None) => format!("mutex #{id:#x}"),
            WaitReason::RwLockRead(id, Some(writer)) => {
                format!(
                    "rwlock #{id:#x} (read) held for writing by thread {}",
                    writer.as_u64()
                )
            }
            WaitReason::RwLockRead(id, None) => format!("rwlock #{id:#x} (read)"),
            WaitReason::RwLockWrite(id, Some(writer)) => {
                format!(
                    "rwlock #{id:#x} (write) held for writing by thread {}",
                    writer.as_u64()
                )
            }
            WaitReason::RwLockWrite(id, None) => format!("rwlock #{id:#x} (write)"),
            WaitReason::Condvar(id) => format!("condvar #{id:#x}"),
            WaitReason::Barrier(id) => format!("barrier #{id:#x}"),
            WaitReason::Semaphore(id) => format!("semaphore #{id:#x}"),
            WaitReason::WaitGroup(id) => format!("wait group #{id:#x}"),
            WaitReason::Event(id) => format!("event #{id:#x}"),
            WaitReason::Once(id) => format!("once #{id:#x}"),
            WaitReason::Socket(fd, op) => {
                let op = match op {
                    SocketOp::Accept => "accept",
                    SocketOp::Connect => "connect",
                    SocketOp::Read => "read",
                    SocketOp::Write => "write",
                };
                format!("socket fd {fd} {op}")
            }
            WaitReason::Unblock => "unblock job".into(),
            WaitReason::Resolve => "name resolution".into(),
            WaitReason::Other(what) => (*what).into(),
        }
    }

    /// The lock this reason waits for and its holder, if it waits for a
    /// lock a dump can name a holder of (a `Mutex`, a `RwLock`).
    ///
    /// ```
    /// use spool::debug::WaitReason;
    /// assert_eq!(WaitReason::Mutex(0x10, None).lock(), Some((0x10, None)));
    /// assert_eq!(WaitReason::Recv(0x20).lock(), None); // not a lock
    /// ```
    pub fn lock(&self) -> Option<(u64, Option<ThreadId>)> {
        match *self {
            WaitReason::Mutex(id, holder)
            | WaitReason::RwLockRead(id, holder)
            | WaitReason::RwLockWrite(id, holder) => Some((id, holder)),
            _ => None,
        }
    }

    /// The same reason with the lock's holder set to `holder` (other
    /// reasons are returned unchanged).
    fn with_holder(self, holder: Option<ThreadId>) -> WaitReason {
        match self {
            WaitReason::Mutex(id, _) => WaitReason::Mutex(id, holder),
            WaitReason::RwLockRead(id, _) => WaitReason::RwLockRead(id, holder),
            WaitReason::RwLockWrite(id, _) => WaitReason::RwLockWrite(id, holder),
            other => other,
        }
    }

    /// The reason's kind, without the object: what the aggregated view
    /// groups by (with the call site).
    ///
    /// ```
    /// use spool::debug::WaitReason;
    /// assert_eq!(WaitReason::Recv(0x20).kind(), "channel receive");
    /// assert_eq!(WaitReason::Mutex(0x10, None).kind(), "mutex");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            WaitReason::Park => "park",
            WaitReason::Sleep => "sleep",
            WaitReason::Join(_) => "join",
            WaitReason::ScopeExit => "scope exit",
            WaitReason::Recv(_) => "channel receive",
            WaitReason::Send(_) => "channel send",
            WaitReason::Select(_) => "select",
            WaitReason::Mutex(..) => "mutex",
            WaitReason::RwLockRead(..) => "rwlock read",
            WaitReason::RwLockWrite(..) => "rwlock write",
            WaitReason::Condvar(_) => "condvar",
            WaitReason::Barrier(_) => "barrier",
            WaitReason::Semaphore(_) => "semaphore",
            WaitReason::WaitGroup(_) => "wait group",
            WaitReason::Event(_) => "event",
            WaitReason::Once(_) => "once",
            WaitReason::Socket(_, SocketOp::Accept) => "socket accept",
            WaitReason::Socket(_, SocketOp::Connect) => "socket connect",
            WaitReason::Socket(_, SocketOp::Read) => "socket read",
            WaitReason::Socket(_, SocketOp::Write) => "socket write",
            WaitReason::Unblock => "unblock job",
            WaitReason::Resolve => "name resolution",
            WaitReason::Other(what) => what,
        }
    }
}

/// A thread's trace (see the module's essay). Owner-only cells.
pub(crate) struct ThreadTrace {
    spawn_site: Option<&'static Location<'static>>,
    parent: Option<ThreadId>,
    wait: Cell<Option<Wait>>,
    held: HeldLocks,
}

/// How many locks a green thread's trace remembers holding at once (see
/// "Who holds a lock"); locks held beyond these show without a holder.
pub const HELD_SLOTS: usize = 4;

/// The ids of the locks a thread holds (see "Who holds a lock"): `0` is a
/// free slot (an id is an address, never 0). Unordered; owner-only.
struct HeldLocks([Cell<u64>; HELD_SLOTS]);

impl HeldLocks {
    const fn new() -> HeldLocks {
        HeldLocks([const { Cell::new(0) }; HELD_SLOTS])
    }

    /// Records `id` in a free slot; with none free, records nothing.
    /// The first slot is tried inline: a thread holding one lock at a
    /// time never goes further.
    #[inline]
    fn add(&self, id: u64) {
        let [first, rest @ ..] = &self.0;
        if first.get() == 0 {
            first.set(id);
        } else {
            Self::replace(rest, 0, id);
        }
    }

    /// Forgets `id` (nothing if it was not recorded: held beyond the
    /// slots). The first slot is tried inline, as in `add`.
    #[inline]
    fn remove(&self, id: u64) {
        let [first, rest @ ..] = &self.0;
        if first.get() == id {
            first.set(0);
        } else {
            Self::replace(rest, id, 0);
        }
    }

    /// Sets the first slot of `slots` that holds `old` to `new`.
    #[cold]
    #[inline(never)]
    fn replace(slots: &[Cell<u64>], old: u64, new: u64) {
        if let Some(slot) = slots.iter().find(|slot| slot.get() == old) {
            slot.set(new);
        }
    }

    fn ids(&self) -> Vec<u64> {
        self.0.iter().map(Cell::get).filter(|&id| id != 0).collect()
    }
}

/// One recorded wait.
#[derive(Clone, Copy)]
struct Wait {
    reason: WaitReason,
    site: Option<&'static Location<'static>>,
    /// Coarse nanoseconds since `epoch()`.
    since: u64,
}

impl ThreadTrace {
    pub(crate) fn new(
        spawn_site: Option<&'static Location<'static>>,
        parent: Option<ThreadId>,
    ) -> ThreadTrace {
        ThreadTrace {
            spawn_site,
            parent,
            wait: Cell::new(None),
            held: HeldLocks::new(),
        }
    }
}

/// The process's reference instant for coarse times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since `epoch()` as last refreshed by a worker.
static COARSE_NOW: AtomicU64 = AtomicU64::new(0);

/// Refreshes the coarse clock (workers call it where they read the clock
/// anyway, or about once per maintenance pass).
pub(crate) fn refresh_coarse_now() -> Instant {
    let now = Instant::now();
    let nanos = now.saturating_duration_since(epoch()).as_nanos() as u64;
    COARSE_NOW.fetch_max(nanos, Ordering::Relaxed);
    now
}

/// The coarse clock's reading.
#[inline]
fn coarse_now() -> u64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

fn to_instant(nanos: u64) -> Instant {
    epoch() + Duration::from_nanos(nanos)
}

/// Records what the calling green thread is about to wait for (a plain OS
/// thread records nothing here). Called by spool's blocking calls on their
/// slow path, just before they wait, with the call site of the public
/// function (`Location::caller()` of a `#[track_caller]` function).
#[inline]
pub fn note_wait(reason: WaitReason, site: &'static Location<'static>) {
    if let Some(task) = crate::scheduler::current_task() {
        task.trace.wait.set(Some(Wait {
            reason,
            site: Some(site),
            since: coarse_now(),
        }));
    }
}

/// Records that the calling green thread now holds the lock `id` (a
/// spool `Mutex`, or a `RwLock` held for writing), so that a dump can name
/// it as the holder (see "Who holds a lock" in the module's essay). Called
/// by the lock on every path that acquires it; [`note_released`] undoes
/// it. A plain OS thread records nothing. A few loads and a store.
///
/// ```
/// use spool_runtime::trace::{note_held, note_released};
/// let lock = 0u32; // stands for a lock's shared state
/// let id = &lock as *const u32 as u64;
/// note_held(id); // just acquired
/// note_released(id); // about to release
/// ```
#[inline]
pub fn note_held(id: u64) {
    if let Some(task) = crate::scheduler::current_task() {
        task.trace.held.add(id);
    }
}

/// Records that the calling green thread no longer holds the lock `id`
/// (see [`note_held`]); called by the lock just before it releases it.
#[inline]
pub fn note_released(id: u64) {
    if let Some(task) = crate::scheduler::current_task() {
        task.trace.held.remove(id);
    }
}

/// Forgets what the calling green thread last waited for, before a wait
/// of spool's own that names no reason (a dump, a shutdown, a console
/// cancel waiting for the workers). Otherwise a dump would show the last
/// recorded wait, long over, and the holder of a mutex it once waited for
/// would make a wait-for edge, and perhaps a false cycle.
pub(crate) fn forget_wait() {
    if let Some(task) = crate::scheduler::current_task() {
        task.trace.wait.set(None);
    }
}

/// Records a wait of the engine's own (park, sleep) by `task`.
#[inline]
pub(crate) fn note_task_wait(
    task: &crate::task::Task,
    reason: WaitReason,
    site: &'static Location<'static>,
) {
    task.trace.wait.set(Some(Wait {
        reason,
        site: Some(site),
        since: coarse_now(),
    }));
}

/// What a green thread was doing when a dump looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadState {
    /// Switched out in a wait.
    Waiting,
    /// Woken (or yielding) and queued to run.
    Runnable,
    /// Spawned, not started yet.
    NotStarted,
}

/// A scope on a thread's chain, as a dump shows it.
#[derive(Clone, Debug)]
pub struct ScopeRecord {
    /// The scope.
    pub id: ScopeId,
    /// Its label (a task group's name), if any.
    pub label: Option<std::sync::Arc<str>>,
    /// Its deadline, if any.
    pub deadline: Option<Instant>,
    /// Whether it is cancelled.
    pub cancelled: bool,
}

/// One green thread, as a dump saw it.
#[derive(Clone, Debug)]
pub struct ThreadRecord {
    /// Its id.
    pub id: ThreadId,
    /// Its name.
    pub name: Option<Box<str>>,
    /// What it was doing.
    pub state: ThreadState,
    /// Its last recorded wait: the reason, the call site, and when it
    /// began. For a waiting thread, what it waits for now; for a waiting
    /// thread that waits for a lock, the lock's holder as of the dump
    /// (see "Who holds a lock").
    pub wait: Option<(WaitReason, Option<&'static Location<'static>>, Instant)>,
    /// The ids of the locks it holds (spool `Mutex`es and `RwLock`s held
    /// for writing), at most [`HELD_SLOTS`].
    pub held: Vec<u64>,
    /// The worker it is pinned to (or queued on).
    pub worker: usize,
    /// Where it was spawned.
    pub spawn_site: Option<&'static Location<'static>>,
    /// The thread that spawned it.
    pub parent: Option<ThreadId>,
    /// Its cancel scopes, outermost first.
    pub scopes: Vec<ScopeRecord>,
    /// Its stack, when the dump asked for stacks.
    pub stack: Option<Arc<Stack>>,
}

impl ThreadRecord {
    /// A record of `task`, read by its owner worker between resumes.
    pub(crate) fn of(task: &crate::task::Task, worker: usize, state: ThreadState) -> Self {
        let wait = task
            .trace
            .wait
            .get()
            .map(|w| (w.reason, w.site, to_instant(w.since)));
        ThreadRecord {
            id: ThreadId(task.id),
            name: task.name().map(Box::from),
            state,
            wait,
            held: task.trace.held.ids(),
            worker,
            spawn_site: task.trace.spawn_site,
            parent: task.trace.parent,
            scopes: crate::cancel::scope_records(task),
            stack: None,
        }
    }
}

/// The stack of a switched-out green thread, captured by resuming it in
/// *trace mode* on its own worker: the worker resumes it with
/// `Resume::Trace`, the value its suspend returns (so a plain switch pays a
/// compare of a register, not a load); the thread, inside its suspend,
/// captures a backtrace of
/// its own stack and switches straight back, its park state untouched (an
/// `unpark` that arrives meanwhile is kept, and the thread runs as usual
/// later). Symbols are resolved only when the stack is printed, on the
/// thread that prints it.
pub struct Stack {
    backtrace: Option<std::backtrace::Backtrace>,
    /// Why there is no backtrace.
    missing: Option<&'static str>,
}

/// Stack a traced thread must have left to capture a backtrace (the
/// unwinder's frames run on the thread's own stack).
const TRACE_STACK_NEEDED: usize = 64 * 1024;

/// Captures the calling green thread's stack (in trace mode).
pub(crate) fn capture_stack(running: &crate::sys::RunningStack) -> Stack {
    let here = &running as *const _ as usize;
    if here.saturating_sub(running.guard_end.get()) < TRACE_STACK_NEEDED {
        return Stack {
            backtrace: None,
            missing: Some("not captured: less than 64 KiB of the thread's stack is left"),
        };
    }
    let captured = std::panic::catch_unwind(std::backtrace::Backtrace::force_capture);
    match captured {
        Ok(backtrace) => Stack {
            backtrace: Some(backtrace),
            missing: None,
        },
        Err(payload) => {
            std::mem::forget(payload);
            Stack {
                backtrace: None,
                missing: Some("not captured: the unwinder failed"),
            }
        }
    }
}

impl Stack {
    /// The frames, one per line, innermost first, from the blocking call's
    /// caller up to the thread's entry (the trace machinery and the
    /// runtime's frames below the thread's closure are cut).
    pub fn frames(&self) -> Vec<String> {
        let Some(backtrace) = &self.backtrace else {
            return self
                .missing
                .map(|m| vec![m.to_string()])
                .unwrap_or_default();
        };
        let text = backtrace.to_string();
        let mut frames: Vec<String> = Vec::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            // "N: symbol" lines start a frame; "at file:line" lines follow.
            let is_frame = trimmed
                .split_once(": ")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
            if is_frame {
                frames.push(
                    trimmed
                        .split_once(": ")
                        .map_or(trimmed, |(_, f)| f)
                        .to_string(),
                );
            } else if let Some(last) = frames.last_mut() {
                last.push_str("\n        ");
                last.push_str(trimmed);
            }
        }
        // Cut the trace machinery (innermost) ...
        let start = frames
            .iter()
            .rposition(|f| f.starts_with("spool_runtime::task::Task::suspend"))
            .map_or(0, |i| i + 1);
        // ... and what runs below the thread's closure (outermost).
        let end = frames
            .iter()
            .position(|f| {
                f.starts_with("spool_runtime::task::start_coroutine")
                    || f.starts_with("spool_runtime::task::Slot<")
                    || f.starts_with("corosensei::")
                    || f.contains("spool::thread::packet::Completion")
            })
            .unwrap_or(frames.len());
        // The catch_unwind and call shims between the cut and the thread's
        // closure are the runtime's too.
        let shim = |f: &str| {
            f.starts_with("std::panicking::")
                || f.starts_with("std::panic::")
                || f.starts_with("__rust_try")
                || f.starts_with("<core::panic::unwind_safe::AssertUnwindSafe")
                || f.starts_with("core::ops::function::FnOnce::call_once")
                || f.starts_with("spool::thread::packet::")
                || f.starts_with("spool::group::builder::")
        };
        let mut end = end;
        while end > start && shim(&frames[end - 1]) {
            end -= 1;
        }
        frames.into_iter().take(end).skip(start).collect()
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("frames", &self.frames().len())
            .finish()
    }
}

/// A dump in progress: what the workers of one runtime hand back.
pub(crate) struct DumpRequest {
    records: Mutex<Vec<ThreadRecord>>,
    /// Never-started threads the answering workers had queued.
    unstarted: AtomicUsize,
    /// Which workers answered.
    answered: Box<[AtomicBool]>,
    /// Workers yet to answer, over every runtime the dump asked (one
    /// counter shared by its requests: the requester is woken once, by
    /// the last answer, so it is still switched out when its own worker
    /// records it).
    pending: Arc<AtomicUsize>,
    /// Who waits for the answers.
    requester: ThreadHandle,
    /// Whether to capture every thread's stack.
    stacks: bool,
}

impl DumpRequest {
    /// Whether the dump wants each thread's stack.
    pub(crate) fn wants_stacks(&self) -> bool {
        self.stacks
    }

    /// Worker side: adds worker `index`'s records, once.
    pub(crate) fn answer(&self, index: usize, records: Vec<ThreadRecord>, unstarted: usize) {
        if self.answered[index].swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.records).extend(records);
        self.unstarted.fetch_add(unstarted, Ordering::Relaxed);
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.requester.wake();
        }
    }
}

/// The green threads of one runtime, as a dump saw them.
#[derive(Debug)]
#[non_exhaustive]
pub struct RuntimeSnapshot {
    /// How many workers the runtime has.
    pub workers: usize,
    /// Its started, unfinished green threads, by worker.
    pub threads: Vec<ThreadRecord>,
    /// Spawned threads not started yet (counted, not listed).
    pub unstarted: usize,
    /// Workers that did not answer in time: each is running one green
    /// thread that has not reached a blocking point since the dump asked
    /// (its threads are not listed).
    pub unanswered: Vec<usize>,
}

/// Every runtime's green threads.
#[derive(Debug)]
#[non_exhaustive]
pub struct Snapshot {
    /// When the dump was taken.
    pub taken: Instant,
    /// One entry per runtime (that has not shut down).
    pub runtimes: Vec<RuntimeSnapshot>,
}

/// Asks every worker of every runtime for its threads and waits up to
/// `patience` for the answers (see the module's essay). Not a
/// cancellation point; the wait is spool's own (a green thread's worker
/// is free meanwhile, and answers too).
pub fn snapshot(patience: Duration) -> Snapshot {
    snapshot_with(patience, false)
}

/// As [`snapshot`], with every listed thread's [`Stack`] (see there for
/// how it is captured).
pub fn snapshot_with_stacks(patience: Duration) -> Snapshot {
    snapshot_with(patience, true)
}

fn snapshot_with(patience: Duration, stacks: bool) -> Snapshot {
    let taken = refresh_coarse_now();
    let deadline = taken + patience;
    // Every runtime is asked before any answer is awaited, and the wait is
    // one for all of them: were they asked and awaited one by one, a
    // runtime busy past the deadline would leave no time for those after
    // it, the caller's own among them (a green thread's own worker answers
    // only once the caller switches out).
    let runtimes = crate::scheduler::all_runtimes();
    // Counted in full before any worker is asked, so no early answer can
    // take it to zero.
    let pending = Arc::new(AtomicUsize::new(
        runtimes.iter().map(|shared| shared.workers.len()).sum(),
    ));
    let requests: Vec<_> = runtimes
        .into_iter()
        .map(|shared| (shared, ask(shared, &pending, stacks)))
        .collect();
    forget_wait();
    while pending.load(Ordering::Acquire) != 0 && Instant::now() < deadline {
        crate::wait_until(deadline);
    }
    let mut runtimes: Vec<RuntimeSnapshot> = requests
        .into_iter()
        .map(|(shared, request)| collect(shared, &request))
        .collect();
    resolve_holders(&mut runtimes);
    Snapshot { taken, runtimes }
}

/// Names, for every waiting thread that waits for a lock, the thread that
/// holds that lock as the workers answered (see "Who holds a lock"). Over
/// every runtime at once: a lock may be shared between runtimes.
fn resolve_holders(runtimes: &mut [RuntimeSnapshot]) {
    use std::collections::HashMap;
    let holders: HashMap<u64, ThreadId> = runtimes
        .iter()
        .flat_map(|rt| &rt.threads)
        .flat_map(|t| t.held.iter().map(move |&id| (id, t.id)))
        .collect();
    for record in runtimes.iter_mut().flat_map(|rt| &mut rt.threads) {
        let waiting = record.state == ThreadState::Waiting;
        if let Some((reason, _, _)) = &mut record.wait {
            if let Some((id, _)) = reason.lock() {
                // A thread not waiting now waits for nobody.
                let holder = holders.get(&id).copied().filter(|_| waiting);
                *reason = reason.with_holder(holder);
            }
        }
    }
}

/// Asks every worker of `shared` for its threads; each answer counts down
/// `pending`.
fn ask(shared: &'static Shared, pending: &Arc<AtomicUsize>, stacks: bool) -> Arc<DumpRequest> {
    let workers = shared.workers.len();
    let request = Arc::new(DumpRequest {
        records: Mutex::new(Vec::new()),
        unstarted: AtomicUsize::new(0),
        answered: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        pending: Arc::clone(pending),
        requester: crate::current(),
        stacks,
    });
    lock(&shared.dumps).push(Arc::clone(&request));
    for index in 0..workers {
        if shared.workers[index].has_exited() {
            request.answer(index, Vec::new(), 0);
        } else {
            shared.ask_for_dump(index);
        }
    }
    request
}

/// What `shared`'s workers answered to `request` so far; those yet to
/// answer are listed as unanswered, and their late answers go nowhere.
fn collect(shared: &'static Shared, request: &Arc<DumpRequest>) -> RuntimeSnapshot {
    lock(&shared.dumps).retain(|r| !Arc::ptr_eq(r, request));
    let unanswered = (0..request.answered.len())
        .filter(|&index| !request.answered[index].swap(true, Ordering::AcqRel))
        .collect();
    let mut threads = std::mem::take(&mut *lock(&request.records));
    threads.sort_by_key(|t| (t.worker, t.id));
    RuntimeSnapshot {
        workers: request.answered.len(),
        threads,
        unstarted: request.unstarted.load(Ordering::Relaxed),
        unanswered,
    }
}

/// The `tracing` span of a new green thread.
#[cfg(feature = "tracing")]
pub(crate) fn green_thread_span(id: std::num::NonZeroU64, name: Option<&str>) -> tracing::Span {
    match name {
        Some(name) => tracing::info_span!(target: "spool", "green_thread", id = id.get(), name),
        None => tracing::info_span!(target: "spool", "green_thread", id = id.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_locks_drop_out_of_order_and_forget_only_what_they_recorded() {
        let held = HeldLocks::new();
        for id in 1..=HELD_SLOTS as u64 + 2 {
            held.add(id * 8);
        }
        // The first `HELD_SLOTS` are recorded, the overflow is not.
        let expected: Vec<u64> = (1..=HELD_SLOTS as u64).map(|id| id * 8).collect();
        assert_eq!(held.ids(), expected);
        // Releasing one held beyond the slots changes nothing.
        held.remove((HELD_SLOTS as u64 + 1) * 8);
        assert_eq!(held.ids(), expected);
        // Out of order; a freed slot is reused.
        held.remove(16);
        held.remove(8);
        held.add(1000);
        let mut ids = held.ids();
        ids.sort_unstable();
        let mut want: Vec<u64> = expected[2..].to_vec();
        want.push(1000);
        assert_eq!(ids, want);
    }

    #[test]
    fn a_dump_names_holders_only_of_waiting_threads() {
        let record = |id: u64, state, wait: Option<WaitReason>, held: Vec<u64>| ThreadRecord {
            id: ThreadId(std::num::NonZeroU64::new(id).unwrap()),
            name: None,
            state,
            wait: wait.map(|w| (w, None, Instant::now())),
            held,
            worker: 0,
            spawn_site: None,
            parent: None,
            scopes: Vec::new(),
            stack: None,
        };
        let id = |n: u64| ThreadId(std::num::NonZeroU64::new(n).unwrap());
        let mut runtimes = vec![RuntimeSnapshot {
            workers: 1,
            threads: vec![
                record(
                    1,
                    ThreadState::Waiting,
                    Some(WaitReason::Mutex(64, None)),
                    vec![128],
                ),
                record(
                    2,
                    ThreadState::Waiting,
                    Some(WaitReason::RwLockRead(128, None)),
                    vec![64],
                ),
                // Woken, not waiting any more: waits for nobody.
                record(
                    3,
                    ThreadState::Runnable,
                    Some(WaitReason::Mutex(64, None)),
                    vec![],
                ),
                record(
                    4,
                    ThreadState::Waiting,
                    Some(WaitReason::Mutex(256, None)),
                    vec![],
                ),
            ],
            unstarted: 0,
            unanswered: Vec::new(),
        }];
        resolve_holders(&mut runtimes);
        let holders: Vec<_> = runtimes[0]
            .threads
            .iter()
            .map(|t| t.wait.unwrap().0.lock().unwrap().1)
            .collect();
        assert_eq!(holders, [Some(id(2)), Some(id(1)), None, None]);
    }
}
