//! Cancellations racing wakeups (see the top of `stress.rs`): the
//! park/unpark turn-taking of `stress/waits.rs`, with parks ended by
//! cancellations as well as by unparks. A waiter parks plainly, inside a
//! timeout of zero to 200 µs (its deadline races the peer's unpark), or
//! inside a scope it publishes, which the peer cancels just before it
//! unparks (the cancel and the unpark land together). A park that unwinds
//! must leave the token of an unpark it raced for the next park, and a
//! park that took the token returns; a lost token leaves a thread parked
//! with the turn its own, and the watchdog fires.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use super::*;
use common::Watchdog;
use spool::cancel::CancelScope;
use spool::time::timeout;

/// Turns per pair (five pairs, two wakeups and up to one cancel each).
const CANCEL_ROUNDS: usize = 2_000 * SCALE;

struct Side {
    thread: OnceLock<thread::Thread>,
    /// The scope this side parks in right now, for the peer to cancel.
    scope: Mutex<Option<CancelScope>>,
}

struct Turns {
    turn: AtomicUsize,
    sides: [Side; 2],
}

fn take_turns(turns: &Turns, side: usize, rounds: usize) {
    let me = &turns.sides[side];
    let other = &turns.sides[1 - side];
    me.thread.set(thread::current()).unwrap();
    let peer = loop {
        match other.thread.get() {
            Some(peer) => break peer.clone(),
            None => thread::yield_now(),
        }
    };
    let mut rng = Rng::new(7 + side as u64);
    for round in 0..rounds {
        let mine = 2 * round + side;
        // Half the rounds wait before the first look, right after passing
        // the turn on (not the very first turn: nobody unparks for it).
        let mut look = rng.below(2) == 0 || mine == 0;
        loop {
            if look {
                let turn = turns.turn.load(Ordering::Acquire);
                if turn == mine {
                    break;
                }
                assert!(turn < mine, "turn {turn} passed {mine} unseen");
            }
            // After a park that unwound, park again without looking: an
            // unpark sent since the last look must have left its token
            // (as it would have around any other blocking call), so this
            // is a correct std-style wait, and it hangs if the unwound
            // park took the token.
            look = match rng.below(4) {
                0 => {
                    thread::park();
                    true
                }
                1 => timeout(rng.timeout(), thread::park).is_ok(),
                2 => {
                    let scope = CancelScope::new();
                    *me.scope.lock().unwrap() = Some(scope.clone());
                    let parked = scope.run(thread::park);
                    me.scope.lock().unwrap().take();
                    parked.is_some()
                }
                _ => {
                    thread::yield_now();
                    true
                }
            };
        }
        turns.turn.store(mine + 1, Ordering::Release);
        // Half the time, cancel the scope the peer parks in (if any) just
        // before unparking it.
        if rng.below(2) == 0 {
            let scope = other.scope.lock().unwrap().take();
            if let Some(scope) = scope {
                scope.cancel();
            }
        }
        peer.unpark();
    }
}

fn new_turns() -> Arc<Turns> {
    let side = || Side {
        thread: OnceLock::new(),
        scope: Mutex::new(None),
    };
    Arc::new(Turns {
        turn: 0.into(),
        sides: [side(), side()],
    })
}

#[test]
fn cancelled_parks_lose_no_wakeup() {
    let _watchdog = Watchdog::new("cancel::cancelled_parks_lose_no_wakeup", LIMIT);
    let rt = two_workers();
    let mut workers = Workers::start(&rt);
    let sides = PAIRS
        .iter()
        .flat_map(|&places| {
            let turns = new_turns();
            let other = turns.clone();
            [
                workers.run(places.0, move || take_turns(&turns, 0, CANCEL_ROUNDS)),
                workers.run(places.1, move || take_turns(&other, 1, CANCEL_ROUNDS)),
            ]
        })
        .collect();
    join_all(sides);
    join_all(workers.release());
}
