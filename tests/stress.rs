//! Exactly-once stress: every message sent is received exactly once, and
//! every wakeup is seen, under load, with timeouts racing deliveries.
//!
//! Each test runs its threads on both sides of the green/OS line at once:
//! green threads of a fresh two-worker runtime (so handoffs happen on one
//! worker and across workers) and plain `std::thread`s. Every blocking call
//! is mixed with its timed and non-blocking variants, and timeouts are
//! short (zero to 200 µs), so many expire while a delivery is in flight: a
//! send that timed out or found no room must not be delivered, a receive
//! that timed out must not have consumed a message, and everything else
//! must arrive once, in order per producer and channel.
//!
//! Each test has two parts running side by side:
//! * a **crowd**: several producers and consumers on shared channels, for
//!   contention; the final tally finds lost, duplicated and phantom
//!   messages. A lost wakeup hides here (the next message wakes the
//!   sleeper), so
//! * **lockstep pairs**: a producer sends one message and waits for its
//!   echo before the next, over private channels. Nothing else can wake a
//!   thread that missed its wakeup, so it hangs, and the watchdog aborts
//!   the run naming the test instead of hanging `cargo test`.
//!
//! In release builds (`cargo test --release`, as CI runs) the tests hand
//! over about 4.7 million messages and wakeups in ~5 s on 2 cores; debug
//! builds (and the sanitizer lane) do a twenty-fifth of that so
//! `cargo test` stays quick.
//!
//! The channel tests are in `stress/channels.rs`, the `Mutex` + `Condvar`
//! queue and park/unpark in `stress/waits.rs`; this file holds the tally,
//! the placement of threads on workers and the lockstep harness.

#[path = "stress/cancel.rs"]
mod cancel;
#[path = "stress/cancel_park.rs"]
mod cancel_park;
#[path = "stress/channels.rs"]
mod channels;
mod common;
#[path = "stress/waits.rs"]
mod waits;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use spool::sync::mpmc;
use spool::thread;
use spool::Runtime;

/// Release builds do 25 times the work of debug builds.
const SCALE: usize = if cfg!(debug_assertions) { 1 } else { 25 };
/// Messages per `spool::sync::mpmc` flavour (four flavours).
const MPMC_MESSAGES: usize = 15_000 * SCALE;
/// Messages per `spool::sync::mpsc` flavour (four flavours).
const MPSC_MESSAGES: usize = 7_500 * SCALE;
/// Items through the `Mutex` + `Condvar` queue.
const QUEUE_ITEMS: usize = 10_000 * SCALE;
/// Park/unpark round trips per pair (five pairs, two wakeups each).
const PARK_ROUNDS: usize = 3_500 * SCALE;
/// Round trips (a message and its echo) per lockstep pair; each of the
/// nine channel and queue tests runs five pairs.
const LOCKSTEP_ROUNDS: usize = 600 * SCALE;
/// Every message and wakeup handed over, across the file.
const OPERATIONS: usize = 4 * MPMC_MESSAGES
    + 4 * MPSC_MESSAGES
    + QUEUE_ITEMS
    + 9 * PAIRS.len() * 2 * LOCKSTEP_ROUNDS
    + PAIRS.len() * 2 * PARK_ROUNDS;
const _: () = assert!(cfg!(debug_assertions) || OPERATIONS >= 1_000_000);

/// Per-test watchdog limit: a lost wakeup fails here instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

/// Producers and consumers of each scenario: green threads and OS threads.
const GREEN_PRODUCERS: usize = 3;
const OS_PRODUCERS: usize = 1;
const GREEN_CONSUMERS: usize = 2;
const OS_CONSUMERS: usize = 1;

fn two_workers() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

/// A small deterministic generator (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }

    /// A timeout short enough to expire while a delivery is in flight.
    fn timeout(&mut self) -> Duration {
        const MICROS: [u64; 5] = [0, 1, 10, 50, 200];
        Duration::from_micros(MICROS[self.below(5) as usize])
    }
}

/// A message names its producer, the channel it was offered on and the
/// producer's sequence number, so every one is distinct.
fn message(producer: usize, channel: usize, seq: usize) -> u64 {
    ((producer as u64) << 40) | ((channel as u64) << 32) | seq as u64
}

fn describe(message: u64) -> String {
    format!(
        "message {} of producer {} on channel {}",
        message & 0xFFFF_FFFF,
        message >> 40,
        (message >> 32) & 0xFF
    )
}

/// What a producer did with each of its messages.
#[derive(Default)]
struct Sent {
    /// Sends that succeeded: each must be received exactly once.
    delivered: Vec<u64>,
    /// Sends that timed out or found no room: none may be received.
    withdrawn: Vec<u64>,
}

impl Sent {
    fn merge(mut self, other: Sent) -> Sent {
        self.delivered.extend(other.delivered);
        self.withdrawn.extend(other.withdrawn);
        self
    }
}

/// What one consumer received, checked in order as it arrives: the
/// messages of one producer on one channel come in the order they were
/// sent.
#[derive(Default)]
struct Received {
    messages: Vec<u64>,
    last: HashMap<u64, u64>,
}

impl Received {
    fn record(&mut self, message: u64) {
        let stream = message >> 32;
        let seq = message & 0xFFFF_FFFF;
        if let Some(&last) = self.last.get(&stream) {
            assert!(
                seq > last,
                "{} arrived after message {last} of the same producer and channel",
                describe(message)
            );
        }
        self.last.insert(stream, seq);
        self.messages.push(message);
    }
}

/// Checks that every delivered message was received exactly once and no
/// withdrawn one was.
fn assert_exactly_once(what: &str, sent: Sent, received: Vec<Received>) {
    let mut delivered = sent.delivered;
    let mut got: Vec<u64> = received.into_iter().flat_map(|r| r.messages).collect();
    delivered.sort_unstable();
    got.sort_unstable();
    if let Some(pair) = got.windows(2).find(|pair| pair[0] == pair[1]) {
        panic!("{what}: {} was received twice", describe(pair[0]));
    }
    let withdrawn: std::collections::HashSet<u64> = sent.withdrawn.into_iter().collect();
    if let Some(&m) = got.iter().find(|m| withdrawn.contains(m)) {
        panic!(
            "{what}: {} was received although its send timed out or failed",
            describe(m)
        );
    }
    if delivered != got {
        let lost: Vec<u64> = delivered
            .iter()
            .filter(|m| got.binary_search(m).is_err())
            .copied()
            .collect();
        let unknown: Vec<u64> = got
            .iter()
            .filter(|m| delivered.binary_search(m).is_err())
            .copied()
            .collect();
        panic!(
            "{what}: {} sent, {} received; {} lost (first: {}), {} never sent (first: {})",
            delivered.len(),
            got.len(),
            lost.len(),
            lost.first().map_or("-".into(), |&m| describe(m)),
            unknown.len(),
            unknown.first().map_or("-".into(), |&m| describe(m)),
        );
    }
}

/// A green thread or a plain OS thread, joined the same way.
enum Handle<T> {
    Green(thread::JoinHandle<T>),
    Os(std::thread::JoinHandle<T>),
}

impl<T> Handle<T> {
    fn join(self) -> T {
        match self {
            Handle::Green(h) => h.join().unwrap(),
            Handle::Os(h) => h.join().unwrap(),
        }
    }
}

/// Starts `green` green threads on `rt` and `os` OS threads, each running
/// `body` with its index (green threads first).
fn start<T: Send + 'static>(
    rt: &Runtime,
    green: usize,
    os: usize,
    body: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<Handle<T>> {
    let body = Arc::new(body);
    let mut handles = Vec::new();
    for index in 0..green + os {
        let body = body.clone();
        handles.push(if index < green {
            Handle::Green(rt.spawn(move || body(index)))
        } else {
            Handle::Os(std::thread::spawn(move || body(index)))
        });
    }
    handles
}

fn join_all<T>(handles: Vec<Handle<T>>) -> Vec<T> {
    handles.into_iter().map(Handle::join).collect()
}

// ---- placement ---------------------------------------------------------

/// Where a thread of a pair runs: a green thread on worker 0 or 1 of the
/// test's runtime, or a plain OS thread.
#[derive(Clone, Copy)]
enum Place {
    Worker(usize),
    Os,
}

/// The pairs each test runs: across the two workers both ways (a wakeup
/// races the other worker switching the thread out), on one worker, and
/// between a green thread and a plain OS thread both ways.
const PAIRS: [(Place, Place); 5] = [
    (Place::Worker(0), Place::Worker(1)),
    (Place::Worker(1), Place::Worker(0)),
    (Place::Worker(0), Place::Worker(0)),
    (Place::Worker(1), Place::Os),
    (Place::Os, Place::Worker(1)),
];

/// What a standby green thread is told to run (`None`: nothing).
type Part = Option<Box<dyn FnOnce() + Send>>;

/// Green threads already started on each worker of a runtime, waiting for
/// a part to play. Spawning cannot choose a worker, but a green thread
/// never changes workers once started, so the test starts green threads
/// until each worker has enough and sorts them by the OS thread they run
/// on.
struct Workers {
    on: [Vec<Standby>; 2],
}

/// A standby green thread: where to send its part, and its handle.
type Standby = (mpmc::Sender<Part>, thread::JoinHandle<()>);

impl Workers {
    /// Standby green threads per worker: enough for `PAIRS`.
    const EACH: usize = 4;

    fn start(rt: &Runtime) -> Workers {
        // Spawned from a green thread, new threads go to the worker with
        // fewer live ones (see "Placement" in the scheduler), so the
        // standbys, which stay live, spread over both workers.
        rt.run(|| {
            let (report_tx, report_rx) = mpmc::unbounded();
            let mut ids = Vec::new();
            let mut on: [Vec<Standby>; 2] = [Vec::new(), Vec::new()];
            let mut spare: Vec<Standby> = Vec::new();
            for _ in 0..100 {
                if on.iter().all(|v| v.len() >= Workers::EACH) {
                    // Threads beyond what is needed end at once.
                    for (part_tx, handle) in spare {
                        part_tx.send(None).unwrap();
                        handle.join().unwrap();
                    }
                    return Workers { on };
                }
                let (part_tx, part_rx) = mpmc::bounded::<Part>(1);
                let report = report_tx.clone();
                let handle = thread::spawn(move || {
                    // A green thread runs on its worker's OS thread.
                    report.send(std::thread::current().id()).unwrap();
                    if let Some(part) = part_rx.recv().unwrap() {
                        part();
                    }
                });
                let worker = report_rx.recv().unwrap();
                let index = match ids.iter().position(|&id| id == worker) {
                    Some(index) => index,
                    None => {
                        ids.push(worker);
                        ids.len() - 1
                    }
                };
                assert!(
                    index < 2,
                    "a two-worker runtime ran green threads on three OS threads"
                );
                if on[index].len() < Workers::EACH {
                    on[index].push((part_tx, handle));
                } else {
                    spare.push((part_tx, handle));
                }
            }
            panic!(
                "100 green threads started on only {} of the two workers",
                ids.len()
            );
        })
    }

    /// Runs `part` at `place`.
    fn run(&mut self, place: Place, part: impl FnOnce() + Send + 'static) -> Handle<()> {
        match place {
            Place::Worker(worker) => {
                let (part_tx, handle) = self.on[worker]
                    .pop()
                    .expect("no standby green thread left on that worker");
                part_tx.send(Some(Box::new(part))).unwrap();
                Handle::Green(handle)
            }
            Place::Os => Handle::Os(std::thread::spawn(part)),
        }
    }

    /// Ends the standby green threads that were not given a part.
    fn release(self) -> Vec<Handle<()>> {
        let [a, b] = self.on;
        a.into_iter()
            .chain(b)
            .map(|(part_tx, handle)| {
                part_tx.send(None).unwrap();
                Handle::Green(handle)
            })
            .collect()
    }
}

// ---- lockstep pairs ---------------------------------------------------

/// The sending end of a channel under test, offering a message by a means
/// chosen at random.
trait Offer: Send + 'static {
    /// Returns whether `m` was sent; `false` means it timed out or found
    /// no room, and must never be received.
    fn offer(&self, m: u64, rng: &mut Rng) -> bool;

    /// Tells the receiving end that nothing more comes.
    fn close(self: Box<Self>) {}
}

/// What a receive attempt got.
enum Taken {
    Message(u64),
    /// Nothing yet (timed out, or empty): try again.
    Nothing,
    /// The sending end is closed and everything was received.
    Closed,
}

/// The receiving end of a channel under test.
trait Take: Send + 'static {
    fn take(&self, rng: &mut Rng) -> Taken;
}

/// Starts a lockstep pair at each of the `PAIRS` places, on fresh
/// channels from `make`. The producer offers
/// message after message until one is sent, then waits for the consumer
/// to echo it back on a second channel before the next; it checks that
/// the echo is the message sent (a withdrawn send that was delivered, a
/// lost or a repeated message all show up as a wrong echo) and that
/// nothing follows the last one.
fn start_lockstep(
    rt: &Runtime,
    what: &'static str,
    make: impl Fn() -> (Box<dyn Offer>, Box<dyn Take>),
) -> Vec<Handle<()>> {
    let mut workers = Workers::start(rt);
    let mut handles = Vec::new();
    for (pair, (producer_place, consumer_place)) in PAIRS.into_iter().enumerate() {
        let (request_tx, request_rx) = make();
        let (echo_tx, echo_rx) = make();
        let producer = move || {
            let mut rng = Rng::new(1 + pair as u64);
            let mut seq = 0;
            for _ in 0..LOCKSTEP_ROUNDS {
                let sent = loop {
                    let m = message(pair, 0, seq);
                    seq += 1;
                    if request_tx.offer(m, &mut rng) {
                        break m;
                    }
                };
                let echo = loop {
                    match echo_rx.take(&mut rng) {
                        Taken::Message(echo) => break echo,
                        Taken::Nothing => {}
                        Taken::Closed => panic!("{what}: the echoing consumer hung up"),
                    }
                };
                assert_eq!(
                    echo,
                    sent,
                    "{what}: lockstep pair {pair} sent {} and got back {}",
                    describe(sent),
                    describe(echo)
                );
            }
            request_tx.close();
            loop {
                match echo_rx.take(&mut rng) {
                    Taken::Message(extra) => {
                        panic!(
                            "{what}: lockstep pair {pair}: extra echo of {}",
                            describe(extra)
                        )
                    }
                    Taken::Nothing => {}
                    Taken::Closed => break,
                }
            }
        };
        let consumer = move || {
            let mut rng = Rng::new(1000 + pair as u64);
            loop {
                match request_rx.take(&mut rng) {
                    // A withdrawn echo was not delivered: offering the same
                    // message again is safe, and a copy would show.
                    Taken::Message(m) => while !echo_tx.offer(m, &mut rng) {},
                    Taken::Nothing => {}
                    Taken::Closed => break,
                }
            }
            echo_tx.close();
        };
        handles.push(workers.run(producer_place, producer));
        handles.push(workers.run(consumer_place, consumer));
    }
    handles.extend(workers.release());
    handles
}

/// Yields after a receive that found nothing, so spinning on a
/// non-blocking call lets the counterpart run.
fn nothing() -> Taken {
    thread::yield_now();
    Taken::Nothing
}
