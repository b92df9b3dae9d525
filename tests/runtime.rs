//! Behaviour of `spool::Runtime`, its builder, `spool::run` and the global
//! runtime.
//!
//! Scenarios that need a process of their own (counting worker OS threads,
//! configuring the global runtime through `SPOOL_WORKERS` or
//! `build_global`) are `child_*` tests: they do nothing unless the parent
//! test re-executes this binary to run exactly them (see
//! `common::run_child`), and the parent checks that they passed.

mod common;

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{is_child, payload_text, run_child, spool_worker_count, Watchdog};
use spool::thread;
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(120);

/// Polls `condition` from a plain OS thread until it holds; panics after
/// `limit`.
#[track_caller]
fn wait_os(what: &str, limit: Duration, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs the child scenario `test` and asserts it ran and passed.
#[track_caller]
fn assert_child_passes(test: &str, env: &[(&str, &str)]) -> common::ChildOutput {
    let out = run_child(test, env);
    // A filter that matched nothing would also exit successfully.
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "child `{test}` with {env:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

/// The text of a panic payload, if it is a string.
#[derive(Debug, PartialEq)]
struct Marker(u32);

// ---- builder --------------------------------------------------------------

#[test]
fn builder_rejects_bad_worker_counts() {
    for workers in [0, 1025, usize::MAX] {
        let err = Runtime::builder()
            .workers(workers)
            .build()
            .expect_err("a bad worker count was accepted");
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "workers({workers}): {err}"
        );
        assert!(
            err.to_string().contains("1024"),
            "workers({workers}): message does not give the range: {err}"
        );
    }
    let rt = Runtime::builder().workers(3).build().unwrap();
    assert_eq!(rt.workers(), 3);
}

#[test]
fn builder_rejects_stacks_over_1_gib() {
    for size in [(1 << 30) + 1, 2 << 30, usize::MAX] {
        let err = Runtime::builder()
            .workers(1)
            .stack_size(size)
            .build()
            .expect_err("a stack over 1 GiB was accepted");
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "stack_size({size}): {err}"
        );
        assert!(
            err.to_string().contains("1 GiB"),
            "stack_size({size}): message does not name the limit: {err}"
        );
    }
    for size in [0, 1, 1 << 30] {
        let rt = Runtime::builder().workers(1).stack_size(size).build();
        assert!(rt.is_ok(), "stack_size({size}) was refused: {rt:?}");
    }
}

#[test]
fn the_runtime_stack_size_is_the_default_for_its_threads() {
    let _watchdog = Watchdog::new(
        "the_runtime_stack_size_is_the_default_for_its_threads",
        LIMIT,
    );
    let rt = Runtime::builder()
        .workers(1)
        .stack_size(1 << 20)
        .build()
        .unwrap();
    let used = rt.run(|| {
        let own = common::use_stack_from_here(900 * 1024);
        let child = thread::spawn(|| common::use_stack_from_here(900 * 1024))
            .join()
            .unwrap();
        own.min(child)
    });
    assert!(used >= 900 * 1024);
}

// ---- run and spawn --------------------------------------------------------

#[test]
fn spool_run_returns_the_value_and_resumes_panics() {
    let _watchdog = Watchdog::new("spool_run_returns_the_value_and_resumes_panics", LIMIT);
    assert_eq!(spool::run(|| 6 * 7), 42);
    let name = spool::run(|| thread::current().name().map(str::to_owned));
    assert_eq!(name, None);

    let payload = catch_unwind(|| spool::run(|| std::panic::panic_any(Marker(5)))).unwrap_err();
    assert_eq!(payload.downcast_ref::<Marker>(), Some(&Marker(5)));
    let payload = catch_unwind(|| spool::run(|| -> u32 { panic!("run failed") })).unwrap_err();
    assert_eq!(payload_text(&*payload), "run failed");
    // Still usable afterwards.
    assert_eq!(spool::run(|| thread::spawn(|| 1).join().unwrap()), 1);
}

#[test]
fn spool_run_may_borrow_from_the_caller() {
    let _watchdog = Watchdog::new("spool_run_may_borrow_from_the_caller", LIMIT);
    let mut numbers = vec![1, 2, 3];
    let sum = spool::run(|| {
        numbers.push(4);
        numbers.iter().sum::<i32>()
    });
    assert_eq!(sum, 10);
    assert_eq!(numbers, [1, 2, 3, 4]);
}

#[test]
fn runtime_run_borrows_returns_and_resumes_panics() {
    let _watchdog = Watchdog::new("runtime_run_borrows_returns_and_resumes_panics", LIMIT);
    let rt = Runtime::builder().workers(2).build().unwrap();
    let mut data = vec![0u64; 1000];
    let total = rt.run(|| {
        thread::scope(|s| {
            for (i, chunk) in data.chunks_mut(100).enumerate() {
                s.spawn(move || chunk.iter_mut().for_each(|x| *x = i as u64));
            }
        });
        data.iter().sum::<u64>()
    });
    assert_eq!(total, (0..10u64).map(|i| i * 100).sum());
    assert_eq!(data[999], 9);

    let payload = catch_unwind(AssertUnwindSafe(|| {
        rt.run(|| std::panic::panic_any(Marker(9)))
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<Marker>(), Some(&Marker(9)));
    assert_eq!(rt.run(|| 5), 5);
}

#[test]
fn runtime_spawn_from_a_plain_os_thread() {
    let _watchdog = Watchdog::new("runtime_spawn_from_a_plain_os_thread", LIMIT);
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..1000u64).map(|i| rt.spawn(move || i * i)).collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), (i * i) as u64);
    }
    let err = rt
        .spawn(|| -> u32 { panic!("spawned panic") })
        .join()
        .unwrap_err();
    assert_eq!(payload_text(&*err), "spawned panic");
}

#[test]
fn spawns_from_a_runtimes_green_threads_stay_on_that_runtime() {
    let _watchdog = Watchdog::new(
        "spawns_from_a_runtimes_green_threads_stay_on_that_runtime",
        LIMIT,
    );
    let a = Runtime::builder().workers(1).build().unwrap();
    let b = Arc::new(Runtime::builder().workers(1).build().unwrap());
    let worker_of_b = b.run(|| std::thread::current().id());
    let (worker_of_a, children, in_b) = a.run(|| {
        let me = std::thread::current().id();
        // Nested spawns, at several depths, from a green thread of `a`.
        let children: Vec<_> = (0..20)
            .map(|_| {
                thread::spawn(|| {
                    let grandchild = thread::spawn(|| std::thread::current().id())
                        .join()
                        .unwrap();
                    (std::thread::current().id(), grandchild)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>();
        // `b.spawn` from a green thread of `a` goes to `b`, and what that
        // thread spawns stays on `b`.
        let in_b = b
            .spawn(|| {
                let own = std::thread::current().id();
                let child = thread::spawn(|| std::thread::current().id())
                    .join()
                    .unwrap();
                (own, child)
            })
            .join()
            .unwrap();
        (me, children, in_b)
    });
    assert_ne!(worker_of_a, worker_of_b);
    for (child, grandchild) in children {
        assert_eq!(child, worker_of_a, "a nested spawn left its runtime");
        assert_eq!(grandchild, worker_of_a, "a nested spawn left its runtime");
    }
    assert_eq!(in_b, (worker_of_b, worker_of_b));
}

#[test]
fn run_from_a_green_thread_parks_it_instead_of_blocking_the_worker() {
    let _watchdog = Watchdog::new(
        "run_from_a_green_thread_parks_it_instead_of_blocking_the_worker",
        LIMIT,
    );
    let outer = Runtime::builder().workers(1).build().unwrap();
    let inner = Runtime::builder().workers(1).build().unwrap();
    let result = outer.run(|| {
        let flag = Arc::new(AtomicBool::new(false));
        // Needs `outer`'s only worker while the caller waits in `inner.run`.
        let setter = {
            let flag = flag.clone();
            thread::spawn(move || flag.store(true, Ordering::SeqCst))
        };
        let value = inner.run(|| {
            let start = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the caller's worker was blocked by run"
                );
                thread::sleep(Duration::from_millis(1));
            }
            7
        });
        setter.join().unwrap();
        value
    });
    assert_eq!(result, 7);
}

// ---- shutdown -------------------------------------------------------------

#[test]
fn joining_a_thread_whose_runtime_was_dropped_before_it_ran_is_an_error() {
    let _watchdog = Watchdog::new(
        "joining_a_thread_whose_runtime_was_dropped_before_it_ran_is_an_error",
        LIMIT,
    );
    let rt = Runtime::builder().workers(1).build().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    // Occupies the only worker, without a blocking point, until released.
    let busy = {
        let (started, release) = (started.clone(), release.clone());
        rt.spawn(move || {
            started.store(true, Ordering::SeqCst);
            while !release.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        })
    };
    wait_os("the busy thread runs", Duration::from_secs(30), || {
        started.load(Ordering::SeqCst)
    });
    let ran = Arc::new(AtomicBool::new(false));
    let never = {
        let ran = ran.clone();
        rt.spawn(move || {
            ran.store(true, Ordering::SeqCst);
            42
        })
    };
    // Drop on another OS thread: `drop` waits for the worker, which is busy.
    let (dropping_tx, dropping) = mpsc::channel();
    let (dropped_tx, dropped) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        dropping_tx.send(()).unwrap();
        drop(rt);
        dropped_tx.send(()).unwrap();
    });
    dropping.recv().unwrap();
    // Give `drop` time to tell the worker to stop before freeing it.
    std::thread::sleep(Duration::from_secs(1));
    release.store(true, Ordering::SeqCst);
    dropped
        .recv_timeout(Duration::from_secs(30))
        .expect("dropping the runtime hung");
    dropper.join().unwrap();
    assert!(
        !ran.load(Ordering::SeqCst),
        "a green thread ran after its runtime was dropped"
    );

    let (result_tx, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = result_tx.send(
            never
                .join()
                .map_err(|payload| payload_text(&*payload).to_string()),
        );
    });
    let joined = result
        .recv_timeout(Duration::from_secs(30))
        .expect("join of a thread whose runtime was dropped hung");
    assert!(
        !ran.load(Ordering::SeqCst),
        "a green thread ran after its runtime was dropped"
    );
    let message = joined.expect_err("join returned Ok for a thread that never ran");
    eprintln!("join after drop: Err({message:?})");
    assert!(busy.is_finished());
    busy.join().unwrap();
}

#[test]
fn dropping_a_runtime_stops_its_workers() {
    assert_child_passes("child_dropping_a_runtime_stops_its_workers", &[]);
}

#[test]
fn child_dropping_a_runtime_stops_its_workers() {
    if !is_child("child_dropping_a_runtime_stops_its_workers") {
        return;
    }
    assert_eq!(
        spool_worker_count(),
        0,
        "workers before any runtime: {:?}",
        common::os_thread_names()
    );
    for round in 0..20 {
        let rt = Runtime::builder().workers(3).build().unwrap();
        assert_eq!(rt.run(|| thread::spawn(|| 1).join().unwrap()), 1);
        wait_os("3 workers are up", Duration::from_secs(10), || {
            spool_worker_count() == 3
        });
        drop(rt);
        wait_os(
            &format!("round {round}: the workers stopped"),
            Duration::from_secs(10),
            || spool_worker_count() == 0,
        );
    }
}

#[test]
fn dropping_a_runtime_closes_its_file_descriptors() {
    assert_child_passes("child_dropping_a_runtime_closes_its_file_descriptors", &[]);
}

#[test]
fn child_dropping_a_runtime_closes_its_file_descriptors() {
    if !is_child("child_dropping_a_runtime_closes_its_file_descriptors") {
        return;
    }
    // Programs (and test suites) that build a runtime per task must not
    // run out of descriptors.
    let fds = || -> Vec<String> {
        let mut targets: Vec<String> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .map(|fd| {
                std::fs::read_link(fd.path())
                    .map_or_else(|_| "?".into(), |t| t.display().to_string())
            })
            .collect();
        targets.sort();
        targets
    };
    let before = fds();
    for _ in 0..20 {
        let rt = Runtime::builder().workers(3).build().unwrap();
        assert_eq!(rt.run(|| thread::spawn(|| 1).join().unwrap()), 1);
        drop(rt);
    }
    let after = fds();
    assert_eq!(
        after.len(),
        before.len(),
        "20 dropped runtimes of 3 workers left descriptors open: before {before:?}, after {after:?}"
    );
}

// ---- the global runtime ---------------------------------------------------

#[test]
fn bad_spool_workers_makes_the_global_runtime_fail_clearly() {
    for value in ["0", "abc", "-1", "1025", ""] {
        let out = assert_child_passes("child_bad_spool_workers", &[("SPOOL_WORKERS", value)]);
        eprintln!(
            "SPOOL_WORKERS={value:?}: {}",
            out.stdout
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("?")
        );
    }
}

#[test]
fn child_bad_spool_workers() {
    if !is_child("child_bad_spool_workers") {
        return;
    }
    let value = std::env::var("SPOOL_WORKERS").unwrap();
    let check = |message: &str| {
        assert!(
            message.contains("SPOOL_WORKERS"),
            "does not name the variable: {message}"
        );
        assert!(
            message.contains("1 to 1024"),
            "does not say what is accepted: {message}"
        );
        assert!(
            message.contains(&format!("{value:?}")),
            "does not quote the bad value: {message}"
        );
    };
    // spool::run and thread::spawn panic with the reason, every time.
    for _ in 0..2 {
        let payload = catch_unwind(|| spool::run(|| 1))
            .expect_err("spool::run worked with a bad SPOOL_WORKERS");
        check(payload_text(&*payload));
    }
    let payload = catch_unwind(|| thread::spawn(|| 1))
        .expect_err("thread::spawn worked with a bad SPOOL_WORKERS");
    check(payload_text(&*payload));
    // Builder::spawn and Runtime::new return it.
    let err = thread::Builder::new()
        .spawn(|| 1)
        .expect_err("Builder::spawn worked with a bad SPOOL_WORKERS");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    check(&err.to_string());
    let err = Runtime::new().expect_err("Runtime::new worked with a bad SPOOL_WORKERS");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    check(&err.to_string());
    println!("error: {err}");
    // An explicit worker count does not read the variable.
    let rt = Runtime::builder().workers(2).build().unwrap();
    assert_eq!(rt.run(|| 3), 3);
    // Blocking calls on plain OS threads do not need the runtime.
    thread::sleep(Duration::from_millis(1));
    thread::yield_now();
    thread::current().unpark();
    thread::park();
}

#[test]
fn spool_workers_sets_the_global_worker_count() {
    assert_child_passes(
        "child_spool_workers_sets_the_global_worker_count",
        &[("SPOOL_WORKERS", "3")],
    );
}

#[test]
fn child_spool_workers_sets_the_global_worker_count() {
    if !is_child("child_spool_workers_sets_the_global_worker_count") {
        return;
    }
    assert_eq!(spool_worker_count(), 0);
    let used: usize = spool::run(|| {
        let handles: Vec<_> = (0..100).map(|_| thread::spawn(|| 1)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(used, 100);
    wait_os("3 global workers are up", Duration::from_secs(10), || {
        spool_worker_count() == 3
    });
    assert_eq!(Runtime::new().unwrap().workers(), 3);
}

#[test]
fn build_global_configures_the_global_runtime_once() {
    assert_child_passes("child_build_global", &[]);
}

#[test]
fn child_build_global() {
    if !is_child("child_build_global") {
        return;
    }
    Runtime::builder()
        .workers(2)
        .stack_size(1 << 20)
        .build_global()
        .unwrap();
    // The global default stack size applies to thread::spawn from here.
    let used = thread::spawn(|| common::use_stack_from_here(900 * 1024))
        .join()
        .unwrap();
    assert!(used >= 900 * 1024);
    wait_os("2 global workers are up", Duration::from_secs(10), || {
        spool_worker_count() == 2
    });
    let err = Runtime::builder()
        .workers(1)
        .build_global()
        .expect_err("a second build_global succeeded");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(spool::run(|| 1), 1);
    assert_eq!(spool_worker_count(), 2);
}

#[test]
fn build_global_after_the_first_spawn_is_already_exists() {
    assert_child_passes("child_build_global_after_spawn", &[]);
}

#[test]
fn child_build_global_after_spawn() {
    if !is_child("child_build_global_after_spawn") {
        return;
    }
    thread::spawn(|| ()).join().unwrap();
    let err = Runtime::builder()
        .workers(1)
        .build_global()
        .expect_err("build_global after a spawn succeeded");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
}

// ---- many runtimes ---------------------------------------------------------

#[test]
fn many_runtimes_side_by_side() {
    let _watchdog = Watchdog::new("many_runtimes_side_by_side", LIMIT);
    let runtimes: Vec<_> = (0..8)
        .map(|_| Runtime::builder().workers(1).build().unwrap())
        .collect();
    let counter = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for rt in &runtimes {
            let counter = &counter;
            s.spawn(move || {
                rt.run(|| {
                    let handles: Vec<_> =
                        (0..100).map(|_| thread::spawn(thread::yield_now)).collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                })
            });
        }
    });
    assert_eq!(counter.load(Ordering::SeqCst), 8);
    drop(runtimes);
}

#[test]
fn an_idle_runtime_uses_no_cpu() {
    assert_child_passes("child_an_idle_runtime_uses_no_cpu", &[]);
}

/// A plain OS thread that waits long for a green thread (a `join`, a
/// rendezvous `recv`, a lock) spins only briefly, then sleeps: three waits
/// of 200 ms each cost it a few milliseconds of CPU, not 600.
#[test]
fn an_os_thread_waiting_long_for_a_green_thread_sleeps() {
    let _watchdog = Watchdog::new(
        "an_os_thread_waiting_long_for_a_green_thread_sleeps",
        Duration::from_secs(30),
    );
    let rt = Runtime::builder().workers(1).build().unwrap();
    let wait = Duration::from_millis(200);
    let before = thread_cpu_time();
    rt.spawn(move || thread::sleep(wait)).join().unwrap();
    let (tx, rx) = spool::sync::mpsc::sync_channel(0);
    rt.spawn(move || {
        thread::sleep(wait);
        tx.send(1).unwrap();
    });
    assert_eq!(rx.recv().unwrap(), 1);
    let lock = Arc::new(spool::sync::Mutex::new(()));
    let (held_tx, held_rx) = spool::sync::mpsc::sync_channel(0);
    let holder = {
        let lock = Arc::clone(&lock);
        rt.spawn(move || {
            let _guard = lock.lock().unwrap();
            held_tx.send(()).unwrap();
            thread::sleep(wait);
        })
    };
    held_rx.recv().unwrap();
    drop(lock.lock().unwrap());
    holder.join().unwrap();
    let used = thread_cpu_time() - before;
    assert!(
        used < Duration::from_millis(100),
        "waiting 3 × {wait:?} for green threads cost this OS thread {used:?} of CPU"
    );
}

/// CPU time (user + system) the calling OS thread has used.
fn thread_cpu_time() -> Duration {
    cpu_time(libc::RUSAGE_THREAD)
}

/// CPU time (user + system) this whole process has used.
fn process_cpu_time() -> Duration {
    cpu_time(libc::RUSAGE_SELF)
}

/// CPU time (user + system) `getrusage(who)` reports.
fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(who, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn child_an_idle_runtime_uses_no_cpu() {
    if !is_child("child_an_idle_runtime_uses_no_cpu") {
        return;
    }
    // Workers that have nothing to do must sleep in epoll_wait, not poll:
    // a second of idleness (with parked green threads and a pending far
    // timer) costs far less than a second of CPU. The bound is loose (a
    // polling worker would burn ~1 s per worker) so a busy machine cannot
    // make it flaky.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let parked: Vec<_> = (0..100).map(|_| rt.spawn(thread::park)).collect();
    let sleeper = rt.spawn(|| thread::sleep(Duration::from_secs(3600)));
    std::thread::sleep(Duration::from_millis(200)); // let the spinning end
    let before = process_cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = process_cpu_time() - before;
    assert!(
        used < Duration::from_millis(100),
        "an idle runtime used {used:?} of CPU in 1 s"
    );
    for h in &parked {
        h.thread().unpark();
    }
    for h in parked {
        h.join().unwrap();
    }
    drop(sleeper);
}

/// Shows the `error:` lines a child printed (the messages users would see).
fn print_error_lines(out: &common::ChildOutput) {
    for line in out.stdout.lines().filter(|l| l.starts_with("error:")) {
        eprintln!("{line}");
    }
}

#[test]
fn running_out_of_address_space_is_an_error_that_names_the_limit() {
    let out = assert_child_passes("child_running_out_of_address_space", &[]);
    print_error_lines(&out);
}

#[test]
fn child_running_out_of_address_space() {
    if !is_child("child_running_out_of_address_space") {
        return;
    }
    // Green threads here get 512 MiB stacks by default (address space only:
    // untouched stack pages cost no memory).
    let rt = Runtime::builder()
        .workers(1)
        .stack_size(512 << 20)
        .build()
        .unwrap();
    rt.run(|| thread::spawn(|| ()).join().unwrap());
    // Cap the address space at what the process uses now plus 2 GiB: a few
    // such stacks fit, then reserving stack memory must fail.
    let used = common::status_kib("VmSize") * 1024;
    let limit = libc::rlimit {
        rlim_cur: used + (2 << 30),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let (error, panic) = rt.run(|| {
        let mut parked = Vec::new();
        let error = loop {
            match thread::Builder::new().spawn(thread::park) {
                Ok(handle) => parked.push(handle),
                Err(e) => break e,
            }
            assert!(
                parked.len() < 64,
                "a 2 GiB address-space cap held 64 stacks of 512 MiB"
            );
        };
        // `thread::spawn` panics with the same message, as std's does.
        let panic = std::panic::catch_unwind(|| thread::spawn(thread::park)).unwrap_err();
        // The runtime keeps working: a thread with a small stack still runs.
        let small = thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| 7)
            .unwrap();
        assert_eq!(small.join().unwrap(), 7);
        for h in &parked {
            h.thread().unpark();
        }
        for h in parked {
            h.join().unwrap();
        }
        (error, payload_text(&*panic).to_string())
    });
    let message = error.to_string();
    assert_eq!(error.kind(), std::io::ErrorKind::OutOfMemory, "{message}");
    assert!(
        message.contains("ulimit -v"),
        "does not name the limit: {message}"
    );
    assert!(
        message.contains("stack_size"),
        "does not name the fix: {message}"
    );
    assert!(
        panic.starts_with("failed to spawn thread: ") && panic.contains("ulimit -v"),
        "thread::spawn panicked with {panic:?}"
    );
    println!("error: {message}");
}

#[test]
fn running_out_of_memory_maps_is_an_error_that_names_the_limit() {
    // The mprotect fallback (kernels without MADV_GUARD_INSTALL) splits a
    // memory map per guard page; the default vm.max_map_count (65530) then
    // caps live green threads at about 32,000.
    let out = assert_child_passes(
        "child_running_out_of_memory_maps",
        &[("SPOOL_STACK_GUARD", "mprotect")],
    );
    print_error_lines(&out);
}

#[test]
fn child_running_out_of_memory_maps() {
    if !is_child("child_running_out_of_memory_maps") {
        return;
    }
    let max_maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().parse().unwrap_or(65530))
        .unwrap_or(65530);
    if max_maps > 200_000 {
        println!("skipped: vm.max_map_count is {max_maps}, too high to exhaust quickly");
        println!("test result: ok. 1 passed");
        return;
    }
    let rt = Runtime::builder()
        .workers(1)
        .stack_size(64 * 1024)
        .build()
        .unwrap();
    let error = rt.run(|| {
        let mut parked = Vec::new();
        let error = loop {
            match thread::Builder::new().spawn(thread::park) {
                Ok(handle) => parked.push(handle),
                Err(e) => break e,
            }
            assert!(
                parked.len() <= max_maps,
                "more live guarded stacks than memory maps allowed"
            );
        };
        for h in &parked {
            h.thread().unpark();
        }
        for h in parked {
            h.join().unwrap();
        }
        error
    });
    let message = error.to_string();
    assert_eq!(error.kind(), std::io::ErrorKind::OutOfMemory, "{message}");
    assert!(
        message.contains("vm.max_map_count"),
        "does not name the limit: {message}"
    );
    assert!(
        message.contains("sysctl"),
        "does not name the fix: {message}"
    );
    println!("error: {message}");
}
