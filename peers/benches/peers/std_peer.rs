//! std: one OS thread per thread of work, `std::thread` as written every
//! day (default stack size, `spawn`/`join`, `park`/`unpark`), with
//! `std::sync::mpsc` channels and `std::sync::Mutex`.

use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::child::{Failure, Measured};
use crate::syncwork::{self, Shape, THREADS};
use crate::BATCH;
use crate::{sys, wire};

pub fn run(scenario: &str, count: usize) -> Measured {
    match scenario {
        "yield_switch" => yield_switch(count).map(|ns| vec![("ns_per_switch", ns)]),
        "spawn_join" => Ok(vec![
            ("ns_per_thread", spawn_join(count)),
            ("peak_rss_mib", sys::peak_rss_mib()),
        ]),
        "idle_memory" => idle_memory(count).map(|kib| vec![("kib_per_thread", kib)]),
        "echo_server" => serve(wire::echo),
        "http_server" => serve(wire::http),
        "chan_pingpong" | "main_pingpong" => {
            Ok(syncwork::sized("ns_per_round_trip", count, pingpong))
        }
        "mutex_contended" => Ok(syncwork::sized("ns_per_increment", count, mutex_contended)),
        _ => match syncwork::parse_matrix(scenario) {
            Some((shape @ (Shape::Seq | Shape::Spsc | Shape::Mpsc), cap)) => {
                Ok(syncwork::sized("ns_per_msg", count, |n| {
                    matrix(shape, cap, n)
                }))
            }
            Some(_) => Err(Failure::NotApplicable(
                "std::sync::mpsc has a single receiver and no select (see the crossbeam column)"
                    .into(),
            )),
            None => Err(Failure::Unsupported),
        },
    }
}

/// `n` round trips over two `sync_channel(0)`s between two OS threads,
/// after 100 untimed ones.
fn pingpong(n: usize) -> Duration {
    let (s1, r1) = mpsc::sync_channel::<usize>(0);
    let (s2, r2) = mpsc::sync_channel::<usize>(0);
    let peer = thread::spawn(move || {
        for v in r1.iter() {
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

/// std's two sender types (`Sender` of `channel()`, `SyncSender` of
/// `sync_channel(cap)`) behind one interface.
trait StdSender: Clone + Send + 'static {
    fn put(&self, v: usize);
}

impl StdSender for mpsc::Sender<usize> {
    fn put(&self, v: usize) {
        self.send(v).unwrap();
    }
}

impl StdSender for mpsc::SyncSender<usize> {
    fn put(&self, v: usize) {
        self.send(v).unwrap();
    }
}

/// The matrix's shapes std's mpsc has (seq, spsc, mpsc): `channel()` when
/// unbounded, else `sync_channel(cap)`.
fn matrix(shape: Shape, cap: Option<usize>, n: usize) -> Duration {
    match cap {
        None => {
            let (tx, rx) = mpsc::channel();
            by_shape(shape, tx, rx, n, n)
        }
        Some(cap) => {
            let (tx, rx) = mpsc::sync_channel(cap);
            by_shape(shape, tx, rx, cap.max(1), n)
        }
    }
}

fn by_shape<S: StdSender>(
    shape: Shape,
    tx: S,
    rx: mpsc::Receiver<usize>,
    batch: usize,
    n: usize,
) -> Duration {
    let producers = match shape {
        Shape::Seq => {
            let start = Instant::now();
            let mut sent = 0;
            while sent < n {
                let k = batch.min(n - sent);
                for i in 0..k {
                    tx.put(sent + i);
                }
                for _ in 0..k {
                    rx.recv().unwrap();
                }
                sent += k;
            }
            return start.elapsed();
        }
        Shape::Spsc => 1,
        _ => THREADS,
    };
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..n / producers {
                    tx.put(i);
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

/// `THREADS` OS threads each lock a shared `std::sync::Mutex<u64>` and
/// increment it `n / THREADS` times; the time taken.
fn mutex_contended(n: usize) -> Duration {
    let m = Arc::new(Mutex::new(0u64));
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

/// Pins the calling OS thread to `cpu`.
fn pin_to(cpu: usize) -> Result<(), Failure> {
    // SAFETY: `set` is a plain bit set owned by this frame; CPU_ZERO and
    // CPU_SET only write inside it, and sched_setaffinity reads
    // `size_of::<cpu_set_t>()` bytes of it.
    let ret = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(Failure::Error(format!(
            "sched_setaffinity to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// The first CPU this process may run on.
fn first_allowed_cpu() -> usize {
    // SAFETY: as in `pin_to`; sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into `set`, and CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 0;
        }
        (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .unwrap_or(0)
    }
}

/// Two OS threads pinned to one CPU each call `std::thread::yield_now` `n`
/// times; ns per switch. Unpinned, on two idle cores, `sched_yield` would
/// return without a switch and measure nothing.
fn yield_switch(n: usize) -> Result<f64, Failure> {
    let cpu = first_allowed_cpu();
    let ready = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            thread::spawn(move || {
                pin_to(cpu)?;
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < 2 {
                    thread::yield_now();
                }
                let start = Instant::now();
                for _ in 0..n {
                    thread::yield_now();
                }
                Ok((start, Instant::now()))
            })
        })
        .collect();
    let mut times = Vec::new();
    for h in handles {
        times.push(h.join().unwrap()?);
    }
    let elapsed = times[0].1.max(times[1].1) - times[0].0.min(times[1].0);
    Ok(elapsed.as_nanos() as f64 / (2 * n) as f64)
}

/// Spawns `BATCH` trivial OS threads into `handles` and joins them all.
fn batch(handles: &mut Vec<JoinHandle<i32>>) {
    handles.extend((0..BATCH).map(|_| thread::spawn(|| black_box(1))));
    for h in handles.drain(..) {
        black_box(h.join().unwrap());
    }
}

/// Spawns and joins `n` OS threads in batches, after one warm-up batch;
/// ns per thread.
fn spawn_join(n: usize) -> f64 {
    let mut handles = Vec::with_capacity(BATCH);
    batch(&mut handles);
    let start = Instant::now();
    for _ in 0..n / BATCH {
        batch(&mut handles);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Parks `n` OS threads; KiB of VmRSS per parked thread (the kernel's own
/// per-thread memory, a 16 KiB kernel stack and more, is not in VmRSS).
fn idle_memory(n: usize) -> Result<f64, Failure> {
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(n);
    let before = sys::rss_kib();
    for i in 0..n {
        let (counter, released) = (parked.clone(), release.clone());
        let spawned = thread::Builder::new().spawn(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            while !released.load(Ordering::Acquire) {
                thread::park();
            }
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Let the threads already parked go, then report.
                release.store(true, Ordering::Release);
                handles.iter().for_each(|h| h.thread().unpark());
                return Err(Failure::Error(format!("spawning OS thread {}: {e}", i + 1)));
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
}

/// Serves loopback connections, one OS thread each running `connection`
/// (default stack size): the classic blocking server. Prints `listening
/// <addr>` and serves until killed; a thread that cannot be spawned is
/// reported on stderr and its connection closed.
fn serve(connection: fn(TcpStream) -> std::io::Result<()>) -> Measured {
    let failed = |what: &str, e: std::io::Error| Failure::Error(format!("{what}: {e}"));
    let listener = TcpListener::bind(wire::loopback()).map_err(|e| failed("bind", e))?;
    let addr = listener.local_addr().map_err(|e| failed("local_addr", e))?;
    println!("listening {addr}");
    for (i, stream) in listener.incoming().enumerate() {
        match stream {
            Ok(stream) => {
                let spawned = thread::Builder::new().spawn(move || {
                    stream.set_nodelay(true)?;
                    connection(stream)
                });
                if let Err(e) = spawned {
                    eprintln!("spawning an OS thread for connection {}: {e}", i + 1);
                }
            }
            Err(e) => {
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(Vec::new())
}
