//! Global deadlock reports, each scenario in a child process of its own.
//!
//! `harness = false` (see Cargo.toml): libtest keeps a harness thread
//! running beside every test, an OS thread outside spool that might still
//! wake someone, so under libtest spool rightly reports nothing. This
//! binary's `main` is its own harness: run with no scenario, it re-runs
//! itself once per scenario (`SCENARIO` in the environment) and checks
//! what each child printed and how it ended.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = "SPOOL_DEADLOCK_TEST_SCENARIO";

/// Where a deadlock report starts.
const REPORT: &str = "spool: all threads are parked and nothing can wake them — deadlock";

fn main() {
    if let Ok(name) = std::env::var(SCENARIO) {
        scenario(&name);
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut passed = 0;
    for (name, check) in CASES {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        check(name);
        println!("test {name} ... ok ({:?})", start.elapsed());
        passed += 1;
    }
    println!("\ntest result: ok. {passed} passed; 0 failed");
}

/// What a child process did: its exit status (`None` if it was killed
/// after `limit`) and its stderr.
struct Child {
    status: Option<ExitStatus>,
    stderr: String,
}

/// Runs scenario `name` with `env`, killing it after `limit`.
fn run(name: &str, env: &[(&str, &str)], limit: Duration) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(SCENARIO, name)
        .env_remove("SPOOL_DEADLOCK")
        .env_remove("SPOOL_WORKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Child {
        status,
        stderr: reader.join().unwrap(),
    }
}

/// Runs scenario `name` with `SPOOL_DEADLOCK=fatal`, asserts that it exits
/// with `code` (2: the deadlock report's), and returns its stderr.
fn fatal_exits(name: &str, code: i32) -> String {
    exits(name, "fatal", code)
}

/// Runs scenario `name` with `SPOOL_DEADLOCK=mode`, asserts that it exits
/// with `code`, and returns its stderr.
fn exits(name: &str, mode: &str, code: i32) -> String {
    let child = run(name, &[("SPOOL_DEADLOCK", mode)], Duration::from_secs(30));
    assert_eq!(
        child.status.and_then(|s| s.code()),
        Some(code),
        "{}",
        child.stderr
    );
    child.stderr
}

/// Asserts that `stderr` contains every one of `parts`.
fn says(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "no {part:?} in:\n{stderr}");
    }
}

type Case = (&'static str, fn(&str));

const CASES: &[Case] = &[
    ("two_threads_joining_each_other", |name| {
        let stderr = fatal_exits(name, 2);
        says(
            &stderr,
            &[
                REPORT,
                "wait-for cycle: threads",
                "'joiner-a'",
                "'joiner-b'",
            ],
        );
    }),
    ("a_mutex_cycle", |name| {
        let stderr = fatal_exits(name, 2);
        says(&stderr, &[REPORT]);
        // The cycle runs through the mutexes' holders, and names both.
        let cycle = stderr
            .lines()
            .find(|line| line.starts_with("wait-for cycle: threads"))
            .unwrap_or_else(|| panic!("no wait-for cycle in\n{stderr}"));
        says(cycle, &["'locker-a'", "'locker-b'"]);
    }),
    ("main_waiting_on_a_channel_nobody_sends_on", |name| {
        let stderr = fatal_exits(name, 2);
        says(
            &stderr,
            &[&format!(
                "{REPORT} (and 1 OS thread waiting in a spool call)"
            )],
        );
    }),
    ("main_waiting_after_the_workers_fell_asleep", |name| {
        // The workers fall asleep (and check) while `main` still runs; its
        // wait that follows completes the deadlock.
        let stderr = fatal_exits(name, 2);
        says(
            &stderr,
            &[&format!(
                "{REPORT} (and 1 OS thread waiting in a spool call)"
            )],
        );
    }),
    ("the_default_reports_and_keeps_waiting", |name| {
        let child = run(
            "two_threads_joining_each_other",
            &[],
            Duration::from_secs(3),
        );
        assert!(
            child.status.is_none(),
            "{name}: it kept waiting: {}",
            child.stderr
        );
        assert_eq!(
            child.stderr.matches(REPORT).count(),
            1,
            "once: {}",
            child.stderr
        );
    }),
    ("off_reports_nothing", |_| {
        let child = run(
            "two_threads_joining_each_other",
            &[("SPOOL_DEADLOCK", "off")],
            Duration::from_secs(2),
        );
        assert!(child.status.is_none());
        assert!(!child.stderr.contains("deadlock"), "{}", child.stderr);
    }),
    ("a_busy_os_thread_is_no_deadlock", |name| {
        // Green threads wait for `main`, which computes for a while first:
        // nothing is reported, and the program ends normally.
        let stderr = fatal_exits(name, 0);
        assert!(!stderr.contains("deadlock"), "{stderr}");
    }),
    (
        "a_listener_waiting_for_connections_is_no_deadlock",
        |name| {
            let child = run(name, &[("SPOOL_DEADLOCK", "fatal")], Duration::from_secs(2));
            assert!(child.status.is_none(), "{}", child.stderr);
            assert!(!child.stderr.contains("deadlock"), "{}", child.stderr);
        },
    ),
    ("a_sleeping_thread_is_no_deadlock", |name| {
        let stderr = fatal_exits(name, 0);
        assert!(!stderr.contains("deadlock"), "{stderr}");
    }),
    ("a_malformed_spool_deadlock_is_an_error", |name| {
        let stderr = exits(name, "sometimes", 0);
        says(&stderr, &["SPOOL_DEADLOCK=\"sometimes\" is not valid"]);
    }),
];

/// The child side.
fn scenario(name: &str) {
    use spool::thread;
    match name {
        "two_threads_joining_each_other" => {
            let (tx, rx) = spool::sync::mpsc::channel::<thread::JoinHandle<()>>();
            let a = thread::Builder::new()
                .name("joiner-a".into())
                .spawn(move || rx.recv().unwrap().join().unwrap())
                .unwrap();
            let b = thread::Builder::new()
                .name("joiner-b".into())
                .spawn(move || a.join().unwrap())
                .unwrap();
            tx.send(b).unwrap();
            thread::park(); // main waits too
        }
        "a_mutex_cycle" => {
            use spool::sync::{Arc, Barrier, Mutex};
            let (m1, m2) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
            let barrier = Arc::new(Barrier::new(2));
            let lockers: Vec<_> = [("locker-a", false), ("locker-b", true)]
                .into_iter()
                .map(|(name, reverse)| {
                    let (m1, m2, barrier) = (m1.clone(), m2.clone(), barrier.clone());
                    thread::Builder::new()
                        .name(name.into())
                        .spawn(move || {
                            let (first, second) = if reverse { (m2, m1) } else { (m1, m2) };
                            let _one = first.lock().unwrap();
                            barrier.wait();
                            let _two = second.lock().unwrap();
                        })
                        .unwrap()
                })
                .collect();
            for locker in lockers {
                locker.join().unwrap();
            }
        }
        "main_waiting_on_a_channel_nobody_sends_on" => {
            let (_tx, rx) = spool::sync::mpsc::channel::<u32>();
            // Make sure a runtime runs (the check looks at its workers).
            thread::spawn(|| ()).join().unwrap();
            let _ = rx.recv();
        }
        "main_waiting_after_the_workers_fell_asleep" => {
            let (_tx, rx) = spool::sync::mpsc::channel::<u32>();
            thread::spawn(|| ()).join().unwrap();
            // Long enough for every worker to fall asleep (after its spin)
            // and find `main` running.
            std::thread::sleep(Duration::from_millis(200));
            let _ = rx.recv();
        }
        "a_busy_os_thread_is_no_deadlock" => {
            let (tx, rx) = spool::sync::mpsc::channel::<u32>();
            let waiter = thread::spawn(move || rx.recv().unwrap());
            // A plain computation on `main` (not in a spool call) for longer
            // than the confirmation period.
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(1_500) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            tx.send(7).unwrap();
            assert_eq!(waiter.join().unwrap(), 7);
        }
        "a_listener_waiting_for_connections_is_no_deadlock" => {
            let listener = spool::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let server = thread::spawn(move || {
                let _ = listener.accept();
            });
            server.join().unwrap();
        }
        "a_sleeping_thread_is_no_deadlock" => {
            let sleeper = thread::spawn(|| thread::sleep(Duration::from_millis(1_500)));
            sleeper.join().unwrap();
        }
        "a_malformed_spool_deadlock_is_an_error" => {
            let err = spool::Runtime::builder().build().expect_err("an error");
            eprintln!("{err}");
        }
        other => panic!("unknown scenario {other}"),
    }
}
