//! Behaviour of the primitives `spool::sync` adds to std's: `Semaphore`,
//! `WaitGroup` and `Event`, through the public API only. As in
//! `tests/suite/sync_locks.rs`, every test runs on a one-worker runtime, a
//! two-worker runtime and a plain OS thread, under a watchdog, and some
//! also involve plain OS threads, so each primitive is exercised
//! green↔green, green↔OS and OS↔OS.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use spool::sync::{Arc, Event, Semaphore, WaitGroup};
use spool::thread;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);
/// Upper bound for "returns soon" on a loaded 2-core machine.
const GENEROUS: Duration = Duration::from_secs(5);

rt_test! {
    fn semaphore_never_admits_more_than_its_permits() {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
                thread::spawn(move || {
                    for _ in 0..20 {
                        let _permit = sem.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(sem.available_permits(), 3);
    }

    fn semaphore_try_acquire_and_forget() {
        let sem = Semaphore::new(2);
        let a = sem.try_acquire().expect("a free permit");
        let b = sem.try_acquire().expect("a second free permit");
        assert!(sem.try_acquire().is_none());
        drop(a);
        assert_eq!(sem.available_permits(), 1);
        b.forget();
        assert_eq!(sem.available_permits(), 1);
        sem.add_permits(2);
        assert_eq!(sem.available_permits(), 3);
    }

    fn semaphore_acquire_timeout_times_out_then_succeeds() {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.acquire();
        let start = Instant::now();
        assert!(sem.acquire_timeout(Duration::from_millis(30)).is_none());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(30) && waited < GENEROUS, "{waited:?}");
        assert!(sem.acquire_timeout(Duration::ZERO).is_none());
        // A release during the wait hands the permit over.
        let releaser = {
            let sem = sem.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                sem.add_permits(1);
            })
        };
        let permit = sem.acquire_timeout(GENEROUS).expect("handed a permit");
        releaser.join().unwrap();
        drop(permit);
        drop(held);
        assert_eq!(sem.available_permits(), 2);
    }

    fn semaphore_serves_waiters_in_arrival_order() {
        let sem = Arc::new(Semaphore::new(0));
        let order = Arc::new(spool::sync::Mutex::new(Vec::new()));
        let queued = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..5 {
            let (sem, order, queued2) = (sem.clone(), order.clone(), queued.clone());
            handles.push(thread::spawn(move || {
                queued2.fetch_add(1, Ordering::SeqCst);
                let _p = sem.acquire();
                order.lock().unwrap().push(i);
            }));
            // Let thread i queue before thread i + 1 starts.
            while queued.load(Ordering::SeqCst) <= i {
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(Duration::from_millis(5));
        }
        sem.add_permits(1);
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    fn wait_group_waits_for_every_done() {
        let wg = Arc::new(WaitGroup::new());
        let finished = Arc::new(AtomicUsize::new(0));
        for i in 0..100 {
            wg.add(1);
            let (wg, finished) = (wg.clone(), finished.clone());
            if i % 10 == 0 {
                std::thread::spawn(move || {
                    finished.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            } else {
                thread::spawn(move || {
                    thread::yield_now();
                    finished.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            }
        }
        wg.wait();
        assert_eq!(finished.load(Ordering::SeqCst), 100);
        assert_eq!(wg.count(), 0);
        // Reusable, and a wait on zero returns at once.
        wg.wait();
        assert!(wg.wait_timeout(Duration::ZERO));
    }

    fn wait_group_wait_timeout_reports_unfinished_work() {
        let wg = WaitGroup::new();
        wg.add(2);
        wg.done();
        let start = Instant::now();
        assert!(!wg.wait_timeout(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(wg.count(), 1);
        wg.done();
        assert!(wg.wait_timeout(GENEROUS));
    }

    fn event_wakes_every_waiter_and_stays_set_until_cleared() {
        let event = Arc::new(Event::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (event, waiting) = (event.clone(), waiting.clone());
                thread::spawn(move || {
                    waiting.fetch_add(1, Ordering::SeqCst);
                    event.wait();
                })
            })
            .collect();
        while waiting.load(Ordering::SeqCst) < 20 {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(!event.is_set());
        event.set();
        handles.into_iter().for_each(|h| h.join().unwrap());
        event.wait(); // set: returns at once
        event.clear();
        assert!(!event.is_set());
        assert!(!event.wait_timeout(Duration::from_millis(10)));
        assert!(!event.wait_timeout(Duration::ZERO));
    }

    fn event_set_from_an_os_thread_wakes_a_green_waiter() {
        let event = Arc::new(Event::new());
        let setter = {
            let event = event.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                event.set();
            })
        };
        let waiter = {
            let event = event.clone();
            thread::spawn(move || event.wait_timeout(GENEROUS))
        };
        assert!(waiter.join().unwrap());
        setter.join().unwrap();
    }
}

#[test]
fn done_without_add_panics_with_a_message() {
    let wg = WaitGroup::new();
    let err = std::panic::catch_unwind(|| wg.done()).expect_err("must panic");
    let message = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("more times than add"), "{message}");
    assert_eq!(wg.count(), 0);
}

#[test]
fn statics_compile_and_work() {
    static SEM: Semaphore = Semaphore::new(1);
    static WG: WaitGroup = WaitGroup::new();
    static EVENT: Event = Event::new();
    let p = SEM.acquire();
    assert!(SEM.try_acquire().is_none());
    drop(p);
    WG.add(1);
    let h = thread::spawn(|| {
        EVENT.wait();
        WG.done();
    });
    EVENT.set();
    WG.wait();
    h.join().unwrap();
}
