//! The message store of a bounded channel (capacity ≥ 1): a lock-free ring
//! of slots, after Dmitry Vyukov's bounded MPMC queue (the design of
//! crossbeam-channel's `array` flavour). How it fits into the channel — who
//! is woken after a push or a pop — is "Buffered channels" at the top of
//! `chan.rs`.
//!
//! # Indices and stamps
//! `head` (next slot to pop) and `tail` (next slot to push) are *indices*:
//! `lap | position`, where `position < cap` sits in the low bits and the lap
//! counts in multiples of `one_lap` (a power of two above `cap`, doubled to
//! leave room for `mark_bit`). `tail` also carries `mark_bit` once the
//! channel is disconnected; `head` never does.
//!
//! Every slot has a `stamp`, which says whose turn the slot is:
//! * `stamp == tail` (for the tail index that points at it): empty, the
//!   sender whose CAS moves `tail` past this index owns it and writes it;
//! * `stamp == head + 1`: written, the receiver whose CAS moves `head` past
//!   this index owns it and takes the message out;
//! * after taking, the receiver sets `stamp = head + one_lap`: empty for
//!   the next lap.
//!
//! A slot is thus owned by exactly one party at a time: the index CAS
//! hands it out, the `stamp` store (`Release`) hands it over, and the
//! `stamp` load (`Acquire`) of the next owner receives it. That is the
//! whole argument for the `UnsafeCell` accesses below.
//!
//! # Claims and holes
//! A send is two steps: `claim` a slot (the CAS on `tail`), then `write`
//! it. A plain send does both at once; a `select` claims when it chooses a
//! send and writes when the user supplies the message. A claim that will
//! never carry a message (the selection was dropped, or the channel was
//! disconnected meanwhile) is written as a *hole* (`None`): receivers skip
//! it, so no index is ever left unwritten. While a slot is claimed but not
//! yet written, the ring looks empty from it on (a receiver cannot pass
//! it); the writer wakes receivers once it has written.
//!
//! # Ordering
//! The index CASes are `SeqCst`, and the full/empty checks put a `SeqCst`
//! fence between reading a slot's stamp and the opposite index, as in
//! Vyukov's queue: a sender that finds the slot still holding last lap's
//! message reports `Full` only if `head` has not moved, a receiver that
//! finds the slot not yet written reports `Empty` only if `tail` has not
//! moved. `len` reads both indices and retries until `tail` is stable.

use std::cell::UnsafeCell;
use std::ops::Deref;

use crate::loom::atomic::{fence, AtomicUsize, Ordering};
use crate::loom::hint;

/// Keeps `T` on a cache line (two, for the adjacent-line prefetcher) of its
/// own, so a sender's `tail` and a receiver's `head` do not bounce one line
/// between their cores.
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One message slot.
///
/// # Invariant
/// `msg` is accessed only by the slot's current owner, as described in
/// "Indices and stamps" at the top of this file, and is `None` whenever the
/// slot is empty.
struct Slot<T> {
    stamp: AtomicUsize,
    msg: UnsafeCell<Option<T>>,
}

/// The right to write one slot, from `Ring::claim`. Must be passed to
/// `Ring::write` exactly once (with a message or a hole).
pub(crate) struct Claim {
    position: usize,
    /// The stamp that marks the slot written: the claimed index + 1.
    stamp: usize,
}

/// Why a claim failed.
pub(crate) enum Refused {
    Full,
    Disconnected,
}

/// Outcome of a pop.
pub(crate) enum Pop<T> {
    Msg(T),
    /// Nothing to take now: no message, or the next one is claimed but not
    /// yet written.
    Empty,
    /// Empty for good: the channel is disconnected.
    Disconnected,
}

/// A bounded lock-free MPMC ring; see the top of this file.
pub(crate) struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    /// Set in `tail` once the channel is disconnected.
    mark_bit: usize,
    /// Index distance between a position and the same position one lap on.
    one_lap: usize,
}

// SAFETY: messages move between threads through the slots (hence `T:
// Send`), and each slot's `msg` is accessed by one owner at a time, handed
// over by its stamp (the `Slot` invariant), so sharing the ring is sound.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: owning a ring owns its `Option<T>`s.
unsafe impl<T: Send> Send for Ring<T> {}

/// Spins a little while another party finishes a step it has begun (a
/// concurrent CAS winner updating a stamp); never used to wait for a
/// message or a free slot (those park; see `chan.rs`).
fn spin(step: &mut u32) {
    // Under loom a spin is a yield; one is enough to let the other party on.
    let rounds = if cfg!(loom) {
        1
    } else {
        1u32 << (*step).min(6)
    };
    for _ in 0..rounds {
        hint::spin_loop();
    }
    *step += 1;
}

/// Loads `atomic` with `Acquire`; after a spin (`step > 0`), as a
/// read-modify-write, which reads the latest value in its modification
/// order. The hardware makes a store visible soon anyway; the C11 model
/// (and loom, which explores it) only promises that for a
/// read-modify-write, so a spin waiting for another party's store is
/// written to end under the model too.
#[inline]
fn load(atomic: &AtomicUsize, step: u32) -> usize {
    if step == 0 {
        atomic.load(Ordering::Acquire)
    } else {
        atomic.fetch_add(0, Ordering::AcqRel)
    }
}

impl<T> Ring<T> {
    /// A ring of `cap` slots.
    ///
    /// # Panics
    /// If `cap` is 0 or too large for the index layout.
    pub(crate) fn new(cap: usize) -> Ring<T> {
        assert!(cap > 0, "Ring::new: capacity 0 (rendezvous has no ring)");
        let mark_bit = (cap + 1)
            .checked_next_power_of_two()
            .expect("spool channel: capacity too large");
        let one_lap = mark_bit
            .checked_mul(2)
            .expect("spool channel: capacity too large");
        let slots = (0..cap)
            .map(|i| Slot {
                // Lap 0, position i: empty, for the sender of index i.
                stamp: AtomicUsize::new(i),
                msg: UnsafeCell::new(None),
            })
            .collect();
        Ring {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            slots,
            cap,
            mark_bit,
            one_lap,
        }
    }

    /// The index after `index` (wrapping to the next lap's position 0).
    #[inline]
    fn next(&self, index: usize) -> usize {
        let position = index & (self.mark_bit - 1);
        if position + 1 < self.cap {
            index + 1
        } else {
            (index & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Claims the slot at `tail` for one message.
    #[inline]
    pub(crate) fn claim(&self) -> Result<Claim, Refused> {
        let mut step = 0;
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return Err(Refused::Disconnected);
            }
            let position = tail & (self.mark_bit - 1);
            let slot = &self.slots[position];
            // Acquire: the receiver that emptied the slot last lap released
            // it with its stamp store; our write comes after its take.
            let stamp = load(&slot.stamp, step);
            if stamp == tail {
                match self.tail.compare_exchange_weak(
                    tail,
                    self.next(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return Ok(Claim {
                            position,
                            stamp: tail + 1,
                        })
                    }
                    Err(current) => {
                        tail = current;
                        spin(&mut step);
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's message: full, unless a
                // receiver has moved `head` and is about to free it.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(Refused::Full);
                }
                spin(&mut step);
                tail = load(&self.tail, step);
            } else {
                // Another sender claimed this index first.
                spin(&mut step);
                tail = load(&self.tail, step);
            }
        }
    }

    /// Writes a claimed slot: a message, or a hole (`None`) that receivers
    /// skip.
    ///
    /// # Safety
    /// `claim` came from `claim` on *this* ring.
    pub(crate) unsafe fn write(&self, claim: Claim, msg: Option<T>) {
        let slot = &self.slots[claim.position];
        // SAFETY: `claim` came from this ring's CAS on `tail` (the
        // contract) and is consumed here (it is not `Clone`), so we are the
        // slot's one owner until the stamp store below hands it to a
        // receiver (the `Slot` invariant).
        unsafe { *slot.msg.get() = msg };
        // Release hands the slot over. `SeqCst` and a read-modify-write
        // rather than a store: the caller's `SeqCst` load of the waiting
        // count must not be ordered before it (x86 would let a plain store
        // wait in the store buffer past that load); see "Buffered
        // channels" in `chan.rs`.
        slot.stamp.swap(claim.stamp, Ordering::SeqCst);
    }

    /// Takes the next message. `freed` is set when a slot was freed (a
    /// message or a hole taken), so the caller can wake a blocked sender.
    #[inline]
    pub(crate) fn pop(&self, freed: &mut bool) -> Pop<T> {
        let mut step = 0;
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let position = head & (self.mark_bit - 1);
            let slot = &self.slots[position];
            // Acquire: pairs with the writer's Release stamp store, so the
            // message it wrote is visible.
            let stamp = load(&slot.stamp, step);
            if stamp == head + 1 {
                let next = self.next(head);
                match self.head.compare_exchange_weak(
                    head,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp said "written" for this index
                        // and our CAS moved `head` past it, so we are the
                        // slot's one owner until the stamp store below.
                        let msg = unsafe { (*slot.msg.get()).take() };
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        *freed = true;
                        match msg {
                            Some(msg) => return Pop::Msg(msg),
                            // A hole: skip it.
                            None => head = next,
                        }
                    }
                    Err(current) => {
                        head = current;
                        spin(&mut step);
                    }
                }
            } else if stamp == head {
                // Not written for this lap: empty, unless a sender has
                // claimed the index and is writing it (or a select holds
                // the claim); either way nothing to take now.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !self.mark_bit == head && tail & self.mark_bit != 0 {
                    return Pop::Disconnected;
                }
                return Pop::Empty;
            } else {
                // Another receiver took this index first.
                spin(&mut step);
                head = load(&self.head, step);
            }
        }
    }

    /// Whether the slot at `head` is written (a message or a hole): a pop
    /// would take something. A hint, for readiness checks.
    pub(crate) fn has_message(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let position = head & (self.mark_bit - 1);
        self.slots[position].stamp.load(Ordering::SeqCst) == head + 1
    }

    /// Whether a claim would not report `Full` now (it may still have to
    /// wait out another party's step). A hint, for readiness checks.
    pub(crate) fn has_room(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        if tail & self.mark_bit != 0 {
            return true;
        }
        let stamp = self.slots[tail & (self.mark_bit - 1)]
            .stamp
            .load(Ordering::SeqCst);
        stamp.wrapping_add(self.one_lap) != tail + 1
            || self.head.load(Ordering::SeqCst).wrapping_add(self.one_lap) != tail
    }

    /// Marks the ring disconnected: claims fail from now on, and a pop
    /// that finds it empty reports `Disconnected`. Returns whether this
    /// call set the mark.
    pub(crate) fn disconnect(&self) -> bool {
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst) & self.mark_bit == 0
    }

    /// Whether `disconnect` was called.
    pub(crate) fn is_disconnected(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// Claimed slots (messages, holes, claims not yet written).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            // A consistent pair: `tail` did not move while we read `head`.
            if self.tail.load(Ordering::SeqCst) == tail {
                let tail = tail & !self.mark_bit;
                let (h, t) = (head & (self.mark_bit - 1), tail & (self.mark_bit - 1));
                return if h < t {
                    t - h
                } else if h > t {
                    self.cap - h + t
                } else if tail == head {
                    0
                } else {
                    self.cap
                };
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn push(ring: &Ring<u32>, v: u32) -> bool {
        match ring.claim() {
            Ok(claim) => {
                // SAFETY: claimed on this ring.
                unsafe { ring.write(claim, Some(v)) };
                true
            }
            Err(_) => false,
        }
    }

    fn pop(ring: &Ring<u32>) -> Option<u32> {
        match ring.pop(&mut false) {
            Pop::Msg(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn fills_wraps_and_counts() {
        for cap in [1, 2, 3, 7, 8] {
            let ring = Ring::new(cap);
            for lap in 0..5u32 {
                for i in 0..cap as u32 {
                    assert!(push(&ring, lap * 100 + i));
                    assert_eq!(ring.len(), i as usize + 1);
                }
                assert!(!push(&ring, 999), "full at cap {cap}");
                assert!(!ring.has_room());
                for i in 0..cap as u32 {
                    assert!(ring.has_message());
                    assert_eq!(pop(&ring), Some(lap * 100 + i));
                }
                assert_eq!(pop(&ring), None);
                assert_eq!(ring.len(), 0);
            }
        }
    }

    #[test]
    fn holes_are_skipped_and_claims_block_later_messages() {
        let ring = Ring::new(3);
        let claim = ring.claim().ok().unwrap();
        assert!(push(&ring, 2));
        // The claimed slot is not written yet: nothing to take past it.
        assert_eq!(pop(&ring), None);
        assert_eq!(ring.len(), 2);
        // SAFETY: claimed on this ring.
        unsafe { ring.write(claim, None) };
        let mut freed = false;
        assert!(matches!(ring.pop(&mut freed), Pop::Msg(2)));
        assert!(freed);
    }

    #[test]
    fn disconnect_fails_claims_and_ends_pops_after_draining() {
        let ring = Ring::new(2);
        assert!(push(&ring, 1));
        assert!(ring.disconnect());
        assert!(!ring.disconnect());
        assert!(matches!(ring.claim(), Err(Refused::Disconnected)));
        assert_eq!(pop(&ring), Some(1));
        assert!(matches!(ring.pop(&mut false), Pop::Disconnected));
    }

    #[test]
    fn unreceived_messages_drop_with_the_ring() {
        let witness = std::sync::Arc::new(());
        let ring = Ring::new(4);
        for _ in 0..3 {
            let claim = ring.claim().ok().unwrap();
            // SAFETY: claimed on this ring.
            unsafe { ring.write(claim, Some(witness.clone())) };
        }
        drop(ring);
        assert_eq!(std::sync::Arc::strong_count(&witness), 1);
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The slot hand-over alone: a message written by one
    //! thread is popped whole by another (the wait protocol around it is
    //! modelled in `chan.rs`).
    use super::*;
    use ::loom::sync::Arc;
    use ::loom::thread;

    #[test]
    fn a_written_slot_is_popped_once() {
        ::loom::model(|| {
            let ring = Arc::new(Ring::new(1));
            let r2 = ring.clone();
            let t = thread::spawn(move || {
                let claim = r2.claim().ok().unwrap();
                // SAFETY: claimed on this ring.
                unsafe { r2.write(claim, Some(7u32)) };
            });
            loop {
                if let Pop::Msg(v) = ring.pop(&mut false) {
                    assert_eq!(v, 7);
                    break;
                }
                thread::yield_now();
            }
            t.join().unwrap();
        });
    }
}
