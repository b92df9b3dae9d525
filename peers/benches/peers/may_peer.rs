//! may: stackful coroutines, written as may's users write them (`go!`,
//! `JoinHandle::join`, `may::coroutine::park`), with may's default stack
//! size and `may::config().set_workers(n)` set before the first spawn (each
//! sample is its own process, so the global config is set once).
//! Channels are `may::sync::mpsc` and `may::sync::mpmc` (both unbounded:
//! may has no bounded channel), the mutex `may::sync::Mutex`.

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::coroutine::{self, JoinHandle};
use may::go;

use crate::child::{Failure, Measured};
use crate::syncwork::{self, Shape, THREADS};
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
        "chan_pingpong" => Ok(in_coroutine(move || {
            syncwork::sized("ns_per_round_trip", count, pingpong)
        })),
        "mutex_contended" => Ok(in_coroutine(move || {
            syncwork::sized("ns_per_increment", count, mutex_contended)
        })),
        _ => match syncwork::parse_matrix(scenario) {
            Some((_, Some(_))) => Err(Failure::NotApplicable(
                "may has no bounded channel (may::sync::mpsc and mpmc are unbounded)".into(),
            )),
            Some((Shape::SelectRx | Shape::SelectBoth, None)) => Err(Failure::NotApplicable(
                "may has no select over channel operations (its select! races blocking \
                 expressions, each in a coroutine of its own, and cancels the rest)"
                    .into(),
            )),
            Some((shape, None)) => Ok(in_coroutine(move || {
                syncwork::sized("ns_per_msg", count, |n| matrix(shape, n))
            })),
            None => Err(Failure::Unsupported),
        },
    }
}

/// Runs `body` in a coroutine with 2 workers, as the other systems run
/// their scenario bodies inside their runtimes.
fn in_coroutine<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    may::config().set_workers(2);
    go!(body).join().unwrap()
}

/// `n` round trips between two coroutines over two `mpsc::channel()`s
/// (may has no rendezvous channel), after 100 untimed ones.
fn pingpong(n: usize) -> Duration {
    let (s1, r1) = may::sync::mpsc::channel::<usize>();
    let (s2, r2) = may::sync::mpsc::channel::<usize>();
    let peer = go!(move || {
        while let Ok(v) = r1.recv() {
            s2.send(v + 1).unwrap();
        }
    });
    for i in 0..100 {
        s1.send(i).unwrap();
        r2.recv().unwrap();
    }
    let start = Instant::now();
    let mut v = 0;
    for _ in 0..n {
        s1.send(v).unwrap();
        v = r2.recv().unwrap();
    }
    let elapsed = start.elapsed();
    drop(s1);
    peer.join().unwrap();
    elapsed
}

/// The unbounded matrix's shapes may has (seq, spsc, mpsc with
/// `may::sync::mpsc`, mpmc with `may::sync::mpmc`), as in `syncwork.rs`;
/// the time taken.
fn matrix(shape: Shape, n: usize) -> Duration {
    if shape == Shape::Mpmc {
        return mpmc(n);
    }
    let (tx, rx) = may::sync::mpsc::channel();
    let start = Instant::now();
    let producers = match shape {
        Shape::Seq => {
            for i in 0..n {
                tx.send(i).unwrap();
            }
            for _ in 0..n {
                rx.recv().unwrap();
            }
            return start.elapsed();
        }
        Shape::Spsc => 1,
        _ => THREADS,
    };
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            go!(move || {
                for i in 0..n / producers {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..n / producers * producers {
        rx.recv().unwrap();
    }
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

/// `THREADS` producers and `THREADS` consumers on one `may::sync::mpmc`
/// channel.
fn mpmc(n: usize) -> Duration {
    let (tx, rx) = may::sync::mpmc::channel();
    let start = Instant::now();
    let mut handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let tx = tx.clone();
            go!(move || {
                for i in 0..n / THREADS {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    handles.extend((0..THREADS).map(|_| {
        let rx = rx.clone();
        go!(move || {
            for _ in 0..n / THREADS {
                rx.recv().unwrap();
            }
        })
    }));
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

/// `THREADS` coroutines each lock a shared `may::sync::Mutex<u64>` and
/// increment it `n / THREADS` times; the time taken.
fn mutex_contended(n: usize) -> Duration {
    let m = Arc::new(may::sync::Mutex::new(0u64));
    let start = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = m.clone();
            go!(move || {
                for _ in 0..n / THREADS {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(*m.lock().unwrap(), (n / THREADS * THREADS) as u64);
    elapsed
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
