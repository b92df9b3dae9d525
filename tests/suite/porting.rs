//! The porting contract for `std::thread`: spool's items have std's auto
//! traits, so code that stores handles in structs, sends them to other
//! threads or uses them across `catch_unwind` compiles unchanged.

use std::panic::{RefUnwindSafe, UnwindSafe};

fn all<T: UnwindSafe + RefUnwindSafe + Send + Sync + Unpin + std::fmt::Debug>() {}
fn shareable<T: Send + Sync + Unpin + std::fmt::Debug>() {}
fn ref_unwind_safe<T: RefUnwindSafe + Send + Sync + Unpin + std::fmt::Debug>() {}
fn cloneable<T: Clone>() {}

/// The same bounds hold for the std items (checked against std 1.95).
#[test]
fn items_have_std_auto_traits() {
    all::<spool::thread::Thread>();
    cloneable::<spool::thread::Thread>();
    all::<spool::thread::ThreadId>();
    all::<spool::thread::Builder>();
    all::<spool::thread::LocalKey<u8>>();
    all::<spool::thread::AccessError>();
    shareable::<spool::thread::JoinHandle<u8>>();
    shareable::<spool::thread::ScopedJoinHandle<'static, u8>>();
    ref_unwind_safe::<spool::thread::Scope<'static, 'static>>();
}

#[test]
fn a_std_program_runs_unchanged_with_spool_paths() {
    // Written against std::thread; only the `use` line differs.
    use spool::thread;
    use std::sync::mpsc;
    use std::time::Duration;

    let (tx, rx) = mpsc::channel();
    let workers: Vec<thread::JoinHandle<()>> = (0..8)
        .map(|i| {
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .stack_size(128 * 1024)
                .spawn(move || {
                    thread::sleep(Duration::from_millis(1));
                    let me = thread::current();
                    tx.send((i, me.name().unwrap().to_string(), me.id()))
                        .unwrap();
                })
                .unwrap()
        })
        .collect();
    drop(tx);
    for w in workers {
        w.join().unwrap();
    }
    let mut got: Vec<(i32, String, thread::ThreadId)> = rx.iter().collect();
    got.sort_by_key(|(i, _, _)| *i);
    assert_eq!(got.len(), 8);
    for (i, name, _) in &got {
        assert_eq!(name, &format!("worker-{i}"));
    }
    let result: thread::Result<()> = thread::spawn(|| panic!("expected")).join();
    assert!(result.is_err());
    assert!(thread::available_parallelism().unwrap().get() >= 1);
}

/// Ported code that waits politely on an atomic works on one worker: a
/// loop that calls `yield_now` or `park_timeout` gives the worker back, so
/// the green thread that sets the flag runs. (A loop that only spins never
/// gives it back: the porting guide's "Calls that stall a worker".)
#[test]
fn polite_spin_loops_work_on_one_worker() {
    use spool::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use spool::sync::Arc;
    use std::time::Duration;

    let rt = spool::Runtime::builder().workers(1).build().unwrap();
    let done = rt.run(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..10)
            .map(|i| {
                let (flag, seen) = (flag.clone(), seen.clone());
                spool::thread::spawn(move || {
                    while !flag.load(Ordering::Acquire) {
                        if i % 2 == 0 {
                            spool::thread::yield_now();
                        } else {
                            spool::thread::park_timeout(Duration::from_millis(1));
                        }
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Spawned after the waiters, on the same worker: it runs only if
        // they give the worker back.
        let setter = {
            let flag = flag.clone();
            spool::thread::spawn(move || flag.store(true, Ordering::Release))
        };
        setter.join().unwrap();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        seen.load(Ordering::SeqCst)
    });
    assert_eq!(done, 10);
}
