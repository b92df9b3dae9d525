//! Behaviour of `spool::thread`, the `std::thread` mirror, run under three
//! configurations the way tokio's `tests/rt_common.rs` does: every test in
//! the `rt_test!` block below is instantiated in
//!
//! * `one_worker`: the body runs as a green thread of a fresh one-worker
//!   runtime, so every green thread it spawns shares one OS thread with it
//!   (interleavings come only from switches at blocking points);
//! * `two_workers`: the same on a fresh two-worker runtime (work spreads and
//!   wakeups cross OS threads);
//! * `os_thread`: the body runs directly on the test's plain OS thread, so
//!   its blocking calls block that OS thread and its spawns go to the
//!   global runtime.
//!
//! Each test runs under a watchdog that aborts the process, naming the
//! test, if it hangs (a lost wakeup would otherwise hang `cargo test`).
//! Timing assertions are lower bounds, plus upper bounds generous enough
//! for a loaded 2-core CI machine.

use crate::common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spool::thread::{self, AccessError, Builder, Thread, ThreadId};
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);
/// Upper bound for "returns soon" (a short sleep, an early wakeup).
const GENEROUS: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `condition` (sleeping 1 ms between polls, with spool's sleep so it
/// works in green and OS threads) until it holds; panics after 30 s.
#[track_caller]
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        thread::sleep(ms(1));
    }
}

/// A panic payload that is neither `&str` nor `String`.
#[derive(Debug, PartialEq)]
struct Marker(u32);

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

spool::thread_local! {
    static COUNTER: Cell<u32> = const { Cell::new(0) };
    static NAMES: RefCell<Vec<String>> = RefCell::new(vec!["first".to_string()]);
    static GUARD: RefCell<Option<DropFlag>> = const { RefCell::new(None) };
}

// A single declaration without a trailing semicolon, with an attribute and
// visibility, and one whose initializer must never run (set() skips it).
spool::thread_local!(
    #[allow(dead_code)]
    pub(crate) static NEVER_INIT: Cell<u64> = panic!("the initializer of NEVER_INIT ran")
);

spool::thread_local! {
    static LOCAL_VEC: RefCell<Vec<u32>> = RefCell::new(Vec::new());
    static OS_VALUE: Cell<u32> = const { Cell::new(0) };
    static REENTRANT: RefCell<Option<Reentrant>> = const { RefCell::new(None) };
    static MIGRATION_COUNTER: Cell<u32> = Cell::new(0);
}

/// Its destructor records what `REENTRANT.try_with` answers while the
/// thread's locals are being destroyed.
struct Reentrant(Arc<Mutex<Option<Result<(), AccessError>>>>);

impl Drop for Reentrant {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(REENTRANT.try_with(|_| ()));
    }
}

rt_test! {
    // ---- spawn and join -------------------------------------------------

    fn spawn_and_join_100k_threads() {
        let handles: Vec<_> = (0..100_000u64).map(|i| thread::spawn(move || i * 3 + 1)).collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), i as u64 * 3 + 1);
        }
    }

    fn join_returns_owned_results() {
        let handles: Vec<_> = (0..1000usize).map(|i| thread::spawn(move || vec![i; i % 7])).collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), vec![i; i % 7]);
        }
    }

    fn detached_threads_still_run() {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let done = done.clone();
            drop(thread::spawn(move || {
                thread::yield_now();
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        wait_until("1000 detached threads ran", || done.load(Ordering::SeqCst) == 1000);
    }

    fn spawn_from_spawned_threads() {
        let outer: Vec<_> = (0..50u64)
            .map(|i| {
                thread::spawn(move || {
                    let inner: Vec<_> = (0..50u64).map(|j| thread::spawn(move || i * 100 + j)).collect();
                    inner.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let total: u64 = outer.into_iter().map(|h| h.join().unwrap()).sum();
        let expected: u64 = (0..50u64).flat_map(|i| (0..50u64).map(move |j| i * 100 + j)).sum();
        assert_eq!(total, expected);
    }

    fn deep_chain_of_nested_spawns() {
        fn chain(depth: u32) -> u32 {
            if depth == 0 {
                return 0;
            }
            thread::spawn(move || chain(depth - 1)).join().unwrap() + 1
        }
        assert_eq!(chain(300), 300);
    }

    // ---- panics ---------------------------------------------------------

    fn join_returns_the_panic_payload() {
        let h = Builder::new()
            .name("panicker-str".into())
            .spawn(|| -> u32 { panic!("static message") })
            .unwrap();
        assert_eq!(h.thread().name(), Some("panicker-str"));
        let err = h.join().unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"static message"));

        let n = 42;
        let h = Builder::new()
            .name("panicker-string".into())
            .spawn(move || -> u32 { panic!("formatted {n}") })
            .unwrap();
        let err = h.join().unwrap_err();
        assert_eq!(err.downcast_ref::<String>().map(String::as_str), Some("formatted 42"));

        let err = thread::spawn(|| std::panic::panic_any(Marker(7))).join().unwrap_err();
        assert_eq!(err.downcast_ref::<Marker>(), Some(&Marker(7)));
    }

    fn runtime_keeps_working_after_many_panics() {
        let handles: Vec<_> = (0..100u32)
            .map(|i| {
                Builder::new()
                    .name(format!("panicker-{i}"))
                    .spawn(move || -> u32 {
                        if i % 2 == 0 {
                            thread::yield_now();
                        }
                        panic!("panic number {i}")
                    })
                    .unwrap()
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let err = h.join().unwrap_err();
            assert_eq!(err.downcast_ref::<String>(), Some(&format!("panic number {i}")));
        }
        assert!(!thread::panicking());
        let sum: u64 = (0..1000u64)
            .map(|i| thread::spawn(move || i))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(sum, 999 * 1000 / 2);
    }

    fn threads_that_block_while_unwinding() {
        // Destructors run during unwinding may block (join, park, sleep),
        // switching the unwinding green thread out while others run and
        // panic too.
        struct BlockOnDrop;
        impl Drop for BlockOnDrop {
            fn drop(&mut self) {
                thread::yield_now();
                thread::sleep(ms(1));
                assert_eq!(thread::spawn(|| 5).join().unwrap(), 5);
            }
        }
        let handles: Vec<_> = (0..50u32)
            .map(|i| {
                thread::spawn(move || {
                    let _guard = BlockOnDrop;
                    thread::yield_now();
                    std::panic::panic_any(Marker(i))
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap_err().downcast_ref::<Marker>(), Some(&Marker(i as u32)));
        }
        assert_eq!(thread::spawn(|| 1).join().unwrap(), 1);
    }

    fn panicking_is_true_only_while_unwinding() {
        struct Probe(Arc<AtomicBool>);
        impl Drop for Probe {
            fn drop(&mut self) {
                self.0.store(thread::panicking(), Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicBool::new(false));
        let probe = Probe(seen.clone());
        let h = thread::spawn(move || {
            let _probe = probe;
            panic!("unwinding on purpose");
        });
        assert!(h.join().is_err());
        assert!(seen.load(Ordering::SeqCst), "panicking() was false in a destructor run by a panic");
        assert!(!thread::panicking());
        assert!(!thread::spawn(thread::panicking).join().unwrap());
    }

    fn panicking_is_per_green_thread() {
        // A green thread that switches out in the middle of unwinding must
        // not make *other* green threads (on the same worker, in
        // `one_worker`) see `panicking() == true`: `MutexGuard`s and
        // drop-bombs rely on it.
        struct Stall {
            unwinding: Arc<AtomicBool>,
            release: Arc<AtomicBool>,
        }
        impl Drop for Stall {
            fn drop(&mut self) {
                self.unwinding.store(true, Ordering::SeqCst);
                while !self.release.load(Ordering::SeqCst) {
                    thread::park();
                }
            }
        }
        let unwinding = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let checked = Arc::new(AtomicBool::new(false));
        let stall = Stall { unwinding: unwinding.clone(), release: release.clone() };
        let h = thread::spawn(move || {
            let _stall = stall;
            panic!("stalled unwinding");
        });
        // Released from a plain OS thread once we have looked (or after a
        // second, in case the runtime blocks the worker instead of
        // switching while a thread unwinds, so that this cannot deadlock).
        let releaser = {
            let (checked, release, target) = (checked.clone(), release.clone(), h.thread().clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                while !checked.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(1) {
                    std::thread::sleep(ms(1));
                }
                release.store(true, Ordering::SeqCst);
                target.unpark();
            })
        };
        wait_until("the thread is unwinding", || unwinding.load(Ordering::SeqCst));
        let here = thread::panicking();
        let in_others: Vec<bool> = (0..4).map(|_| thread::spawn(thread::panicking).join().unwrap()).collect();
        checked.store(true, Ordering::SeqCst);
        assert!(h.join().is_err());
        releaser.join().unwrap();
        assert!(!here, "panicking() is true in a thread that is not panicking (another one is unwinding)");
        assert_eq!(in_others, [false; 4], "panicking() leaked into fresh threads");
    }

    // ---- park and unpark ------------------------------------------------

    fn unpark_before_park_returns_at_once() {
        thread::current().unpark();
        thread::park();

        let h = thread::spawn(|| {
            thread::current().unpark();
            thread::park();
            5
        });
        assert_eq!(h.join().unwrap(), 5);

        // The token is set by another thread while the target still runs.
        let unparked = Arc::new(AtomicBool::new(false));
        let flag = unparked.clone();
        let h = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            thread::park();
            6
        });
        h.thread().unpark();
        unparked.store(true, Ordering::SeqCst);
        assert_eq!(h.join().unwrap(), 6);
    }

    fn many_unparkers_to_one_parker() {
        const GREEN: usize = 16;
        const OS: usize = 4;
        for _round in 0..20 {
            let arrived = Arc::new(AtomicUsize::new(0));
            let parker = {
                let arrived = arrived.clone();
                thread::spawn(move || {
                    while arrived.load(Ordering::SeqCst) < GREEN + OS {
                        thread::park();
                    }
                })
            };
            let target = parker.thread().clone();
            let green: Vec<_> = (0..GREEN)
                .map(|_| {
                    let (arrived, target) = (arrived.clone(), target.clone());
                    thread::spawn(move || {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        target.unpark();
                    })
                })
                .collect();
            let os: Vec<_> = (0..OS)
                .map(|_| {
                    let (arrived, target) = (arrived.clone(), target.clone());
                    std::thread::spawn(move || {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        target.unpark();
                    })
                })
                .collect();
            for h in green {
                h.join().unwrap();
            }
            parker.join().unwrap();
            for h in os {
                h.join().unwrap();
            }
        }
    }

    fn ping_pong_10k_round_trips() {
        const ROUNDS: usize = 10_000;
        let turn = Arc::new(AtomicUsize::new(0));
        let me = thread::current();
        let other = {
            let turn = turn.clone();
            thread::spawn(move || {
                for i in 0..ROUNDS {
                    while turn.load(Ordering::SeqCst) != 2 * i + 1 {
                        thread::park();
                    }
                    turn.store(2 * i + 2, Ordering::SeqCst);
                    me.unpark();
                }
            })
        };
        let them = other.thread().clone();
        for i in 0..ROUNDS {
            while turn.load(Ordering::SeqCst) != 2 * i {
                thread::park();
            }
            turn.store(2 * i + 1, Ordering::SeqCst);
            them.unpark();
        }
        while turn.load(Ordering::SeqCst) != 2 * ROUNDS {
            thread::park();
        }
        other.join().unwrap();
    }

    fn unpark_of_a_finished_thread_is_harmless() {
        let h = thread::spawn(|| 1);
        let stale = h.thread().clone();
        wait_until("the thread finished", || h.is_finished());
        stale.unpark();
        stale.unpark();
        assert_eq!(h.join().unwrap(), 1);
        stale.unpark();

        let stale: Vec<Thread> = (0..1000)
            .map(|_| thread::spawn(|| ()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| {
                let t = h.thread().clone();
                h.join().unwrap();
                t
            })
            .collect();
        for t in &stale {
            t.unpark();
        }
        // Their memory may be reused by new threads: those still work.
        let go = Arc::new(AtomicBool::new(false));
        let fresh: Vec<_> = (0..1000u32)
            .map(|i| {
                let go = go.clone();
                thread::spawn(move || {
                    while !go.load(Ordering::SeqCst) {
                        thread::park();
                    }
                    i
                })
            })
            .collect();
        for t in &stale {
            t.unpark();
        }
        go.store(true, Ordering::SeqCst);
        for (i, h) in fresh.into_iter().enumerate() {
            h.thread().unpark();
            assert_eq!(h.join().unwrap(), i as u32);
        }
    }

    fn park_timeout_waits_at_least_the_timeout() {
        let h = thread::spawn(|| {
            let start = Instant::now();
            thread::park_timeout(ms(30));
            start.elapsed()
        });
        let waited = h.join().unwrap();
        assert!(waited >= ms(30), "park_timeout(30 ms) returned after {waited:?}");
        assert!(waited <= GENEROUS, "park_timeout(30 ms) returned after {waited:?}");

        let start = Instant::now();
        thread::park_timeout(ms(20));
        let waited = start.elapsed();
        assert!(waited >= ms(20), "park_timeout(20 ms) returned after {waited:?}");
        assert!(waited <= GENEROUS, "park_timeout(20 ms) returned after {waited:?}");

        thread::park_timeout(Duration::ZERO);
    }

    fn park_timeout_returns_early_when_unparked() {
        let parked = Arc::new(AtomicBool::new(false));
        let flag = parked.clone();
        let h = thread::spawn(move || {
            flag.store(true, Ordering::SeqCst);
            let start = Instant::now();
            thread::park_timeout(Duration::from_secs(60));
            start.elapsed()
        });
        wait_until("the thread is about to park", || parked.load(Ordering::SeqCst));
        thread::sleep(ms(5));
        h.thread().unpark();
        let waited = h.join().unwrap();
        assert!(waited < Duration::from_secs(30), "unparked park_timeout(60 s) returned after {waited:?}");

        // A timeout too large to add to `Instant::now()`.
        let h = thread::spawn(|| thread::park_timeout(Duration::MAX));
        thread::sleep(ms(5));
        h.thread().unpark();
        h.join().unwrap();

        // A token that is already there is consumed at once.
        thread::current().unpark();
        let start = Instant::now();
        thread::park_timeout(Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    fn many_timed_parks_unparked_early() {
        // Each early unpark leaves a pending timer behind; they must not
        // disturb later waits.
        let handles: Vec<_> = (0..200)
            .map(|_| {
                thread::spawn(|| {
                    for _ in 0..5 {
                        thread::park_timeout(Duration::from_secs(60));
                    }
                })
            })
            .collect();
        for _ in 0..5 {
            thread::sleep(ms(2));
            for h in &handles {
                h.thread().unpark();
            }
        }
        // Keep unparking until all are done (tokens do not add up, so one
        // unpark may cover two park_timeouts' worth of wakeups only if it
        // arrives between them).
        while !handles.iter().all(|h| h.is_finished()) {
            for h in &handles {
                h.thread().unpark();
            }
            thread::sleep(ms(1));
        }
        for h in handles {
            h.join().unwrap();
        }
        let start = Instant::now();
        thread::sleep(ms(20));
        assert!(start.elapsed() >= ms(20));
    }

    // ---- sleep ----------------------------------------------------------

    fn sleep_lasts_at_least_its_duration() {
        for wanted in [ms(1), ms(20)] {
            let start = Instant::now();
            thread::sleep(wanted);
            let slept = start.elapsed();
            assert!(slept >= wanted, "sleep({wanted:?}) returned after {slept:?}");
            assert!(slept <= GENEROUS, "sleep({wanted:?}) returned after {slept:?}");
        }
        let slept = thread::spawn(|| {
            let start = Instant::now();
            thread::sleep(ms(20));
            start.elapsed()
        })
        .join()
        .unwrap();
        assert!(slept >= ms(20) && slept <= GENEROUS, "sleep(20 ms) in a child took {slept:?}");
    }

    fn sleep_zero_returns() {
        thread::sleep(Duration::ZERO);
        thread::sleep(Duration::from_nanos(1));
        thread::spawn(|| thread::sleep(Duration::ZERO)).join().unwrap();
    }

    fn many_concurrent_sleepers_all_wake() {
        let handles: Vec<_> = (0..1000u64)
            .map(|i| {
                thread::spawn(move || {
                    let wanted = ms(1 + i % 50);
                    let start = Instant::now();
                    thread::sleep(wanted);
                    (wanted, start.elapsed())
                })
            })
            .collect();
        for h in handles {
            let (wanted, slept) = h.join().unwrap();
            assert!(slept >= wanted, "sleep({wanted:?}) returned after {slept:?}");
        }
    }

    fn unpark_during_sleep_leaves_a_token() {
        let sleeping = Arc::new(AtomicBool::new(false));
        let flag = sleeping.clone();
        let h = thread::spawn(move || {
            flag.store(true, Ordering::SeqCst);
            let start = Instant::now();
            thread::sleep(ms(100));
            let slept = start.elapsed();
            let start = Instant::now();
            thread::park_timeout(Duration::from_secs(20));
            (slept, start.elapsed())
        });
        wait_until("the thread is about to sleep", || sleeping.load(Ordering::SeqCst));
        thread::sleep(ms(10));
        h.thread().unpark();
        let (slept, parked) = h.join().unwrap();
        assert!(slept >= ms(100), "an unpark ended sleep(100 ms) after {slept:?}");
        assert!(parked < Duration::from_secs(10), "the unpark during sleep left no token: park waited {parked:?}");
    }

    fn token_set_before_sleep_survives_it() {
        thread::current().unpark();
        let start = Instant::now();
        thread::sleep(ms(20));
        let slept = start.elapsed();
        assert!(slept >= ms(20), "a pending token ended sleep(20 ms) after {slept:?}");
        let start = Instant::now();
        thread::park_timeout(Duration::from_secs(20));
        let parked = start.elapsed();
        assert!(parked < Duration::from_secs(10), "sleep consumed the token: park waited {parked:?}");
    }

    // ---- yield_now ------------------------------------------------------

    fn yield_now_lets_others_run() {
        // In `one_worker` both threads share one OS thread: only yield_now
        // lets the other make progress.
        const ROUNDS: usize = 1000;
        let turn = Arc::new(AtomicUsize::new(0));
        let other = {
            let turn = turn.clone();
            thread::spawn(move || {
                for i in 0..ROUNDS {
                    while turn.load(Ordering::SeqCst) != 2 * i + 1 {
                        thread::yield_now();
                    }
                    turn.store(2 * i + 2, Ordering::SeqCst);
                }
            })
        };
        for i in 0..ROUNDS {
            while turn.load(Ordering::SeqCst) != 2 * i {
                thread::yield_now();
            }
            turn.store(2 * i + 1, Ordering::SeqCst);
        }
        while turn.load(Ordering::SeqCst) != 2 * ROUNDS {
            thread::yield_now();
        }
        other.join().unwrap();
    }

    fn yield_loop_does_not_starve_timers() {
        // A thread that only yields keeps its worker's run queue non-empty;
        // a sleeper on the same worker must still wake.
        let woke = Arc::new(AtomicBool::new(false));
        let flag = woke.clone();
        let sleeper = thread::spawn(move || {
            thread::sleep(ms(10));
            flag.store(true, Ordering::SeqCst);
        });
        let start = Instant::now();
        while !woke.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(30), "a sleeper never woke while another thread yielded");
            thread::yield_now();
        }
        sleeper.join().unwrap();
    }

    fn yield_loop_does_not_starve_remote_unparks() {
        // A parked thread unparked from a plain OS thread must run even
        // while another green thread yields in a loop.
        let woke = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let parked = {
            let (woke, go) = (woke.clone(), go.clone());
            thread::spawn(move || {
                while !go.load(Ordering::SeqCst) {
                    thread::park();
                }
                woke.store(true, Ordering::SeqCst);
            })
        };
        let target = parked.thread().clone();
        let remote = {
            let go = go.clone();
            std::thread::spawn(move || {
                std::thread::sleep(ms(10));
                go.store(true, Ordering::SeqCst);
                target.unpark();
            })
        };
        let start = Instant::now();
        while !woke.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(30), "a remote unpark was never served");
            thread::yield_now();
        }
        parked.join().unwrap();
        remote.join().unwrap();
    }

    // ---- scoped threads -------------------------------------------------

    fn scoped_threads_mutate_disjoint_borrowed_slices() {
        let mut data = vec![0usize; 10_000];
        thread::scope(|s| {
            for (i, chunk) in data.chunks_mut(100).enumerate() {
                s.spawn(move || {
                    for (j, x) in chunk.iter_mut().enumerate() {
                        *x = i * 100 + j;
                        if j % 10 == 0 {
                            thread::yield_now();
                        }
                    }
                });
            }
        });
        assert!(data.iter().enumerate().all(|(i, &x)| x == i));
    }

    fn scope_returns_the_body_value() {
        let numbers = vec![1, 2, 3];
        let mut touched = false;
        let doubled = thread::scope(|s| {
            let sum = s.spawn(|| numbers.iter().sum::<i32>());
            s.spawn(|| touched = true);
            sum.join().unwrap() * 2
        });
        assert_eq!(doubled, 12);
        assert!(touched);
        assert_eq!(numbers, [1, 2, 3]);
    }

    fn scoped_threads_spawn_scoped_threads() {
        let hits = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..10 {
                s.spawn(|| {
                    for _ in 0..10 {
                        s.spawn(|| hits.fetch_add(1, Ordering::SeqCst));
                    }
                });
            }
        });
        assert_eq!(hits.load(Ordering::SeqCst), 100);
    }

    fn scope_panics_after_all_children_finish_if_one_panicked() {
        let finished = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            thread::scope(|s| {
                s.spawn(|| panic!("a scoped child fails"));
                for _ in 0..10 {
                    s.spawn(|| {
                        thread::sleep(ms(20));
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        }));
        assert!(result.is_err(), "scope returned normally although a child panicked");
        assert_eq!(finished.load(Ordering::SeqCst), 10, "scope panicked before its children finished");
    }

    fn scope_resumes_the_body_panic_after_children_finish() {
        let finished = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            thread::scope(|s| {
                for _ in 0..10 {
                    s.spawn(|| {
                        thread::sleep(ms(20));
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                s.spawn(|| panic!("a child fails too"));
                std::panic::panic_any(Marker(3));
            })
        }));
        let payload = result.unwrap_err();
        assert_eq!(payload.downcast_ref::<Marker>(), Some(&Marker(3)), "the body's payload was not resumed");
        assert_eq!(finished.load(Ordering::SeqCst), 10, "scope unwound before its children finished");
    }

    fn joined_scoped_panic_does_not_make_scope_panic() {
        let message = thread::scope(|s| {
            let h = s.spawn(|| -> u32 { panic!("joined scoped panic") });
            let payload = h.join().unwrap_err();
            *payload.downcast_ref::<&str>().unwrap()
        });
        assert_eq!(message, "joined scoped panic");
    }

    fn builder_spawn_scoped() {
        let base = 40;
        let (name, value, finished) = thread::scope(|s| {
            let h = Builder::new()
                .name("scoped-named".into())
                .stack_size(64 * 1024)
                .spawn_scoped(s, || (thread::current().name().map(str::to_owned), base + 2))
                .unwrap();
            assert_eq!(h.thread().name(), Some("scoped-named"));
            wait_until("the scoped thread finished", || h.is_finished());
            let finished = h.is_finished();
            let (name, value) = h.join().unwrap();
            (name, value, finished)
        });
        assert_eq!(name.as_deref(), Some("scoped-named"));
        assert_eq!(value, 42);
        assert!(finished);

        let err = thread::scope(|s| Builder::new().stack_size(2 << 30).spawn_scoped(s, || ()).unwrap_err());
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    // ---- current() ------------------------------------------------------

    fn current_id_is_stable_and_unique() {
        let id = thread::current().id();
        thread::yield_now();
        thread::sleep(ms(1));
        assert_eq!(thread::current().id(), id);

        let handles: Vec<_> = (0..1000)
            .map(|_| {
                thread::spawn(|| {
                    let first = thread::current().id();
                    thread::yield_now();
                    assert_eq!(thread::current().id(), first);
                    first
                })
            })
            .collect();
        let mut seen: HashSet<ThreadId> = HashSet::from([id]);
        for h in handles {
            let from_handle = h.thread().id();
            let from_inside = h.join().unwrap();
            assert_eq!(from_handle, from_inside);
            assert!(seen.insert(from_inside), "thread id {from_inside:?} given twice");
        }
        let numbers: HashSet<_> = seen.iter().map(|id| id.as_u64()).collect();
        assert_eq!(numbers.len(), 1001);
    }

    fn current_name_comes_from_the_builder() {
        let h = Builder::new()
            .name("worker-7".into())
            .spawn(|| thread::current().name().map(str::to_owned))
            .unwrap();
        assert_eq!(h.thread().name(), Some("worker-7"));
        assert!(format!("{:?}", h.thread()).contains("worker-7"));
        assert_eq!(h.join().unwrap().as_deref(), Some("worker-7"));

        let h = thread::spawn(|| thread::current().name().map(str::to_owned));
        assert_eq!(h.thread().name(), None);
        assert_eq!(h.join().unwrap(), None);
    }

    fn spawn_unchecked_borrows_from_the_caller_as_std() {
        let words = [String::from("green"), String::from("threads")];
        let mut total = 0;
        // SAFETY: joined below, while `words` and `total` are alive.
        let h = unsafe {
            Builder::new().name("unchecked".into()).spawn_unchecked(|| {
                total += words.iter().map(String::len).sum::<usize>();
                // A result that borrows from the caller too.
                words.iter().max_by_key(|w| w.len()).map(String::as_str)
            })
        }
        .unwrap();
        assert_eq!(h.thread().name(), Some("unchecked"));
        let longest: Option<&str> = h.join().unwrap();
        assert_eq!(longest, Some("threads"));
        assert_eq!(total, 12);
    }

    fn a_name_with_a_nul_byte_makes_spawn_panic_as_std() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let payload = catch_unwind(AssertUnwindSafe(|| {
            Builder::new().name("a\0b".into()).spawn(move || flag.store(true, Ordering::SeqCst))
        }))
        .expect_err("a thread name with a NUL byte must make spawn panic, as std's does");
        assert!(
            common::payload_text(&*payload).contains("thread name may not contain interior null bytes"),
            "{}",
            common::payload_text(&*payload)
        );
        // Scoped: the panic leaves nothing counted in the scope, which ends.
        let flag = Arc::clone(&ran);
        let scoped = catch_unwind(AssertUnwindSafe(|| {
            thread::scope(|s| {
                let _ = Builder::new()
                    .name("scoped\0".into())
                    .spawn_scoped(s, || flag.store(true, Ordering::SeqCst));
            })
        }));
        assert!(scoped.is_err(), "spawn_scoped must panic too");
        assert!(!ran.load(Ordering::SeqCst), "the thread must not run");
    }

    fn current_of_a_plain_os_thread_can_be_unparked_from_a_green_thread() {
        let (send, receive) = std::sync::mpsc::channel();
        let go = Arc::new(AtomicBool::new(false));
        let os = {
            let go = go.clone();
            std::thread::Builder::new()
                .name("plain-os".into())
                .spawn(move || {
                    let me = thread::current();
                    assert_eq!(thread::current().id(), me.id());
                    send.send(me).unwrap();
                    while !go.load(Ordering::SeqCst) {
                        thread::park();
                    }
                })
                .unwrap()
        };
        let os_thread = receive.recv().unwrap();
        assert_eq!(os_thread.name(), Some("plain-os"));
        assert_ne!(os_thread.id(), thread::current().id());
        let unparker = thread::spawn(move || {
            assert_ne!(thread::current().id(), os_thread.id());
            go.store(true, Ordering::SeqCst);
            os_thread.unpark();
        });
        unparker.join().unwrap();
        os.join().unwrap();
    }

    fn is_finished_tracks_the_thread() {
        let go = Arc::new(AtomicBool::new(false));
        let flag = go.clone();
        let h = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                thread::park();
            }
            9
        });
        thread::sleep(ms(5));
        assert!(!h.is_finished());
        go.store(true, Ordering::SeqCst);
        h.thread().unpark();
        wait_until("the thread finished", || h.is_finished());
        assert_eq!(h.join().unwrap(), 9);

        let h = thread::spawn(|| panic!("finished by panicking"));
        wait_until("the panicking thread finished", || h.is_finished());
        assert!(h.join().is_err());
    }

    // ---- stack sizes ----------------------------------------------------

    fn stack_size_zero_and_odd_sizes_work() {
        for size in [0, 1, 4095, 4097, 16 * 1024 + 1, 100_003, (1 << 20) | 1] {
            let h = Builder::new()
                .stack_size(size)
                .spawn(move || {
                    let buf = black_box([7u8; 2048]);
                    buf.iter().map(|&b| usize::from(b)).sum::<usize>() + size
                })
                .unwrap_or_else(|e| panic!("stack_size({size}): {e}"));
            assert_eq!(h.join().unwrap(), 7 * 2048 + size);
        }
    }

    fn oversized_stack_is_invalid_input() {
        for size in [2usize << 30, (1 << 30) + 1, usize::MAX] {
            let err = Builder::new()
                .stack_size(size)
                .spawn(|| ())
                .expect_err("a stack over 1 GiB was accepted");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "stack_size({size}): {err}");
            assert!(err.to_string().contains("1 GiB"), "stack_size({size}): message does not name the limit: {err}");
        }
        // The limit itself is accepted.
        let h = Builder::new().stack_size(1 << 30).spawn(|| 1).unwrap();
        assert_eq!(h.join().unwrap(), 1);
    }

    fn a_1_mib_stack_holds_900_kib() {
        let used = Builder::new()
            .stack_size(1 << 20)
            .spawn(|| common::use_stack_from_here(900 * 1024))
            .unwrap()
            .join()
            .unwrap();
        assert!(used >= 900 * 1024);
    }

    fn the_default_stack_holds_200_kib() {
        let used = thread::spawn(|| common::use_stack_from_here(200 * 1024)).join().unwrap();
        assert!(used >= 200 * 1024);
    }

    // ---- thread_local! --------------------------------------------------

    fn each_green_thread_has_its_own_local_value() {
        COUNTER.set(1000);
        let handles: Vec<_> = (0..100u32)
            .map(|i| {
                thread::spawn(move || {
                    assert_eq!(COUNTER.get(), 0, "a fresh thread saw another thread's value");
                    COUNTER.set(i);
                    thread::yield_now();
                    thread::sleep(ms(1));
                    assert_eq!(COUNTER.get(), i);
                    NAMES.with_borrow_mut(|names| names.push(format!("thread {i}")));
                    NAMES.with_borrow(|names| names.clone())
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), ["first".to_string(), format!("thread {i}")]);
        }
        assert_eq!(COUNTER.get(), 1000);
        assert_eq!(NAMES.with_borrow(Vec::len), 1);
    }

    fn plain_os_threads_have_their_own_local_value() {
        OS_VALUE.set(1);
        let from_os = std::thread::spawn(|| {
            let before = OS_VALUE.get();
            OS_VALUE.set(7);
            (before, OS_VALUE.get())
        })
        .join()
        .unwrap();
        assert_eq!(from_os, (0, 7));
        assert_eq!(thread::spawn(|| OS_VALUE.get()).join().unwrap(), 0);
        assert_eq!(OS_VALUE.get(), 1);
    }

    fn locals_are_destroyed_before_join_returns() {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let h = thread::spawn(move || {
            GUARD.set(Some(DropFlag(flag)));
            thread::yield_now();
        });
        h.join().unwrap();
        assert!(dropped.load(Ordering::SeqCst), "a green thread's local was not dropped before join returned");

        // Also when the thread panics.
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let h = thread::spawn(move || {
            GUARD.set(Some(DropFlag(flag)));
            panic!("exit by panic");
        });
        assert!(h.join().is_err());
        assert!(dropped.load(Ordering::SeqCst), "a panicking green thread's local was not dropped before join returned");

        // And for plain OS threads.
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        std::thread::spawn(move || GUARD.set(Some(DropFlag(flag)))).join().unwrap();
        assert!(dropped.load(Ordering::SeqCst), "an OS thread's spool local was not dropped at exit");
    }

    fn cell_and_refcell_helpers() {
        thread::spawn(|| {
            assert_eq!(COUNTER.get(), 0);
            COUNTER.set(5);
            assert_eq!(COUNTER.replace(6), 5);
            assert_eq!(COUNTER.take(), 6);
            assert_eq!(COUNTER.get(), 0);
            COUNTER.with(|c| c.set(9));
            assert_eq!(COUNTER.get(), 9);

            NEVER_INIT.set(3);
            assert_eq!(NEVER_INIT.get(), 3);

            assert_eq!(NAMES.with_borrow(|v| v.clone()), ["first"]);
            NAMES.with_borrow_mut(|v| v.push("second".into()));
            assert_eq!(NAMES.with_borrow(Vec::len), 2);
            assert_eq!(NAMES.replace(vec!["x".into()]), ["first", "second"]);
            assert_eq!(NAMES.take(), ["x"]);
            assert!(NAMES.with_borrow(Vec::is_empty));
            NAMES.set(vec!["y".into()]);
            assert_eq!(NAMES.with_borrow(|v| v.clone()), ["y"]);

            LOCAL_VEC.set(vec![1]);
            LOCAL_VEC.with_borrow_mut(|v| v.push(2));
            assert_eq!(LOCAL_VEC.take(), [1, 2]);
            assert_eq!(LOCAL_VEC.try_with(|v| v.borrow().len()), Ok(0));
        })
        .join()
        .unwrap();
    }

    fn try_with_during_destruction_is_an_access_error() {
        let answer = Arc::new(Mutex::new(None));
        let slot = answer.clone();
        thread::spawn(move || REENTRANT.set(Some(Reentrant(slot)))).join().unwrap();
        let answer = answer.lock().unwrap().take();
        match answer {
            Some(Err(error)) => assert!(!error.to_string().is_empty()),
            other => panic!("try_with during destruction answered {other:?}, not Err(AccessError)"),
        }
    }

    fn green_threads_keep_their_worker_and_locals_across_switches() {
        // A green thread that has started runs on one worker OS thread for
        // good (a `&T` from `std::thread_local!` must not cross threads),
        // and its spool locals follow it through every kind of switch.
        let handles: Vec<_> = (0..200u32)
            .map(|i| {
                thread::spawn(move || {
                    let os_thread = std::thread::current().id();
                    MIGRATION_COUNTER.set(i * 1000);
                    for step in 1..=60u32 {
                        MIGRATION_COUNTER.set(MIGRATION_COUNTER.get() + 1);
                        match step % 4 {
                            0 => thread::yield_now(),
                            1 => thread::sleep(Duration::from_micros(100)),
                            2 => thread::park_timeout(Duration::from_micros(50)),
                            _ => thread::spawn(|| ()).join().unwrap(),
                        }
                        assert_eq!(MIGRATION_COUNTER.get(), i * 1000 + step, "a thread-local changed under a thread");
                        assert_eq!(std::thread::current().id(), os_thread, "a started green thread moved to another OS thread");
                    }
                    MIGRATION_COUNTER.get()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u32 * 1000 + 60);
        }
    }
}

// ---- tests that are not per configuration -------------------------------

#[test]
fn one_worker_runtime_runs_everything_on_one_os_thread() {
    // The premise of `one_worker`: the body and all it spawns share one OS
    // thread, distinct from the caller's.
    let _watchdog =
        common::Watchdog::new("one_worker_runtime_runs_everything_on_one_os_thread", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (body, children) = rt.run(|| {
        let body = std::thread::current().id();
        let children: Vec<_> = (0..100)
            .map(|_| thread::spawn(|| std::thread::current().id()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        (body, children)
    });
    assert_ne!(body, std::thread::current().id());
    assert!(children.iter().all(|&c| c == body));
}
