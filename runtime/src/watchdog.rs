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
//! own cache lines). At the start of every resume the worker stores the
//! next value of the slot's resume counter: one plain store (the worker is
//! the only writer, so no read-modify-write), the whole per-switch cost.
//!
//! *Sampling.* One process-wide OS thread, `spool-watchdog`, started with
//! the first runtime whose threshold is not zero, wakes every quarter of
//! the smallest threshold and reads each watched worker's counter and its
//! `Remote::sleeping` flag. A counter that has not moved since a sample
//! at least one threshold ago, on a worker that was not seen sleeping
//! meanwhile, means one resume has lasted that long. It is independent of
//! the workers, so it works when all of them are wedged.
//!
//! *Naming the thread.* The watchdog knows which resume is stuck (the
//! counter's value) but may not read the stuck green thread's `Task`: its
//! owner-only fields belong to the worker's OS thread, and the task can be
//! freed or recycled at any moment. So the watchdog asks the worker's own
//! OS thread: it stores the counter value it saw and the time measured in
//! the slot (`flagged`, `ran_for_ms`) and sends the worker the watchdog
//! signal (`pthread_kill`). The handler runs on the worker's OS thread,
//! interrupting the stuck code; there the running green thread's
//! `RunningStack` (published by `sys::set_running` around every resume, as
//! for the stack-overflow report) is valid, and it holds the name, id and
//! spawn site. The handler checks that the counter still has the flagged
//! value (the same resume is still running: a resume that ended meanwhile
//! is not reported), looks the spawn site up in a lock-free table of sites
//! already reported, formats the line into a stack buffer and `write(2)`s
//! it. Everything it does is async-signal-safe: atomics, a thread-local
//! load, `core::fmt` into a fixed buffer, `write`.
//!
//! *Ordering.* The worker stores the counter before it publishes the
//! running thread (`set_running`), with a compiler fence between them, so
//! a handler that sees the flagged counter and a running thread sees the
//! thread of that resume (a signal handler observes its own thread's
//! stores in program order once the compiler keeps them in order). The
//! watchdog stores `ran_for_ms` before it releases `flagged`, which the
//! handler acquires.
//!
//! *Lifetime.* `pthread_kill` on an exited thread is undefined behaviour.
//! A worker registers itself (its `pthread_t`, its slot) on its own thread
//! when it starts, and deregisters under the same lock before it exits;
//! the watchdog signals only while holding that lock, so it never signals
//! a thread that has gone. A signal still pending when a worker
//! deregisters finds no flag, or no running thread, and does nothing.
//!
//! # The signal
//!
//! `SIGURG` (see `sys::WATCHDOG_SIGNAL`), as Go's scheduler uses for
//! preemption: ignored by default, so it can never kill the process, and
//! rarely used otherwise (socket out-of-band data), in which case the
//! handler passes any signal that is not the watchdog's to the handler
//! installed before ours. Its effect on the stuck code: the handler is
//! installed with `SA_RESTART`, so most interrupted system calls (reads,
//! writes, `futex` lock waits) restart transparently; a few never restart
//! by POSIX rule (`nanosleep`, `poll`, `epoll_wait`, `select`, timed
//! waits) and return `EINTR` once. std retries these itself
//! (`std::thread::sleep` sleeps the remaining time, its locks and
//! condition variables loop), so only code calling such system calls
//! directly through `libc` can see one `EINTR`, once per stuck resume. A
//! signal that arrives together with a program's own `SIGURG` is merged
//! with it by the kernel (standard signals do not queue); the watchdog's
//! claims it then, and the program's handler is not called for that one.
//!
//! # What it does not see
//!
//! A resume is measured from the first sample that saw it, so the time
//! reported is a lower bound, and a stall shorter than the threshold plus
//! one sampling period may go unreported. A worker whose OS thread the
//! kernel does not schedule for a while (an overloaded machine) looks
//! stuck too; if it is between resumes then, the handler finds no running
//! green thread and prints nothing. Sites are remembered in a fixed table
//! of [`REPORTED_SITES`] entries; once it is full, further sites are
//! reported at each stuck resume. Threads spawned without a known site
//! share one entry.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicUsize};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::loom::atomic::{AtomicU64, Ordering};
use crate::sys::{self, OsThread, RunningStack};

/// The environment variable that sets the threshold in milliseconds.
pub(crate) const ENV: &str = "SPOOL_BLOCKING_MS";

/// The threshold when neither the configuration nor `SPOOL_BLOCKING_MS`
/// sets one.
pub const DEFAULT_BLOCKING_THRESHOLD: Duration = Duration::from_millis(100);

/// How many distinct spawn sites the once-per-site table remembers.
const REPORTED_SITES: usize = 512;

/// The threshold of a runtime: `configured`, or else `SPOOL_BLOCKING_MS`,
/// or else [`DEFAULT_BLOCKING_THRESHOLD`]. Zero turns the watchdog off.
/// A malformed variable is an `InvalidInput` error naming it.
pub(crate) fn threshold(configured: Option<Duration>) -> io::Result<Duration> {
    if let Some(threshold) = configured {
        return Ok(threshold);
    }
    let value = std::env::var_os(ENV);
    let text = value.as_ref().map(|v| v.to_string_lossy());
    parse_threshold(text.as_deref())
        .map(|ms| ms.unwrap_or(DEFAULT_BLOCKING_THRESHOLD))
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))
}

/// Parses a `SPOOL_BLOCKING_MS` value: `None` when unset or empty.
fn parse_threshold(value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(format!(
            "spool: {ENV} must be a whole number of milliseconds (0 turns the blocking \
             watchdog off), got {text:?}; unset it for the default of {} ms",
            DEFAULT_BLOCKING_THRESHOLD.as_millis()
        )),
    }
}

/// What the watchdog and a worker's signal handler share about one worker
/// (see "Design" above). Padded so the per-resume store shares its cache
/// line with nothing the worker's other fields or neighbours write.
#[repr(align(128))]
pub(crate) struct Slot {
    /// Resumes begun by the worker; written only by the worker (a plain
    /// load and store), read by the watchdog and the handler. Zero until
    /// the first resume.
    resumes: AtomicU64,
    /// The resume the watchdog asks the handler to report, or zero.
    flagged: AtomicU64,
    /// How long that resume had run when the watchdog flagged it.
    ran_for_ms: AtomicU64,
    /// The worker's index in its runtime.
    worker: usize,
}

impl Slot {
    pub(crate) fn new(worker: usize) -> Slot {
        Slot {
            resumes: AtomicU64::new(0),
            flagged: AtomicU64::new(0),
            ran_for_ms: AtomicU64::new(0),
            worker,
        }
    }

    /// Called by the worker at the start of every resume, before it
    /// publishes the running thread with `sys::set_running`.
    #[inline(always)]
    pub(crate) fn note_resume(&self) {
        // Only this worker writes the counter, so a load and a store is an
        // increment; Relaxed, since the watchdog only compares values.
        let next = self.resumes.load(Ordering::Relaxed).wrapping_add(1);
        self.resumes.store(next, Ordering::Relaxed);
        // Keeps the store before `set_running`'s for this thread's signal
        // handler (see "Ordering" above). No instruction is emitted.
        compiler_fence(std::sync::atomic::Ordering::Release);
    }

    /// The watchdog asks the worker's signal handler to report resume
    /// `resume`, which has run for `ran_for_ms`.
    fn flag(&self, resume: u64, ran_for_ms: u64) {
        self.ran_for_ms.store(ran_for_ms, Ordering::Relaxed);
        // Release: the handler that acquires the flag reads `ran_for_ms`.
        self.flagged.store(resume, Ordering::Release);
    }

    /// The signal handler takes the watchdog's request, on the worker's
    /// own OS thread.
    fn take_request(&self) -> Request {
        let flagged = self.flagged.swap(0, Ordering::Acquire);
        if flagged == 0 {
            Request::None
        } else if self.resumes.load(Ordering::Relaxed) != flagged {
            // The stuck resume ended before the signal arrived.
            Request::Stale
        } else {
            Request::Report {
                ran_for_ms: self.ran_for_ms.load(Ordering::Relaxed),
            }
        }
    }
}

/// What the signal handler finds in its worker's slot.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// No request: the signal was not the watchdog's.
    None,
    /// A request for a resume that has ended.
    Stale,
    /// Report the running resume, which ran this long when flagged.
    Report { ran_for_ms: u64 },
}

/// One watched worker.
struct Watched {
    slot: &'static Slot,
    sleeping: &'static AtomicBool,
    thread: OsThread,
    threshold: Duration,
    /// The counter value last seen, and the first sample that saw it (or
    /// the last one that saw the worker sleeping).
    seen: u64,
    since: Instant,
    /// The last resume flagged, so each stuck resume is signalled once.
    flagged: u64,
}

// SAFETY: `OsThread` is a `pthread_t`, an opaque id that any thread may
// pass to `pthread_kill`; the references are to `Sync` atomics.
unsafe impl Send for Watched {}

/// The watched workers. A worker is removed before its OS thread exits,
/// and signals are sent only with this lock held (see "Lifetime").
static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// Wakes the watchdog when the first worker registers.
static REGISTERED: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Vec<Watched>> {
    WATCHED.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// This worker's slot, for the signal handler; null on other threads.
    ///
    /// # Invariant
    ///
    /// When non-null it points to a `Slot` inside a leaked `Shared`, so it
    /// is valid for the rest of the process. Const-initialized with no
    /// destructor, so the handler reads it with a plain thread-local load.
    static SLOT: Cell<*const Slot> = const { Cell::new(ptr::null()) };
}

/// A worker's registration with the watchdog; deregisters on drop.
pub(crate) struct Registration {
    slot: &'static Slot,
}

/// Registers the calling worker OS thread, if `threshold` is not zero,
/// starting the watchdog on first use.
pub(crate) fn watch(
    slot: &'static Slot,
    sleeping: &'static AtomicBool,
    threshold: Duration,
) -> Option<Registration> {
    if threshold.is_zero() {
        return None;
    }
    start();
    SLOT.set(slot);
    let mut watched = lock();
    watched.push(Watched {
        slot,
        sleeping,
        thread: sys::current_os_thread(),
        threshold,
        seen: slot.resumes.load(Ordering::Relaxed),
        since: Instant::now(),
        flagged: 0,
    });
    drop(watched);
    REGISTERED.notify_one();
    Some(Registration { slot })
}

impl Drop for Registration {
    fn drop(&mut self) {
        // After this, the watchdog never signals this thread again.
        lock().retain(|w| !ptr::eq(w.slot, self.slot));
        SLOT.set(ptr::null());
    }
}

/// Installs the signal handler and starts the watchdog thread, once.
fn start() {
    static START: Once = Once::new();
    START.call_once(|| {
        sys::install_watchdog_handler(report);
        let started = std::thread::Builder::new()
            .name("spool-watchdog".into())
            .spawn(run);
        if let Err(e) = started {
            eprintln!(
                "spool: cannot start the blocking watchdog thread ({e}); green threads that \
                 block their worker will not be reported"
            );
        }
    });
}

/// The watchdog thread's loop.
fn run() {
    let mut watched = lock();
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

/// Looks at one worker; flags and signals it if one resume has run for its
/// threshold. Called with `WATCHED` locked.
fn sample(worker: &mut Watched, now: Instant) {
    let resumes = worker.slot.resumes.load(Ordering::Relaxed);
    if worker.sleeping.load(Ordering::Relaxed) || resumes != worker.seen {
        worker.seen = resumes;
        worker.since = now;
        return;
    }
    let ran = now.saturating_duration_since(worker.since);
    if resumes == 0 || ran < worker.threshold || worker.flagged == resumes {
        return;
    }
    worker.flagged = resumes;
    let ms = u64::try_from(ran.as_millis()).unwrap_or(u64::MAX);
    worker.slot.flag(resumes, ms);
    // SAFETY: the worker is registered and we hold `WATCHED`, which it
    // takes to deregister before its OS thread exits: the thread is alive.
    let _ = unsafe { sys::signal_thread(worker.thread) };
}

/// The handler's part, on the signalled OS thread: `true` if the signal
/// was the watchdog's. Async-signal-safe (see "Design").
fn report(running: Option<&RunningStack>) -> bool {
    let slot = SLOT.get();
    if slot.is_null() {
        return false;
    }
    // SAFETY: SLOT's invariant: a non-null slot lives for the process.
    let slot = unsafe { &*slot };
    let ran_for_ms = match slot.take_request() {
        Request::None => return false,
        Request::Stale => return true,
        Request::Report { ran_for_ms } => ran_for_ms,
    };
    let Some(running) = running else {
        return true;
    };
    if !first_report(running.site) {
        return true;
    }
    let ran_for = Duration::from_millis(ran_for_ms);
    let mut line = LineBuffer::new();
    let _ = write_message(&mut line, running, ran_for, slot.worker);
    sys::write_stderr(line.as_bytes());
    true
}

/// Spawn sites already reported (their addresses; 1 for "unknown").
static REPORTED: [AtomicUsize; REPORTED_SITES] = [const { AtomicUsize::new(0) }; REPORTED_SITES];

/// Records `site` as reported; `false` if it was already. Lock-free (an
/// open-addressing set filled with compare-exchange), so the signal
/// handler may call it. A full table reports every site.
fn first_report(site: Option<&'static Location<'static>>) -> bool {
    let key = site.map_or(1, |site| ptr::from_ref(site) as usize);
    let start = (key >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) % REPORTED_SITES;
    for probe in 0..REPORTED_SITES {
        let entry = &REPORTED[(start + probe) % REPORTED_SITES];
        // Relaxed: an entry publishes only its own value (an address
        // compared, never followed), and each entry's modification order
        // alone decides who inserted a key first.
        match entry.compare_exchange(
            0,
            key,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(existing) if existing == key => return false,
            Err(_) => {}
        }
    }
    true
}

/// The report line (see the top of this file).
fn write_message(
    out: &mut impl fmt::Write,
    running: &RunningStack,
    ran_for: Duration,
    worker: usize,
) -> fmt::Result {
    let name = running.name.as_deref().unwrap_or("<unnamed>");
    write!(out, "spool: thread '{}' ({}) has run for ", name, running.id)?;
    let ms = ran_for.as_millis();
    if ms < 1000 {
        write!(out, "{ms} ms")?;
    } else {
        write!(out, "{}.{} s", ms / 1000, ms % 1000 / 100)?;
    }
    write!(
        out,
        " on worker {worker} without reaching a blocking point"
    )?;
    if let Some(site) = running.site {
        write!(out, " (spawned at {}:{})", site.file(), site.line())?;
    }
    out.write_str(
        "; a blocking std call or a long computation stalls every green thread on this \
         worker \u{2014} use spool's equivalent or spool::unblock\n",
    )
}

/// A fixed buffer that `core::fmt` writes into without allocating; what
/// does not fit is cut off, keeping the final newline.
struct LineBuffer {
    bytes: [u8; 1024],
    len: usize,
}

impl LineBuffer {
    fn new() -> LineBuffer {
        LineBuffer {
            bytes: [0; 1024],
            len: 0,
        }
    }

    fn as_bytes(&mut self) -> &[u8] {
        if self.len == self.bytes.len() {
            self.bytes[self.len - 1] = b'\n';
        }
        &self.bytes[..self.len]
    }
}

impl fmt::Write for LineBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = text.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&text.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn threshold_values() {
        assert_eq!(parse_threshold(None), Ok(None));
        assert_eq!(parse_threshold(Some(" ")), Ok(None));
        assert_eq!(parse_threshold(Some("0")), Ok(Some(Duration::ZERO)));
        assert_eq!(
            parse_threshold(Some(" 250 ")),
            Ok(Some(Duration::from_millis(250)))
        );
        for bad in ["abc", "-1", "1.5", "100ms"] {
            let message = parse_threshold(Some(bad)).unwrap_err();
            assert!(message.contains(ENV) && message.contains(bad), "{message}");
        }
    }

    #[test]
    fn message_layout() {
        static SITE: &Location<'static> = Location::caller();
        let running = RunningStack {
            guard_start: 0,
            guard_end: 0,
            stack_size: 0,
            name: Some("conn-17".into()),
            id: 42,
            site: Some(SITE),
        };
        let mut line = LineBuffer::new();
        write_message(&mut line, &running, Duration::from_millis(2345), 1).unwrap();
        let text = std::str::from_utf8(line.as_bytes()).unwrap().to_owned();
        let expected = format!(
            "spool: thread 'conn-17' (42) has run for 2.3 s on worker 1 without reaching a \
             blocking point (spawned at {}:{}); a blocking std call or a long computation \
             stalls every green thread on this worker \u{2014} use spool's equivalent or \
             spool::unblock\n",
            SITE.file(),
            SITE.line()
        );
        assert_eq!(text, expected);

        let mut line = LineBuffer::new();
        let unnamed = RunningStack {
            name: None,
            site: None,
            ..running
        };
        write_message(&mut line, &unnamed, Duration::from_millis(120), 0).unwrap();
        let text = std::str::from_utf8(line.as_bytes()).unwrap();
        assert!(text.starts_with("spool: thread '<unnamed>' (42) has run for 120 ms on worker 0 without reaching a blocking point;"), "{text}");
    }

    #[test]
    fn long_names_are_cut_and_the_line_ends() {
        let running = RunningStack {
            guard_start: 0,
            guard_end: 0,
            stack_size: 0,
            name: Some("x".repeat(5000).into()),
            id: 1,
            site: None,
        };
        let mut line = LineBuffer::new();
        write_message(&mut line, &running, Duration::from_millis(100), 0).unwrap();
        let bytes = line.as_bytes();
        assert_eq!(bytes.len(), 1024);
        assert_eq!(bytes[1023], b'\n');
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

    /// The watchdog flags whatever resume it sees while the worker resumes
    /// twice, its signal handler looking at the slot after each resume
    /// begins (a signal can arrive at any point; these are the points
    /// where the answer can differ). A report always carries the time the
    /// watchdog stored with the flag, names the resume running when it is
    /// handled, and a request is handled at most once.
    #[test]
    fn loom_a_request_is_reported_once_with_its_time() {
        loom::model(|| {
            let slot = Arc::new(Slot::new(0));
            let watchdog = {
                let slot = slot.clone();
                thread::spawn(move || {
                    let resume = slot.resumes.load(Ordering::Relaxed);
                    if resume != 0 {
                        slot.flag(resume, 7);
                    }
                    resume
                })
            };
            let mut reports = Vec::new();
            for resume in 1..=2u64 {
                slot.note_resume();
                match slot.take_request() {
                    Request::Report { ran_for_ms } => reports.push((resume, ran_for_ms)),
                    Request::None | Request::Stale => {}
                }
            }
            let flagged = watchdog.join().unwrap();
            let late = slot.take_request();
            assert!(reports.len() <= 1, "{reports:?}");
            if let Some(&(resume, ran_for_ms)) = reports.first() {
                assert_eq!(ran_for_ms, 7, "a report without the watchdog's time");
                assert_eq!(resume, flagged, "a report named another resume");
                assert_eq!(late, Request::None, "a request handled twice");
            }
        });
    }
}
