//! spool's channels and mutex side by side with crossbeam-channel and std.
//!
//! ```text
//! cargo bench -p spool-peers --bench channels              # full run: 7 samples per cell (a few minutes)
//! cargo bench -p spool-peers --bench channels -- --quick   # smoke run for CI: 3 samples, short cells
//! cargo bench -p spool-peers --bench channels -- spsc      # only rows whose name contains "spsc"
//! ```
//!
//! Three systems, measured in the same run:
//! * **spool**: `spool::sync::mpmc` channels (`spool::sync::Mutex`) between
//!   green threads of one 2-worker runtime (`Runtime::builder().workers(2)`);
//!   the scenario body is the runtime's `run` thread, the other parties are
//!   `spool::thread::spawn`ed green threads.
//! * **crossbeam**: `crossbeam_channel` between OS threads (`std::thread`).
//! * **std**: `std::sync::mpsc` (`std::sync::Mutex`) between OS threads,
//!   where the scenario exists for it (no mpmc, no select).
//!
//! The channel matrix is crossbeam-channel's own comparison benchmark
//! (`crossbeam-channel/benchmarks/crossbeam-channel.rs` in its repository),
//! with `usize` messages, 4 threads per side, ns per message:
//! * `seq` — one thread sends a batch then receives it. Crossbeam uses one
//!   batch of all messages with bounded(N = all messages) and skips
//!   bounded(0) and bounded(1); here N = 1024, so the batch is the capacity
//!   (1024, or all messages when unbounded). Skipped for bounded(0); for
//!   bounded(1) it is send/recv alternately.
//! * `spsc` — 1 producer, 1 consumer.
//! * `mpsc` — 4 producers, 1 consumer.
//! * `mpmc` — 4 producers, 4 consumers.
//! * `select_rx` — 4 producers each on its own channel; 1 consumer selects
//!   (`Select` with 4 `recv` operations) for every message.
//! * `select_both` — 4 channels; 4 producers each select a `send` over all
//!   4, 4 consumers each select a `recv` over all 4.
//!
//! Each crossed with `bounded(0)`, `bounded(1)`, `bounded(1024)` and
//! `unbounded()` (std: `sync_channel(0)`, `sync_channel(1)`,
//! `sync_channel(1024)`, `channel()`).
//!
//! Further rows:
//! * `pingpong_rendezvous/Nw` — two parties bounce a `usize` over two
//!   bounded(0) channels; ns per round trip. spool: two green threads on a
//!   1- or 2-worker runtime; peers: two OS threads. Target ≤ 150 ns.
//! * `mutex_contended` — 4 threads each do M `*m.lock().unwrap() += 1` on
//!   one `Mutex<u64>`; ns per increment (total time / 4M). spool: 4 green
//!   threads on 2 workers; std: 4 OS threads.
//! * `mutex_uncontended` — one thread locks and unlocks an uncontended
//!   `Mutex<u64>` (incrementing it); ns per lock+unlock. spool in a green
//!   thread, std on an OS thread. Target: spool ≤ 2 × std.
//!
//! How it measures: every cell first runs once with a few messages as a
//! warm-up, which also estimates its cost; its message count is then the
//! row's maximum (1,000,000 full, 100,000 quick) or less, so that a sample
//! takes about 300 ms (30 ms quick) — std's rendezvous between OS threads
//! costs microseconds per message; a cell whose sample runs over 3× that
//! shrinks its later samples. The counts used are printed. Samples are
//! taken in rounds: one sample of every system, then the next round, so
//! noise from the shared machine hits every system alike. Per system the
//! table shows median (min–max), and `spool/best` is spool's median over
//! the best peer's median (below 1 spool is ahead). It never fails on speed.
//! A sample running for over 60 s is reported as hung (a lost message or
//! wakeup looks like that) and the binary exits with status 1.

#[path = "../../benches/common/sample.rs"]
mod sample;
#[path = "common/matrix.rs"]
#[macro_use]
mod matrix;
use sample::Sample;
use std::hint::black_box;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use spool::Runtime;

/// Threads per side in the many-thread scenarios (crossbeam's `THREADS`).
const THREADS: usize = 4;

/// The issue's "bounded(N)".
const CAP_N: usize = 1024;

/// A sample running longer than this is reported as hung.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// The channel scenarios between green threads of the runtime passed to
/// `run`, the scenario body in its `run` thread.
mod spool_impl {
    crossbeam_api_matrix! {
        channel: spool::sync::mpmc,
        spawn: spool::thread::spawn,
        threads: super::THREADS,
        pingpong_warmup: 1000,
    }
}

/// The channel scenarios between OS threads, the scenario body on the main
/// thread.
mod crossbeam_impl {
    crossbeam_api_matrix! {
        channel: crossbeam_channel,
        spawn: std::thread::spawn,
        threads: super::THREADS,
        pingpong_warmup: 1000,
    }
}

/// std::sync::mpsc's two sender types behind one interface.
trait StdTx: Clone + Send + 'static {
    fn put(&self, v: usize);
}

impl StdTx for std::sync::mpsc::Sender<usize> {
    fn put(&self, v: usize) {
        self.send(v).unwrap();
    }
}

impl StdTx for std::sync::mpsc::SyncSender<usize> {
    fn put(&self, v: usize) {
        self.send(v).unwrap();
    }
}

/// The scenarios std::sync::mpsc has (seq, spsc, mpsc, pingpong).
mod std_impl {
    use std::sync::mpsc::{channel, sync_channel, Receiver};
    use std::thread::spawn;
    use std::time::{Duration, Instant};

    use super::{StdTx, THREADS};

    pub fn run(scenario: &str, cap: Option<usize>, n: usize) -> Duration {
        match cap {
            None => {
                let (tx, rx) = channel();
                by_name(scenario, tx, rx, n, n)
            }
            Some(cap) => {
                let (tx, rx) = sync_channel(cap);
                by_name(scenario, tx, rx, cap.max(1), n)
            }
        }
    }

    fn by_name<S: StdTx>(
        scenario: &str,
        tx: S,
        rx: Receiver<usize>,
        batch: usize,
        n: usize,
    ) -> Duration {
        match scenario {
            "seq" => seq(tx, rx, batch, n),
            "spsc" => producers(tx, rx, 1, n),
            "mpsc" => producers(tx, rx, THREADS, n),
            _ => unreachable!("std has no {scenario}"),
        }
    }

    fn seq<S: StdTx>(tx: S, rx: Receiver<usize>, batch: usize, n: usize) -> Duration {
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
        start.elapsed()
    }

    fn producers<S: StdTx>(tx: S, rx: Receiver<usize>, threads: usize, n: usize) -> Duration {
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                spawn(move || {
                    for i in 0..n / threads {
                        tx.put(i);
                    }
                })
            })
            .collect();
        for _ in 0..n / threads * threads {
            rx.recv().unwrap();
        }
        for h in handles {
            h.join().unwrap();
        }
        start.elapsed()
    }

    pub fn pingpong(n: usize) -> Duration {
        let (s1, r1) = sync_channel::<usize>(0);
        let (s2, r2) = sync_channel::<usize>(0);
        let peer = spawn(move || {
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
}

/// `threads` threads each increment a shared `Mutex<u64>` `per_thread` times.
macro_rules! mutex_contended {
    ($mutex:ty, $($spawn:ident)::+, $threads:expr, $per_thread:expr) => {{
        let (threads, per_thread) = ($threads, $per_thread);
        let m = std::sync::Arc::new(<$mutex>::new(0u64));
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let m = m.clone();
                $($spawn)::+(move || {
                    for _ in 0..per_thread {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let elapsed = start.elapsed();
        assert_eq!(*m.lock().unwrap(), (threads * per_thread) as u64);
        elapsed
    }};
}

/// Lock+unlock of an uncontended `Mutex<u64>`, `n` times.
macro_rules! mutex_uncontended {
    ($mutex:ty, $n:expr) => {{
        let m = black_box(<$mutex>::new(0u64));
        let start = Instant::now();
        for _ in 0..$n {
            *black_box(&m).lock().unwrap() += 1;
        }
        let elapsed = start.elapsed();
        assert_eq!(*m.lock().unwrap(), $n as u64);
        elapsed
    }};
}

/// What `--help` prints.
const USAGE: &str = "\
usage: cargo bench -p spool-peers --bench channels -- [--quick] [FILTER...]

  FILTER...   run only the rows whose name contains any FILTER
  --quick     the CI smoke run: 3 samples, short cells
  -h, --help  print this help";

/// Command-line options.
struct Opts {
    quick: bool,
    /// Run the rows whose name contains any of these (all if none).
    filters: Vec<String>,
}

impl Opts {
    /// Reads the command line; an unknown flag is an error (exit status 2),
    /// so a typo never starts a full run.
    fn parse() -> Opts {
        match Opts::parse_from(lexopt::Parser::from_env()) {
            Ok(Some(opts)) => opts,
            Ok(None) => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("channels: {e} (try --help)");
                std::process::exit(2);
            }
        }
    }

    /// The options, or `None` for `--help`.
    fn parse_from(mut args: lexopt::Parser) -> Result<Option<Opts>, lexopt::Error> {
        use lexopt::prelude::*;
        let mut opts = Opts {
            quick: false,
            filters: Vec::new(),
        };
        while let Some(arg) = args.next()? {
            match arg {
                Long("quick") => opts.quick = true,
                // `cargo bench` passes libtest's `--bench` to every benchmark.
                Long("bench") => {}
                Short('h') | Long("help") => return Ok(None),
                Value(filter) => opts.filters.push(filter.string()?),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(Some(opts))
    }

    fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

impl Sample {
    /// `median (min–max)`, with precision to suit the magnitude.
    fn cell(&self) -> String {
        format!(
            "{} ({}–{})",
            fmt(self.median()),
            fmt(self.min()),
            fmt(self.max())
        )
    }
}

fn fmt(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// What the watchdog watches: the running cell and when its sample started.
static RUNNING: StdMutex<Option<(String, Instant)>> = StdMutex::new(None);

fn running(name: Option<String>) {
    *RUNNING.lock().unwrap() = name.map(|n| (n, Instant::now()));
}

/// Exits with a message if one sample runs longer than `HANG_LIMIT`.
fn start_watchdog() {
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some((name, since)) = &*RUNNING.lock().unwrap() {
            if since.elapsed() > HANG_LIMIT {
                eprintln!("bench: `{name}` ran for over {HANG_LIMIT:?}: it looks hung (a lost message or wakeup?); exiting");
                std::process::exit(1);
            }
        }
    });
}

/// One system's cell of a row: measures `n` operations, returns the time.
struct System<'a> {
    name: &'static str,
    measure: Box<dyn Fn(usize) -> Duration + 'a>,
}

/// Budget for one sample, maximum and warm-up operation counts.
struct Sizing {
    budget: Duration,
    max_ops: usize,
    warmup_ops: usize,
}

const SYSTEMS: [&str; 3] = ["spool", "crossbeam", "std"];

fn header() {
    println!(
        "{:<26} {:<10} {:<24} {:<24} {:<24} {:>10}  {:<18} ops per sample (spool/crossbeam/std)",
        "row", "unit", "spool", "crossbeam", "std", "spool/best", "target"
    );
    println!("{}", "-".repeat(190));
}

/// Target of a row, judged on the medians.
enum Target {
    None,
    /// spool's median at most this many ns.
    Ns(f64),
    /// spool's median at most this multiple of std's.
    TimesStd(f64),
}

/// Measures a row: warm-up and sizing per system, then samples in rounds.
fn measure_row(
    opts: &Opts,
    name: &str,
    unit: &str,
    systems: Vec<System<'_>>,
    sizing: &Sizing,
    target: Target,
) {
    if !opts.wants(name) {
        return;
    }
    // A multiple of 4 threads × 1024 (whole batches), at least one.
    let step = THREADS * CAP_N;
    let fit = |per_op: f64| {
        let fit = (sizing.budget.as_secs_f64() / per_op.max(1e-10)) as usize;
        (fit.min(sizing.max_ops) / step).max(1) * step
    };
    // Warm up each system once and size its samples from that.
    let mut sized: Vec<(usize, usize)> = systems
        .iter()
        .map(|s| {
            running(Some(format!("{name} {} (warm-up)", s.name)));
            let w = sizing.warmup_ops;
            let n = fit((s.measure)(w).as_secs_f64() / w as f64);
            (n, n)
        })
        .collect();
    let mut samples: Vec<Sample> = systems.iter().map(|_| Sample { values: vec![] }).collect();
    for _ in 0..opts.pick(7, 3) {
        for ((s, (_, n)), sample) in systems.iter().zip(&mut sized).zip(&mut samples) {
            running(Some(format!("{name} {} ({n} ops)", s.name)));
            let elapsed = (s.measure)(*n);
            let per_op = elapsed.as_secs_f64() / *n as f64;
            sample.values.push(per_op * 1e9);
            // A bimodal cell (spool's threads on one worker or on two) can
            // be far slower than its warm-up: shrink later samples.
            if elapsed > 3 * sizing.budget {
                *n = (*n).min(fit(per_op));
            }
        }
    }
    running(None);
    let by_name = |sys: &str| systems.iter().position(|s| s.name == sys);
    let cell = |sys: &str| by_name(sys).map_or("–".to_owned(), |i| samples[i].cell());
    let ops = |sys: &str| {
        by_name(sys).map_or("–".to_owned(), |i| match sized[i] {
            (first, last) if first == last => first.to_string(),
            (first, last) => format!("{first}→{last}"),
        })
    };
    let spool = by_name("spool").map(|i| samples[i].median());
    let best_peer = SYSTEMS[1..]
        .iter()
        .filter_map(|sys| by_name(sys).map(|i| samples[i].median()))
        .fold(f64::INFINITY, f64::min);
    let ratio = match spool {
        Some(s) if best_peer.is_finite() => format!("{:.2}", s / best_peer),
        _ => "–".to_owned(),
    };
    let target = match (target, spool) {
        (Target::Ns(t), Some(s)) => {
            format!("≤ {t} ns: {}", if s <= t { "met" } else { "NOT met" })
        }
        (Target::TimesStd(k), Some(s)) => {
            let std = by_name("std").map(|i| samples[i].median()).unwrap();
            format!(
                "≤ {k}× std: {}",
                if s <= k * std { "met" } else { "NOT met" }
            )
        }
        _ => "–".to_owned(),
    };
    println!(
        "{name:<26} {unit:<10} {:<24} {:<24} {:<24} {ratio:>10}  {target:<18} {}/{}/{}",
        cell("spool"),
        cell("crossbeam"),
        cell("std"),
        ops("spool"),
        ops("crossbeam"),
        ops("std"),
    );
}

fn main() {
    let opts = Opts::parse();
    start_watchdog();
    println!(
        "spool channels and mutex vs crossbeam-channel and std ({} mode; ns, median (min–max) over {} samples; lower is better)",
        if opts.quick { "quick" } else { "full" },
        opts.pick(7, 3)
    );
    println!(
        "spool: green threads on a 2-worker runtime; crossbeam, std: OS threads; bounded(N) = bounded({CAP_N}); {THREADS} threads per side"
    );
    header();
    let rt2 = Runtime::builder().workers(2).build().expect("runtime");
    let rt1 = Runtime::builder().workers(1).build().expect("runtime");
    let sizing = Sizing {
        budget: opts.pick(Duration::from_millis(300), Duration::from_millis(30)),
        max_ops: opts.pick(1_000_000, 100_000),
        warmup_ops: opts.pick(16_384, 4_096),
    };

    let caps: [(&str, Option<usize>); 4] = [
        ("bounded0", Some(0)),
        ("bounded1", Some(1)),
        ("bounded1024", Some(CAP_N)),
        ("unbounded", None),
    ];
    let scenarios = ["seq", "spsc", "mpsc", "mpmc", "select_rx", "select_both"];
    for (cap_name, cap) in caps {
        for scenario in scenarios {
            if scenario == "seq" && cap == Some(0) {
                continue; // would block forever: nobody receives
            }
            let name = format!("{cap_name}_{scenario}");
            let rt = &rt2;
            let spool_fn: fn(Option<usize>, usize) -> Duration = match scenario {
                "seq" => spool_impl::seq,
                "spsc" => spool_impl::spsc,
                "mpsc" => spool_impl::mpsc,
                "mpmc" => spool_impl::mpmc,
                "select_rx" => spool_impl::select_rx,
                _ => spool_impl::select_both,
            };
            let cb_fn: fn(Option<usize>, usize) -> Duration = match scenario {
                "seq" => crossbeam_impl::seq,
                "spsc" => crossbeam_impl::spsc,
                "mpsc" => crossbeam_impl::mpsc,
                "mpmc" => crossbeam_impl::mpmc,
                "select_rx" => crossbeam_impl::select_rx,
                _ => crossbeam_impl::select_both,
            };
            let mut systems = vec![
                System {
                    name: "spool",
                    measure: Box::new(move |n| rt.run(move || spool_fn(cap, n))),
                },
                System {
                    name: "crossbeam",
                    measure: Box::new(move |n| cb_fn(cap, n)),
                },
            ];
            if matches!(scenario, "seq" | "spsc" | "mpsc") {
                systems.push(System {
                    name: "std",
                    measure: Box::new(move |n| std_impl::run(scenario, cap, n)),
                });
            }
            let target = match (cap, scenario) {
                (Some(0), "spsc") => Target::Ns(150.0),
                (Some(CAP_N), "spsc") => Target::Ns(40.0),
                _ => Target::None,
            };
            measure_row(&opts, &name, "ns/msg", systems, &sizing, target);
        }
    }

    for (workers, rt) in [(1, &rt1), (2, &rt2)] {
        measure_row(
            &opts,
            &format!("pingpong_rendezvous/{workers}w"),
            "ns/rtt",
            vec![
                System {
                    name: "spool",
                    measure: Box::new(move |n| rt.run(move || spool_impl::pingpong(n))),
                },
                System {
                    name: "crossbeam",
                    measure: Box::new(crossbeam_impl::pingpong),
                },
                System {
                    name: "std",
                    measure: Box::new(std_impl::pingpong),
                },
            ],
            &sizing,
            Target::Ns(150.0),
        );
    }

    measure_row(
        &opts,
        "mutex_contended",
        "ns/incr",
        vec![
            System {
                name: "spool",
                measure: Box::new(|n| {
                    rt2.run(|| {
                        mutex_contended!(
                            spool::sync::Mutex<u64>,
                            spool::thread::spawn,
                            THREADS,
                            n / THREADS
                        )
                    })
                }),
            },
            System {
                name: "std",
                measure: Box::new(|n| {
                    mutex_contended!(StdMutex<u64>, std::thread::spawn, THREADS, n / THREADS)
                }),
            },
        ],
        &sizing,
        Target::None,
    );
    measure_row(
        &opts,
        "mutex_uncontended",
        "ns/pair",
        vec![
            System {
                name: "spool",
                measure: Box::new(|n| rt2.run(|| mutex_uncontended!(spool::sync::Mutex<u64>, n))),
            },
            System {
                name: "std",
                measure: Box::new(|n| mutex_uncontended!(StdMutex<u64>, n)),
            },
        ],
        &Sizing {
            max_ops: opts.pick(10_000_000, 1_000_000),
            ..sizing
        },
        Target::TimesStd(2.0),
    );
}
