//! Behaviour of `spool::sync`'s locks and waiters (`Mutex`, `RwLock`,
//! `Condvar`, `Barrier`, `Once`, `OnceLock`, `LazyLock`), through the public
//! API only. Like `tests/suite/thread.rs`, every test in the `rt_test!` block runs
//! in three configurations:
//!
//! * `one_worker`: the body is a green thread of a fresh one-worker
//!   runtime, so every green thread it spawns shares its OS thread (a wait
//!   that blocked the OS thread instead of parking would deadlock);
//! * `two_workers`: the same on two workers (wakeups cross OS threads);
//! * `os_thread`: the body runs on the test's plain OS thread, and its
//!   spawns go to the global runtime.
//!
//! Some tests also start plain OS threads (`spawn_os`), so every primitive
//! is exercised green↔green, green↔OS and OS↔OS. Each test runs under a
//! watchdog that aborts the process, naming the test, if it hangs: a lost
//! wakeup fails instead of hanging. Timing assertions are exact lower
//! bounds plus generous upper bounds for a loaded 2-core machine.

use crate::common;

use std::collections::VecDeque;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use spool::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spool::sync::{
    Arc, Barrier, Condvar, LazyLock, Mutex, Once, OnceLock, RwLock, RwLockReadGuard,
    RwLockWriteGuard, TryLockError,
};
use spool::thread;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);
/// Upper bound for "returns soon".
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

/// A plain OS thread whose completion is signalled through spool's own
/// `Mutex` + `Condvar`, so joining it parks a green joiner instead of
/// blocking its worker (std's `join` would block the worker OS thread).
struct OsThread<T> {
    handle: std::thread::JoinHandle<T>,
    done: Arc<(Mutex<bool>, Condvar)>,
}

fn spawn_os<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> OsThread<T> {
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let signal = done.clone();
    let handle = std::thread::spawn(move || {
        /// Signals even when `f` panics.
        struct Signal(Arc<(Mutex<bool>, Condvar)>);
        impl Drop for Signal {
            fn drop(&mut self) {
                *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
                self.0 .1.notify_all();
            }
        }
        let _signal = Signal(signal);
        f()
    });
    OsThread { handle, done }
}

impl<T> OsThread<T> {
    fn join(self) -> std::thread::Result<T> {
        let (lock, cvar) = &*self.done;
        drop(
            cvar.wait_while(lock.lock().unwrap(), |done| !*done)
                .unwrap(),
        );
        self.handle.join()
    }
}

rt_test! {
    // ---- Mutex ---------------------------------------------------------

    fn mutex_counts_exactly_across_many_green_threads() {
        let counter = Arc::new(Mutex::new(0u64));
        let inside = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let (counter, inside) = (counter.clone(), inside.clone());
                thread::spawn(move || {
                    for j in 0..1000 {
                        let mut n = counter.lock().unwrap();
                        assert!(!inside.swap(true, Ordering::Relaxed), "two owners at once");
                        *n += 1;
                        if (i + j) % 97 == 0 {
                            thread::yield_now(); // switch out while holding it
                        }
                        inside.store(false, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*counter.lock().unwrap(), 64_000);
    }

    fn mutex_hands_off_between_green_and_os_threads() {
        let counter = Arc::new(Mutex::new(0u64));
        // An OS thread blocks on a mutex a green thread holds, then gets it.
        let guard = counter.lock().unwrap();
        let c = counter.clone();
        let os = spawn_os(move || *c.lock().unwrap() += 1);
        thread::sleep(ms(20));
        assert_eq!(*guard, 0, "the OS thread got in while we held the lock");
        drop(guard);
        os.join().unwrap();
        assert_eq!(*counter.lock().unwrap(), 1);
        // And the other way: a green thread waits for an OS thread's lock.
        let (held_tx, held_rx) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let c = counter.clone();
        let (held, release) = (held_tx.clone(), held_rx.clone());
        let os = spawn_os(move || {
            let mut n = c.lock().unwrap();
            held.store(true, Ordering::SeqCst);
            while !release.load(Ordering::SeqCst) {
                std::thread::sleep(ms(1));
            }
            *n += 1;
        });
        wait_until("the OS thread holds the lock", || held_tx.load(Ordering::SeqCst));
        let c = counter.clone();
        let green = thread::spawn(move || *c.lock().unwrap() += 10);
        thread::sleep(ms(10));
        held_rx.store(true, Ordering::SeqCst);
        green.join().unwrap();
        os.join().unwrap();
        assert_eq!(*counter.lock().unwrap(), 12);
        // Then both sides hammer it.
        let c = counter.clone();
        let os = spawn_os(move || (0..20_000).for_each(|_| *c.lock().unwrap() += 1));
        let c = counter.clone();
        let green = thread::spawn(move || (0..20_000).for_each(|_| *c.lock().unwrap() += 1));
        green.join().unwrap();
        os.join().unwrap();
        assert_eq!(*counter.lock().unwrap(), 40_012);
    }

    fn try_lock_would_block_while_held_elsewhere() {
        let m = Arc::new(Mutex::new(1));
        let guard = m.lock().unwrap();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        let m2 = m.clone();
        let other = thread::spawn(move || matches!(m2.try_lock(), Err(TryLockError::WouldBlock)));
        assert!(other.join().unwrap());
        drop(guard);
        assert_eq!(*m.try_lock().unwrap(), 1);
        // Held by a parked green thread.
        let (m2, go) = (m.clone(), Arc::new(AtomicBool::new(false)));
        let go2 = go.clone();
        let holder = thread::spawn(move || {
            let _g = m2.lock().unwrap();
            while !go2.load(Ordering::SeqCst) {
                thread::sleep(ms(1));
            }
        });
        wait_until("the holder locked", || m.try_lock().is_err());
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        go.store(true, Ordering::SeqCst);
        holder.join().unwrap();
        assert!(m.try_lock().is_ok());
    }

    fn mutex_poisoning_matches_std() {
        let m = Arc::new(Mutex::new(vec![1]));
        let m2 = m.clone();
        let result = thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            g.push(2);
            panic!("poisoning on purpose");
        })
        .join();
        assert!(result.is_err());
        assert!(m.is_poisoned());
        // lock() returns Err with a working guard inside.
        let err = m.lock().unwrap_err();
        assert_eq!(**err.get_ref(), [1, 2]);
        let mut g = err.into_inner();
        g.push(3);
        drop(g);
        assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
        assert!(format!("{m:?}").contains("poisoned: true"));
        m.clear_poison();
        assert!(!m.is_poisoned());
        assert_eq!(*m.lock().unwrap(), [1, 2, 3]);
        // A lock taken while already panicking does not poison; into_inner
        // and get_mut report poison with the data inside.
        let m3 = Arc::new(Mutex::new(5));
        let m4 = m3.clone();
        let _ = thread::spawn(move || {
            let _g = m4.lock().unwrap();
            panic!("poison again");
        })
        .join();
        let mut m3 = Arc::try_unwrap(m3).unwrap();
        assert_eq!(*m3.get_mut().unwrap_err().into_inner(), 5);
        assert_eq!(m3.into_inner().unwrap_err().into_inner(), 5);
        let clean = Mutex::new(1);
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _g = clean.lock().unwrap();
            panic!("caught");
        }));
        assert!(r.is_err());
        assert!(clean.is_poisoned(), "a panic caught on the same thread poisons too");
    }

    fn green_thread_holding_a_mutex_while_sleeping_parks_not_blocks() {
        // Waiters for the lock park; a thread that does not need it runs.
        let m = Arc::new(Mutex::new(0));
        let progress = Arc::new(AtomicUsize::new(0));
        let (m2, p2) = (m.clone(), progress.clone());
        let holder = thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            thread::sleep(ms(100));
            *g = p2.load(Ordering::SeqCst);
        });
        wait_until("the holder locked", || m.try_lock().is_err());
        let waiters: Vec<_> = (0..4).map(|_| {
            let m = m.clone();
            thread::spawn(move || drop(m.lock().unwrap()))
        }).collect();
        let p3 = progress.clone();
        let free = thread::spawn(move || {
            for _ in 0..10 {
                p3.fetch_add(1, Ordering::SeqCst);
                thread::yield_now();
            }
        });
        free.join().unwrap();
        holder.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 10, "the free thread finished while the lock was held");
    }

    // ---- Condvar -------------------------------------------------------

    fn condvar_producer_consumer_with_wait_while() {
        let shared = Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    let (queue, ready) = &*shared;
                    let mut sum = 0u64;
                    loop {
                        let mut q = ready.wait_while(queue.lock().unwrap(), |q| q.is_empty()).unwrap();
                        match q.pop_front().unwrap() {
                            None => return sum,
                            Some(v) => sum += v,
                        }
                    }
                })
            })
            .collect();
        let producer = {
            let shared = shared.clone();
            spawn_os(move || {
                let (queue, ready) = &*shared;
                for v in 1..=5000u64 {
                    queue.lock().unwrap().push_back(Some(v));
                    ready.notify_one();
                }
            })
        };
        for v in 5001..=10_000u64 {
            shared.0.lock().unwrap().push_back(Some(v));
            shared.1.notify_one();
        }
        producer.join().unwrap();
        for _ in 0..3 {
            shared.0.lock().unwrap().push_back(None);
            shared.1.notify_one();
        }
        let total: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(total, 10_000 * 10_001 / 2);
    }

    fn condvar_notify_all_wakes_every_waiter() {
        let state = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
        let mut waiters: Vec<Box<dyn FnOnce()>> = Vec::new();
        for i in 0..12 {
            let state = state.clone();
            let body = move || {
                let (lock, cvar) = &*state;
                let mut g = lock.lock().unwrap();
                g.0 += 1;
                let _g = cvar.wait_while(g, |(_, go)| !*go).unwrap();
            };
            if i < 10 {
                let h = thread::spawn(body);
                waiters.push(Box::new(move || h.join().unwrap()));
            } else {
                let h = spawn_os(body);
                waiters.push(Box::new(move || h.join().unwrap()));
            }
        }
        let (lock, cvar) = &*state;
        wait_until("all 12 wait", || lock.lock().unwrap().0 == 12);
        lock.lock().unwrap().1 = true;
        cvar.notify_all();
        for join in waiters {
            join();
        }
    }

    fn condvar_notifications_are_not_stored() {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        pair.1.notify_one();
        pair.1.notify_all();
        let (_g, r) = pair.1.wait_timeout(pair.0.lock().unwrap(), ms(20)).unwrap();
        assert!(r.timed_out(), "a notify before the wait must not be kept");
    }

    fn condvar_wait_timeout_times_out() {
        let (m, c) = (Mutex::new(7), Condvar::new());
        for wait in [ms(1), ms(20), ms(50)] {
            let start = Instant::now();
            let (g, r) = c.wait_timeout(m.lock().unwrap(), wait).unwrap();
            let took = start.elapsed();
            assert!(r.timed_out());
            assert_eq!(*g, 7);
            assert!(took >= wait, "returned after {took:?}, before {wait:?}");
            assert!(took < wait + GENEROUS, "returned after {took:?} for {wait:?}");
        }
        let (g, r) = c.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
        assert!(r.timed_out());
        drop(g);
        let start = Instant::now();
        let (g, r) = c.wait_timeout_while(m.lock().unwrap(), ms(20), |n| *n == 7).unwrap();
        assert!(r.timed_out() && *g == 7 && start.elapsed() >= ms(20));
    }

    fn condvar_wait_timeout_max_still_wakes_on_notify() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p = pair.clone();
        let waiter = thread::spawn(move || {
            let (g, r) = p.1.wait_timeout_while(p.0.lock().unwrap(), Duration::MAX, |go| !*go).unwrap();
            assert!(*g && !r.timed_out());
        });
        thread::sleep(ms(5));
        *pair.0.lock().unwrap() = true;
        pair.1.notify_one();
        waiter.join().unwrap();
    }

    fn condvar_timeout_racing_notify_one_loses_nothing() {
        // W1 waits with a short timeout at the head of the list, W2 waits
        // without one behind it; one notify_one lands around W1's
        // deadline. If W1 reports a timeout, the notification must have
        // gone to W2; if W1 reports it was notified, W2 must still wait.
        let mut both = [0usize; 2];
        for round in 0..300u64 {
            let state = Arc::new((Mutex::new(0usize), Condvar::new()));
            let s = state.clone();
            let w1 = thread::spawn(move || {
                let mut g = s.0.lock().unwrap();
                *g += 1;
                let (_g, r) = s.1.wait_timeout(g, Duration::from_micros(200 + round % 5 * 100)).unwrap();
                r.timed_out()
            });
            wait_until("W1 waits", || *state.0.lock().unwrap() == 1);
            let s = state.clone();
            let w2_done = Arc::new(AtomicBool::new(false));
            let d = w2_done.clone();
            let w2 = thread::spawn(move || {
                let mut g = s.0.lock().unwrap();
                *g += 1;
                drop(s.1.wait(g).unwrap());
                d.store(true, Ordering::SeqCst);
            });
            wait_until("W2 waits", || *state.0.lock().unwrap() == 2);
            // Land the notify near W1's deadline (sometimes before, sometimes after).
            let spin_until = Instant::now() + Duration::from_micros(round % 7 * 60);
            while Instant::now() < spin_until {
                std::hint::spin_loop();
            }
            state.1.notify_one();
            let w1_timed_out = w1.join().unwrap();
            if w1_timed_out {
                both[0] += 1;
                wait_until("W2 got the notification W1 timed out of", || w2_done.load(Ordering::SeqCst));
            } else {
                both[1] += 1;
                thread::sleep(ms(1));
                assert!(!w2_done.load(Ordering::SeqCst), "one notify_one woke two waiters");
                state.1.notify_one();
            }
            w2.join().unwrap();
        }
        eprintln!("W1 timed out {} times, was notified {} times", both[0], both[1]);
    }

    // ---- RwLock --------------------------------------------------------

    fn rwlock_readers_share_and_writers_exclude() {
        let lock = Arc::new(RwLock::new(0u64));
        let readers_in = Arc::new(AtomicUsize::new(0));
        // Eight readers all hold the lock at the same time.
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (lock, readers_in) = (lock.clone(), readers_in.clone());
                thread::spawn(move || {
                    let g = lock.read().unwrap();
                    readers_in.fetch_add(1, Ordering::SeqCst);
                    wait_until("all 8 readers are in", || readers_in.load(Ordering::SeqCst) >= 8);
                    *g
                })
            })
            .collect();
        for r in readers {
            assert_eq!(r.join().unwrap(), 0);
        }
        // Writers exclude readers and each other.
        let writing = Arc::new(AtomicBool::new(false));
        let readers_now = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let (lock, writing, readers_now) = (lock.clone(), writing.clone(), readers_now.clone());
                thread::spawn(move || {
                    for j in 0..500 {
                        if (i + j) % 3 == 0 {
                            let mut g = lock.write().unwrap();
                            assert!(!writing.swap(true, Ordering::SeqCst), "two writers");
                            assert_eq!(readers_now.load(Ordering::SeqCst), 0, "reader during write");
                            *g += 1;
                            if j % 50 == 0 {
                                thread::yield_now();
                            }
                            writing.store(false, Ordering::SeqCst);
                        } else {
                            let g = lock.read().unwrap();
                            readers_now.fetch_add(1, Ordering::SeqCst);
                            assert!(!writing.load(Ordering::SeqCst), "writer during read");
                            black_box(*g);
                            if j % 50 == 1 {
                                thread::yield_now();
                            }
                            readers_now.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let writes = (0..12).map(|i| (0..500).filter(|j| (i + j) % 3 == 0).count() as u64).sum::<u64>();
        assert_eq!(*lock.read().unwrap(), writes);
    }

    fn rwlock_writer_is_not_starved_by_readers_and_try_fails() {
        let lock = Arc::new(RwLock::new(0));
        let r = lock.read().unwrap();
        assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
        let l = lock.clone();
        let writer = thread::spawn(move || *l.write().unwrap() = 1);
        thread::sleep(ms(10));
        // A writer is queued: new readers wait behind it.
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
        let l = lock.clone();
        let late_reader = thread::spawn(move || *l.read().unwrap());
        thread::sleep(ms(5));
        drop(r);
        writer.join().unwrap();
        assert_eq!(late_reader.join().unwrap(), 1, "the reader queued after the writer ran first");
    }

    fn rwlock_poisoning_matches_std() {
        let lock = Arc::new(RwLock::new(1));
        let l = lock.clone();
        let _ = thread::spawn(move || {
            let _r = l.read().unwrap();
            panic!("a panicking reader does not poison");
        })
        .join();
        assert!(!lock.is_poisoned());
        let l = lock.clone();
        let _ = thread::spawn(move || {
            let _w = l.write().unwrap();
            panic!("a panicking writer poisons");
        })
        .join();
        assert!(lock.is_poisoned());
        assert_eq!(*lock.read().unwrap_err().into_inner(), 1);
        assert!(matches!(lock.try_write(), Err(TryLockError::Poisoned(_))));
        lock.clear_poison();
        assert_eq!(*lock.write().unwrap(), 1);
    }

    // ---- Barrier -------------------------------------------------------

    fn barrier_has_one_leader_per_round() {
        const THREADS: usize = 6;
        const ROUNDS: usize = 300;
        let barrier = Arc::new(Barrier::new(THREADS));
        let leaders: Arc<Vec<AtomicUsize>> = Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect());
        let arrived = Arc::new(AtomicUsize::new(0));
        let body = move |barrier: Arc<Barrier>, leaders: Arc<Vec<AtomicUsize>>, arrived: Arc<AtomicUsize>| {
            for round in 0..ROUNDS {
                arrived.fetch_add(1, Ordering::SeqCst);
                if barrier.wait().is_leader() {
                    leaders[round].fetch_add(1, Ordering::SeqCst);
                }
                // Nobody leaves a round before everyone has arrived.
                assert!(arrived.load(Ordering::SeqCst) >= (round + 1) * THREADS);
            }
        };
        let mut joins: Vec<Box<dyn FnOnce()>> = Vec::new();
        for i in 0..THREADS {
            let (b, l, a) = (barrier.clone(), leaders.clone(), arrived.clone());
            if i < 4 {
                let h = thread::spawn(move || body(b, l, a));
                joins.push(Box::new(move || h.join().unwrap()));
            } else {
                let h = spawn_os(move || body(b, l, a));
                joins.push(Box::new(move || h.join().unwrap()));
            }
        }
        for join in joins {
            join();
        }
        for (round, n) in leaders.iter().enumerate() {
            assert_eq!(n.load(Ordering::SeqCst), 1, "round {round}");
        }
    }

    // ---- Once, OnceLock, LazyLock --------------------------------------

    fn once_runs_exactly_once_and_waiters_block_until_done() {
        static ONCE: Once = Once::new();
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        static DONE: AtomicBool = AtomicBool::new(false);
        let body = || {
            ONCE.call_once(|| {
                RUNS.fetch_add(1, Ordering::SeqCst);
                thread::sleep(ms(30));
                DONE.store(true, Ordering::SeqCst);
            });
            assert!(DONE.load(Ordering::SeqCst), "call_once returned before the closure finished");
            assert!(ONCE.is_completed());
        };
        let green: Vec<_> = (0..8).map(|_| thread::spawn(body)).collect();
        let os: Vec<_> = (0..2).map(|_| spawn_os(body)).collect();
        body();
        green.into_iter().for_each(|h| h.join().unwrap());
        os.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    }

    fn once_poisoning_matches_std() {
        let once = Arc::new(Once::new());
        let o = once.clone();
        assert!(thread::spawn(move || o.call_once(|| panic!("init failed"))).join().is_err());
        assert!(!once.is_completed());
        let o = once.clone();
        let again = thread::spawn(move || o.call_once(|| {})).join();
        let message = again.unwrap_err();
        assert_eq!(
            message.downcast_ref::<&str>().copied(),
            Some("Once instance has previously been poisoned")
        );
        let mut saw_poison = false;
        once.call_once_force(|state| saw_poison = state.is_poisoned());
        assert!(saw_poison && once.is_completed());
        once.wait();
    }

    fn oncelock_and_lazylock_in_statics() {
        static M: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        static R: RwLock<u32> = RwLock::new(0);
        static C: Condvar = Condvar::new();
        static B: Barrier = Barrier::new(1);
        static CELL: OnceLock<String> = OnceLock::new();
        static INITS: AtomicUsize = AtomicUsize::new(0);
        static LAZY: LazyLock<u64> = LazyLock::new(|| {
            INITS.fetch_add(1, Ordering::SeqCst);
            thread::sleep(ms(20));
            42
        });
        M.lock().unwrap().push(1);
        *R.write().unwrap() += 1;
        C.notify_all();
        assert!(B.wait().is_leader());
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                thread::spawn(move || {
                    M.lock().unwrap().push(i);
                    let s = CELL.get_or_init(|| {
                        thread::sleep(ms(10));
                        format!("set by {i}")
                    });
                    (s.clone(), *LAZY)
                })
            })
            .collect();
        let os = spawn_os(|| (CELL.wait().clone(), *LAZY));
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let (os_cell, os_lazy) = os.join().unwrap();
        assert!(results.iter().all(|r| r.0 == results[0].0 && r.1 == 42));
        assert_eq!((os_cell, os_lazy), results[0].clone());
        assert_eq!(INITS.load(Ordering::SeqCst), 1);
        assert_eq!(CELL.set("late".into()), Err("late".into()));
        assert_eq!(M.lock().unwrap().len(), 9);
    }

    fn oncelock_retries_after_a_panicking_initialiser() {
        let cell = Arc::new(OnceLock::new());
        let c = cell.clone();
        assert!(thread::spawn(move || *c.get_or_init(|| panic!("first try fails"))).join().is_err());
        assert_eq!(cell.get(), None);
        assert_eq!(*cell.get_or_init(|| 2), 2);
        let lazy = Arc::new(LazyLock::new(|| -> u32 { panic!("lazy init fails") }));
        let l = lazy.clone();
        assert!(thread::spawn(move || **l).join().is_err());
        let l = lazy.clone();
        let again = thread::spawn(move || **l).join().unwrap_err();
        assert_eq!(
            again.downcast_ref::<&str>().copied(),
            Some("LazyLock instance has previously been poisoned")
        );
    }

    fn rwlock_downgrade_lets_the_readers_queued_at_the_head_in() {
        let lock = Arc::new(RwLock::new(0u32));
        let mut write = lock.write().unwrap();
        let (started, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (lock, started, done) = (lock.clone(), started.clone(), done.clone());
                thread::spawn(move || {
                    started.store(true, Ordering::SeqCst);
                    let value = *lock.read().unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                    value
                })
            })
            .collect();
        wait_until("the readers have started", || started.load(Ordering::SeqCst));
        thread::sleep(ms(20)); // into the wait list, behind our write lock
        *write = 1;
        let read = RwLockWriteGuard::downgrade(write);
        // In while we still read: the downgrade admitted them.
        wait_until("the queued readers have read", || done.load(Ordering::SeqCst) == 3);
        assert_eq!(*read, 1);
        assert!(lock.try_read().is_ok(), "a downgraded lock is shared");
        assert!(lock.try_write().is_err(), "and not free");
        drop(read);
        for reader in readers {
            assert_eq!(reader.join().unwrap(), 1);
        }
        assert!(lock.try_write().is_ok());
    }

    fn rwlock_downgrade_keeps_a_queued_writer_out_until_the_readers_leave() {
        let lock = Arc::new(RwLock::new(0u32));
        let mut write = lock.write().unwrap();
        let writer_started = Arc::new(AtomicBool::new(false));
        let writer = {
            let (lock, started) = (lock.clone(), writer_started.clone());
            thread::spawn(move || {
                started.store(true, Ordering::SeqCst);
                let mut guard = lock.write().unwrap();
                let seen = *guard;
                *guard = 3;
                seen
            })
        };
        wait_until("the writer has started", || writer_started.load(Ordering::SeqCst));
        thread::sleep(ms(20));
        // A reader queued behind the writer waits for it (FIFO), downgrade
        // or not.
        let reader_started = Arc::new(AtomicBool::new(false));
        let reader = {
            let (lock, started) = (lock.clone(), reader_started.clone());
            thread::spawn(move || {
                started.store(true, Ordering::SeqCst);
                let value = *lock.read().unwrap();
                value
            })
        };
        wait_until("the reader has started", || reader_started.load(Ordering::SeqCst));
        thread::sleep(ms(20));
        *write = 2;
        let read = RwLockWriteGuard::downgrade(write);
        thread::sleep(ms(20));
        assert_eq!(*read, 2, "no writer got in between");
        assert!(!writer.is_finished(), "the writer waits for the downgraded reader");
        assert!(!reader.is_finished(), "the reader queued behind the writer waits for it");
        drop(read);
        assert_eq!(writer.join().unwrap(), 2);
        assert_eq!(reader.join().unwrap(), 3);
    }

    fn rwlock_downgrade_while_panicking_poisons_the_lock() {
        struct DowngradeOnDrop<'a>(Option<RwLockWriteGuard<'a, u32>>);
        impl Drop for DowngradeOnDrop<'_> {
            fn drop(&mut self) {
                let read = RwLockWriteGuard::downgrade(self.0.take().unwrap());
                assert_eq!(*read, 7);
            }
        }
        let lock = RwLock::new(0u32);
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            let mut guard = DowngradeOnDrop(Some(lock.write().unwrap()));
            **guard.0.as_mut().unwrap() = 7;
            panic!("a panic while the write lock is held");
        }));
        assert!(unwound.is_err());
        assert!(lock.is_poisoned(), "a write section that panicked poisons, downgraded or not");
        // Not poisoned by a downgrade outside a panic.
        let clean = RwLock::new(0u32);
        drop(RwLockWriteGuard::downgrade(clean.write().unwrap()));
        assert!(!clean.is_poisoned());
    }

    fn a_read_guard_is_covariant_as_std() {
        // Compiles only if `RwLockReadGuard` is covariant in `T`, as std's:
        // a guard of a longer-lived type used as one of a shorter-lived one.
        fn shorten<'a>(guard: RwLockReadGuard<'a, &'static str>) -> RwLockReadGuard<'a, &'a str> {
            guard
        }
        let lock = RwLock::new("static");
        let local = String::from("local");
        let guard = shorten(lock.read().unwrap());
        let mut longest: &str = *guard;
        if local.len() > longest.len() {
            longest = &local;
        }
        assert_eq!(longest, "static");
        assert!(lock.try_write().is_err(), "the shortened guard still holds the lock");
        drop(guard);
        assert!(lock.try_write().is_ok());
    }

    fn lazylock_through_an_exclusive_reference_as_std() {
        // std 1.95's `get`, `get_mut`, `force_mut` and `DerefMut`.
        let mut lazy = LazyLock::new(|| vec![1u32]);
        assert_eq!(LazyLock::get(&lazy), None);
        assert_eq!(LazyLock::get_mut(&mut lazy), None);
        LazyLock::force_mut(&mut lazy).push(2);
        lazy.push(3);
        assert_eq!(LazyLock::get(&lazy).map(Vec::as_slice), Some(&[1, 2, 3][..]));
        LazyLock::get_mut(&mut lazy).unwrap().push(4);
        // Shared accesses, here and on other threads, see what was forced
        // through `&mut` and never run the initialiser again.
        let lazy = Arc::new(lazy);
        let l = lazy.clone();
        assert_eq!(thread::spawn(move || l.len()).join().unwrap(), 4);
        let l = lazy.clone();
        assert_eq!(spawn_os(move || LazyLock::get(&l).cloned()).join().unwrap(), Some(vec![1, 2, 3, 4]));

        // A panicking initialiser poisons it, through `&mut` as through `&`.
        let mut bad = LazyLock::new(|| -> u32 { panic!("lazy init fails") });
        assert!(catch_unwind(AssertUnwindSafe(|| *LazyLock::force_mut(&mut bad))).is_err());
        assert_eq!(LazyLock::get_mut(&mut bad), None);
        let again = catch_unwind(AssertUnwindSafe(|| *bad)).unwrap_err();
        assert_eq!(
            again.downcast_ref::<&str>().copied(),
            Some("LazyLock instance has previously been poisoned")
        );
        let again = catch_unwind(AssertUnwindSafe(|| *LazyLock::force_mut(&mut bad))).unwrap_err();
        assert_eq!(
            again.downcast_ref::<&str>().copied(),
            Some("LazyLock instance has previously been poisoned")
        );
    }

    // ---- Fairness ------------------------------------------------------

    fn mutex_waiter_is_not_starved_by_hammering_threads() {
        // Four threads take and release the lock back to back; a fifth
        // asks for it 20 times. Each time it must get it within a bounded
        // number of the hammers' rounds (counted under the lock).
        let m = Arc::new(Mutex::new(()));
        let rounds = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hammers: Vec<_> = (0..4)
            .map(|_| {
                let (m, rounds, stop) = (m.clone(), rounds.clone(), stop.clone());
                thread::spawn(move || {
                    let mut i = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let g = m.lock().unwrap();
                        rounds.fetch_add(1, Ordering::Relaxed);
                        for _ in 0..50 {
                            black_box(&g);
                        }
                        drop(g);
                        i = i.wrapping_add(1);
                        if i & 63 == 0 {
                            thread::yield_now(); // lets a one-worker runtime run others
                        }
                    }
                })
            })
            .collect();
        wait_until("the hammers got going", || rounds.load(Ordering::Relaxed) > 10_000);
        let mut worst = (Duration::ZERO, 0);
        for _ in 0..20 {
            thread::sleep(ms(1));
            let start = Instant::now();
            let before = rounds.load(Ordering::Relaxed);
            let g = m.lock().unwrap();
            let waited = (start.elapsed(), rounds.load(Ordering::Relaxed) - before);
            drop(g);
            worst = worst.max(waited);
        }
        stop.store(true, Ordering::Relaxed);
        for h in hammers {
            h.join().unwrap();
        }
        eprintln!("worst wait while hammered: {:?}, {} rounds", worst.0, worst.1);
        assert!(worst.0 < GENEROUS, "waited {:?}", worst.0);
        assert!(worst.1 < 1_000_000, "{} rounds went by", worst.1);
    }
}

// ---- Tests of one configuration -----------------------------------------

/// On a one-worker runtime, a green thread that holds a Mutex while
/// sleeping must not stop the worker's other green threads: those that do
/// not need the lock run to completion meanwhile, and those that need it
/// park and get it afterwards.
#[test]
fn one_worker_lock_holder_sleeping_does_not_block_the_worker() {
    let _watchdog = common::Watchdog::new("one_worker_lock_holder_sleeping", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let m2 = m.clone();
        let holder = thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            g.push("holder");
            thread::sleep(ms(200));
            g.push("holder done");
        });
        thread::yield_now();
        let start = Instant::now();
        let m3 = m.clone();
        let waiter = thread::spawn(move || m3.lock().unwrap().push("waiter"));
        let free: Vec<_> = (0..100).map(|i| thread::spawn(move || i * 2)).collect();
        let sum: i32 = free.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 9900);
        assert!(
            start.elapsed() < ms(150),
            "other green threads were held up {:?} by a lock they did not need",
            start.elapsed()
        );
        holder.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(*m.lock().unwrap(), ["holder", "holder done", "waiter"]);
    });
}

/// 8 green threads (on two workers) and 2 plain OS threads each lock and
/// unlock one mutex 100k times; the total must be exact, and the watchdog
/// turns a lost wakeup into a failure instead of a hang.
#[test]
fn stress_8_green_and_2_os_threads_100k_each() {
    let _watchdog =
        common::Watchdog::new("stress_8_green_and_2_os_threads", Duration::from_secs(60));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let counter = Arc::new(Mutex::new(0u64));
    let c = counter.clone();
    rt.run(move || {
        let green: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    for _ in 0..100_000 {
                        *c.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        let os: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                spawn_os(move || {
                    for _ in 0..100_000 {
                        *c.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        green.into_iter().for_each(|h| h.join().unwrap());
        os.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(*counter.lock().unwrap(), 1_000_000);
}

/// Uncontended lock + unlock of spool's Mutex next to std's (a figure, not
/// an assertion). Run: `cargo test --release --test sync_locks --
/// --ignored --nocapture uncontended`.
#[test]
#[ignore = "timing figure; run with --release --ignored --nocapture"]
fn uncontended_mutex_lock_unlock_vs_std() {
    const N: u32 = 20_000_000;
    fn time(mut f: impl FnMut()) -> f64 {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..N {
                f();
            }
            best = best.min(start.elapsed().as_nanos() as f64 / f64::from(N));
        }
        best
    }
    let spool_m = Mutex::new(0u64);
    let std_m = std::sync::Mutex::new(0u64);
    let std_os = time(|| *black_box(&std_m).lock().unwrap() += 1);
    let spool_os = time(|| *black_box(&spool_m).lock().unwrap() += 1);
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (std_green, spool_green) = rt.run(move || {
        let std_m = std::sync::Mutex::new(0u64);
        let spool_m = Mutex::new(0u64);
        (
            time(|| *black_box(&std_m).lock().unwrap() += 1),
            time(|| *black_box(&spool_m).lock().unwrap() += 1),
        )
    });
    eprintln!(
        "uncontended lock+unlock, best of 5 x {N}: OS thread: std {std_os:.2} ns, spool {spool_os:.2} ns ({:.2}x); \
         green thread: std {std_green:.2} ns, spool {spool_green:.2} ns ({:.2}x)",
        spool_os / std_os,
        spool_green / std_green
    );
}

// ---- The porting contract ------------------------------------------------

fn all<
    T: std::panic::UnwindSafe + std::panic::RefUnwindSafe + Send + Sync + Unpin + std::fmt::Debug,
>() {
}
fn shareable<T: Send + Sync>() {}
fn sync_only<T: Sync + std::fmt::Debug>() {}

/// spool's items have (at least) the auto traits of their std namesakes,
/// checked against std 1.95, so code that stores them in structs, shares
/// them or uses them across `catch_unwind` compiles unchanged.
#[test]
fn items_have_std_auto_traits() {
    all::<Mutex<u8>>();
    all::<RwLock<u8>>();
    all::<Condvar>();
    all::<Barrier>();
    all::<Once>();
    all::<OnceLock<u8>>();
    all::<LazyLock<u8>>();
    all::<spool::sync::WaitTimeoutResult>();
    all::<spool::sync::BarrierWaitResult>();
    // std's bounds: a Mutex of a Send-but-not-Sync value is Sync.
    shareable::<Mutex<std::cell::Cell<u8>>>();
    sync_only::<spool::sync::MutexGuard<'static, u8>>();
    sync_only::<spool::sync::RwLockReadGuard<'static, u8>>();
    sync_only::<spool::sync::RwLockWriteGuard<'static, u8>>();
}

#[test]
fn a_std_sync_program_runs_unchanged_with_spool_paths() {
    let _watchdog = common::Watchdog::new("a_std_sync_program_runs_unchanged", LIMIT);
    // Written against std::sync and std::thread; only these lines differ.
    use spool::sync::*;
    use spool::thread;

    static TOTAL: Mutex<u64> = Mutex::new(0);
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let config = Arc::new(RwLock::new(3u64));
    let barrier = Arc::new(Barrier::new(4));
    let workers: Vec<thread::JoinHandle<bool>> = (0..4)
        .map(|i| {
            let (config, barrier) = (Arc::clone(&config), Arc::clone(&barrier));
            thread::spawn(move || {
                let names = NAMES.get_or_init(|| vec!["a", "b", "c", "d"]);
                let step = *config.read().unwrap();
                *TOTAL.lock().unwrap() += step * (i + 1) + names.len() as u64;
                barrier.wait().is_leader()
            })
        })
        .collect();
    let leaders = workers
        .into_iter()
        .map(|w| w.join().unwrap())
        .filter(|&l| l)
        .count();
    assert_eq!(leaders, 1);
    assert_eq!(*TOTAL.lock().unwrap(), 3 * 10 + 16);
    let weak: Weak<RwLock<u64>> = Arc::downgrade(&config);
    assert!(weak.upgrade().is_some());
    let flag = atomic::AtomicBool::new(true);
    assert!(flag.load(atomic::Ordering::Relaxed));
    let result: LockResult<MutexGuard<'_, u64>> = TOTAL.lock();
    drop(result);
    let _: Option<PoisonError<()>> = None;
}
