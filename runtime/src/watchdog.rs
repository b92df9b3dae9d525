//! The blocking watchdog: reports a green thread that runs too long without
//! reaching a blocking point.
//!
//! # The problem
//!
//! A worker runs one green thread at a time and gets its OS thread back
//! only when that thread switches out, at a blocking call of spool's (or
//! `yield_now`). A green thread that calls a blocking std function
//! (`std::thread::sleep`, a `std::sync::Mutex`, a blocking read on a std
//! socket) or computes for a long time holds its worker for the whole
//! while, and every other green thread queued there waits, silently. The
//! watchdog names the culprit, once per spawn site:
//!
//! ```text
//! spool: thread 'conn-17' (42) has run for 2.3 s on worker 1 without reaching a blocking point (spawned at src/server.rs:44); a blocking std call or a long computation stalls every green thread on this worker — use spool's equivalent or spool::unblock
//! ```
//!
//! # Design
//!
//! *Progress.* Each worker owns a [`Slot`] (in its `Remote`, padded to its
//! own cache lines). The worker counts its turns down to its next
//! maintenance pass anyway (see "Fairness" in `scheduler.rs`); that
//! countdown lives in the slot's *turn word*, with the number of times it
//! ran out above it, so the word changes at every turn and never takes a
//! value twice: the watchdog's progress counter, for free (it is the only
//! writer, so a plain load and store, no read-modify-write, as a
//! countdown in a `Cell` would be). After each resume the worker loads
//! the slot's request word, which is zero unless the watchdog wrote to
//! it: one load of a line that stays in the worker's cache, the whole
//! per-switch cost. (A first version stored a separate resume counter
//! before each resume: three more instructions per switch, about 1.5% of
//! a yield's.)
//!
//! *Sampling.* One process-wide OS thread, `spool-watchdog`, started with
//! the first runtime whose threshold is not zero, wakes every quarter of
//! the smallest threshold and reads each watched worker's counter and its
//! `Remote::sleeping` flag. A counter that has not moved since a sample at
//! least one threshold ago, on a worker not seen sleeping meanwhile, means
//! that one resume has lasted that long. The watchdog is independent of
//! the workers, so it works when all of them are wedged.
//!
//! *Naming the thread.* The watchdog knows which resume is stuck (the
//! counter's value) but may not read the stuck green thread's `Task`: its
//! name and trace are owner-only, and the task can be freed or recycled at
//! any moment. So it *flags* the resume: it stores when it first saw it
//! (`since`) and then the resume's number (`flagged`, Release). When the
//! green thread finally switches out, its worker finds the flag (Acquire),
//! and if it names the resume that just ended, the worker, which owns the
//! task, reads its name, id and spawn site, looks the site up among those
//! already reported, and prints the line with the full length of the
//! stall. A flag for a resume that had already ended when the watchdog set
//! it (a worker between resumes that the kernel did not schedule for a
//! while) names an older resume and is dropped.
//!
//! *Still stuck.* A thread that never switches out (a deadlock on a std
//! lock, an endless loop) would never be named. If a flagged resume is
//! still running [`STILL_RUNNING_AFTER`] past the threshold, the watchdog
//! itself prints what it may know without touching the task: which worker,
//! for how long, and that the thread will be named when it switches out;
//! once per worker, so a program that stalls often is not flooded.
//!
//! *Lifetime.* A worker registers its slot when it starts and
//! deregisters when it stops running green threads (before its shutdown
//! work), both under the watchdog's lock; the slots live in a runtime's
//! leaked `Shared`, so the watchdog's references stay valid anyway. Long
//! work of the worker's own between resumes (answering a dump) moves the
//! counter too (`note_progress`), so it is not taken for a stall.
//!
//! # Rejected: a signal to the stuck worker
//!
//! The stuck worker's OS thread could be sent a signal whose handler,
//! running on that thread, reads the running thread's name (as the
//! stack-overflow handler does) and reports at once. It was built and
//! dropped: the signal interrupts the very blocking call being reported,
//! and system calls that never restart (socket reads and writes with a
//! timeout, `poll`, `epoll_wait`, `select`) fail with `EINTR`, which
//! `std::io::Read::read` hands to the caller as `ErrorKind::Interrupted`.
//! A program that merely ran slowly would see errors because the watchdog
//! looked at it (a std stream read with a read timeout in the test suite
//! did). Reporting at switch-out changes nothing in the program.
//!
//! # What it does not see
//!
//! A resume is measured from the first sample that saw it, so the time
//! reported is a lower bound, and a stall shorter than the threshold plus
//! one sampling period may go unreported, as may one that ends between the
//! watchdog's sample and its flag. A worker whose OS thread the kernel
//! does not run for a while (an overloaded machine) looks stuck as well;
//! its green thread is then reported too, which is what its neighbours
//! experienced.

use std::collections::HashSet;
use std::fmt;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use crate::loom::atomic::{AtomicU64, Ordering};
use crate::task::Task;

/// The threshold when neither the configuration nor `SPOOL_BLOCKING_MS`
/// sets one: how long a green thread may run without reaching a blocking
/// point before the blocking watchdog reports it.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(spool::runtime::DEFAULT_BLOCKING_THRESHOLD, Duration::from_millis(100));
/// ```
pub const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(100);

/// How long past its threshold a flagged resume may go on before the
/// watchdog says so itself (see "Still stuck").
const STILL_RUNNING_AFTER: Duration = Duration::from_secs(1);

/// What the watchdog and one worker share (see "Design" above). Padded so
/// the per-turn store shares its cache line with nothing that other
/// threads write often.
#[repr(align(128))]
pub(crate) struct Slot {
    /// The worker's turn word: its maintenance countdown in the low byte
    /// and, above it, how many times the countdown ran out (or the worker
    /// noted progress). Written only by the worker (a plain load and
    /// store), read by the watchdog, which needs only that the word changes
    /// at every turn and never takes a value twice. Zero until the first
    /// turn.
    turns: AtomicU64,
    /// The turn word of the resume the watchdog found running too long, or
    /// zero.
    flagged: AtomicU64,
    /// When the watchdog first saw the flagged resume, in nanoseconds
    /// since `epoch()`; published by `flagged`.
    since: AtomicU64,
    /// The worker's index in its runtime.
    worker: usize,
}

/// The countdown's bits in `Slot::turns`.
const COUNTDOWN: u64 = 0xff;

/// One more run-out of the countdown in `Slot::turns`.
const RUN_OUT: u64 = COUNTDOWN + 1;

/// What a worker finds in its slot after a resume.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Nothing: the common case.
    None,
    /// A flag for a resume that had ended before the watchdog set it.
    Stale,
    /// The resume that just ended ran too long; it began by `since`.
    Report { since: u64 },
}

impl Slot {
    pub(crate) fn new(worker: usize) -> Slot {
        Slot {
            turns: AtomicU64::new(0),
            flagged: AtomicU64::new(0),
            since: AtomicU64::new(0),
            worker,
        }
    }

    /// Called by the worker at the start of every turn: counts the turn
    /// down and says whether the countdown ran out, in which case it starts
    /// again from `interval` (at most 255) and the worker does its
    /// maintenance. The worker needs the countdown anyway; keeping it here
    /// makes it the watchdog's progress counter too, at no extra cost.
    #[inline(always)]
    pub(crate) fn begin_turn(&self, interval: u8) -> bool {
        // Only this worker writes the word, so a load and a store is an
        // update; Relaxed, since the watchdog only compares values.
        let word = self.turns.load(Ordering::Relaxed);
        if word & COUNTDOWN != 0 {
            self.turns.store(word - 1, Ordering::Relaxed);
            false
        } else {
            self.turns
                .store(word + RUN_OUT + u64::from(interval), Ordering::Relaxed);
            true
        }
    }

    /// Called by the worker before work of its own that may take long
    /// (answering a dump), so the watchdog does not take it for the
    /// resume before going on: a flag for that resume then finds the word
    /// moved and is dropped as stale. Leaves the countdown as it was.
    pub(crate) fn note_progress(&self) {
        let word = self.turns.load(Ordering::Relaxed);
        self.turns.store(word + RUN_OUT, Ordering::Relaxed);
    }

    /// Called by the worker after every resume: whether the watchdog left
    /// a request (then the worker calls `report_stall`, off the hot path).
    #[inline(always)]
    pub(crate) fn has_request(&self) -> bool {
        // Relaxed: a hint; `take_request` acquires.
        self.flagged.load(Ordering::Relaxed) != 0
    }

    /// The watchdog flags resume `resume`, first seen at `since`.
    fn flag(&self, resume: u64, since: u64) {
        self.since.store(since, Ordering::Relaxed);
        // Release: the worker that acquires the flag reads `since`.
        self.flagged.store(resume, Ordering::Release);
    }

    /// The worker takes the watchdog's request, after a resume.
    fn take_request(&self) -> Request {
        let flagged = self.flagged.swap(0, Ordering::Acquire);
        if flagged == 0 {
            Request::None
        } else if self.turns.load(Ordering::Relaxed) != flagged {
            Request::Stale
        } else {
            Request::Report {
                since: self.since.load(Ordering::Relaxed),
            }
        }
    }
}

/// The instant `Slot::since` counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` in nanoseconds since `epoch()`; at least 1.
fn to_nanos(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(epoch()).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
}

/// One watched worker.
struct Watched {
    slot: &'static Slot,
    sleeping: &'static AtomicBool,
    threshold: Duration,
    /// The counter value last seen, and the first sample that saw it (or
    /// the last one that saw the worker sleeping).
    seen: u64,
    since: Instant,
    /// The last resume flagged, so each stuck resume is flagged once.
    flagged: u64,
    /// Whether "Still stuck" was printed for this worker.
    told_still_running: bool,
}

/// The watched workers.
static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// Wakes the watchdog when the first worker registers.
static REGISTERED: Condvar = Condvar::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A worker's registration with the watchdog; deregisters on drop.
pub(crate) struct Registration {
    slot: &'static Slot,
}

/// Registers a worker's slot, if `threshold` is not zero, starting the
/// watchdog on first use.
pub(crate) fn watch(
    slot: &'static Slot,
    sleeping: &'static AtomicBool,
    threshold: Duration,
) -> Option<Registration> {
    if threshold.is_zero() {
        return None;
    }
    start();
    lock(&WATCHED).push(Watched {
        slot,
        sleeping,
        threshold,
        seen: slot.turns.load(Ordering::Relaxed),
        since: Instant::now(),
        flagged: 0,
        told_still_running: false,
    });
    REGISTERED.notify_one();
    Some(Registration { slot })
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&WATCHED).retain(|w| !ptr::eq(w.slot, self.slot));
    }
}

/// Starts the watchdog thread, once.
fn start() {
    static START: Once = Once::new();
    START.call_once(|| {
        epoch();
        let started = std::thread::Builder::new()
            .name("spool-watchdog".into())
            .spawn(|| {
                // One of spool's own threads: the deadlock check does not
                // take it for user code that might wake someone.
                let _helper = crate::deadlock::helper_thread();
                run()
            });
        if let Err(e) = started {
            print_line(format_args!(
                "spool: cannot start the blocking watchdog thread ({e}); green threads that \
                 block their worker will not be reported"
            ));
        }
    });
}

/// The watchdog thread's loop.
fn run() {
    let mut watched = lock(&WATCHED);
    loop {
        let Some(smallest) = watched.iter().map(|w| w.threshold).min() else {
            watched = REGISTERED.wait(watched).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let period = (smallest / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
        watched = match REGISTERED.wait_timeout(watched, period) {
            Ok((guard, _)) => guard,
            Err(e) => e.into_inner().0,
        };
        let now = Instant::now();
        for worker in watched.iter_mut() {
            sample(worker, now);
        }
    }
}

/// Looks at one worker; flags its resume if it has run for the threshold.
fn sample(worker: &mut Watched, now: Instant) {
    let turns = worker.slot.turns.load(Ordering::Relaxed);
    if worker.sleeping.load(Ordering::Relaxed) || turns != worker.seen {
        worker.seen = turns;
        worker.since = now;
        return;
    }
    let ran = now.saturating_duration_since(worker.since);
    if turns == 0 || ran < worker.threshold {
        return;
    }
    if worker.flagged != turns {
        worker.flagged = turns;
        worker.slot.flag(turns, to_nanos(worker.since));
    } else if !worker.told_still_running && ran >= worker.threshold + STILL_RUNNING_AFTER {
        worker.told_still_running = true;
        print_line(StillRunning {
            ran,
            worker: worker.slot.worker,
        });
    }
}

/// Called by the worker after a resume of `task` when `has_request` said
/// so: reports the resume if it is the one the watchdog flagged.
#[cold]
#[inline(never)]
pub(crate) fn report_stall(slot: &Slot, task: &Task) {
    let Request::Report { since } = slot.take_request() else {
        return;
    };
    // Off the hot path: a record is the owner's view of the thread's trace.
    let site =
        crate::trace::ThreadRecord::of(task, slot.worker, crate::trace::ThreadState::Runnable)
            .spawn_site;
    if !first_report(site) {
        return;
    }
    let began = epoch() + Duration::from_nanos(since);
    let stall = Stall {
        name: task.name(),
        id: task.id.get(),
        ran: began.elapsed(),
        worker: slot.worker,
        site,
    };
    print_line(stall);
}

/// Writes `line` to stderr in one piece. Never panics (unlike `eprintln!`
/// when stderr is closed): a worker must not unwind.
fn print_line(line: impl fmt::Display) {
    use std::io::Write as _;
    let text = format!("{line}\n");
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Records `site` as reported; `false` if it was already. Threads spawned
/// without a known site share one entry.
fn first_report(site: Option<&'static Location<'static>>) -> bool {
    static REPORTED: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
    let key = site.map_or(0, |site| ptr::from_ref(site) as usize);
    lock(&REPORTED).get_or_insert_with(HashSet::new).insert(key)
}

/// The advice that ends both lines.
const ADVICE: &str = "a blocking std call or a long computation stalls every green thread \
                      on this worker \u{2014} use spool's equivalent or spool::unblock";

/// Formats a duration as "120 ms" or "2.3 s".
struct Length(Duration);

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms < 1000 {
            write!(f, "{ms} ms")
        } else {
            write!(f, "{}.{} s", ms / 1000, ms % 1000 / 100)
        }
    }
}

/// The report of one stall (see the top of this file).
struct Stall<'a> {
    name: Option<&'a str>,
    id: u64,
    ran: Duration,
    worker: usize,
    site: Option<&'static Location<'static>>,
}

impl fmt::Display for Stall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.unwrap_or("<unnamed>");
        write!(
            f,
            "spool: thread '{name}' ({}) has run for {} on worker {} without reaching a \
             blocking point",
            self.id,
            Length(self.ran),
            self.worker
        )?;
        if let Some(site) = self.site {
            write!(f, " (spawned at {}:{})", site.file(), site.line())?;
        }
        write!(f, "; {ADVICE}")
    }
}

/// What the watchdog says itself of a resume that goes on (see "Still
/// stuck").
struct StillRunning {
    ran: Duration,
    worker: usize,
}

impl fmt::Display for StillRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spool: a green thread has run for {} on worker {} without reaching a blocking \
             point and is still running (it is named when it switches out); {ADVICE}",
            Length(self.ran),
            self.worker
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        static SITE: &Location<'static> = Location::caller();
        let stall = Stall {
            name: Some("conn-17"),
            id: 42,
            ran: Duration::from_millis(2345),
            worker: 1,
            site: Some(SITE),
        };
        let expected = format!(
            "spool: thread 'conn-17' (42) has run for 2.3 s on worker 1 without reaching a \
             blocking point (spawned at {}:{}); a blocking std call or a long computation \
             stalls every green thread on this worker \u{2014} use spool's equivalent or \
             spool::unblock",
            SITE.file(),
            SITE.line()
        );
        assert_eq!(stall.to_string(), expected);
        let unnamed = Stall {
            name: None,
            site: None,
            ran: Duration::from_millis(120),
            ..stall
        };
        assert!(unnamed.to_string().starts_with(
            "spool: thread '<unnamed>' (42) has run for 120 ms on worker 1 without reaching \
             a blocking point; a blocking"
        ));
    }

    #[test]
    fn each_site_is_reported_once() {
        static A: &Location<'static> = Location::caller();
        static B: &Location<'static> = Location::caller();
        assert!(first_report(Some(A)));
        assert!(!first_report(Some(A)));
        assert!(first_report(Some(B)));
        assert!(!first_report(Some(B)));
    }
}

/// The watchdog's request handshake under loom (see `crate::loom`):
/// `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The watchdog flags whatever resume it sees while the worker runs
    /// two resumes and looks at its slot after each. A report always
    /// carries the time the watchdog stored with the flag, is made at the
    /// end of the resume that was flagged, and happens at most once.
    #[test]
    fn loom_a_flagged_resume_is_reported_once_with_its_start() {
        loom::model(|| {
            let slot = Arc::new(Slot::new(0));
            let watchdog = {
                let slot = slot.clone();
                thread::spawn(move || {
                    let resume = slot.turns.load(Ordering::Relaxed);
                    if resume != 0 {
                        slot.flag(resume, 7);
                    }
                    resume
                })
            };
            let mut reports = Vec::new();
            for _ in 0..2 {
                slot.begin_turn(61);
                let resume = slot.turns.load(Ordering::Relaxed);
                // The green thread runs here.
                if slot.has_request() {
                    if let Request::Report { since } = slot.take_request() {
                        reports.push((resume, since));
                    }
                }
            }
            let flagged = watchdog.join().unwrap();
            assert!(reports.len() <= 1, "{reports:?}");
            if let Some(&(resume, since)) = reports.first() {
                assert_eq!(since, 7, "a report without the watchdog's time");
                assert_eq!(resume, flagged, "a report of another resume");
                assert_eq!(slot.take_request(), Request::None, "a request taken twice");
            }
        });
    }
}
