//! The edges of a green thread's life: a runtime shutting down under
//! threads that never started or are blocked, destructors and panic
//! payloads that panic, closures too big for a coroutine's first switch,
//! and panic hooks installed before a runtime starts.
//!
//! Scenarios that abort on failure, change process-wide state (the panic
//! hook) or leave a runtime's threads leaked on purpose are `child_*`
//! tests: they do nothing unless the parent test re-executes this binary
//! to run exactly them (see `common::run_child`), and the parent checks
//! how the child ended.

use crate::common;

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{is_child, payload_text, run_child, ChildOutput, Watchdog};
use spool::cancel::{shield, CancelReason, Cancelled};
use spool::thread;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);

/// What a child test prints when it ran and passed.
const CHILD_PASSED: &str = "test result: ok. 1 passed";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
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

/// The text of a panic payload, if it is a string.
fn describe(out: &ChildOutput) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

/// Runs the child scenario `test` and asserts it ran and passed.
#[track_caller]
fn assert_child_passes(test: &str) -> ChildOutput {
    let out = run_child(test, &[]);
    assert!(
        out.status.success() && out.stdout.contains(CHILD_PASSED),
        "child `{test}` failed:\n{}",
        describe(&out)
    );
    out
}

/// A panic hook that stays quiet about the panics a child causes on
/// purpose (whose message contains one of `expected`) and reports every
/// other one as before. Installed before any runtime starts, so spool
/// chains to it for green threads too.
fn quiet_panics(expected: &'static [&'static str]) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = payload_text(info.payload());
        if !expected.iter().any(|e| text.contains(e)) {
            report(info);
        }
    }));
}

// ---------------------------------------------------------------------------
// A scoped thread discarded unrun at shutdown: its closure's captures are
// dropped before the scope can return.
// ---------------------------------------------------------------------------

static SCOPE_RETURNED: AtomicBool = AtomicBool::new(false);
static DROP_SAW_SCOPE_RETURNED: AtomicBool = AtomicBool::new(false);
static SLOW_DROP_DONE: AtomicBool = AtomicBool::new(false);

/// Captured by a scoped thread that never runs: its `Drop` takes its time,
/// then reads the data it borrows and records whether the scope had
/// already returned (when the borrow could already be freed).
struct SlowDrop<'a> {
    borrowed: &'a [u64],
}

impl Drop for SlowDrop<'_> {
    fn drop(&mut self) {
        std::thread::sleep(ms(200));
        if SCOPE_RETURNED.load(Ordering::SeqCst) {
            DROP_SAW_SCOPE_RETURNED.store(true, Ordering::SeqCst);
        }
        black_box(self.borrowed.iter().sum::<u64>());
        SLOW_DROP_DONE.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_scoped_thread_discarded_at_shutdown_drops_its_closure_before_the_scope_returns() {
    let _watchdog = Watchdog::new(
        "a_scoped_thread_discarded_at_shutdown_drops_its_closure_before_the_scope_returns",
        LIMIT,
    );
    assert_child_passes("child_scoped_closure_dropped_before_scope_returns");
}

#[test]
fn child_scoped_closure_dropped_before_scope_returns() {
    if !is_child("child_scoped_closure_dropped_before_scope_returns") {
        return;
    }
    quiet_panics(&["a scoped thread panicked"]);
    let runtime = Arc::new(Mutex::new(Some(
        Runtime::builder().workers(1).build().unwrap(),
    )));
    let data: Vec<u64> = (0..1000).collect();
    let scoped = catch_unwind(AssertUnwindSafe(|| {
        thread::scope(|s| {
            let guard = runtime.lock().unwrap();
            let rt = guard.as_ref().unwrap();
            rt.run(|| {
                // Runs next on the only worker: holds it, then shuts the
                // runtime down from inside with no grace and keeps holding
                // the worker until the runtime has stopped (spawning fails
                // then), so the scoped thread queued behind it never
                // starts and is discarded when the worker stops.
                let runtime = Arc::clone(&runtime);
                thread::spawn(move || {
                    std::thread::sleep(ms(50));
                    let rt = runtime.lock().unwrap().take().unwrap();
                    let _ = rt.shutdown(Duration::ZERO);
                    while thread::Builder::new().spawn(|| {}).is_ok() {
                        std::thread::sleep(ms(1));
                    }
                });
                let probe = SlowDrop { borrowed: &data };
                s.spawn(move || {
                    let _probe = probe;
                    unreachable!("the scoped thread ran after its runtime shut down");
                });
            });
            drop(guard);
        })
    }));
    SCOPE_RETURNED.store(true, Ordering::SeqCst);
    // Keep `data` alive until the destructor is done, so that on failure
    // this test reports the order instead of reading freed memory.
    wait_os("the discarded closure was dropped", || {
        SLOW_DROP_DONE.load(Ordering::SeqCst)
    });
    drop(data);
    assert!(
        !DROP_SAW_SCOPE_RETURNED.load(Ordering::SeqCst),
        "`scope` returned while the captures of its unrun thread were still being dropped"
    );
    // The thread never ran: its result is an error, which the scope reports.
    assert!(scoped.is_err());
}

// ---------------------------------------------------------------------------
// A panic payload whose `Drop` panics never unwinds a worker.
// ---------------------------------------------------------------------------

/// A panic payload whose destructor panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's destructor panicked");
    }
}

/// The message spool aborts with when a green thread's panic payload
/// panics while being dropped.
const PAYLOAD_ABORT: &str = "panic payload panicked while being dropped";

#[test]
fn a_panic_payload_that_panics_on_drop_aborts_with_a_clear_message() {
    let _watchdog = Watchdog::new(
        "a_panic_payload_that_panics_on_drop_aborts_with_a_clear_message",
        LIMIT,
    );
    let out = run_child("child_engine_payload_panics_on_drop", &[]);
    assert_eq!(
        out.signal(),
        Some(libc::SIGABRT),
        "the process was not aborted:\n{}",
        describe(&out)
    );
    assert!(
        out.stderr.contains(PAYLOAD_ABORT),
        "the abort did not say why:\n{}",
        describe(&out)
    );
}

#[test]
fn child_engine_payload_panics_on_drop() {
    if !is_child("child_engine_payload_panics_on_drop") {
        return;
    }
    // The engine's own spawn: no `spool::thread` wrapper catches the panic.
    let rt = spool_runtime::Runtime::new(spool_runtime::RuntimeConfig {
        workers: Some(1),
        ..Default::default()
    })
    .unwrap();
    rt.spawn(spool_runtime::SpawnOptions::default(), || {
        std::panic::panic_any(PanicsOnDrop)
    })
    .unwrap();
    // The worker aborts the process; if it did not, show that it lives on.
    std::thread::sleep(ms(500));
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(spool_runtime::SpawnOptions::default(), move || {
        tx.send(()).unwrap()
    })
    .unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the worker no longer runs green threads");
}

// ---------------------------------------------------------------------------
// Closures over corosensei's 1 KiB limit spawn through every path.
// ---------------------------------------------------------------------------

const BIG: usize = 64 * 1024;

/// A 64 KiB value to capture, and its checksum.
fn big_value(seed: u8) -> ([u8; BIG], u64) {
    let mut bytes = [0u8; BIG];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    let sum = bytes.iter().map(|&b| u64::from(b)).sum();
    (bytes, sum)
}

fn checksum(bytes: &[u8; BIG]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

#[test]
fn a_64_kib_capture_spawns_through_every_path() {
    let _watchdog = Watchdog::new("a_64_kib_capture_spawns_through_every_path", LIMIT);

    let (bytes, sum) = big_value(1);
    assert_eq!(thread::spawn(move || checksum(&bytes)).join().unwrap(), sum);

    let (bytes, sum) = big_value(2);
    let handle = thread::Builder::new()
        .spawn(move || checksum(&bytes))
        .expect("Builder::spawn failed for a 64 KiB closure");
    assert_eq!(handle.join().unwrap(), sum);

    let (bytes, sum) = big_value(3);
    assert_eq!(spool::run(move || checksum(&bytes)), sum);

    let rt = Runtime::builder().workers(2).build().unwrap();
    let (bytes, sum) = big_value(4);
    assert_eq!(rt.run(move || checksum(&bytes)), sum);
    let (bytes, sum) = big_value(5);
    assert_eq!(rt.spawn(move || checksum(&bytes)).join().unwrap(), sum);

    // Borrowing closures: `run` and scoped threads.
    let (bytes, sum) = big_value(6);
    let (copy, _) = big_value(6);
    assert_eq!(
        rt.run(|| checksum(&bytes) + black_box(copy.len() as u64)),
        sum + BIG as u64
    );
    thread::scope(|s| {
        let (bytes, sum) = big_value(7);
        assert_eq!(s.spawn(move || checksum(&bytes)).join().unwrap(), sum);
        let (bytes, sum) = big_value(8);
        let handle = thread::Builder::new()
            .spawn_scoped(s, move || checksum(&bytes))
            .expect("Builder::spawn_scoped failed for a 64 KiB closure");
        assert_eq!(handle.join().unwrap(), sum);
    });

    // From inside a green thread (a worker's own spawn path), with a stack
    // roomy enough for the caller's copies of the value.
    let inner = thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let (bytes, sum) = big_value(9);
            assert_eq!(thread::spawn(move || checksum(&bytes)).join().unwrap(), sum);
            let (bytes, sum) = big_value(10);
            thread::scope(|s| {
                assert_eq!(s.spawn(move || checksum(&bytes)).join().unwrap(), sum);
            });
        })
        .unwrap();
    inner.join().unwrap();
}

// ---------------------------------------------------------------------------
// Shutdown with never-started threads whose captures panic in `Drop`.
// ---------------------------------------------------------------------------

/// Captured by a thread that never runs: its destructor spawns, which
/// fails once the runtime has shut down, and unwraps.
struct SpawnsOnDrop;

impl Drop for SpawnsOnDrop {
    fn drop(&mut self) {
        thread::Builder::new().spawn(|| {}).unwrap();
    }
}

#[test]
fn a_never_run_closure_panicking_in_drop_does_not_abort_shutdown() {
    let _watchdog = Watchdog::new(
        "a_never_run_closure_panicking_in_drop_does_not_abort_shutdown",
        LIMIT,
    );
    let out = assert_child_passes("child_never_run_closure_panics_in_drop");
    assert!(
        out.stderr.contains("panicked while being dropped unrun"),
        "no message named the contained panic:\n{}",
        describe(&out)
    );
    assert!(
        !out.stderr.contains("coroutine"),
        "a coroutine-level message leaked out:\n{}",
        describe(&out)
    );
}

#[test]
fn child_never_run_closure_panics_in_drop() {
    if !is_child("child_never_run_closure_panics_in_drop") {
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (busy, is_busy) = std::sync::mpsc::channel();
    // Holds the only worker until long after the runtime is dropped.
    rt.spawn(move || {
        busy.send(()).unwrap();
        std::thread::sleep(ms(100));
    });
    is_busy.recv().unwrap();
    let probe = SpawnsOnDrop;
    let never_run = rt.spawn(move || drop(probe));
    // No grace: the runtime stops while the worker is still busy, so the
    // thread is discarded unrun (during a grace it would start cancelled).
    let _ = rt.shutdown(Duration::ZERO);
    let err = never_run.join().unwrap_err();
    assert!(
        payload_text(&*err).contains("shut down"),
        "unexpected error: {}",
        payload_text(&*err)
    );
    // The process carries on: another runtime works.
    let rt = Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.run(|| 6 * 7), 42);
}

// ---------------------------------------------------------------------------
// `join` of a started thread that a runtime's shutdown leaves blocked.
// ---------------------------------------------------------------------------

/// A thread the shutdown cancelled ended with its `Cancelled` payload.
#[track_caller]
fn assert_shutdown_cancellation(payload: &Box<dyn std::any::Any + Send>) {
    match Cancelled::from_payload(payload) {
        Some(cancelled) => assert_eq!(cancelled.reason(), &CancelReason::Shutdown),
        None => panic!(
            "expected the shutdown's cancellation, got {:?}",
            payload_text(&**payload)
        ),
    }
}

/// The error `join` returns for a thread blocked at shutdown says so.
#[track_caller]
fn assert_abandoned(result: thread::Result<()>) {
    let payload = result.expect_err("join of a thread blocked at shutdown returned Ok");
    let text = payload_text(&*payload);
    assert!(
        text.contains("runtime shut down") && text.contains("never finish"),
        "unexpected join error: {text:?}"
    );
}

/// Threads blocked where the shutdown's cancellation cannot reach them
/// (in a shield) are left blocked: leaked after the grace period.
#[test]
fn join_of_a_thread_blocked_at_shutdown_returns_an_error() {
    let _watchdog = Watchdog::new(
        "join_of_a_thread_blocked_at_shutdown_returns_an_error",
        LIMIT,
    );
    let rt = Runtime::builder().workers(2).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&started);
    let parked = rt.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        shield(|| loop {
            thread::park();
        })
    });
    let (_keep, rx) = spool::sync::mpsc::channel::<()>();
    let s = Arc::clone(&started);
    let receiving = rt.spawn(move || {
        s.fetch_add(1, Ordering::SeqCst);
        let _ = shield(|| rx.recv());
        unreachable!("recv returned");
    });
    wait_os("both threads started", || {
        started.load(Ordering::SeqCst) == 2
    });
    // Let them block.
    std::thread::sleep(ms(20));
    let report = rt.shutdown(ms(50));
    assert_eq!(report.leaked(), 2, "{report}");
    assert_abandoned(parked.join());
    assert_abandoned(receiving.join());
}

/// A green thread drops its own two-worker runtime, then joins `blocked`,
/// a thread parked for good; first, if `let_it_unwind`, it waits (with OS
/// sleeps: no cancellation point, no switch) until `blocked`, cancelled by
/// the shutdown, has finished, so the join need not block. The dropper is
/// cancelled with every other thread of the runtime: its `join` (a
/// cancellation point) must unwind either way, with an error that names
/// the shutdown, and nothing may hang.
fn join_after_dropping_the_runtime_from_inside(let_it_unwind: bool) {
    let slot = Arc::new(Mutex::new(Some(
        Runtime::builder().workers(2).build().unwrap(),
    )));
    let guard = slot.lock().unwrap();
    let rt = guard.as_ref().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&started);
    let blocked = rt.spawn(move || {
        s.store(true, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    wait_os("the blocked thread started", || {
        started.load(Ordering::SeqCst)
    });
    let dropper_slot = Arc::clone(&slot);
    let dropper = rt.spawn(move || {
        drop(dropper_slot.lock().unwrap().take());
        // Should `blocked` share this worker it cannot unwind meanwhile,
        // hence the bound (the join then blocks and is cancelled there).
        let start = Instant::now();
        while let_it_unwind && !blocked.is_finished() && start.elapsed() < ms(500) {
            std::thread::sleep(ms(1));
        }
        blocked.join()
    });
    drop(guard);
    match dropper.join() {
        Err(payload) => assert_shutdown_cancellation(&payload),
        Ok(joined) => panic!("the dropper was not cancelled; its join returned {joined:?}"),
    }
}

#[test]
fn join_after_the_runtime_is_dropped_from_its_own_green_thread_returns_an_error() {
    let _watchdog = Watchdog::new(
        "join_after_the_runtime_is_dropped_from_its_own_green_thread_returns_an_error",
        LIMIT,
    );
    join_after_dropping_the_runtime_from_inside(false);
}

#[test]
fn a_join_that_need_not_wait_after_the_runtime_is_dropped_from_its_own_thread_still_unwinds() {
    let _watchdog = Watchdog::new(
        "a_join_that_need_not_wait_after_the_runtime_is_dropped_from_its_own_thread_still_unwinds",
        LIMIT,
    );
    // The race the test above may or may not hit, made certain: the join
    // returns without blocking, and the dropper (still running on its
    // worker, which has not switched it out since the drop) must be
    // cancelled already.
    join_after_dropping_the_runtime_from_inside(true);
}

#[test]
fn join_after_the_runtime_is_dropped_from_a_thread_that_then_returns() {
    let _watchdog = Watchdog::new(
        "join_after_the_runtime_is_dropped_from_a_thread_that_then_returns",
        LIMIT,
    );
    let slot = Arc::new(Mutex::new(Some(
        Runtime::builder().workers(1).build().unwrap(),
    )));
    let guard = slot.lock().unwrap();
    let rt = guard.as_ref().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&started);
    let blocked = rt.spawn(move || {
        s.store(true, Ordering::SeqCst);
        loop {
            thread::park();
        }
    });
    let dropper_slot = Arc::clone(&slot);
    let dropper = rt.spawn(move || {
        while !started.load(Ordering::SeqCst) {
            thread::sleep(ms(1));
        }
        drop(dropper_slot.lock().unwrap().take());
        7
    });
    drop(guard);
    // No cancellation point after the drop: the dropper returns normally.
    assert_eq!(dropper.join().unwrap(), 7);
    assert_shutdown_cancellation(&blocked.join().unwrap_err());
}

#[test]
fn a_scope_whose_thread_is_blocked_at_shutdown_returns() {
    let _watchdog = Watchdog::new("a_scope_whose_thread_is_blocked_at_shutdown_returns", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    let data = vec![1u64, 2, 3];
    let started = AtomicBool::new(false);
    // Joined: the scope returns normally.
    thread::scope(|s| {
        let handle = rt.run(|| {
            s.spawn(|| {
                started.store(true, Ordering::SeqCst);
                black_box(&data);
                shield(|| loop {
                    thread::park();
                })
            })
        });
        wait_os("the scoped thread started", || {
            started.load(Ordering::SeqCst)
        });
        assert_eq!(rt.shutdown(ms(50)).leaked(), 1);
        assert_abandoned(handle.join());
    });
    assert_eq!(data.iter().sum::<u64>(), 6);

    // Not joined: the scope reports it like a panicked thread.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let started = AtomicBool::new(false);
    let scoped = catch_unwind(AssertUnwindSafe(|| {
        thread::scope(|s| {
            rt.run(|| {
                s.spawn(|| {
                    started.store(true, Ordering::SeqCst);
                    black_box(&data);
                    shield(|| loop {
                        thread::park();
                    })
                });
            });
            wait_os("the scoped thread started", || {
                started.load(Ordering::SeqCst)
            });
            assert_eq!(rt.shutdown(ms(50)).leaked(), 1);
        })
    }));
    let payload = scoped.expect_err("the scope did not report its abandoned thread");
    assert_eq!(payload_text(&*payload), "a scoped thread panicked");
}

// ---------------------------------------------------------------------------
// A panic hook installed before the runtime starts sees green threads'
// panics.
// ---------------------------------------------------------------------------

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);
static HOOK_SAW_GREEN_NAME: AtomicBool = AtomicBool::new(false);

#[test]
fn a_panic_hook_installed_before_the_runtime_sees_green_panics() {
    let _watchdog = Watchdog::new(
        "a_panic_hook_installed_before_the_runtime_sees_green_panics",
        LIMIT,
    );
    let out = assert_child_passes("child_hook_installed_before_the_runtime");
    assert!(
        !out.stderr.contains("panicked at"),
        "spool printed its own panic message instead of calling the hook:\n{}",
        describe(&out)
    );
}

#[test]
fn child_hook_installed_before_the_runtime() {
    if !is_child("child_hook_installed_before_the_runtime") {
        return;
    }
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        if thread::current().name() == Some("counted") {
            HOOK_SAW_GREEN_NAME.store(true, Ordering::SeqCst);
        }
    }));
    let rt = Runtime::builder().workers(1).build().unwrap();
    let h = rt.run(|| {
        thread::Builder::new()
            .name("counted".into())
            .spawn(|| panic!("a green panic"))
            .unwrap()
            .join()
    });
    assert!(h.is_err());
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 1);
    assert!(HOOK_SAW_GREEN_NAME.load(Ordering::SeqCst));
    // Panics outside green threads still reach it.
    assert!(catch_unwind(|| panic!("an OS-thread panic")).is_err());
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 2);
}
