//! The channel tests: `spool::sync::mpmc` and `spool::sync::mpsc`, each
//! flavour with a crowd and lockstep pairs (see the top of `stress.rs`).

use super::*;
use common::Watchdog;
use spool::sync::mpmc::{never, select, RecvTimeoutError, SendTimeoutError, TrySendError};
use spool::sync::mpsc;

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
        "channels::mpmc_bounded_0_delivers_exactly_once",
        "mpmc::bounded(0)",
        Some(0),
    );
}

#[test]
fn mpmc_bounded_1_delivers_exactly_once() {
    mpmc_stress(
        "channels::mpmc_bounded_1_delivers_exactly_once",
        "mpmc::bounded(1)",
        Some(1),
    );
}

#[test]
fn mpmc_bounded_16_delivers_exactly_once() {
    mpmc_stress(
        "channels::mpmc_bounded_16_delivers_exactly_once",
        "mpmc::bounded(16)",
        Some(16),
    );
}

#[test]
fn mpmc_unbounded_delivers_exactly_once() {
    mpmc_stress(
        "channels::mpmc_unbounded_delivers_exactly_once",
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
    mpsc_stress(
        "channels::mpsc_channel_delivers_exactly_once",
        "mpsc::channel",
        None,
    );
}

#[test]
fn mpsc_sync_channel_0_delivers_exactly_once() {
    mpsc_stress(
        "channels::mpsc_sync_channel_0_delivers_exactly_once",
        "mpsc::sync_channel(0)",
        Some(0),
    );
}

#[test]
fn mpsc_sync_channel_1_delivers_exactly_once() {
    mpsc_stress(
        "channels::mpsc_sync_channel_1_delivers_exactly_once",
        "mpsc::sync_channel(1)",
        Some(1),
    );
}

#[test]
fn mpsc_sync_channel_16_delivers_exactly_once() {
    mpsc_stress(
        "channels::mpsc_sync_channel_16_delivers_exactly_once",
        "mpsc::sync_channel(16)",
        Some(16),
    );
}

// ---- the lockstep pairs' channel operations ----------------------------

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

// ---- unbounded channels: drops -------------------------------------------

/// A message that counts its drops in a shared tally.
struct Tracked {
    producer: usize,
    seq: usize,
    drops: Arc<Vec<std::sync::atomic::AtomicU8>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let index = self.producer * UNBOUNDED_DROP_MESSAGES + self.seq;
        self.drops[index].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Messages per producer and round of the drop test.
const UNBOUNDED_DROP_MESSAGES: usize = 2_000 * SCALE / 5;

/// Unbounded channels keep their messages in a lock-free list of blocks
/// (see `list.rs`), which its last reader frees, and which the last
/// receiver's drop empties while sends may be in flight. Producers send
/// until done; consumers each receive a quota (varying by round: some
/// rounds drain everything, others leave mid-stream) and drop their
/// receiver. Every message must be dropped exactly once — received, left
/// in the channel when the receivers go, or handed back by a failed send
/// — and each consumer sees each producer's messages in order.
#[test]
fn mpmc_unbounded_drops_every_message_once() {
    let _watchdog = Watchdog::new("channels::mpmc_unbounded_drops_every_message_once", LIMIT);
    let rt = two_workers();
    let producers = GREEN_PRODUCERS + OS_PRODUCERS;
    let consumers = GREEN_CONSUMERS + OS_CONSUMERS;
    for round in 0..6 {
        let drops: Arc<Vec<_>> = Arc::new(
            (0..producers * UNBOUNDED_DROP_MESSAGES)
                .map(|_| std::sync::atomic::AtomicU8::new(0))
                .collect(),
        );
        let (s, r) = mpmc::unbounded::<Tracked>();
        // Round 0 drains everything; later rounds leave ever earlier.
        let quota = producers * UNBOUNDED_DROP_MESSAGES / consumers / (round + 1);
        let receiving = start(&rt, GREEN_CONSUMERS, OS_CONSUMERS, {
            let r = r.clone();
            move |consumer| {
                let r = r.clone();
                let mut rng = Rng::new(500 + consumer as u64);
                let mut last = [None; GREEN_PRODUCERS + OS_PRODUCERS];
                let mut got = 0;
                while got < quota {
                    let msg = match rng.below(3) {
                        0 => match r.try_recv() {
                            Ok(msg) => msg,
                            Err(mpmc::TryRecvError::Empty) => continue,
                            Err(mpmc::TryRecvError::Disconnected) => break,
                        },
                        1 => match r.recv_timeout(rng.timeout()) {
                            Ok(msg) => msg,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => break,
                        },
                        _ => match r.recv() {
                            Ok(msg) => msg,
                            Err(_) => break,
                        },
                    };
                    assert!(
                        last[msg.producer] < Some(msg.seq),
                        "producer {}'s messages out of order",
                        msg.producer
                    );
                    last[msg.producer] = Some(msg.seq);
                    got += 1;
                }
            }
        });
        drop(r);
        let sending = start(&rt, GREEN_PRODUCERS, OS_PRODUCERS, {
            let (s, drops) = (s.clone(), drops.clone());
            move |producer| {
                for seq in 0..UNBOUNDED_DROP_MESSAGES {
                    let msg = Tracked {
                        producer,
                        seq,
                        drops: drops.clone(),
                    };
                    if let Err(back) = s.send(msg) {
                        assert_eq!((back.0.producer, back.0.seq), (producer, seq));
                    }
                }
            }
        });
        drop(s);
        join_all(sending);
        join_all(receiving);
        let wrong: Vec<_> = drops
            .iter()
            .enumerate()
            .filter(|(_, d)| d.load(std::sync::atomic::Ordering::Relaxed) != 1)
            .map(|(i, d)| (i, d.load(std::sync::atomic::Ordering::Relaxed)))
            .collect();
        assert!(
            wrong.is_empty(),
            "round {round}: {} messages not dropped exactly once, e.g. (index, drops) {:?}",
            wrong.len(),
            wrong.first()
        );
    }
}
