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
//! In release builds (`cargo test --release`, as CI runs) the file hands
//! over about three million messages and wakeups; debug builds (and the
//! sanitizer lane) do a twenty-fifth of that so `cargo test` stays quick.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::Watchdog;
use spool::sync::mpmc::{self, never, select, RecvTimeoutError, SendTimeoutError, TrySendError};
use spool::sync::{mpsc, Condvar, Mutex};
use spool::thread;
use spool::Runtime;

/// Release builds do 25 times the work of debug builds (about 3 million
/// operations in ~6 s on 2 cores; debug: ~120,000).
const SCALE: usize = if cfg!(debug_assertions) { 1 } else { 25 };
/// Messages per `spool::sync::mpmc` flavour (four flavours).
const MPMC_MESSAGES: usize = 15_000 * SCALE;
/// Messages per `spool::sync::mpsc` flavour (four flavours).
const MPSC_MESSAGES: usize = 7_500 * SCALE;
/// Items through the `Mutex` + `Condvar` queue.
const QUEUE_ITEMS: usize = 10_000 * SCALE;
/// Park/unpark round trips per pair (three pairs, two wakeups each).
const PARK_ROUNDS: usize = 3_500 * SCALE;
/// Round trips (a message and its echo) per lockstep pair; each of the
/// nine channel and queue tests runs three pairs.
const LOCKSTEP_ROUNDS: usize = 600 * SCALE;
/// Every message and wakeup handed over, across the file.
const OPERATIONS: usize = 4 * MPMC_MESSAGES
    + 4 * MPSC_MESSAGES
    + QUEUE_ITEMS
    + 9 * 3 * 2 * LOCKSTEP_ROUNDS
    + 3 * 2 * PARK_ROUNDS;
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

/// Starts three lockstep pairs on fresh channels from `make`: green to
/// green, green to OS thread and OS thread to green. The producer offers
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
    let mut handles = Vec::new();
    for (pair, (green_producer, green_consumer)) in [(true, true), (true, false), (false, true)]
        .into_iter()
        .enumerate()
    {
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
        for (green, body) in [
            (
                green_producer,
                Box::new(producer) as Box<dyn FnOnce() + Send>,
            ),
            (green_consumer, Box::new(consumer)),
        ] {
            handles.push(if green {
                Handle::Green(rt.spawn(body))
            } else {
                Handle::Os(std::thread::spawn(body))
            });
        }
    }
    handles
}

/// Yields after a receive that found nothing, so spinning on a
/// non-blocking call lets the counterpart run.
fn nothing() -> Taken {
    thread::yield_now();
    Taken::Nothing
}

impl Offer for mpmc::Sender<u64> {
    fn offer(&self, m: u64, rng: &mut Rng) -> bool {
        const HUNG_UP: &str = "the receiver hung up";
        let idle = never::<u64>();
        match rng.below(6) {
            0 => {
                self.send(m).expect(HUNG_UP);
                true
            }
            1 => match self.send_timeout(m, rng.timeout()) {
                Ok(()) => true,
                Err(SendTimeoutError::Timeout(back)) => {
                    assert_eq!(back, m, "send_timeout returned another message");
                    false
                }
                Err(SendTimeoutError::Disconnected(_)) => panic!("{HUNG_UP}"),
            },
            2 => match self.try_send(m) {
                Ok(()) => true,
                Err(TrySendError::Full(back)) => {
                    assert_eq!(back, m, "try_send returned another message");
                    false
                }
                Err(TrySendError::Disconnected(_)) => panic!("{HUNG_UP}"),
            },
            3 => select! {
                send(self, m) -> res => res.map(|()| true).expect(HUNG_UP),
                recv(idle) -> _ => unreachable!("never() delivered"),
            },
            4 => select! {
                send(self, m) -> res => res.map(|()| true).expect(HUNG_UP),
                recv(idle) -> _ => unreachable!("never() delivered"),
                default(rng.timeout()) => false,
            },
            _ => select! {
                send(self, m) -> res => res.map(|()| true).expect(HUNG_UP),
                default => false,
            },
        }
    }
}

impl Take for mpmc::Receiver<u64> {
    fn take(&self, rng: &mut Rng) -> Taken {
        let idle = never::<u64>();
        let blocking = |res: Result<u64, mpmc::RecvError>| match res {
            Ok(m) => Taken::Message(m),
            Err(_) => Taken::Closed,
        };
        match rng.below(6) {
            0 => blocking(self.recv()),
            1 => match self.recv_timeout(rng.timeout()) {
                Ok(m) => Taken::Message(m),
                Err(RecvTimeoutError::Timeout) => Taken::Nothing,
                Err(RecvTimeoutError::Disconnected) => Taken::Closed,
            },
            2 => match self.try_recv() {
                Ok(m) => Taken::Message(m),
                Err(e) if e.is_empty() => nothing(),
                Err(_) => Taken::Closed,
            },
            3 => select! {
                recv(self) -> res => blocking(res),
                recv(idle) -> _ => unreachable!("never() delivered"),
            },
            4 => select! {
                recv(self) -> res => blocking(res),
                recv(idle) -> _ => unreachable!("never() delivered"),
                default(rng.timeout()) => Taken::Nothing,
            },
            _ => select! {
                recv(self) -> res => blocking(res),
                default => nothing(),
            },
        }
    }
}

impl Offer for mpsc::Sender<u64> {
    fn offer(&self, m: u64, _: &mut Rng) -> bool {
        self.send(m).expect("the receiver hung up");
        true
    }
}

impl Offer for mpsc::SyncSender<u64> {
    fn offer(&self, m: u64, rng: &mut Rng) -> bool {
        if rng.below(2) == 0 {
            self.send(m).expect("the receiver hung up");
            return true;
        }
        match self.try_send(m) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(back)) => {
                assert_eq!(back, m, "try_send returned another message");
                false
            }
            Err(mpsc::TrySendError::Disconnected(_)) => panic!("the receiver hung up"),
        }
    }
}

impl Take for mpsc::Receiver<u64> {
    fn take(&self, rng: &mut Rng) -> Taken {
        match rng.below(3) {
            0 => self.recv().map_or(Taken::Closed, Taken::Message),
            1 => match self.recv_timeout(rng.timeout()) {
                Ok(m) => Taken::Message(m),
                Err(mpsc::RecvTimeoutError::Timeout) => Taken::Nothing,
                Err(mpsc::RecvTimeoutError::Disconnected) => Taken::Closed,
            },
            _ => match self.try_recv() {
                Ok(m) => Taken::Message(m),
                Err(mpsc::TryRecvError::Empty) => nothing(),
                Err(mpsc::TryRecvError::Disconnected) => Taken::Closed,
            },
        }
    }
}

// ---- spool::sync::mpmc ------------------------------------------------

/// Two channels of one flavour. Producers offer each message by a random
/// means: `send`, `send_timeout`, `try_send`, or `select!` over both
/// channels (blocking, with `default(timeout)`, with `default`).
/// Consumers take by `recv`, `recv_timeout`, `try_recv` or the same three
/// `select!`s. Only operations that include channel 0 block without a
/// timeout, so a blocked producer always has a consumer that will meet it.
fn mpmc_stress(test: &'static str, what: &'static str, capacity: Option<usize>) {
    let _watchdog = Watchdog::new(test, LIMIT);
    let rt = two_workers();
    let make = move || match capacity {
        Some(cap) => mpmc::bounded::<u64>(cap),
        None => mpmc::unbounded::<u64>(),
    };
    let lockstep = start_lockstep(&rt, what, move || {
        let (s, r) = make();
        (Box::new(s), Box::new(r))
    });
    let (s0, r0) = make();
    let (s1, r1) = make();
    let producers = GREEN_PRODUCERS + OS_PRODUCERS;
    let per_producer = MPMC_MESSAGES / producers;

    let consumers = start(&rt, GREEN_CONSUMERS, OS_CONSUMERS, {
        let (r0, r1) = (r0.clone(), r1.clone());
        move |index| mpmc_consume(index, r0.clone(), r1.clone())
    });
    drop((r0, r1));
    let senders = start(&rt, GREEN_PRODUCERS, OS_PRODUCERS, {
        let (s0, s1) = (s0.clone(), s1.clone());
        move |index| mpmc_produce(index, per_producer, s0.clone(), s1.clone())
    });
    drop((s0, s1));
    let sent = join_all(senders)
        .into_iter()
        .fold(Sent::default(), Sent::merge);
    let received = join_all(consumers);
    assert_exactly_once(what, sent, received);
    join_all(lockstep);
}

fn mpmc_produce(
    producer: usize,
    count: usize,
    s0: mpmc::Sender<u64>,
    s1: mpmc::Sender<u64>,
) -> Sent {
    let mut rng = Rng::new(1 + producer as u64);
    let mut sent = Sent::default();
    for seq in 0..count {
        let channel = rng.below(2) as usize;
        let m = message(producer, channel, seq);
        let s = if channel == 0 { &s0 } else { &s1 };
        match rng.below(8) {
            0 | 1 => {
                s0.send(message(producer, 0, seq)).unwrap();
                sent.delivered.push(message(producer, 0, seq));
            }
            2 => match s.send_timeout(m, rng.timeout()) {
                Ok(()) => sent.delivered.push(m),
                Err(SendTimeoutError::Timeout(back)) => {
                    assert_eq!(back, m, "send_timeout returned another message");
                    sent.withdrawn.push(m);
                }
                Err(SendTimeoutError::Disconnected(_)) => panic!("receivers gone"),
            },
            3 => match s.try_send(m) {
                Ok(()) => sent.delivered.push(m),
                Err(TrySendError::Full(back)) => {
                    assert_eq!(back, m, "try_send returned another message");
                    sent.withdrawn.push(m);
                }
                Err(TrySendError::Disconnected(_)) => panic!("receivers gone"),
            },
            op => {
                let (m0, m1) = (message(producer, 0, seq), message(producer, 1, seq));
                let chosen = match op {
                    4 | 5 => select! {
                        send(s0, m0) -> res => res.map(|()| Some(m0)),
                        send(s1, m1) -> res => res.map(|()| Some(m1)),
                    },
                    6 => select! {
                        send(s0, m0) -> res => res.map(|()| Some(m0)),
                        send(s1, m1) -> res => res.map(|()| Some(m1)),
                        default(rng.timeout()) => Ok(None),
                    },
                    _ => select! {
                        send(s0, m0) -> res => res.map(|()| Some(m0)),
                        send(s1, m1) -> res => res.map(|()| Some(m1)),
                        default => Ok(None),
                    },
                };
                match chosen.expect("receivers gone") {
                    Some(m) => {
                        sent.delivered.push(m);
                        sent.withdrawn.push(m0 ^ m1 ^ m);
                    }
                    None => sent.withdrawn.extend([m0, m1]),
                }
            }
        }
    }
    sent
}

fn mpmc_consume(consumer: usize, r0: mpmc::Receiver<u64>, r1: mpmc::Receiver<u64>) -> Received {
    let mut rng = Rng::new(1000 + consumer as u64);
    let mut received = Received::default();
    // A disconnected channel is replaced by `never()` in the selects.
    let mut live = [r0, r1];
    let mut open = [true, true];
    while open[0] || open[1] {
        let channel = if open[0] && open[1] {
            rng.below(2) as usize
        } else {
            usize::from(open[1])
        };
        let r = &live[channel];
        // (channel, what arrived): `None` means disconnected.
        let (from, got) = match rng.below(8) {
            0 | 1 => {
                // Blocks only on channel 0 while it is open (see
                // `mpmc_stress`); once it is closed every sender is gone.
                let channel = usize::from(!open[0]);
                (channel, live[channel].recv().ok())
            }
            2 => match r.recv_timeout(rng.timeout()) {
                Ok(m) => (channel, Some(m)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => (channel, None),
            },
            3 => match r.try_recv() {
                Ok(m) => (channel, Some(m)),
                Err(e) if e.is_empty() => {
                    thread::yield_now();
                    continue;
                }
                Err(_) => (channel, None),
            },
            op => {
                let (a, b) = (&live[0], &live[1]);
                let chosen = match op {
                    4 | 5 => select! {
                        recv(a) -> res => Some((0, res.ok())),
                        recv(b) -> res => Some((1, res.ok())),
                    },
                    6 => select! {
                        recv(a) -> res => Some((0, res.ok())),
                        recv(b) -> res => Some((1, res.ok())),
                        default(rng.timeout()) => None,
                    },
                    _ => select! {
                        recv(a) -> res => Some((0, res.ok())),
                        recv(b) -> res => Some((1, res.ok())),
                        default => None,
                    },
                };
                match chosen {
                    Some(pair) => pair,
                    None => {
                        thread::yield_now();
                        continue;
                    }
                }
            }
        };
        match got {
            Some(m) => {
                assert_eq!(
                    (m >> 32) & 0xFF,
                    from as u64,
                    "{} came out of channel {from}",
                    describe(m)
                );
                received.record(m);
            }
            None => {
                open[from] = false;
                live[from] = never();
            }
        }
    }
    received
}

#[test]
fn mpmc_bounded_0_delivers_exactly_once() {
    mpmc_stress(
        "mpmc_bounded_0_delivers_exactly_once",
        "mpmc::bounded(0)",
        Some(0),
    );
}

#[test]
fn mpmc_bounded_1_delivers_exactly_once() {
    mpmc_stress(
        "mpmc_bounded_1_delivers_exactly_once",
        "mpmc::bounded(1)",
        Some(1),
    );
}

#[test]
fn mpmc_bounded_16_delivers_exactly_once() {
    mpmc_stress(
        "mpmc_bounded_16_delivers_exactly_once",
        "mpmc::bounded(16)",
        Some(16),
    );
}

#[test]
fn mpmc_unbounded_delivers_exactly_once() {
    mpmc_stress(
        "mpmc_unbounded_delivers_exactly_once",
        "mpmc::unbounded",
        None,
    );
}

// ---- spool::sync::mpsc ------------------------------------------------

/// The sending side of either `mpsc` flavour.
#[derive(Clone)]
enum MpscSender {
    Unbounded(mpsc::Sender<u64>),
    Bounded(mpsc::SyncSender<u64>),
}

/// `mpsc` has no send timeout and no select: producers mix `send` with
/// `try_send` (bounded flavours), and the one consumer mixes `recv`,
/// `recv_timeout` and `try_recv`. Each flavour runs twice, once with a
/// green consumer and once with an OS-thread consumer.
fn mpsc_stress(test: &'static str, what: &'static str, bound: Option<usize>) {
    let _watchdog = Watchdog::new(test, LIMIT);
    let rt = two_workers();
    let lockstep = start_lockstep(&rt, what, move || match bound {
        Some(bound) => {
            let (tx, rx) = mpsc::sync_channel::<u64>(bound);
            (Box::new(tx), Box::new(rx))
        }
        None => {
            let (tx, rx) = mpsc::channel::<u64>();
            (Box::new(tx), Box::new(rx))
        }
    });
    let producers = GREEN_PRODUCERS + OS_PRODUCERS;
    let per_producer = MPSC_MESSAGES / 2 / producers;
    for green_consumer in [true, false] {
        let (tx, rx) = match bound {
            Some(bound) => {
                let (tx, rx) = mpsc::sync_channel(bound);
                (MpscSender::Bounded(tx), rx)
            }
            None => {
                let (tx, rx) = mpsc::channel();
                (MpscSender::Unbounded(tx), rx)
            }
        };
        let consume = move || mpsc_consume(rx);
        let consumer = if green_consumer {
            Handle::Green(rt.spawn(consume))
        } else {
            Handle::Os(std::thread::spawn(consume))
        };
        let senders = start(&rt, GREEN_PRODUCERS, OS_PRODUCERS, {
            let tx = tx.clone();
            move |index| mpsc_produce(index, per_producer, tx.clone())
        });
        drop(tx);
        let sent = join_all(senders)
            .into_iter()
            .fold(Sent::default(), Sent::merge);
        let where_ = if green_consumer { "green" } else { "OS" };
        assert_exactly_once(
            &format!("{what} to a {where_} consumer"),
            sent,
            vec![consumer.join()],
        );
    }
    join_all(lockstep);
}

fn mpsc_produce(producer: usize, count: usize, tx: MpscSender) -> Sent {
    let mut rng = Rng::new(1 + producer as u64);
    let mut sent = Sent::default();
    for seq in 0..count {
        let m = message(producer, 0, seq);
        match &tx {
            MpscSender::Unbounded(tx) => {
                tx.send(m).unwrap();
                sent.delivered.push(m);
            }
            MpscSender::Bounded(tx) if rng.below(2) == 0 => {
                tx.send(m).unwrap();
                sent.delivered.push(m);
            }
            MpscSender::Bounded(tx) => match tx.try_send(m) {
                Ok(()) => sent.delivered.push(m),
                Err(mpsc::TrySendError::Full(back)) => {
                    assert_eq!(back, m, "try_send returned another message");
                    sent.withdrawn.push(m);
                }
                Err(mpsc::TrySendError::Disconnected(_)) => panic!("receiver gone"),
            },
        }
    }
    sent
}

fn mpsc_consume(rx: mpsc::Receiver<u64>) -> Received {
    let mut rng = Rng::new(1000);
    let mut received = Received::default();
    loop {
        let got = match rng.below(4) {
            0 | 1 => rx.recv().ok(),
            2 => match rx.recv_timeout(rng.timeout()) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            },
            _ => match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::TryRecvError::Empty) => {
                    thread::yield_now();
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => None,
            },
        };
        match got {
            Some(m) => received.record(m),
            None => return received,
        }
    }
}

#[test]
fn mpsc_channel_delivers_exactly_once() {
    mpsc_stress("mpsc_channel_delivers_exactly_once", "mpsc::channel", None);
}

#[test]
fn mpsc_sync_channel_0_delivers_exactly_once() {
    mpsc_stress(
        "mpsc_sync_channel_0_delivers_exactly_once",
        "mpsc::sync_channel(0)",
        Some(0),
    );
}

#[test]
fn mpsc_sync_channel_1_delivers_exactly_once() {
    mpsc_stress(
        "mpsc_sync_channel_1_delivers_exactly_once",
        "mpsc::sync_channel(1)",
        Some(1),
    );
}

#[test]
fn mpsc_sync_channel_16_delivers_exactly_once() {
    mpsc_stress(
        "mpsc_sync_channel_16_delivers_exactly_once",
        "mpsc::sync_channel(16)",
        Some(16),
    );
}

// ---- Mutex + Condvar --------------------------------------------------

/// A bounded queue built the textbook way from spool's `Mutex` and two
/// `Condvar`s, woken with `notify_one` only, so one lost notification
/// leaves a waiter asleep while there is work.
struct Queue {
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
}

struct QueueState {
    items: VecDeque<u64>,
    closed: bool,
}

const QUEUE_CAPACITY: usize = 4;

impl Queue {
    /// Pushes `m` unless the queue stays full for `timeout` (`None`: wait
    /// as long as it takes). Returns whether `m` was pushed.
    fn push(&self, m: u64, timeout: Option<Duration>) -> bool {
        let full = |s: &mut QueueState| s.items.len() >= QUEUE_CAPACITY;
        let mut state = self.state.lock().unwrap();
        state = match timeout {
            None => self.not_full.wait_while(state, full).unwrap(),
            Some(timeout) => {
                self.not_full
                    .wait_timeout_while(state, timeout, full)
                    .unwrap()
                    .0
            }
        };
        if full(&mut state) {
            return false;
        }
        state.items.push_back(m);
        drop(state);
        self.not_empty.notify_one();
        true
    }

    /// Pops an item, waiting at most `timeout` (`None`: until one comes or
    /// the queue is closed). `Err(())` means closed and empty.
    fn pop(&self, timeout: Option<Duration>) -> Result<Option<u64>, ()> {
        let empty = |s: &mut QueueState| s.items.is_empty() && !s.closed;
        let mut state = self.state.lock().unwrap();
        state = match timeout {
            None => self.not_empty.wait_while(state, empty).unwrap(),
            Some(timeout) => {
                self.not_empty
                    .wait_timeout_while(state, timeout, empty)
                    .unwrap()
                    .0
            }
        };
        match state.items.pop_front() {
            Some(m) => {
                drop(state);
                self.not_full.notify_one();
                Ok(Some(m))
            }
            None if state.closed => Err(()),
            None => Ok(None),
        }
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.not_empty.notify_all();
    }

    fn new() -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        })
    }
}

/// Waits without a timeout one time in three.
fn maybe_timeout(rng: &mut Rng) -> Option<Duration> {
    match rng.below(3) {
        0 => None,
        _ => Some(rng.timeout()),
    }
}

impl Offer for Arc<Queue> {
    fn offer(&self, m: u64, rng: &mut Rng) -> bool {
        self.push(m, maybe_timeout(rng))
    }

    fn close(self: Box<Self>) {
        Queue::close(&self);
    }
}

impl Take for Arc<Queue> {
    fn take(&self, rng: &mut Rng) -> Taken {
        match self.pop(maybe_timeout(rng)) {
            Ok(Some(m)) => Taken::Message(m),
            Ok(None) => nothing(),
            Err(()) => Taken::Closed,
        }
    }
}

#[test]
fn mutex_condvar_queue_delivers_exactly_once() {
    let _watchdog = Watchdog::new("mutex_condvar_queue_delivers_exactly_once", LIMIT);
    let rt = two_workers();
    let lockstep = start_lockstep(&rt, "Mutex + Condvar queue", || {
        let queue = Queue::new();
        (Box::new(queue.clone()), Box::new(queue))
    });
    let queue = Queue::new();
    let producers = GREEN_PRODUCERS + OS_PRODUCERS;
    let per_producer = QUEUE_ITEMS / producers;
    let consumers = start(&rt, GREEN_CONSUMERS, OS_CONSUMERS, {
        let queue = queue.clone();
        move |index| {
            let mut rng = Rng::new(1000 + index as u64);
            let mut received = Received::default();
            loop {
                match queue.pop(maybe_timeout(&mut rng)) {
                    Ok(Some(m)) => received.record(m),
                    Ok(None) => {}
                    Err(()) => return received,
                }
            }
        }
    });
    let senders = start(&rt, GREEN_PRODUCERS, OS_PRODUCERS, {
        let queue = queue.clone();
        move |producer| {
            let mut rng = Rng::new(1 + producer as u64);
            let mut sent = Sent::default();
            for seq in 0..per_producer {
                let m = message(producer, 0, seq);
                if queue.push(m, maybe_timeout(&mut rng)) {
                    sent.delivered.push(m);
                } else {
                    sent.withdrawn.push(m);
                }
            }
            sent
        }
    });
    let sent = join_all(senders)
        .into_iter()
        .fold(Sent::default(), Sent::merge);
    queue.close();
    assert_exactly_once("Mutex + Condvar queue", sent, join_all(consumers));
    join_all(lockstep);
}

// ---- park / unpark ----------------------------------------------------

/// Two threads take turns through a counter: each waits for its turn with
/// `park` or a short `park_timeout` (chosen at random), takes it, passes
/// the turn on and unparks the other. A `park_timeout` that expires just
/// as the `unpark` arrives must leave the token for the next `park`; a
/// token lost there leaves a thread in `park` with the turn its own, and
/// the watchdog fires.
struct Turns {
    turn: std::sync::atomic::AtomicUsize,
    threads: [OnceLock<thread::Thread>; 2],
}

fn take_turns(turns: &Turns, side: usize, rounds: usize) -> usize {
    use std::sync::atomic::Ordering;
    turns.threads[side].set(thread::current()).unwrap();
    let peer = loop {
        match turns.threads[1 - side].get() {
            Some(peer) => break peer.clone(),
            None => thread::yield_now(),
        }
    };
    let mut rng = Rng::new(1 + side as u64);
    let mut parks = 0;
    for round in 0..rounds {
        let mine = 2 * round + side;
        loop {
            let turn = turns.turn.load(Ordering::Acquire);
            if turn == mine {
                break;
            }
            assert!(turn < mine, "turn {turn} passed {mine} unseen");
            if rng.below(2) == 0 {
                thread::park();
            } else {
                thread::park_timeout(rng.timeout());
            }
            parks += 1;
        }
        turns.turn.store(mine + 1, Ordering::Release);
        peer.unpark();
    }
    parks
}

#[test]
fn park_unpark_pairs_see_every_wakeup() {
    let _watchdog = Watchdog::new("park_unpark_pairs_see_every_wakeup", LIMIT);
    let rt = two_workers();
    // Two green pairs (on one worker or across both) and a green thread
    // paired with an OS thread.
    let mut sides = Vec::new();
    for os_side in [false, false, true] {
        let turns = Arc::new(Turns {
            turn: 0.into(),
            threads: [OnceLock::new(), OnceLock::new()],
        });
        let first = turns.clone();
        sides.push(Handle::Green(
            rt.spawn(move || take_turns(&first, 0, PARK_ROUNDS)),
        ));
        let second = turns.clone();
        let run = move || take_turns(&second, 1, PARK_ROUNDS);
        sides.push(if os_side {
            Handle::Os(std::thread::spawn(run))
        } else {
            Handle::Green(rt.spawn(run))
        });
    }
    join_all(sides);
}
