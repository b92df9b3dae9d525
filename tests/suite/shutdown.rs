//! Shutting a runtime down: `Runtime::shutdown(grace)` and dropping a
//! `Runtime` cancel every green thread with `CancelReason::Shutdown`, keep
//! the workers running for up to the grace period so the cancelled
//! threads unwind and run their destructors, and only then leak what is
//! left (threads in waits no cancellation reaches), reporting how many.
//!
//! Scenarios that print on purpose (the leak line of a dropped runtime)
//! are `child_*` tests run in a child process (see `common::run_child`).

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{is_child, payload_text, run_child, ChildOutput, Watchdog};
use spool::cancel::{shield, CancelReason, Cancelled};
use spool::net::TcpListener;
use spool::thread::{self, JoinHandle};
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);

/// A grace far longer than any cancelled thread here needs to unwind.
const GRACE: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Polls `condition` from a plain OS thread until it holds; panics after
/// 30 s.
#[track_caller]
fn wait_os(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        std::thread::sleep(ms(1));
    }
}

/// Reports its name on a std channel when dropped: the destructor of a
/// green thread ran.
struct Guard {
    name: &'static str,
    dropped: std_mpsc::Sender<&'static str>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.dropped.send(self.name);
    }
}

/// Asserts that `result` is the `Cancelled` payload of a shutdown.
#[track_caller]
fn assert_cancelled_by_shutdown<T>(what: &str, result: thread::Result<T>) {
    let payload = match result {
        Ok(_) => panic!("{what}: join returned Ok; expected the shutdown's cancellation"),
        Err(payload) => payload,
    };
    match Cancelled::from_payload(&payload) {
        Some(cancelled) => assert_eq!(
            cancelled.reason(),
            &CancelReason::Shutdown,
            "{what}: cancelled for the wrong reason"
        ),
        None => panic!(
            "{what}: join returned {:?}; expected the shutdown's cancellation",
            payload_text(&*payload)
        ),
    }
}

/// Asserts that `result` is the error of a thread the shutdown left
/// blocked (leaked).
#[track_caller]
fn assert_abandoned<T>(what: &str, result: thread::Result<T>) {
    let payload = match result {
        Ok(_) => panic!("{what}: join of a leaked thread returned Ok"),
        Err(payload) => payload,
    };
    let text = payload_text(&*payload);
    assert!(
        text.contains("runtime shut down") && text.contains("never finish"),
        "{what}: unexpected join error: {text:?}"
    );
}

/// How a test ends its runtime.
#[derive(Clone, Copy, Debug)]
enum End {
    Drop,
    Shutdown,
}

/// Spawns one green thread per kind of blocking call (`recv`, `sleep`,
/// `accept`, `Mutex::lock`, `park`), each holding a `Guard`, lets them
/// block, ends the runtime, and checks that every guard was dropped by the
/// time the runtime is gone and every `join` returns the shutdown's
/// cancellation.
fn blocked_threads_unwind(workers: usize, end: End) {
    let rt = runtime(workers);
    let (dropped_tx, dropped) = std_mpsc::channel();
    let started = Arc::new(AtomicUsize::new(0));
    let guard = |name| Guard {
        name,
        dropped: dropped_tx.clone(),
    };
    let mut handles: Vec<(&str, JoinHandle<()>)> = Vec::new();

    let (_keep_sender, rx) = spool::sync::mpsc::channel::<()>();
    let (g, s) = (guard("recv"), started.clone());
    handles.push((
        "recv",
        rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            let _ = rx.recv();
            unreachable!("recv returned");
        }),
    ));

    let (g, s) = (guard("sleep"), started.clone());
    handles.push((
        "sleep",
        rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_secs(3600));
            unreachable!("sleep returned");
        }),
    ));

    let listener = rt.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let (g, s) = (guard("accept"), started.clone());
    handles.push((
        "accept",
        rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            let _ = listener.accept();
            unreachable!("accept returned");
        }),
    ));

    // Held by this plain OS thread until the runtime is gone.
    let mutex = Arc::new(spool::sync::Mutex::new(0u32));
    let held = mutex.lock().unwrap();
    let (g, s, m) = (guard("lock"), started.clone(), mutex.clone());
    handles.push((
        "lock",
        rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            let _ = m.lock();
            unreachable!("lock returned");
        }),
    ));

    let (g, s) = (guard("park"), started.clone());
    handles.push((
        "park",
        rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            loop {
                thread::park();
            }
        }),
    ));

    let count = handles.len();
    wait_os("every thread started", || {
        started.load(Ordering::SeqCst) == count
    });
    // Let them block (a thread cancelled before it blocks unwinds at the
    // blocking call anyway).
    std::thread::sleep(ms(20));
    match end {
        End::Drop => drop(rt),
        End::Shutdown => {
            let report = rt.shutdown(GRACE);
            assert_eq!(report.leaked(), 0, "{report}");
        }
    }
    let mut ran: Vec<&str> = dropped.try_iter().collect();
    ran.sort_unstable();
    let mut expected: Vec<&str> = handles.iter().map(|(name, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(
        ran, expected,
        "destructors that ran by the time the runtime was gone ({end:?}, {workers} workers)"
    );
    for (name, handle) in handles {
        assert_cancelled_by_shutdown(name, handle.join());
    }
    drop(held);
    assert_eq!(*mutex.lock().unwrap(), 0);
}

#[test]
fn dropping_a_runtime_unwinds_threads_blocked_in_recv_sleep_accept_lock_and_park() {
    let _watchdog = Watchdog::new(
        "dropping_a_runtime_unwinds_threads_blocked_in_recv_sleep_accept_lock_and_park",
        LIMIT,
    );
    blocked_threads_unwind(1, End::Drop);
    blocked_threads_unwind(2, End::Drop);
}

#[test]
fn shutdown_unwinds_threads_blocked_in_recv_sleep_accept_lock_and_park() {
    let _watchdog = Watchdog::new(
        "shutdown_unwinds_threads_blocked_in_recv_sleep_accept_lock_and_park",
        LIMIT,
    );
    blocked_threads_unwind(1, End::Shutdown);
    blocked_threads_unwind(2, End::Shutdown);
}

#[test]
fn the_cancellation_names_the_thread_that_shut_the_runtime_down() {
    let _watchdog = Watchdog::new(
        "the_cancellation_names_the_thread_that_shut_the_runtime_down",
        LIMIT,
    );
    let rt = runtime(2);
    let parked = rt.spawn(|| loop {
        thread::park();
    });
    let (by_tx, by) = std_mpsc::channel();
    std::thread::spawn(move || {
        by_tx.send(thread::current().id()).unwrap();
        let _ = rt.shutdown(GRACE);
    })
    .join()
    .unwrap();
    let payload = parked.join().unwrap_err();
    let cancelled = Cancelled::from_payload(&payload).expect("cancelled, not panicked");
    assert_eq!(cancelled.reason(), &CancelReason::Shutdown);
    assert_eq!(cancelled.cancelled_by(), Some(by.recv().unwrap()));
}

#[test]
fn threads_in_masked_waits_are_leaked_and_counted() {
    let _watchdog = Watchdog::new("threads_in_masked_waits_are_leaked_and_counted", LIMIT);
    for workers in [1, 2] {
        let rt = runtime(workers);
        let (dropped_tx, dropped) = std_mpsc::channel();
        let started = Arc::new(AtomicUsize::new(0));
        // Shielded: no cancellation reaches the park.
        let (g, s) = (
            Guard {
                name: "shielded",
                dropped: dropped_tx.clone(),
            },
            started.clone(),
        );
        let shielded = rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            shield(|| loop {
                thread::park();
            });
        });
        // A scope waits for its shielded child: two leaked threads.
        let s = started.clone();
        let scope_waiter = rt.spawn(move || {
            thread::scope(|scope| {
                scope.spawn(|| {
                    s.fetch_add(1, Ordering::SeqCst);
                    shield(|| loop {
                        thread::park();
                    });
                });
            });
        });
        // Cancellable: unwinds within the grace.
        let (g, s) = (
            Guard {
                name: "parked",
                dropped: dropped_tx.clone(),
            },
            started.clone(),
        );
        let parked = rt.spawn(move || {
            let _g = g;
            s.fetch_add(1, Ordering::SeqCst);
            loop {
                thread::park();
            }
        });
        wait_os("every thread started", || {
            started.load(Ordering::SeqCst) == 3
        });
        std::thread::sleep(ms(20));
        let report = rt.shutdown(ms(200));
        assert_eq!(report.leaked(), 3, "{workers} workers: {report}");
        let text = report.to_string();
        assert!(
            text.contains("3 green threads") && text.contains("leaked"),
            "the report does not say what was leaked: {text:?}"
        );
        assert_eq!(dropped.try_iter().collect::<Vec<_>>(), ["parked"]);
        assert_cancelled_by_shutdown("parked", parked.join());
        assert_abandoned("shielded", shielded.join());
        assert_abandoned("scope_waiter", scope_waiter.join());
    }
}

#[test]
fn a_report_with_nothing_leaked_says_so() {
    let _watchdog = Watchdog::new("a_report_with_nothing_leaked_says_so", LIMIT);
    let rt = runtime(2);
    let parked = rt.spawn(|| loop {
        thread::park();
    });
    let report = rt.shutdown(GRACE);
    assert_eq!(report.leaked(), 0);
    assert!(!report.is_in_background());
    assert!(report.waited() <= GRACE, "{report:?}");
    assert!(
        report.to_string().contains("every green thread finished"),
        "{report}"
    );
    assert_cancelled_by_shutdown("parked", parked.join());
}

#[test]
fn a_grace_of_duration_max_waits_without_limit_until_every_thread_finished() {
    let _watchdog = Watchdog::new(
        "a_grace_of_duration_max_waits_without_limit_until_every_thread_finished",
        LIMIT,
    );
    let rt = runtime(2);
    let (dropped_tx, dropped) = std_mpsc::channel();
    let g = Guard {
        name: "sleeper",
        dropped: dropped_tx,
    };
    let sleeper = rt.spawn(move || {
        let _g = g;
        thread::sleep(Duration::from_secs(3600));
    });
    let report = rt.shutdown(Duration::MAX);
    assert_eq!(report.leaked(), 0, "{report}");
    assert_eq!(dropped.try_recv(), Ok("sleeper"));
    assert_cancelled_by_shutdown("sleeper", sleeper.join());
}

#[test]
fn shutdown_with_no_grace_leaks_what_it_cannot_stop_at_once() {
    let _watchdog = Watchdog::new(
        "shutdown_with_no_grace_leaks_what_it_cannot_stop_at_once",
        LIMIT,
    );
    let rt = runtime(2);
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let shielded = rt.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        shield(|| loop {
            thread::park();
        });
    });
    let s = started.clone();
    let parked = rt.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    wait_os("both threads started", || {
        started.load(Ordering::SeqCst) == 2
    });
    std::thread::sleep(ms(20));
    let report = rt.shutdown(Duration::ZERO);
    // The shielded thread is always leaked; the parked one unless its
    // worker happened to run it to its end before the runtime stopped.
    assert_abandoned("shielded", shielded.join());
    match parked.join() {
        Ok(()) => unreachable!("a parked loop returned"),
        Err(payload) if Cancelled::from_payload(&payload).is_some() => {
            assert_eq!(report.leaked(), 1, "{report}");
        }
        Err(payload) => {
            assert_abandoned("parked", Err::<(), _>(payload));
            assert_eq!(report.leaked(), 2, "{report}");
        }
    }
}

#[test]
fn a_thousand_threads_cancelled_at_shutdown_all_run_their_destructors() {
    let _watchdog = Watchdog::new(
        "a_thousand_threads_cancelled_at_shutdown_all_run_their_destructors",
        LIMIT,
    );
    const THREADS: usize = 1000;
    static DESTROYED: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DESTROYED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = runtime(2);
    let started = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    let gate = Arc::new(spool::sync::Mutex::new(()));
    let held = gate.lock().unwrap();
    let handles: Vec<JoinHandle<()>> = (0..THREADS)
        .map(|i| {
            let (started, gate) = (started.clone(), gate.clone());
            let (sender, rx) = spool::sync::mpsc::channel::<()>();
            senders.push(sender);
            rt.spawn(move || {
                let _counted = Counted;
                started.fetch_add(1, Ordering::SeqCst);
                match i % 4 {
                    0 => loop {
                        thread::park();
                    },
                    1 => {
                        let _ = rx.recv();
                    }
                    2 => thread::sleep(Duration::from_secs(3600)),
                    _ => drop(gate.lock()),
                }
                unreachable!("a blocked thread went on");
            })
        })
        .collect();
    wait_os("every thread started", || {
        started.load(Ordering::SeqCst) == THREADS
    });
    drop(rt);
    assert_eq!(DESTROYED.load(Ordering::SeqCst), THREADS);
    for (i, handle) in handles.into_iter().enumerate() {
        assert_cancelled_by_shutdown(&format!("thread {i}"), handle.join());
    }
    drop(held);
    drop(senders);
}

#[test]
fn a_thread_spawned_during_the_grace_starts_cancelled_and_drops_its_closure() {
    let _watchdog = Watchdog::new(
        "a_thread_spawned_during_the_grace_starts_cancelled_and_drops_its_closure",
        LIMIT,
    );
    static CLOSURE_RAN: AtomicBool = AtomicBool::new(false);
    /// Spawns a thread from a cancelled thread's destructor and joins it.
    struct SpawnsOnDrop(std_mpsc::Sender<thread::Result<()>>);
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            let (dropped_tx, _) = std_mpsc::channel();
            let g = Guard {
                name: "unrun",
                dropped: dropped_tx,
            };
            let late = thread::spawn(move || {
                let _g = g;
                CLOSURE_RAN.store(true, Ordering::SeqCst);
            });
            let _ = self.0.send(late.join());
        }
    }
    let rt = runtime(2);
    let (result_tx, result) = std_mpsc::channel();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let parked = rt.spawn(move || {
        let _spawns = SpawnsOnDrop(result_tx);
        s.store(true, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    wait_os("the thread started", || started.load(Ordering::SeqCst));
    let report = rt.shutdown(GRACE);
    assert_eq!(report.leaked(), 0, "{report}");
    assert_cancelled_by_shutdown("the late thread", result.try_recv().unwrap());
    assert!(!CLOSURE_RAN.load(Ordering::SeqCst));
    assert_cancelled_by_shutdown("parked", parked.join());
}

#[test]
fn a_scope_in_a_cancelled_threads_destructor_completes() {
    let _watchdog = Watchdog::new("a_scope_in_a_cancelled_threads_destructor_completes", LIMIT);
    /// Runs a scope with a child from a cancelled thread's destructor:
    /// the child starts cancelled and the scope returns (a scope reporting
    /// a panic there would abort the process: a panic while unwinding).
    struct ScopeOnDrop(Arc<AtomicBool>);
    impl Drop for ScopeOnDrop {
        fn drop(&mut self) {
            let mut touched = false;
            thread::scope(|s| {
                s.spawn(|| touched = true);
            });
            let _ = touched;
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let rt = runtime(1);
    let returned = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (r, s) = (returned.clone(), started.clone());
    let parked = rt.spawn(move || {
        let _scope = ScopeOnDrop(r);
        s.store(true, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    wait_os("the thread started", || started.load(Ordering::SeqCst));
    let report = rt.shutdown(GRACE);
    assert_eq!(report.leaked(), 0, "{report}");
    assert!(returned.load(Ordering::SeqCst));
    assert_cancelled_by_shutdown("parked", parked.join());
}

// ---------------------------------------------------------------------------
// Shutting down from inside one of the runtime's own green threads.
// ---------------------------------------------------------------------------

/// Shuts the runtime down (or drops it) from one of its own green threads
/// while another is parked: nothing hangs, the parked thread unwinds, and
/// the shutting-down thread itself is cancelled at its next cancellation
/// point.
fn shut_down_from_inside(end: End) {
    let slot = Arc::new(Mutex::new(Some(runtime(2))));
    let (dropped_tx, dropped) = std_mpsc::channel();
    let started = Arc::new(AtomicBool::new(false));
    let guard = slot.lock().unwrap();
    let rt = guard.as_ref().unwrap();
    let (g, s) = (
        Guard {
            name: "parked",
            dropped: dropped_tx,
        },
        started.clone(),
    );
    let parked = rt.spawn(move || {
        let _g = g;
        s.store(true, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    let (report_tx, report) = std_mpsc::channel();
    let own_slot = slot.clone();
    let closer = rt.spawn(move || {
        while !started.load(Ordering::SeqCst) {
            thread::sleep(ms(1));
        }
        let rt = own_slot.lock().unwrap().take().unwrap();
        match end {
            End::Drop => drop(rt),
            End::Shutdown => report_tx.send(rt.shutdown(GRACE)).unwrap(),
        }
        // Cancelled with every other thread of the runtime.
        thread::sleep(Duration::from_secs(3600));
    });
    drop(guard);
    assert_cancelled_by_shutdown("the closing thread", closer.join());
    assert_cancelled_by_shutdown("parked", parked.join());
    assert_eq!(dropped.recv_timeout(GRACE), Ok("parked"));
    if let End::Shutdown = end {
        let report = report.recv().unwrap();
        assert!(report.is_in_background(), "{report:?}");
        assert_eq!(report.leaked(), 0);
    }
}

#[test]
fn dropping_a_runtime_from_its_own_green_thread_does_not_hang() {
    let _watchdog = Watchdog::new(
        "dropping_a_runtime_from_its_own_green_thread_does_not_hang",
        LIMIT,
    );
    shut_down_from_inside(End::Drop);
}

#[test]
fn shutdown_from_its_own_green_thread_does_not_hang() {
    let _watchdog = Watchdog::new("shutdown_from_its_own_green_thread_does_not_hang", LIMIT);
    shut_down_from_inside(End::Shutdown);
}

#[test]
fn shutdown_from_a_green_thread_of_another_runtime_waits_without_blocking_it() {
    let _watchdog = Watchdog::new(
        "shutdown_from_a_green_thread_of_another_runtime_waits_without_blocking_it",
        LIMIT,
    );
    // One worker: a shutdown that blocked its OS thread while waiting
    // would stop the ticker below.
    let outer = runtime(1);
    let inner = runtime(1);
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let shielded = inner.spawn(move || {
        s.store(true, Ordering::SeqCst);
        shield(|| loop {
            thread::park();
        });
    });
    wait_os("the shielded thread started", || {
        started.load(Ordering::SeqCst)
    });
    let ticks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (t, st) = (ticks.clone(), stop.clone());
    let ticker = outer.spawn(move || {
        while !st.load(Ordering::SeqCst) {
            t.fetch_add(1, Ordering::SeqCst);
            thread::sleep(ms(1));
        }
    });
    let (t, st) = (ticks.clone(), stop.clone());
    let closer = outer.spawn(move || {
        while t.load(Ordering::SeqCst) == 0 {
            thread::sleep(ms(1));
        }
        let before = t.load(Ordering::SeqCst);
        let report = inner.shutdown(Duration::from_secs(1));
        let ticked = t.load(Ordering::SeqCst) - before;
        st.store(true, Ordering::SeqCst);
        (report.leaked(), ticked)
    });
    let (leaked, ticked) = closer.join().unwrap();
    ticker.join().unwrap();
    assert_eq!(leaked, 1);
    assert!(
        ticked > 0,
        "the other green thread of the closer's worker never ran during the grace"
    );
    assert_abandoned("shielded", shielded.join());
}

// ---------------------------------------------------------------------------
// The leak line of a dropped runtime.
// ---------------------------------------------------------------------------

fn describe(out: &ChildOutput) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

/// Runs the child scenario `test`, asserts it passed, and returns the
/// lines of its stderr that spool printed.
fn spool_lines_of_child(test: &str) -> Vec<String> {
    let out = run_child(test, &[]);
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "child `{test}` failed:\n{}",
        describe(&out)
    );
    out.stderr
        .lines()
        .filter(|line| line.starts_with("spool:"))
        .map(String::from)
        .collect()
}

#[test]
fn dropping_a_runtime_that_leaks_says_so_in_one_line() {
    let _watchdog = Watchdog::new("dropping_a_runtime_that_leaks_says_so_in_one_line", LIMIT);
    let lines = spool_lines_of_child("child_drop_leaking_two");
    assert_eq!(lines.len(), 1, "expected one line from spool: {lines:?}");
    let line = &lines[0];
    assert!(
        line.starts_with("spool: runtime dropped: 2 green threads did not finish within 1s")
            && line.contains("leaked"),
        "unexpected leak line: {line:?}"
    );
}

#[test]
fn child_drop_leaking_two() {
    if !is_child("child_drop_leaking_two") {
        return;
    }
    let rt = runtime(2);
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let s = started.clone();
        rt.spawn(move || {
            s.fetch_add(1, Ordering::SeqCst);
            shield(|| loop {
                thread::park();
            });
        });
    }
    let s = started.clone();
    rt.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    wait_os("every thread started", || {
        started.load(Ordering::SeqCst) == 3
    });
    drop(rt);
}

#[test]
fn dropping_a_runtime_that_leaks_nothing_prints_nothing() {
    let _watchdog = Watchdog::new(
        "dropping_a_runtime_that_leaks_nothing_prints_nothing",
        LIMIT,
    );
    let lines = spool_lines_of_child("child_drop_leaking_nothing");
    assert!(lines.is_empty(), "spool printed: {lines:?}");
}

#[test]
fn child_drop_leaking_nothing() {
    if !is_child("child_drop_leaking_nothing") {
        return;
    }
    let rt = runtime(2);
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let s = started.clone();
        rt.spawn(move || {
            s.fetch_add(1, Ordering::SeqCst);
            loop {
                thread::park();
            }
        });
    }
    wait_os("every thread started", || {
        started.load(Ordering::SeqCst) == 4
    });
    drop(rt);
}

#[test]
fn dropping_a_runtime_from_its_own_thread_reports_leaks_in_one_line() {
    let _watchdog = Watchdog::new(
        "dropping_a_runtime_from_its_own_thread_reports_leaks_in_one_line",
        LIMIT,
    );
    let lines = spool_lines_of_child("child_drop_from_inside_leaking_one");
    assert_eq!(lines.len(), 1, "expected one line from spool: {lines:?}");
    assert!(
        lines[0].starts_with("spool: runtime dropped: 1 green thread did not finish within 1s"),
        "unexpected leak line: {:?}",
        lines[0]
    );
}

#[test]
fn child_drop_from_inside_leaking_one() {
    if !is_child("child_drop_from_inside_leaking_one") {
        return;
    }
    let slot = Arc::new(Mutex::new(Some(runtime(1))));
    let guard = slot.lock().unwrap();
    let rt = guard.as_ref().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let shielded = rt.spawn(move || {
        s.store(true, Ordering::SeqCst);
        shield(|| loop {
            thread::park();
        });
    });
    let own_slot = slot.clone();
    let closer = rt.spawn(move || {
        while !started.load(Ordering::SeqCst) {
            thread::sleep(ms(1));
        }
        drop(own_slot.lock().unwrap().take());
    });
    drop(guard);
    closer.join().unwrap();
    // The leak is known once the grace is over and the workers stopped,
    // which is when the shielded thread's join returns.
    assert_abandoned("shielded", shielded.join());
    // The line is printed by the thread that finishes the shutdown, once
    // it has joined the workers: wait until it is gone.
    wait_os("the shutdown finished", || {
        !common::os_thread_names()
            .iter()
            .any(|name| name == "spool-shutdown")
    });
}
