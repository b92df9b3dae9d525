//! crossbeam-channel's channel matrix and the rendezvous ping-pong, written
//! once for every channel API shaped like crossbeam-channel's, shared by
//! the bench binaries (each includes this file with `#[path]` and
//! `#[macro_use]`): `peers/benches/channels.rs` runs it for `spool::sync::mpmc`
//! and `crossbeam_channel` in one process, `peers/benches/peers` for the same two
//! in child processes. The shapes are described at the top of
//! `peers/benches/channels.rs` and on `Shape` in `peers/benches/peers/syncwork.rs`.

/// Defines, in the calling module, the matrix's scenarios for the channel
/// module `channel` (which must export crossbeam-channel's `bounded`,
/// `unbounded`, `Sender`, `Receiver` and `Select`), each taking a capacity
/// (`None` is unbounded) and a message count and returning the time taken:
/// `seq`, `spsc`, `mpsc`, `mpmc`, `select_rx` and `select_both`; and
/// `pingpong(n)`, `n` timed round trips over two bounded(0) channels.
///
/// * `spawn` starts the other parties (`spool::thread::spawn`,
///   `std::thread::spawn`); the scenario body runs on the calling thread.
/// * `threads` is the number of threads per side in the many-thread shapes.
/// * `pingpong_warmup` is the number of untimed round trips before the
///   timed ones (the peer has started and both sides are warm).
///
/// Time is taken from before the parties are spawned to after they are
/// joined; each of the `threads` parties sends or receives `n / threads`
/// messages.
macro_rules! crossbeam_api_matrix {
    (
        channel: $($chan:ident)::+,
        spawn: $($spawn:ident)::+,
        threads: $threads:expr,
        pingpong_warmup: $pingpong_warmup:expr $(,)?
    ) => {
        use std::time::{Duration, Instant};

        use $($chan)::+::{bounded, unbounded, Receiver, Select, Sender};
        use $($spawn)::+ as spawn_party;

        /// Threads per side in the many-thread shapes.
        const THREADS: usize = $threads;

        fn new_channel(cap: Option<usize>) -> (Sender<usize>, Receiver<usize>) {
            match cap {
                None => unbounded(),
                Some(cap) => bounded(cap),
            }
        }

        /// Sends then receives batches of the capacity (all `n` messages
        /// when unbounded, one at a time for bounded(0) and bounded(1)).
        pub fn seq(cap: Option<usize>, n: usize) -> Duration {
            let (tx, rx) = new_channel(cap);
            let batch = cap.unwrap_or(n).max(1);
            let start = Instant::now();
            let mut sent = 0;
            while sent < n {
                let k = batch.min(n - sent);
                for i in 0..k {
                    tx.send(sent + i).unwrap();
                }
                for _ in 0..k {
                    rx.recv().unwrap();
                }
                sent += k;
            }
            start.elapsed()
        }

        pub fn spsc(cap: Option<usize>, n: usize) -> Duration {
            let (tx, rx) = new_channel(cap);
            let start = Instant::now();
            let producer = spawn_party(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
            });
            for _ in 0..n {
                rx.recv().unwrap();
            }
            producer.join().unwrap();
            start.elapsed()
        }

        pub fn mpsc(cap: Option<usize>, n: usize) -> Duration {
            let (tx, rx) = new_channel(cap);
            let start = Instant::now();
            let producers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let tx = tx.clone();
                    spawn_party(move || {
                        for i in 0..n / THREADS {
                            tx.send(i).unwrap();
                        }
                    })
                })
                .collect();
            for _ in 0..n / THREADS * THREADS {
                rx.recv().unwrap();
            }
            for p in producers {
                p.join().unwrap();
            }
            start.elapsed()
        }

        pub fn mpmc(cap: Option<usize>, n: usize) -> Duration {
            let (tx, rx) = new_channel(cap);
            let start = Instant::now();
            let producers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let tx = tx.clone();
                    spawn_party(move || {
                        for i in 0..n / THREADS {
                            tx.send(i).unwrap();
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let rx = rx.clone();
                    spawn_party(move || {
                        for _ in 0..n / THREADS {
                            rx.recv().unwrap();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            for c in consumers {
                c.join().unwrap();
            }
            start.elapsed()
        }

        pub fn select_rx(cap: Option<usize>, n: usize) -> Duration {
            // The originals stay alive here, so no channel disconnects
            // while the consumer still selects over it.
            let chans: Vec<_> = (0..THREADS).map(|_| new_channel(cap)).collect();
            let start = Instant::now();
            let producers: Vec<_> = chans
                .iter()
                .map(|(tx, _)| {
                    let tx = tx.clone();
                    spawn_party(move || {
                        for i in 0..n / THREADS {
                            tx.send(i).unwrap();
                        }
                    })
                })
                .collect();
            for _ in 0..n / THREADS * THREADS {
                let mut sel = Select::new();
                for (_, rx) in &chans {
                    sel.recv(rx);
                }
                let case = sel.select();
                let index = case.index();
                case.recv(&chans[index].1).unwrap();
            }
            for p in producers {
                p.join().unwrap();
            }
            start.elapsed()
        }

        pub fn select_both(cap: Option<usize>, n: usize) -> Duration {
            let chans: Vec<_> = (0..THREADS).map(|_| new_channel(cap)).collect();
            let start = Instant::now();
            let producers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let txs: Vec<Sender<usize>> = chans.iter().map(|(tx, _)| tx.clone()).collect();
                    spawn_party(move || {
                        for i in 0..n / THREADS {
                            let mut sel = Select::new();
                            for tx in &txs {
                                sel.send(tx);
                            }
                            let case = sel.select();
                            let index = case.index();
                            case.send(&txs[index], i).unwrap();
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let rxs: Vec<Receiver<usize>> = chans.iter().map(|(_, rx)| rx.clone()).collect();
                    spawn_party(move || {
                        for _ in 0..n / THREADS {
                            let mut sel = Select::new();
                            for rx in &rxs {
                                sel.recv(rx);
                            }
                            let case = sel.select();
                            let index = case.index();
                            case.recv(&rxs[index]).unwrap();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            for c in consumers {
                c.join().unwrap();
            }
            start.elapsed()
        }

        /// `n` round trips over two bounded(0) channels, after
        /// `pingpong_warmup` untimed ones (the peer has started and both
        /// sides are warm).
        pub fn pingpong(n: usize) -> Duration {
            let (s1, r1) = bounded::<usize>(0);
            let (s2, r2) = bounded::<usize>(0);
            let peer = spawn_party(move || {
                for v in r1.iter() {
                    s2.send(v + 1).unwrap();
                }
            });
            for i in 0..$pingpong_warmup {
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
    };
}
