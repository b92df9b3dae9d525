//! What a parked green thread costs: a million of them (`#[ignore]`d; run
//! with `cargo test --release --test million -- --ignored --nocapture`)
//! and a 100,000-thread version that runs in CI.
//!
//! Every thread parks at once; when all have parked, the resident memory
//! the process gained, divided by the thread count, must stay within
//! 6 KiB (a touched stack page plus bookkeeping), and the memory maps must
//! stay far below the kernel's default `vm.max_map_count` (65530), which
//! one map per guard page would exceed.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{maps_count, status_kib, Watchdog};
use spool::thread;
use spool::Runtime;

/// Resident memory allowed per parked green thread.
const MAX_KIB_PER_THREAD: f64 = 6.0;
/// Memory maps allowed while the threads are parked: far below 65530.
const MAX_MAPS: usize = 65530 / 4;

/// The tests measure the whole process: never run two at once.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

fn park_many(count: usize) {
    let _exclusive = EXCLUSIVE.lock().unwrap_or_else(PoisonError::into_inner);
    let rt = Runtime::new().unwrap();
    // Start the workers before the baseline.
    rt.run(|| thread::spawn(|| ()).join().unwrap());
    let rss_before = status_kib("VmRSS");
    let maps_before = maps_count();

    let parked = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let (parked, go) = (parked.clone(), go.clone());
            rt.spawn(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                while !go.load(Ordering::SeqCst) {
                    thread::park();
                }
            })
        })
        .collect();
    let spawned = start.elapsed();
    while parked.load(Ordering::SeqCst) < count {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "only {} of {count} threads parked",
            parked.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The last counted threads are about to park: let them get there.
    std::thread::sleep(Duration::from_millis(100));
    let rss = status_kib("VmRSS");
    let maps = maps_count();
    let all_parked = start.elapsed();

    go.store(true, Ordering::SeqCst);
    for h in &handles {
        h.thread().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
    let kib_per_thread = rss.saturating_sub(rss_before) as f64 / count as f64;
    eprintln!(
        "{count} parked green threads: {kib_per_thread:.2} KiB RSS each \
         (VmRSS {rss_before} -> {rss} KiB), memory maps {maps_before} -> {maps}; \
         spawned in {spawned:?}, all parked after {all_parked:?}, all joined after {:?}",
        start.elapsed()
    );
    assert!(
        kib_per_thread <= MAX_KIB_PER_THREAD,
        "{kib_per_thread:.2} KiB of RSS per parked green thread (limit {MAX_KIB_PER_THREAD} KiB)"
    );
    assert!(
        maps < MAX_MAPS,
        "{maps} memory maps with {count} parked threads (limit {MAX_MAPS})"
    );
}

#[test]
fn a_hundred_thousand_parked_threads() {
    let _watchdog = Watchdog::new(
        "a_hundred_thousand_parked_threads",
        Duration::from_secs(300),
    );
    park_many(100_000);
}

#[test]
#[ignore = "a million green threads: run in release with --ignored"]
fn a_million_parked_threads() {
    let _watchdog = Watchdog::new("a_million_parked_threads", Duration::from_secs(600));
    park_many(1_000_000);
}
