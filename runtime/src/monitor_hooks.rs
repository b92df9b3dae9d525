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
        crate::trace::forget_wait();
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

#[cfg(all(test, loom))]
mod loom_models {
    //! The cancel-by-id handshake (see "Cancelling by id" above): each
    //! worker notes its answer once (`answered`, then `pending`, the last
    //! one waking the requester); the worker that has the thread cancels
    //! it and says so under `found`'s lock, unless the requester has closed
    //! the request; the requester closes under that same lock when it
    //! stops waiting (its patience ran out, or every worker answered). The
    //! requester must never wait forever, and what it reports must agree
    //! with what happened: "cancelled" exactly when the thread was.
    //!
    //! Run with
    //! `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.
    //!
    //! The deliberate mutation, `checking_closed_outside_the_lock_can_cancel_unreported`:
    //! the worker reads `closed` before it takes `found`'s lock; the
    //! requester can close and report "not found" in between, and the
    //! worker then cancels the thread anyway.
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Model {
        found: Mutex<bool>,
        closed: AtomicBool,
        answered: [AtomicBool; 2],
        pending: AtomicUsize,
        /// The requester's wake token.
        token: AtomicBool,
        /// The thread's root scope was cancelled.
        cancelled: AtomicBool,
        workers_done: AtomicUsize,
    }

    fn worker(m: &Model, index: usize, has_thread: bool, check_outside_lock: bool) {
        if has_thread {
            if check_outside_lock {
                let open = !m.closed.load(Ordering::Relaxed);
                let mut found = m.found.lock().unwrap();
                if open {
                    m.cancelled.store(true, Ordering::Relaxed);
                    *found = true;
                    m.token.store(true, Ordering::Release);
                }
            } else {
                let mut found = m.found.lock().unwrap();
                if !m.closed.load(Ordering::Relaxed) {
                    m.cancelled.store(true, Ordering::Relaxed);
                    *found = true;
                    m.token.store(true, Ordering::Release);
                }
            }
        }
        if !m.answered[index].swap(true, Ordering::AcqRel)
            && m.pending.fetch_sub(1, Ordering::AcqRel) == 1
        {
            m.token.store(true, Ordering::Release);
        }
        m.workers_done.fetch_add(1, Ordering::Release);
    }

    /// Waits (unless its patience is out at once), closes, reports.
    fn requester(m: &Model, patient: bool) -> bool {
        if patient {
            while m.pending.load(Ordering::Acquire) != 0 && !*m.found.lock().unwrap() {
                crate::loom::wait_for_token(&m.token, &m.workers_done, 2);
            }
        }
        let found = m.found.lock().unwrap();
        m.closed.store(true, Ordering::Relaxed);
        *found
    }

    fn cancel_by_id(patient: bool, check_outside_lock: bool) {
        loom::model(move || {
            let m = Arc::new(Model {
                found: Mutex::new(false),
                closed: AtomicBool::new(false),
                answered: [AtomicBool::new(false), AtomicBool::new(false)],
                pending: AtomicUsize::new(2),
                token: AtomicBool::new(false),
                cancelled: AtomicBool::new(false),
                workers_done: AtomicUsize::new(0),
            });
            let workers: Vec<_> = (0..2)
                .map(|index| {
                    let m = Arc::clone(&m);
                    thread::spawn(move || worker(&m, index, index == 0, check_outside_lock))
                })
                .collect();
            let reported = requester(&m, patient);
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(
                reported,
                m.cancelled.load(Ordering::Relaxed),
                "the report disagrees with what happened"
            );
        });
    }

    #[test]
    fn a_patient_requester_is_woken_and_reports_the_cancel() {
        cancel_by_id(true, false);
    }

    #[test]
    fn a_requester_out_of_patience_reports_what_happened() {
        cancel_by_id(false, false);
    }

    #[test]
    #[should_panic(expected = "disagrees")]
    fn checking_closed_outside_the_lock_can_cancel_unreported() {
        cancel_by_id(false, true);
    }
}
