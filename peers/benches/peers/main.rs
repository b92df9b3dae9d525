//! spool side by side with its peers: tokio, may, `std::thread` and Go.
//!
//! ```text
//! cargo bench -p spool-peers --bench peers              # full run (~8 minutes on 2 cores: 495 s in BENCHMARKS.md)
//! cargo bench -p spool-peers --bench peers -- --quick   # smoke run for CI (~25 s after the build)
//! cargo bench -p spool-peers --bench peers -- spawn     # only scenarios whose name contains "spawn"
//! cargo bench -p spool-peers --bench peers -- chan mutex  # ... "chan" or "mutex" (the sync scenarios)
//! cargo bench -p spool-peers --bench peers -- --report benches/peers/results.json  # redraw a saved run
//! ```
//!
//! An unknown flag is an error (exit status 2), so a typo never starts the
//! full run; `-- --help` lists the options.
//!
//! # How a run works
//!
//! Every measurement runs in a child process: this binary re-runs itself as
//! `peers --child <system> <scenario> <count>` (Go's peer is its own binary,
//! built from `peers/benches/peers/go/` with `go build`, taking `<scenario>
//! <count>`). A child does one sample's warm-up and work and prints
//! `<metric> <value>` lines on stdout, or `error <message>` when the system
//! could not do the work (a count it cannot reach, say). So a crash, an OOM
//! kill or a hang (a child is killed after `CHILD_TIME_LIMIT`) costs one
//! cell of the table, not the run, and every sample starts from a fresh
//! process, so one system's leftovers (heap, stacks, idle workers) never
//! weigh on another.
//!
//! The machines are shared and noisy, so samples are taken in rounds: round
//! `r` runs one sample of every system before round `r + 1` starts. Noise
//! that lasts a few seconds then hits every system alike, and the medians
//! (and spool's ratio to the best peer) are what the table reports.
//!
//! # Scenarios
//!
//! They are the spool-only `benches/thread.rs` scenarios, written for each
//! peer as its users would write them (see each system's file):
//!
//! * `yield_switch` — two threads/tasks on one worker each yield N times;
//!   ns per switch = time / 2N, timed from when both are ready (a
//!   rendezvous counter) to when both are done. tokio: a multi-thread
//!   runtime with 1 worker; may: 1 worker; Go: `GOMAXPROCS(1)`; std: two OS
//!   threads calling `std::thread::yield_now` pinned to one CPU.
//! * `spawn_join` — from inside the runtime, batches of 1,000 trivial
//!   threads/tasks are spawned and then all joined; ns per thread, after 20
//!   warm-up batches; and the child's peak RSS (VmHWM). 2 workers; std
//!   spawns fewer OS threads (the note says how many).
//! * `idle_memory` — N threads/tasks each park (spool `park`, tokio
//!   awaiting a `Notify`, may `park`, std `park`, Go a receive from a
//!   channel that is later closed); KiB of VmRSS per parked thread (VmRSS
//!   before spawning to all parked, / N). std is capped at
//!   `STD_THREAD_CAP` OS threads.
//!
//! The network scenarios run each system's server in a child process
//! (`<scenario>` `echo_server` or `http_server`: it prints `listening
//! <addr>` and serves until killed) and drive it from another process: the
//! suite's load generator (`peers --loadgen`, see `loadgen.rs`) or `wrk`
//! (see `net.rs`). Servers: spool a green thread per connection with
//! `spool::net` (2 workers), tokio a task per connection (multi-thread
//! runtime, 2 workers), may a coroutine per connection with `may::net` (2
//! workers), std an OS thread per connection, Go a goroutine per
//! connection (`GOMAXPROCS(2)`); each reads into a 4 KiB buffer and sets
//! `TCP_NODELAY`.
//!
//! * `tcp_echo/<conns>x<size>` — closed-loop ping-pong on every
//!   connection for a fixed window once all are open; round trips/s
//!   (higher is better) and the round trips' p50 and p99.
//! * `idle_conns/N` — N connections open and idle (each pinged once, so
//!   its handler runs); the server's VmRSS increase / N.
//! * `many_clients/N` — N connections open at once, then each makes
//!   `MANY_CLIENTS_ROUNDS` round trips; ms to the last.
//! * `http_hello` — `wrk -t2 -c100 --latency` against a keep-alive
//!   HTTP/1.1 "hello" server (each request head found up to its blank
//!   line, not parsed, as Go's server does); skipped with a message when
//!   `wrk` is not installed.
//!
//! The sync scenarios (see `syncwork.rs`) run with 2 workers (Go
//! `GOMAXPROCS(2)`, std and crossbeam on OS threads), each system with its
//! own channel or mutex. A sixth column, `crossbeam`, is crossbeam-channel
//! between OS threads: the channel library std's `mpsc` is built from, and
//! the only OS-thread channel with select and many consumers; it has only
//! the channel rows. A system without a scenario's primitive reports `n/a`
//! and why (tokio has no rendezvous or multi-consumer channel, may no
//! bounded channel or channel select, Go no unbounded channel, std's mpsc
//! no select or multiple consumers).
//!
//! * `chan_pingpong` — two threads/tasks bounce a `usize` over two
//!   rendezvous channels: spool `mpmc::bounded(0)`, crossbeam `bounded(0)`,
//!   std `sync_channel(0)`, Go unbuffered `chan`, tokio `mpsc::channel(1)`,
//!   may `mpsc::channel()` (the closest each has); ns per round trip.
//! * `main_pingpong` — the same bounce between the process's `main`
//!   thread (a plain OS thread, as in a program ported by changing its
//!   `use` lines) and one green thread/task on a 1-worker runtime: spool
//!   `mpmc::bounded(0)` with a green thread, tokio `mpsc::channel(1)` with
//!   `blocking_send`/`blocking_recv` on `main` and a task, and std
//!   `sync_channel(0)` and crossbeam `bounded(0)` with a second OS thread
//!   (their `chan_pingpong`); ns per round trip. Go's `main` is a goroutine
//!   (`n/a`).
//! * `chan_<cap>_<shape>` — crossbeam-channel's matrix as in
//!   `peers/benches/channels.rs`: `seq`, `spsc`, `mpsc`, `mpmc`, `select_rx`,
//!   `select_both` × `bounded0`, `bounded1`, `bounded1024`, `unbounded`;
//!   ns per message. With `--quick`, spsc and mpmc × bounded1 and
//!   unbounded only.
//! * `mutex_contended` — `THREADS` (4) threads/tasks each increment one
//!   shared counter under the system's mutex; ns per increment.
//!
//! A sync child warms up with about 1/64 of its count and then times the
//! count, or fewer operations when the warm-up says the count would take
//! over count × 300 ns (so a rendezvous between OS threads at tens of µs
//! per message keeps its sample short), as `peers/benches/channels.rs` does.
//!
//! The binary exits with status 1 if spool itself failed a scenario (a
//! peer's failure is a result, reported in its cell).
//!
//! # Adding a scenario
//!
//! Add a [`Scenario`] to `scenarios()` with its counts, and a match arm in
//! each system's `run` (and in `go/main.go`). A system whose scenario is
//! not written yet answers `Err(Unsupported)` (a skipped cell); one that
//! lacks the primitive answers `Err(NotApplicable(reason))` (Go prints
//! `n/a <reason>`), an `n/a` cell. Nothing prints a row for a scenario
//! that is not implemented for spool.

// First: their macros are used by the peers' modules (syncwork's by way of
// matrix's).
#[path = "../common/matrix.rs"]
#[macro_use]
mod matrix;
#[macro_use]
mod syncwork;

mod chart;
mod child;
mod loadgen;
mod net;
mod report;
mod sys;
mod wire;

mod crossbeam_peer;
mod may_peer;
mod spool_peer;
mod std_peer;
mod tokio_peer;

use std::time::Instant;

use report::{Cell, Row};

/// The systems, in table order. spool first; the rest are its peers.
/// `crossbeam` (crossbeam-channel on OS threads) has only the channel rows.
pub const SYSTEMS: [&str; 6] = ["spool", "tokio", "may", "std", "crossbeam", "go"];

/// At most this many OS threads are parked at once in `idle_memory`.
pub const STD_THREAD_CAP: usize = 10_000;

/// Threads spawned and then joined per batch in `spawn_join`.
pub const BATCH: usize = 1_000;

/// Batches run before timing in `spawn_join`.
pub const WARMUP_BATCHES: usize = 20;

/// One scenario: what the children are asked to do and how often.
pub struct Scenario {
    /// Name as the children know it (`yield_switch`, ...).
    pub name: String,
    /// The row label; `{n}` is the count.
    pub label: String,
    /// Metrics the children print, with their units, in row order.
    pub metrics: &'static [(&'static str, &'static str)],
    /// What one sample does.
    pub work: Work,
    /// Samples (rounds) to take.
    pub samples: usize,
    /// A note for the table, if the counts differ between systems.
    pub note: Option<String>,
}

/// What one sample of a scenario does.
pub enum Work {
    /// One child runs `<scenario> <count>`; the count each system is given
    /// (iterations, threads).
    Child(fn(&str) -> usize),
    /// The system's server in one child, driven from another process.
    Net(net::Job),
}

/// What `peers --help` prints.
const USAGE: &str = "\
usage: cargo bench -p spool-peers --bench peers -- [--quick] [FILTER...]
       cargo bench -p spool-peers --bench peers -- --report FILE

Runs spool and its peers side by side; prints one table and writes
target/peers/results.json and target/peers/chart.svg.

  FILTER...      run only the scenarios whose label contains any FILTER
  --quick        the CI smoke run: fewer, shorter samples (about 25 s)
  --report FILE  measure nothing: print the table and draw chart.svg again
                 from a results.json (a relative FILE is taken from peers/,
                 where cargo runs benchmarks)
  -h, --help     print this help

Internal modes (the benchmark runs itself as):
  --child SYSTEM SCENARIO COUNT           one sample in a child process
  --loadgen MODE ADDR CONNS SIZE AMOUNT   the load generator";

/// What this run of the binary does.
enum Mode {
    /// Measure (the benchmark proper).
    Bench(Opts),
    /// Print the table and draw the chart from a saved results file.
    Report(std::path::PathBuf),
    /// The child side of one sample (`child.rs`).
    Child(child::Args),
    /// The load generator (`loadgen.rs`).
    Loadgen(loadgen::Args),
    /// `--help`.
    Help,
}

/// Command-line options of a measuring run.
pub struct Opts {
    pub quick: bool,
    /// Run the scenarios whose label contains any of these (all if none).
    pub filters: Vec<String>,
}

/// Reads the command line; an unknown flag or a bad value is an error.
fn parse_args(mut args: lexopt::Parser) -> Result<Mode, lexopt::Error> {
    use lexopt::prelude::*;
    let mut opts = Opts {
        quick: false,
        filters: Vec::new(),
    };
    let mut report = None;
    while let Some(arg) = args.next()? {
        match arg {
            Long("quick") => opts.quick = true,
            Long("report") => report = Some(args.value()?.into()),
            // `cargo bench` passes libtest's `--bench` to every benchmark.
            Long("bench") => {}
            Short('h') | Long("help") => return Ok(Mode::Help),
            Long("child") => return child::Args::parse(&mut args).map(Mode::Child),
            Long("loadgen") => return loadgen::Args::parse(&mut args).map(Mode::Loadgen),
            Value(filter) => opts.filters.push(filter.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    match report {
        Some(_) if opts.quick || !opts.filters.is_empty() => {
            Err("--report redraws a saved run as it is: it takes no --quick or FILTER".into())
        }
        Some(path) => Ok(Mode::Report(path)),
        None => Ok(Mode::Bench(opts)),
    }
}

fn scenarios(opts: &Opts) -> Vec<Scenario> {
    let quick = opts.quick;
    let mut list = vec![
        Scenario {
            name: "yield_switch".into(),
            label: "yield_switch (1 worker)".into(),
            metrics: &[("ns_per_switch", "ns/switch")],
            work: Work::Child(if quick { |_| 200_000 } else { |_| 1_000_000 }),
            samples: if quick { 3 } else { 15 },
            note: None,
        },
        Scenario {
            name: "spawn_join".into(),
            label: "spawn_join (2 workers)".into(),
            metrics: &[
                ("ns_per_thread", "ns/thread"),
                ("peak_rss_mib", "MiB peak RSS"),
            ],
            // std spawns OS threads at tens of µs each: 1% of the count.
            work: Work::Child(if quick {
                |s| if s == "std" { 2_000 } else { 100_000 }
            } else {
                |s| if s == "std" { 10_000 } else { 1_000_000 }
            }),
            // The noisiest row on a shared machine: more rounds.
            samples: if quick { 3 } else { 21 },
            note: Some(if quick {
                "std: 2,000 OS threads per sample, the others 100,000".into()
            } else {
                "std: 10,000 OS threads per sample, the others 1,000,000".into()
            }),
        },
        Scenario {
            name: "timeout_recv".into(),
            label: "timeout_recv (1 worker)".into(),
            // Two rows: distinct units name them (a label is scenario + unit).
            metrics: &[
                ("ns_per_timeout_recv", "ns/recv in a timeout"),
                ("ns_per_recv", "ns/recv, no timeout"),
            ],
            work: Work::Child(if quick { |_| 200_000 } else { |_| 1_000_000 }),
            samples: if quick { 3 } else { 15 },
            note: Some(
                "a receive of a message already in the channel, with a 10 s timeout around it \
                 and without; the difference is the cost of entering and leaving a timeout \
                 (spool: a cancel scope)"
                    .into(),
            ),
        },
    ];
    let idle = |n: usize, samples: usize| Scenario {
        name: "idle_memory".into(),
        label: format!("idle_memory/{n}"),
        metrics: &[("kib_per_thread", "KiB/thread")],
        work: Work::Child(match n {
            100_000 => |s| capped(s, 100_000),
            _ => |s| capped(s, 1_000_000),
        }),
        samples,
        note: (n > STD_THREAD_CAP).then(|| {
            format!(
                "std: capped at {} parked OS threads (a limit the suite sets)",
                thousands(STD_THREAD_CAP)
            )
        }),
    };
    if quick {
        list.push(idle(100_000, 3));
    } else {
        list.push(idle(100_000, 5));
        list.push(idle(1_000_000, 3));
    }
    list.extend(net_scenarios(quick));
    list.extend(sync_scenarios(quick));
    list.retain(|s| opts.filters.is_empty() || opts.filters.iter().any(|f| s.label.contains(f)));
    list
}

/// The sync scenarios (see the module doc and `syncwork.rs`): the count is
/// the most operations a sample times.
fn sync_scenarios(quick: bool) -> Vec<Scenario> {
    let samples = if quick { 3 } else { 5 };
    let max_ops: fn(&str) -> usize = if quick { |_| 100_000 } else { |_| 1_000_000 };
    let mut list = vec![Scenario {
        name: "chan_pingpong".into(),
        label: "chan_pingpong (2 workers)".into(),
        metrics: &[("ns_per_round_trip", "ns/round trip")],
        work: Work::Child(max_ops),
        samples,
        note: Some(
            "tokio: mpsc::channel(1) (no rendezvous channel); may: mpsc::channel() (no bounded \
             channel); the others a rendezvous channel"
                .into(),
        ),
    }];
    list.push(Scenario {
        name: "main_pingpong".into(),
        label: "main_pingpong (1 worker)".into(),
        metrics: &[("ns_per_round_trip", "ns/round trip")],
        work: Work::Child(max_ops),
        samples,
        note: Some(
            "the process's main thread and one green thread/task (1 worker); std and \
             crossbeam: main and a second OS thread"
                .into(),
        ),
    });
    for cap in syncwork::CAPS {
        for shape in syncwork::Shape::ALL {
            if shape == syncwork::Shape::Seq && cap == Some(0) {
                continue; // one thread alone on a rendezvous channel blocks for ever
            }
            let in_quick = matches!(shape, syncwork::Shape::Spsc | syncwork::Shape::Mpmc)
                && matches!(cap, Some(1) | None);
            if quick && !in_quick {
                continue;
            }
            let name = syncwork::matrix_name(cap, shape);
            list.push(Scenario {
                label: name.clone(),
                name,
                metrics: &[("ns_per_msg", "ns/msg")],
                work: Work::Child(max_ops),
                samples,
                note: Some(format!(
                    "{} threads/tasks per side, up to {} messages per sample",
                    syncwork::THREADS,
                    thousands(max_ops(""))
                )),
            });
        }
    }
    list.push(Scenario {
        name: "mutex_contended".into(),
        label: format!("mutex_contended ({} threads, 2 workers)", syncwork::THREADS),
        metrics: &[("ns_per_increment", "ns/increment")],
        work: Work::Child(max_ops),
        samples,
        note: Some(format!(
            "{} threads/tasks each do 1/{} of up to {} increments; std: OS threads",
            syncwork::THREADS,
            syncwork::THREADS,
            thousands(max_ops(""))
        )),
    });
    list
}

/// Why `system` does not run `scenario` at all, decided here rather than by
/// a child: crossbeam-channel is a channel library, so its column has only
/// the channel rows (`chan_*` and `main_pingpong`).
fn not_applicable(system: &str, scenario: &Scenario) -> Option<&'static str> {
    let channel_row = scenario.name.starts_with("chan_") || scenario.name == "main_pingpong";
    (system == "crossbeam" && !channel_row)
        .then_some("crossbeam-channel on OS threads appears in the channel rows only")
}

/// Round trips each client makes in `many_clients`.
pub const MANY_CLIENTS_ROUNDS: u64 = 20;

/// The network scenarios (see the module doc and `net.rs`).
fn net_scenarios(quick: bool) -> Vec<Scenario> {
    let samples = if quick { 1 } else { 3 };
    let echo_metrics: &'static [(&'static str, &'static str)] = &[
        ("round_trips_per_s", "round trips/s"),
        ("p50_us", "µs p50 round trip"),
        ("p99_us", "µs p99 round trip"),
    ];
    let echo = |conns: usize, size: usize, name: &str| Scenario {
        name: "tcp_echo".into(),
        label: format!("tcp_echo/{conns}x{name}"),
        metrics: echo_metrics,
        work: Work::Net(net::Job::Echo {
            conns,
            size,
            millis: if quick { 500 } else { 2_000 },
        }),
        samples,
        note: None,
    };
    let idle = |conns: usize| Scenario {
        name: "idle_conns".into(),
        label: format!("idle_conns/{conns}"),
        metrics: &[("kib_per_conn", "KiB/conn")],
        work: Work::Net(net::Job::Idle { conns }),
        samples,
        note: None,
    };
    let many = |conns: usize| Scenario {
        name: "many_clients".into(),
        label: format!("many_clients/{conns}"),
        metrics: &[("ms", "ms")],
        work: Work::Net(net::Job::Rounds {
            conns,
            rounds: MANY_CLIENTS_ROUNDS,
        }),
        samples,
        note: Some(format!(
            "all clients connected, then each makes {MANY_CLIENTS_ROUNDS} 64-byte round trips"
        )),
    };
    let http = Scenario {
        name: "http_hello".into(),
        label: "http_hello (wrk -t2 -c100)".into(),
        metrics: &[
            ("requests_per_s", "requests/s"),
            ("p50_us", "µs p50"),
            ("p99_us", "µs p99"),
        ],
        work: Work::Net(net::Job::Http {
            conns: 100,
            secs: if quick { 1 } else { 5 },
        }),
        samples,
        note: None,
    };
    if quick {
        return vec![echo(100, 64, "64B"), idle(1_000), http];
    }
    vec![
        echo(100, 64, "64B"),
        echo(100, 4096, "4KiB"),
        echo(1_000, 64, "64B"),
        echo(1_000, 4096, "4KiB"),
        idle(10_000),
        many(2_000),
        many(8_000),
        http,
    ]
}

/// The median of `system` in the row of `scenario` (label prefix) and `metric`.
fn median(rows: &[Row], scenario: &str, metric: &str, system: &str) -> Option<f64> {
    let row = rows
        .iter()
        .find(|r| r.scenario.starts_with(scenario) && r.metric == metric)?;
    let i = SYSTEMS.iter().position(|s| *s == system)?;
    row.cells[i].stats().map(|(m, _, _)| m)
}

/// The network targets of the issues, checked on the medians (printed, never
/// failing the run: the machines are shared and noisy).
fn print_targets(rows: &[Row]) {
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let echo = "tcp_echo/100x64B";
    if let Some(spool) = median(rows, echo, "round_trips_per_s", "spool") {
        let best = ["tokio", "may", "go"]
            .into_iter()
            .filter_map(|p| median(rows, echo, "round_trips_per_s", p).map(|m| (m, p)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((best, peer)) = best {
            println!(
                "target {echo}: spool {spool:.0} round trips/s ≥ best of tokio/may/go ({peer} \
                 {best:.0}): {}",
                verdict(spool >= best)
            );
        }
    }
    // "p99 no worse": against every one of tokio, may and Go (the lowest).
    if let Some(p99) = median(rows, echo, "p99_us", "spool") {
        let best = ["tokio", "may", "go"]
            .into_iter()
            .filter_map(|p| median(rows, echo, "p99_us", p).map(|m| (m, p)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((best, peer)) = best {
            println!(
                "target {echo}: spool p99 {p99:.0} µs ≤ lowest of tokio/may/go ({peer} {best:.0} µs): {}",
                verdict(p99 <= best)
            );
        }
    }
    if let Some(kib) = median(rows, "idle_conns/", "kib_per_conn", "spool") {
        println!(
            "target idle_conns: spool {kib:.1} KiB per idle connection ≤ 12: {}",
            verdict(kib <= 12.0)
        );
    }
    let spool = median(rows, "many_clients/8000", "ms", "spool");
    let std = median(rows, "many_clients/2000", "ms", "std");
    if let (Some(spool), Some(std)) = (spool, std) {
        println!(
            "target many_clients: spool with 8,000 clients {spool:.0} ms < std with 2,000 {std:.0} ms: {}",
            verdict(spool < std)
        );
    }
}

/// `n` with a comma every three digits.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` for every system but std, which parks at most `STD_THREAD_CAP`.
fn capped(system: &str, n: usize) -> usize {
    if system == "std" {
        n.min(STD_THREAD_CAP)
    } else {
        n
    }
}

fn main() {
    let mode = match parse_args(lexopt::Parser::from_env()) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("peers: {e} (try --help)");
            std::process::exit(2);
        }
    };
    let opts = match mode {
        Mode::Help => {
            println!("{USAGE}");
            return;
        }
        Mode::Child(args) => std::process::exit(child::child_main(args)),
        Mode::Loadgen(args) => std::process::exit(loadgen::loadgen_main(args)),
        Mode::Report(path) => std::process::exit(redraw(&path)),
        Mode::Bench(opts) => opts,
    };
    let started = Instant::now();
    let out_dir = out_dir();

    let mut machine = sys::Machine::describe();
    eprintln!("peers: {}", machine.summary());
    let go = child::build_go(&out_dir);
    if let Err(why) = &go {
        eprintln!("peers: go: skipped: {why}");
    }

    let mut rows: Vec<Row> = Vec::new();
    for scenario in scenarios(&opts) {
        let mut cells: Vec<Vec<Cell>> = scenario
            .metrics
            .iter()
            .map(|_| SYSTEMS.iter().map(|_| Cell::empty()).collect())
            .collect();
        for round in 0..scenario.samples {
            eprintln!(
                "peers: {} round {}/{} ({:.0} s so far)",
                scenario.label,
                round + 1,
                scenario.samples,
                started.elapsed().as_secs_f64()
            );
            for (i, system) in SYSTEMS.iter().enumerate() {
                if cells[0][i].is_final() {
                    continue; // failed or skipped: do not retry every round
                }
                let outcome = match (&scenario.work, not_applicable(system, &scenario)) {
                    (_, Some(why)) => child::Outcome::NotApplicable(why.into()),
                    (Work::Child(count), None) => {
                        child::run(system, &scenario.name, count(system), go.as_ref())
                    }
                    (Work::Net(job), None) => net::run(system, *job, go.as_ref()),
                };
                for (m, (metric, _)) in scenario.metrics.iter().enumerate() {
                    cells[m][i].record(&outcome, metric);
                }
            }
        }
        for (m, (metric, unit)) in scenario.metrics.iter().enumerate() {
            rows.push(Row {
                scenario: scenario.label.clone(),
                metric: metric.to_string(),
                unit: unit.to_string(),
                note: scenario.note.clone(),
                cells: std::mem::take(&mut cells[m]),
            });
        }
    }

    let elapsed = started.elapsed();
    machine.load += &format!(", at end {}", sys::load_average());
    let mode = if opts.quick { "quick" } else { "full" };
    report::print_table(&rows, mode, &machine, elapsed);
    print_targets(&rows);
    // A peer's failure is a result; spool's is a bug, and CI should see it.
    let spool_failed = rows.iter().any(|r| matches!(r.cells[0], Cell::Failed(_)));
    let json = out_dir.join("results.json");
    let written = write_chart(&rows, mode, &machine, &out_dir).and_then(|()| {
        report::Results::new(rows, mode, &machine, elapsed).write(&json)?;
        println!("results: {}", json.display());
        Ok(())
    });
    if let Err(e) = written {
        eprintln!("peers: {e}");
        std::process::exit(1);
    }
    if spool_failed {
        eprintln!("peers: spool failed a scenario (see the [e] lines above)");
        std::process::exit(1);
    }
}

/// `target/peers`, where the results, the chart and the Go peer go.
fn out_dir() -> std::path::PathBuf {
    let out_dir = child::target_dir().join("peers");
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("peers: cannot create {}: {e}", out_dir.display());
        std::process::exit(1);
    }
    out_dir
}

/// Draws `target/peers/chart.svg`.
fn write_chart(
    rows: &[Row],
    mode: &str,
    machine: &sys::Machine,
    out_dir: &std::path::Path,
) -> Result<(), String> {
    let svg = out_dir.join("chart.svg");
    let text = chart::svg(rows, mode, machine)?;
    std::fs::write(&svg, text).map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
    println!("chart:   {}", svg.display());
    Ok(())
}

/// `--report FILE`: the table, the targets and the chart of a saved run.
fn redraw(path: &std::path::Path) -> i32 {
    let results = match report::Results::read(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("peers: {e}");
            return 2;
        }
    };
    let (machine, elapsed, mode) = (results.machine(), results.elapsed(), results.mode.clone());
    let rows = results.rows();
    report::print_table(&rows, &mode, &machine, elapsed);
    print_targets(&rows);
    match write_chart(&rows, &mode, &machine, &out_dir()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("peers: {e}");
            1
        }
    }
}
