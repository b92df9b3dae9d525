//! tokio: async tasks on the multi-thread runtime, written as tokio's users
//! write them (`tokio::spawn`, `.await` on the `JoinHandle`, `Notify`).
//! Each scenario runs in a task spawned onto the runtime, as spool's run in
//! a green thread, so spawns come from a worker.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::{self, JoinHandle};

use crate::child::{Failure, Measured};
use crate::sys;
use crate::{BATCH, WARMUP_BATCHES};

pub fn run(scenario: &str, count: usize) -> Measured {
    match scenario {
        "yield_switch" => Ok(vec![("ns_per_switch", on_runtime(1, yield_switch(count)))]),
        "spawn_join" => Ok(vec![
            ("ns_per_thread", on_runtime(2, spawn_join(count))),
            ("peak_rss_mib", sys::peak_rss_mib()),
        ]),
        "idle_memory" => Ok(vec![("kib_per_thread", on_runtime(2, idle_memory(count)))]),
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
