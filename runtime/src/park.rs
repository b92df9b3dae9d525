//! The park state of a green thread: the one atomic word behind `park`,
//! `unpark`, `park_timeout`, `sleep` and spool's own waits.
//!
//! # Two tokens
//! A green thread can be woken for two different reasons, and they must
//! not be confused:
//!
//! * the **user's token** (`NOTIFIED`): what `Thread::unpark` leaves and
//!   `thread::park` consumes, with std's semantics;
//! * spool's **wake token** (`WOKEN`): what spool's own primitives — a
//!   lock's wait list, a channel, a socket's readiness, `join`, a timer —
//!   leave for a thread blocked in one of *their* waits (`crate::wait`).
//!
//! With std, `Mutex::lock`, `JoinHandle::join` or a socket read never touch
//! the park token, so a loop written as `while !ready { park() }` keeps an
//! `unpark` that arrived while the thread happened to be inside a lock. If
//! spool's waits shared the user's token, such an `unpark` would be used up
//! inside the lock and the next `park` would sleep forever. So each kind of
//! switched-out state is woken only by its own token: an `unpark` while the
//! thread waits inside spool leaves `NOTIFIED` for the next `park` and does
//! not wake it; a spool wake while the thread is in `park` leaves `WOKEN`
//! for the next internal wait (where, like a stale token, it causes at most
//! one early return, which every internal wait loop tolerates).
//!
//! # States
//!
//! | bit        | meaning                                                       |
//! |------------|---------------------------------------------------------------|
//! | `NOTIFIED` | the user's token is present                                   |
//! | `PARKED`   | switched out in `park`; woken by `NOTIFIED` or its timer      |
//! | `WOKEN`    | spool's wake token is present                                 |
//! | `WAITING`  | switched out in an internal wait or `sleep`; woken by `WOKEN` or its timer |
//! | `INTERRUPT`| a cancellation may be pending: recheck the cancel scopes (`cancel.rs`) |
//! | `MASKED`   | the current wait is not a cancellation point: `INTERRUPT` does not end it |
//!
//! The token bits are independent of everything else. Impossible
//! combinations: `PARKED` with `WAITING` (a thread waits in one place);
//! `PARKED` with `NOTIFIED` and `WAITING` with `WOKEN` (the worker does not
//! switch a thread out while the token that would wake it is present, and
//! whoever sets that token while the thread is switched out clears the
//! switched-out bit in the same atomic step). Only the owning worker sets
//! `PARKED` or `WAITING`, and only after the coroutine has switched out, so
//! a thread is never queued while it still runs.
//!
//! # Interrupts
//! Cancellation (`cancel.rs`) needs a third way to end a wait: a cancel must
//! end a thread's `park`, `sleep` or channel wait without leaving either
//! token (a token would fake an `unpark` or a wake). `interrupt` sets
//! `INTERRUPT` and, when the thread is switched out in a wait that is a
//! cancellation point, clears the switched-out bit in the same step (so it
//! queues the thread, by the rule below). `transition_to_waiting` refuses an
//! interruptible wait while `INTERRUPT` is set, so an interrupt that lands
//! while the thread is switching out is not lost either. `INTERRUPT` stays
//! set until the thread itself rechecks its scopes (`take_interrupt`); it
//! means "look", not "you are cancelled". A wait that must not end early —
//! `join` and lock waits while the thread unwinds (rule R1 in `cancel.rs`),
//! or spool's own waits that are no cancellation points — is entered
//! *masked*: `MASKED` goes up with the switched-out bit and `interrupt`
//! leaves such a wait alone.
//!
//! The rule that makes double scheduling impossible: **the one party whose
//! atomic operation clears `PARKED` or `WAITING` queues the thread**; every
//! other party sees that it lost and does nothing. Every transition that
//! leaves a token is a read-modify-write that succeeds exactly once, even
//! when the token is already there (see `transition_to_notified`). The
//! protocol that uses these transitions, and why it loses no wakeup, is the
//! essay "Parking" at the top of `scheduler.rs`.
//!
//! # Model checking
//! The atomics come through `crate::loom`, so under `--cfg loom` the models
//! at the bottom of this file explore every interleaving (and every
//! reordering the C11 memory model allows) of a parker against unparkers,
//! wakers and timers:
//! `RUSTFLAGS="--cfg loom" cargo test -p spool-runtime --release --lib loom`.

use crate::loom::atomic::{AtomicU32, Ordering};

/// The user's token is present.
pub(crate) const NOTIFIED: u32 = 1;
/// Switched out in `park`/`park_timeout`.
pub(crate) const PARKED: u32 = 2;
/// spool's wake token is present.
pub(crate) const WOKEN: u32 = 4;
/// Switched out in an internal wait or `sleep`.
pub(crate) const WAITING: u32 = 8;
/// A cancellation may be pending: the thread must recheck its scopes.
pub(crate) const INTERRUPT: u32 = 16;
/// The current internal wait ignores `INTERRUPT` (set only with `WAITING`:
/// the user's `park` is always a cancellation point).
pub(crate) const MASKED: u32 = 32;

/// Which of the two waits a transition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// The user's `park`: token `NOTIFIED`, switched-out bit `PARKED`.
    Park,
    /// spool's internal wait (and `sleep`): token `WOKEN`, bit `WAITING`.
    Internal,
}

impl WaitKind {
    /// (token bit, switched-out bit) of this kind of wait.
    #[inline]
    const fn bits(self) -> (u32, u32) {
        match self {
            WaitKind::Park => (NOTIFIED, PARKED),
            WaitKind::Internal => (WOKEN, WAITING),
        }
    }

    /// The bits that ending this kind of wait clears: the switched-out bit,
    /// and for an internal wait `MASKED`, which only goes with `WAITING`.
    #[inline]
    const fn ending(self) -> u32 {
        match self {
            WaitKind::Park => PARKED,
            WaitKind::Internal => WAITING | MASKED,
        }
    }
}

/// One green thread's park state.
pub(crate) struct ParkState {
    state: AtomicU32,
}

impl ParkState {
    pub(crate) fn new() -> ParkState {
        ParkState {
            state: AtomicU32::new(0),
        }
    }

    /// Worker side, run after the coroutine switched out to wait: sets the
    /// switched-out bit of `kind` unless that kind's token arrived while the
    /// thread was switching out, or the wait is `interruptible` and
    /// `INTERRUPT` is set. Returns `false` in those cases; the worker then
    /// queues the thread again at once. A wait that is not `interruptible`
    /// is marked `MASKED`, which `interrupt` leaves alone.
    #[inline]
    pub(crate) fn transition_to_waiting(&self, kind: WaitKind, interruptible: bool) -> bool {
        let (token, switched_out) = kind.bits();
        let refuse = if interruptible {
            token | INTERRUPT
        } else {
            token
        };
        // Only an internal wait can be masked: `park` is always a
        // cancellation point.
        let mark = if interruptible || kind == WaitKind::Park {
            switched_out
        } else {
            switched_out | MASKED
        };
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & refuse != 0 {
                return false;
            }
            debug_assert_eq!(
                state & (PARKED | WAITING | MASKED),
                0,
                "transition_to_waiting: already switched out"
            );
            // Release publishes everything the thread wrote before waiting
            // to the party that clears the bit (it uses Acquire).
            match self.state.compare_exchange_weak(
                state,
                state | mark,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Leaves the token of `kind` (`unpark` for `Park`, spool's wake for
    /// `Internal`). Returns `true` when the caller also cleared the matching
    /// switched-out bit (in the same atomic step) and must therefore queue
    /// the thread.
    ///
    /// This is always a successful read-modify-write, even when the token
    /// is already there. A plain load that sees the token and returns would
    /// not *release* the caller's earlier writes to the thread that
    /// consumes the token: the consumer's Acquire would synchronize only
    /// with the older operation that left the token, and it could miss the
    /// write this one announces, wait, and sleep forever (on x86 the
    /// caller's store may still sit in its store buffer). The RMW joins the
    /// release sequence that the consumer's Acquire reads from. The loom
    /// model `a_token_already_present_still_publishes` checks exactly this.
    #[inline]
    pub(crate) fn transition_to_notified(&self, kind: WaitKind) -> bool {
        let (token, switched_out) = kind.bits();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            // Waking the thread leaves the token too: the woken thread
            // consumes it and so learns that its timer (if any) did not
            // fire (see `end_timed_wait` in `lib.rs`).
            let wakes = state & switched_out != 0;
            let next = (state & !kind.ending()) | token;
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return wakes,
                Err(actual) => state = actual,
            }
        }
    }

    /// Timer side: clears the switched-out bit of `kind` (a wakeup without
    /// a token). Returns `true` when the caller cleared it and must queue
    /// the thread.
    #[inline]
    pub(crate) fn transition_from_timed_wait(&self, kind: WaitKind) -> bool {
        let (_, switched_out) = kind.bits();
        self.state.fetch_and(!kind.ending(), Ordering::AcqRel) & switched_out != 0
    }

    /// Canceller side: sets `INTERRUPT`; if the thread is switched out in a
    /// wait that is a cancellation point (not `MASKED`), also clears the
    /// switched-out bit. Returns `true` when the caller cleared it and must
    /// queue the thread. Leaves no token: the woken wait returns as if
    /// spuriously and its caller rechecks its cancel scopes.
    ///
    /// A read-modify-write even when `INTERRUPT` is already set, for the
    /// reason given at `transition_to_notified`: the thread's
    /// `take_interrupt` must synchronize with *this* canceller's writes (the
    /// scope it marked cancelled).
    #[inline]
    pub(crate) fn interrupt(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let wakes = state & (PARKED | WAITING) != 0 && state & MASKED == 0;
            let next = if wakes {
                (state & !(PARKED | WAITING)) | INTERRUPT
            } else {
                state | INTERRUPT
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return wakes,
                Err(actual) => state = actual,
            }
        }
    }

    /// Whether the thread is switched out in a wait (for a dump, read by
    /// its owner worker between resumes).
    pub(crate) fn is_switched_out(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (PARKED | WAITING) != 0
    }

    /// Green-thread side: whether `INTERRUPT` is set. A plain load: the
    /// cheap first look of every cancellation point (a set bit is then
    /// taken with `take_interrupt`, which synchronizes).
    #[inline]
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.state.load(Ordering::Relaxed) & INTERRUPT != 0
    }

    /// Green-thread side: clears `INTERRUPT` before the thread rechecks its
    /// scopes. Acquire pairs with the canceller's release in `interrupt`, so
    /// a scope marked cancelled before that interrupt is seen; a cancel that
    /// comes after this clear sets the bit again. Returns whether it was set.
    #[inline]
    pub(crate) fn take_interrupt(&self) -> bool {
        self.state.fetch_and(!INTERRUPT, Ordering::AcqRel) & INTERRUPT != 0
    }

    /// Green-thread side: sets `INTERRUPT` on itself (the recheck found the
    /// thread cancelled, and the next cancellation point must see it too).
    #[inline]
    pub(crate) fn set_interrupt(&self) {
        self.state.fetch_or(INTERRUPT, Ordering::Relaxed);
    }

    /// Green-thread side, before waiting or after resuming: consumes the
    /// token of `kind`, if any (Acquire pairs with the release of whoever
    /// left it). Returns whether there was one.
    #[inline]
    pub(crate) fn consume_token(&self, kind: WaitKind) -> bool {
        let (token, _) = kind.bits();
        // A plain load first: most waits find no token, and a failed
        // `fetch_and` would still be a locked instruction.
        if self.state.load(Ordering::Relaxed) & token == 0 {
            return false;
        }
        self.state.fetch_and(!token, Ordering::Acquire) & token != 0
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Exhaustive models of the park protocol. The waiter runs a wait loop
    //! (`while !condition { park() }`, or spool's internal wait) with the
    //! worker's half inlined (after "switching out" it does what the worker
    //! does); whoever wins the transition out of the switched-out state
    //! "queues" the waiter by setting `queued`.
    //!
    //! Mutations these models were seen to catch: dropping the token check
    //! from `transition_to_waiting` (a lost wakeup in
    //! `unpark_is_never_lost`), replacing the CAS in `transition_to_notified`
    //! by a load that returns when the token is already there
    //! (`a_token_already_present_still_publishes`), and letting a token of
    //! one kind clear the other kind's switched-out bit
    //! (`an_unpark_during_an_internal_wait_is_kept`).
    //!
    //! The interrupt models (cancellation, see "Interrupts" above) and the
    //! mutation each was seen to catch:
    //! * `cancel_and_unpark_wake_a_parked_thread_once`: `interrupt` reporting
    //!   a wake without clearing the switched-out bit (the unparker queues
    //!   the thread a second time);
    //! * `cancel_timer_and_unpark_queue_a_sleeping_thread_once`: the timer's
    //!   transition returning `true` without checking that the thread is
    //!   still switched out (queued twice, with the interrupt);
    //! * `a_cancel_during_a_recheck_is_not_lost`: `take_interrupt` with
    //!   `Relaxed` ordering (the recheck misses the scope's mark, then
    //!   sleeps with nobody left to wake it);
    //! * `an_interrupt_does_not_end_a_masked_wait`: `interrupt` ignoring
    //!   `MASKED` (it queues a thread in a wait that is no cancellation
    //!   point).
    use super::*;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::sync::Arc;
    use loom::thread;

    /// One wait of `kind` as the green thread and its worker run it. Panics
    /// if the waiter would stay switched out after every other party has
    /// finished.
    fn wait(
        kind: WaitKind,
        state: &ParkState,
        queued: &AtomicBool,
        others_done: &AtomicUsize,
        others: usize,
    ) {
        if state.consume_token(kind) {
            return;
        }
        // Switched out: the worker completes the wait.
        if state.transition_to_waiting(kind, true) {
            // Waiting: until the winner of the transition queues us.
            // (compare_exchange rather than swap: loom 0.7's `swap` was seen
            // reading a value older than one already stored.)
            while queued
                .compare_exchange(true, false, Ordering::Acquire, Ordering::Acquire)
                .is_err()
            {
                let finished = others_done.load(Ordering::Acquire) == others;
                assert!(
                    !finished || queued.load(Ordering::Acquire),
                    "lost wakeup: switched out with nobody left to wake us"
                );
                thread::yield_now();
            }
        }
        state.consume_token(kind);
    }

    /// A waiter waits (`while data == 0 { wait() }`) for a waker that sets
    /// `data` and leaves the token of `kind`, optionally with a stale token
    /// present.
    fn waiter_sees_the_wakers_write(kind: WaitKind, stale_token: bool) {
        loom::model(move || {
            let state = Arc::new(ParkState::new());
            if stale_token {
                assert!(!state.transition_to_notified(kind));
            }
            let data = Arc::new(AtomicUsize::new(0));
            let queued = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicUsize::new(0));
            let waker = {
                let (state, data, queued, done) =
                    (state.clone(), data.clone(), queued.clone(), done.clone());
                thread::spawn(move || {
                    data.store(1, Ordering::Relaxed);
                    if state.transition_to_notified(kind) {
                        queued.store(true, Ordering::Release);
                    }
                    done.fetch_add(1, Ordering::Release);
                })
            };
            while data.load(Ordering::Relaxed) == 0 {
                wait(kind, &state, &queued, &done, 1);
            }
            waker.join().unwrap();
        });
    }

    #[test]
    fn unpark_is_never_lost() {
        waiter_sees_the_wakers_write(WaitKind::Park, false);
    }

    #[test]
    fn an_internal_wake_is_never_lost() {
        waiter_sees_the_wakers_write(WaitKind::Internal, false);
    }

    /// The lost wakeup found by the cross-worker ping-pong benchmark: with a
    /// stale token present, the waker's write must still be seen once the
    /// waiter has consumed a token.
    #[test]
    fn a_token_already_present_still_publishes() {
        waiter_sees_the_wakers_write(WaitKind::Park, true);
        waiter_sees_the_wakers_write(WaitKind::Internal, true);
    }

    #[test]
    fn timer_and_token_queue_a_waiting_thread_exactly_once() {
        for kind in [WaitKind::Park, WaitKind::Internal] {
            loom::model(move || {
                let state = Arc::new(ParkState::new());
                let queued_count = Arc::new(AtomicUsize::new(0));
                assert!(state.transition_to_waiting(kind, true));
                let waker = {
                    let (state, queued_count) = (state.clone(), queued_count.clone());
                    thread::spawn(move || {
                        if state.transition_to_notified(kind) {
                            queued_count.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                };
                if state.transition_from_timed_wait(kind) {
                    queued_count.fetch_add(1, Ordering::Relaxed);
                }
                waker.join().unwrap();
                assert_eq!(queued_count.load(Ordering::Relaxed), 1);
            });
        }
    }

    /// The user's token survives any wait inside spool: an `unpark` that
    /// races with a thread entering, switching out of or sitting in an
    /// internal wait neither wakes that wait nor is consumed by it, and the
    /// next `park` returns at once; the internal wait is ended by its own
    /// waker, which comes after the unpark.
    #[test]
    fn an_unpark_during_an_internal_wait_is_kept() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            let queued = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicUsize::new(0));
            let ready = Arc::new(AtomicUsize::new(0));
            let other = {
                let (state, queued, done, ready) =
                    (state.clone(), queued.clone(), done.clone(), ready.clone());
                thread::spawn(move || {
                    assert!(
                        !state.transition_to_notified(WaitKind::Park),
                        "an unpark queued a thread that waits inside spool"
                    );
                    ready.store(1, Ordering::Relaxed);
                    if state.transition_to_notified(WaitKind::Internal) {
                        queued.store(true, Ordering::Release);
                    }
                    done.fetch_add(1, Ordering::Release);
                })
            };
            while ready.load(Ordering::Relaxed) == 0 {
                wait(WaitKind::Internal, &state, &queued, &done, 1);
            }
            other.join().unwrap();
            assert!(
                state.consume_token(WaitKind::Park),
                "the unpark's token must survive the internal wait"
            );
        });
    }

    /// Waits until the winner of the transition out of the switched-out
    /// state queues us (see `wait`), then takes the flag down.
    fn until_queued(queued: &AtomicBool, others_done: &AtomicUsize, others: usize) {
        while queued
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Acquire)
            .is_err()
        {
            let finished = others_done.load(Ordering::Acquire) == others;
            assert!(
                !finished || queued.load(Ordering::Acquire),
                "lost wakeup: switched out with nobody left to wake us"
            );
            thread::yield_now();
        }
    }

    /// A cancel and an unpark race for a parked thread. Exactly one of them
    /// queues it, and the thread — resumed by the winner at once, while the
    /// other party may still be running — ends its park as `park` in
    /// `lib.rs` does: it returns if it took the token (rule R2; the
    /// cancellation stays pending), and otherwise unwinds, leaving the
    /// unpark's token, once it lands, for the next park. No token is faked
    /// or lost, and the interrupt is not lost either.
    #[test]
    fn cancel_and_unpark_wake_a_parked_thread_once() {
        /// The parked thread's resumption, run by whoever queued it:
        /// whether its park took the token.
        fn resume(state: &ParkState, took_token: &AtomicUsize) {
            let took = state.consume_token(WaitKind::Park);
            if !took {
                // Only the interrupt ends a park without a token.
                assert!(state.interrupt_pending(), "woken by nobody");
            }
            took_token.store(usize::from(took), Ordering::Relaxed);
        }
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            let queued = Arc::new(AtomicUsize::new(0));
            let took_token = Arc::new(AtomicUsize::new(2));
            assert!(state.transition_to_waiting(WaitKind::Park, true));
            let canceller = {
                let (state, queued, took_token) =
                    (state.clone(), queued.clone(), took_token.clone());
                thread::spawn(move || {
                    if state.interrupt() {
                        queued.fetch_add(1, Ordering::Relaxed);
                        resume(&state, &took_token);
                    }
                })
            };
            // The unparker.
            if state.transition_to_notified(WaitKind::Park) {
                queued.fetch_add(1, Ordering::Relaxed);
                resume(&state, &took_token);
            }
            canceller.join().unwrap();
            assert_eq!(queued.load(Ordering::Relaxed), 1, "queued twice, or never");
            let took_token = took_token.load(Ordering::Relaxed) == 1;
            assert!(state.take_interrupt(), "the interrupt was lost");
            // The unpark's one token: taken by the park that returned, or
            // left for the next park.
            assert_eq!(
                state.consume_token(WaitKind::Park),
                !took_token,
                "an unpark's token was lost or faked"
            );
        });
    }

    /// A sleeping thread (spool's timed, interruptible internal wait, as
    /// `sleep` uses) or one in `park_timeout`, with a cancel, its timer
    /// and an unpark all racing: exactly one of them queues it. An unpark
    /// never ends a sleep; its token is left for the next park.
    #[test]
    fn cancel_timer_and_unpark_queue_a_sleeping_thread_once() {
        for kind in [WaitKind::Internal, WaitKind::Park] {
            loom::model(move || {
                let state = Arc::new(ParkState::new());
                let count = Arc::new(AtomicUsize::new(0));
                assert!(state.transition_to_waiting(kind, true));
                let canceller = {
                    let (state, count) = (state.clone(), count.clone());
                    thread::spawn(move || {
                        if state.interrupt() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                };
                let unparker = {
                    let (state, count) = (state.clone(), count.clone());
                    thread::spawn(move || {
                        let woke = state.transition_to_notified(WaitKind::Park);
                        assert!(!woke || kind == WaitKind::Park, "an unpark ended a sleep");
                        if woke {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                };
                if state.transition_from_timed_wait(kind) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                canceller.join().unwrap();
                unparker.join().unwrap();
                assert_eq!(count.load(Ordering::Relaxed), 1);
                assert!(state.take_interrupt());
                assert!(state.consume_token(WaitKind::Park));
                assert!(!state.consume_token(WaitKind::Internal));
            });
        }
    }

    /// A cancellation point's recheck (`recheck` in `cancel.rs`) clears
    /// `INTERRUPT`, then reads the scope's cancelled mark; the canceller
    /// sets the mark, then interrupts. Whatever the interleaving, the
    /// thread ends up seeing the mark: before waiting, or woken from its
    /// wait by the interrupt.
    #[test]
    fn a_cancel_during_a_recheck_is_not_lost() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            let cancelled = Arc::new(AtomicBool::new(false));
            let queued = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicUsize::new(0));
            let canceller = {
                let (state, cancelled, queued, done) = (
                    state.clone(),
                    cancelled.clone(),
                    queued.clone(),
                    done.clone(),
                );
                thread::spawn(move || {
                    // `ScopeInner::cancel`: mark (Release), then interrupt.
                    cancelled.store(true, Ordering::Release);
                    if state.interrupt() {
                        queued.store(true, Ordering::Release);
                    }
                    done.fetch_add(1, Ordering::Release);
                })
            };
            loop {
                state.take_interrupt();
                if cancelled.load(Ordering::Acquire) {
                    break; // raised
                }
                // Not cancelled (yet): one interruptible internal wait.
                if state.transition_to_waiting(WaitKind::Internal, true) {
                    until_queued(&queued, &done, 1);
                }
            }
            canceller.join().unwrap();
        });
    }

    /// A masked wait (`join` or a lock while unwinding, spool's waits that
    /// are no cancellation points) is entered even with an interrupt
    /// pending, is not ended by one, and is ended by its own wake; the
    /// interrupt stays pending for the next cancellation point.
    #[test]
    fn an_interrupt_does_not_end_a_masked_wait() {
        for interrupted_before in [false, true] {
            loom::model(move || {
                let state = Arc::new(ParkState::new());
                if interrupted_before {
                    assert!(!state.interrupt());
                }
                // The worker's half of a masked wait: it switches out even
                // with the interrupt there.
                assert!(state.transition_to_waiting(WaitKind::Internal, false));
                let canceller = {
                    let state = state.clone();
                    thread::spawn(move || {
                        assert!(!state.interrupt(), "an interrupt ended a masked wait");
                    })
                };
                assert!(
                    state.transition_to_notified(WaitKind::Internal),
                    "the wake did not end the masked wait"
                );
                canceller.join().unwrap();
                assert!(state.consume_token(WaitKind::Internal));
                assert!(state.take_interrupt(), "the interrupt was lost");
                // Nothing of the masked wait is left behind: an
                // interruptible wait now switches out.
                assert!(state.transition_to_waiting(WaitKind::Internal, true));
            });
        }
    }

    /// Conversely, spool's wake does not end a `park`: it leaves its token
    /// for the next internal wait.
    #[test]
    fn an_internal_wake_does_not_end_a_park() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            assert!(state.transition_to_waiting(WaitKind::Park, true));
            let waker = {
                let state = state.clone();
                thread::spawn(move || state.transition_to_notified(WaitKind::Internal))
            };
            let timer_woke = state.transition_from_timed_wait(WaitKind::Park);
            let wake_queued = waker.join().unwrap();
            assert!(timer_woke, "only the timer or an unpark ends a park");
            assert!(!wake_queued, "spool's wake must not queue a parked thread");
            assert!(state.consume_token(WaitKind::Internal));
            assert!(!state.consume_token(WaitKind::Park));
        });
    }
}
