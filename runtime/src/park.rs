//! The park state of a green thread: the one atomic word behind `park`,
//! `unpark`, `park_timeout` and `sleep`.
//!
//! # States
//!
//! | value              | meaning                                                     |
//! |--------------------|-------------------------------------------------------------|
//! | `EMPTY`            | no token; the thread is running, queued, or about to park   |
//! | `NOTIFIED`         | an `unpark` token is waiting to be consumed                 |
//! | `PARKED`           | switched out in `park`; whoever leaves this state queues it |
//! | `SLEEPING`         | switched out in `sleep`; only its timer queues it           |
//! | `SLEEPING│NOTIFIED`| sleeping, and a token arrived that `park` will consume      |
//!
//! Impossible combinations: `PARKED` never coexists with `SLEEPING`, and
//! coexists with `NOTIFIED` only for the instant between an unpark's
//! `fetch_or` and its store of `NOTIFIED`, while the thread is still
//! switched out (an unpark *replaces* `PARKED` by `NOTIFIED`). Only the
//! owning worker enters `PARKED` or `SLEEPING`, and only after the coroutine
//! has switched out, so a thread is never queued while it still runs.
//!
//! The rule that makes double scheduling impossible: **the one party whose
//! atomic operation takes the state out of `PARKED` (or clears `SLEEPING`)
//! queues the thread**; every other party sees that it lost and does
//! nothing. The protocol that uses these transitions, and why it loses no
//! wakeup, is the essay "Parking" at the top of `scheduler.rs`.
//!
//! # Model checking
//! The atomics come through `crate::loom`, so under `--cfg loom` the models
//! at the bottom of this file explore every interleaving (and every
//! reordering the C11 memory model allows) of a parker against unparkers
//! and timers (STYLE.md §7):
//! `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.

use crate::loom::atomic::{AtomicU32, Ordering};

/// No token, not parked.
pub(crate) const EMPTY: u32 = 0;
/// An unpark token is present.
pub(crate) const NOTIFIED: u32 = 1;
/// Switched out in `park`/`park_timeout`.
pub(crate) const PARKED: u32 = 2;
/// Switched out in `sleep`; unpark only leaves a token.
pub(crate) const SLEEPING: u32 = 4;

/// One green thread's park state.
pub(crate) struct ParkState {
    state: AtomicU32,
}

impl ParkState {
    pub(crate) fn new() -> ParkState {
        ParkState {
            state: AtomicU32::new(EMPTY),
        }
    }

    /// Worker side of `park`, run after the coroutine switched out:
    /// `EMPTY → PARKED`. Returns `false` when a token arrived while the
    /// thread was switching out; the worker then queues it again at once.
    pub(crate) fn transition_to_parked(&self) -> bool {
        // Release publishes everything the thread wrote before parking to
        // the party that takes it out of PARKED (it uses Acquire).
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => {
                debug_assert_eq!(state, NOTIFIED, "transition_to_parked: bad state");
                false
            }
        }
    }

    /// Worker side of `sleep`: set `SLEEPING`, keeping any token.
    pub(crate) fn transition_to_sleeping(&self) {
        let prev = self.state.fetch_or(SLEEPING, Ordering::AcqRel);
        debug_assert_eq!(
            prev & (PARKED | SLEEPING),
            0,
            "transition_to_sleeping: bad state"
        );
    }

    /// `unpark`: leave a token; returns `true` when the caller took the
    /// thread out of `PARKED` and must therefore queue it.
    ///
    /// This is always a read-modify-write, even when a token is already
    /// there. A plain load that sees `NOTIFIED` and returns would not
    /// *release* the unparker's earlier writes to the thread that consumes
    /// the token: the consumer's Acquire would synchronize only with the
    /// older unpark that left the token, and it could miss the write this
    /// unpark announces, park, and sleep forever (on x86 the unparker's
    /// store may still sit in its store buffer). The RMW joins the release
    /// sequence that the consumer's Acquire reads from. The loom model
    /// `a_token_already_present_still_publishes` checks exactly this.
    pub(crate) fn transition_to_notified(&self) -> bool {
        let prev = self.state.fetch_or(NOTIFIED, Ordering::AcqRel);
        if prev == PARKED {
            // We took it out of PARKED (the state is now PARKED|NOTIFIED,
            // which every other party treats as "taken": a timer's
            // CAS(PARKED → EMPTY) fails, other unparks see the token).
            // Clear PARKED and queue the thread.
            self.state.store(NOTIFIED, Ordering::Release);
            return true;
        }
        false
    }

    /// Timer side of `park_timeout`: `PARKED → EMPTY` (a wakeup without a
    /// token). Returns `true` when the caller must queue the thread.
    pub(crate) fn transition_from_timed_park(&self) -> bool {
        self.state
            .compare_exchange(PARKED, EMPTY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Timer side of `sleep`: clear `SLEEPING`. Returns `true` when the
    /// caller cleared it and must queue the thread.
    pub(crate) fn transition_from_sleeping(&self) -> bool {
        self.state.fetch_and(!SLEEPING, Ordering::AcqRel) & SLEEPING != 0
    }

    /// Green-thread side, after resuming from a wait: consume the token, if
    /// any (Acquire pairs with the unparker's release). Returns whether
    /// there was one.
    pub(crate) fn consume_token(&self) -> bool {
        self.state.swap(EMPTY, Ordering::Acquire) != EMPTY
    }

    /// Green-thread side, before parking: take a waiting token instead of
    /// switching out. Returns `true` if there was one.
    pub(crate) fn try_consume_token(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Exhaustive models of the park protocol. The parker runs the user's
    //! loop (`while !condition { park() }`) with the worker's half of
    //! `park` inlined (after "switching out" it does what the worker does);
    //! whoever wins the transition out of PARKED "queues" the parker by
    //! setting `queued`.
    use super::*;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::sync::Arc;
    use loom::thread;

    /// `park()` as the green thread and its worker run it. Panics if the
    /// parker would stay parked after every other party has finished.
    fn park(state: &ParkState, queued: &AtomicBool, others_done: &AtomicUsize, others: usize) {
        if state.try_consume_token() {
            return;
        }
        // Switched out: the worker completes the park.
        if state.transition_to_parked() {
            // Parked: wait until the winner of the transition queues us.
            // (compare_exchange rather than swap: loom 0.7's `swap` was seen
            // reading a value older than one already stored.)
            while queued
                .compare_exchange(true, false, Ordering::Acquire, Ordering::Acquire)
                .is_err()
            {
                let finished = others_done.load(Ordering::Acquire) == others;
                assert!(
                    !finished || queued.load(Ordering::Acquire),
                    "lost wakeup: parked with nobody left to wake us"
                );
                thread::yield_now();
            }
        }
        state.consume_token();
    }

    /// A parker waits (`while data == 0 { park() }`) for an unparker that
    /// sets `data` and unparks it, optionally with a stale token present.
    fn parker_sees_the_unparkers_write(stale_token: bool) {
        loom::model(move || {
            let state = Arc::new(ParkState::new());
            if stale_token {
                assert!(!state.transition_to_notified());
            }
            let data = Arc::new(AtomicUsize::new(0));
            let queued = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicUsize::new(0));
            let unparker = {
                let (state, data, queued, done) =
                    (state.clone(), data.clone(), queued.clone(), done.clone());
                thread::spawn(move || {
                    data.store(1, Ordering::Relaxed);
                    if state.transition_to_notified() {
                        queued.store(true, Ordering::Release);
                    }
                    done.fetch_add(1, Ordering::Release);
                })
            };
            while data.load(Ordering::Relaxed) == 0 {
                park(&state, &queued, &done, 1);
            }
            unparker.join().unwrap();
        });
    }

    #[test]
    fn unpark_is_never_lost() {
        parker_sees_the_unparkers_write(false);
    }

    /// The lost wakeup found by the cross-worker ping-pong benchmark: with a
    /// stale token present, the unparker's write must still be seen once
    /// the parker has consumed a token.
    #[test]
    fn a_token_already_present_still_publishes() {
        parker_sees_the_unparkers_write(true);
    }

    #[test]
    fn timer_and_unpark_queue_a_parked_thread_exactly_once() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            let queued_count = Arc::new(AtomicUsize::new(0));
            assert!(state.transition_to_parked());
            let unparker = {
                let (state, queued_count) = (state.clone(), queued_count.clone());
                thread::spawn(move || {
                    if state.transition_to_notified() {
                        queued_count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            if state.transition_from_timed_park() {
                queued_count.fetch_add(1, Ordering::Relaxed);
            }
            unparker.join().unwrap();
            assert_eq!(queued_count.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn unpark_during_sleep_leaves_a_token_and_does_not_wake() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            state.transition_to_sleeping();
            let unparker = {
                let state = state.clone();
                thread::spawn(move || state.transition_to_notified())
            };
            let timer_woke = state.transition_from_sleeping();
            let unpark_queued = unparker.join().unwrap();
            assert!(timer_woke, "only the timer ends a sleep");
            assert!(!unpark_queued, "an unpark must not queue a sleeping thread");
            assert!(
                state.consume_token(),
                "the unpark's token must survive the sleep"
            );
        });
    }
}
