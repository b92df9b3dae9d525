//! Per-worker timers for `sleep`, `park_timeout` and spool's timed waits.
//! An entry ends a wait of one kind (`park::WaitKind`) without a token.
//!
//! # Why a binary heap and not a timing wheel
//! A hierarchical wheel (Varghese & Lauck, "Hashed and Hierarchical Timing
//! Wheels", 1987) gives O(1) insert and cancel but rounds deadlines to its
//! tick and costs a cascade every slot. Our timers live on one worker each,
//! are touched by one OS thread only, and are almost always either fired or
//! cancelled within milliseconds. A `BinaryHeap` ordered by deadline gives
//! O(log n) insert, O(1) peek for the worker's `epoll_wait` timeout, exact
//! deadlines (the only rounding is `epoll_wait`'s millisecond, rounded up),
//! and no ticking while idle.
//!
//! # Lazy cancellation
//! A timed wait that ends early (an `unpark` beats `park_timeout`) does not
//! search the heap. Each entry carries the green thread's wait generation;
//! the green thread bumps its generation when it resumes, so the entry is
//! stale and is skipped when it reaches the top. Stale entries are counted,
//! and once they are more than half of a large heap the heap is rebuilt
//! without them, bounding memory at twice the live timers.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use crate::park::WaitKind;
use crate::task::Task;

/// What a timer wakes: something with a wait generation.
pub(crate) trait Timed {
    /// The current wait generation; an entry armed under an older one is
    /// stale.
    fn generation(&self) -> u64;
}

impl Timed for Arc<Task> {
    fn generation(&self) -> u64 {
        self.wait_gen.get()
    }
}

struct Entry<T> {
    deadline: Instant,
    /// Insertion order: equal deadlines fire first-in first-out.
    seq: u64,
    generation: u64,
    kind: WaitKind,
    task: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// Reversed, so `BinaryHeap` (a max-heap) yields the earliest deadline.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// Smallest heap worth compacting.
const COMPACT_MIN: usize = 1024;

/// The timers of one worker.
pub(crate) struct Timers<T = Arc<Task>> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
    /// Entries known to be stale but still in the heap.
    stale: usize,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
            stale: 0,
        }
    }
}

impl<T: Timed> Timers<T> {
    /// Arms a timer for `task`'s current wait generation.
    pub(crate) fn insert(&mut self, deadline: Instant, kind: WaitKind, task: T) {
        self.seq += 1;
        let generation = task.generation();
        self.heap.push(Entry {
            deadline,
            seq: self.seq,
            generation,
            kind,
            task,
        });
    }

    /// Records that a timer armed earlier will be skipped as stale, and
    /// compacts the heap when stale entries dominate it.
    pub(crate) fn note_cancelled(&mut self) {
        self.stale += 1;
        if self.heap.len() >= COMPACT_MIN && self.stale * 2 > self.heap.len() {
            self.heap.retain(|e| e.generation == e.task.generation());
            self.stale = 0;
        }
    }

    /// The earliest armed deadline, if any (it may belong to a stale entry,
    /// which only makes the worker wake early once).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    /// Whether no timer is armed.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Pops every entry due at `now`, calling `wake` for each live one with
    /// the task and what kind of wait it ends.
    pub(crate) fn fire_expired(&mut self, now: Instant, mut wake: impl FnMut(T, WaitKind)) {
        while self.heap.peek().is_some_and(|e| e.deadline <= now) {
            let Some(entry) = self.heap.pop() else { break };
            if entry.generation == entry.task.generation() {
                wake(entry.task, entry.kind);
            } else {
                self.stale = self.stale.saturating_sub(1);
            }
        }
    }

    /// Drops every entry (runtime shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    #[derive(Clone)]
    struct Waiter(Rc<Cell<u64>>, u32);
    impl Timed for Waiter {
        fn generation(&self) -> u64 {
            self.0.get()
        }
    }

    fn waiter(n: u32) -> Waiter {
        Waiter(Rc::new(Cell::new(0)), n)
    }

    #[test]
    fn fires_in_deadline_order_and_fifo_on_ties() {
        let mut t = Timers::default();
        let now = Instant::now();
        t.insert(
            now + Duration::from_millis(3),
            WaitKind::Internal,
            waiter(3),
        );
        t.insert(now + Duration::from_millis(1), WaitKind::Park, waiter(1));
        t.insert(now + Duration::from_millis(1), WaitKind::Park, waiter(2));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(1)));
        let mut fired = Vec::new();
        t.fire_expired(now + Duration::from_millis(2), |w, k| fired.push((w.1, k)));
        assert_eq!(fired, vec![(1, WaitKind::Park), (2, WaitKind::Park)]);
        t.fire_expired(now + Duration::from_millis(3), |w, k| fired.push((w.1, k)));
        assert_eq!(fired.last(), Some(&(3, WaitKind::Internal)));
        assert!(t.is_empty());
    }

    #[test]
    fn stale_entries_are_skipped() {
        let mut t = Timers::default();
        let now = Instant::now();
        let w = waiter(7);
        t.insert(now, WaitKind::Park, w.clone());
        w.0.set(1); // the waiter resumed early: its entry is stale
        t.note_cancelled();
        let mut fired = 0;
        t.fire_expired(now, |_, _| fired += 1);
        assert_eq!(fired, 0);
        assert!(t.is_empty());
    }

    #[test]
    fn compaction_bounds_stale_entries() {
        let mut t = Timers::default();
        let far = Instant::now() + Duration::from_secs(3600);
        let live = waiter(0);
        t.insert(far, WaitKind::Park, live.clone());
        for i in 0..4 * COMPACT_MIN {
            let w = waiter(i as u32);
            t.insert(far, WaitKind::Park, w.clone());
            w.0.set(1);
            t.note_cancelled();
        }
        assert!(
            t.heap.len() <= COMPACT_MIN + 1,
            "heap kept {} entries",
            t.heap.len()
        );
        let mut fired = Vec::new();
        t.fire_expired(far, |w, _| fired.push(w.1));
        assert_eq!(fired, vec![0]);
    }
}
