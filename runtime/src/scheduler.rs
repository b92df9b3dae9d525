//! The scheduler: green threads, workers, and how they find each other.
//!
//! # Terms
//! * A **green thread** (`Task`) is a closure running on its own guarded
//!   stack as a `corosensei` coroutine. It runs until it *blocks* (park,
//!   sleep, join, yield), when it switches back to its worker.
//! * A **worker** is one OS thread running `Worker::run`: it picks a
//!   runnable green thread, resumes it, and when it switches back completes
//!   whatever transition the green thread asked for. Each worker owns
//!   - `pinned`: a plain `VecDeque` of runnable green threads that have
//!     already run on it (no atomics: only this worker touches it);
//!   - `fresh`: a `crossbeam_deque::Worker` of spawned, never-run green
//!     threads, which other workers may steal from;
//!   - an **inbox** (`Remote::inbox`), where other OS threads put green
//!     threads of this worker that they woke;
//!   - its `Reactor` (a `mio::Poll` plus `mio::Waker`) and its `Timers`.
//! * The **scheduler** (`Shared`) is the set of workers of one runtime plus a
//!   global `Injector` for green threads spawned from outside the runtime.
//!
//! # Pinning: why a started green thread never moves
//! A green thread may hold a `&T` into `std::thread_local!` storage, a
//! `ThreadRng`, an `Rc` stashed in TLS, or simply a TLS address the compiler
//! computed before a context switch. If it resumed on another OS thread it
//! would race with the green threads left behind: undefined behaviour from
//! safe code. So a green thread is pinned to the worker that first runs it
//! (`Task::worker`). Only never-run green threads live in stealable queues
//! (`fresh`, the injector); a started one is only ever queued in its own
//! worker's `pinned` queue or inbox. Stealing therefore spreads the typical
//! load (an accept loop spawning handlers) but never moves a running thread.
//! This is also what lets `pinned` be a plain `VecDeque`: the yield path
//! costs a coroutine switch and two deque operations, no atomics.
//!
//! **What pinning does not give.** Pinning keeps each `std::thread_local!`
//! value on one OS thread; it does not make it per green thread. The green
//! threads of a worker share its std thread-locals, which is sound as long
//! as no std *lazy initialiser* blocks on spool: if one parks, another green
//! thread of the worker finds the key still uninitialised and runs the
//! initialiser too, and std then stores the second value over the first and
//! drops the first — which the first green thread may already be borrowing
//! inside `with`, a use-after-free. The engine can neither prevent that
//! (std's storage has no hook through which a runtime could give each green
//! thread its own copy; swapping the thread pointer on every switch would
//! swap libc's own per-thread state with it) nor detect it (a parking green
//! thread cannot tell that a std initialiser is among its callers). So the
//! rule is documented for users (`spool::thread`, "Thread-local storage"),
//! and `spool::thread_local!` keeps its values in the task itself
//! (`Task::locals`, see `locals.rs`), where each green thread has its own.
//!
//! # Parking: the one blocking primitive
//! Everything that blocks does it by *wait* + *wake* (Go's
//! `gopark`/`goready`), in one of two kinds that share the mechanism but
//! never each other's tokens (see "Two tokens" in `park.rs`): the user's
//! `park`/`unpark`, and spool's internal `wait`/`wake` that its locks,
//! channels, sockets, `join` and `sleep` use, so a user's `unpark` is never
//! consumed by a wait inside spool. The protocol, the same for both kinds,
//! with the bits of `park.rs` (`NOTIFIED`/`PARKED` for `park`,
//! `WOKEN`/`WAITING` for the internal wait):
//!
//! 1. The green thread, having registered itself wherever its waker will
//!    look (a channel's wait list, a join packet, a timer), first tries to
//!    consume its kind's token; if it got one it returns at once: this is
//!    "wake before wait".
//! 2. Otherwise it switches out with `Suspend::Wait`. It is now
//!    *announcing* a wait but is not yet switched out in the state word.
//! 3. Its worker, back on its own stack, sets the kind's switched-out bit
//!    with a compare-exchange that fails if the kind's token is present. If
//!    that succeeds the green thread is waiting, and the worker forgets
//!    it. If the token is there, a wake arrived during the switch; the
//!    worker queues the thread again instead.
//! 4. A waker leaves its kind's token, always with a successful
//!    read-modify-write (even when the token is already there: see
//!    `ParkState::transition_to_notified` for the lost wakeup a plain load
//!    would allow). If the same step cleared the switched-out bit, it — and
//!    only it — queues the thread: onto its worker's `pinned` queue when
//!    called on that worker, otherwise into the worker's inbox followed by
//!    a poke of the worker's waker if the worker sleeps. A token of the
//!    other kind is only left, never wakes.
//! 5. The resumed green thread consumes its kind's token.
//!
//! **Why no wakeup is lost.** A wake happens either before the worker's
//! compare-exchange in step 3 or after it (they are atomic operations on
//! one word). If before, it left the token, so the compare-exchange fails
//! and the thread is requeued. If after, it finds the switched-out bit and
//! queues the thread. **Why no thread runs twice.** Only clearing the
//! switched-out bit queues it, that happens once per wait, and the bit is
//! set only after the coroutine has fully switched out, so a thread is
//! never queued while its stack is in use. Timers (`park_timeout`, timed
//! waits, `sleep`) race for the same bit: the timer clears it with a
//! `fetch_and` and queues on success; a stale entry of an earlier wait is
//! recognised by its generation and ignored. A cancel request will set its
//! flag and wake the internal wait the same way, and every blocking point
//! checks the flag when it resumes.
//!
//! `sleep` is an internal wait that only its timer ends (it loops until
//! its deadline), so an `unpark` during a sleep is kept as a token for the
//! next `park` instead of cutting the sleep short, as with std.
//!
//! # Worker sleeping: why no worker sleeps through work
//! A worker out of work publishes `sleeping = true` and `num_sleeping += 1`
//! (both `SeqCst`), then looks once more at its inbox, the injector and
//! every stealable queue, and only then calls `epoll_wait`. Whoever adds
//! work first makes it visible (a push), then executes a `SeqCst` fence and
//! reads the sleeping flags. This is Dekker's pattern: with sequentially
//! consistent operations on both sides, either the worker's re-check sees
//! the work or the producer sees the worker asleep and pokes its waker.
//! A poke only happens when the flag was set, so a busy worker is never
//! poked (no syscall on the hot path). Spawns wake at most one sleeping
//! worker to come and steal; wakeups of pinned threads poke exactly the
//! owning worker.
//!
//! Before sleeping a worker spins for up to 50 µs, re-checking its
//! sources, because a ping-pong across workers would otherwise pay an
//! `epoll_wait` and a wakeup per message (measured: 1.4 µs per round trip
//! with spinning, 20 µs without). After a few rounds of `pause` the spin
//! calls `sched_yield` between checks, so on a machine with fewer free
//! cores than workers it does not hold the core the awaited work needs
//! (both workers pinned to one CPU: a hand-off took 111 µs with a pure
//! spin, 6 µs with the yield). A spawn wakes a sleeping worker only
//! when no worker is spinning — the spinner will steal the new thread
//! (Go's `nmspinning` rule); without that rule a plain OS thread spawning a
//! million green threads paid an eventfd write per spawn (22 s instead of
//! 9 s). That is safe by the same Dekker argument: a spinner that gives up
//! decrements `num_spinning` and then re-checks every source after
//! announcing its sleep, so a spawn that saw it still spinning is found by
//! that re-check. Limiting spinners to half the workers, as Go does, made
//! the million spawns faster still (5 s) but put every cross-worker
//! ping-pong back on `epoll_wait`; `max_spinning` is kept as the knob. The
//! spin is bounded, so an idle runtime sleeps.

//! # Fairness
//! A worker runs fresh (never-run) threads before woken ones, so a spawned
//! thread runs soon after its spawner blocks, as Go's `runnext` does, and a
//! fork-join batch runs its children to completion before the joiner wakes
//! (the joiner then finds them all finished instead of parking once per
//! child). Every 61st turn (Go's number: prime, so it does not resonate
//! with program periods) the worker instead drains its inbox, fires due
//! timers, pulls from the injector and takes a *woken* thread first, so a
//! burst of spawns delays woken threads by at most 61 turns, and a pair of
//! threads yielding to each other cannot starve timers or wakeups.

//! # Placement: spreading long-lived threads
//! Since a started thread never moves, where a thread starts is where it
//! runs for life. Stealing spreads *bursts* (a fork-join batch: the idle
//! worker steals half of the never-run queue), but not a steady trickle:
//! an accept loop spawns one handler per connection, its worker runs each
//! handler as soon as the loop blocks in `accept` again, and an idle worker
//! woken to steal usually arrives after the handler has started. Measured
//! on an echo server with 100 connections: as often as not every
//! connection ended up on one worker while the other slept, halving
//! throughput.
//!
//! So a spawn in a green thread looks at load first. Each worker counts its
//! *live* threads (started, not finished: running, runnable or parked) and
//! publishes the count; a spawn compares its own worker's live threads
//! with one other worker's (plus the threads already placed there and its
//! never-run queue), taking the other workers in turn. If its own worker
//! has more than `PLACEMENT_SLACK` more, the new thread is *placed* in the
//! other worker's inbox, where it starts and stays; otherwise it goes to
//! the local never-run queue as before. Only long-lived threads build up a
//! live count, so a fork-join batch of short threads keeps its locality
//! (its children finish as they run). The spawner's own never-run queue is
//! not counted: those threads are stealable, so an idle worker takes half
//! of them in one steal, where counting them sent nearly every thread of a
//! batch of a thousand through the other worker's inbox, a lock and a
//! wake each (spawn+join cost 560 ns a thread on two workers, against 400
//! without). And a worker with at most `PLACEMENT_SLACK` live threads
//! decides without reading another worker's counters, which that worker's
//! every start and finish rewrites: the spawn path of a fork-join batch
//! touches no other core's cache line. Like Go's power-of-two-choices
//! placement, this does not make loads equal, it keeps them from drifting
//! apart.
//!
//! # Starting on a warm stack
//! A spawn does not build the thread's coroutine: it sets a stack aside
//! (so that, as with std, a spawn fails when no stack can be had) and keeps
//! the closure in the task itself (`task::Entry`: in the task's own
//! allocation, which is recycled, when it fits in eight words; boxed
//! otherwise). The worker that first runs the thread builds the coroutine
//! there, and on the *warmest* stack of its cache (`StackCache::warmest`):
//! the one the last finished thread ran on, whose top pages are resident
//! and in that core's caches; the stack set aside goes into the cache in
//! its place, untouched. Two costs go away. A spawn no longer writes the
//! closure and the first frame into a stack that another worker then
//! reads, a cache-line transfer per thread; and a batch of a thousand
//! short threads runs on a handful of stacks instead of touching a
//! thousand (peak RSS of a spawn+join loop 8.4 MiB before, 3.8 after; each
//! touched stack costs at least two resident pages). Nothing else changes:
//! the thread never ran, so no frame or address of it is tied to the stack
//! it was given.
//!
//! # Lifetime: what shutdown does to green threads
//! A runtime's `Shared` is leaked on purpose: handles held by green threads
//! and wakers are plain `&'static` references, and a wakeup that arrives
//! after shutdown lands in an inbox nobody reads. The cost is a few KiB per
//! runtime ever built.
//!
//! `Runtime::shutdown(grace)`, and dropping a `Runtime` (with
//! `DEFAULT_SHUTDOWN_GRACE`), move `Shared::phase` through three phases
//! (`shutdown.rs` holds the closing side):
//!
//! 1. **Running.** The normal life.
//! 2. **Cancelling.** Every green thread is cancelled with
//!    `CancelReason::Shutdown`, the way `ThreadHandle::cancel` does it (its
//!    root scope is cancelled and the thread interrupted, see `cancel.rs`),
//!    and the workers keep running so the cancelled threads unwind from
//!    their next cancellation point, running their destructors. The closing
//!    thread waits until they have finished or `grace` is over.
//! 3. **Stopped.** Each worker stops at its next turn (a green thread
//!    running then runs on until it switches out) and, on its own OS
//!    thread, settles what is left (`WorkerCore::shut_down`):
//!    * a green thread that **never ran** is *discarded*: its closure is
//!      dropped (`Task::discard_if_unstarted`), which is how `spool::thread`
//!      learns that its `join` must fail. A panic from the closure's
//!      destructors is reported and contained (`task::Entry`, see
//!      "Containment" in `panic.rs`), and shutdown goes on;
//!    * a green thread that **started** and is still suspended (blocked
//!      where no cancellation reaches: a shield, an `unblock`, a scope
//!      waiting for such a thread; or any thread, with a zero grace) is
//!      *abandoned*: it never runs again and is not unwound, since
//!      unwinding it now would run its destructors in code that may wait
//!      for threads that are gone. Like a goroutine blocked forever it is
//!      leaked: its stack and locals stay allocated (see `Task`'s `Drop`).
//!      The workers count them (`Shared::leaked`) for the report.
//!
//! **Who cancels.** The registry of started threads (below) is owner-only,
//! so the closing thread cannot walk it: it publishes the phase and pokes
//! every worker, and each worker, at its next turn, notices the phase
//! (one plain load per turn) and cancels every thread in its own registry
//! on its own OS thread (`WorkerCore::enter_phase`). Cancelling only touches the thread's root
//! scope and park word, which any thread may, and queues the threads
//! blocked in a cancellation point, which are then run like any woken
//! thread: runnable, parked, sleeping or blocked on I/O, all are reached.
//! A thread that first runs on a worker after the worker noticed the phase
//! (a queued thread, or one spawned by an unwinding destructor) is
//! cancelled as it starts (`WorkerCore::start_cancelled`), before its
//! closure runs: `spool::thread` then drops the closure unrun and `join`
//! returns the `Cancelled` payload; a `thread::scope` in a destructor thus
//! still returns instead of reporting a never-run child as a panic, which
//! would be a panic during an unwind. Spawning during the grace therefore
//! still works; after the stop it fails with an error. There is no race
//! between the sweep and threads starting: both happen on the worker's own
//! OS thread, the sweep covers every thread registered before it, and
//! every later first run checks the worker's own copy of the phase.
//!
//! **When to stop.** The closing thread waits for every worker to
//! *settle*: a worker settles when it has noticed the phase, its registry
//! is empty and it found nothing to run (it is about to sleep), and then
//! decrements `Shared::unsettled`; the last one wakes the closing thread
//! (`Shared::worker_settled`). To keep "settled" meaningful, a runtime
//! that is cancelling moves no thread between workers: spawns do not place
//! threads elsewhere and workers steal no never-run threads from each
//! other, so new work appears only where threads still run. (A spawn that
//! read the phase just before it changed may still place a thread on a
//! settled worker; that worker then counts again, `worker_unsettled`. If
//! the count reached zero meanwhile, the thread is discarded at the stop,
//! or leaked and counted if it had started: never lost.) The closing
//! thread waits with spool's own masked wait (`wait_until`: a green thread
//! of another runtime switches out, a plain OS thread blocks on its
//! `OsWaiter`; the user's park token is never touched), registered under
//! `Shared::closing` before it checks the count, so the last worker's wake
//! cannot be lost (the loom model in `shutdown.rs`). Then it stores the
//! stopped phase, pokes the workers and joins them.
//!
//! **From inside.** A runtime shut down (or dropped) from one of its own
//! green threads cannot wait there: the caller is one of the threads being
//! cancelled, and its worker's registry is not empty while it runs. It
//! publishes the phase and hands the waiting, the stop and the join to a
//! new OS thread (`spool-shutdown`), which on a drop prints the leaks; the
//! caller is cancelled before it returns (not at its next turn, as the
//! other threads are: a cancellation point that need not block, a `join`
//! of a thread that has already unwound, would not switch out) and unwinds
//! at its next cancellation point. (Should that OS
//! thread not start, the runtime stops at once, as with a zero grace.)
//!
//! To find the started ones, each worker keeps a **registry** of its
//! started, unfinished green threads (`WorkerCore::threads`): a plain
//! vector of `Arc<Task>`, owner-only like `pinned`, where a thread is added
//! when it first runs and, knowing its index (`Task::registry_index`), is
//! removed with a `swap_remove` when it finishes. It is the one list of a
//! worker's threads, so it is also where a dump of every green thread, or a
//! shutdown that cancels them, starts; its length is the worker's live
//! count (see "Placement"). Its cost is one uncontended reference-count
//! increment when a thread first runs and one decrement when it finishes.
//!
//! When it stops, the worker walks its registry and runs each thread's
//! **abandon hook** (`set_abandon_hook`), if it set one: a (data,
//! function) pair the thread stored in its own task, pointing into its own
//! stack, with no allocation and no atomics. `spool::thread` sets one while
//! a thread's closure runs; it completes the thread's join packet with an
//! error saying that the runtime shut down, and wakes the joiner. The hook
//! touches the thread's stack from the worker, which cannot race: the
//! thread is suspended for good, and the worker is the OS thread it ran on.
//!
//! **Borrowed data and abandoned threads.** A scoped thread (and the green
//! thread of `spool::Runtime::run`) may borrow from its spawner, who waits
//! for its join packet. If it is abandoned, the hook completes the packet,
//! so its scope returns instead of hanging (it reports the thread as
//! panicked unless it was joined) and the borrowed data may be freed while
//! the abandoned stack still holds references to it. Nothing can use those
//! references any more, which is what makes this sound:
//!
//! 1. the abandoned coroutine is never resumed, unwound or dropped: the
//!    worker stopped running green threads before it runs the hook and
//!    exits after, and `Task`'s `Drop` forgets a started coroutine, whose
//!    stack is therefore never unmapped or reused (corosensei asks a
//!    forgotten coroutine's borrows to stay valid forever only because it
//!    cannot know that the coroutine will never be resumed);
//! 2. the engine keeps no pointer into data a green thread borrows: its
//!    waits (park states, timers, readiness records, wait-list entries)
//!    point at the task or into its stack, and readiness-based I/O never
//!    has the kernel or the reactor write into a user's buffer;
//! 3. the hook itself reads only its slot on the stack and the packet it
//!    points to, which is on the heap and reference-counted;
//! 4. everything the thread did to the borrowed data happened before it
//!    last switched out, on this OS thread, so before the hook; the packet's
//!    Release completion hands all of it to the scope, which acquires it.
//!
//! The borrow thus ends unobserved, as for a value passed to
//! `mem::forget`. (A green thread that never switches out keeps its worker
//! from stopping at all; its join waits, as it should, for it to return.)

use std::cell::Cell;
use std::io;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle as OsJoinHandle;
use std::time::Duration;

use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};
use mio::Waker;

use crate::reactor::{Reactor, Registrations};
use crate::shutdown::{self, Closer, Closing, ShutdownReport, RUNNING, STOPPED};
use crate::stack::{self, GuardedStack};
use crate::sys::{self, RunningStack};
use crate::task::{next_thread_id, Task, PLACED};
use crate::worker::{self, WorkerCore};
use crate::ThreadHandle;

/// Largest worker count accepted.
pub const MAX_WORKERS: usize = 1024;

/// What other threads see of one worker.
pub(crate) struct Remote {
    /// Green threads of this worker woken by other OS threads.
    inbox: Mutex<Vec<Arc<Task>>>,
    /// Set when `inbox` may be non-empty, so the worker can skip the lock.
    pub(crate) has_inbox: AtomicBool,
    /// Set while the worker is (about to be) in `epoll_wait`.
    pub(crate) sleeping: AtomicBool,
    /// The worker's waker; `None` once the worker has exited (it closes the
    /// eventfd on its way out). Locked only to wake a sleeping worker.
    waker: Mutex<Option<Waker>>,
    pub(crate) stealer: Stealer<Arc<Task>>,
    /// The sockets registered with the worker's reactor, for registering
    /// and deregistering from any thread.
    pub(crate) sources: Registrations,
    /// Started, unfinished green threads pinned to the worker; written only
    /// by the worker (see "Placement").
    pub(crate) live: AtomicUsize,
    /// Never-run green threads placed in the worker's inbox by spawns on
    /// other workers and not yet started.
    pub(crate) placed: AtomicUsize,
    /// A dump asks the worker for its threads (see `trace.rs`); looked at
    /// only when `has_inbox` is set.
    pub(crate) dump_wanted: AtomicBool,
    /// Whether the worker had timers pending when it last fell asleep
    /// (for the deadlock check).
    pub(crate) timers_pending: AtomicBool,
    /// The worker's resume counter and the blocking watchdog's requests
    /// (see `watchdog.rs`).
    pub(crate) watch: crate::watchdog::Slot,
}

impl Remote {
    /// Whether the worker has exited (see `io_source.rs`, "Outliving a
    /// runtime").
    pub(crate) fn has_exited(&self) -> bool {
        self.sources.has_exited()
    }
}

/// State shared by all workers of one runtime (and leaked; see "Lifetime").
pub(crate) struct Shared {
    pub(crate) workers: Box<[Remote]>,
    /// Green threads spawned from outside the runtime.
    pub(crate) injector: Injector<Arc<Task>>,
    /// How many workers have `sleeping` set.
    pub(crate) num_sleeping: AtomicUsize,
    /// How many workers are spinning in search of work.
    pub(crate) num_spinning: AtomicUsize,
    /// At most this many workers spin at once (see "Worker sleeping").
    pub(crate) max_spinning: usize,
    /// `RUNNING`, then `CANCELLING` and `STOPPED` as the runtime shuts
    /// down (see "Lifetime"); set only by `shutdown::close`.
    pub(crate) phase: AtomicU8,
    /// While `CANCELLING`: how many workers have not settled (see
    /// `Shared::worker_settled`).
    pub(crate) unsettled: AtomicUsize,
    /// Who shuts the runtime down, and who waits for the workers to settle.
    pub(crate) closing: Mutex<Closing>,
    /// Started green threads the workers abandoned when they stopped.
    pub(crate) leaked: AtomicUsize,
    /// Stack size of green threads spawned without an explicit size.
    pub(crate) stack_size: usize,
    /// How long one resume may last before the watchdog reports it; zero
    /// for never (see `watchdog.rs`).
    pub(crate) blocking_threshold: Duration,
    /// Rotates the worker woken first, so wakeups spread.
    next_wake: AtomicUsize,
    /// Dumps waiting for this runtime's workers to answer (see `trace.rs`).
    pub(crate) dumps: Mutex<Vec<Arc<crate::trace::DumpRequest>>>,
    /// Bumped each time a worker wakes from sleep (see `deadlock.rs`).
    pub(crate) sleep_epoch: AtomicU64,
    /// What to do on a global deadlock.
    pub(crate) deadlock: crate::deadlock::ModeCell,
}

/// Every runtime ever started (their `Shared` is leaked: see "Lifetime"),
/// for dumps.
static RUNTIMES: Mutex<Vec<&'static Shared>> = Mutex::new(Vec::new());

/// The runtimes a dump looks at: those not stopped.
pub(crate) fn all_runtimes() -> Vec<&'static Shared> {
    lock(&RUNTIMES)
        .iter()
        .copied()
        .filter(|shared| shared.phase.load(Ordering::Acquire) != STOPPED)
        .collect()
}

impl Shared {
    fn remote(&self, index: usize) -> &Remote {
        &self.workers[index]
    }

    /// Queues a woken, already-started green thread on its worker. Called by
    /// whoever won the transition out of `PARKED`/`SLEEPING`.
    pub(crate) fn schedule(&'static self, task: Arc<Task>) {
        let index = task.worker.load(Ordering::Relaxed);
        if let Some(core) = worker::current() {
            if ptr::eq(core.shared, self) && core.index == index {
                core.push_pinned(task);
                return;
            }
        }
        let remote = self.remote(index);
        lock(&remote.inbox).push(task);
        remote.has_inbox.store(true, Ordering::Release);
        self.notify_worker(index);
    }

    /// Puts a never-run green thread into worker `index`'s inbox, where it
    /// will start and stay (see "Placement").
    pub(crate) fn place(&self, index: usize, task: Arc<Task>) {
        let remote = self.remote(index);
        task.worker.store(index | PLACED, Ordering::Relaxed);
        remote.placed.fetch_add(1, Ordering::Relaxed);
        lock(&remote.inbox).push(task);
        remote.has_inbox.store(true, Ordering::Release);
        self.notify_worker(index);
    }

    /// Whether every worker sleeps with nothing to run, no timer and no
    /// registered socket (for the deadlock check).
    pub(crate) fn is_quiet(&self) -> bool {
        self.phase.load(Ordering::SeqCst) == RUNNING
            && self.num_sleeping.load(Ordering::SeqCst) == self.workers.len()
            && self.injector.is_empty()
            && self.workers.iter().all(|w| {
                w.sleeping.load(Ordering::SeqCst)
                    && !w.has_inbox.load(Ordering::SeqCst)
                    && !w.timers_pending.load(Ordering::SeqCst)
                    && w.stealer.is_empty()
                    && w.placed.load(Ordering::SeqCst) == 0
                    && !w.sources.any()
            })
    }

    /// The started, unfinished green threads of every worker.
    pub(crate) fn live_threads(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.live.load(Ordering::SeqCst))
            .sum()
    }

    /// Asks worker `index` to answer the pending dumps at its next turn
    /// (through the inbox flag, so the scheduling path pays nothing).
    pub(crate) fn ask_for_dump(&self, index: usize) {
        let remote = self.remote(index);
        remote.dump_wanted.store(true, Ordering::Release);
        remote.has_inbox.store(true, Ordering::Release);
        self.notify_worker(index);
    }

    /// Takes everything in worker `index`'s inbox.
    pub(crate) fn drain_inbox(&self, index: usize, into: &mut Vec<Arc<Task>>) {
        let remote = self.remote(index);
        // Clear the flag before taking the lock: a push after our drain sets
        // it again, so nothing is left unseen.
        remote.has_inbox.store(false, Ordering::Relaxed);
        std::mem::swap(&mut *lock(&remote.inbox), into);
    }

    /// Pokes worker `index` if it sleeps (see "Worker sleeping").
    pub(crate) fn notify_worker(&self, index: usize) {
        fence(Ordering::SeqCst);
        let remote = self.remote(index);
        if remote.sleeping.load(Ordering::Relaxed) && remote.sleeping.swap(false, Ordering::AcqRel)
        {
            wake(remote);
        }
    }

    /// After pushing stealable work: wake one sleeping worker, unless a
    /// spinning worker will find the work anyway (see "Worker sleeping").
    pub(crate) fn notify_one_sleeper(&self) {
        fence(Ordering::SeqCst);
        if self.num_spinning.load(Ordering::Relaxed) > 0
            || self.num_sleeping.load(Ordering::Relaxed) == 0
        {
            return;
        }
        let n = self.workers.len();
        let start = self.next_wake.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let remote = self.remote((start + i) % n);
            if remote.sleeping.load(Ordering::Relaxed)
                && remote.sleeping.swap(false, Ordering::AcqRel)
            {
                wake(remote);
                return;
            }
        }
    }

    /// Empties the injector at shutdown (see `Task::discard_if_unstarted`).
    pub(crate) fn drain_injector(&self) {
        loop {
            match self.injector.steal() {
                Steal::Success(task) => task.discard_if_unstarted(),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
    }

    /// Closes worker `index`'s waker and registrations (the worker is
    /// exiting and polls no more).
    pub(crate) fn close_waker(&self, index: usize) {
        let remote = self.remote(index);
        lock(&remote.waker).take();
        remote.sources.close();
    }

    pub(crate) fn notify_all(&self) {
        for remote in self.workers.iter() {
            remote.sleeping.store(false, Ordering::Relaxed);
            wake(remote);
        }
    }
}

fn wake(remote: &Remote) {
    if let Some(waker) = lock(&remote.waker).as_ref() {
        if let Err(e) = waker.wake() {
            crate::fatal(&format!("Shared::notify: waking a worker failed: {e}"));
        }
    }
}

/// Locks a mutex that no code path can poison (nothing panics while
/// holding it); recovers the guard if it ever were.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Options for one spawn.
#[derive(Debug, Default, Clone)]
pub struct SpawnOptions {
    /// The green thread's name.
    pub name: Option<String>,
    /// Its stack size in bytes (rounded up to whole pages); `None` for the
    /// runtime's default.
    pub stack_size: Option<usize>,
    /// Where it is spawned (the call site of the public spawn function),
    /// for dumps.
    pub site: Option<&'static std::panic::Location<'static>>,
}

/// A running set of worker threads executing green threads.
///
/// Dropping a `Runtime` shuts it down as [`Runtime::shutdown`] does with a
/// grace of [`DEFAULT_SHUTDOWN_GRACE`](crate::DEFAULT_SHUTDOWN_GRACE): its
/// green threads are cancelled and given the grace to unwind; then the
/// workers stop, green threads that never ran are dropped unrun, and
/// started ones still suspended are abandoned: leaked, never run again,
/// after their abandon hooks ran (see "Lifetime" in this file). If any
/// were leaked, the drop says how many in one line on stderr. The global
/// runtime (`global()`) is never dropped.
pub struct Runtime {
    shared: &'static Shared,
    threads: Mutex<Vec<OsJoinHandle<()>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers())
            .field("stack_size", &self.shared.stack_size)
            .finish()
    }
}

/// Configuration for a [`Runtime`].
#[derive(Debug, Default, Clone)]
pub struct RuntimeConfig {
    /// Number of worker OS threads; `None` for `SPOOL_WORKERS` or, if that
    /// is unset, the available parallelism.
    pub workers: Option<usize>,
    /// Default stack size of green threads in bytes; `None` for
    /// `SPOOL_STACK_SIZE`, or else `RUST_MIN_STACK`, or else
    /// [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE).
    pub stack_size: Option<usize>,
    /// What to do on a global deadlock; `None` for `SPOOL_DEADLOCK` or,
    /// if that is unset, a report (see `deadlock.rs`).
    pub deadlock: Option<crate::deadlock::DeadlockMode>,
    /// How long a green thread may run without reaching a blocking point
    /// before the watchdog reports it on stderr (once per spawn site);
    /// zero turns the watchdog off. `None` for `SPOOL_BLOCKING_MS` (in
    /// milliseconds) or, if that is unset,
    /// [`DEFAULT_BLOCKING_THRESHOLD`](crate::DEFAULT_BLOCKING_THRESHOLD).
    pub blocking_threshold: Option<Duration>,
}

impl Runtime {
    /// Starts a runtime.
    ///
    /// Every setting `config` leaves unset is read from its environment
    /// variable (see [`config`](crate::config)); a bad value of any of
    /// them, or of a process-wide one (`SPOOL_STACK_GUARD`,
    /// `SPOOL_UNBLOCK_THREADS`), fails the start with `InvalidInput`,
    /// naming every bad variable.
    pub fn new(config: RuntimeConfig) -> io::Result<Runtime> {
        let crate::config::Settled {
            workers,
            stack_size,
            deadlock,
            blocking_threshold,
        } = config.settle()?;
        sys::install_overflow_handler();
        crate::panic::install_hook();

        let mut remotes = Vec::with_capacity(workers);
        let mut parts = Vec::with_capacity(workers);
        for index in 0..workers {
            let (reactor, waker, sources) = Reactor::new()?;
            let fresh = Deque::new_fifo();
            remotes.push(Remote {
                inbox: Mutex::new(Vec::new()),
                has_inbox: AtomicBool::new(false),
                sleeping: AtomicBool::new(false),
                waker: Mutex::new(Some(waker)),
                stealer: fresh.stealer(),
                sources,
                live: AtomicUsize::new(0),
                placed: AtomicUsize::new(0),
                dump_wanted: AtomicBool::new(false),
                timers_pending: AtomicBool::new(false),
                watch: crate::watchdog::Slot::new(index),
            });
            parts.push((reactor, fresh));
        }
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            workers: remotes.into_boxed_slice(),
            injector: Injector::new(),
            num_sleeping: AtomicUsize::new(0),
            num_spinning: AtomicUsize::new(0),
            max_spinning: workers,
            phase: AtomicU8::new(RUNNING),
            unsettled: AtomicUsize::new(0),
            closing: Mutex::new(Closing::default()),
            leaked: AtomicUsize::new(0),
            stack_size,
            blocking_threshold,
            next_wake: AtomicUsize::new(0),
            dumps: Mutex::new(Vec::new()),
            sleep_epoch: AtomicU64::new(0),
            deadlock: crate::deadlock::ModeCell::new(deadlock),
        }));
        lock(&RUNTIMES).push(shared);
        crate::trace::refresh_coarse_now();
        let runtime = Runtime {
            shared,
            threads: Mutex::new(Vec::with_capacity(workers)),
        };
        for (index, (reactor, fresh)) in parts.into_iter().enumerate() {
            let thread = std::thread::Builder::new()
                .name(format!("spool-worker-{index}"))
                .spawn(move || WorkerCore::new(index, shared, reactor, fresh).run())
                .map_err(|e| {
                    crate::Described::wrap(e, format!("spool: cannot start worker thread {index}"))
                })?;
            lock(&runtime.threads).push(thread);
        }
        Ok(runtime)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Default stack size of this runtime's green threads, in bytes.
    pub fn stack_size(&self) -> usize {
        self.shared.stack_size
    }

    /// Spawns a green thread running `f` on this runtime.
    pub fn spawn<F>(&self, options: SpawnOptions, f: F) -> io::Result<ThreadHandle>
    where
        F: FnOnce() + Send + 'static,
    {
        // SAFETY: `f` is 'static, so it borrows nothing that could end.
        unsafe { spawn_on(self.shared, options, f) }
    }

    /// Spawns a green thread whose closure may borrow from the caller.
    ///
    /// # Safety
    /// Everything `f` borrows must stay valid while `f` may still run or be
    /// dropped: until `f` has returned or been dropped unrun, or, if the
    /// runtime shuts down while the green thread is suspended, until its
    /// worker has stopped running green threads, which it has done by the
    /// time the thread's abandon hook runs (see "Lifetime" in the engine's
    /// `scheduler.rs`: an abandoned thread never runs, unwinds or frees its
    /// stack again).
    pub unsafe fn spawn_unchecked<'a, F>(
        &self,
        options: SpawnOptions,
        f: F,
    ) -> io::Result<ThreadHandle>
    where
        F: FnOnce() + Send + 'a,
    {
        // SAFETY: forwarded from this function's contract.
        unsafe { spawn_on(self.shared, options, f) }
    }

    /// Whether the calling code runs on one of this runtime's workers.
    pub fn is_current(&self) -> bool {
        worker::current().is_some_and(|core| ptr::eq(core.shared, self.shared))
    }
}

impl Runtime {
    /// Shuts the runtime down: cancels every green thread with
    /// [`CancelReason::Shutdown`](crate::cancel::CancelReason::Shutdown),
    /// keeps the workers running for up to `grace` so the cancelled
    /// threads unwind and run their destructors, then stops the workers
    /// and leaks the threads still blocked (see "Lifetime" in the engine's
    /// `scheduler.rs`). Returns what it did.
    ///
    /// A thread cancelled this way unwinds from its next cancellation point
    /// (every blocking call of spool's: `park`, `sleep`, channels, locks,
    /// sockets, `join`), and its `join` returns the
    /// [`Cancelled`](crate::cancel::Cancelled) payload; a thread that a
    /// worker starts during the grace (one that was queued, or spawned by
    /// an unwinding thread) starts cancelled, so `spool::thread`'s threads
    /// drop their closure unrun. Threads that never ran when the workers
    /// stop are dropped unrun. What no cancellation reaches — a shield, an
    /// `unblock` whose closure does not return, a scope or `run` waiting
    /// for such a thread — is leaked after the grace: never run again,
    /// its destructors never run, and its `join` returns an error saying
    /// the runtime shut down.
    ///
    /// The wait is spool's own, not a cancellation point, and leaves the
    /// caller's park token alone: a green thread of another runtime
    /// switches out meanwhile. Called from one of this runtime's own green
    /// threads, the shutdown cannot wait (the caller is one of the threads
    /// it cancels): it goes on in the background, on an OS thread of its
    /// own, and the report says so ([`ShutdownReport::is_in_background`]).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder().workers(2).build().unwrap();
    /// let sleeper = rt.spawn(|| spool::thread::sleep(Duration::from_secs(3600)));
    /// let report = rt.shutdown(Duration::from_secs(5));
    /// assert_eq!(report.leaked(), 0);
    /// let payload = sleeper.join().unwrap_err();
    /// let cancelled = spool::cancel::Cancelled::from_payload(&payload).unwrap();
    /// assert_eq!(cancelled.reason(), &spool::cancel::CancelReason::Shutdown);
    /// ```
    pub fn shutdown(self, grace: Duration) -> ShutdownReport {
        // `self` is owned, so nothing closed the runtime before.
        self.close(grace, Closer::Shutdown)
            .unwrap_or_else(|| crate::fatal("Runtime::shutdown: the runtime was closed already"))
        // `Drop` then finds it closed.
    }

    /// `shutdown::close` for this runtime; `None` if it was closed already.
    fn close(&self, grace: Duration, closer: Closer) -> Option<ShutdownReport> {
        let workers = std::mem::take(&mut *lock(&self.threads));
        shutdown::close(self.shared, workers, grace, self.is_current(), closer)
    }
}

impl Drop for Runtime {
    /// Shuts the runtime down as [`Runtime::shutdown`] does with a grace of
    /// [`DEFAULT_SHUTDOWN_GRACE`](crate::DEFAULT_SHUTDOWN_GRACE), and
    /// prints one line to stderr if it leaked threads.
    fn drop(&mut self) {
        if let Some(report) = self.close(shutdown::DEFAULT_SHUTDOWN_GRACE, Closer::Drop) {
            shutdown::print_leaks(&report);
        }
    }
}

/// The global runtime, started on first use.
static GLOBAL: OnceLock<Result<Runtime, io::Error>> = OnceLock::new();

/// The global runtime, started with `config` if it is not running yet.
/// Returns `AlreadyExists` if it was already started.
pub fn init_global(config: RuntimeConfig) -> io::Result<&'static Runtime> {
    let mut fresh = false;
    let result = GLOBAL.get_or_init(|| {
        fresh = true;
        Runtime::new(config)
    });
    match (result, fresh) {
        (Ok(rt), true) => Ok(rt),
        (Ok(_), false) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "spool: the global runtime is already running; configure it before the first spawn",
        )),
        (Err(e), _) => Err(crate::duplicate_error(e)),
    }
}

/// The global runtime, started with the default configuration (honouring
/// `SPOOL_WORKERS`) on first use.
pub fn global() -> io::Result<&'static Runtime> {
    let start = || {
        let config = RuntimeConfig::default();
        if let Err(error) = crate::monitor_hooks::before_global_start() {
            return Err(crate::config::and_engine_errors(error, &config));
        }
        Runtime::new(config)
    };
    match GLOBAL.get_or_init(start) {
        Ok(rt) => Ok(rt),
        Err(e) => Err(crate::duplicate_error(e)),
    }
}

/// The runtime the caller runs on, if it is a worker of one.
pub(crate) fn current_shared() -> Option<&'static Shared> {
    worker::current().map(|core| core.shared)
}

/// The green thread running on this OS thread, if any.
#[inline]
pub(crate) fn current_task() -> Option<&'static Task> {
    let core = worker::current()?;
    let task = core.current.get();
    // SAFETY: `current` is non-null only while the worker is inside
    // `resume` of that task, holding an `Arc` to it, and the caller runs on
    // the task's own stack (only green-thread code observes it), so the task
    // outlives every use the caller can make before it switches out. The
    // 'static lifetime is a lie that callers must not store: they use the
    // reference within the current call only.
    (!task.is_null()).then(|| unsafe { &*task })
}

/// Spawns on the runtime the caller runs on, or on the global runtime.
///
/// # Safety
/// As `Runtime::spawn_unchecked`.
pub unsafe fn spawn_here<'a, F>(options: SpawnOptions, f: F) -> io::Result<ThreadHandle>
where
    F: FnOnce() + Send + 'a,
{
    let shared = match current_shared() {
        Some(shared) => shared,
        None => global()?.shared,
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { spawn_on(shared, options, f) }
}

/// Creates a green thread on `shared` and queues it.
///
/// # Safety
/// As `Runtime::spawn_unchecked`.
unsafe fn spawn_on<'a, F>(
    shared: &'static Shared,
    options: SpawnOptions,
    f: F,
) -> io::Result<ThreadHandle>
where
    F: FnOnce() + Send + 'a,
{
    let phase = shared.phase.load(Ordering::Acquire);
    if phase == STOPPED {
        return Err(io::Error::other(
            "spool: cannot spawn: the runtime has shut down",
        ));
    }
    let size = match options.stack_size {
        None => shared.stack_size,
        Some(size) => stack::normalize_stack_size(size)?,
    };
    let core = worker::current().filter(|core| ptr::eq(core.shared, shared));
    let stack: GuardedStack = match core {
        Some(core) => core.take_stack(size)?,
        None => stack::allocate(size)?,
    };
    // The guard range is set when the thread first runs, on the stack it
    // then gets (see "Starting on a warm stack").
    let running = RunningStack {
        guard_start: Cell::new(0),
        guard_end: Cell::new(0),
        stack_size: stack.size(),
        name: options.name.map(String::into_boxed_str),
    };
    // SAFETY: the caller guarantees that the closure's borrows outlive
    // every use the green thread can make of them (see `spawn_unchecked`).
    let entry = unsafe { crate::task::Entry::new(f) };
    let trace = crate::trace::ThreadTrace::new(options.site, Some(crate::current_thread_id()));
    let id = next_thread_id();
    let task = match core.and_then(WorkerCore::take_recycled_task) {
        Some(mut recycled) => match Arc::get_mut(&mut recycled) {
            Some(slot) => {
                slot.reuse(id, stack, entry, running, trace);
                recycled
            }
            None => Arc::new(Task::new(id, shared, stack, entry, running, trace)),
        },
        None => Arc::new(Task::new(id, shared, stack, entry, running, trace)),
    };
    let handle = ThreadHandle::green(task.clone());
    match core {
        // The only worker of a one-worker runtime is the one spawning: it is
        // awake and will run the thread; there is nobody to wake. A runtime
        // shutting down does not move threads between workers (see
        // "Lifetime"): the spawning worker starts it, cancelled.
        Some(core) if shared.workers.len() == 1 || phase != RUNNING => core.push_fresh(task),
        Some(core) => match core.placement_target() {
            Some(index) => shared.place(index, task),
            None => {
                core.push_fresh(task);
                shared.notify_one_sleeper();
            }
        },
        None => {
            shared.injector.push(task);
            shared.notify_one_sleeper();
            // A runtime shutting down meanwhile may have drained the
            // injector already: then nobody would ever drop the closure and
            // `join` would wait forever. Both sides use SeqCst, so either
            // the workers' drain sees the push or this load sees the flag.
            if shared.phase.load(Ordering::SeqCst) == STOPPED {
                shared.drain_injector();
            }
        }
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    /// Two green threads on (usually) different workers take turns with
    /// park/unpark; a lost wakeup hangs a round, which the test reports.
    /// (The protocol itself is model-checked in `park.rs`.)
    #[test]
    fn cross_worker_pingpong_loses_no_wakeup() {
        let rt = Runtime::new(RuntimeConfig {
            workers: Some(2),
            ..RuntimeConfig::default()
        })
        .unwrap();
        for round in 0..20 {
            let turn = Arc::new(AtomicU64::new(0));
            let slots: Arc<[OnceLock<ThreadHandle>; 2]> =
                Arc::new([OnceLock::new(), OnceLock::new()]);
            let done = Arc::new(AtomicUsize::new(0));
            let n = 5_000u64;
            let spawner_done = done.clone();
            let (turn0, slots0) = (turn.clone(), slots.clone());
            rt.spawn(SpawnOptions::default(), move || {
                for me in 0..2u64 {
                    let (turn, slots, done) = (turn0.clone(), slots0.clone(), spawner_done.clone());
                    // SAFETY: 'static closure.
                    unsafe {
                        spawn_here(SpawnOptions::default(), move || {
                            slots[me as usize].set(crate::current()).unwrap();
                            while slots[1 - me as usize].get().is_none() {
                                std::hint::spin_loop();
                                crate::yield_now();
                            }
                            let peer = slots[1 - me as usize].get().unwrap().clone();
                            for i in 0..n {
                                let mine = 2 * i + me;
                                while turn.load(Ordering::Acquire) != mine {
                                    crate::park();
                                }
                                turn.store(mine + 1, Ordering::Release);
                                peer.unpark();
                            }
                            done.fetch_add(1, Ordering::SeqCst);
                        })
                    }
                    .unwrap();
                }
            })
            .unwrap();
            let start = Instant::now();
            while done.load(Ordering::SeqCst) < 2 {
                std::thread::sleep(Duration::from_millis(1));
                if start.elapsed() > Duration::from_secs(10) {
                    let msg = format!(
                        "round {round}: hung at turn {}",
                        turn.load(Ordering::SeqCst)
                    );
                    panic!("{msg}");
                }
            }
        }
    }

    /// A fork-join batch runs on a few warm stacks, not one stack per
    /// thread: each thread starts on the stack the last finished one ran
    /// on (see "Starting on a warm stack"). Before, a batch of N threads
    /// spawned before any ran touched N stacks (two resident pages each).
    #[test]
    fn a_batch_of_short_threads_runs_on_a_few_warm_stacks() {
        const BATCH: usize = 200;
        let rt = Runtime::new(RuntimeConfig {
            workers: Some(1),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(SpawnOptions::default(), move || {
            let addresses = Arc::new(Mutex::new(Vec::with_capacity(BATCH)));
            let done = Arc::new(AtomicUsize::new(0));
            // All spawned before any runs: the spawner does not block
            // until the loop below.
            for _ in 0..BATCH {
                let (addresses, done) = (addresses.clone(), done.clone());
                // SAFETY: 'static closure.
                unsafe {
                    spawn_here(SpawnOptions::default(), move || {
                        let local = 0u8;
                        let at = std::hint::black_box(&local) as *const u8 as usize;
                        lock(&addresses).push(at);
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                }
                .unwrap();
            }
            while done.load(Ordering::SeqCst) < BATCH {
                crate::yield_now();
            }
            let mut addresses = lock(&addresses).clone();
            addresses.sort_unstable();
            addresses.dedup();
            tx.send(addresses.len()).unwrap();
        })
        .unwrap();
        let stacks = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        // The same code at the same depth: one address per stack used.
        assert!(
            stacks <= 2,
            "{BATCH} short threads, spawned before any ran, used {stacks} stacks"
        );
    }
}
