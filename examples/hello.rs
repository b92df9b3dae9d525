//! The README's first demo: plain blocking code, run as green threads.
//!
//! It spawns 100,000 green threads that all sleep at once, counts them
//! while they are parked, measures what they cost, plays park/unpark
//! ping-pong between two threads, shows a panic being caught by `join`, and
//! exits by itself.
//!
//! ```text
//! cargo run --release --example hello
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use spool::thread;

const SLEEPERS: usize = 100_000;
const ROUND_TRIPS: u64 = 100_000;

/// Resident memory of this process in KiB, from /proc (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let workers = std::env::var("SPOOL_WORKERS").ok().unwrap_or_else(|| {
        thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string()
    });
    println!("spool demo: {workers} workers (one per core unless SPOOL_WORKERS is set)");

    // 1. A hundred thousand green threads, all blocked in sleep at once.
    let before = rss_kib();
    let asleep = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..SLEEPERS)
        .map(|i| {
            let asleep = asleep.clone();
            thread::spawn(move || {
                asleep.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(300));
                i as u64
            })
        })
        .collect();
    while asleep.load(Ordering::Relaxed) < SLEEPERS {
        thread::sleep(Duration::from_millis(1));
    }
    let spawned_in = start.elapsed();
    let during = rss_kib();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (SLEEPERS as u64 - 1) * SLEEPERS as u64 / 2);
    println!(
        "{SLEEPERS} green threads spawned and asleep in {spawned_in:.2?}, all joined after {:.2?}",
        start.elapsed()
    );
    if let (Some(before), Some(during)) = (before, during) {
        println!(
            "  memory while all were asleep: {:.1} MiB, {:.2} KiB per green thread",
            during.saturating_sub(before) as f64 / 1024.0,
            during.saturating_sub(before) as f64 / SLEEPERS as f64
        );
    }

    // 2. Park/unpark ping-pong between two green threads.
    let turn = Arc::new(AtomicU64::new(0));
    let ping_slot: Arc<OnceLock<thread::Thread>> = Arc::new(OnceLock::new());
    let (t1, t2, slot) = (turn.clone(), turn.clone(), ping_slot.clone());
    let start = Instant::now();
    let pong = thread::spawn(move || {
        for i in 0..ROUND_TRIPS {
            while t2.load(Ordering::Acquire) != 2 * i + 1 {
                thread::park();
            }
            t2.store(2 * i + 2, Ordering::Release);
            slot.get()
                .expect("ping registers before its first serve")
                .unpark();
        }
    });
    let pong_thread = pong.thread().clone();
    let ping = thread::spawn(move || {
        ping_slot.get_or_init(thread::current);
        for i in 0..ROUND_TRIPS {
            t1.store(2 * i + 1, Ordering::Release);
            pong_thread.unpark();
            while t1.load(Ordering::Acquire) != 2 * i + 2 {
                thread::park();
            }
        }
    });
    ping.join().unwrap();
    pong.join().unwrap();
    let elapsed = start.elapsed();
    println!(
        "{ROUND_TRIPS} park/unpark round trips in {elapsed:.2?} ({:.0} ns per round trip)",
        elapsed.as_nanos() as f64 / ROUND_TRIPS as f64
    );

    // 3. A panic stays in its green thread and comes back from join.
    let failed = thread::Builder::new()
        .name("doomed".into())
        .spawn(|| -> u32 { panic!("this green thread fails on purpose") })
        .unwrap()
        .join();
    let message = failed
        .unwrap_err()
        .downcast::<&str>()
        .map(|s| *s)
        .unwrap_or("?");
    println!("join returned the panic of thread 'doomed': {message:?}");

    // 4. Scoped threads borrow from the stack.
    let mut words = ["green".to_string(), "threads".to_string()];
    thread::scope(|s| {
        for w in words.iter_mut() {
            s.spawn(move || w.make_ascii_uppercase());
        }
    });
    println!("scoped threads edited borrowed data: {}", words.join(" "));
    println!("done");
}
