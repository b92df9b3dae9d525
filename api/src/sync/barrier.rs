//! [`Barrier`]: std's barrier, on spool's [`Mutex`] and [`Condvar`], so
//! threads waiting at it park instead of blocking their worker.
//!
//! *Cancellation.* A waiter that is cancelled leaves its round: under the
//! mutex it takes its arrival back (`count -= 1`), so the round still
//! needs `n` live threads, and nobody is released by a thread that is no
//! longer there. If the round completed before it saw the cancellation
//! (the generation moved on), it returns normally instead (rule R2); the
//! leader's `notify_all` wakes every waiter, so no wakeup is passed on.

use std::fmt;

use spool_runtime::trace::WaitReason;

use super::condvar::{Condvar, Outcome, WhileUnwinding};
use super::mutex::Mutex;
use crate::loom::cancel;

/// Lets `n` threads wait for each other, like [`std::sync::Barrier`]: each
/// [`wait`](Barrier::wait) parks until `n` threads have called it, then
/// all return and the barrier is ready for the next round. Exactly one
/// caller per round is the leader.
///
/// ```
/// use spool::sync::{Arc, Barrier};
/// let barrier = Arc::new(Barrier::new(3));
/// let threads: Vec<_> = (0..3)
///     .map(|_| {
///         let b = Arc::clone(&barrier);
///         spool::thread::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = threads.into_iter().map(|t| t.join().unwrap());
/// assert_eq!(leaders.filter(|&leader| leader).count(), 1);
/// ```
pub struct Barrier {
    lock: Mutex<Round>,
    cvar: Condvar,
    num_threads: usize,
}

/// The current round: how many have arrived, and its number.
struct Round {
    count: usize,
    generation: usize,
}

/// What [`Barrier::wait`] returns: whether this caller is the round's
/// leader.
///
/// ```
/// let result = spool::sync::Barrier::new(1).wait();
/// assert!(result.is_leader());
/// ```
pub struct BarrierWaitResult(bool);

impl Barrier {
    crate::loom::const_fn! {
        /// A barrier for `n` threads (0 and 1 both let every caller through
        /// at once, each as leader); `const`, as std's.
        ///
        /// ```
        /// static GATE: spool::sync::Barrier = spool::sync::Barrier::new(1);
        /// assert!(GATE.wait().is_leader());
        /// ```
        #[must_use]
        pub fn new(n: usize) -> Barrier {
            Barrier {
                lock: Mutex::new(Round {
                    count: 0,
                    generation: 0,
                }),
                cvar: Condvar::new(),
                num_threads: n,
            }
        }
    }

    /// Parks until all `n` threads have called `wait` in this round. The
    /// last to arrive is the leader and wakes the others.
    ///
    /// # Cancellation
    /// A cancellation point: a cancelled thread leaves the round (it no
    /// longer counts as arrived, so the others wait for one more thread)
    /// and unwinds with [`Cancelled`](crate::cancel::Cancelled), unless the
    /// round completed first (then it returns normally, and the
    /// cancellation is raised at the next cancellation point). A thread
    /// already unwinding does not return early — a barrier that let a
    /// thread through before the round completed would be no barrier — but
    /// waits as usual (the masked wait).
    ///
    /// ```
    /// use spool::sync::{Arc, Barrier};
    /// let barrier = Arc::new(Barrier::new(2));
    /// let b = Arc::clone(&barrier);
    /// let other = spool::thread::spawn(move || b.wait().is_leader());
    /// let me = barrier.wait().is_leader();
    /// assert!(me ^ other.join().unwrap());
    /// ```
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        // Poison cannot arise: no user code runs while the lock is held.
        let mut round = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let generation = round.generation;
        round.count += 1;
        if round.count < self.num_threads {
            let reason = WaitReason::Barrier(crate::loom::object_id(self));
            while round.generation == generation {
                let (relocked, outcome) =
                    self.cvar
                        .wait_as(round, None, WhileUnwinding::Block, reason);
                round = relocked;
                if let Outcome::Cancelled(cancelled) = outcome {
                    if round.generation == generation {
                        // Leave the round, then unwind (dropping the guard).
                        round.count -= 1;
                        cancel::raise(cancelled);
                    }
                    // The round completed first: ours (rule R2).
                }
            }
            BarrierWaitResult(false)
        } else {
            round.count = 0;
            round.generation = round.generation.wrapping_add(1);
            self.cvar.notify_all();
            BarrierWaitResult(true)
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}

impl BarrierWaitResult {
    /// Whether this caller was the leader of its round (exactly one per
    /// round is).
    ///
    /// ```
    /// assert!(spool::sync::Barrier::new(0).wait().is_leader());
    /// ```
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl fmt::Debug for BarrierWaitResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWaitResult")
            .field("is_leader", &self.is_leader())
            .finish()
    }
}
