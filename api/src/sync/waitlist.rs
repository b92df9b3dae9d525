//! The wait list every blocking primitive of `spool::sync` is built on.
//!
//! # Design
//! A [`WaitList`] is a FIFO of [`Waiter`]s behind a tiny lock (a
//! `std::sync::Mutex` around a `VecDeque`). A waiter is a `ThreadHandle`
//! (green or OS thread) plus its own atomic `state`, which starts at
//! [`WAITING`] and is set exactly once, by whoever removes the waiter from
//! the list, to a non-zero *wake reason* (`NOTIFIED`/`GRANTED`/`RETRY`,
//! whose meaning belongs to the primitive). The list lock is only ever held
//! for a few instructions and never across a wait, so a green thread that
//! holds it cannot be switched out while another green thread of its worker
//! spins on it: the lock cannot deadlock a worker.
//!
//! The protocol, shared by `Mutex`, `RwLock`, `Condvar` and `Once`:
//!
//! 1. **Enqueue.** Under the list lock the waiter re-checks the condition
//!    it waits for (the primitive's own atomic state) and, if it still must
//!    wait, pushes itself. Checking and pushing in one critical section is
//!    what makes the wakeup impossible to miss (below).
//! 2. **Wait.** Outside the lock, it loops `while state == WAITING {
//!    wait() }`, with the engine's internal `wait`, which neither consumes
//!    nor is ended by the user's park token (so a `Thread::unpark` that
//!    arrives while the thread blocks in a lock is kept for its next
//!    `park`, as with std). `wait` may return early (a stray wake left by
//!    an earlier wait, or a timeout), hence the loop.
//! 3. **Wake.** A waker pops the waiter under the list lock, stores the
//!    wake reason into `state` *while still holding the lock*, releases the
//!    lock and then wakes the waiter's thread (`ThreadHandle::wake`; the
//!    wrapper is `Woken::unpark`).
//! 4. **Withdraw (a timeout or a cancellation).** A waiter that stops
//!    waiting before it was woken takes the list lock and looks at its
//!    `state`: still `WAITING` means it is still in the list, so it
//!    removes itself and reports a timeout or unwinds; anything else means
//!    a waker popped it first, so the wakeup is *its* (reports "notified",
//!    owns the permit or the lock). Because step 3 pops and sets the state
//!    in one critical section, "in the list" and "`state == WAITING`" are
//!    the same thing whenever the lock is held: a waiter that leaves can
//!    never swallow a `notify_one` without reporting it, and a waker never
//!    hands its wakeup to a waiter that already left.
//!
//! # Why no wakeup is lost
//! * Between a waiter and its waker: the waker sets `state` *before*
//!   the wake. If the waiter checks `state` after that store it returns; if
//!   it checked before, it then waits, and the wake that follows the
//!   store either wakes the waiting thread or leaves a token that makes the
//!   `wait` return at once (the engine's "wake before wait"; see
//!   "Parking" at the top of `runtime/src/scheduler.rs`). Storing after
//!   the wake would be wrong: the waiter could wake, see `WAITING`, wait
//!   again and never be woken.
//! * Between a waiter and the primitive's state: the waiter re-checks that
//!   state under the list lock (step 1) and every releaser that must wake
//!   someone takes the list lock after changing the state, so either the
//!   waiter sees the change (and does not wait) or the releaser finds the
//!   waiter in the list. Each primitive spells out its variant of this.
//!
//! # Cancellation
//! Every wait here is a *cancellation point* (see `spool::cancel`): step 2
//! waits with the engine's `cancellable_wait`, which also ends when the
//! thread is cancelled ([`Waiter::wait_cancellable`] reports it). The
//! cancelled waiter then withdraws (step 4), and the rule "a completed
//! operation beats a late cancellation" (R2) falls out of the protocol: if
//! a waker popped it first, the wakeup is the waiter's, and the primitive
//! either returns normally with it (the cancellation is raised at the next
//! cancellation point) or passes it on to the next waiter; only a waiter
//! that removed itself unwinds, and then no waker ever counted on it. A
//! thread already unwinding (R1) gets [`Waited::Unwinding`] instead, and
//! the primitive fails fast, returns early or goes on waiting with the
//! masked `wait`, as its documentation says. The loom models
//! `notify_one_racing_a_cancel_is_not_lost` (`condvar.rs`),
//! `a_permit_racing_a_cancel_is_not_lost` (`semaphore.rs`) and
//! `an_unlock_racing_a_cancel_is_not_lost_*` (`mutex.rs`) explore this
//! race; a canceller drives them through `crate::loom::cancel`.
//!
//! A waker may wake a thread that has already returned (it saw `state`
//! change before the wake arrived). That leaves one stray wake token, which
//! at most makes that thread's next internal `wait` return early; every
//! wait loop in spool tolerates that. The user's park token is never
//! involved.
//!
//! # Memory orderings
//! * `state` is stored with `Release` by the waker and loaded with
//!   `Acquire` by the waiter, so everything the waker did before waking
//!   (the guarded data written by the previous lock holder, the value a
//!   `Once` initialised) is visible to the woken thread even when it
//!   returns without taking the list lock.
//! * The list lock orders everything done under it (acquire/release), which
//!   is why step 4 may read `state` with `Relaxed`; it uses `Acquire` anyway
//!   because it may then go on to use what the waker published.
//!
//! Waiters are `Arc`-allocated (one allocation per slow-path wait, which
//! then switches out anyway), so no `unsafe` is needed: an intrusive list would
//! save the allocation at the price of pinning and raw pointers.
//!
//! The atomics, the list lock, parking and cancellation come through
//! `crate::loom`, so under `--cfg loom` the models in `mutex.rs`,
//! `condvar.rs` and `semaphore.rs` explore this protocol's interleavings.

use std::collections::VecDeque;
use std::time::Instant;

use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::cancel::{self, Cancelled, Check};
use crate::loom::thread::{self, Thread};
use crate::loom::{Arc, Mutex, MutexGuard};

/// `Waiter::state` before a waker has taken the waiter off the list.
pub(crate) const WAITING: u32 = 0;

/// How a [`Waiter::wait_cancellable`] ended.
pub(crate) enum Waited {
    /// A waker set this wake reason (the waiter is off the list).
    Woken(u32),
    /// The deadline passed; the waiter is *still in the list*: withdraw.
    TimedOut,
    /// The thread is cancelled; the waiter is *still in the list*:
    /// withdraw, then unwind with this unless the wakeup came meanwhile.
    Cancelled(Cancelled),
    /// The thread is cancelled while already unwinding (rule R1); the
    /// waiter is *still in the list*: withdraw and fail fast, or go on with
    /// the masked [`Waiter::wait_until`].
    Unwinding,
}

/// One thread waiting in a [`WaitList`].
pub(crate) struct Waiter {
    /// The thread to wake.
    thread: Thread,
    /// [`WAITING`] while in the list; then the wake reason, set once by the
    /// waker that popped it (under the list lock).
    state: AtomicU32,
    /// What the waiter wants (a primitive-specific tag, e.g. read or write).
    pub(crate) kind: u32,
    /// When the waiter first started waiting (for starvation checks).
    #[cfg_attr(loom, allow(dead_code))] // loom has no time (`mutex.rs`)
    pub(crate) since: Instant,
}

impl Waiter {
    /// A waiter for the calling thread.
    pub(crate) fn new(kind: u32, since: Instant) -> Arc<Waiter> {
        Arc::new(Waiter {
            thread: thread::current(),
            state: AtomicU32::new(WAITING),
            kind,
            since,
        })
    }

    /// The wake reason, or [`WAITING`]. `Acquire`: pairs with the waker's
    /// `Release` store (see "Memory orderings").
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Makes a waiter that was woken reusable for another enqueue. Only the
    /// waiter itself calls this, while it is not in any list.
    pub(crate) fn reset(&self) {
        self.state.store(WAITING, Ordering::Relaxed);
    }

    /// Waits until a waker sets the state; returns the wake reason. Not a
    /// cancellation point (the masked wait of rule R1).
    pub(crate) fn wait(&self) -> u32 {
        loop {
            let state = self.state();
            if state != WAITING {
                return state;
            }
            thread::wait();
        }
    }

    /// Waits until a waker sets the state or `deadline` passes; returns the
    /// wake reason, or [`WAITING`] on timeout (the waiter is then *still in
    /// the list*: call [`WaitList::withdraw`]). `None` waits forever. Not a
    /// cancellation point (the masked wait of rule R1).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> u32 {
        let Some(deadline) = deadline else {
            return self.wait();
        };
        loop {
            let state = self.state();
            if state != WAITING {
                return state;
            }
            if Instant::now() >= deadline {
                return WAITING;
            }
            thread::wait_until(deadline);
        }
    }

    /// Step 2 as a cancellation point: waits until a waker sets the state,
    /// `deadline` passes (`None`: never) or the thread is cancelled. The
    /// state is looked at first, so a wakeup that came before the
    /// cancellation wins (rule R2).
    pub(crate) fn wait_cancellable(&self, deadline: Option<Instant>) -> Waited {
        loop {
            let state = self.state();
            if state != WAITING {
                return Waited::Woken(state);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Waited::TimedOut;
            }
            match cancel::cancellable_wait(deadline) {
                Check::Continue => {}
                Check::Raise(cancelled) => return Waited::Cancelled(cancelled),
                Check::Unwinding => return Waited::Unwinding,
            }
        }
    }
}

/// A FIFO of waiters behind a lock never held across a wait.
pub(crate) struct WaitList {
    queue: Mutex<VecDeque<Arc<Waiter>>>,
}

/// The locked list: what wakers and enqueuers work on.
pub(crate) struct Locked<'a> {
    queue: MutexGuard<'a, VecDeque<Arc<Waiter>>>,
}

impl WaitList {
    crate::loom::const_fn! {
        pub(crate) fn new() -> WaitList {
            WaitList {
                queue: Mutex::new(VecDeque::new()),
            }
        }
    }

    /// Takes the list lock. Never poisoned in practice: nothing under it can
    /// panic except allocation failure, which aborts; ignore poison anyway.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            queue: self.queue.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Step 4 of the protocol: a waiter whose wait timed out or was
    /// cancelled leaves the list. Returns the wake reason if a waker popped
    /// it first (the wakeup is then the waiter's), or [`WAITING`] if it
    /// removed itself.
    pub(crate) fn withdraw(&self, waiter: &Arc<Waiter>) -> u32 {
        self.withdraw_locked(waiter).0
    }

    /// As [`withdraw`](WaitList::withdraw), keeping the list locked, for a
    /// primitive that must put its own state right in the same critical
    /// section (a lock's `QUEUED` bit).
    pub(crate) fn withdraw_locked(&self, waiter: &Arc<Waiter>) -> (u32, Locked<'_>) {
        let mut locked = self.lock();
        let state = waiter.state();
        if state == WAITING {
            // Still WAITING under the lock means still in the list.
            let index = locked.queue.iter().position(|w| Arc::ptr_eq(w, waiter));
            match index {
                Some(index) => {
                    locked.queue.remove(index);
                }
                None => panic!("spool::sync: WaitList::withdraw: waiting waiter not in its list"),
            }
        }
        (state, locked)
    }
}

impl Locked<'_> {
    pub(crate) fn push_back(&mut self, waiter: Arc<Waiter>) {
        self.queue.push_back(waiter);
    }

    pub(crate) fn push_front(&mut self, waiter: Arc<Waiter>) {
        self.queue.push_front(waiter);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many waiters there are.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// How many waiters at the head, in a row, satisfy `f`.
    pub(crate) fn count_front(&self, f: impl Fn(&Waiter) -> bool) -> usize {
        self.queue.iter().take_while(|w| f(w)).count()
    }

    pub(crate) fn front(&self) -> Option<&Arc<Waiter>> {
        self.queue.front()
    }

    /// Pops the head and sets its wake reason (under the lock: step 3).
    /// The caller unparks it with [`Woken::unpark`] after unlocking.
    pub(crate) fn wake_front(&mut self, reason: u32) -> Option<Woken> {
        let waiter = self.queue.pop_front()?;
        Some(Woken::new(waiter, reason))
    }

    /// Pops every waiter, setting each one's wake reason.
    pub(crate) fn wake_all(&mut self, reason: u32) -> Vec<Woken> {
        self.queue
            .drain(..)
            .map(|waiter| Woken::new(waiter, reason))
            .collect()
    }
}

/// A waiter taken off a list whose thread still has to be unparked.
#[must_use = "a woken waiter must be unparked"]
pub(crate) struct Woken {
    waiter: Arc<Waiter>,
}

impl Woken {
    fn new(waiter: Arc<Waiter>, reason: u32) -> Woken {
        debug_assert_ne!(reason, WAITING);
        // `Release`: publishes what the waker did before waking (see
        // "Memory orderings"); stored under the list lock (step 3).
        waiter.state.store(reason, Ordering::Release);
        Woken { waiter }
    }

    /// Wakes the thread (spool's internal wake, not the user's token); call
    /// after releasing the list lock.
    pub(crate) fn unpark(self) {
        self.waiter.thread.wake();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn withdraw_removes_a_waiting_waiter() {
        let list = WaitList::new();
        let (first, second) = (
            Waiter::new(0, Instant::now()),
            Waiter::new(1, Instant::now()),
        );
        list.lock().push_back(first.clone());
        list.lock().push_back(second.clone());
        assert_eq!(list.withdraw(&first), WAITING);
        // `second` is now the head, and waking it reaches it, not `first`.
        let woken = list.lock().wake_front(7).expect("second is queued");
        woken.unpark(); // leaves a wake token on this thread: consume it
        spool_runtime::wait();
        assert_eq!(second.state(), 7);
        assert_eq!(first.state(), WAITING);
        assert!(list.lock().is_empty());
    }

    #[test]
    fn withdraw_after_a_wake_consumes_the_wakeup() {
        let list = WaitList::new();
        let waiter = Waiter::new(0, Instant::now());
        list.lock().push_back(waiter.clone());
        let woken = list.lock().wake_front(3).expect("queued");
        // The waiter times out before the unpark arrives: it must report
        // the wakeup, not a timeout.
        assert_eq!(list.withdraw(&waiter), 3);
        woken.unpark();
        spool_runtime::wait();
        assert!(list.lock().is_empty());
    }

    #[test]
    fn wait_until_times_out_and_wait_returns_the_reason() {
        let list = WaitList::new();
        let waiter = Waiter::new(0, Instant::now());
        list.lock().push_back(waiter.clone());
        let deadline = Instant::now() + std::time::Duration::from_millis(5);
        assert_eq!(waiter.wait_until(Some(deadline)), WAITING);
        assert!(Instant::now() >= deadline);
        let woken = list.lock().wake_all(2);
        assert_eq!(woken.len(), 1);
        woken.into_iter().for_each(Woken::unpark);
        assert_eq!(waiter.wait(), 2);
    }
}
