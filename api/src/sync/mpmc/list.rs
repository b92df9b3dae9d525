//! The message store of an unbounded channel: a lock-free linked list of
//! fixed-size blocks of slots, after the unbounded queue of
//! crossbeam-channel's `list` flavour (itself a block-linked relative of
//! Dmitry Vyukov's bounded queue that `ring.rs` follows). How it fits into
//! the channel — who is woken after a push — is "Unbounded channels" at the
//! top of `chan.rs`.
//!
//! # Positions and blocks
//! Every message gets a *position*, counted up from 0 by the senders. A
//! block holds `SLOTS` consecutive positions; the list reserves one more,
//! the block's *gate* (offset `SLOTS`, which holds no slot), so that a
//! block spans `LAP = SLOTS + 1` positions. An index stores
//! `position << SHIFT | flag`:
//! * `tail.index` — the next position to claim for a send; its flag
//!   (`MARK`) says the channel is disconnected (no more sends).
//! * `head.index` — the next position to claim for a receive; its flag
//!   says "the head block is not the last one", so a receiver need not
//!   look at `tail` to know that the slot at `head` is claimed by a sender.
//!
//! Next to each index sits the block that holds it (`tail.block`,
//! `head.block`). An index sits on its block's gate only while the party
//! that moved it there links the next block: the sender that claimed a
//! block's last slot allocates the next block (before its claim, so the
//! others wait as briefly as possible), installs it in `tail.block`, steps
//! `tail.index` over the gate and links it from the full block's `next`;
//! the receiver that claimed a block's last slot waits for that `next`,
//! installs it in `head.block` and steps `head.index` over the gate.
//! Everybody else who finds an index on a gate waits (spins) for those few
//! instructions. The first block is allocated by the first send (an unused
//! channel allocates nothing), installed with a CAS on `tail.block` from
//! null.
//!
//! # Slots
//! A slot's `state` has three bits:
//! * `WRITE` — the sender that claimed the slot has written its message;
//! * `READ` — the receiver that claimed the slot has moved the message
//!   out, and will not touch the block again;
//! * `DESTROY` — the block's destroyer passed this slot while its receiver
//!   was still busy: that receiver, on setting `READ`, takes over the
//!   destruction (below).
//!
//! A slot is owned by one party at a time: the CAS on `tail.index` gives it
//! to one sender, which writes the message and sets `WRITE` (`Release`);
//! the CAS on `head.index` gives it to one receiver, which waits for
//! `WRITE` (`Acquire`: the message is there) and moves the message out.
//! That is the whole argument for the slot's `UnsafeCell`.
//!
//! # Who frees a block, and when
//! A block is freed exactly once, by the receiver that is the last to be
//! done with it, and only when nobody else can still touch it:
//! 1. Senders are done with a block before its receivers are: a sender
//!    touches a block only after its `tail` CAS claimed one of its slots,
//!    and its last access is the `WRITE` of that slot (the sender of the
//!    last slot links `next` before writing). A receiver waits for `WRITE`
//!    with `Acquire` before anything else, so every sender access to the
//!    slot happens before the receiver's.
//! 2. A receiver touches the block only after its `head` CAS claimed a
//!    slot, until it sets `READ` on it (`AcqRel`, its last access).
//! 3. The receiver of the block's **last** slot starts the destruction
//!    once it has moved its message out (it sets no `READ`: it is the
//!    destroyer). It walks the other slots in order; a slot with `READ`
//!    set is done (its receiver's accesses happen before, by the
//!    `Acquire` load or `AcqRel` RMW that saw the bit). At the first slot
//!    without `READ`, it sets `DESTROY` with an `AcqRel` RMW; if `READ`
//!    is still clear in the value that RMW replaced, that slot's receiver
//!    is still busy and the destroyer stops, touching the block no more.
//!    That receiver's own RMW setting `READ` comes later in the slot's
//!    modification order, so it returns `DESTROY` set: the receiver then
//!    resumes the walk after its slot. Exactly one party gets past the
//!    last slot to check — the two RMWs on a slot's state are ordered, and
//!    only the later one sees the other's bit — and frees the block.
//! 4. No index or pointer reaches a freed block: by the time all its
//!    slots are read, `head` has moved to the next block (the last slot's
//!    receiver installed it before reading), and `tail` had moved on
//!    before the last slot was written. A party that loaded a stale
//!    `head.block` or `tail.block` dereferences it only after its CAS on
//!    the matching index succeeded, which the moved index forbids (indices
//!    only grow, so a CAS from an old value fails).
//!
//! When the last receiver leaves, `discard` drops what is queued and frees
//! every block itself, alone (no receiver is left to race with): it marks
//! `tail` first, so no new claim is made, waits for the senders that
//! claimed before the mark to write (a few instructions each), and leaves
//! `head` equal to `tail` with no block. When the channel is dropped,
//! `Drop` does the same with exclusive access.
//!
//! # Ordering
//! The index CASes are `SeqCst`. A receiver that may have reached the tail
//! block (no flag in `head`) reads `tail` with `SeqCst` and reports
//! `Empty` (or `Disconnected`) only if `tail` equals `head`: no send
//! claimed a position before that load in the `SeqCst` order. Vyukov's
//! queue (and `ring.rs`) put a `SeqCst` fence between the two index reads
//! instead; here it is not needed: `head` is read with `Acquire`, every
//! receiver that moved `head` had read a `tail` beyond it (or a flag set
//! by one that had), and those reads happen before ours, so a `head` we
//! see is never ahead of the `tail` we read next; and an `Empty` is not
//! trusted for sleeping: a receiver that is about to wait re-checks the
//! list after the handshake's own fence (see "Unbounded channels" in
//! `chan.rs`), whose argument rests on the same `SeqCst` CAS of a send.
//! Disconnection is a `SeqCst` RMW on `tail`, so a `tail` carrying the
//! mark counts every claim made before it: `Disconnected` comes only
//! after the last of them is received.
//!
//! Block pointers are published with `Release` and loaded with `Acquire`,
//! always *before* the index that makes them current is released, and
//! every party loads an index *before* the block pointer next to it: it
//! then sees (at least) the block that index lies in, and a newer block
//! only comes with an index that has moved on, so its CAS fails. (Loaded
//! the other way round, the index may already have left the block, the CAS
//! succeed, and the claim land in the wrong block.) `next` is published with `Release` and waited for with `Acquire`.
//! Slot states: `WRITE` with `Release` / `Acquire` (the message), `READ`
//! and `DESTROY` with `AcqRel` (see "Who frees a block").

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

use crate::loom::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::loom::hint;

use super::ring::{CachePadded, Pop};

/// Slots per block. Loom gets two, so that its models cross a block
/// boundary (and the gate) within a few messages.
#[cfg(not(loom))]
const SLOTS: usize = 63;
#[cfg(loom)]
const SLOTS: usize = 2;
/// Positions per block: the slots and the gate. A power of two outside
/// loom, so that offsets survive the indices' wrapping.
const LAP: usize = SLOTS + 1;
/// Low index bits reserved for the flag.
const SHIFT: usize = 1;
/// The index flag: "disconnected" in `tail`, "not the last block" in
/// `head`.
const MARK: usize = 1;

/// Slot state bits; see "Slots".
const WRITE: usize = 1;
const READ: usize = 2;
const DESTROY: usize = 4;

/// A message cell: std's `UnsafeCell` normally, loom's under loom (which
/// then reports two unordered accesses to a message as a data race).
struct MsgCell<T> {
    #[cfg(not(loom))]
    cell: std::cell::UnsafeCell<MaybeUninit<T>>,
    #[cfg(loom)]
    cell: ::loom::cell::UnsafeCell<MaybeUninit<T>>,
}

impl<T> MsgCell<T> {
    /// An empty cell (outside loom, blocks are zeroed instead).
    #[cfg(loom)]
    fn new() -> MsgCell<T> {
        MsgCell {
            cell: ::loom::cell::UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Moves `msg` in.
    ///
    /// # Safety
    /// The caller owns the slot (see "Slots") and it holds no message.
    unsafe fn write(&self, msg: T) {
        #[cfg(not(loom))]
        // SAFETY: the caller owns the cell (the contract).
        unsafe {
            (*self.cell.get()).write(msg);
        }
        #[cfg(loom)]
        self.cell.with_mut(|cell| {
            // SAFETY: as above.
            unsafe { (*cell).write(msg) };
        });
    }

    /// Moves the message out.
    ///
    /// # Safety
    /// The caller owns the slot and it holds a message, which the caller
    /// treats as gone afterwards.
    unsafe fn read(&self) -> T {
        #[cfg(not(loom))]
        // SAFETY: the caller owns the cell, which holds a message.
        unsafe {
            (*self.cell.get()).assume_init_read()
        }
        #[cfg(loom)]
        self.cell.with_mut(|cell| {
            // SAFETY: as above.
            unsafe { (*cell).assume_init_read() }
        })
    }

    /// Drops the message in place.
    ///
    /// # Safety
    /// As for `read`.
    unsafe fn drop_in_place(&self) {
        #[cfg(not(loom))]
        // SAFETY: the caller owns the cell, which holds a message.
        unsafe {
            (*self.cell.get()).assume_init_drop();
        }
        #[cfg(loom)]
        self.cell.with_mut(|cell| {
            // SAFETY: as above.
            unsafe { (*cell).assume_init_drop() };
        });
    }
}

/// One message slot; see "Slots".
struct Slot<T> {
    msg: MsgCell<T>,
    state: AtomicUsize,
}

/// A block of `SLOTS` slots and the link to the next block.
///
/// # Invariant
/// Allocated by `Block::alloc` (the global allocator, `Block<T>`'s
/// layout), freed once with `Block::free`, by the party "Who frees a
/// block" names. A message in a slot is owned by the list, not the block
/// (the block has no `Drop`): it is moved out or dropped by `read`,
/// `discard` or the list's `Drop`.
struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; SLOTS],
}

impl<T> Block<T> {
    /// A new empty block: every state 0, `next` null, no message.
    fn alloc() -> *mut Block<T> {
        #[cfg(not(loom))]
        {
            let layout = std::alloc::Layout::new::<Block<T>>();
            // SAFETY: `Block<T>` is not zero-sized (it holds an atomic). All
            // zeroes is a valid empty block: zero atomics, a null pointer,
            // and uninitialised messages.
            let block = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Block<T>>();
            if block.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            block
        }
        #[cfg(loom)]
        {
            Box::into_raw(Box::new(Block {
                next: AtomicPtr::new(ptr::null_mut()),
                slots: std::array::from_fn(|_| Slot {
                    msg: MsgCell::new(),
                    state: AtomicUsize::new(0),
                }),
            }))
        }
    }

    /// Frees a block (its messages must be gone).
    ///
    /// # Safety
    /// `block` came from `alloc`, is freed once, and nobody touches it
    /// afterwards (see "Who frees a block").
    unsafe fn free(block: *mut Block<T>) {
        // Under loom, freeing writes every slot's cell, so loom reports a
        // free that is not ordered after some party's access to a message
        // (a broken "Who frees a block") as a race.
        #[cfg(loom)]
        // SAFETY: the contract: the block is alive until just below.
        for slot in unsafe { &(*block).slots } {
            slot.msg.cell.with_mut(|_| ());
        }
        // SAFETY: `alloc` allocated it with the global allocator and
        // `Block<T>`'s layout, as `Box` does (the contract); dropping the
        // box drops no message (`MaybeUninit`).
        drop(unsafe { Box::from_raw(block) });
    }

    /// Waits for the sender that claimed this block's last slot to link
    /// the next block.
    fn wait_next(&self) -> *mut Block<T> {
        let mut step = 0;
        loop {
            // Acquire: the new block's initialisation (its allocation)
            // happens before we use it.
            let next = load_ptr(&self.next, step);
            if !next.is_null() {
                return next;
            }
            spin(&mut step);
        }
    }

    /// Continues the destruction of `block` from slot `start` (see "Who
    /// frees a block"): frees it unless a receiver is still busy with a
    /// slot, which then carries on.
    ///
    /// # Safety
    /// The caller is the destroyer: the receiver of the block's last slot,
    /// done with it (`start == 0`), or the receiver of slot `start - 1`,
    /// done with it, whose `READ` found `DESTROY` set.
    unsafe fn destroy(block: *mut Block<T>, start: usize) {
        // The last slot is not checked: its receiver started the walk.
        for offset in start..SLOTS - 1 {
            // SAFETY: the block is alive: we are the destroyer, and it is
            // freed only at the end of this walk.
            let slot = unsafe { &(*block).slots[offset] };
            // Acquire (load and RMW): a `READ` we see was set by the slot's
            // receiver with `AcqRel` after its last access, which thus
            // happens before our free. AcqRel on the RMW: if we stop here,
            // our accesses happen before the receiver's, which frees.
            if slot.state.load(Ordering::Acquire) & READ == 0
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                return;
            }
        }
        // SAFETY: every slot's receiver is done (`READ`), the last one's is
        // us, and no index leads here any more (point 4 of "Who frees a
        // block"); we are the one party to get this far.
        unsafe { Block::free(block) };
    }
}

/// An index and the block it lies in.
struct Position<T> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
}

impl<T> Position<T> {
    fn new() -> Position<T> {
        Position {
            index: AtomicUsize::new(0),
            block: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// An unbounded lock-free MPMC queue; see the top of this file.
pub(crate) struct List<T> {
    head: CachePadded<Position<T>>,
    tail: CachePadded<Position<T>>,
    /// The list owns its messages (dropped in `Drop`).
    _owns: PhantomData<T>,
}

// SAFETY: messages move between threads through the slots (hence `T:
// Send`), each slot's message is accessed by one owner at a time (see
// "Slots"), and blocks are freed once, when nobody can reach them (see
// "Who frees a block"), so sharing the list is sound.
unsafe impl<T: Send> Sync for List<T> {}
// SAFETY: owning a list owns its messages and blocks.
unsafe impl<T: Send> Send for List<T> {}

/// Spins a little while another party finishes a step it has begun (a
/// sender linking a block, a claimed slot being written); never used to
/// wait for a message (that parks; see `chan.rs`). Those steps take a few
/// instructions, and green threads are not preempted, so the other party
/// is running: only the OS can hold it up, and after a while we give our
/// core back to the OS.
fn spin(step: &mut u32) {
    if cfg!(loom) {
        // A spin is a yield under loom; one lets the other party on.
        hint::spin_loop();
    } else if *step < 7 {
        for _ in 0..1u32 << *step {
            hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
    *step = step.saturating_add(1);
}

/// Loads `atomic` with `Acquire`. Under loom, after a spin (`step > 0`),
/// as a read-modify-write, which reads the latest value in the
/// modification order: the C11 model (and loom, which explores it)
/// promises that a spinning plain load eventually sees another party's
/// store only for a read-modify-write (see `ring.rs`'s `load`).
#[inline]
fn load(atomic: &AtomicUsize, step: u32) -> usize {
    if cfg!(loom) && step > 0 {
        atomic.fetch_add(0, Ordering::AcqRel)
    } else {
        atomic.load(Ordering::Acquire)
    }
}

/// `load` for a block pointer.
fn load_ptr<T>(atomic: &AtomicPtr<T>, step: u32) -> *mut T {
    if cfg!(loom) && step > 0 {
        match atomic.fetch_update(Ordering::AcqRel, Ordering::Acquire, Some) {
            Ok(value) | Err(value) => value,
        }
    } else {
        atomic.load(Ordering::Acquire)
    }
}

/// Stores a block pointer with `Release`, as a swap. Every write of an
/// atomic that others spin on (`next`, the blocks, `head.index`) is a
/// read-modify-write, like the spinners' loads under loom (`load_ptr`),
/// so that loom orders the two as the hardware does: loom may place a
/// plain store before a concurrent read-modify-write in the modification
/// order while that read-modify-write read the older value, an execution
/// no real machine produces, which made the models' spins never end. It
/// costs a locked instruction once per block.
fn publish<T>(atomic: &AtomicPtr<T>, value: *mut T) {
    atomic.swap(value, Ordering::Release);
}

/// The position an index stands for, a gate counting as the first
/// position of the next block (which is what it is about to become).
#[inline]
fn position(index: usize) -> usize {
    let position = index >> SHIFT;
    if position % LAP == SLOTS {
        position.wrapping_add(1)
    } else {
        position
    }
}

impl<T> List<T> {
    /// An empty list (no block yet).
    pub(crate) fn new() -> List<T> {
        List {
            head: CachePadded(Position::new()),
            tail: CachePadded(Position::new()),
            _owns: PhantomData,
        }
    }

    /// Appends `msg`; fails with it once the list is disconnected.
    pub(crate) fn push(&self, msg: T) -> Result<(), T> {
        let mut step = 0;
        // Acquire: a block installed before this index was released is
        // visible to the block load that follows.
        let mut tail = self.tail.index.load(Ordering::Acquire);
        let mut block = self.tail.block.load(Ordering::Acquire);
        // The next block, allocated before we claim a block's last slot.
        let mut next_block: *mut Block<T> = ptr::null_mut();
        let claimed = loop {
            if tail & MARK != 0 {
                break None;
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == SLOTS {
                // On the gate: the sender of the last slot is installing
                // the next block.
                spin(&mut step);
                tail = load(&self.tail.index, step);
                block = load_ptr(&self.tail.block, step);
                continue;
            }
            if block.is_null() {
                // The first send: install the first block. Release: its
                // initialisation happens before anyone uses it (Acquire).
                let first = if next_block.is_null() {
                    Block::alloc()
                } else {
                    std::mem::replace(&mut next_block, ptr::null_mut())
                };
                match self.tail.block.compare_exchange(
                    ptr::null_mut(),
                    first,
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        publish(&self.head.block, first);
                        block = first;
                    }
                    Err(_) => {
                        // Another sender installed one; keep ours for later.
                        // Index first, then block, as everywhere: the block
                        // we use must be at least as new as the index (a
                        // block read before the index may be one the index
                        // has already left, and our CAS from that index
                        // would then succeed with the wrong block).
                        next_block = first;
                        tail = self.tail.index.load(Ordering::Acquire);
                        block = self.tail.block.load(Ordering::Acquire);
                        continue;
                    }
                }
            }
            if offset + 1 == SLOTS && next_block.is_null() {
                next_block = Block::alloc();
            }
            // SeqCst: the claim is what receivers' `Empty` checks and the
            // channel's wake-up handshake order against (see "Ordering").
            // Acquire on failure: the block load that follows.
            match self.tail.index.compare_exchange_weak(
                tail,
                tail.wrapping_add(1 << SHIFT),
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == SLOTS {
                        let next = std::mem::replace(&mut next_block, ptr::null_mut());
                        // Install the next block before stepping over the
                        // gate (Release: senders that acquire the new index
                        // see the block), then link it for the receivers.
                        publish(&self.tail.block, next);
                        self.tail.index.fetch_add(1 << SHIFT, Ordering::Release);
                        // SAFETY: our CAS claimed a slot of `block`, whose
                        // receiver is not done before our `WRITE` below,
                        // so the block is alive.
                        let full = unsafe { &*block };
                        publish(&full.next, next);
                    }
                    break Some((block, offset));
                }
                Err(current) => {
                    tail = current;
                    block = self.tail.block.load(Ordering::Acquire);
                    spin(&mut step);
                }
            }
        };
        if !next_block.is_null() {
            // SAFETY: allocated above and never published.
            unsafe { Block::free(next_block) };
        }
        let Some((block, offset)) = claimed else {
            return Err(msg);
        };
        // SAFETY: our CAS claimed this slot, so we own it (see "Slots") and
        // the block lives until its receiver is done, after our `WRITE`.
        let slot = unsafe { &(*block).slots[offset] };
        // SAFETY: we own the slot, which is empty.
        unsafe { slot.msg.write(msg) };
        // Release: the message is written before a receiver that sees
        // `WRITE` (Acquire) reads it. An RMW: a destroyer may set
        // `DESTROY` concurrently.
        slot.state.fetch_or(WRITE, Ordering::Release);
        Ok(())
    }

    /// Takes the next message.
    pub(crate) fn pop(&self) -> Pop<T> {
        let mut step = 0;
        let mut head = self.head.index.load(Ordering::Acquire);
        let mut block = self.head.block.load(Ordering::Acquire);
        let (block, offset) = loop {
            let offset = (head >> SHIFT) % LAP;
            if offset == SLOTS {
                // On the gate: the receiver of the last slot is installing
                // the next block.
                spin(&mut step);
                head = load(&self.head.index, step);
                block = load_ptr(&self.head.block, step);
                continue;
            }
            let mut new_head = head.wrapping_add(1 << SHIFT);
            if head & MARK == 0 {
                // The head block may be the tail block: is there a claimed
                // position at `head`? SeqCst: we see every claim that
                // precedes this load in the SeqCst order (see "Ordering").
                let tail = self.tail.index.load(Ordering::SeqCst);
                if head >> SHIFT == tail >> SHIFT {
                    return if tail & MARK != 0 {
                        Pop::Disconnected
                    } else {
                        Pop::Empty
                    };
                }
                if (head >> SHIFT) / LAP != (tail >> SHIFT) / LAP {
                    // The tail is in a later block: so is every later head
                    // of this block.
                    new_head |= MARK;
                }
            }
            if block.is_null() {
                // The first block is being installed (its sender stores
                // `head.block` just after `tail.block`).
                spin(&mut step);
                head = load(&self.head.index, step);
                block = load_ptr(&self.head.block, step);
                continue;
            }
            // SeqCst: ordered with the `tail` reads of other receivers'
            // checks. Acquire on failure: the block load that follows.
            match self.head.index.compare_exchange_weak(
                head,
                new_head,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => break (block, offset),
                Err(current) => {
                    head = current;
                    block = self.head.block.load(Ordering::Acquire);
                    spin(&mut step);
                }
            }
        };
        if offset + 1 == SLOTS {
            // We claimed the block's last slot: move `head` to the next
            // block (it exists: our slot's sender links it).
            // SAFETY: we claimed a slot of `block`, which is alive until
            // we are done with it (we are its destroyer).
            let next = unsafe { (*block).wait_next() };
            let mut next_index = (head & !MARK).wrapping_add(2 << SHIFT);
            // SAFETY: `next` is alive: no slot of it is read before `head`
            // reaches it, which is our store below. Relaxed: a hint (a
            // clear flag only makes receivers look at `tail`).
            if !unsafe { (*next).next.load(Ordering::Relaxed) }.is_null() {
                next_index |= MARK;
            }
            // Block first, then index (Release): a receiver that acquires
            // the new index sees the new block.
            publish(&self.head.block, next);
            self.head.index.swap(next_index, Ordering::Release);
        }
        // SAFETY: our CAS claimed this slot (see "Slots"); the block is
        // alive until we set `READ` (or, for the last slot, destroy it).
        let slot = unsafe { &(*block).slots[offset] };
        let mut step = 0;
        // Acquire: the sender's message write happens before our read.
        while load(&slot.state, step) & WRITE == 0 {
            spin(&mut step);
        }
        // SAFETY: we own the slot and `WRITE` says it holds the message,
        // which we move out once.
        let msg = unsafe { slot.msg.read() };
        if offset + 1 == SLOTS {
            // SAFETY: we received the last slot: we start the destruction.
            unsafe { Block::destroy(block, 0) };
        } else if slot.state.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
            // AcqRel: our read of the slot happens before a destroyer that
            // sees `READ`; we see the destroyer's walk if it stopped here.
            // SAFETY: the destroyer stopped at our slot: we carry on.
            unsafe { Block::destroy(block, offset + 1) };
        }
        Pop::Msg(msg)
    }

    /// Whether a pop would find a message, or a claimed slot about to be
    /// written (a hint, for readiness checks and the wait handshake).
    /// `SeqCst` loads: the handshake reads them after its fence.
    pub(crate) fn has_message(&self) -> bool {
        let head = self.head.index.load(Ordering::SeqCst);
        let tail = self.tail.index.load(Ordering::SeqCst);
        position(head) != position(tail)
    }

    /// Marks the list disconnected: pushes fail from now on, and a pop
    /// that finds it empty reports `Disconnected`. Returns whether this
    /// call set the mark. `SeqCst`: ordered with the claims' CASes (a claim
    /// either precedes the mark, and is received or discarded, or fails).
    pub(crate) fn disconnect(&self) -> bool {
        self.tail.index.fetch_or(MARK, Ordering::SeqCst) & MARK == 0
    }

    /// Whether `disconnect` was called.
    pub(crate) fn is_disconnected(&self) -> bool {
        self.tail.index.load(Ordering::SeqCst) & MARK != 0
    }

    /// Claimed positions (messages, and sends still writing theirs).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.index.load(Ordering::SeqCst);
            let head = self.head.index.load(Ordering::SeqCst);
            // A consistent pair: `tail` did not move while we read `head`.
            if self.tail.index.load(Ordering::SeqCst) == tail {
                let (head, tail) = (position(head), position(tail));
                // Count from the start of head's block, where the gates
                // between are one per `LAP` positions.
                let base = head - head % LAP;
                let (head, tail) = (head - base, tail.wrapping_sub(base) & (usize::MAX >> SHIFT));
                return tail - head - tail / LAP;
            }
        }
    }

    /// Drops every queued message and frees every block, once the last
    /// receiver is gone (the channel is disconnected first, so no new
    /// claim is made).
    ///
    /// # Safety
    /// `disconnect` was called, no receiver is left (nobody pops, now or
    /// later), and this is called once.
    pub(crate) unsafe fn discard(&self) {
        // Wait until no sender is on a gate: a sender of a last slot still
        // steps `tail` over it after the mark (the mark only stops new
        // claims), and the positions to drop end at `tail`.
        let mut step = 0;
        let mut tail = load(&self.tail.index, step);
        while (tail >> SHIFT) % LAP == SLOTS {
            spin(&mut step);
            tail = load(&self.tail.index, step);
        }
        let mut head = self.head.index.load(Ordering::Acquire);
        // Take the block: a first block installed after this (by a send
        // that then failed on the mark) stays for `Drop` to free.
        let mut block = self.head.block.swap(ptr::null_mut(), Ordering::AcqRel);
        let mut step = 0;
        while block.is_null() && head >> SHIFT != tail >> SHIFT {
            // A message was claimed, but the first block's sender has not
            // stored `head.block` yet.
            spin(&mut step);
            block = self.head.block.swap(ptr::null_mut(), Ordering::AcqRel);
        }
        while head >> SHIFT != tail >> SHIFT {
            let offset = (head >> SHIFT) % LAP;
            if offset < SLOTS {
                // SAFETY: no receiver is left, so the blocks from `head` on
                // are ours to free, and the slot's claim preceded the mark
                // (it is below `tail`).
                let slot = unsafe { &(*block).slots[offset] };
                let mut step = 0;
                // Acquire: the message was written before we drop it.
                while load(&slot.state, step) & WRITE == 0 {
                    spin(&mut step);
                }
                // SAFETY: the slot holds a message nobody else takes.
                unsafe { slot.msg.drop_in_place() };
            } else {
                // SAFETY: as above; the block's senders are done (every
                // slot was written), and its `next` is linked or about to
                // be (its last slot was claimed).
                let next = unsafe { (*block).wait_next() };
                // SAFETY: as above.
                unsafe { Block::free(block) };
                block = next;
            }
            head = head.wrapping_add(1 << SHIFT);
        }
        if !block.is_null() {
            // SAFETY: the block `tail` is in, with no message left.
            unsafe { Block::free(block) };
        }
        self.head.index.store(head & !MARK, Ordering::Release);
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        // Exclusive access: every send and receive has returned, so every
        // claimed slot is written. `Relaxed`: `&mut self` orders them.
        let mut head = self.head.index.load(Ordering::Relaxed) >> SHIFT;
        let tail = self.tail.index.load(Ordering::Relaxed) >> SHIFT;
        let mut block = self.head.block.load(Ordering::Relaxed);
        while head != tail {
            let offset = head % LAP;
            if offset < SLOTS {
                // SAFETY: a claimed slot below `tail` not yet received:
                // it holds a message, which we drop once.
                unsafe { (*block).slots[offset].msg.drop_in_place() };
            } else {
                // SAFETY: `head` passed every slot of `block`, whose `next`
                // was linked by the send that claimed its last slot.
                let next = unsafe { (*block).next.load(Ordering::Relaxed) };
                // SAFETY: nobody else can reach the block any more.
                unsafe { Block::free(block) };
                block = next;
            }
            head = head.wrapping_add(1) & (usize::MAX >> SHIFT);
        }
        if !block.is_null() {
            // SAFETY: the last block, with no message left.
            unsafe { Block::free(block) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pop(list: &List<u32>) -> Option<u32> {
        match list.pop() {
            Pop::Msg(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn counts_and_keeps_order_across_blocks() {
        let list = List::new();
        assert_eq!(list.len(), 0);
        assert!(!list.has_message());
        let n = 5 * SLOTS as u32 + 3;
        for i in 0..n {
            list.push(i).unwrap();
            assert_eq!(list.len(), i as usize + 1);
        }
        for i in 0..n {
            assert!(list.has_message());
            assert_eq!(pop(&list), Some(i));
            assert_eq!(list.len(), (n - i - 1) as usize);
        }
        assert!(matches!(list.pop(), Pop::Empty));
        assert!(list.disconnect());
        assert!(!list.disconnect());
        assert!(matches!(list.pop(), Pop::Disconnected));
        assert_eq!(list.push(7), Err(7));
    }

    #[test]
    fn a_disconnected_list_drains_first() {
        let list = List::new();
        list.push(1).unwrap();
        list.disconnect();
        assert_eq!(pop(&list), Some(1));
        assert!(matches!(list.pop(), Pop::Disconnected));
    }

    /// Every message dropped once: received, left in the list when it is
    /// dropped, or discarded.
    #[test]
    fn messages_drop_once_with_the_list_or_on_discard() {
        for received in [0, 1, SLOTS - 1, SLOTS, SLOTS + 1, 3 * SLOTS] {
            for discard in [false, true] {
                let witness = Arc::new(());
                let list = List::new();
                for _ in 0..3 * SLOTS + 2 {
                    list.push(witness.clone()).unwrap();
                }
                for _ in 0..received {
                    assert!(matches!(list.pop(), Pop::Msg(_)));
                }
                if discard {
                    list.disconnect();
                    // SAFETY: disconnected, and nobody pops any more.
                    unsafe { list.discard() };
                    assert_eq!(Arc::strong_count(&witness), 1);
                    assert_eq!(list.len(), 0);
                }
                drop(list);
                assert_eq!(Arc::strong_count(&witness), 1);
            }
        }
        // A list that never saw a message has no block.
        drop(List::<Arc<()>>::new());
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The list alone (the channel's models are in `chan/loom_unbounded.rs`).
    use super::*;
    use ::loom::sync::Arc;
    use ::loom::thread;

    #[test]
    fn first_block_race_then_a_full_block() {
        // Two senders race to install the first block; the loser may find,
        // by the time it claims, that the winner has filled that block
        // (two slots under loom) and moved on: its claim must land in the
        // block its index lies in. The receiver gets every message once,
        // each sender's in order, and the blocks are freed in order.
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.max_branches = 10_000;
        builder.check(|| {
            let list = Arc::new(List::<u32>::new());
            let a = {
                let list = list.clone();
                thread::spawn(move || list.push(1).unwrap())
            };
            let b = {
                let list = list.clone();
                thread::spawn(move || {
                    list.push(10).unwrap();
                    list.push(11).unwrap();
                })
            };
            a.join().unwrap();
            b.join().unwrap();
            let mut got = Vec::new();
            while let Pop::Msg(msg) = list.pop() {
                got.push(msg);
            }
            assert_eq!(got.len(), 3, "{got:?}");
            assert!(got.contains(&1));
            let from_b: Vec<u32> = got.iter().copied().filter(|&m| m >= 10).collect();
            assert_eq!(from_b, [10, 11]);
        });
    }
}
