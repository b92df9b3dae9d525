//! One worker: the loop that runs green threads on one OS thread.
//!
//! The protocols (pinning, parking, sleeping, fairness) are described in the
//! essay at the top of `scheduler.rs`; this file is their implementation.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::ptr;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use crossbeam_deque::{Steal, Worker as Deque};

use crate::cancel::CancelReason;
use crate::panic::AbortOnUnwind;
use crate::reactor::Reactor;
use crate::scheduler::{lock, Shared};
use crate::shutdown::{CANCELLING, RUNNING, STOPPED};
use crate::stack::{GuardedStack, StackCache};
use crate::sys;
use crate::task::{Body, GreenYielder, Resume, Suspend, Task, PLACED, UNPINNED};
use crate::timer::Timers;
use crate::{ThreadHandle, ThreadId};

/// Turns between maintenance passes (see "Fairness" in `scheduler.rs`).
const MAINTENANCE_INTERVAL: u8 = 61;

/// How many more live green threads a spawning worker may have than
/// another before new ones are placed there (see "Placement" in
/// `scheduler.rs`).
const PLACEMENT_SLACK: usize = 2;

/// Finished tasks' allocations a worker keeps for reuse.
const RECYCLED_TASKS: usize = 1024;

/// How long a worker out of work keeps looking before it sleeps (see
/// "Worker sleeping" in `scheduler.rs`). Long enough to catch the reply in a
/// ping-pong between workers (a round trip is a few hundred nanoseconds),
/// short enough that an idle runtime costs nothing measurable.
const SPIN_LIMIT: Duration = Duration::from_micros(50);

thread_local! {
    /// The worker running on this OS thread, or null.
    static CURRENT: Cell<*const WorkerCore> = const { Cell::new(ptr::null()) };
}

/// The worker running on this OS thread, if it is a worker thread.
#[inline]
pub(crate) fn current() -> Option<&'static WorkerCore> {
    let core = CURRENT.with(Cell::get);
    // SAFETY: CURRENT is set by `WorkerCore::run` to a core that lives on
    // that function's stack frame and is reset to null before the frame
    // ends; all code that can observe it runs inside that frame on this OS
    // thread (the loop itself or a green thread it resumed). Callers use the
    // reference only within their own call.
    (!core.is_null()).then(|| unsafe { &*core })
}

/// Records the running coroutine's yielder in its task (first thing a green
/// thread does).
pub(crate) fn enter_green_thread(yielder: &GreenYielder) -> &'static Task {
    match crate::scheduler::current_task() {
        Some(task) => {
            task.yielder.set(yielder);
            task
        }
        None => crate::fatal("enter_green_thread: no current task"),
    }
}

/// A worker's own state. Lives on the worker thread's stack; reachable from
/// green threads on the same OS thread through `current()`.
///
/// # Invariant
/// Only the worker's OS thread touches a `WorkerCore`, and no `RefCell`
/// borrow is held across a `resume`, so a green thread may borrow any of
/// them (to spawn, to wake a thread of the same worker).
pub(crate) struct WorkerCore {
    pub(crate) index: usize,
    pub(crate) shared: &'static Shared,
    /// This worker's resume counter (see `watchdog.rs`).
    watch: &'static crate::watchdog::Slot,
    /// The green thread being resumed, or null.
    pub(crate) current: Cell<*const Task>,
    pinned: RefCell<VecDeque<Arc<Task>>>,
    fresh: Deque<Arc<Task>>,
    stacks: RefCell<StackCache>,
    timers: RefCell<Timers>,
    reactor: RefCell<Reactor>,
    /// Scratch vector for draining the inbox without allocating.
    inbox_scratch: RefCell<Vec<Arc<Task>>>,
    /// Allocations of finished green threads, reused by spawns.
    recycled: RefCell<Vec<Arc<Task>>>,
    /// The next id this worker hands out, and the end of its claimed block.
    ids: Cell<(u64, u64)>,
    /// Green threads of this worker switched out while unwinding; see
    /// `crate::panicking`.
    pub(crate) suspended_unwinders: Cell<usize>,
    /// The registry: every started, unfinished green thread pinned here,
    /// each at its `Task::registry_index` (see "Lifetime" in
    /// `scheduler.rs`). Its length is published in `Remote::live`.
    threads: RefCell<Vec<Arc<Task>>>,
    /// The next other worker a spawn compares loads with.
    placement_cursor: Cell<usize>,
    /// The runtime's phase (`Shared::phase`) as this worker last acted on
    /// it (see "Lifetime" in `scheduler.rs`).
    phase: Cell<u8>,
    /// While cancelling: this worker is counted as settled in
    /// `Shared::unsettled` (no started thread left, nothing to run).
    settled: Cell<bool>,
    /// While cancelling: who shut the runtime down, named in the
    /// cancellations.
    closed_by: Cell<Option<ThreadId>>,
}

impl WorkerCore {
    pub(crate) fn new(
        index: usize,
        shared: &'static Shared,
        reactor: Reactor,
        fresh: Deque<Arc<Task>>,
    ) -> WorkerCore {
        WorkerCore {
            index,
            shared,
            watch: &shared.workers[index].watch,
            current: Cell::new(ptr::null()),
            pinned: RefCell::new(VecDeque::with_capacity(64)),
            fresh,
            stacks: RefCell::new(StackCache::new(shared.stack_size)),
            timers: RefCell::new(Timers::default()),
            reactor: RefCell::new(reactor),
            inbox_scratch: RefCell::new(Vec::new()),
            recycled: RefCell::new(Vec::new()),
            suspended_unwinders: Cell::new(0),
            ids: Cell::new((0, 0)),
            threads: RefCell::new(Vec::new()),
            placement_cursor: Cell::new(index),
            phase: Cell::new(RUNNING),
            settled: Cell::new(false),
            closed_by: Cell::new(None),
        }
    }

    /// A fresh thread id from this worker's block (see `task::ID_BLOCK`).
    pub(crate) fn next_thread_id(&self) -> std::num::NonZeroU64 {
        let (mut next, mut end) = self.ids.get();
        if next == end {
            next = crate::task::claim_thread_ids(crate::task::ID_BLOCK);
            end = next + crate::task::ID_BLOCK;
        }
        self.ids.set((next + 1, end));
        std::num::NonZeroU64::new(next).unwrap_or(std::num::NonZeroU64::MIN)
    }

    /// Keeps the allocation of a finished green thread for the next spawn
    /// if `task` is its last reference (a detached thread finishing, or the
    /// last handle of a finished thread being dropped). Spawn and join of a
    /// batch of a thousand threads otherwise pays glibc's slow path for
    /// every task (its per-thread cache holds seven blocks of a size):
    /// about 100 ns of 350.
    ///
    /// Takes the reference by value: keeping it costs no reference-count
    /// operation, and otherwise it is simply dropped.
    pub(crate) fn recycle_or_drop(&self, task: Arc<Task>) {
        // Plain loads, not `Arc::get_mut`'s locked compare-exchange: with
        // the only strong reference in our hands and no weak ones (spool
        // never makes any), nobody can start sharing the task meanwhile.
        if Arc::strong_count(&task) != 1
            || Arc::weak_count(&task) != 0
            || !ptr::eq(task.shared, self.shared)
        {
            return;
        }
        // Acquire, as `Arc`'s own drop does before freeing: the other
        // holders released their references with Release decrements, so
        // everything they did with the task happens before what we do with
        // it now (read it here; overwrite it when a spawn reuses it). The
        // plain loads above alone would not order those accesses.
        fence(Ordering::Acquire);
        // SAFETY: the task is unreachable by anyone else (see above), and
        // the fence orders their last accesses before ours, so reading its
        // owner-only body cell cannot race.
        if unsafe { !matches!(*task.body.get(), Body::Finished) } {
            // Never ran (dropped at shutdown) or still suspended: not ours to
            // reuse; `Task`'s `Drop` decides.
            return;
        }
        let mut recycled = self.recycled.borrow_mut();
        if recycled.len() < RECYCLED_TASKS {
            recycled.push(task);
        }
    }

    /// A finished task's allocation to reuse, if any (see `recycle_or_drop`).
    pub(crate) fn take_recycled_task(&self) -> Option<Arc<Task>> {
        self.recycled.borrow_mut().pop()
    }

    /// Queues a runnable green thread pinned to this worker.
    /// Whether nothing waits to run on this worker: its queues and inbox
    /// are empty (see `alone_on_worker`).
    pub(crate) fn has_nothing_queued(&self) -> bool {
        self.fresh.is_empty()
            && self.pinned.borrow().is_empty()
            && !self.shared.workers[self.index]
                .has_inbox
                .load(Ordering::Relaxed)
    }

    pub(crate) fn push_pinned(&self, task: Arc<Task>) {
        self.pinned.borrow_mut().push_back(task);
    }

    /// Where a green thread spawned on this worker should start: `None`
    /// for here, or another worker with markedly fewer live threads (see
    /// "Placement" in `scheduler.rs`).
    pub(crate) fn placement_target(&self) -> Option<usize> {
        let here = self.threads.borrow().len();
        if here <= PLACEMENT_SLACK {
            // No other worker can have markedly fewer: decided without
            // touching their counters, which their own turns keep writing
            // (a fork-join batch's spawner, alone on its worker, pays
            // nothing here).
            return None;
        }
        let n = self.shared.workers.len();
        let mut other = self.placement_cursor.get() + 1;
        if other % n == self.index {
            other += 1;
        }
        let other = other % n;
        self.placement_cursor.set(other);
        let remote = &self.shared.workers[other];
        let there = remote
            .live
            .load(Ordering::Relaxed)
            .saturating_add(remote.placed.load(Ordering::Relaxed))
            .saturating_add(remote.stealer.len());
        (here > there.saturating_add(PLACEMENT_SLACK) && !remote.has_exited()).then_some(other)
    }

    fn publish_live(&self, live: usize) {
        self.shared.workers[self.index]
            .live
            .store(live, Ordering::Relaxed);
    }

    /// Adds a green thread that first runs here to the registry.
    fn register(&self, task: &Arc<Task>) {
        let mut threads = self.threads.borrow_mut();
        task.registry_index.set(threads.len());
        threads.push(Arc::clone(task));
        self.publish_live(threads.len());
    }

    /// Removes a finished green thread from the registry.
    fn unregister(&self, task: &Task) {
        let mut threads = self.threads.borrow_mut();
        let index = task.registry_index.get();
        if !threads.get(index).is_some_and(|t| ptr::eq(&**t, task)) {
            crate::fatal(
                "WorkerCore::unregister: a finished thread is not where the registry put it",
            );
        }
        let entry = threads.swap_remove(index);
        if let Some(moved) = threads.get(index) {
            moved.registry_index.set(index);
        }
        self.publish_live(threads.len());
        drop(threads);
        // Not the last reference: the caller holds one.
        drop(entry);
    }

    /// Queues a never-run green thread where idle workers may steal it.
    pub(crate) fn push_fresh(&self, task: Arc<Task>) {
        self.fresh.push(task);
    }

    /// A stack from this worker's cache.
    pub(crate) fn take_stack(&self, size: usize) -> io::Result<GuardedStack> {
        self.stacks.borrow_mut().get(size)
    }

    /// Notes that the running green thread's timer went stale (its timed
    /// wait ended early), for lazy cancellation.
    pub(crate) fn note_timer_cancelled(&self) {
        self.timers.borrow_mut().note_cancelled();
    }

    /// The worker loop. Runs until the runtime shuts down.
    pub(crate) fn run(self) {
        sys::ensure_altstack();
        crate::trace::refresh_coarse_now();
        CURRENT.with(|c| c.set(&self));
        let remote = &self.shared.workers[self.index];
        // Watched while it runs green threads; its shutdown work below is
        // no green thread's.
        let watched =
            crate::watchdog::watch(self.watch, &remote.sleeping, self.shared.blocking_threshold);
        loop {
            // One plain load per turn notices the runtime shutting down:
            // cancelling, then stopped, after which no green thread runs
            // again.
            let phase = self.shared.phase.load(Ordering::Acquire);
            if phase != self.phase.get() && self.enter_phase(phase) {
                break;
            }
            // The countdown to maintenance, which is also the blocking
            // watchdog's progress counter (see `watchdog.rs`).
            let task = if self.watch.begin_turn(MAINTENANCE_INTERVAL) {
                self.maintenance();
                // Woken threads go first now and then, so a burst of spawns
                // cannot starve them (see "Fairness").
                let pinned = self.pinned.borrow_mut().pop_front();
                pinned.or_else(|| self.fresh.pop())
            } else {
                if remote.has_inbox.load(Ordering::Relaxed) {
                    self.drain_inbox();
                }
                self.fresh
                    .pop()
                    .or_else(|| self.pinned.borrow_mut().pop_front())
            };
            if let Some(task) = task {
                self.run_task(task);
                continue;
            }
            if self.phase_changed() || self.search() {
                continue;
            }
            if self.phase.get() == CANCELLING
                && !self.settled.get()
                && self.threads.borrow().is_empty()
            {
                self.settled.set(true);
                self.shared.worker_settled();
            }
            self.sleep();
        }
        drop(watched);
        self.shut_down();
        CURRENT.with(|c| c.set(ptr::null()));
    }

    /// Whether the runtime's phase moved on since this worker last acted on
    /// it.
    fn phase_changed(&self) -> bool {
        self.shared.phase.load(Ordering::SeqCst) != self.phase.get()
    }

    /// Acts on a new phase of the runtime's shutdown (see "Lifetime" in
    /// `scheduler.rs`); `true` if the worker must stop. On entering the
    /// cancelling phase, cancels every green thread in the registry; those
    /// that start later are cancelled as they start (`run_task`).
    #[cold]
    fn enter_phase(&self, phase: u8) -> bool {
        if phase == STOPPED {
            return true;
        }
        if phase != CANCELLING {
            crate::fatal("WorkerCore::enter_phase: the runtime went back to running");
        }
        self.phase.set(CANCELLING);
        self.closed_by.set(lock(&self.shared.closing).by);
        // A copy: cancelling may queue threads, and a destructor run by it
        // (a dropped handle) may spawn.
        let threads = self.threads.borrow().clone();
        for task in &threads {
            self.cancel_for_shutdown(task);
        }
        false
    }

    /// Cancels a green thread of this worker's for the runtime's shutdown,
    /// as `ThreadHandle::cancel` does.
    fn cancel_for_shutdown(&self, task: &Arc<Task>) {
        let handle = ThreadHandle::green(Arc::clone(task));
        crate::cancel::cancel_thread(task, &handle, CancelReason::Shutdown, self.closed_by.get());
    }

    fn maintenance(&self) {
        crate::trace::refresh_coarse_now();
        self.drain_inbox();
        self.fire_timers();
        self.poll_io();
        if self.fresh.is_empty() {
            let _ = self.shared.injector.steal_batch(&self.fresh);
        }
    }

    fn drain_inbox(&self) {
        if !self.shared.workers[self.index]
            .has_inbox
            .load(Ordering::Acquire)
        {
            return;
        }
        let mut scratch = self.inbox_scratch.borrow_mut();
        self.shared.drain_inbox(self.index, &mut scratch);
        if !scratch.is_empty() {
            self.pinned.borrow_mut().extend(scratch.drain(..));
        }
        drop(scratch);
        if self.shared.workers[self.index]
            .dump_wanted
            .swap(false, Ordering::Acquire)
        {
            self.answer_dumps();
        }
    }

    /// Hands every pending dump a record of each started, unfinished green
    /// thread of this worker (see `trace.rs`). Between resumes, so every
    /// one of them is switched out, and their traces are ours to read.
    #[cold]
    fn answer_dumps(&self) {
        crate::monitor_hooks::answer_cancels(self.shared, self.index, &self.threads);
        let requests = crate::scheduler::lock(&self.shared.dumps).clone();
        if requests.is_empty() {
            return;
        }
        // Recording a million threads takes a while, and no green thread
        // runs meanwhile: tell the watchdog the worker moves on.
        self.watch.note_progress();
        let stacks = requests.iter().any(|r| r.wants_stacks())
            && self.shared.phase.load(Ordering::Acquire) == RUNNING;
        // A copy: no `RefCell` borrow is held across a (trace) resume.
        let tasks = self.threads.borrow().clone();
        let records: Vec<_> = tasks
            .iter()
            .map(|task| {
                let state = if task.state.is_switched_out() {
                    crate::trace::ThreadState::Waiting
                } else {
                    crate::trace::ThreadState::Runnable
                };
                let mut record = crate::trace::ThreadRecord::of(task, self.index, state);
                if stacks {
                    record.stack = self.trace_task(task).map(Arc::from);
                    // Each capture takes microseconds: keep the watchdog
                    // from taking a long dump for a stuck thread.
                    self.watch.note_progress();
                }
                record
            })
            .collect();
        let unstarted = self.fresh.len();
        for request in requests {
            request.answer(self.index, records.clone(), unstarted);
        }
    }

    fn fire_timers(&self) {
        if self.timers.borrow().is_empty() {
            return;
        }
        let now = Instant::now();
        self.timers.borrow_mut().fire_expired(now, |task, kind| {
            if task.state.transition_from_timed_wait(kind) {
                self.push_pinned(task);
            }
        });
    }

    /// Collects socket readiness without blocking, if this worker has
    /// sockets registered.
    fn poll_io(&self) {
        let remote = &self.shared.workers[self.index];
        if remote.sources.any() {
            self.reactor.borrow_mut().poll(remote, Some(Duration::ZERO));
        }
    }

    /// Looks everywhere for work, spinning for up to `SPIN_LIMIT`; `true`
    /// if some was found.
    fn search(&self) -> bool {
        if self.find_work() || self.phase_changed() {
            return true;
        }
        let spinning = &self.shared.num_spinning;
        if spinning.fetch_add(1, Ordering::SeqCst) >= self.shared.max_spinning {
            spinning.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        let found = self.spin();
        // `sleep` re-checks every source after this (see "Worker sleeping").
        spinning.fetch_sub(1, Ordering::SeqCst);
        found
    }

    /// The spinning part of `search`.
    fn spin(&self) -> bool {
        let start = Instant::now();
        let mut round = 0u32;
        loop {
            if self.find_work() || self.phase_changed() {
                return true;
            }
            if round >= 4 && start.elapsed() >= SPIN_LIMIT {
                return false;
            }
            if round < 4 {
                for _ in 0..(8u32 << round) {
                    std::hint::spin_loop();
                }
            } else {
                // Keep looking, but give the CPU to any other runnable
                // thread (another worker, the program's own OS threads): on
                // a machine with fewer free cores than workers, a pure spin
                // would hold the core the awaited work needs to run on
                // (measured: 111 µs instead of 0.6 µs per cross-worker
                // hand-off with both workers on one CPU).
                std::thread::yield_now();
            }
            round += 1;
        }
    }

    fn find_work(&self) -> bool {
        self.drain_inbox();
        self.fire_timers();
        self.poll_io();
        if !self.pinned.borrow().is_empty() || !self.fresh.is_empty() {
            return true;
        }
        if steal_succeeded(self.shared.injector.steal_batch(&self.fresh)) {
            return true;
        }
        // A runtime shutting down keeps each worker's threads its own, so a
        // worker that has settled stays settled (see "Lifetime").
        if self.phase.get() != RUNNING {
            return false;
        }
        let n = self.shared.workers.len();
        for i in 1..n {
            let victim = &self.shared.workers[(self.index + i) % n].stealer;
            if steal_succeeded(victim.steal_batch(&self.fresh)) {
                return true;
            }
        }
        false
    }

    /// Whether any source has work, without taking it (the re-check after
    /// announcing sleep).
    fn has_visible_work(&self) -> bool {
        let remote = &self.shared.workers[self.index];
        remote.has_inbox.load(Ordering::SeqCst)
            || !self.shared.injector.is_empty()
            || !self.fresh.is_empty()
            || !self.pinned.borrow().is_empty()
            || (self.phase.get() == RUNNING
                && self.shared.workers.iter().any(|w| !w.stealer.is_empty()))
            || self.phase_changed()
    }

    /// Sleeps in `epoll_wait` until woken or the next timer is due (see
    /// "Worker sleeping" in `scheduler.rs`).
    fn sleep(&self) {
        let remote = &self.shared.workers[self.index];
        remote.sleeping.store(true, Ordering::SeqCst);
        let next_timer = self.timers.borrow().next_deadline();
        remote
            .timers_pending
            .store(next_timer.is_some(), Ordering::SeqCst);
        let sleepers = self.shared.num_sleeping.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.has_visible_work() {
            let timeout =
                next_timer.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            // The last worker to fall asleep, with nothing that could wake
            // it by itself: every thread may be stuck for good. Sleep only
            // as long as it takes to confirm (see `deadlock.rs`).
            let suspicion = (timeout.is_none() && sleepers == self.shared.workers.len())
                .then(|| crate::deadlock::suspect(self.shared))
                .flatten();
            match suspicion {
                Some((confirm, quiet)) => {
                    // The whole of `confirm`, unless woken for real (a
                    // wake clears `sleeping`): `epoll_wait` also returns
                    // at once for a stale wake, one whose sender found
                    // this worker still running and whose eventfd count
                    // was never read, and a state that looks quiet for an
                    // instant is not a deadlock (an OS thread already
                    // woken, not yet scheduled, still counts as waiting).
                    let deadline = Instant::now() + confirm;
                    loop {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() || !remote.sleeping.load(Ordering::SeqCst) {
                            break;
                        }
                        self.reactor.borrow_mut().poll(remote, Some(left));
                    }
                    crate::deadlock::confirm(self.shared, quiet);
                }
                None => {
                    self.reactor.borrow_mut().poll(remote, timeout);
                }
            }
        }
        self.shared.sleep_epoch.fetch_add(1, Ordering::SeqCst);
        crate::trace::refresh_coarse_now();
        self.shared.num_sleeping.fetch_sub(1, Ordering::SeqCst);
        remote.sleeping.store(false, Ordering::Relaxed);
    }

    /// Resumes `task` until it switches out, then completes its transition.
    fn run_task(&self, task: Arc<Task>) {
        // Pin on first run.
        let pinned_to = task.worker.load(Ordering::Relaxed);
        if pinned_to != self.index {
            if pinned_to != UNPINNED && pinned_to & PLACED != 0 {
                self.shared.workers[self.index]
                    .placed
                    .fetch_sub(1, Ordering::Relaxed);
            }
            task.worker.store(self.index, Ordering::Relaxed);
            self.register(&task);
            self.start(&task);
            if self.phase.get() == CANCELLING {
                self.start_cancelled(&task);
            }
        }
        self.current.set(Arc::as_ptr(&task));
        sys::set_running(&task.running);
        // SAFETY: we are the owner of `task` (it was in our queue, and a
        // queued task is in exactly one queue), so no one else touches its
        // coroutine; the reference ends before the task can be queued again.
        let body = unsafe { &mut *task.body.get() };
        let result = match body {
            Body::Started(coroutine) => {
                // Last line of defence: green threads contain their panics
                // (see "Containment" in `panic.rs`).
                let guard = AbortOnUnwind::naming(
                    "WorkerCore::run_task: a panic escaped a green thread into its worker",
                    &task,
                );
                #[cfg(feature = "tracing")]
                let _span = task.span.enter();
                let result = coroutine.resume(Resume::Run);
                guard.disarm();
                result
            }
            _ => crate::fatal("WorkerCore::run_task: queued task has no coroutine"),
        };
        sys::set_running(ptr::null());
        self.current.set(ptr::null());
        // One load: did the watchdog find this resume too long?
        if self.watch.has_request() {
            crate::watchdog::report_stall(self.watch, &task);
        }
        match result {
            CoroutineResult::Yield(Suspend::Yield) => self.push_pinned(task),
            CoroutineResult::Yield(Suspend::Wait {
                kind,
                until,
                interruptible,
            }) => {
                if let Some(deadline) = until {
                    self.timers
                        .borrow_mut()
                        .insert(deadline, kind, task.clone());
                }
                if !task.state.transition_to_waiting(kind, interruptible) {
                    self.push_pinned(task);
                }
            }
            CoroutineResult::Return(()) => {
                self.unregister(&task);
                // SAFETY: as above; the coroutine has finished, so nothing
                // runs on its stack any more.
                let finished = unsafe { std::mem::replace(&mut *task.body.get(), Body::Finished) };
                if let Body::Started(coroutine) = finished {
                    self.stacks.borrow_mut().put(coroutine.into_stack());
                }
                self.recycle_or_drop(task);
            }
        }
    }

    /// Builds the coroutine of a green thread about to run for the first
    /// time, on the warmest stack of this worker's cache (see "Starting on
    /// a warm stack" in `scheduler.rs`).
    fn start(&self, task: &Task) {
        // SAFETY: the caller owns `task` (it took it out of a queue) and
        // nothing runs on its stack yet.
        let body = unsafe { &mut *task.body.get() };
        let Body::Unstarted(reserved) = std::mem::replace(body, Body::Finished) else {
            crate::fatal("WorkerCore::start: a never-run thread has no stack");
        };
        let stack = self.stacks.borrow_mut().warmest(reserved);
        let (guard_start, guard_end) = stack.guard_range();
        task.running.guard_start.set(guard_start);
        task.running.guard_end.set(guard_end);
        *body = Body::Started(crate::task::start_coroutine(stack));
    }

    /// Resumes a switched-out green thread of this worker in trace mode:
    /// it captures its stack and switches straight back (see `trace.rs`),
    /// its park state untouched, so a wakeup that arrives meanwhile is
    /// kept and the thread runs as usual later.
    fn trace_task(&self, task: &Arc<Task>) -> Option<Box<crate::trace::Stack>> {
        // SAFETY: we own the task (it is in our registry and not running:
        // we are between resumes), so nobody else touches its coroutine.
        let Body::Started(coroutine) = (unsafe { &mut *task.body.get() }) else {
            return None;
        };
        if !coroutine.started() || coroutine.done() {
            return None;
        }
        self.current.set(Arc::as_ptr(task));
        sys::set_running(&task.running);
        let guard = AbortOnUnwind::naming(
            "WorkerCore::trace_task: a panic escaped a green thread into its worker",
            task,
        );
        let result = coroutine.resume(Resume::Trace);
        guard.disarm();
        sys::set_running(ptr::null());
        self.current.set(ptr::null());
        match result {
            // The traced thread switches back with `Yield` (see
            // `Task::serve_traces`); it is where it was before.
            CoroutineResult::Yield(Suspend::Yield) => task.captured.take(),
            _ => crate::fatal("WorkerCore::trace_task: a traced thread did not come back traced"),
        }
    }

    /// A green thread that first runs while the runtime is cancelling its
    /// threads starts cancelled (see "Lifetime" in `scheduler.rs`).
    #[cold]
    fn start_cancelled(&self, task: &Arc<Task>) {
        if self.settled.get() {
            self.settled.set(false);
            self.shared.worker_unsettled();
        }
        self.cancel_for_shutdown(task);
    }

    /// Settles every green thread this worker can reach when the runtime
    /// shuts down, then closes its waker (see "Lifetime" in
    /// `scheduler.rs`): discards the never-run ones in its queues, then
    /// abandons the started ones in its registry.
    fn shut_down(&self) {
        self.timers.borrow_mut().clear();
        self.drain_inbox();
        let pinned = std::mem::take(&mut *self.pinned.borrow_mut());
        pinned.iter().for_each(|task| task.discard_if_unstarted());
        while let Some(task) = self.fresh.pop() {
            task.discard_if_unstarted();
        }
        self.shared.drain_injector();
        // No green thread runs here any more: every started one is
        // suspended for good.
        let threads = std::mem::take(&mut *self.threads.borrow_mut());
        self.publish_live(0);
        // Read by the closing thread after it joined this worker.
        self.shared
            .leaked
            .fetch_add(threads.len(), Ordering::Relaxed);
        threads.iter().for_each(|task| task.abandon());
        drop(threads);
        self.shared.close_waker(self.index);
    }
}

fn steal_succeeded<T>(steal: Steal<T>) -> bool {
    matches!(steal, Steal::Success(_))
}
