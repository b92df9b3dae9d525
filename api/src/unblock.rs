//! Blocking offload: [`unblock`] runs a blocking call on a pool of OS
//! threads while the calling green thread parks.
//!
//! A green thread shares its worker OS thread with many others, so a call
//! that blocks the OS thread — a DNS lookup, a file read, a C library that
//! knows nothing of spool — stalls every green thread on that worker.
//! Calls that have a readiness model (sockets, timers, channels) park
//! instead; for the rest, `unblock` hands the call to a separate pool of
//! plain OS threads and parks the green thread until the call returns, so
//! the worker keeps running other green threads meanwhile.
//!
//! # The pool's policy
//! * **Elastic.** A blocking call occupies an OS thread for as long as it
//!   blocks, and how long that is cannot be known in advance (a lookup
//!   that normally takes a millisecond can take thirty seconds when a name
//!   server is down). A fixed-size pool would let a few slow calls hold up
//!   every quick one queued behind them, so the pool starts a new thread
//!   whenever a job arrives and no idle thread is waiting for it. Go's
//!   runtime does the same for system calls (it hands the processor to a
//!   fresh OS thread when one blocks), as do async-std and the `blocking`
//!   crate for their blocking pools.
//! * **Bounded.** Each OS thread costs a stack (2 MiB of address space,
//!   mostly untouched) and a kernel task, and an unbounded pool turns a
//!   burst of slow calls into thousands of threads. At most 512 pool
//!   threads run at once; `SPOOL_UNBLOCK_THREADS=n` (from 1 to 65536; read
//!   once, when the pool is first used) sets another limit. Every runtime
//!   start checks the variable, so a bad value fails the start (see
//!   `spool_runtime::config`). Beyond the limit, jobs wait in a first-in,
//!   first-out queue for the next thread to finish its job.
//! * **Shrinking.** A thread that has found no work for 10 seconds exits,
//!   so a burst leaves no lasting cost, while a steady trickle of calls
//!   keeps reusing warm threads instead of creating one per call.
//! * **Never stuck.** If the OS refuses a new thread (`EAGAIN`: a process
//!   or system thread limit), the job waits in the queue when at least one
//!   pool thread exists, since that thread takes every queued job before it
//!   may exit. When none exists the caller runs the job itself, on its
//!   worker: nothing is lost or deadlocked, the worker is only blocked for
//!   the length of the call, exactly as if `unblock` had not been used.
//!
//! Pool threads are named `spool-unblock`. From a plain OS thread (not a
//! green thread) `unblock` runs the closure inline: blocking that thread is
//! what the caller asked for, and a round trip through the pool would only
//! add latency.
//!
//! # Cancellation
//! `unblock` is *shielded*: its closure runs to the end, whatever happens
//! to the caller. The completion the pool writes to lives on the caller's
//! stack (and a scoped closure may borrow from it), so the caller must not
//! unwind before the closure is done; its wait is spool's masked `wait`,
//! which a cancellation does not end. A cancellation that arrives meanwhile
//! stays pending, and the finished call's value is returned: the
//! cancellation is raised at the caller's next cancellation point (rule R2
//! in `spool::cancel`). A caller that is cancelled already does not start
//! the call at all (the entry is a cancellation point).
//!
//! So that a long call can still stop early, the pool thread runs the
//! closure *inside the caller's cancel scopes*: it inherits them
//! (`spool_runtime::cancel::inherit` on the caller, `Inherited::run` on
//! the pool thread), as a scoped thread inherits those of its `scope`
//! call. Code in the closure can poll `is_cancelled`, call `checkpoint`,
//! and its spool calls (a socket read on the pool thread) are cancellation
//! points of the caller's scopes and deadline. A cancellation that unwinds
//! the closure is caught on the pool thread like a panic and resumed in
//! the caller as the same `Cancelled` unwind, so the caller's scope ends
//! as if the caller itself had been unwound there (and nothing is
//! printed). A caller that is already unwinding (rule R1) does not lend its
//! scopes: the closure then cannot be cancelled, so no second unwind can
//! come back to it. A job that runs inline because no pool thread could be
//! started runs shielded instead, since the thread it runs on may be
//! another caller's.
//!
//! [`unblock_abandon`] is the unshielded variant, for `'static` closures:
//! its completion is reference-counted rather than on the caller's stack,
//! so a cancelled caller unwinds at once and the closure finishes on its
//! own, its result dropped (see `unblock/abandon.rs`).
//!
//! # The wait handshake
//! The caller's green thread and the pool thread meet in a [`Completion`]
//! on the caller's stack. The pool thread writes the result, then stores
//! `ready = true` with `Release`, then wakes the caller through a handle
//! it owns (it never touches the completion again after the store, since
//! the caller may return and free it at once). The caller loads `ready`
//! with `Acquire` and waits while it is false, in the engine's internal
//! `wait`, which leaves the user's park token alone (an `unpark` sent to
//! the caller meanwhile is kept for its next `park`). No wakeup is lost: a
//! wake that lands between the caller's load and its wait leaves a token
//! that makes the wait return at once, and the loop loads `ready` again.
//! The pool's wake may leave a token behind when the caller saw `ready`
//! before waiting; it only makes the caller's next internal wait check
//! its condition once more.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use spool_runtime::cancel::{self, Cancelled, Check, Inherited};
use spool_runtime::ThreadHandle;

mod abandon;

pub(crate) use abandon::run_abandoning;
pub use abandon::unblock_abandon;

/// Default maximum number of pool threads.
const DEFAULT_MAX_THREADS: usize = 512;
/// How long a pool thread waits for work before it exits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Name of every pool thread.
const THREAD_NAME: &str = "spool-unblock";

/// Runs the blocking function `f` on a pool of OS threads and returns its
/// result, parking the calling green thread meanwhile so its worker keeps
/// running other green threads.
///
/// Use it for calls that block the OS thread and have no spool
/// counterpart: file system calls, DNS lookups, blocking C libraries,
/// long computations that would hog the worker. Called from a plain OS
/// thread (not a green thread), `unblock` just runs `f`.
///
/// The pool is elastic: it starts an OS thread (named `spool-unblock`)
/// whenever a call finds no idle one, up to 512 threads
/// (`SPOOL_UNBLOCK_THREADS=n` sets another limit, from 1 to 65536, read
/// once; a bad value fails the runtime's start), and a thread that stays
/// idle for 10 seconds
/// exits. Beyond the limit, calls queue in order. If the OS refuses to
/// start a thread and the pool has none, `f` runs on the caller's worker
/// instead (blocking it, as a plain blocking call would).
///
/// ```
/// use std::time::Duration;
///
/// let contents = spool::run(|| {
///     // Green threads on the same worker keep running during the call.
///     let ticker = spool::thread::spawn(|| spool::thread::sleep(Duration::from_millis(1)));
///     let text = spool::unblock(|| {
///         std::thread::sleep(Duration::from_millis(20)); // blocks a pool thread only
///         std::fs::read_to_string("/proc/self/status").map(|s| s.len())
///     });
///     ticker.join().unwrap();
///     text
/// });
/// assert!(contents.unwrap() > 0);
/// ```
///
/// # Cancellation
/// `unblock` is a cancellation point only on entry: a caller that is
/// cancelled already unwinds without starting `f`. Once `f` runs, the
/// call is *shielded*: `f` runs to its end (std's blocking calls cannot be
/// interrupted), `unblock` returns its value, and a cancellation that came
/// meanwhile is raised at the caller's next cancellation point.
///
/// To stop early, `f` can cooperate: it runs inside the caller's cancel
/// scopes, so [`is_cancelled`](crate::cancel::is_cancelled) and
/// [`current_deadline`](crate::cancel::current_deadline) answer for the
/// caller, [`checkpoint`](crate::cancel::checkpoint) unwinds `f` and then
/// the caller with the same cancellation, and spool's own blocking calls in
/// `f` (a socket read, a channel receive) are cancellation points of the
/// caller's scopes. (While the caller is already unwinding, `f` runs
/// outside its scopes and cannot be cancelled.) For a closure that cannot
/// cooperate and whose result may be dropped, [`unblock_abandon`] returns
/// at once on cancellation instead.
///
/// ```
/// use spool::cancel::is_cancelled;
/// use std::time::Duration;
///
/// let polled = spool::run(|| {
///     spool::time::timeout(Duration::from_millis(20), || {
///         spool::unblock(|| {
///             // A long job that polls for cancellation between steps.
///             let mut steps = 0;
///             while !is_cancelled() && steps < 10_000 {
///                 std::thread::sleep(Duration::from_millis(1));
///                 steps += 1;
///             }
///             steps
///         })
///     })
/// });
/// // The job stopped early and returned normally, so the timeout returns
/// // its value (the deadline had passed, but nothing was cancelled).
/// assert!(polled.unwrap() < 10_000);
/// ```
///
/// # Panics
/// A panic in `f` is caught on the pool thread (which lives on) and
/// resumed in the caller, as [`JoinHandle::join`](crate::thread::JoinHandle::join)
/// followed by [`resume_unwind`](std::panic::resume_unwind) would.
///
/// ```
/// let caught = spool::run(|| std::panic::catch_unwind(|| spool::unblock(|| panic!("boom"))));
/// assert!(caught.is_err());
/// ```
#[track_caller]
pub fn unblock<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unblock_scoped(f)
}

/// As [`unblock`], but `f` and its result may borrow from the caller.
///
/// This is sound because the caller does not return — neither normally
/// nor by unwinding — before the pool has finished running `f` and has
/// stopped touching the caller's stack (see [`Completion`]). The wait is
/// therefore shielded from cancellation (see "Cancellation" above): a
/// cancelled caller that unwound early would leave the pool thread holding
/// dangling borrows. The guard in `run_on_pool` also keeps waiting should
/// the wait itself ever unwind.
#[track_caller]
pub(crate) fn unblock_scoped<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    // The entry is a cancellation point: a cancelled caller does not start
    // the call (nothing has happened yet, so nothing is lost).
    if let Check::Raise(cancelled) = cancel::check() {
        cancel::raise(cancelled);
    }
    if !spool_runtime::in_green_thread() {
        // Inline, `f` sees the caller's scopes directly.
        return f();
    }
    finish(run_on_pool(f))
}

/// The value of a closure run on the pool, or its unwind resumed in the
/// caller.
fn finish<T>(result: thread::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(payload) => resume(payload),
    }
}

/// Resumes in the caller the unwind of a closure run on the pool: a
/// cancellation as a cancellation (through `cancel::raise`, which records
/// that this thread is unwinding), anything else as it came.
fn resume(payload: Box<dyn Any + Send>) -> ! {
    match payload.downcast::<Cancelled>() {
        Ok(cancelled) => cancel::raise(*cancelled),
        Err(payload) => spool_runtime::cancel::resume(payload),
    }
}

/// The scopes a pool thread runs the caller's closure in: the caller's,
/// unless it is already unwinding (rule R1: a cancellation of the closure
/// would come back to it as a second unwind).
fn scopes_to_lend() -> Inherited {
    if spool_runtime::panicking() {
        Inherited::default()
    } else {
        cancel::inherit()
    }
}

thread_local! {
    /// Whether this OS thread is one of the pool's.
    static ON_POOL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Runs a job's closure, catching its unwind: on a pool thread inside the
/// caller's scopes; anywhere else (a job run inline because no pool thread
/// could start, perhaps on another caller's thread) shielded, so that a
/// cancellation of the thread it happens to run on cannot reach it.
fn run_closure<T>(scopes: Inherited, f: impl FnOnce() -> T) -> thread::Result<T> {
    if ON_POOL_THREAD.with(Cell::get) {
        scopes.run(|| catch_unwind(AssertUnwindSafe(f)))
    } else {
        catch_unwind(AssertUnwindSafe(|| cancel::shield(f)))
    }
}

/// Runs `f` on the global pool and waits, parking, for its outcome.
#[track_caller]
fn run_on_pool<'a, F, T>(f: F) -> thread::Result<T>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let completion = Completion::new();
    let target = CompletionPtr(&completion as *const Completion<T>);
    let caller = spool_runtime::current();
    let scopes = scopes_to_lend();
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let result = run_closure(scopes, f);
        // SAFETY: `target` points at `completion` on the caller's stack,
        // which stays alive until `ready` is set: the caller only returns
        // (or unwinds past `waiter`) after seeing `ready`, and this is the
        // one job that sets it, once.
        unsafe { target.complete(result, caller) };
    });
    // SAFETY: the job borrows for 'a at most (through `f`, `T` and the
    // completion). The job is submitted right below, and from then on
    // `waiter` keeps this frame from returning or unwinding until the job
    // has set `ready`; the job touches nothing borrowed after that
    // (`complete` unparks through its own handle). So every borrow
    // outlives the job's use of it even though the pool sees the job as
    // 'static.
    let job = unsafe { erase_lifetime(job) };
    // Armed just before the hand-off: nothing earlier may leave it waiting
    // for a job that was never submitted. `submit` does not panic.
    let waiter = WaitGuard {
        completion: &completion,
    };
    // Outstanding until it is done: the deadlock check waits for it.
    let _outstanding = spool_runtime::deadlock::external_work();
    pool().submit(job);
    if !completion.is_ready() {
        crate::loom::note_wait(spool_runtime::trace::WaitReason::Unblock);
    }
    waiter.wait();
    // SAFETY: `wait` returned, so `ready` was seen with `Acquire`, which
    // synchronises with the job's `Release` store made after it wrote the
    // result; the job never touches the completion again.
    unsafe { completion.take() }
}

/// Turns a job that borrows for 'a into one the pool may hold.
///
/// # Safety
/// The caller must not let anything the job borrows end before the job has
/// run to completion (here: the caller waits for its completion).
unsafe fn erase_lifetime<'a>(job: Box<dyn FnOnce() + Send + 'a>) -> Job {
    // SAFETY: same fat-pointer layout, only the lifetime differs; the
    // caller guarantees the borrows outlive the job's execution.
    unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Job>(job) }
}

/// Where a job leaves its outcome for the green thread waiting on it.
///
/// # Invariant
/// `result` is written once, by the job, before `ready` is set with
/// `Release`; it is read only after `ready` is seen with `Acquire`. Once
/// `ready` is set the job never touches the completion again, so the
/// caller may drop it as soon as it sees `ready`.
struct Completion<T> {
    ready: AtomicBool,
    result: UnsafeCell<Option<thread::Result<T>>>,
}

impl<T> Completion<T> {
    fn new() -> Completion<T> {
        Completion {
            ready: AtomicBool::new(false),
            result: UnsafeCell::new(None),
        }
    }

    fn is_ready(&self) -> bool {
        // Acquire: pairs with the Release in `complete`, so the result
        // written before it is visible to `take`.
        self.ready.load(Ordering::Acquire)
    }

    /// # Safety
    /// `ready` must have been seen `true` (with `Acquire`) by the caller.
    unsafe fn take(&self) -> thread::Result<T> {
        // SAFETY: the job wrote the result before its Release store of
        // `ready`, which the caller's Acquire load observed; the job no
        // longer touches the completion, so this access is exclusive.
        match unsafe { (*self.result.get()).take() } {
            Some(result) => result,
            None => fatal("unblock: completion ready without a result"),
        }
    }
}

/// A pointer to the waiting caller's [`Completion`], sent to the pool.
struct CompletionPtr<T>(*const Completion<T>);

// SAFETY: the pointer is used by exactly one pool thread, to write a `T`
// (which is `Send`) and set `ready`; the caller keeps the completion alive
// until then (see `run_on_pool`).
unsafe impl<T: Send> Send for CompletionPtr<T> {}

impl<T> CompletionPtr<T> {
    /// Stores `result`, marks the completion ready and wakes `caller`.
    ///
    /// # Safety
    /// The completion must still be alive and not yet completed.
    unsafe fn complete(self, result: thread::Result<T>, caller: ThreadHandle) {
        // SAFETY: the caller guarantees the completion is alive; the
        // waiting thread does not read `result` before `ready` is set.
        let completion = unsafe { &*self.0 };
        // SAFETY: as above: nobody else accesses `result` until `ready`.
        unsafe { *completion.result.get() = Some(result) };
        // Release: publishes the result to the waiter's Acquire load. From
        // here on the completion may be freed at any moment.
        completion.ready.store(true, Ordering::Release);
        // The handle is ours, not the completion's: safe after the store.
        caller.wake();
    }
}

/// Waits for a completion, and keeps waiting if dropped early.
///
/// `run_on_pool` calls [`WaitGuard::wait`]; should that wait ever unwind
/// (nothing in it can: it is spool's masked wait, which a cancellation
/// does not end), dropping the guard waits again, uninterruptibly, so the
/// job's borrows of the caller's frame stay valid until it is done.
struct WaitGuard<'c, T> {
    completion: &'c Completion<T>,
}

impl<T> WaitGuard<'_, T> {
    fn wait(self) {
        park_until_ready(self.completion);
        // Done: nothing left for `drop` to wait for.
        std::mem::forget(self);
    }
}

impl<T> Drop for WaitGuard<'_, T> {
    fn drop(&mut self) {
        park_until_ready(self.completion);
    }
}

/// Parks the calling green thread until the job sets `ready`; see "The
/// wait handshake" in the module docs for why no wakeup is lost. Not a
/// cancellation point (see "Cancellation" there).
fn park_until_ready<T>(completion: &Completion<T>) {
    while !completion.is_ready() {
        spool_runtime::wait();
    }
}

/// Aborts naming a broken invariant.
#[cold]
fn fatal(message: &str) -> ! {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "spool: fatal runtime error: {message}, aborting"
    );
    std::process::abort()
}

/// A unit of work for the pool. It must not panic (`run_on_pool` wraps
/// the user's closure in `catch_unwind`).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The process-wide pool behind [`unblock`].
fn pool() -> &'static Pool {
    static POOL: LazyLock<Pool> = LazyLock::new(|| Pool::new(max_threads(), IDLE_TIMEOUT));
    &POOL
}

/// The pool's OS threads, how many of them are idle, and the jobs queued
/// (for the monitor console's `stats`).
pub(crate) fn pool_figures() -> (usize, usize, usize) {
    let state = pool().lock();
    (state.threads, state.idle, state.queue.len())
}

/// The limit `SPOOL_UNBLOCK_THREADS` asks for, or the default when it is
/// unset. Only green threads use the pool, and the start of their runtime
/// checked the variable, so an error here means the environment changed
/// since: it is said, and the default applies.
fn max_threads() -> usize {
    match spool_runtime::config::unblock_threads() {
        Ok(limit) => limit.unwrap_or(DEFAULT_MAX_THREADS),
        Err(error) => {
            eprintln!("{error}; the unblock pool uses the default limit of {DEFAULT_MAX_THREADS}");
            DEFAULT_MAX_THREADS
        }
    }
}

/// An elastic pool of OS threads; see "The pool's policy" above.
struct Pool {
    state: Mutex<PoolState>,
    /// Signalled when a job is queued for an idle thread.
    work: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
    /// Starts an OS thread; replaced in tests to simulate `EAGAIN`.
    spawn: fn(Box<dyn FnOnce() + Send>) -> std::io::Result<()>,
}

/// # Invariant
/// * `idle` is the number of pool threads inside `Condvar::wait_timeout`;
///   `idle <= threads`.
/// * `threads` counts live pool threads plus spawns in progress; a pool
///   thread exits only after finding `queue` empty under the lock, and
///   decrements `threads` under that same lock. So a job queued while
///   `threads > 0` is always run by some pool thread.
struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

impl Pool {
    fn new(max_threads: usize, idle_timeout: Duration) -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
            }),
            work: Condvar::new(),
            max_threads,
            idle_timeout,
            spawn: spawn_os_thread,
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Jobs never run under the lock and never panic (they catch), so
        // poisoning can only come from a bug here; the state stays
        // consistent in every place a panic could occur, so go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` and makes sure a thread will run it: an idle thread
    /// if there is one per queued job, else a new thread (below the
    /// limit), else whichever busy thread finishes first.
    fn submit(&'static self, job: Job) {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.queue.len() <= state.idle {
            // Enough idle threads for every queued job: wake one. A woken
            // thread stops counting as idle when it leaves the wait, so a
            // second submit before it runs wakes (or spawns) another.
            self.work.notify_one();
            return;
        }
        if state.threads >= self.max_threads {
            // At the limit: the job waits its turn (FIFO).
            return;
        }
        state.threads += 1;
        drop(state);
        if (self.spawn)(Box::new(move || self.run_thread())).is_err() {
            self.spawn_failed();
        }
    }

    /// A spawn announced in `threads` did not happen: take it back, and if
    /// no pool thread is left to run the queue, run it here.
    #[cold]
    fn spawn_failed(&self) {
        let mut state = self.lock();
        state.threads -= 1;
        // While any pool thread lives, it will drain the queue before it
        // exits (see `PoolState`). With none, the queue (our job, and any
        // job queued by another caller whose spawn also failed) runs here,
        // on the caller's worker: it blocks that worker for the length of
        // the calls, but nothing is lost. Re-checked after each job, since
        // another caller may start a thread meanwhile.
        while state.threads == 0 {
            let Some(job) = state.queue.pop_front() else {
                return;
            };
            drop(state);
            run_job(job);
            state = self.lock();
        }
    }

    /// The body of a pool thread: run queued jobs, wait for more, exit
    /// after `idle_timeout` without any.
    fn run_thread(&self) {
        ON_POOL_THREAD.with(|on| on.set(true));
        // An idle pool thread wakes nobody: the deadlock check counts it
        // as asleep (a running job counts as outstanding work).
        let _helper = spool_runtime::deadlock::helper_thread();
        let mut state = self.lock();
        let mut idle_since = Instant::now();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                run_job(job);
                state = self.lock();
                idle_since = Instant::now();
                continue;
            }
            let waited = idle_since.elapsed();
            if waited >= self.idle_timeout {
                // Queue empty and checked under the lock: safe to leave.
                state.threads -= 1;
                return;
            }
            state.idle += 1;
            state = match self.work.wait_timeout(state, self.idle_timeout - waited) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
            state.idle -= 1;
        }
    }
}

/// Runs a job, aborting if it panics: jobs catch their closure's panic
/// (see `run_on_pool`), so a panic here is a bug in this file, and letting
/// it kill a pool thread would leave `threads` counting a dead thread and
/// strand the queue.
fn run_job(job: Job) {
    let _outstanding = spool_runtime::deadlock::external_work();
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        fatal("unblock: a pool job panicked outside its catch_unwind");
    }
}

/// Starts a pool thread running `body`.
fn spawn_os_thread(body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(body)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{mpsc, Arc};

    fn leak(pool: Pool) -> &'static Pool {
        Box::leak(Box::new(pool))
    }

    fn threads(pool: &Pool) -> usize {
        pool.lock().threads
    }

    /// Polls until `condition` holds; panics after 30 s.
    fn wait_until(what: &str, condition: impl Fn() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out: {what}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn at_the_limit_jobs_queue_in_order() {
        let pool = leak(Pool::new(1, Duration::from_secs(10)));
        let (release, gate) = mpsc::channel::<()>();
        let (done, order) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        pool.submit(Box::new(move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
        }));
        started.recv().unwrap();
        for i in 0..5 {
            let done = done.clone();
            pool.submit(Box::new(move || done.send(i).unwrap()));
        }
        assert_eq!(threads(pool), 1, "the limit holds");
        assert_eq!(pool.lock().queue.len(), 5);
        release.send(()).unwrap();
        let seen: Vec<i32> = (0..5).map(|_| order.recv().unwrap()).collect();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn grows_while_threads_are_busy_and_reuses_idle_ones() {
        let pool = leak(Pool::new(8, Duration::from_secs(10)));
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let (gate, started) = (gate.clone(), started.clone());
            pool.submit(Box::new(move || {
                started.fetch_add(1, Ordering::SeqCst);
                gate.lock().unwrap().recv().unwrap();
            }));
        }
        // Three blocked jobs need three threads.
        wait_until("three jobs started", || started.load(Ordering::SeqCst) == 3);
        assert_eq!(threads(pool), 3);
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        wait_until("all idle", || pool.lock().idle == 3);
        // A job for an idle thread starts no new one.
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || done.send(()).unwrap()));
        finished.recv().unwrap();
        assert_eq!(threads(pool), 3);
    }

    #[test]
    fn idle_threads_exit() {
        let pool = leak(Pool::new(4, Duration::from_millis(20)));
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || done.send(()).unwrap()));
        finished.recv().unwrap();
        wait_until("the idle thread exited", || threads(pool) == 0);
        // And the pool starts again afterwards.
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || done.send(7).unwrap()));
        assert_eq!(finished.recv().unwrap(), 7);
    }

    #[test]
    fn scoped_job_borrows_the_callers_frame() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (sum, len) = rt.run(|| {
            let mut numbers = vec![1, 2, 3];
            let sum = unblock_scoped(|| {
                assert_eq!(thread::current().name(), Some(THREAD_NAME));
                numbers.push(4);
                numbers.iter().sum::<i32>()
            });
            (sum, numbers.len())
        });
        assert_eq!((sum, len), (10, 4));
    }

    #[test]
    fn scoped_job_panic_resumes_after_the_job_is_done() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let touched = rt.run(|| {
            let mut touched = false;
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
                unblock_scoped(|| {
                    touched = true;
                    panic!("in the pool");
                })
            }));
            assert_eq!(
                caught.unwrap_err().downcast_ref::<&str>(),
                Some(&"in the pool")
            );
            touched
        });
        assert!(touched);
    }

    fn refuse_spawn(_: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        Err(std::io::ErrorKind::WouldBlock.into()) // what EAGAIN maps to
    }

    /// Starts one thread, then refuses like an OS at its thread limit.
    fn spawn_once_then_refuse(body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        static SPAWNED: AtomicBool = AtomicBool::new(false);
        if SPAWNED.swap(true, Ordering::SeqCst) {
            refuse_spawn(body)
        } else {
            spawn_os_thread(body)
        }
    }

    #[test]
    fn failed_spawn_with_no_thread_runs_inline() {
        let mut pool = Pool::new(4, Duration::from_secs(10));
        pool.spawn = refuse_spawn;
        let pool = leak(pool);
        let ran_on = Arc::new(Mutex::new(None));
        let record = ran_on.clone();
        pool.submit(Box::new(move || {
            *record.lock().unwrap() = Some(thread::current().id());
        }));
        assert_eq!(*ran_on.lock().unwrap(), Some(thread::current().id()));
        assert_eq!(threads(pool), 0);
        assert!(pool.lock().queue.is_empty());
    }

    #[test]
    fn failed_spawn_with_a_live_thread_queues() {
        let mut pool = Pool::new(4, Duration::from_secs(10));
        pool.spawn = spawn_once_then_refuse;
        let pool = leak(pool);
        let (release, gate) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        pool.submit(Box::new(move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
        }));
        started.recv().unwrap();
        // The one thread is busy, so this submit tries to spawn and fails.
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || done.send(thread::current().id()).unwrap()));
        assert_eq!(threads(pool), 1);
        assert_eq!(pool.lock().queue.len(), 1, "queued for the live thread");
        release.send(()).unwrap();
        let ran_on = finished.recv().unwrap();
        assert_ne!(ran_on, thread::current().id(), "ran on the pool thread");
    }
}
