//! tokio: async tasks on the multi-thread runtime, written as tokio's users
//! write them (`tokio::spawn`, `.await` on the `JoinHandle`, `Notify`).
//! Each scenario runs in a task spawned onto the runtime, as spool's run in
//! a green thread, so spawns come from a worker. Channels are
//! `tokio::sync::mpsc` (`channel(cap)` and `unbounded_channel()`), select is
//! `tokio::select!`, the mutex `tokio::sync::Mutex`.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio::task::{self, JoinHandle};

use crate::child::{Failure, Measured};
use crate::syncwork::{self, Shape, THREADS};
use crate::{sys, wire};
use crate::{BATCH, WARMUP_BATCHES};

pub fn run(scenario: &str, count: usize) -> Measured {
    match scenario {
        "yield_switch" => Ok(vec![("ns_per_switch", on_runtime(1, yield_switch(count)))]),
        "spawn_join" => Ok(vec![
            ("ns_per_thread", on_runtime(2, spawn_join(count))),
            ("peak_rss_mib", sys::peak_rss_mib()),
        ]),
        "idle_memory" => Ok(vec![("kib_per_thread", on_runtime(2, idle_memory(count)))]),
        "echo_server" => serve(false),
        "http_server" => serve(true),
        "chan_pingpong" => Ok(on_runtime(2, sized("ns_per_round_trip", count, pingpong))),
        "timeout_recv" => Ok(on_timed_runtime(1, timeout_recv(count))),
        "main_pingpong" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .expect("cannot build a tokio runtime");
            Ok(syncwork::sized("ns_per_round_trip", count, |n| {
                main_pingpong(&rt, n)
            }))
        }
        "mutex_contended" => Ok(on_runtime(
            2,
            sized("ns_per_increment", count, mutex_contended),
        )),
        _ => match syncwork::parse_matrix(scenario) {
            Some((_, Some(0))) => Err(Failure::NotApplicable(
                "tokio has no rendezvous channel (mpsc::channel needs a capacity of at least 1)"
                    .into(),
            )),
            Some((Shape::Mpmc | Shape::SelectBoth, _)) => Err(Failure::NotApplicable(
                "tokio::sync::mpsc has a single receiver (no multi-consumer channel)".into(),
            )),
            Some((shape, cap)) => Ok(on_runtime(
                2,
                sized("ns_per_msg", count, move |n| matrix(shape, cap, n)),
            )),
            None => Err(Failure::Unsupported),
        },
    }
}

/// `syncwork::sized` for an async scenario: warm-up, sizing, timed run.
async fn sized<F: Future<Output = Duration>>(
    metric: &'static str,
    max: usize,
    mut measure: impl FnMut(usize) -> F,
) -> Vec<(&'static str, f64)> {
    let w = syncwork::warmup_count(max);
    let n = syncwork::fit(max, measure(w).await, w);
    syncwork::report(metric, n, measure(n).await)
}

/// `n` round trips between two tasks over two `mpsc::channel(1)`s (tokio
/// has no rendezvous channel), after 100 untimed ones.
/// A task sends itself `n` messages on `mpsc::channel(1)` and receives each
/// at once, with a 10 s `tokio::time::timeout` around the receive and
/// without: ns per operation of each.
async fn timeout_recv(n: usize) -> Vec<(&'static str, f64)> {
    let (tx, mut rx) = mpsc::channel::<usize>(1);
    let mut timed = 0.0;
    let mut plain = 0.0;
    for (round, n) in [(0, n / 10), (1, n)] {
        let start = Instant::now();
        for i in 0..n {
            tx.send(i).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            black_box(got.unwrap().unwrap());
        }
        let t = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        for i in 0..n {
            tx.send(i).await.unwrap();
            black_box(rx.recv().await.unwrap());
        }
        let p = start.elapsed().as_nanos() as f64 / n as f64;
        if round == 1 {
            (timed, plain) = (t, p);
        }
    }
    vec![("ns_per_timeout_recv", timed), ("ns_per_recv", plain)]
}

/// `n` round trips between the calling thread (the child's `main`, with
/// `blocking_send`/`blocking_recv`) and a task of `rt`, over two
/// `mpsc::channel(1)`s, after 100 untimed ones.
fn main_pingpong(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    let (s1, mut r1) = mpsc::channel::<usize>(1);
    let (s2, mut r2) = mpsc::channel::<usize>(1);
    let peer = rt.spawn(async move {
        while let Some(v) = r1.recv().await {
            s2.send(v + 1).await.unwrap();
        }
    });
    for i in 0..100 {
        s1.blocking_send(i).unwrap();
        r2.blocking_recv().unwrap();
    }
    let start = Instant::now();
    let mut v = 0;
    for _ in 0..n {
        s1.blocking_send(v).unwrap();
        v = r2.blocking_recv().unwrap();
    }
    let elapsed = start.elapsed();
    drop(s1);
    rt.block_on(peer).unwrap();
    elapsed
}

async fn pingpong(n: usize) -> Duration {
    let (s1, mut r1) = mpsc::channel::<usize>(1);
    let (s2, mut r2) = mpsc::channel::<usize>(1);
    let peer = tokio::spawn(async move {
        while let Some(v) = r1.recv().await {
            s2.send(v + 1).await.unwrap();
        }
    });
    for i in 0..100 {
        s1.send(i).await.unwrap();
        r2.recv().await.unwrap();
    }
    let start = Instant::now();
    let mut v = 0;
    for _ in 0..n {
        s1.send(v).await.unwrap();
        v = r2.recv().await.unwrap();
    }
    let elapsed = start.elapsed();
    drop(s1);
    peer.await.unwrap();
    elapsed
}

/// tokio's bounded and unbounded senders behind one type.
#[derive(Clone)]
enum Tx {
    Bounded(mpsc::Sender<usize>),
    Unbounded(mpsc::UnboundedSender<usize>),
}

/// tokio's bounded and unbounded receivers behind one type.
enum Rx {
    Bounded(mpsc::Receiver<usize>),
    Unbounded(mpsc::UnboundedReceiver<usize>),
}

impl Tx {
    async fn send(&self, v: usize) {
        match self {
            Tx::Bounded(tx) => tx.send(v).await.unwrap(),
            Tx::Unbounded(tx) => tx.send(v).unwrap(),
        }
    }
}

impl Rx {
    /// Cancel safe, as both `recv`s are: `tokio::select!` may drop it.
    async fn recv(&mut self) -> Option<usize> {
        match self {
            Rx::Bounded(rx) => rx.recv().await,
            Rx::Unbounded(rx) => rx.recv().await,
        }
    }
}

fn channel(cap: Option<usize>) -> (Tx, Rx) {
    match cap {
        Some(cap) => {
            let (tx, rx) = mpsc::channel(cap);
            (Tx::Bounded(tx), Rx::Bounded(rx))
        }
        None => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Tx::Unbounded(tx), Rx::Unbounded(rx))
        }
    }
}

/// `count` producer tasks each sending `n / count` messages on a clone of `tx`.
fn spawn_producers(tx: &Tx, count: usize, n: usize) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..n / count {
                    tx.send(i).await;
                }
            })
        })
        .collect()
}

/// The matrix's shapes tokio's mpsc has (seq, spsc, mpsc, select_rx), as
/// in `syncwork.rs`; the time taken.
async fn matrix(shape: Shape, cap: Option<usize>, n: usize) -> Duration {
    let (tx, mut rx) = channel(cap);
    let start = Instant::now();
    let producers = match shape {
        Shape::Seq => {
            let batch = cap.unwrap_or(n).max(1);
            let mut sent = 0;
            while sent < n {
                let k = batch.min(n - sent);
                for i in 0..k {
                    tx.send(sent + i).await;
                }
                for _ in 0..k {
                    rx.recv().await.unwrap();
                }
                sent += k;
            }
            return start.elapsed();
        }
        Shape::Spsc => spawn_producers(&tx, 1, n),
        Shape::Mpsc => spawn_producers(&tx, THREADS, n),
        Shape::SelectRx => return select_rx(cap, n).await,
        Shape::Mpmc | Shape::SelectBoth => unreachable!("tokio has no multi-consumer channel"),
    };
    let producers_n = producers.len();
    for _ in 0..n / producers_n * producers_n {
        rx.recv().await.unwrap();
    }
    for p in producers {
        p.await.unwrap();
    }
    start.elapsed()
}

/// `THREADS` (4) producer tasks each on a channel of its own; this task
/// takes every message with a `tokio::select!` over the 4 `recv`s.
async fn select_rx(cap: Option<usize>, n: usize) -> Duration {
    let (txs, rxs): (Vec<Tx>, Vec<Rx>) = (0..THREADS).map(|_| channel(cap)).unzip();
    let Ok::<[Rx; 4], _>([mut r0, mut r1, mut r2, mut r3]) = rxs.try_into() else {
        unreachable!("THREADS is 4")
    };
    let start = Instant::now();
    // Clones: the originals in `txs` keep every channel open to the end.
    let producers: Vec<_> = txs
        .iter()
        .flat_map(|tx| spawn_producers(tx, 1, n / THREADS))
        .collect();
    for _ in 0..n / THREADS * THREADS {
        tokio::select! {
            Some(_) = r0.recv() => {}
            Some(_) = r1.recv() => {}
            Some(_) = r2.recv() => {}
            Some(_) = r3.recv() => {}
            else => unreachable!("the channels are open"),
        }
    }
    for p in producers {
        p.await.unwrap();
    }
    drop(txs);
    start.elapsed()
}

/// `THREADS` tasks each lock a shared `tokio::sync::Mutex<u64>` and
/// increment it `n / THREADS` times; the time taken.
async fn mutex_contended(n: usize) -> Duration {
    let m = Arc::new(Mutex::new(0u64));
    let start = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                for _ in 0..n / THREADS {
                    *m.lock().await += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(*m.lock().await, (n / THREADS * THREADS) as u64);
    elapsed
}

/// Runs `body` as a task on a multi-thread runtime with `workers` workers.
fn on_runtime<T: Send + 'static>(
    workers: usize,
    body: impl Future<Output = T> + Send + 'static,
) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("cannot build a tokio runtime");
    rt.block_on(async move { tokio::spawn(body).await.unwrap() })
}

/// As `on_runtime`, with the timer driver that `tokio::time` needs (the
/// other scenarios run without it, as they always have).
fn on_timed_runtime<T: Send + 'static>(
    workers: usize,
    body: impl Future<Output = T> + Send + 'static,
) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("cannot build a tokio runtime");
    rt.block_on(async move { tokio::spawn(body).await.unwrap() })
}

/// Two tasks on one worker each `yield_now().await` `n` times; ns per switch.
async fn yield_switch(n: usize) -> f64 {
    let ready = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            tokio::spawn(async move {
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < 2 {
                    task::yield_now().await;
                }
                let start = Instant::now();
                for _ in 0..n {
                    task::yield_now().await;
                }
                (start, Instant::now())
            })
        })
        .collect();
    let mut times = Vec::new();
    for h in handles {
        times.push(h.await.unwrap());
    }
    let elapsed = times[0].1.max(times[1].1) - times[0].0.min(times[1].0);
    elapsed.as_nanos() as f64 / (2 * n) as f64
}

/// Spawns `BATCH` trivial tasks into `handles` and awaits them all.
async fn batch(handles: &mut Vec<JoinHandle<i32>>) {
    handles.extend((0..BATCH).map(|_| tokio::spawn(async { black_box(1) })));
    for h in handles.drain(..) {
        black_box(h.await.unwrap());
    }
}

/// Spawns and awaits `n` tasks in batches; ns per task.
async fn spawn_join(n: usize) -> f64 {
    let mut handles = Vec::with_capacity(BATCH);
    for _ in 0..WARMUP_BATCHES {
        batch(&mut handles).await;
    }
    let start = Instant::now();
    for _ in 0..n / BATCH {
        batch(&mut handles).await;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `n` tasks each wait on a shared `Notify`; KiB of VmRSS per waiting task.
async fn idle_memory(n: usize) -> f64 {
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let mut handles = Vec::with_capacity(n);
    let before = sys::rss_kib();
    for _ in 0..n {
        let (parked, release) = (parked.clone(), release.clone());
        handles.push(tokio::spawn(async move {
            // Created before `notify_waiters` is called, so it is woken.
            let notified = release.notified();
            parked.fetch_add(1, Ordering::SeqCst);
            notified.await;
        }));
    }
    while parked.load(Ordering::SeqCst) < n {
        task::yield_now().await;
    }
    let after = sys::rss_kib();
    release.notify_waiters();
    for h in handles {
        h.await.unwrap();
    }
    (after - before) / n as f64
}

/// Serves loopback connections, one task each (echo, or HTTP when `http`),
/// on a multi-thread runtime with 2 workers: the server of tokio's own
/// examples. Prints `listening <addr>` and serves until killed.
fn serve(http: bool) -> Measured {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot build a tokio runtime: {e}")))?;
    rt.block_on(async move {
        let failed = |what: &str, e: std::io::Error| Failure::Error(format!("{what}: {e}"));
        let listener = TcpListener::bind(wire::loopback())
            .await
            .map_err(|e| failed("bind", e))?;
        let addr = listener.local_addr().map_err(|e| failed("local_addr", e))?;
        println!("listening {addr}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        stream.set_nodelay(true)?;
                        if http {
                            http_connection(stream).await
                        } else {
                            echo_connection(stream).await
                        }
                    });
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

/// Echoes until the client closes.
async fn echo_connection(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; wire::BUF_SIZE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// Answers every request head read, until the client closes.
async fn http_connection(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; wire::BUF_SIZE];
    let mut filled = 0;
    let mut out = Vec::new();
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        let used = wire::answer_requests(&buf[..filled + n], &mut out);
        match wire::consume(&mut buf, filled + n, used) {
            Some(left) => filled = left,
            None => return Ok(()),
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}
