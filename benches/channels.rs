//! Benchmarks of spool's channels (the issue's two headline numbers).
//!
//! ```text
//! cargo bench --bench channels            # 7 samples per row
//! cargo bench --bench channels -- --quick # 3 samples, fewer messages
//! ```
//!
//! Rows (`Nw` = a runtime with N workers; the body runs as a green thread
//! of it and spawns its counterpart with `spool::thread::spawn`):
//! * `pingpong_rendezvous/Nw` — two green threads bounce a message over
//!   two `bounded(0)` channels; ns per round trip (two hand-offs). Target
//!   ≤ 150 ns.
//! * `spsc_<kind>/Nw` — one green producer, one green consumer, messages
//!   of `usize`; ns per message. Kinds: `bounded0`, `bounded1`,
//!   `bounded1024` (the issue's bounded(N), target ≤ 40 ns/msg) and
//!   `unbounded`.
//!
//! Prints median, min and max per row; never fails on speed.

use std::time::Instant;

use spool::sync::mpmc::{bounded, unbounded, Receiver, Sender};
use spool::thread;
use spool::Runtime;

/// A row: name, target (ns) and one sample's measurement.
type Row = (String, Option<f64>, Box<dyn Fn() -> f64 + Sync>);

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn pingpong(rounds: usize) -> f64 {
    let (s1, r1) = bounded::<usize>(0);
    let (s2, r2) = bounded::<usize>(0);
    let peer = thread::spawn(move || {
        for v in r1.iter() {
            s2.send(v + 1).unwrap();
        }
    });
    // Warm up (and let the peer start).
    for i in 0..1000 {
        s1.send(i).unwrap();
        r2.recv().unwrap();
    }
    let start = Instant::now();
    for i in 0..rounds {
        s1.send(i).unwrap();
        r2.recv().unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / rounds as f64;
    drop(s1);
    peer.join().unwrap();
    ns
}

fn spsc(pair: (Sender<usize>, Receiver<usize>), messages: usize) -> f64 {
    let (s, r) = pair;
    let start = Instant::now();
    let producer = thread::spawn(move || {
        for i in 0..messages {
            s.send(i).unwrap();
        }
    });
    for _ in 0..messages {
        r.recv().unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / messages as f64;
    producer.join().unwrap();
    ns
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let samples = if quick { 3 } else { 7 };
    let messages = if quick { 100_000 } else { 1_000_000 };
    println!(
        "{:<28} {:>10} {:>10} {:>10}  target",
        "row", "median", "min", "max"
    );
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        let rows: Vec<Row> = vec![
            (
                format!("pingpong_rendezvous/{workers}w"),
                Some(150.0),
                Box::new(move || pingpong(messages / 4)),
            ),
            (
                format!("spsc_bounded0/{workers}w"),
                Some(150.0),
                Box::new(move || spsc(bounded(0), messages / 4)),
            ),
            (
                format!("spsc_bounded1/{workers}w"),
                None,
                Box::new(move || spsc(bounded(1), messages / 4)),
            ),
            (
                format!("spsc_bounded1024/{workers}w"),
                Some(40.0),
                Box::new(move || spsc(bounded(1024), messages)),
            ),
            (
                format!("spsc_unbounded/{workers}w"),
                None,
                Box::new(move || spsc(unbounded(), messages)),
            ),
        ];
        for (name, target, run) in &rows {
            let v: Vec<f64> = (0..samples).map(|_| rt.run(run)).collect();
            let (med, min, max) = median(v);
            let target = match target {
                Some(t) => format!("≤ {t} ns ({})", if med <= *t { "met" } else { "not met" }),
                None => "–".into(),
            };
            println!("{name:<28} {med:>10.1} {min:>10.1} {max:>10.1}  {target}");
        }
    }
}
