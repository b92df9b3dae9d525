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
//! taken to find — and the dump says so instead of hanging.
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
    /// A `Mutex` (its id), and its owner when known.
    Mutex(u64, Option<ThreadId>),
    /// A `RwLock` read lock (its id).
    RwLockRead(u64),
    /// A `RwLock` write lock (its id).
    RwLockWrite(u64),
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
            WaitReason::RwLockRead(id) => format!("rwlock #{id:#x} (read)"),
            WaitReason::RwLockWrite(id) => format!("rwlock #{id:#x} (write)"),
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

    /// The reason's kind, without the object: what the aggregated view
    /// groups by (with the call site).
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
            WaitReason::RwLockRead(_) => "rwlock read",
            WaitReason::RwLockWrite(_) => "rwlock write",
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
    /// began. For a waiting thread, what it waits for now.
    pub wait: Option<(WaitReason, Option<&'static Location<'static>>, Instant)>,
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
    if here.saturating_sub(running.guard_end) < TRACE_STACK_NEEDED {
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
                f.starts_with("spool_runtime::task::coroutine_running")
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
    /// Workers yet to answer.
    pending: AtomicUsize,
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
    let runtimes = crate::scheduler::all_runtimes()
        .into_iter()
        .map(|shared| snapshot_of(shared, taken + patience, stacks))
        .collect();
    Snapshot { taken, runtimes }
}

fn snapshot_of(shared: &'static Shared, deadline: Instant, stacks: bool) -> RuntimeSnapshot {
    let workers = shared.workers.len();
    let request = Arc::new(DumpRequest {
        records: Mutex::new(Vec::new()),
        unstarted: AtomicUsize::new(0),
        answered: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        pending: AtomicUsize::new(workers),
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
    while request.pending.load(Ordering::Acquire) != 0 && Instant::now() < deadline {
        crate::wait_until(deadline);
    }
    lock(&shared.dumps).retain(|r| !Arc::ptr_eq(r, &request));
    // Late answers go nowhere: mark every worker answered.
    let unanswered = (0..workers)
        .filter(|&index| !request.answered[index].swap(true, Ordering::AcqRel))
        .collect();
    let mut threads = std::mem::take(&mut *lock(&request.records));
    threads.sort_by_key(|t| (t.worker, t.id));
    RuntimeSnapshot {
        workers,
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
