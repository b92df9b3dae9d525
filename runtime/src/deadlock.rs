//! Deadlock: every thread asleep, and nothing left that could wake one.
//!
//! Go reports "all goroutines are asleep - deadlock!" when every goroutine
//! is blocked and nothing can wake them. spool reports the same state: a
//! *global deadlock* holds when, at one moment,
//!
//! 1. every worker of every runtime sleeps with nothing queued (no green
//!    thread can run), and no worker has a timer pending (no sleep or
//!    timeout will end);
//! 2. no socket is registered with any worker's reactor (no readiness
//!    will arrive: a listener waiting for connections is not deadlocked);
//! 3. no job is out on spool's blocking pool (`unblock`, name lookups:
//!    [`external_work`]);
//! 4. every OS thread of the process is accounted for as asleep: each is a
//!    worker, a thread waiting inside a spool call with no deadline
//!    (`OsWaiter::wait`, `park`), or one of spool's own idle helper threads
//!    ([`helper_thread`]) — counted against `/proc/self/task`. An OS
//!    thread running code of its own might still unpark someone, so while
//!    one exists nothing is reported (libtest's harness thread is one:
//!    deadlock tests run in a child process);
//! 5. some thread is actually waiting (a green thread, or an OS thread in
//!    a spool call).
//!
//! The check costs nothing on the scheduling paths: it runs only when the
//! last worker of a runtime goes to sleep (and an OS thread that starts a
//! wait while every worker sleeps wakes one to run it again:
//! `recheck_if_all_asleep`), reading counters that are kept
//! off the hot paths (OS threads entering and leaving spool waits, pool
//! jobs, registered sockets, workers' timers published as they fall
//! asleep). Because those counters are read one after another, not at one
//! instant, a state that *looks* quiet is confirmed: the last worker sleeps
//! for [`CONFIRM`] instead of indefinitely, and reports only if no worker
//! of any runtime woke meanwhile (`sleep_epoch`) and the state still holds.
//! The whole of [`CONFIRM`]: a stale wake (an eventfd count left by a
//! waker that found the worker still running) ends `epoll_wait` at once
//! without clearing the worker's `sleeping` flag, and the worker sleeps on
//! until a real wake or the end of the period. A state can look quiet for
//! an instant without being stuck: an OS thread whose wake token is set
//! but whose kernel thread has not run yet still counts as waiting; with
//! the confirmation cut short by a stale wake, that instant was reported
//! (seen as one false report in about forty runs of a `main` that
//! ping-pongs with a green thread under load, in a run that took 153 ms,
//! shorter than the 500 ms a confirmation should take).
//!
//! What it does then is the runtime's [`DeadlockMode`]: print
//! `spool: all threads are parked and nothing can wake them — deadlock`
//! followed by a dump of every green thread (the formatter is `spool`'s,
//! installed with [`set_reporter`]), exit the process with status 2 as Go
//! does, or nothing. The report is printed once per quiet period.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::scheduler::Shared;

/// How long a quiet state must last, with no worker waking, before it is
/// reported.
pub const CONFIRM: Duration = Duration::from_millis(500);

/// What a runtime does on a global deadlock.
///
/// ```
/// use spool::debug::DeadlockMode;
///
/// // Exit with status 2 on a global deadlock, as Go does (or set
/// // SPOOL_DEADLOCK=fatal).
/// let rt = spool::Runtime::builder().deadlock(DeadlockMode::Fatal).build().unwrap();
/// assert_eq!(rt.run(|| 1), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeadlockMode {
    /// Print the report and the dump to stderr, and keep waiting (the
    /// default).
    #[default]
    Report,
    /// Print the report and the dump, then exit the process with status 2,
    /// as Go's runtime does.
    Fatal,
    /// Do nothing.
    Off,
}

impl DeadlockMode {
    fn to_u8(self) -> u8 {
        match self {
            DeadlockMode::Report => 0,
            DeadlockMode::Fatal => 1,
            DeadlockMode::Off => 2,
        }
    }

    pub(crate) fn from_u8(v: u8) -> DeadlockMode {
        match v {
            1 => DeadlockMode::Fatal,
            2 => DeadlockMode::Off,
            _ => DeadlockMode::Report,
        }
    }
}

/// A runtime's mode, as stored in its `Shared`.
pub(crate) struct ModeCell(AtomicU8);

impl ModeCell {
    pub(crate) fn new(mode: DeadlockMode) -> ModeCell {
        ModeCell(AtomicU8::new(mode.to_u8()))
    }

    pub(crate) fn get(&self) -> DeadlockMode {
        DeadlockMode::from_u8(self.0.load(Ordering::Relaxed))
    }
}

/// OS threads inside a spool wait right now.
static OS_WAITING: AtomicUsize = AtomicUsize::new(0);
/// Jobs out on spool's blocking pool.
static EXTERNAL: AtomicUsize = AtomicUsize::new(0);
/// spool's own OS threads that are not workers (idle pool threads, the
/// watchdog, the monitor).
static HELPERS: AtomicUsize = AtomicUsize::new(0);
/// What the last report saw (green threads, OS threads waiting, workers),
/// packed; a quiet state that looks the same is not reported again (the
/// report's own dump wakes every worker, which would otherwise start a
/// new quiet period).
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// While alive, the calling OS thread counts as waiting inside spool.
pub(crate) struct OsWaiting(());

impl OsWaiting {
    pub(crate) fn begin() -> OsWaiting {
        os_wait_begin();
        OsWaiting(())
    }
}

/// The calling OS thread starts a wait inside spool with no deadline: it
/// counts as asleep until [`os_wait_end`] (called once, by it or by its
/// waker: "Counted waits" in `os_waiter.rs`).
pub(crate) fn os_wait_begin() {
    OS_WAITING.fetch_add(1, Ordering::SeqCst);
    recheck_if_all_asleep();
}

/// Ends one [`os_wait_begin`].
pub(crate) fn os_wait_end() {
    OS_WAITING.fetch_sub(1, Ordering::SeqCst);
}

/// The check runs when the last worker of a runtime falls asleep. An OS
/// thread that starts waiting *after* that (say `main`, which joined a
/// green thread, did some work of its own while the workers fell asleep,
/// and then waits on a channel nobody will send on) completes a deadlock
/// that no worker would check again: so for every runtime whose workers
/// all sleep, wake one. It finds nothing to run and falls asleep again as
/// the last, and its check now counts this thread (the `SeqCst` increment
/// above comes before its `SeqCst` loads). A worker that was falling
/// asleep meanwhile makes the same check itself. Costs a lock and a look
/// at each runtime per OS-thread wait without deadline, and a worker
/// wakeup only when every worker sleeps.
fn recheck_if_all_asleep() {
    for shared in crate::scheduler::all_runtimes() {
        if shared.deadlock.get() != DeadlockMode::Off
            && shared.num_sleeping.load(Ordering::SeqCst) == shared.workers.len()
        {
            shared.notify_worker(0);
        }
    }
}

impl Drop for OsWaiting {
    fn drop(&mut self) {
        os_wait_end();
    }
}

/// While alive, a job is out on spool's blocking pool (or another source
/// of wakeups the engine cannot see): no deadlock is reported.
#[must_use = "the work counts as outstanding only while the guard lives"]
pub struct ExternalWork(());

/// Marks work outside the workers (a blocking-pool job) as outstanding
/// until the returned guard is dropped.
pub fn external_work() -> ExternalWork {
    EXTERNAL.fetch_add(1, Ordering::SeqCst);
    ExternalWork(())
}

impl Drop for ExternalWork {
    fn drop(&mut self) {
        EXTERNAL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// While alive, the calling OS thread is one of spool's own helper threads
/// (counted as asleep by the deadlock check when it is idle).
#[must_use = "the thread counts as spool's only while the guard lives"]
pub struct HelperThread(());

/// Registers the calling OS thread as one of spool's helpers for as long
/// as the guard lives (a blocking-pool thread, say); the deadlock check
/// then does not take it for user code that might wake someone. A helper
/// busy with a job is covered by [`external_work`].
pub fn helper_thread() -> HelperThread {
    HELPERS.fetch_add(1, Ordering::SeqCst);
    HelperThread(())
}

impl Drop for HelperThread {
    fn drop(&mut self) {
        HELPERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Formats the dump that follows a report (installed by `spool`).
static REPORTER: OnceLock<fn() -> String> = OnceLock::new();

/// Installs the function that formats the thread dump printed after a
/// deadlock report. The first installation wins.
pub fn set_reporter(reporter: fn() -> String) {
    let _ = REPORTER.set(reporter);
}

/// The number of OS threads of this process, from `/proc/self/task`.
fn process_threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// What a quiet state looks like: the sum of the runtimes' sleep epochs
/// (to confirm that no worker woke), and a signature of the state (to not
/// report the same one twice).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quiet {
    epoch: u64,
    signature: u64,
}

/// Whether the whole process looks deadlocked now (see the essay).
fn quiet() -> Option<Quiet> {
    let runtimes = crate::scheduler::all_runtimes();
    let mut workers = 0;
    let mut epoch = 0u64;
    let mut green = 0;
    for shared in &runtimes {
        if !shared.is_quiet() {
            return None;
        }
        workers += shared.workers.len();
        epoch = epoch.wrapping_add(shared.sleep_epoch.load(Ordering::SeqCst));
        green += shared.live_threads();
    }
    if EXTERNAL.load(Ordering::SeqCst) != 0 {
        return None;
    }
    let os_waiting = OS_WAITING.load(Ordering::SeqCst);
    if green == 0 && os_waiting == 0 {
        return None;
    }
    let accounted = workers + os_waiting + HELPERS.load(Ordering::SeqCst);
    if process_threads()? > accounted {
        return None;
    }
    let signature = (green as u64) << 32 ^ (os_waiting as u64) << 16 ^ workers as u64 | 1 << 63;
    Some(Quiet { epoch, signature })
}

/// Called by the last worker of `shared` to fall asleep, with no timer of
/// its own: how long to sleep at most to confirm a deadlock, and what to
/// confirm (`None`: no suspicion, sleep as usual).
pub(crate) fn suspect(shared: &Shared) -> Option<(Duration, Quiet)> {
    if shared.deadlock.get() == DeadlockMode::Off {
        return None;
    }
    let quiet = quiet()?;
    if REPORTED.load(Ordering::Relaxed) == quiet.signature {
        return None;
    }
    Some((CONFIRM, quiet))
}

/// Called by that worker after its confirming sleep, before its own wake
/// counts in the epoch: reports if nothing woke meanwhile and the state is
/// still the same.
pub(crate) fn confirm(shared: &Shared, before: Quiet) {
    if quiet() != Some(before)
        || REPORTED.swap(before.signature, Ordering::SeqCst) == before.signature
    {
        return;
    }
    let mode = shared.deadlock.get();
    let os_waiting = OS_WAITING.load(Ordering::SeqCst);
    let report = move || {
        let dump = REPORTER.get().map(|format| format()).unwrap_or_default();
        let os = match os_waiting {
            0 => String::new(),
            1 => " (and 1 OS thread waiting in a spool call)".to_string(),
            n => format!(" (and {n} OS threads waiting in spool calls)"),
        };
        crate::write_stderr(&format!(
            "spool: all threads are parked and nothing can wake them — deadlock{os}\n{dump}"
        ));
        if mode == DeadlockMode::Fatal {
            std::process::exit(2);
        }
    };
    // Printed from a thread of its own: the dump asks every worker, this
    // one included, for its threads.
    let spawned = std::thread::Builder::new()
        .name("spool-deadlock".into())
        .spawn(move || {
            let _me = helper_thread();
            report()
        });
    if spawned.is_err() {
        crate::write_stderr(
            "spool: all threads are parked and nothing can wake them — deadlock \
             (no thread could be started to print the dump)\n",
        );
    }
}
