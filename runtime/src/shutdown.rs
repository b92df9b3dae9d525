//! Shutting a runtime down: the phases, the grace period, the report.
//!
//! The design is the essay "Lifetime" at the top of `scheduler.rs`; this
//! file is the closing side of it (`close`, run by `Runtime::shutdown` and
//! `Runtime`'s `Drop`) and the two calls a worker makes into it
//! (`Shared::worker_settled`, `Shared::worker_unsettled`).

use std::fmt;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle as OsJoinHandle;
use std::time::{Duration, Instant};

use crate::scheduler::{lock, Shared};
use crate::{ThreadHandle, ThreadId};

/// `Shared::phase`: the runtime runs normally.
pub(crate) const RUNNING: u8 = 0;
/// `Shared::phase`: every green thread is being cancelled, and the workers
/// keep running them so they unwind (see "Lifetime" in `scheduler.rs`).
pub(crate) const CANCELLING: u8 = 1;
/// `Shared::phase`: the workers stop, discard never-run threads and
/// abandon the started ones that are left.
pub(crate) const STOPPED: u8 = 2;

/// How long dropping a [`Runtime`](crate::Runtime) waits for its cancelled
/// green threads to unwind before it leaks the ones left: one second.
///
/// A cancelled thread that is not stuck unwinds in microseconds (its
/// destructors run, its blocking calls return at once), so the grace only
/// matters for destructors that do real work (flushing a socket, writing a
/// file), for which a second is plenty, and for threads no cancellation
/// reaches (in a shield, an `unblock`, a scope waiting for such a thread),
/// which will not end however long one waits: a second is short enough
/// that a program ending with such a thread does not seem to hang. Use
/// [`Runtime::shutdown`](crate::Runtime::shutdown) to choose another.
///
/// ```
/// assert_eq!(spool::runtime::DEFAULT_SHUTDOWN_GRACE, std::time::Duration::from_secs(1));
/// ```
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The closing side's state, under `Shared::closing`.
#[derive(Default)]
pub(crate) struct Closing {
    /// The thread that shut the runtime down, named in the cancellations.
    pub(crate) by: Option<ThreadId>,
    /// The thread waiting for the workers to settle, woken by the last one.
    waiter: Option<ThreadHandle>,
}

/// Who asked for the shutdown: decides whether leaks are printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closer {
    /// `Runtime`'s `Drop`: leaks are printed, as nobody gets the report.
    Drop,
    /// `Runtime::shutdown`: the caller gets the report.
    Shutdown,
}

/// What a runtime's shutdown did: how long it waited for its cancelled
/// green threads and how many of them it leaked.
///
/// Returned by [`Runtime::shutdown`](crate::Runtime::shutdown). A green
/// thread is *leaked* when it had not finished by the end of the grace
/// period: it never runs again, its stack and the values on it stay
/// allocated, its destructors never run, and its `join` returns an error
/// saying the runtime shut down. Only threads blocked where no
/// cancellation reaches them are normally left: inside a shield, in an
/// `unblock` whose closure does not end, or in a scope waiting for such a
/// thread.
///
/// ```
/// use std::time::Duration;
///
/// let rt = spool::Runtime::builder().workers(1).build().unwrap();
/// let parked = rt.spawn(|| loop {
///     spool::thread::park(); // a cancellation point: shutdown ends it
/// });
/// let report = rt.shutdown(Duration::from_secs(5));
/// assert_eq!(report.leaked(), 0);
/// println!("{report}"); // every green thread finished within ... of being cancelled
/// assert!(parked.join().is_err()); // its `Cancelled` payload
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    grace: Duration,
    waited: Duration,
    /// `None`: the shutdown goes on in the background.
    leaked: Option<usize>,
}

impl ShutdownReport {
    /// How many green threads had not finished by the end of the grace
    /// period and were leaked. Zero while the shutdown goes on in the
    /// background (see [`is_in_background`](Self::is_in_background)).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder().workers(1).build().unwrap();
    /// // A thread in a shield is out of cancellation's reach: it is leaked.
    /// rt.spawn(|| spool::cancel::shield(|| spool::thread::sleep(Duration::from_secs(60))));
    /// # while !spool::debug::dump().threads().any(|t| t.is_waiting()) { spool::thread::yield_now(); }
    /// let report = rt.shutdown(Duration::from_millis(10));
    /// assert_eq!(report.leaked(), 1);
    /// ```
    pub fn leaked(&self) -> usize {
        self.leaked.unwrap_or(0)
    }

    /// Whether the runtime was shut down from one of its own green
    /// threads, which cannot wait for the others (nor for itself): the
    /// shutdown then goes on in the background and nothing is known yet
    /// of what it leaks. Dropping the runtime that way prints the leaks,
    /// if any, to stderr when the background shutdown ends.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder().workers(1).build().unwrap();
    /// let (give, take) = spool::sync::oneshot::channel::<spool::Runtime>();
    /// let (tell, told) = std::sync::mpsc::channel();
    /// rt.spawn(move || {
    ///     // Shut down from one of its own green threads: it cannot wait here.
    ///     let report = take.recv().unwrap().shutdown(Duration::from_secs(1));
    ///     tell.send(report.is_in_background()).unwrap();
    /// });
    /// give.send(rt).unwrap();
    /// assert!(told.recv().unwrap());
    /// ```
    pub fn is_in_background(&self) -> bool {
        self.leaked.is_none()
    }

    /// The grace period the shutdown was given.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder().workers(1).build().unwrap();
    /// let report = rt.shutdown(Duration::from_millis(250));
    /// assert_eq!(report.grace(), Duration::from_millis(250));
    /// ```
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// How long the shutdown waited for the cancelled threads: at most
    /// about the grace period (zero when it went on in the background).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spool::Runtime::builder().workers(1).build().unwrap();
    /// rt.spawn(|| spool::thread::park()); // ends at once when cancelled
    /// let report = rt.shutdown(Duration::from_secs(10));
    /// assert!(report.waited() <= report.grace());
    /// ```
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.leaked {
            None => write!(
                f,
                "shut down from one of its own green threads: the threads are cancelled and \
                 given {:?} to finish in the background",
                self.grace
            ),
            Some(0) => write!(
                f,
                "every green thread finished within {:?} of being cancelled",
                self.waited
            ),
            Some(n) => write!(
                f,
                "{n} green thread{s} did not finish within {grace:?} of being cancelled; \
                 {they} leaked (blocked where no cancellation reaches: in a shield, an \
                 `unblock`, or a scope waiting for such a thread)",
                s = if n == 1 { "" } else { "s" },
                they = if n == 1 { "it is" } else { "they are" },
                grace = self.grace,
            ),
        }
    }
}

/// Shuts the runtime of `shared` down (see "Lifetime" in `scheduler.rs`):
/// cancels every green thread, waits up to `grace` for them to finish,
/// stops and joins the `workers`. `None` if the runtime was closed
/// already. Called `inside` one of the runtime's own workers it cannot
/// wait: a new OS thread finishes the shutdown, and the report says so.
pub(crate) fn close(
    shared: &'static Shared,
    workers: Vec<OsJoinHandle<()>>,
    grace: Duration,
    inside: bool,
    closer: Closer,
) -> Option<ShutdownReport> {
    let start = Instant::now();
    {
        let mut closing = lock(&shared.closing);
        if shared.phase.load(Ordering::Relaxed) != RUNNING {
            return None;
        }
        closing.by = Some(crate::current_thread_id());
        // Registered before any worker can settle (they act on the phase
        // only after this store); see `Shared::worker_settled`.
        closing.waiter = (!inside).then(crate::current);
        // Only the workers that started count (a failed `Runtime::new`
        // closes a runtime some of whose workers never ran).
        shared.unsettled.store(workers.len(), Ordering::Relaxed);
        // SeqCst: pairs with a sleeping worker's re-check (see "Worker
        // sleeping" in `scheduler.rs`); the poke below wakes it anyway.
        shared.phase.store(CANCELLING, Ordering::SeqCst);
    }
    shared.notify_all();
    if !inside {
        return Some(finish(shared, workers, grace, start));
    }
    // The caller is one of the threads being cancelled. Its worker would
    // cancel it only once it switches out, and a cancellation point that
    // does not block (a `join` of a thread that has already unwound) would
    // not see it: cancel it now, so its next cancellation point unwinds.
    crate::current().cancel(crate::cancel::CancelReason::Shutdown);
    let background = std::thread::Builder::new()
        .name("spool-shutdown".into())
        .spawn(move || {
            let report = finish(shared, workers, grace, start);
            if closer == Closer::Drop {
                print_leaks(&report);
            }
        });
    if background.is_err() {
        // Nobody can wait for the grace: stop at once, as a zero grace.
        shared.phase.store(STOPPED, Ordering::SeqCst);
        shared.notify_all();
    }
    Some(ShutdownReport {
        grace,
        waited: Duration::ZERO,
        leaked: None,
    })
}

/// The rest of `close`, on a thread that may wait: until every worker has
/// settled or the grace is over, then stops and joins the workers.
fn finish(
    shared: &'static Shared,
    workers: Vec<OsJoinHandle<()>>,
    grace: Duration,
    start: Instant,
) -> ShutdownReport {
    {
        let mut closing = lock(&shared.closing);
        if closing.waiter.is_none() {
            // A background shutdown registers here; a worker that settled
            // the count to zero before found nobody to wake, and the
            // check below sees its decrement (it took this lock after).
            closing.waiter = Some(crate::current());
        }
    }
    // Further away than an `Instant` can express: no deadline.
    let deadline = start.checked_add(grace);
    // Acquire: pairs with the workers' decrements, so everything the
    // finished threads did (their destructors) happens before we go on.
    crate::trace::forget_wait();
    while shared.unsettled.load(Ordering::Acquire) != 0 {
        // spool's own masked wait: the user's park token is left alone,
        // and a green thread of another runtime switches out meanwhile.
        match deadline {
            Some(deadline) if Instant::now() >= deadline => break,
            Some(deadline) => crate::wait_until(deadline),
            None => crate::wait(),
        }
    }
    let waited = start.elapsed();
    let waiter = lock(&shared.closing).waiter.take();
    // Dropped outside the lock: a handle's drop may recycle a task.
    drop(waiter);
    shared.phase.store(STOPPED, Ordering::SeqCst);
    shared.notify_all();
    for worker in workers {
        // A worker never unwinds (see "Containment" in `panic.rs`): it
        // returns, or the process has aborted.
        let _ = worker.join();
    }
    // Joined: every worker's count of what it abandoned is visible.
    ShutdownReport {
        grace,
        waited,
        leaked: Some(shared.leaked.load(Ordering::Relaxed)),
    }
}

/// The one line a dropped runtime prints when it leaked threads.
pub(crate) fn print_leaks(report: &ShutdownReport) {
    if report.leaked() > 0 {
        crate::write_stderr(&format!("spool: runtime dropped: {report}\n"));
    }
}

impl Shared {
    /// A worker in the cancelling phase has no started green thread left
    /// and found nothing to run. The last of the workers to settle wakes
    /// the closing thread.
    pub(crate) fn worker_settled(&self) {
        // AcqRel, a read-modify-write: the decrements form one release
        // sequence, so the closer's Acquire load of zero sees what every
        // worker did before settling.
        if self.unsettled.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock: the closer registers under it before it
            // checks the count (see `finish`), so either we find it here
            // or it finds the count at zero.
            if let Some(waiter) = &lock(&self.closing).waiter {
                waiter.wake();
            }
        }
    }

    /// A settled worker got a green thread to run after all (one spawned
    /// elsewhere at the moment the phase changed): it counts again.
    pub(crate) fn worker_unsettled(&self) {
        self.unsettled.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The settle handshake: workers decrement `unsettled` and the last one
    //! wakes the closer, which registered itself under the `closing` lock
    //! and waits (spool's wait: a token that a wake leaves and the wait
    //! consumes) until the count is zero. The closer must neither sleep
    //! forever nor go on before every worker has settled (it must see each
    //! worker's write made before settling).
    //!
    //! Run with
    //! `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.
    //!
    //! The deliberate mutation, `waking_before_the_decrement_can_strand_the_closer`:
    //! the last worker wakes the closer *before* its decrement; the closer
    //! then sees the count at one, waits again, and nobody wakes it.
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Model {
        unsettled: AtomicUsize,
        /// The closer is registered (`Closing::waiter`).
        closing: Mutex<bool>,
        /// The closer's wake token.
        token: AtomicBool,
        /// What each worker did before settling (a thread's destructor).
        work: [AtomicBool; 2],
        /// Every worker has finished its part.
        workers_done: AtomicUsize,
    }

    fn worker(m: &Model, index: usize, wake_first: bool) {
        m.work[index].store(true, Ordering::Relaxed);
        if wake_first {
            if m.unsettled.load(Ordering::Acquire) == 1 && *m.closing.lock().unwrap() {
                m.token.store(true, Ordering::Release);
            }
            m.unsettled.fetch_sub(1, Ordering::AcqRel);
        } else if m.unsettled.fetch_sub(1, Ordering::AcqRel) == 1 && *m.closing.lock().unwrap() {
            m.token.store(true, Ordering::Release);
        }
        m.workers_done.fetch_add(1, Ordering::Release);
    }

    /// The closer registers late (as a background shutdown does, after
    /// the phase is published), then waits.
    fn closer(m: &Model) {
        *m.closing.lock().unwrap() = true;
        while m.unsettled.load(Ordering::Acquire) != 0 {
            // Wait: consume the token, or stay asleep.
            crate::loom::wait_for_token(&m.token, &m.workers_done, 2);
        }
        for work in &m.work {
            assert!(
                work.load(Ordering::Relaxed),
                "went on before a worker settled"
            );
        }
    }

    fn settle(wake_first: bool) {
        loom::model(move || {
            let m = Arc::new(Model {
                unsettled: AtomicUsize::new(2),
                closing: Mutex::new(false),
                token: AtomicBool::new(false),
                work: [AtomicBool::new(false), AtomicBool::new(false)],
                workers_done: AtomicUsize::new(0),
            });
            let workers: Vec<_> = (0..2)
                .map(|index| {
                    let m = Arc::clone(&m);
                    thread::spawn(move || worker(&m, index, wake_first))
                })
                .collect();
            closer(&m);
            for w in workers {
                w.join().unwrap();
            }
        });
    }

    #[test]
    fn the_last_worker_to_settle_wakes_the_closer() {
        settle(false);
    }

    #[test]
    #[should_panic(expected = "stranded")]
    fn waking_before_the_decrement_can_strand_the_closer() {
        settle(true);
    }
}
