//! Helpers shared by the behaviour tests: a per-test watchdog, child
//! processes that re-execute the test binary, and /proc readers.
//!
//! Each test binary uses a different subset, hence the `dead_code` allow.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

// ---------------------------------------------------------------------------
// A quiet test process
//
// A passing run prints nothing, so that a real failure is not drowned.
//
// Panic messages: libtest captures what a test prints, std's panic message
// included, and shows it only if the test fails; the capture follows the OS
// threads a test starts, so it covers the workers of a runtime the test
// builds. spool hands a green thread's panic to a hook the program
// installed before its first runtime started, and otherwise prints its own
// message straight to stderr, past any capture (see "Panics" in the
// `spool::porting` guide). The harness may install a hook of its own; the
// initialiser below makes sure there is one, whatever the harness does.
//
// Watchdog reports: debug builds of tests that spawn 10,000 threads in a
// loop, or spin on purpose, run long enough between switches for the
// blocking watchdog's report (100 ms). Unless the variable is set, test
// processes turn it off (`SPOOL_BLOCKING_MS=0`); the watchdog's own tests
// set it or a builder threshold in child processes, and `run_child` does
// not pass the suite's value on.
//
// Child processes (`run_child`) keep spool's own message and defaults,
// which some tests check.
// ---------------------------------------------------------------------------

/// Runs before `main` (an ELF initialiser), so before any test can start a
/// runtime or another thread.
#[used]
#[link_section = ".init_array"]
static QUIET_TEST_PROCESS: extern "C" fn() = quiet_test_process;

const BLOCKING_ENV: &str = "SPOOL_BLOCKING_MS";

extern "C" fn quiet_test_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if std::env::var_os(BLOCKING_ENV).is_none() {
        // Before `main`: no other thread exists to read the environment.
        std::env::set_var(BLOCKING_ENV, "0");
        std::env::set_var(SUITE_SET_BLOCKING_ENV, "1");
    }
    let std_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| std_hook(info)));
}

/// Set when `quiet_test_process` chose `SPOOL_BLOCKING_MS`, so that
/// `run_child` passes on only a value the user set.
const SUITE_SET_BLOCKING_ENV: &str = "SPOOL_SUITE_SET_BLOCKING_MS";

/// Aborts the whole test process, naming the test, if it is not dropped
/// within `limit`: a hung park/unpark or join otherwise hangs `cargo test`
/// forever without saying where.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub fn new(test: &'static str, limit: Duration) -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("watchdog {test}"))
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                    // Straight to fd 2: `eprintln!` here would go to the
                    // test harness's capture (spawned threads inherit it),
                    // which the abort throws away unprinted.
                    let _ = writeln!(
                        std::io::stderr(),
                        "\nwatchdog: test `{test}` did not finish within {limit:?}; aborting"
                    );
                    std::process::abort();
                }
            })
            .expect("spawn watchdog OS thread");
        Watchdog { done: Some(done) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Dropping the sender (rather than sending) also ends the watchdog
        // when the test panics and unwinds through this guard.
        self.done.take();
    }
}

/// Environment variable naming the child scenario the process should run.
pub const CHILD_ENV: &str = "SPOOL_SUITE_CHILD";

/// Whether this process was started by [`run_child`] to run `test`.
///
/// Child scenarios are ordinary `#[test]`s that return at once unless this
/// is true, so in the parent they do nothing.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test)
}

/// The full name libtest knows `test` by, given the file that defines it:
/// in the `tests/suite` binary each file is a module (`overflow.rs` →
/// `overflow::child_x`, `cancel/children.rs` → `cancel::children::…`);
/// elsewhere a test's name is its own.
pub fn test_path(file: &str, test: &str) -> String {
    let file = file.replace('\\', "/");
    let Some((_, module)) = file.split_once("tests/suite/") else {
        return test.to_string();
    };
    let module = module.trim_end_matches(".rs").trim_end_matches("/mod");
    format!("{}::{test}", module.replace('/', "::"))
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutput {
    /// The signal that killed the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }
}

/// Re-executes the current test binary so that it runs exactly the test
/// `test` (its name, e.g. `child_overflow`, in the file that calls this;
/// see `test_path`) with
/// [`CHILD_ENV`] set to `test` and the extra environment `env`; kills it
/// and panics if it runs longer than 60 s.
#[track_caller]
pub fn run_child(test: &str, env: &[(&str, &str)]) -> ChildOutput {
    let path = test_path(std::panic::Location::caller().file(), test);
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = Command::new(exe);
    command
        .args([path.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env_remove("SPOOL_WORKERS")
        .env_remove(SUITE_SET_BLOCKING_ENV)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os(SUITE_SET_BLOCKING_ENV).is_some() {
        command.env_remove(BLOCKING_ENV);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn child test process");
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(status) => status.expect("wait for child"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not
            // been reaped (the waiter is still blocked on it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("child `{test}` did not finish within 60 s; killed it");
        }
    };
    ChildOutput {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Names (`comm`) of this process's OS threads.
pub fn os_thread_names() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .flatten()
    {
        // A thread may exit between read_dir and the read: skip it.
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            names.push(comm.trim_end().to_string());
        }
    }
    names
}

/// How many of this process's OS threads are spool workers.
pub fn spool_worker_count() -> usize {
    os_thread_names()
        .iter()
        .filter(|name| name.starts_with("spool-worker"))
        .count()
}

/// A `/proc/self/status` field in KiB (e.g. `VmRSS`).
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"));
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad {field} line {line:?}: {e}"))
}

/// Number of memory maps of this process (lines of `/proc/self/maps`).
pub fn maps_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

/// Uses at least `target` bytes of stack below `top` (an address near the
/// thread's stack top) and returns how much it used.
#[inline(never)]
pub fn use_stack(top: usize, target: usize) -> usize {
    let frame = std::hint::black_box([1u8; 1024]);
    let here = std::hint::black_box(frame.as_ptr()) as usize;
    let used = top.saturating_sub(here);
    if used >= target {
        return used;
    }
    // Not a tail call: the frame stays live across the recursion.
    use_stack(top, target) + usize::from(std::hint::black_box(frame[17]) - 1)
}

/// Runs `use_stack` from the top of the current thread's stack.
pub fn use_stack_from_here(target: usize) -> usize {
    let marker = 0u8;
    let top = std::hint::black_box(&marker) as *const u8 as usize;
    use_stack(top, target)
}

/// Instantiates each test in `one_worker`, `two_workers` and `os_thread`
/// (the suite-over-configurations pattern of tokio's `rt_common.rs`): the
/// body runs as a green thread on a fresh one-worker runtime, on a fresh
/// two-worker runtime, and directly on the test's plain OS thread (spawns
/// then go to the global runtime). The including file provides `Runtime`
/// and a `LIMIT: Duration` for the watchdog.
#[allow(unused_macros)]
macro_rules! rt_test {
    ($($(#[$attr:meta])* fn $name:ident() $body:block)*) => {
        mod one_worker {
            use super::*;
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    let _watchdog = common::Watchdog::new(concat!("one_worker::", stringify!($name)), LIMIT);
                    let rt = Runtime::builder().workers(1).build().unwrap();
                    rt.run(|| $body)
                }
            )*
        }

        mod two_workers {
            use super::*;
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    let _watchdog = common::Watchdog::new(concat!("two_workers::", stringify!($name)), LIMIT);
                    let rt = Runtime::builder().workers(2).build().unwrap();
                    rt.run(|| $body)
                }
            )*
        }

        mod os_thread {
            use super::*;
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    let _watchdog = common::Watchdog::new(concat!("os_thread::", stringify!($name)), LIMIT);
                    $body
                }
            )*
        }
    };
}

/// The text of a panic payload (a `&str` or `String`), or a placeholder.
pub fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string payload>"
    }
}
