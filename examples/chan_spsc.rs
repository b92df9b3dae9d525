//! Profiling aid: one green producer and one green consumer on a
//! `bounded(1024)` channel, on one worker
//! (`cargo run --release --example chan_spsc`).
use spool::sync::mpmc::bounded;
use std::time::Instant;

fn main() {
    let rt = spool::Runtime::builder().workers(1).build().unwrap();
    let messages = 5_000_000;
    let ns = rt.run(move || {
        let (s, r) = bounded::<usize>(1024);
        let start = Instant::now();
        let producer = spool::thread::spawn(move || {
            for i in 0..messages {
                s.send(i).unwrap();
            }
        });
        for _ in 0..messages {
            r.recv().unwrap();
        }
        producer.join().unwrap();
        start.elapsed().as_nanos() as f64 / messages as f64
    });
    println!("{ns:.1} ns per message");
}
