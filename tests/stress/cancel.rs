//! Wakeups racing a cancellation of the thread they go to: a `notify_one`,
//! a semaphore permit, a barrier arrival, an event and an unlock, each
//! against a `CancelScope::cancel` of a waiter. None may be lost (rule R2
//! of `spool::cancel`): the cancelled waiter either returns normally with
//! the wakeup (the cancellation is raised later) or leaves without it, and
//! then the wakeup reaches the other waiter.
//!
//! Every race runs in lockstep rounds between three threads: `A`, a waiter
//! inside a fresh cancel scope; `B`, a second waiter that nothing but the
//! raced wakeup (or a second one, given when `A` kept the first) will
//! wake; and the driver, which fires the wakeup and the cancel in a random
//! order, a few spins apart. A wakeup lost to the cancel leaves `B` asleep
//! and the driver reports it by name, with the round.
//!
//! Shared by `tests/suite/cancel_sync.rs`, which runs a quick count over the
//! three runtime configurations, and the stress run (`tests/stress.rs`,
//! where the entry points below run: 10⁶ `notify_one`/cancel races in
//! release builds).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Duration;

use spool::cancel::CancelScope;
use spool::sync::{mpsc, Arc, Barrier, Condvar, Event, Mutex, Semaphore};
use spool::thread;

/// How long the driver waits for a wakeup before it calls it lost: far
/// beyond any scheduling delay.
const LOST_AFTER: Duration = Duration::from_secs(20);

/// Where a waiter runs.
#[derive(Clone, Copy, Debug)]
pub enum On {
    /// A green thread (of the caller's runtime, or the global one).
    Green,
    /// A plain OS thread.
    Os,
}

/// A started waiter, joined without blocking a worker.
pub struct Joiner<T>(mpsc::Receiver<std::thread::Result<T>>);

impl<T> Joiner<T> {
    pub fn join(self) -> T {
        match self.0.recv().expect("the thread vanished") {
            Ok(value) => value,
            Err(payload) => resume_unwind(payload),
        }
    }
}

/// Runs `f` on a green thread or a plain OS thread. The result comes back
/// over a channel, so a green joiner parks instead of blocking its worker.
pub fn start<T: Send + 'static>(on: On, f: impl FnOnce() -> T + Send + 'static) -> Joiner<T> {
    let (tx, rx) = mpsc::channel();
    let body = move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    };
    match on {
        On::Green => drop(thread::spawn(body)),
        On::Os => drop(std::thread::spawn(body)),
    }
    Joiner(rx)
}

/// A small deterministic generator (xorshift64*).
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

    /// Spins a random short while: lets the other side get a little way.
    fn spin(&mut self) {
        for _ in 0..self.below(64) {
            std::hint::spin_loop();
        }
    }

    /// Fires `wake` and `cancel` in a random order, sometimes a few spins
    /// apart, and sometimes (not a race, but sure to reach the path where
    /// the cancelled waiter leaves before the wakeup comes) waiting for `A`
    /// to be `settled` by the cancel before waking.
    fn race(&mut self, wake: impl FnOnce(), cancel: impl FnOnce(), settled: impl FnOnce()) {
        match self.below(5) {
            4 => {
                cancel();
                settled();
                wake();
            }
            0 => {
                wake();
                cancel();
            }
            1 => {
                cancel();
                wake();
            }
            2 => {
                wake();
                self.spin();
                cancel();
            }
            _ => {
                cancel();
                self.spin();
                wake();
            }
        }
    }
}

/// Counts how `A`'s rounds ended, and checks at the end that the cancel
/// did end the wait (without which nothing could be lost, and the race
/// would prove nothing) and, where the wakeup reaches `A` at once, that
/// wakeups beat it too.
#[derive(Default)]
struct Outcomes {
    kept: usize,
    cancelled: usize,
}

impl Outcomes {
    fn record(&mut self, a_kept: bool) {
        if a_kept {
            self.kept += 1;
        } else {
            self.cancelled += 1;
        }
    }

    /// `wakes_at_once`: the wakeup is handed to `A` by the waker itself
    /// (a `notify_one`, a permit, an unlock, a `set`), so a wakeup fired
    /// before the cancel always wins. A barrier arrival needs `B` to run
    /// first, and under load the cancel may win every time.
    fn check(&self, what: &str, wakes_at_once: bool) {
        // A fifth of the rounds settle the cancel first, and two fifths
        // wake first: in 50 rounds, missing every one of them is at most a
        // one-in-70 000 chance.
        if self.kept + self.cancelled >= 50 {
            assert!(
                self.cancelled > 0,
                "{what}: the waiter was never cancelled: is its wait a cancellation point?"
            );
            assert!(
                self.kept > 0 || !wakes_at_once,
                "{what}: the waiter never kept its wakeup"
            );
        }
    }
}

/// The lockstep state of one race, under `Steps::state`.
#[derive(Default)]
struct Step {
    /// The round being played.
    round: usize,
    /// `A`'s scope for this round, once `A` is about to wait.
    scope: Option<CancelScope>,
    /// `A` is about to wait (for the condvar race: is waiting).
    a_ready: bool,
    /// `B` is about to wait (for the condvar race: is waiting, behind `A`).
    b_ready: bool,
    /// How `A`'s round ended: `Some(true)` if it got the wakeup.
    a_result: Option<bool>,
    /// The barrier race: `A` passed as the round's leader.
    a_led: bool,
    /// `B` got its wakeup (for the barrier: whether it led).
    b_done: Option<bool>,
    /// The condvar race's tokens (one per `notify_one`).
    tokens: usize,
}

/// The control channel of a race: the state, and a condvar announcing
/// every change of it.
#[derive(Default)]
struct Steps {
    state: Mutex<Step>,
    changed: Condvar,
}

impl Steps {
    /// Locks the state once `ready` holds.
    fn when(&self, mut ready: impl FnMut(&mut Step) -> bool) -> spool::sync::MutexGuard<'_, Step> {
        self.changed
            .wait_while(self.state.lock().unwrap(), |step| !ready(step))
            .unwrap()
    }

    /// As `when`, for the driver: a wait that outlasts [`LOST_AFTER`] is a
    /// lost wakeup, reported with `what`.
    fn expect(
        &self,
        what: &str,
        mut ready: impl FnMut(&mut Step) -> bool,
    ) -> spool::sync::MutexGuard<'_, Step> {
        let guard = self.state.lock().unwrap();
        let round = guard.round;
        let (guard, result) = self
            .changed
            .wait_timeout_while(guard, LOST_AFTER, |step| !ready(step))
            .unwrap();
        assert!(!result.timed_out(), "round {round}: {what}");
        guard
    }

    /// Changes the state and announces it.
    fn update(&self, change: impl FnOnce(&mut Step)) {
        change(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }

    /// Ends the driver's round: resets it and starts the next.
    fn next_round(&self) {
        self.update(|step| {
            *step = Step {
                round: step.round + 1,
                ..Step::default()
            };
        });
    }
}

/// `notify_one` racing the cancel of the waiter it picks. `A` and `B` wait
/// on one condvar for a token, `A` first (so `notify_one` picks `A`); the
/// driver puts one token and races `notify_one` against cancelling `A`.
/// If `A` took the token, the driver gives `B` another; if `A` was
/// cancelled, `B` must take the first — and sleeps forever if the
/// cancelled `A` swallowed its notification.
pub fn notify_one_races_cancel(rounds: usize, a_on: On, b_on: On, seed: u64) {
    let shared = Arc::new((Steps::default(), Condvar::new()));
    let a = start(a_on, {
        let shared = shared.clone();
        move || {
            let (steps, tokens) = &*shared;
            let mut kept = 0;
            for round in 0..rounds {
                let step = steps.when(|step| step.round == round);
                let scope = CancelScope::new();
                let took = scope.run(|| {
                    let mut step = step;
                    step.scope = Some(scope.clone());
                    step.a_ready = true;
                    steps.changed.notify_all();
                    // Enqueued before the mutex is released: `B`, which
                    // waits for `a_ready`, queues behind.
                    let mut step = tokens.wait_while(step, |step| step.tokens == 0).unwrap();
                    step.tokens -= 1;
                });
                kept += usize::from(took.is_some());
                steps.update(|step| step.a_result = Some(took.is_some()));
            }
            kept
        }
    });
    let b = start(b_on, {
        let shared = shared.clone();
        move || {
            let (steps, tokens) = &*shared;
            for round in 0..rounds {
                let mut step = steps.when(|step| step.round == round && step.a_ready);
                step.b_ready = true;
                steps.changed.notify_all();
                let mut step = tokens.wait_while(step, |step| step.tokens == 0).unwrap();
                step.tokens -= 1;
                step.b_done = Some(true);
                drop(step);
                steps.changed.notify_all();
            }
        }
    });
    let (steps, tokens) = &*shared;
    let mut rng = Rng::new(seed);
    let mut outcomes = Outcomes::default();
    for _ in 0..rounds {
        let scope = {
            let mut step = steps.expect("A and B never both waited", |step| step.b_ready);
            step.tokens = 1;
            step.scope.take().expect("A published its scope")
        };
        rng.race(
            || tokens.notify_one(),
            || scope.cancel(),
            || {
                drop(steps.expect("a cancel did not end A's wait", |step| {
                    step.a_result.is_some()
                }))
            },
        );
        let a_kept = {
            let step = steps.expect("A neither took the token nor unwound", |step| {
                step.a_result.is_some()
            });
            step.a_result == Some(true)
        };
        outcomes.record(a_kept);
        if a_kept {
            steps.update(|step| step.tokens = 1);
            tokens.notify_one();
        }
        let step = steps.expect(
            if a_kept {
                "B missed a notify_one (A returned with the first)"
            } else {
                "notify_one lost: A was cancelled and B was never woken"
            },
            |step| step.b_done.is_some(),
        );
        assert_eq!(step.tokens, 0, "a token was taken twice or not at all");
        drop(step);
        steps.next_round();
    }
    let kept = a.join();
    b.join();
    assert_eq!(kept, outcomes.kept);
    outcomes.check("notify_one racing a cancel", true);
}

/// A semaphore permit racing the cancel of the waiter it goes to. `A` and
/// then `B` wait for a permit of an empty semaphore; the driver releases
/// one while cancelling `A`. Each waiter keeps (forgets) what it gets, so
/// the count stays zero; if `A` got the permit the driver releases
/// another for `B`.
pub fn permit_races_cancel(rounds: usize, a_on: On, b_on: On, seed: u64) {
    let shared = Arc::new((Steps::default(), Semaphore::new(0)));
    let a = start(a_on, {
        let shared = shared.clone();
        move || {
            let (steps, sem) = &*shared;
            for round in 0..rounds {
                let scope = CancelScope::new();
                steps.update(|step| {
                    assert_eq!(step.round, round);
                    step.scope = Some(scope.clone());
                    step.a_ready = true;
                });
                let got = scope.run(|| sem.acquire().forget());
                steps.update(|step| step.a_result = Some(got.is_some()));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let b = start(b_on, {
        let shared = shared.clone();
        move || {
            let (steps, sem) = &*shared;
            for round in 0..rounds {
                drop(steps.when(|step| step.round == round && step.a_ready));
                steps.update(|step| step.b_ready = true);
                sem.acquire().forget();
                steps.update(|step| step.b_done = Some(true));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let (steps, sem) = &*shared;
    let mut rng = Rng::new(seed);
    let mut outcomes = Outcomes::default();
    for _ in 0..rounds {
        let scope = {
            let mut step = steps.expect("A and B never both came", |step| step.b_ready);
            step.scope.take().expect("A published its scope")
        };
        rng.spin();
        rng.race(
            || sem.add_permits(1),
            || scope.cancel(),
            || {
                drop(steps.expect("a cancel did not end A's wait", |step| {
                    step.a_result.is_some()
                }))
            },
        );
        let a_kept = steps
            .expect("A neither took a permit nor unwound", |step| {
                step.a_result.is_some()
            })
            .a_result
            == Some(true);
        outcomes.record(a_kept);
        if a_kept {
            sem.add_permits(1);
        }
        drop(steps.expect(
            "a permit was lost to a cancelled waiter: B never got one",
            |step| step.b_done.is_some(),
        ));
        assert_eq!(sem.available_permits(), 0, "a permit was counted twice");
        steps.next_round();
    }
    outcomes.check("a permit racing a cancel", true);
    a.join();
    b.join();
}

/// A barrier arrival racing the cancel of the thread already waiting. `A`
/// waits at a barrier for two; the driver lets `B` arrive while
/// cancelling `A`. If the round completed first, `A` returns normally and
/// one of `A` and `B` leads; if `A` left the round, `B` must still be
/// waiting, and the driver arrives itself to release it.
pub fn arrival_races_cancel(rounds: usize, a_on: On, b_on: On, seed: u64) {
    let shared = Arc::new((Steps::default(), Barrier::new(2), Event::new()));
    let a = start(a_on, {
        let shared = shared.clone();
        move || {
            let (steps, barrier, _) = &*shared;
            for round in 0..rounds {
                let scope = CancelScope::new();
                steps.update(|step| {
                    assert_eq!(step.round, round);
                    step.scope = Some(scope.clone());
                    step.a_ready = true;
                });
                let led = scope.run(|| barrier.wait().is_leader());
                steps.update(|step| {
                    step.a_result = Some(led.is_some());
                    step.a_led = led == Some(true);
                });
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let b = start(b_on, {
        let shared = shared.clone();
        move || {
            let (steps, barrier, go) = &*shared;
            for round in 0..rounds {
                go.wait();
                let led = barrier.wait().is_leader();
                steps.update(|step| step.b_done = Some(led));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let (steps, barrier, go) = &*shared;
    let mut rng = Rng::new(seed);
    let mut outcomes = Outcomes::default();
    for round in 0..rounds {
        let scope = {
            let mut step = steps.expect("A never came", |step| step.a_ready);
            step.scope.take().expect("A published its scope")
        };
        rng.spin();
        rng.race(
            || go.set(),
            || scope.cancel(),
            || {
                drop(steps.expect("a cancel did not end A's wait", |step| {
                    step.a_result.is_some()
                }))
            },
        );
        let (a_passed, a_led) = {
            let step = steps.expect("A neither passed nor unwound", |step| {
                step.a_result.is_some()
            });
            (step.a_result == Some(true), step.a_led)
        };
        outcomes.record(a_passed);
        // Whether the other thread of `B`'s round led: `A`, if it passed
        // with `B`; else the driver, which arrives to release `B`.
        let other_led = match a_passed {
            true => a_led,
            false => {
                // `A` left: `B` waits alone until a second thread comes.
                let arrived = spool::time::timeout(LOST_AFTER, || barrier.wait().is_leader());
                arrived.unwrap_or_else(|_| {
                    panic!("round {round}: B passed the barrier alone after A left the round")
                })
            }
        };
        let b_led = steps
            .expect("B never passed the barrier", |step| step.b_done.is_some())
            .b_done
            == Some(true);
        assert!(b_led ^ other_led, "round {round}: not exactly one leader");
        go.clear();
        steps.next_round();
    }
    outcomes.check("a barrier arrival racing a cancel", false);
    a.join();
    b.join();
}

/// An event's `set` racing the cancel of one of its waiters: the other
/// waiter must always wake, and the cancelled one either saw the event
/// (returned normally) or unwound.
pub fn set_races_cancel(rounds: usize, a_on: On, b_on: On, seed: u64) {
    let shared = Arc::new((Steps::default(), Event::new()));
    let a = start(a_on, {
        let shared = shared.clone();
        move || {
            let (steps, event) = &*shared;
            for round in 0..rounds {
                let scope = CancelScope::new();
                steps.update(|step| {
                    assert_eq!(step.round, round);
                    step.scope = Some(scope.clone());
                    step.a_ready = true;
                });
                let saw = scope.run(|| event.wait());
                steps.update(|step| step.a_result = Some(saw.is_some()));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let b = start(b_on, {
        let shared = shared.clone();
        move || {
            let (steps, event) = &*shared;
            for round in 0..rounds {
                drop(steps.when(|step| step.round == round && step.a_ready));
                steps.update(|step| step.b_ready = true);
                event.wait();
                steps.update(|step| step.b_done = Some(true));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let (steps, event) = &*shared;
    let mut rng = Rng::new(seed);
    let mut outcomes = Outcomes::default();
    for _ in 0..rounds {
        let scope = {
            let mut step = steps.expect("A and B never both came", |step| step.b_ready);
            step.scope.take().expect("A published its scope")
        };
        rng.spin();
        rng.race(
            || event.set(),
            || scope.cancel(),
            || {
                drop(steps.expect("a cancel did not end A's wait", |step| {
                    step.a_result.is_some()
                }))
            },
        );
        let a_kept = steps
            .expect("A neither saw the event nor unwound", |step| {
                step.a_result.is_some()
            })
            .a_result
            == Some(true);
        outcomes.record(a_kept);
        drop(steps.expect("an Event::set never reached B", |step| {
            step.b_done.is_some()
        }));
        event.clear();
        steps.next_round();
    }
    outcomes.check("Event::set racing a cancel", true);
    a.join();
    b.join();
}

/// An unlock racing the cancel of the thread waiting for the mutex. The
/// driver holds a mutex that `A` and then `B` wait for, and releases it
/// while cancelling `A` — sometimes after `A` has waited over a
/// millisecond, so the unlock hands the mutex over instead of letting the
/// waiter compete. `B` must get the mutex either way.
pub fn unlock_races_cancel(rounds: usize, a_on: On, b_on: On, seed: u64) {
    let shared = Arc::new((Steps::default(), Mutex::new(0usize)));
    let a = start(a_on, {
        let shared = shared.clone();
        move || {
            let (steps, mutex) = &*shared;
            for round in 0..rounds {
                let scope = CancelScope::new();
                steps.update(|step| {
                    assert_eq!(step.round, round);
                    step.scope = Some(scope.clone());
                    step.a_ready = true;
                });
                let got = scope.run(|| *mutex.lock().unwrap() += 1);
                steps.update(|step| step.a_result = Some(got.is_some()));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let b = start(b_on, {
        let shared = shared.clone();
        move || {
            let (steps, mutex) = &*shared;
            for round in 0..rounds {
                drop(steps.when(|step| step.round == round && step.a_ready));
                steps.update(|step| step.b_ready = true);
                *mutex.lock().unwrap() += 1;
                steps.update(|step| step.b_done = Some(true));
                drop(steps.when(|step| step.round > round));
            }
        }
    });
    let (steps, mutex) = &*shared;
    let mut rng = Rng::new(seed);
    let mut outcomes = Outcomes::default();
    let mut expected = 0;
    let mut held = Some(mutex.lock().unwrap());
    for round in 0..rounds {
        let scope = {
            let mut step = steps.expect("A and B never both came", |step| step.b_ready);
            step.scope.take().expect("A published its scope")
        };
        if rng.below(64) == 0 {
            // Past the starvation threshold: the unlock hands over.
            thread::sleep(Duration::from_millis(2));
        }
        rng.spin();
        rng.race(
            || drop(held.take()),
            || scope.cancel(),
            || {
                drop(steps.expect("a cancel did not end A's wait", |step| {
                    step.a_result.is_some()
                }))
            },
        );
        let a_got = steps
            .expect("A neither took the mutex nor unwound", |step| {
                step.a_result.is_some()
            })
            .a_result
            == Some(true);
        drop(steps.expect(
            "an unlock was lost to a cancelled waiter: B never got the mutex",
            |step| step.b_done.is_some(),
        ));
        outcomes.record(a_got);
        expected += 1 + usize::from(a_got);
        let guard = mutex.lock().unwrap();
        assert_eq!(
            *guard, expected,
            "round {round}: a critical section ran twice"
        );
        held = Some(guard);
        steps.next_round();
    }
    drop(held);
    // Not `wakes_at_once`: below the starvation threshold an unlock only
    // wakes `A`, which must then take the mutex itself, racing the cancel
    // (and `B`); only the rare rounds past the threshold hand it over. So
    // `A` may lose every race where it is slow to wake (an OS thread
    // under a sanitizer), and only "the cancel did end a wait" is certain.
    outcomes.check("an unlock racing a cancel", false);
    a.join();
    b.join();
}

// ---- the stress run ------------------------------------------------------

/// Whether this is the stress binary (`tests/stress.rs`); the entry points
/// below do nothing elsewhere (`tests/suite/cancel_sync.rs` runs the races itself,
/// with fewer rounds).
fn stress_run() -> bool {
    env!("CARGO_CRATE_NAME") == "stress"
}

/// `notify_one`/cancel races in the stress run: 10⁶ in release builds.
const NOTIFY_ROUNDS: usize = if cfg!(debug_assertions) {
    40_000
} else {
    1_000_000
};
/// Rounds of each of the other races in the stress run.
const OTHER_ROUNDS: usize = NOTIFY_ROUNDS / 10;

/// Runs `race` split over four placements at once — all green threads of
/// a two-worker runtime, `A` or `B` on an OS thread, and the driver on an
/// OS thread — so wakeups cross workers and the green/OS line.
fn placements(total: usize, race: fn(usize, On, On, u64)) {
    let _watchdog = Watchdog::new(
        "stress::cancel",
        Duration::from_secs(if cfg!(debug_assertions) { 600 } else { 300 }),
    );
    let rt = spool::Runtime::builder().workers(2).build().unwrap();
    let each = total / 4;
    let os_driver = std::thread::spawn(move || race(each, On::Green, On::Green, 4));
    rt.run(|| {
        let mixed = [
            (On::Green, On::Green),
            (On::Os, On::Green),
            (On::Green, On::Os),
        ];
        let drivers: Vec<_> = mixed
            .into_iter()
            .zip(1..)
            .map(|((a_on, b_on), seed)| start(On::Green, move || race(each, a_on, b_on, seed)))
            .collect();
        drivers.into_iter().for_each(Joiner::join);
    });
    os_driver.join().unwrap();
}

use super::common::Watchdog;

#[test]
fn cancel_races_notify_one() {
    if stress_run() {
        placements(NOTIFY_ROUNDS, notify_one_races_cancel);
    }
}

#[test]
fn cancel_races_permit() {
    if stress_run() {
        placements(OTHER_ROUNDS, permit_races_cancel);
    }
}

#[test]
fn cancel_races_barrier_arrival() {
    if stress_run() {
        placements(OTHER_ROUNDS, arrival_races_cancel);
    }
}

#[test]
fn cancel_races_event_set() {
    if stress_run() {
        placements(OTHER_ROUNDS, set_races_cancel);
    }
}

#[test]
fn cancel_races_unlock() {
    if stress_run() {
        placements(OTHER_ROUNDS, unlock_races_cancel);
    }
}
