//! Behaviour of `spool::unblock` (blocking calls offloaded to an OS-thread
//! pool while the green thread parks) and of the host-name lookups of
//! `spool::net` (`lookup_host`, the sockets' address conversion), which
//! go through it.
//!
//! The tests in the `rt_test!` block run in three configurations (see
//! `tests/common`): in a green thread of a one-worker and of a two-worker
//! runtime, and on the test's plain OS thread, where `unblock` runs its
//! closure inline. No assertion depends on timing: progress is shown by
//! events (a ticker that must advance while a pool thread blocks, a
//! barrier only concurrent pool threads can pass), with 30 s give-up
//! bounds.

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use spool::net::{lookup_host, SocketAddr};
use spool::thread;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);
/// How long a pool job waits for an event before declaring it missing.
const GIVE_UP: Duration = Duration::from_secs(30);

/// A panic payload that is neither `&str` nor `String`.
#[derive(Debug, PartialEq)]
struct Marker(u32);

/// Blocks the calling OS thread (a pool thread, in these tests) until
/// `condition` holds; false if it still does not after [`GIVE_UP`].
fn block_until(condition: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > GIVE_UP {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

rt_test! {
    fn returns_the_result() {
        assert_eq!(spool::unblock(|| 6 * 7), 42);
        let text = String::from("moved in");
        assert_eq!(spool::unblock(move || text.len()), 8);
    }

    fn a_panic_resumes_in_the_caller_and_the_pool_lives_on() {
        let caught = catch_unwind(|| spool::unblock(|| -> u32 { std::panic::panic_any(Marker(7)) }));
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<Marker>(), Some(&Marker(7)));
        // The pool still serves calls after a job panicked.
        for i in 0..10 {
            assert_eq!(spool::unblock(move || i + 1), i + 1);
        }
    }

    fn a_thousand_concurrent_calls_all_complete() {
        let handles: Vec<_> = (0..1_000u64)
            .map(|i| {
                thread::spawn(move || {
                    spool::unblock(move || {
                        std::thread::sleep(Duration::from_millis(1));
                        i
                    })
                })
            })
            .collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 999 * 1_000 / 2);
    }

    fn localhost_resolves_through_to_socket_addrs() {
        for addrs in [
            lookup_host("localhost:8080"),
            lookup_host(("localhost", 8080)),
            lookup_host(("localhost".to_string(), 8080)),
        ] {
            let addrs: Vec<SocketAddr> = addrs.expect("localhost resolves").collect();
            assert!(!addrs.is_empty());
            assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080), "{addrs:?}");
        }
        let err = lookup_host("localhost:http").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

/// While a green thread waits in `unblock` on a call that blocks its pool
/// thread (a 200 ms `std::thread::sleep`, then a wait for the ticker), the
/// other green threads of the same — only — worker keep running.
#[test]
fn other_green_threads_run_during_a_blocking_call() {
    let _watchdog = common::Watchdog::new("other_green_threads_run_during_a_blocking_call", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (ticks, stop) = (ticks.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let (job_ticks, caller) = (ticks.clone(), thread::current().id());
        let (ran_elsewhere, ticks_during) = spool::unblock(move || {
            let start = job_ticks.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            // Only a running worker can advance the ticker: if this call
            // blocked the worker, the ticker would be stuck.
            let advanced = block_until(|| job_ticks.load(Ordering::SeqCst) >= start + 10);
            (
                std::thread::current().name() == Some("spool-unblock"),
                advanced,
            )
        });
        assert_eq!(thread::current().id(), caller);
        assert!(ran_elsewhere, "the call ran on a pool thread");
        assert!(
            ticks_during,
            "the ticker stalled while a pool thread blocked"
        );
        stop.store(true, Ordering::SeqCst);
        ticker.join().unwrap();
    });
}

/// On a plain OS thread, `unblock` runs the closure right there.
#[test]
fn runs_inline_on_a_plain_os_thread() {
    let _watchdog = common::Watchdog::new("runs_inline_on_a_plain_os_thread", LIMIT);
    let here = std::thread::current().id();
    assert_eq!(spool::unblock(move || std::thread::current().id()), here);
    let panicked = catch_unwind(AssertUnwindSafe(|| spool::unblock(|| panic!("inline"))));
    assert_eq!(
        panicked.unwrap_err().downcast_ref::<&str>(),
        Some(&"inline")
    );
}

/// Jobs that block together get a thread each: four jobs that meet at a
/// barrier can only all pass it on four concurrent pool threads, named
/// `spool-unblock`.
#[test]
fn the_pool_grows_with_named_threads() {
    let _watchdog = common::Watchdog::new("the_pool_grows_with_named_threads", LIMIT);
    const JOBS: usize = 4;
    let rt = Runtime::builder().workers(1).build().unwrap();
    let barrier = Arc::new(Barrier::new(JOBS));
    let handles: Vec<_> = (0..JOBS)
        .map(|_| {
            let barrier = barrier.clone();
            rt.spawn(move || {
                spool::unblock(move || {
                    barrier.wait();
                    let named = common::os_thread_names()
                        .iter()
                        .filter(|name| *name == "spool-unblock")
                        .count();
                    (std::thread::current().name().map(String::from), named)
                })
            })
        })
        .collect();
    for handle in handles {
        let (name, named) = handle.join().unwrap();
        assert_eq!(name.as_deref(), Some("spool-unblock"));
        assert!(
            named >= JOBS,
            "{named} spool-unblock threads while {JOBS} jobs block"
        );
    }
}

/// `SPOOL_UNBLOCK_THREADS` caps the pool; jobs beyond the cap wait their
/// turn and still all complete.
#[test]
fn child_limited_pool() {
    if !common::is_child("child_limited_pool") {
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (running, most) = (running.clone(), most.clone());
            rt.spawn(move || {
                spool::unblock(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
        })
        .collect();
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 28);
    let most = most.load(Ordering::SeqCst);
    println!("most concurrent jobs: {most}");
    let named = common::os_thread_names()
        .iter()
        .filter(|name| *name == "spool-unblock")
        .count();
    println!("pool threads: {named}");
}

fn limited_pool_report(limit: &str) -> (usize, usize) {
    let out = common::run_child("child_limited_pool", &[("SPOOL_UNBLOCK_THREADS", limit)]);
    assert!(
        out.status.success(),
        "child failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let field = |label: &str| -> usize {
        out.stdout
            .lines()
            // The first line follows the harness's `test … ` prefix.
            .find_map(|line| line.split_once(label).map(|(_, value)| value))
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{}", out.stdout))
            .trim()
            .parse()
            .unwrap()
    };
    (field("most concurrent jobs:"), field("pool threads:"))
}

#[test]
fn spool_unblock_threads_caps_the_pool() {
    let _watchdog = common::Watchdog::new("spool_unblock_threads_caps_the_pool", LIMIT);
    let (most, threads) = limited_pool_report("2");
    assert!(most <= 2, "{most} jobs ran at once with a limit of 2");
    assert!(threads <= 2, "{threads} pool threads with a limit of 2");
    // A bad value fails the runtime's start instead: see tests/config.rs.
}
