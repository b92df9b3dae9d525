//! The blocking watchdog: a green thread that holds its worker in a
//! blocking std call is named on stderr, once per spawn site; spool's own
//! blocking calls, a zero threshold and a malformed `SPOOL_BLOCKING_MS`
//! behave as documented.
//!
//! Each scenario runs in a child process (this test binary re-executed to
//! run one `child_*` test, see `common::run_child`), whose stderr the
//! parent reads: the report goes straight to the process's stderr, past
//! the test harness's capture, and a stall is best measured alone.

use crate::common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use common::{is_child, run_child, ChildOutput};

/// What every report says after the thread's description.
const ADVICE: &str = "without reaching a blocking point";

fn describe(out: &ChildOutput) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

fn reports(out: &ChildOutput) -> Vec<&str> {
    out.stderr.lines().filter(|l| l.contains(ADVICE)).collect()
}

#[track_caller]
fn assert_succeeded(out: &ChildOutput) {
    assert!(out.status.success(), "child failed:\n{}", describe(out));
}

/// A one-worker runtime with the given threshold.
fn runtime(threshold: Option<Duration>) -> spool::Runtime {
    let builder = spool::Runtime::builder().workers(1);
    match threshold {
        Some(threshold) => builder.blocking_threshold(threshold),
        None => builder,
    }
    .build()
    .unwrap()
}

/// Runs a green thread named `name` that calls `std::thread::sleep` for
/// `ms`, always spawned at the same site; prints that site on stdout.
fn stall(rt: &spool::Runtime, name: &str, ms: u64) {
    rt.run(|| {
        let builder = spool::thread::Builder::new().name(name.into());
        #[rustfmt::skip]
        let (handle, line) = (builder.spawn(move || std::thread::sleep(Duration::from_millis(ms))), line!());
        println!("site {}:{line}", file!());
        handle.unwrap().join().unwrap();
    });
}

#[test]
fn a_std_sleep_is_reported_once_with_name_and_spawn_site() {
    let out = run_child("child_std_sleep_twice", &[]);
    assert_succeeded(&out);
    let site = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("site "))
        .unwrap_or_else(|| panic!("no site line:\n{}", describe(&out)));
    let lines = reports(&out);
    assert_eq!(lines.len(), 1, "expected one report:\n{}", describe(&out));
    let line = lines[0];
    assert!(
        line.starts_with("spool: thread 'stuck-one' ("),
        "{}",
        describe(&out)
    );
    assert!(
        line.contains(" on worker 0 without reaching a blocking point"),
        "{}",
        describe(&out)
    );
    assert!(
        line.contains(&format!("(spawned at {site})")),
        "the report does not name the spawn site {site}:\n{}",
        describe(&out)
    );
    assert!(
        line.ends_with(
            "a blocking std call or a long computation stalls every green thread on this \
             worker \u{2014} use spool's equivalent or spool::unblock"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn child_std_sleep_twice() {
    if !is_child("child_std_sleep_twice") {
        return;
    }
    let rt = runtime(Some(Duration::from_millis(50)));
    stall(&rt, "stuck-one", 300);
    // The same site again: already reported.
    stall(&rt, "stuck-one", 300);
}

#[test]
fn a_thread_still_running_is_announced_before_it_switches_out() {
    let out = run_child("child_long_stall", &[]);
    assert_succeeded(&out);
    let still = out
        .stderr
        .find("spool: a green thread has run for ")
        .unwrap_or_else(|| panic!("no still-running line:\n{}", describe(&out)));
    let named = out
        .stderr
        .find("spool: thread 'stuck-one' (")
        .unwrap_or_else(|| panic!("no named line:\n{}", describe(&out)));
    assert!(still < named, "{}", describe(&out));
    let still_line = out.stderr[still..].lines().next().unwrap();
    assert!(
        still_line.contains(" on worker 0 without reaching a blocking point and is still running"),
        "{}",
        describe(&out)
    );
    assert_eq!(reports(&out).len(), 2, "{}", describe(&out));
    // The named line gives the whole stall.
    let named_line = out.stderr[named..].lines().next().unwrap();
    assert!(named_line.contains(" has run for 1."), "{}", describe(&out));
}

#[test]
fn child_long_stall() {
    if !is_child("child_long_stall") {
        return;
    }
    stall(&runtime(Some(Duration::from_millis(50))), "stuck-one", 1500);
}

#[test]
fn the_threshold_comes_from_the_environment() {
    let out = run_child("child_std_sleep_default", &[("SPOOL_BLOCKING_MS", "50")]);
    assert_succeeded(&out);
    assert_eq!(reports(&out).len(), 1, "{}", describe(&out));
}

#[test]
fn child_std_sleep_default() {
    if !is_child("child_std_sleep_default") {
        return;
    }
    stall(&runtime(None), "stuck-one", 300);
}

/// Runs `child_off_then_on` and checks that only its second, watched
/// stall was reported (both share a spawn site, so a report of the first
/// would have suppressed the second's).
#[track_caller]
fn assert_only_the_watched_stall_reported(first: &str, env: Option<&str>) {
    let mut vars = vec![("WATCHDOG_TEST_FIRST", first)];
    if let Some(ms) = env {
        vars.push(("SPOOL_BLOCKING_MS", ms));
    }
    let out = run_child("child_off_then_on", &vars);
    assert_succeeded(&out);
    let lines = reports(&out);
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert!(
        lines[0].starts_with("spool: thread 'watched' ("),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_zero_threshold_reports_nothing() {
    assert_only_the_watched_stall_reported("zero", None);
}

#[test]
fn a_zero_variable_reports_nothing() {
    assert_only_the_watched_stall_reported("default", Some("0"));
}

#[test]
fn the_builder_wins_over_the_variable() {
    assert_only_the_watched_stall_reported("zero", Some("50"));
}

/// Stalls on a runtime that should not be watched (its threshold from
/// `WATCHDOG_TEST_FIRST`: `zero`, or `default` for the environment's),
/// then on one with a 50 ms threshold.
#[test]
fn child_off_then_on() {
    if !is_child("child_off_then_on") {
        return;
    }
    let first = match std::env::var("WATCHDOG_TEST_FIRST").unwrap().as_str() {
        "zero" => Some(Duration::ZERO),
        _ => None,
    };
    let unwatched = runtime(first);
    stall(&unwatched, "unwatched", 300);
    if common::os_thread_names()
        .iter()
        .any(|name| name == "spool-watchdog")
    {
        panic!("a watchdog thread runs although no runtime asked for one");
    }
    let watched = runtime(Some(Duration::from_millis(50)));
    stall(&watched, "watched", 300);
}

#[test]
fn blocking_in_spool_calls_reports_nothing() {
    let out = run_child("child_spool_waits", &[]);
    assert_succeeded(&out);
    let lines = reports(&out);
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert!(
        lines[0].starts_with("spool: thread 'watched' ("),
        "only the final std sleep is a stall:\n{}",
        describe(&out)
    );
}

#[test]
fn child_spool_waits() {
    if !is_child("child_spool_waits") {
        return;
    }
    let rt = runtime(Some(Duration::from_millis(20)));
    let (tx, rx) = spool::sync::mpsc::channel::<u32>();
    let lock = Arc::new(spool::sync::Mutex::new(0));
    let held = lock.lock().unwrap();
    let locker = {
        let lock = lock.clone();
        rt.spawn(move || *lock.lock().unwrap() += 1)
    };
    let receiver = rt.spawn(move || rx.recv().unwrap());
    let sleeper = rt.spawn(|| spool::thread::sleep(Duration::from_millis(300)));
    let parker = rt.spawn(|| spool::thread::park_timeout(Duration::from_millis(300)));
    // A long computation that yields often is fine too.
    let yielder = rt.spawn(|| {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            for _ in 0..1000 {
                std::hint::spin_loop();
            }
            spool::thread::yield_now();
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    tx.send(7).unwrap();
    drop(held);
    assert_eq!(receiver.join().unwrap(), 7);
    locker.join().unwrap();
    sleeper.join().unwrap();
    parker.join().unwrap();
    yielder.join().unwrap();
    assert_eq!(*lock.lock().unwrap(), 1);
    // The watchdog was awake all along.
    stall(&rt, "watched", 300);
}

#[test]
fn a_malformed_variable_is_an_error_naming_it() {
    let out = run_child("child_malformed_variable", &[("SPOOL_BLOCKING_MS", "abc")]);
    assert_succeeded(&out);
}

#[test]
fn child_malformed_variable() {
    if !is_child("child_malformed_variable") {
        return;
    }
    let error = spool::Runtime::builder().workers(1).build().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    let message = error.to_string();
    assert!(
        message.contains("SPOOL_BLOCKING_MS") && message.contains("\"abc\""),
        "{message}"
    );
    assert!(
        message.contains("whole number of milliseconds"),
        "{message}"
    );
    // An explicit threshold does not read the variable.
    let rt = runtime(Some(Duration::from_millis(100)));
    drop(rt);
}

#[test]
fn the_global_runtime_reports_a_malformed_variable_as_for_workers() {
    let out = run_child(
        "child_malformed_variable_global",
        &[("SPOOL_BLOCKING_MS", "1.5")],
    );
    assert_succeeded(&out);
}

#[test]
fn child_malformed_variable_global() {
    if !is_child("child_malformed_variable_global") {
        return;
    }
    let error = spool::thread::Builder::new().spawn(|| ()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    let message = error.to_string();
    assert!(
        message.contains("SPOOL_BLOCKING_MS") && message.contains("\"1.5\""),
        "{message}"
    );
}
