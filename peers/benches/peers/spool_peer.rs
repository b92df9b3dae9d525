//! spool: green threads through `spool::thread`, as in `benches/thread.rs`;
//! `spool::sync::mpmc` channels and `spool::sync::Mutex` between them, as
//! in `peers/benches/channels.rs`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};
use spool::thread;
use spool::Runtime;

use crate::child::{Failure, Measured};
use crate::syncwork::{self, THREADS};
use crate::{sys, wire};
use crate::{BATCH, WARMUP_BATCHES};

pub fn run(scenario: &str, count: usize) -> Measured {
    match scenario {
        "yield_switch" => Ok(vec![("ns_per_switch", yield_switch(count))]),
        "timeout_recv" => Ok(runtime(1).run(move || timeout_recv(count))),
        "spawn_join" => Ok(vec![
            ("ns_per_thread", spawn_join(count)),
            ("peak_rss_mib", sys::peak_rss_mib()),
        ]),
        "idle_memory" => idle_memory(count).map(|kib| vec![("kib_per_thread", kib)]),
        "echo_server" => serve(wire::echo),
        "http_server" => serve(wire::http),
        "chan_pingpong" => Ok(
            runtime(2).run(move || syncwork::sized("ns_per_round_trip", count, chans::pingpong))
        ),
        "mutex_contended" => {
            Ok(runtime(2).run(move || syncwork::sized("ns_per_increment", count, mutex_contended)))
        }
        "main_pingpong" => {
            // The child's `main` and green threads of the global runtime
            // (what `thread::spawn` uses outside a runtime), as in a
            // ported program: `chans::pingpong` run from `main`.
            Runtime::builder()
                .workers(1)
                .build_global()
                .expect("cannot start the global spool runtime");
            Ok(syncwork::sized("ns_per_round_trip", count, chans::pingpong))
        }
        _ => match syncwork::parse_matrix(scenario) {
            Some((shape, cap)) => Ok(runtime(2).run(move || {
                syncwork::sized("ns_per_msg", count, |n| chans::matrix(shape, cap, n))
            })),
            None => Err(Failure::Unsupported),
        },
    }
}

/// The channel scenarios between green threads, the scenario body in the
/// runtime's `run` thread.
mod chans {
    crossbeam_api_scenarios!(spool::sync::mpmc, spool::thread::spawn);
}

/// `THREADS` green threads each lock a shared `spool::sync::Mutex<u64>`
/// and increment it `n / THREADS` times; the time taken.
fn mutex_contended(n: usize) -> Duration {
    let m = Arc::new(spool::sync::Mutex::new(0u64));
    let start = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
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

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("cannot build a spool runtime")
}

/// A green thread sends itself `n` messages on a bounded channel and
/// receives each at once, with a 10 s `spool::time::timeout` around the
/// receive and without: ns per operation of each.
fn timeout_recv(n: usize) -> Vec<(&'static str, f64)> {
    let (tx, rx) = spool::sync::mpmc::bounded::<usize>(1);
    let timed = |n: usize| {
        let start = Instant::now();
        for i in 0..n {
            tx.send(i).unwrap();
            let got = spool::time::timeout(Duration::from_secs(10), || rx.recv());
            black_box(got.unwrap().unwrap());
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let plain = |n: usize| {
        let start = Instant::now();
        for i in 0..n {
            tx.send(i).unwrap();
            black_box(rx.recv().unwrap());
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    timed(n / 10); // warm-up
    plain(n / 10);
    vec![("ns_per_timeout_recv", timed(n)), ("ns_per_recv", plain(n))]
}

/// Two green threads on one worker each yield `n` times; ns per switch.
fn yield_switch(n: usize) -> f64 {
    let ready = Arc::new(AtomicUsize::new(0));
    runtime(1).run(move || {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let ready = ready.clone();
                thread::spawn(move || {
                    ready.fetch_add(1, Ordering::SeqCst);
                    while ready.load(Ordering::SeqCst) < 2 {
                        thread::yield_now();
                    }
                    let start = Instant::now();
                    for _ in 0..n {
                        thread::yield_now();
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        let times: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let elapsed = times[0].1.max(times[1].1) - times[0].0.min(times[1].0);
        elapsed.as_nanos() as f64 / (2 * n) as f64
    })
}

/// Spawns `BATCH` trivial threads into `handles` and joins them all.
fn batch(handles: &mut Vec<thread::JoinHandle<i32>>) {
    handles.extend((0..BATCH).map(|_| thread::spawn(|| black_box(1))));
    for h in handles.drain(..) {
        black_box(h.join().unwrap());
    }
}

/// A green thread spawns and joins `n` threads in batches; ns per thread.
fn spawn_join(n: usize) -> f64 {
    runtime(2).run(move || {
        let mut handles = Vec::with_capacity(BATCH);
        for _ in 0..WARMUP_BATCHES {
            batch(&mut handles);
        }
        let start = Instant::now();
        for _ in 0..n / BATCH {
            batch(&mut handles);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

/// Parks `n` green threads; KiB of VmRSS per parked thread.
fn idle_memory(n: usize) -> Result<f64, Failure> {
    runtime(2).run(move || {
        let parked = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(n);
        let before = sys::rss_kib();
        for i in 0..n {
            let (parked, release) = (parked.clone(), release.clone());
            let spawned = thread::Builder::new().spawn(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                while !release.load(Ordering::Acquire) {
                    thread::park();
                }
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    return Err(Failure::Error(format!(
                        "spawning green thread {}: {e}",
                        i + 1
                    )))
                }
            }
        }
        while parked.load(Ordering::SeqCst) < n {
            thread::yield_now();
        }
        let after = sys::rss_kib();
        release.store(true, Ordering::Release);
        for h in &handles {
            h.thread().unpark();
        }
        for h in handles {
            h.join().unwrap();
        }
        Ok((after - before) / n as f64)
    })
}

/// Serves loopback connections, one green thread each running
/// `connection`, on a 2-worker runtime: `std::net` code with `spool::net`.
/// Prints `listening <addr>` and serves until killed.
fn serve(connection: fn(TcpStream) -> std::io::Result<()>) -> Measured {
    runtime(2).run(move || {
        let failed = |what: &str, e: std::io::Error| Failure::Error(format!("{what}: {e}"));
        let listener = TcpListener::bind(wire::loopback()).map_err(|e| failed("bind", e))?;
        let addr = listener.local_addr().map_err(|e| failed("local_addr", e))?;
        println!("listening {addr}");
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let spawned = thread::Builder::new().spawn(move || {
                        stream.set_nodelay(true)?;
                        connection(stream)
                    });
                    if let Err(e) = spawned {
                        eprintln!("spawning a green thread for a connection: {e}");
                    }
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
        Ok(Vec::new())
    })
}
