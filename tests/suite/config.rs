//! Configuration from the environment: every `SPOOL_*` variable (and
//! `RUST_MIN_STACK`) is read by one parser, a bad value fails the start of
//! a runtime naming the variable, the value and what is accepted, and the
//! default green stack follows `SPOOL_STACK_SIZE` or `RUST_MIN_STACK`.
//!
//! Each case runs in a child process (this binary re-executed to run one
//! `child_*` test) with a clean environment: no `SPOOL_*` variable and no
//! `RUST_MIN_STACK` of the caller's leaks in, only the ones the case sets.

use crate::common;

use std::ffi::OsStr;
use std::hint::black_box;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::panic::catch_unwind;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{is_child, Watchdog, CHILD_ENV};
use spool::thread;

/// What a child process did, as text.
struct Child {
    output: Output,
    stdout: String,
    stderr: String,
}

impl Child {
    fn describe(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}\n--- stderr\n{}",
            self.output.status, self.stdout, self.stderr
        )
    }

    fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.output.status.signal()
    }
}

/// Runs the child test `test` with exactly the spool-related variables
/// `vars` (every `SPOOL_*` and `RUST_MIN_STACK` of this process removed).
fn run(test: &str, vars: &[(&str, &OsStr)]) -> Child {
    let _watchdog = Watchdog::new("config child", Duration::from_secs(120));
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    let path = common::test_path(file!(), test);
    command
        .args([path.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("RUST_MIN_STACK");
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"SPOOL_") {
            command.env_remove(key);
        }
    }
    command.env(CHILD_ENV, test);
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = command.output().expect("run child test process");
    Child {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

fn var<'a>(name: &'a str, value: &'a str) -> (&'a str, &'a OsStr) {
    (name, OsStr::new(value))
}

/// The text of a panic payload.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// ---- bad values -------------------------------------------------------------

/// Prints what a child saw under `label`, between markers (the test
/// harness writes on the same line).
fn report(label: &str, text: &dyn std::fmt::Display) {
    println!("<{label}>{text}</{label}>");
}

/// The first text a child reported under `label`.
fn reported<'a>(stdout: &'a str, label: &str) -> Option<&'a str> {
    let (_, rest) = stdout.split_once(&format!("<{label}>"))?;
    Some(rest.split_once(&format!("</{label}>"))?.0)
}

/// A bad value of each variable, and a piece of what the error must say is
/// accepted.
const BAD_VALUES: &[(&str, &str, &str)] = &[
    ("SPOOL_WORKERS", "zero", "a whole number from 1 to 1024"),
    ("SPOOL_WORKERS", "0", "a whole number from 1 to 1024"),
    ("SPOOL_WORKERS", "", "a whole number from 1 to 1024"),
    ("SPOOL_STACK_SIZE", "big", "a number of bytes"),
    ("SPOOL_STACK_SIZE", "2G", "a number of bytes"),
    ("SPOOL_STACK_SIZE", "-1", "a number of bytes"),
    (
        "SPOOL_STACK_SIZE",
        "99999999999999999999999",
        "at most 1 GiB",
    ),
    ("SPOOL_STACK_SIZE", "1025M", "at most 1 GiB"),
    ("RUST_MIN_STACK", "lots", "a number of bytes"),
    ("RUST_MIN_STACK", "4294967296", "at most 1 GiB"),
    ("SPOOL_STACK_GUARD", "pages", "madvise, mprotect or auto"),
    ("SPOOL_BLOCKING_MS", "1.5", "a whole number of milliseconds"),
    ("SPOOL_DEADLOCK", "sometimes", "report, fatal or off"),
    (
        "SPOOL_DUMP_SIGNAL",
        "SIGKILL",
        "SIGQUIT, SIGUSR1 or SIGUSR2",
    ),
    ("SPOOL_MONITOR", "spool.sock", "an IP address and port"),
    ("SPOOL_MONITOR_ALLOW_REMOTE", "perhaps", "1, true or yes"),
    (
        "SPOOL_UNBLOCK_THREADS",
        "0",
        "a whole number from 1 to 65536",
    ),
    (
        "SPOOL_UNBLOCK_THREADS",
        "many",
        "a whole number from 1 to 65536",
    ),
];

#[test]
fn a_bad_value_of_any_variable_fails_the_start_naming_it() {
    for &(name, value, accepted) in BAD_VALUES {
        let child = run("child_start_fails", &[var(name, value)]);
        let expected = format!("spool: {name}={value:?} is not valid: expected ");
        assert!(
            child.output.status.success(),
            "{name}={value:?}: the child failed:\n{}",
            child.describe()
        );
        for line in ["build", "run", "spawn"] {
            let found = reported(&child.stdout, line).unwrap_or_else(|| {
                panic!("{name}={value:?}: no {line} line:\n{}", child.describe())
            });
            assert!(
                found.contains(&expected) && found.contains(accepted),
                "{name}={value:?}: the {line} error should contain {expected:?} and {accepted:?}, \
                 got {found:?}"
            );
        }
    }
}

#[test]
fn child_start_fails() {
    if !is_child("child_start_fails") {
        return;
    }
    std::panic::set_hook(Box::new(|_| {}));
    // `Builder::build` and `Runtime::new` return the error.
    let err = spool::Runtime::builder()
        .build()
        .expect_err("Builder::build started with a bad variable");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    report("build", &err);
    let err = spool::Runtime::new().expect_err("Runtime::new started with a bad variable");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // The global runtime starts implicitly, where there is no `Result`: it
    // panics with the same error, every time it is asked to start.
    let payload = catch_unwind(|| spool::run(|| 1)).expect_err("spool::run worked");
    report("run", &payload_text(&*payload));
    for _ in 0..2 {
        let payload = catch_unwind(|| thread::spawn(|| 1)).expect_err("thread::spawn worked");
        report("spawn", &payload_text(&*payload));
    }
    let err = thread::Builder::new()
        .spawn(|| 1)
        .expect_err("Builder::spawn worked");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn a_value_that_is_not_utf8_is_an_error_naming_the_variable() {
    let value = OsStr::from_bytes(b"4\xff");
    let child = run("child_start_fails", &[("SPOOL_WORKERS", value)]);
    assert!(child.output.status.success(), "{}", child.describe());
    let build = reported(&child.stdout, "build").unwrap_or_default();
    assert!(
        build.starts_with("spool: SPOOL_WORKERS=\"4\\xFF\" is not valid: expected "),
        "{}",
        child.describe()
    );
}

#[test]
fn several_bad_values_are_all_named() {
    let child = run(
        "child_start_fails",
        &[var("SPOOL_WORKERS", "x"), var("SPOOL_BLOCKING_MS", "y")],
    );
    assert!(child.output.status.success(), "{}", child.describe());
    let build = reported(&child.stdout, "build").unwrap_or_default();
    assert!(
        build.contains("SPOOL_WORKERS=\"x\"") && build.contains("SPOOL_BLOCKING_MS=\"y\""),
        "{}",
        child.describe()
    );
}

#[test]
fn bad_console_and_engine_values_are_named_together() {
    let child = run(
        "child_start_fails",
        &[
            var("SPOOL_MONITOR", "nowhere"),
            var("SPOOL_DEADLOCK", "never"),
        ],
    );
    assert!(child.output.status.success(), "{}", child.describe());
    for line in ["build", "run", "spawn"] {
        let text = reported(&child.stdout, line).unwrap_or_default();
        assert!(
            text.contains("SPOOL_MONITOR=\"nowhere\"") && text.contains("SPOOL_DEADLOCK=\"never\""),
            "{line}: {}",
            child.describe()
        );
    }
}

#[test]
fn good_values_start() {
    let child = run(
        "child_starts",
        &[
            var("SPOOL_WORKERS", " 2 "),
            var("SPOOL_STACK_SIZE", "512K"),
            var("RUST_MIN_STACK", "1048576"),
            var("SPOOL_STACK_GUARD", "mprotect"),
            var("SPOOL_BLOCKING_MS", "0"),
            var("SPOOL_DEADLOCK", "off"),
            var("SPOOL_DUMP_SIGNAL", "usr2"),
            var("SPOOL_MONITOR_ALLOW_REMOTE", "no"),
            var("SPOOL_UNBLOCK_THREADS", "8"),
        ],
    );
    assert!(child.output.status.success(), "{}", child.describe());
    assert!(child.stderr.is_empty(), "{}", child.describe());
}

#[test]
fn spool_stack_size_leaves_rust_min_stack_unread() {
    // A RUST_MIN_STACK meant for std's threads (here too big for a green
    // thread) does not stop spool when SPOOL_STACK_SIZE decides.
    let child = run(
        "child_starts",
        &[
            var("SPOOL_WORKERS", "2"),
            var("SPOOL_STACK_SIZE", "1M"),
            var("RUST_MIN_STACK", "4294967296"),
        ],
    );
    assert!(child.output.status.success(), "{}", child.describe());
}

#[test]
fn child_starts() {
    if !is_child("child_starts") {
        return;
    }
    let rt = spool::Runtime::new().unwrap();
    assert_eq!(rt.workers(), 2);
    assert_eq!(rt.run(|| spool::unblock(|| 5)), 5);
    assert_eq!(spool::run(|| 6), 6);
}

// ---- likely typos -----------------------------------------------------------

#[test]
fn a_likely_typo_is_mentioned_once() {
    let child = run("child_two_runtimes", &[var("SPOOL_WORKER", "2")]);
    assert!(child.output.status.success(), "{}", child.describe());
    let mentions: Vec<_> = child
        .stderr
        .lines()
        .filter(|l| l.contains("SPOOL_WORKER"))
        .collect();
    assert_eq!(mentions.len(), 1, "{}", child.describe());
    assert!(
        mentions[0].contains("SPOOL_WORKERS"),
        "the mention does not suggest the right name: {}",
        child.describe()
    );
}

#[test]
fn an_unrelated_spool_variable_is_not_mentioned() {
    // The application may use the prefix for its own settings (this suite
    // does: the child marker is one).
    let child = run("child_two_runtimes", &[var("SPOOL_APP_MODE", "fast")]);
    assert!(child.output.status.success(), "{}", child.describe());
    assert!(child.stderr.is_empty(), "{}", child.describe());
}

#[test]
fn child_two_runtimes() {
    if !is_child("child_two_runtimes") {
        return;
    }
    for _ in 0..2 {
        let rt = spool::Runtime::builder().workers(1).build().unwrap();
        assert_eq!(rt.run(|| 1), 1);
    }
    assert_eq!(spool::run(|| 2), 2);
}

// ---- the default stack size ---------------------------------------------------

/// Recursion that needs a few hundred KiB of stack: more than the 256 KiB
/// default, less than 4 MiB (about 1 KiB a frame, twice that unoptimised).
#[inline(never)]
fn dig(depth: u64) -> u64 {
    let frame = black_box([depth; 128]);
    if depth == 0 {
        return frame[3];
    }
    dig(frame[1] - 1).wrapping_add(frame[5])
}

const DEPTH: u64 = 700;

#[test]
fn child_deep_recursion() {
    if !is_child("child_deep_recursion") {
        return;
    }
    let sum = thread::spawn(|| dig(DEPTH)).join().unwrap();
    assert_eq!(sum, black_box(dig(DEPTH)));
    println!("recursed");
}

#[track_caller]
fn assert_recursed(child: &Child) {
    assert!(
        child.output.status.success() && child.stdout.contains("recursed"),
        "{}",
        child.describe()
    );
}

#[track_caller]
fn assert_overflowed(child: &Child, kib: usize) {
    assert_eq!(child.signal(), Some(libc::SIGABRT), "{}", child.describe());
    let line = format!("thread '<unnamed>' has overflowed its stack ({kib} KiB)");
    assert!(child.stderr.contains(&line), "{}", child.describe());
}

#[test]
fn deep_recursion_overflows_the_default_stack_and_the_message_names_the_fix() {
    let child = run("child_deep_recursion", &[]);
    assert_overflowed(&child, 256);
    for fix in [
        "spool::thread::Builder::stack_size",
        "SPOOL_STACK_SIZE",
        "RUST_MIN_STACK",
    ] {
        assert!(
            child.stderr.contains(fix),
            "the overflow message does not name {fix}:\n{}",
            child.describe()
        );
    }
}

#[test]
fn rust_min_stack_sets_the_default_stack() {
    assert_recursed(&run(
        "child_deep_recursion",
        &[var("RUST_MIN_STACK", "4194304")],
    ));
}

#[test]
fn spool_stack_size_sets_the_default_stack() {
    assert_recursed(&run(
        "child_deep_recursion",
        &[var("SPOOL_STACK_SIZE", "4M")],
    ));
    assert_recursed(&run(
        "child_deep_recursion",
        &[var("SPOOL_STACK_SIZE", "4194304")],
    ));
}

#[test]
fn spool_stack_size_wins_over_rust_min_stack() {
    let child = run(
        "child_deep_recursion",
        &[
            var("SPOOL_STACK_SIZE", "256K"),
            var("RUST_MIN_STACK", "4194304"),
        ],
    );
    assert_overflowed(&child, 256);
}

#[test]
fn builder_stack_size_wins_over_the_variables() {
    let child = run(
        "child_builder_stack",
        &[
            var("SPOOL_STACK_SIZE", "4M"),
            var("RUST_MIN_STACK", "4194304"),
        ],
    );
    assert_overflowed(&child, 128);
}

#[test]
fn child_builder_stack() {
    if !is_child("child_builder_stack") {
        return;
    }
    let h = thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| dig(DEPTH))
        .unwrap();
    let _ = h.join();
    unreachable!("the overflowing thread returned");
}

#[test]
fn the_variables_set_the_reported_default_stack() {
    let cases: &[(&[(&str, &str)], usize)] = &[
        (&[], 256 * 1024),
        (&[("RUST_MIN_STACK", "2097152")], 2 << 20),
        (&[("SPOOL_STACK_SIZE", "3M")], 3 << 20),
        (&[("SPOOL_STACK_SIZE", "640k")], 640 << 10),
        (&[("SPOOL_STACK_SIZE", "1024M")], 1 << 30),
        (
            &[("SPOOL_STACK_SIZE", "512K"), ("RUST_MIN_STACK", "2097152")],
            512 << 10,
        ),
        // Small sizes are raised to 16 KiB, as `Builder::stack_size` does.
        (&[("RUST_MIN_STACK", "0")], 16 << 10),
    ];
    for &(vars, expected) in cases {
        let vars: Vec<_> = vars.iter().map(|&(k, v)| var(k, v)).collect();
        let child = run("child_report_stack_size", &vars);
        let got = reported(&child.stdout, "default").unwrap_or_default();
        assert_eq!(got, expected.to_string(), "{vars:?}:\n{}", child.describe());
        // The runtime builder overrides every variable.
        let built = reported(&child.stdout, "built").unwrap_or_default();
        assert_eq!(
            built,
            (64 << 10).to_string(),
            "{vars:?}:\n{}",
            child.describe()
        );
    }
}

#[test]
fn a_stack_size_is_rounded_up_to_whole_pages() {
    let child = run(
        "child_report_stack_size",
        &[var("SPOOL_STACK_SIZE", "300001")],
    );
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let expected = 300_001usize.div_ceil(page) * page;
    let got = reported(&child.stdout, "default").unwrap_or_default();
    assert_eq!(got, expected.to_string(), "{}", child.describe());
}

#[test]
fn child_report_stack_size() {
    if !is_child("child_report_stack_size") {
        return;
    }
    // On an OS thread of our own with a stack of its own: `RUST_MIN_STACK`
    // also sizes the thread libtest runs this test on, and a tiny one
    // (`RUST_MIN_STACK=0`) is too small for AddressSanitizer's frames.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let rt = spool::Runtime::builder().workers(1).build().unwrap();
            report("default", &rt.stack_size());
            // A green thread really gets it: one that starts runs on it.
            // Not on the smallest stacks, whose room depends on the build
            // (AddressSanitizer's instrumented frames are several times
            // larger).
            if rt.stack_size() >= 64 << 10 {
                assert_eq!(rt.run(|| thread::spawn(|| 7).join().unwrap()), 7);
            }
            let rt = spool::Runtime::builder()
                .workers(1)
                .stack_size(64 * 1024)
                .build()
                .unwrap();
            report("built", &rt.stack_size());
        })
        .unwrap()
        .join()
        .unwrap();
}

// ---- the tables in the docs -------------------------------------------------

/// The variable names in the first column of the table that follows
/// `heading` in `text` (lines with `prefix` stripped), and the table's rows.
fn table(text: &str, prefix: &str, heading: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = text
        .lines()
        .map(|l| l.strip_prefix(prefix).unwrap_or(l).trim_end())
        .skip_while(|l| *l != heading)
        .skip_while(|l| !l.starts_with('|'));
    let rows: Vec<String> = lines
        .by_ref()
        .take_while(|l| l.starts_with('|'))
        .map(str::to_owned)
        .collect();
    let names = rows
        .iter()
        .skip(2)
        .filter_map(|row| row.split('`').nth(1).map(str::to_owned))
        .collect();
    (names, rows)
}

#[test]
fn the_readme_and_the_crate_docs_list_every_variable_alike() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let lib = std::fs::read_to_string(format!("{root}/api/src/lib.rs")).unwrap();
    let (readme_names, readme_rows) = table(&readme, "", "## Configuration");
    let (lib_names, lib_rows) = table(&lib, "//! ", "## Configuration");
    assert_eq!(readme_rows, lib_rows, "the two tables differ");
    let mut expected: Vec<_> = spool_runtime::config::ALL
        .iter()
        .map(|var| var.name.to_owned())
        .collect();
    let mut listed = readme_names.clone();
    expected.sort();
    listed.sort();
    assert_eq!(
        listed, expected,
        "the README's table and config::ALL differ"
    );
    assert_eq!(lib_names, readme_names);
}

// ---- huge stacks ------------------------------------------------------------

#[test]
fn a_huge_default_stack_runs_out_with_an_error_not_an_abort() {
    let child = run("child_huge_stacks", &[var("SPOOL_STACK_SIZE", "1024M")]);
    assert!(child.output.status.success(), "{}", child.describe());
    let error = reported(&child.stdout, "error").unwrap_or_default();
    assert!(
        error.contains("address space or memory is exhausted")
            && error.contains("1048576 KiB")
            && error.contains("ulimit -v"),
        "{}",
        child.describe()
    );
}

#[test]
fn child_huge_stacks() {
    if !is_child("child_huge_stacks") {
        return;
    }
    // What the process maps now plus 4 GiB: room for a few 1 GiB stacks.
    // (Relative, not absolute: under AddressSanitizer the process already
    // maps terabytes of shadow memory.)
    let used = common::status_kib("VmSize") * 1024;
    let limit = libc::rlimit {
        rlim_cur: used + (4 << 30),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass; it only lowers our own
    // soft limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let rt = spool::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.stack_size(), 1 << 30);
    rt.run(|| {
        let mut parked = Vec::new();
        let error = loop {
            match thread::Builder::new().spawn(thread::park) {
                Ok(handle) => parked.push(handle),
                Err(error) => break error,
            }
            assert!(parked.len() < 8, "8 stacks of 1 GiB fit in 4 GiB");
        };
        assert_eq!(error.kind(), ErrorKind::OutOfMemory, "{error}");
        report("error", &error);
        for handle in &parked {
            handle.thread().unpark();
        }
        for handle in parked {
            handle.join().unwrap();
        }
    });
}
