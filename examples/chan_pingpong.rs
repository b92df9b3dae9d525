//! Profiling aid: a rendezvous ping-pong between two green threads on one
//! worker (`cargo run --release --example chan_pingpong`).
use spool::sync::mpmc::bounded;
use std::time::Instant;

fn main() {
    let rt = spool::Runtime::builder().workers(1).build().unwrap();
    let rounds = 2_000_000;
    let ns = rt.run(move || {
        let (s1, r1) = bounded::<usize>(0);
        let (s2, r2) = bounded::<usize>(0);
        let peer = spool::thread::spawn(move || {
            for v in r1.iter() {
                s2.send(v + 1).unwrap();
            }
        });
        let start = Instant::now();
        for i in 0..rounds {
            s1.send(i).unwrap();
            r2.recv().unwrap();
        }
        let ns = start.elapsed().as_nanos() as f64 / rounds as f64;
        drop(s1);
        peer.join().unwrap();
        ns
    });
    println!("{ns:.1} ns per round trip");
}
