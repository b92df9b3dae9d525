//! What the monitor console (`spool`'s `monitor` module) needs from the
//! engine: a hook run before the global runtime starts, cancelling a green
//! thread by its id, and cheap per-worker figures.
//!
//! # Cancelling by id
//! Only a green thread's owner worker may look into its registry of
//! started threads (see "Reading the traces" in `trace.rs`), so a cancel
//! by id is asked of the workers the way a dump is: the request is queued
//! in `CANCELS`, each worker is poked through the same inbox flag
//! (`Shared::ask_for_dump`), and at its next turn each worker looks for the
//! id among its own threads and, if it has it, cancels its root scope as
//! `JoinHandle::cancel` does. The scheduling path pays nothing: the worker
//! looks only when the flag is set. A worker that does not answer within
//! the patience is busy running one green thread; the request is then
//! closed, so a late answer cancels nothing, and the caller hears which
//! workers did not answer.
//!
//! # Figures
//! [`stats`] reads only counters the engine keeps anyway (each worker's
//! live-thread count, its queue of never-started threads, its socket
//! registrations, whether it sleeps): no new cost on any hot path. The
//! queue of woken threads each worker runs from is owner-only and is not
//! counted; nor are context switches.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cancel::CancelReason;
use crate::scheduler::{lock, Shared};
use crate::task::Task;
use crate::{ThreadHandle, ThreadId};

/// The hook run before the global runtime starts (see
/// [`set_global_start_hook`]).
static GLOBAL_START: OnceLock<fn() -> io::Result<()>> = OnceLock::new();

/// Sets a function that runs once, just before the global runtime starts
/// on first use; an error from it is the global runtime's start error. The
/// first hook set stays; later calls do nothing. `spool` uses it to read
/// `SPOOL_DUMP_SIGNAL` and `SPOOL_MONITOR` for the global runtime.
///
/// ```
/// fn check() -> std::io::Result<()> {
///     Ok(())
/// }
/// spool_runtime::monitor_hooks::set_global_start_hook(check);
/// ```
pub fn set_global_start_hook(hook: fn() -> io::Result<()>) {
    let _ = GLOBAL_START.set(hook);
}

/// Runs the global start hook, if one is set (from `global()`).
pub(crate) fn before_global_start() -> io::Result<()> {
    match GLOBAL_START.get() {
        Some(hook) => hook(),
        None => Ok(()),
    }
}

/// A cancel by id in progress (see the module's essay).
struct CancelRequest {
    /// The runtime it is for (its leaked `Shared`).
    shared: &'static Shared,
    id: ThreadId,
    reason: CancelReason,
    /// The name of the thread cancelled (`Some(None)` for an unnamed one).
    found: Mutex<Option<Option<Box<str>>>>,
    /// Which workers answered.
    answered: Box<[AtomicBool]>,
    /// Workers yet to answer.
    pending: AtomicUsize,
    /// Set when the requester stops waiting: later answers do nothing.
    closed: AtomicBool,
    requester: ThreadHandle,
}

/// Cancel requests waiting for workers' answers.
static CANCELS: Mutex<Vec<Arc<CancelRequest>>> = Mutex::new(Vec::new());

/// What [`cancel_thread_by_id`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The thread was found and its root scope cancelled; its name.
    Cancelled(Option<Box<str>>),
    /// No answering worker had a started, unfinished thread with that id.
    /// The `(runtime, worker)` pairs listed did not answer in time (each is
    /// running one green thread that has not reached a blocking point), so
    /// the thread may be on one of them.
    NotFound(Vec<(usize, usize)>),
}

/// Cancels the started, unfinished green thread with id `id`, wherever it
/// runs, with `reason`, as `JoinHandle::cancel` does; waits up to
/// `patience` for each runtime's workers to look (see the module's essay).
/// The wait is spool's own, not a cancellation point.
pub fn cancel_thread_by_id(id: u64, reason: CancelReason, patience: Duration) -> CancelOutcome {
    let Some(id) = std::num::NonZeroU64::new(id).map(ThreadId) else {
        return CancelOutcome::NotFound(Vec::new());
    };
    let deadline = Instant::now() + patience;
    let mut unanswered = Vec::new();
    for (runtime, shared) in crate::scheduler::all_runtimes().into_iter().enumerate() {
        let workers = shared.workers.len();
        let request = Arc::new(CancelRequest {
            shared,
            id,
            reason: reason.clone(),
            found: Mutex::new(None),
            answered: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            pending: AtomicUsize::new(workers),
            closed: AtomicBool::new(false),
            requester: crate::current(),
        });
        lock(&CANCELS).push(Arc::clone(&request));
        for index in 0..workers {
            if shared.workers[index].has_exited() {
                request.answer(index);
            } else {
                shared.ask_for_dump(index);
            }
        }
        while request.pending.load(Ordering::Acquire) != 0
            && lock(&request.found).is_none()
            && Instant::now() < deadline
        {
            crate::wait_until(deadline);
        }
        // Closed under `found`'s lock, which a worker holds while it
        // cancels: either it cancelled and we see it, or it cancels nothing.
        let found = {
            let mut found = lock(&request.found);
            request.closed.store(true, Ordering::Relaxed);
            found.take()
        };
        lock(&CANCELS).retain(|r| !Arc::ptr_eq(r, &request));
        if let Some(name) = found {
            return CancelOutcome::Cancelled(name);
        }
        unanswered.extend(
            (0..workers)
                .filter(|&index| !request.answered[index].swap(true, Ordering::AcqRel))
                .map(|index| (runtime, index)),
        );
    }
    CancelOutcome::NotFound(unanswered)
}

impl CancelRequest {
    /// Worker side: notes that worker `index` has looked, once.
    fn answer(&self, index: usize) {
        if self.answered[index].swap(true, Ordering::AcqRel) {
            return;
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.requester.wake();
        }
    }
}

/// Worker side, from `WorkerCore::answer_dumps`: looks for the threads of
/// pending cancel requests among `threads` (worker `index`'s registry of
/// started threads) and cancels those it has.
pub(crate) fn answer_cancels(
    shared: &'static Shared,
    index: usize,
    threads: &std::cell::RefCell<Vec<Arc<Task>>>,
) {
    let requests: Vec<_> = {
        let all = lock(&CANCELS);
        if all.is_empty() {
            return;
        }
        all.iter()
            .filter(|r| std::ptr::eq(r.shared, shared))
            .cloned()
            .collect()
    };
    for request in requests {
        // A clone: cancelling may wake and queue threads, and dropping the
        // handle may run code that touches the registry.
        let task = threads
            .borrow()
            .iter()
            .find(|task| task.id == request.id.0)
            .cloned();
        if let Some(task) = task {
            let handle = ThreadHandle::green(Arc::clone(&task));
            let mut found = lock(&request.found);
            if !request.closed.load(Ordering::Relaxed) {
                crate::cancel::cancel_thread(&task, &handle, request.reason.clone(), None);
                *found = Some(task.name().map(Box::from));
                request.requester.wake();
            }
            drop(found);
            drop(handle);
        }
        request.answer(index);
    }
}

/// Figures of one worker (see [`stats`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Started, unfinished green threads pinned to the worker.
    pub live: usize,
    /// Never-started green threads in the worker's stealable queue.
    pub queued: usize,
    /// Never-started green threads placed in its inbox by other workers.
    pub placed: usize,
    /// Sockets registered with its reactor.
    pub sockets: usize,
    /// Whether it sleeps in `epoll_wait` (no runnable thread).
    pub sleeping: bool,
    /// Whether it has exited (its runtime shut down).
    pub exited: bool,
}

/// Figures of one runtime (see [`stats`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// One entry per worker.
    pub workers: Vec<WorkerStats>,
    /// Green threads spawned from outside the runtime, not yet taken by a
    /// worker.
    pub injected: usize,
}

/// Figures of every runtime not stopped, in the order a dump lists them,
/// read from counters the engine keeps anyway (see the module's essay).
/// Each is a racy snapshot: exact only when nothing changes meanwhile.
pub fn stats() -> Vec<RuntimeStats> {
    crate::scheduler::all_runtimes()
        .into_iter()
        .map(|shared| RuntimeStats {
            workers: shared
                .workers
                .iter()
                .map(|remote| WorkerStats {
                    live: remote.live.load(Ordering::Relaxed),
                    queued: remote.stealer.len(),
                    placed: remote.placed.load(Ordering::Relaxed),
                    sockets: remote.sources.count(),
                    sleeping: remote.sleeping.load(Ordering::Relaxed),
                    exited: remote.has_exited(),
                })
                .collect(),
            injected: shared.injector.len(),
        })
        .collect()
}
