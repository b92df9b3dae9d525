//! may: stackful coroutines, written as may's users write them (`go!`,
//! `JoinHandle::join`, `may::coroutine::park`), with may's default stack
//! size and `may::config().set_workers(n)` set before the first spawn (each
//! sample is its own process, so the global config is set once).

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::coroutine::{self, JoinHandle};
use may::go;

use crate::child::{Failure, Measured};
use crate::{sys, wire};
use crate::{BATCH, WARMUP_BATCHES};

pub fn run(scenario: &str, count: usize) -> Measured {
    match scenario {
        "yield_switch" => {
            may::config().set_workers(1);
            let ns = go!(move || yield_switch(count)).join().unwrap();
            Ok(vec![("ns_per_switch", ns)])
        }
        "spawn_join" => {
            may::config().set_workers(2);
            let ns = go!(move || spawn_join(count)).join().unwrap();
            Ok(vec![
                ("ns_per_thread", ns),
                ("peak_rss_mib", sys::peak_rss_mib()),
            ])
        }
        "idle_memory" => {
            may::config().set_workers(2);
            go!(move || idle_memory(count))
                .join()
                .unwrap()
                .map(|kib| vec![("kib_per_thread", kib)])
        }
        "echo_server" | "http_server" => {
            may::config().set_workers(2);
            let connection = if scenario == "echo_server" {
                wire::echo::<may::net::TcpStream>
            } else {
                wire::http::<may::net::TcpStream>
            };
            go!(move || serve(connection)).join().unwrap()
        }
        _ => Err(Failure::Unsupported),
    }
}

/// Two coroutines on one worker each yield `n` times; ns per switch.
///
/// Run it in a coroutine, as the other systems do: spawned from the main
/// OS thread, the second coroutine sits in may's global queue, and if the
/// worker takes the first before the second is queued, the first's yield
/// loop keeps the worker on its local queue and the second never runs (the
/// rendezvous spins for ever; seen about once in 40 runs on a loaded
/// machine).
fn yield_switch(n: usize) -> f64 {
    let ready = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            go!(move || {
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < 2 {
                    coroutine::yield_now();
                }
                let start = Instant::now();
                for _ in 0..n {
                    coroutine::yield_now();
                }
                (start, Instant::now())
            })
        })
        .collect();
    let times: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = times[0].1.max(times[1].1) - times[0].0.min(times[1].0);
    elapsed.as_nanos() as f64 / (2 * n) as f64
}

/// Spawns `BATCH` trivial coroutines into `handles` and joins them all.
fn batch(handles: &mut Vec<JoinHandle<i32>>) {
    handles.extend((0..BATCH).map(|_| go!(|| black_box(1))));
    for h in handles.drain(..) {
        black_box(h.join().unwrap());
    }
}

/// A coroutine spawns and joins `n` coroutines in batches; ns per coroutine.
fn spawn_join(n: usize) -> f64 {
    let mut handles = Vec::with_capacity(BATCH);
    for _ in 0..WARMUP_BATCHES {
        batch(&mut handles);
    }
    let start = Instant::now();
    for _ in 0..n / BATCH {
        batch(&mut handles);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Parks `n` coroutines; KiB of VmRSS per parked coroutine. may panics
/// when it cannot map a stack; that panic is the error reported.
fn idle_memory(n: usize) -> Result<f64, Failure> {
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(n);
    let before = sys::rss_kib();
    for i in 0..n {
        let (parked, release) = (parked.clone(), release.clone());
        let spawned = catch_unwind(AssertUnwindSafe(|| {
            go!(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                while !release.load(Ordering::Acquire) {
                    coroutine::park();
                }
            })
        }));
        match spawned {
            Ok(h) => handles.push(h),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into());
                let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                    .map_or_else(|_| "?".into(), |s| s.trim().to_owned());
                return Err(Failure::Error(format!(
                    "stopped at coroutine {} (each may stack and its guard page are 2 memory \
                     maps; vm.max_map_count is {max_map_count}): spawn panicked: {message}",
                    i + 1
                )));
            }
        }
    }
    while parked.load(Ordering::SeqCst) < n {
        coroutine::yield_now();
    }
    let after = sys::rss_kib();
    release.store(true, Ordering::Release);
    for h in &handles {
        h.coroutine().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
    Ok((after - before) / n as f64)
}

/// Serves loopback connections with `may::net`, one coroutine each running
/// `connection` (may's default stack size), on 2 workers. Prints
/// `listening <addr>` and serves until killed.
fn serve(
    connection: fn(may::net::TcpStream) -> std::io::Result<()>,
) -> Result<Vec<(&'static str, f64)>, Failure> {
    let failed = |what: &str, e: std::io::Error| Failure::Error(format!("{what}: {e}"));
    let listener = may::net::TcpListener::bind(wire::loopback()).map_err(|e| failed("bind", e))?;
    let addr = listener.local_addr().map_err(|e| failed("local_addr", e))?;
    println!("listening {addr}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                go!(move || {
                    stream.set_nodelay(true)?;
                    connection(stream)
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                coroutine::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(Vec::new())
}
