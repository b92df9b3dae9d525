//! tokio: async tasks on the multi-thread runtime, written as tokio's users
//! write them (`tokio::spawn`, `.await` on the `JoinHandle`, `Notify`).
//! Each scenario runs in a task spawned onto the runtime, as spool's run in
//! a green thread, so spawns come from a worker.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{self, JoinHandle};

use crate::child::{Failure, Measured};
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
        _ => Err(Failure::Unsupported),
    }
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
