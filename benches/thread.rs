//! Benchmarks of spool's green threads.
//!
//! ```text
//! cargo bench --bench thread              # full run, 11 samples per row (~2 min)
//! cargo bench --bench thread -- --quick   # smoke run for CI, 3 samples per row (<20 s)
//! cargo bench --bench thread -- pingpong  # only the rows whose name contains "pingpong"
//! ```
//!
//! It prints one table: per row the median, min and max over the samples,
//! and, where the issue sets a target, the target and whether the *median*
//! meets it. It never fails on speed: timings on a shared machine are noisy.
//! A scenario that runs for over 60 s is taken as hung: the binary says
//! which one and exits with status 1.
//!
//! Scenarios (`Nw` = a runtime with N workers):
//! * `yield_switch/1w` — two green threads on one worker each call
//!   `yield_now` in a loop; ns per switch = time / (2 × iterations), timed
//!   inside the runtime from when both threads are ready. Target ≤ 20 ns.
//! * `spawn_join/1w`, `spawn_join/2w` — a green thread repeatedly spawns a
//!   batch of 1,000 trivial green threads and joins them all; ns per thread,
//!   after warm-up batches (the first spawns fault in fresh stack pages).
//!   Target ≤ 250 ns.
//! * `scope_spawn/1w`, `/2w` and `group_spawn/1w`, `/2w` — batches of 1,000
//!   trivial threads spawned in a `thread::scope`, and children spawned in
//!   a `spool::group`, each joined at the exit; ns per thread, the two
//!   measured alternately. The group row's note gives group/scope, whose
//!   target is ≤ 1.3.
//! * `spawn_join_from_os_thread/1w`, `/2w` — the same from the plain `main`
//!   OS thread with `Runtime::spawn` (joins block the OS thread). No target.
//! * `park_unpark_pingpong/1w`, `/2w` — two green threads take turns (an
//!   `AtomicU64` turn counter, so spurious wakeups are harmless): each waits
//!   for its turn with `park`, bumps the counter and `unpark`s the other; ns
//!   per round trip (two hand-offs). The note says in how many samples the
//!   two threads ran on different workers (spool does not let us choose).
//! * `idle_memory/<N> rss` and `pte` — N green threads each park; VmRSS and
//!   VmPTE from `/proc/self/status` before spawning and once all are
//!   parked; KiB per parked thread (VmRSS does not count page tables; the
//!   `pte` row shows them). Target ≤ 6 KiB (rss). N is 100,000 and
//!   1,000,000 (20,000 with `--quick`).

#[path = "common/sample.rs"]
mod sample;
use sample::Sample;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use spool::thread::{self, Thread};
use spool::Runtime;

/// A scenario running longer than this is reported as hung.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Threads spawned and joined per batch in `spawn_join`.
const BATCH: usize = 1_000;

/// What `--help` prints.
const USAGE: &str = "\
usage: cargo bench --bench thread -- [--quick] [FILTER...]

  FILTER...   run only the rows whose name contains any FILTER
  --quick     the CI smoke run: 3 samples per row, smaller sizes
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
                eprintln!("thread: {e} (try --help)");
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

    fn pick(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }

    fn samples(&self) -> usize {
        self.pick(11, 3)
    }

    fn wants(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

fn print_header() {
    println!(
        "{:<34} {:<14} {:>10} {:>10} {:>10} {:>7}  {:<8} {:<5} note",
        "scenario", "unit", "median", "min", "max", "samples", "target", "meets"
    );
    println!("{}", "-".repeat(112));
}

/// Prints one row of the table (at once, so a later hang loses nothing).
fn row(name: &str, unit: &str, s: &Sample, target: Option<f64>, note: &str) {
    let (target, meets) = match target {
        Some(t) => (
            format!("<= {t}"),
            if s.median() <= t { "yes" } else { "NO" },
        ),
        None => ("-".to_owned(), "-"),
    };
    println!(
        "{name:<34} {unit:<14} {:>10.1} {:>10.1} {:>10.1} {:>7}  {target:<8} {meets:<5} {note}",
        s.median(),
        s.min(),
        s.max(),
        s.values.len()
    );
}

/// A progress counter a scenario may keep, printed if it hangs
/// (`park_unpark_pingpong` keeps its turn counter here).
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// What the watchdog watches: the running scenario and when it started.
static RUNNING: Mutex<Option<(String, Instant)>> = Mutex::new(None);

/// Marks `name` as running (or nothing, with `None`).
fn running(name: Option<&str>) {
    PROGRESS.store(0, Ordering::SeqCst);
    *RUNNING.lock().unwrap() = name.map(|n| (n.to_owned(), Instant::now()));
}

/// Exits with a message if one scenario runs longer than `HANG_LIMIT`.
fn start_watchdog() {
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some((name, since)) = &*RUNNING.lock().unwrap() {
            if since.elapsed() > HANG_LIMIT {
                let progress = PROGRESS.load(Ordering::SeqCst);
                eprintln!("bench: scenario `{name}` ran for over {HANG_LIMIT:?} (progress counter {progress}): it looks hung; exiting");
                std::process::exit(1);
            }
        }
    });
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("cannot build a runtime")
}

/// Two green threads' rendezvous: each publishes its handle, then waits
/// for the other.
struct Pair {
    ready: AtomicUsize,
    threads: [OnceLock<Thread>; 2],
}

/// Runs `body(me, peer)` in two green threads of `rt` (`me` is 0 or 1,
/// `peer` the other thread). Returns the time from when both were ready to
/// when both had finished, and whether they ran on different workers.
fn run_pair<F>(rt: &Runtime, body: F) -> (Duration, bool)
where
    F: Fn(usize, &Thread) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let pair = Arc::new(Pair {
        ready: AtomicUsize::new(0),
        threads: [OnceLock::new(), OnceLock::new()],
    });
    rt.run(|| {
        let handles: Vec<_> = (0..2)
            .map(|me| {
                let (body, pair) = (body.clone(), pair.clone());
                thread::spawn(move || {
                    pair.threads[me].set(thread::current()).unwrap();
                    pair.ready.fetch_add(1, Ordering::SeqCst);
                    // Spin first so that, with idle workers about, the other
                    // thread is likely stolen and runs in parallel; then
                    // yield, so that one worker can run both.
                    let mut spins = 0;
                    while pair.ready.load(Ordering::SeqCst) < 2 {
                        if spins < 100_000 {
                            spins += 1;
                            std::hint::spin_loop();
                        } else {
                            thread::yield_now();
                        }
                    }
                    let peer = pair.threads[1 - me].get().unwrap().clone();
                    let worker = std::thread::current().id(); // the worker OS thread
                    let start = Instant::now();
                    body(me, &peer);
                    (start, Instant::now(), worker)
                })
            })
            .collect();
        let [a, b]: [_; 2] = handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        (a.1.max(b.1) - a.0.min(b.0), a.2 != b.2)
    })
}

fn yield_switch(opts: &Opts) {
    let name = "yield_switch/1w";
    if !opts.wants(name) {
        return;
    }
    running(Some(name));
    let rt = runtime(1);
    let n = opts.pick(1_000_000, 200_000);
    let s = Sample::collect(opts.samples(), || {
        let (elapsed, _) = run_pair(&rt, move |_, _| {
            for _ in 0..n {
                thread::yield_now();
            }
        });
        elapsed.as_nanos() as f64 / (2 * n) as f64
    });
    row(
        name,
        "ns/switch",
        &s,
        Some(20.0),
        &format!("{n} yields per thread"),
    );
}

/// Spawns `BATCH` trivial threads into `handles` and joins them all.
fn spawn_join_batch(handles: &mut Vec<thread::JoinHandle<i32>>) {
    handles.extend((0..BATCH).map(|_| thread::spawn(|| black_box(1))));
    for h in handles.drain(..) {
        black_box(h.join().unwrap());
    }
}

fn spawn_join(opts: &Opts, workers: usize) {
    let name = format!("spawn_join/{workers}w");
    if !opts.wants(&name) {
        return;
    }
    running(Some(&name));
    let rt = runtime(workers);
    let batches = opts.pick(50, 10);
    let s = rt.run(|| {
        let mut handles = Vec::with_capacity(BATCH);
        for _ in 0..opts.pick(20, 5) {
            spawn_join_batch(&mut handles); // warm-up
        }
        Sample::collect(opts.samples(), || {
            let start = Instant::now();
            for _ in 0..batches {
                spawn_join_batch(&mut handles);
            }
            start.elapsed().as_nanos() as f64 / (batches * BATCH) as f64
        })
    });
    row(
        &name,
        "ns/thread",
        &s,
        Some(250.0),
        &format!("{batches} batches of {BATCH}"),
    );
}

/// Spawns `BATCH` trivial threads in a `thread::scope`, which joins them.
fn scope_batch() {
    thread::scope(|s| {
        for _ in 0..BATCH {
            s.spawn(|| black_box(1));
        }
    });
}

/// Spawns `BATCH` trivial children in a task group, which joins them.
fn group_batch() {
    spool::group(|g| {
        for _ in 0..BATCH {
            g.spawn(|| Ok::<_, ()>(black_box(1)));
        }
        Ok::<_, ()>(())
    })
    .expect("a benchmark group failed");
}

/// `scope_spawn` and `group_spawn`: the same batches in a `thread::scope`
/// and in a task group, measured alternately (one sample of each in turn)
/// so that both see the same machine; the group row's note gives the ratio
/// of the medians, whose target is 1.3.
fn scope_vs_group(opts: &Opts, workers: usize) {
    let scope_name = format!("scope_spawn/{workers}w");
    let group_name = format!("group_spawn/{workers}w");
    // Either row alone runs only its own batches (to count instructions of
    // one with callgrind).
    let (with_scope, with_group) = (opts.wants(&scope_name), opts.wants(&group_name));
    if !with_scope && !with_group {
        return;
    }
    running(Some(&group_name));
    let rt = runtime(workers);
    let batches = opts.pick(50, 10);
    let per_thread = |start: Instant| start.elapsed().as_nanos() as f64 / (batches * BATCH) as f64;
    let (scope, group) = rt.run(|| {
        for _ in 0..opts.pick(20, 5) {
            // Warm-up.
            if with_scope {
                scope_batch();
            }
            if with_group {
                group_batch();
            }
        }
        let (mut scope, mut group) = (Vec::new(), Vec::new());
        for _ in 0..opts.samples() {
            if with_scope {
                let start = Instant::now();
                (0..batches).for_each(|_| scope_batch());
                scope.push(per_thread(start));
            }
            if with_group {
                let start = Instant::now();
                (0..batches).for_each(|_| group_batch());
                group.push(per_thread(start));
            }
        }
        (Sample { values: scope }, Sample { values: group })
    });
    let note = format!("{batches} batches of {BATCH}, joined at the exit");
    if with_scope {
        row(&scope_name, "ns/thread", &scope, None, &note);
    }
    if with_group {
        let note = if with_scope {
            let ratio = group.median() / scope.median();
            let meets = if ratio <= 1.3 { "meets" } else { "MISSES" };
            format!("{note}; group/scope = {ratio:.2} ({meets} <= 1.3)")
        } else {
            note
        };
        row(&group_name, "ns/thread", &group, None, &note);
    }
}

fn spawn_join_from_os_thread(opts: &Opts, workers: usize) {
    let name = format!("spawn_join_from_os_thread/{workers}w");
    if !opts.wants(&name) {
        return;
    }
    running(Some(&name));
    let rt = runtime(workers);
    let batches = opts.pick(50, 10);
    let mut handles = Vec::with_capacity(BATCH);
    let mut batch = || {
        handles.extend((0..BATCH).map(|_| rt.spawn(|| black_box(1))));
        for h in handles.drain(..) {
            black_box(h.join().unwrap());
        }
    };
    for _ in 0..opts.pick(20, 5) {
        batch(); // warm-up
    }
    let s = Sample::collect(opts.samples(), || {
        let start = Instant::now();
        for _ in 0..batches {
            batch();
        }
        start.elapsed().as_nanos() as f64 / (batches * BATCH) as f64
    });
    row(
        &name,
        "ns/thread",
        &s,
        None,
        &format!("{batches} batches of {BATCH}"),
    );
}

fn pingpong(opts: &Opts, workers: usize) {
    let name = format!("park_unpark_pingpong/{workers}w");
    if !opts.wants(&name) {
        return;
    }
    running(Some(&name));
    let rt = runtime(workers);
    let n = opts.pick(200_000, 50_000);
    let mut apart = 0;
    let s = Sample::collect(opts.samples(), || {
        let turn = &PROGRESS;
        turn.store(0, Ordering::SeqCst);
        let (elapsed, different_workers) = run_pair(&rt, move |me, peer| {
            for i in 0..n as u64 {
                let mine = 2 * i + me as u64;
                while turn.load(Ordering::Acquire) != mine {
                    thread::park();
                }
                turn.store(mine + 1, Ordering::Release);
                peer.unpark();
            }
        });
        apart += usize::from(different_workers);
        elapsed.as_nanos() as f64 / n as f64
    });
    let note = format!(
        "{n} round trips; on different workers in {apart}/{} samples",
        s.values.len()
    );
    row(&name, "ns/round trip", &s, None, &note);
}

/// VmRSS and VmPTE of this process, in KiB.
fn rss_and_pte_kib() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmPTE:")?))
}

/// Parks `n` green threads; returns (RSS, page-table) KiB per parked thread.
fn idle_memory_once(rt: &Runtime, n: usize) -> (f64, f64) {
    rt.run(|| {
        let parked = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(n);
        let (rss0, pte0) = rss_and_pte_kib().unwrap();
        for _ in 0..n {
            let (parked, release) = (parked.clone(), release.clone());
            handles.push(thread::spawn(move || {
                parked.fetch_add(1, Ordering::SeqCst);
                while !release.load(Ordering::Acquire) {
                    thread::park();
                }
            }));
        }
        while parked.load(Ordering::SeqCst) < n {
            thread::yield_now();
        }
        let (rss1, pte1) = rss_and_pte_kib().unwrap();
        release.store(true, Ordering::Release);
        for h in &handles {
            h.thread().unpark();
        }
        for h in handles {
            h.join().unwrap();
        }
        ((rss1 - rss0) / n as f64, (pte1 - pte0) / n as f64)
    })
}

fn idle_memory(opts: &Opts, n: usize, samples: usize) {
    let name = format!("idle_memory/{n}");
    if !opts.wants(&name) {
        return;
    }
    if rss_and_pte_kib().is_none() {
        println!("{name:<34} skipped: no VmRSS/VmPTE in /proc/self/status");
        return;
    }
    running(Some(&name));
    let rt = runtime(2);
    let mut ptes = Vec::new();
    let rss = Sample::collect(samples, || {
        let (rss, pte) = idle_memory_once(&rt, n);
        ptes.push(pte);
        rss
    });
    row(
        &format!("{name} rss"),
        "KiB/thread",
        &rss,
        Some(6.0),
        "VmRSS delta / N (page tables not in it)",
    );
    row(
        &format!("{name} pte"),
        "KiB/thread",
        &Sample { values: ptes },
        None,
        "VmPTE delta / N",
    );
}

fn main() {
    let opts = Opts::parse();
    start_watchdog();
    println!(
        "spool thread benchmarks ({} mode; median/min/max over samples; lower is better)",
        if opts.quick { "quick" } else { "full" }
    );
    print_header();
    yield_switch(&opts);
    for workers in [1, 2] {
        spawn_join(&opts, workers);
    }
    for workers in [1, 2] {
        scope_vs_group(&opts, workers);
    }
    for workers in [1, 2] {
        spawn_join_from_os_thread(&opts, workers);
    }
    for workers in [1, 2] {
        pingpong(&opts, workers);
    }
    if opts.quick {
        idle_memory(&opts, 20_000, opts.samples());
    } else {
        idle_memory(&opts, 100_000, opts.samples());
        idle_memory(&opts, 1_000_000, 3);
    }
    running(None);
}
