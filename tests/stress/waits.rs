//! Waits outside channels: a `Mutex` + `Condvar` queue (a crowd and
//! lockstep pairs) and park/unpark pairs (see the top of `stress.rs`).

use std::collections::VecDeque;
use std::sync::OnceLock;

use super::*;
use common::Watchdog;
use spool::sync::{Condvar, Mutex};

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

/// Waits without a timeout one time in three, does not wait one time in
/// three (so a spinning thread acts within nanoseconds of a change, inside
/// the other side's window between unlocking and sleeping), and waits a
/// short while otherwise.
fn maybe_timeout(rng: &mut Rng) -> Option<Duration> {
    match rng.below(3) {
        0 => None,
        1 => Some(Duration::ZERO),
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
    let _watchdog = Watchdog::new("waits::mutex_condvar_queue_delivers_exactly_once", LIMIT);
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

/// Two threads take turns through a counter: each waits for its turn by
/// `park`, a short `park_timeout` or `yield_now` (chosen at random), takes
/// it, passes the turn on and unparks the other. A waiter that only
/// yielded takes its turn within nanoseconds, so its `unpark` often lands
/// while the other is still switching out to park, or just as its
/// `park_timeout` expires: the token must survive both. A token lost
/// leaves a thread parked with the turn its own, and the watchdog fires.
struct Turns {
    turn: std::sync::atomic::AtomicUsize,
    threads: [OnceLock<thread::Thread>; 2],
}

fn take_turns(turns: &Turns, side: usize, rounds: usize) {
    use std::sync::atomic::Ordering;
    turns.threads[side].set(thread::current()).unwrap();
    let peer = loop {
        match turns.threads[1 - side].get() {
            Some(peer) => break peer.clone(),
            None => thread::yield_now(),
        }
    };
    let mut rng = Rng::new(1 + side as u64);
    for round in 0..rounds {
        let mine = 2 * round + side;
        // Half the rounds wait before the first look (a `do { park }
        // while` loop): right after passing the turn on, so the other
        // side's unpark races this side's switch out.
        let mut look = rng.below(2) == 0;
        loop {
            if look {
                let turn = turns.turn.load(Ordering::Acquire);
                if turn == mine {
                    break;
                }
                assert!(turn < mine, "turn {turn} passed {mine} unseen");
            }
            look = true;
            match rng.below(4) {
                0 | 1 => thread::park(),
                2 => thread::park_timeout(rng.timeout()),
                _ => thread::yield_now(),
            }
        }
        turns.turn.store(mine + 1, Ordering::Release);
        peer.unpark();
    }
}

fn new_turns() -> Arc<Turns> {
    Arc::new(Turns {
        turn: 0.into(),
        threads: [OnceLock::new(), OnceLock::new()],
    })
}

#[test]
fn park_unpark_pairs_see_every_wakeup() {
    let _watchdog = Watchdog::new("waits::park_unpark_pairs_see_every_wakeup", LIMIT);
    let rt = two_workers();
    let mut workers = Workers::start(&rt);
    let sides = PAIRS
        .iter()
        .flat_map(|&places| {
            let turns = new_turns();
            let other = turns.clone();
            [
                workers.run(places.0, move || take_turns(&turns, 0, PARK_ROUNDS)),
                workers.run(places.1, move || take_turns(&other, 1, PARK_ROUNDS)),
            ]
        })
        .collect();
    join_all(sides);
    join_all(workers.release());
}
