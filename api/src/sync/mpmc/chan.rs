//! The one channel core under `mpmc`, `mpsc` and `oneshot`.
//!
//! # Shape
//! A channel is a `Chan<T>`: its messages, a capacity (`0` for a
//! rendezvous channel, `usize::MAX` for an unbounded one), two wait lists
//! (blocked senders, blocked receivers), a `disconnected` flag, and the
//! counts of live `Sender`s and `Receiver`s. The wait lists and the flag
//! sit behind one `std::sync::Mutex` that is held only for a few
//! instructions and **never across a park**: every operation locks, looks,
//! changes state, unlocks, and only then unparks whoever it woke. A
//! contended lock therefore waits for a few instructions of another OS
//! thread, never for a parked green thread.
//!
//! Where the messages live depends on the capacity:
//! * **bounded, 1 ≤ capacity ≤ `MAX_RING_CAPACITY`**: a lock-free ring
//!   (`ring.rs`, Vyukov's bounded queue as in crossbeam's `array` flavour).
//!   A send claims a slot with one CAS on `tail` and publishes it; a
//!   receive is one CAS on `head`; the mutex is taken only when somebody
//!   waits (see "Buffered channels" below).
//! * **unbounded**: a lock-free linked list of blocks of slots (`list.rs`,
//!   the design of crossbeam's `list` flavour). A send claims a position
//!   with one CAS on `tail` and writes its slot, a receive one CAS on
//!   `head`; blocks are allocated by the sender that fills the previous
//!   one and freed by their last reader; the mutex is taken only when a
//!   receiver waits (see "Unbounded channels" below).
//! * **bounded above `MAX_RING_CAPACITY`**: a `VecDeque` under the mutex
//!   (grown on demand, where the ring allocates every slot up front).
//! * **rendezvous**: nothing is stored; a message moves from a blocked
//!   sender's wait-list entry, or into a blocked receiver's packet, under
//!   the mutex (see "Packets").
//!
//! Why not everything lock-free: with one mutex per channel, every
//! operation of a busy bounded channel bounced the lock's cache line
//! between the producer's and the consumer's cores and paid two atomic
//! read-modify-writes (lock, unlock) plus the wait-list checks. The ring
//! keeps the common case — a message or a slot is there — to a CAS on the
//! caller's own index and, for a send, the slot's stamp. The wait lists,
//! the select machinery and the rendezvous hand-over are rare or
//! inherently two-party, so they keep the simpler locked protocol below,
//! which the ring and the block list plug into. Not done: a lock-free
//! rendezvous (crossbeam's `zero` flavour also takes a lock; a rendezvous
//! needs both parties anyway), and bounded channels above
//! `MAX_RING_CAPACITY` keep the locked `VecDeque` (rare; a ring would
//! allocate every slot up front).
//!
//! # Waiters and selection
//! A thread that must block creates a `Context` (`context.rs`): its
//! `ThreadHandle` plus one atomic `state`, initially `WAITING`. It pushes an
//! *entry* — the context and an operation number — onto the channel's wait
//! list, unlocks and parks until `state` changes. A `select` registers one
//! entry per operation, all sharing its single context, operation `k`
//! being `FIRST_OPERATION + k`.
//!
//! Whoever wants to wake a waiter *selects* it: with the channel lock held
//! it pops the entry and does `CAS(state: WAITING → entry.oper)`. Only one
//! CAS can succeed, so only one operation of a select ever wins, even when
//! several of its channels become ready at once; a failed CAS means the
//! entry was stale (its owner aborted or another channel won it) and the
//! selector simply tries the next entry. The other parties racing for the
//! same word are a disconnecting channel (`→ DISCONNECTED`) and the waiter
//! itself when its deadline passes (`→ ABORTED`). This is crossbeam's
//! `Context`/`Waker` design, on spool's park/unpark.
//!
//! What selection means depends on the capacity:
//! * **Buffered** (capacity ≥ 1): entries carry no message. Pushing a
//!   message selects one waiting receiver; popping one selects one waiting
//!   sender. A selected waiter wakes and *retries* its operation (for a
//!   select: the selected operation first). If the retry fails, someone
//!   else took the message or slot that woke it, so nothing was lost.
//! * **Rendezvous** (capacity 0): nothing is stored in the channel; a
//!   message moves between the two parties. A blocked sender's entry
//!   carries the message itself; a receiver that selects it takes the
//!   message with the entry, under the lock (an entry carrying a message
//!   is never dropped as stale: its owner removes it to take the message
//!   back; see `Entry`). A blocked receiver's entry carries an
//!   empty packet; a sender that selects it fills the packet and unparks
//!   it. A *select* that registered a send has no message yet (crossbeam's
//!   syntax supplies it after selection), so its entry has no packet: a
//!   receiver that selects it creates a packet, leaves it in the select's
//!   context (`Context::store_packet`), wakes it and waits for the packet
//!   to be filled. The select, having won that operation, sends — or
//!   gives the hand-off back if its selection is dropped unsent (see
//!   "Abandoned selections").
//!
//! # Buffered channels
//! On a ring channel nobody pushes or pops under the lock, so "register in
//! the same critical section in which you saw the channel empty" (next
//! section) is replaced by a Dekker-style handshake on two counts,
//! `recv_waiting` and `send_waiting`: how many receive (send) entries and
//! observers the wait lists hold, stored under the lock whenever the lists
//! change (by `Locked`'s drop, and by `register_ring`).
//!
//! * A **waiter** (a blocked `recv`, a select's registration, an observer)
//!   pushes its entry and publishes the count under the lock, then issues
//!   a `SeqCst` fence, then looks at the ring again (`ring_ready`): if a
//!   message (a free slot) appeared meanwhile it withdraws and retries
//!   instead of parking.
//! * A **sender**, after writing a slot (`Ring::write`, whose stamp update
//!   is a `SeqCst` swap), loads `recv_waiting` with `SeqCst`; only if it is
//!   non-zero does it lock and select a receiver (`notify_receivers`). A
//!   receiver, after its `SeqCst` CAS on `head`, does the same with
//!   `send_waiting` (`notify_senders`).
//!
//! No wakeup is lost: in the single total order of `SeqCst` operations
//! and fences, either the waiter's fence comes before the sender's load —
//! then the load sees the published count (a store sequenced before an
//! `SeqCst` fence is visible to `SeqCst` loads after it), the sender locks,
//! finds the entry and selects it — or the sender's read-modify-write and
//! load come before the fence, and the waiter's re-check after the fence
//! sees the written slot (a `SeqCst` modification before an `SeqCst` fence
//! is visible to loads after it; C++20 [atomics.order]). Why a
//! read-modify-write and not a plain store: x86 may hold a store in the
//! store buffer past a later load, which is exactly the reordering Dekker
//! forbids; a locked instruction cannot be passed. This saves a fence on
//! each side of the hot path (≈ 8 ns per message measured). Loom models
//! only `SeqCst` *fences*, so under `--cfg loom` the two notify paths
//! issue the fence that the pair stands for (`loom_fence`), and the
//! models check the protocol in that form.
//!
//! The receiver's re-check looks at the slot's stamp, not at `tail`: a
//! select may hold a claimed slot for as long as its user likes (see "Claims
//! and holes" in `ring.rs`), and a receiver must sleep meanwhile, to be
//! woken by that write. A sender's re-check looks at `head`: a receiver
//! that moved `head` frees the slot within a few instructions, so the
//! sender's retry only spins over that.
//!
//! A select's send on a ring channel *claims* a slot when chosen and writes
//! it when the user calls `send` (a hole if the selection is dropped or the
//! channel disconnected meanwhile; receivers skip holes). Later messages
//! wait behind an unwritten claim, as in crossbeam-channel. Disconnection
//! marks the ring's `tail` under the lock before waking the waiters, so a
//! woken sender's retry fails and a receiver drains what is left first.
//! When the last receiver leaves, the queued messages are dropped then; a
//! message whose send was still writing (or a claim written after that)
//! is dropped with the channel instead.
//!
//! Waiting green threads yield to their worker a few times before parking
//! (`Context::wait_until`): the counterpart is often runnable on the same
//! worker, and a yield costs a fraction of a park and unpark.
//!
//! # Hand-off to blocked senders
//! A `send` that finds the ring full registers an entry that holds its
//! message, as a blocked rendezvous send does. The receiver whose pop
//! frees a slot (and sees `send_waiting`) does not just wake the oldest
//! sender to retry: under the lock it claims a slot, selects the entry
//! (the context CAS) and writes the entry's message into the claimed
//! slot, then unparks the sender, whose send is already done
//! (`wake_a_sender`). This is what Go's channels do for a full buffer.
//! Without it a woken sender raced every other sender for the slot it was
//! woken for: with four producers on a `bounded(1)` channel the loser
//! registered again, and each message cost several parks and wakeups
//! across workers while the consumer waited; with it the consumer keeps
//! receiving while producers are parked, and each parked producer is
//! woken once per message, with its send complete.
//!
//! The slot is claimed *before* the CAS, so a selected sender's message
//! always has a place. If the claim fails (another sender took the freed
//! slot first) the senders stay listed, and the pop that frees that slot
//! serves them. If the CAS fails (the sender's deadline passed or its
//! thread was cancelled, and it withdraws its entry and takes its message
//! back itself) the claim serves the next entry or becomes a hole. A
//! select's send entry holds no message (crossbeam's syntax supplies it
//! after selection), so it is selected and retries, as before. The loom
//! models `a_cancel_racing_a_hand_off_to_a_blocked_ring_send_loses_nothing`
//! and `ring_disconnect_hands_back_a_blocked_message` check this; dropping
//! a message entry whose CAS failed, as a stale plain entry is dropped,
//! makes the first fail (the owner finds its message gone).
//!
//! # Unbounded channels
//! The block list (`list.rs`) plugs into the same handshake, one way only:
//! a send never waits, so only receivers register, and only
//! `recv_waiting` is published (`publish_list_waiting`, by `Locked`'s drop
//! and `register_list`); `send_waiting` stays 0.
//!
//! * A **waiting receiver** (a blocked `recv`, a select's receive, a
//!   receive observer) pushes its entry, publishes the count under the
//!   lock, issues a `SeqCst` fence and looks at the list again
//!   (`list_ready`: `head` and `tail` read with `SeqCst`, a claimed
//!   position counting as a message); if something was claimed meanwhile
//!   it withdraws and retries instead of parking.
//! * A **sender**'s `SeqCst` CAS on `tail` claims its position; after
//!   writing the slot it loads `recv_waiting` with `SeqCst` and locks to
//!   select a receiver only if the count is non-zero (`notify_receivers`,
//!   the ring's).
//!
//! The argument is the ring's, with the claim's CAS as the sender's
//! read-modify-write: either the receiver's fence precedes the sender's
//! load in the `SeqCst` order, and the load sees the count, or the CAS
//! precedes the fence, and the re-check sees `tail` moved. Looking at the
//! indices rather than the slot is sound here because nothing holds a
//! claim: a position is written within a few instructions of its CAS (a
//! green thread is not switched out in between), so a receiver that
//! retries on a claimed position spins over the write instead of parking.
//!
//! A select's send on an unbounded channel is always ready and holds
//! nothing (`SendSlot::Unbounded`): the message is appended when the user
//! sends, and the send fails with the message if the channel was
//! disconnected meanwhile; a dropped selection gives nothing back. Send
//! registrations and send observers are not kept (always ready).
//! Disconnection marks `tail` under the lock before waking the waiters,
//! as for the ring: later sends fail (returning the message), receivers
//! drain what is left first. When the last receiver leaves, `discard`
//! drops the queued messages and frees the blocks, waiting for the sends
//! that claimed a position before the mark to finish writing it (a few
//! instructions), so each of their messages is dropped exactly once.
//!
//! # Why no wakeup is lost
//! (Channels with a locked queue or none; ring and list channels add the
//! handshakes above.)
//! A waiter registers *in the same critical section* in which it saw the
//! operation could not proceed (or, for a select, registers and then asks
//! each channel under its lock whether the operation became ready
//! meanwhile, aborting its wait if so). Any later change that could let it
//! proceed — a push, a pop, a counterpart, a disconnection — takes the
//! same lock afterwards, so it finds the entry and selects it, and the
//! selector unparks the waiter after the CAS. `park` returns at once when
//! the unpark came first (the engine's token), so the waiter cannot sleep
//! through its selection. A waiter whose deadline passes decides
//! `ABORTED` by the same CAS; if that CAS fails it was selected and must
//! honour the selection (retry, or complete the rendezvous), so a wakeup
//! meant for it is never swallowed by a timeout. Disconnection selects
//! every waiter with `DISCONNECTED`, each of which then retries and sees
//! the flag.
//!
//! # Waking only a sleeper
//! A waiter does not block at once: an OS thread spins for about a
//! microsecond, a green thread yields twice, and a green thread alone on
//! its worker (nothing else to run there) keeps yielding for about 3 µs,
//! since its worker would only spin idle. Most hand-offs complete in that
//! window, and then a wake is pure cost: for an OS thread a
//! read-modify-write of its wake word, a cache line it reads at its next
//! wait; for a green thread a transition of its task state and a push
//! through its worker's inbox (a lock, a flag, a fence). So the selector
//! wakes the waiter only if the waiter *announced* that it blocks
//! (`Context::announce_sleep`, the `asleep` flag), which it does after
//! its spin and before it re-checks its state (or its packet, in
//! `Packet::wait_take`) and blocks. Dekker again, with `SeqCst` fences:
//! the waiter stores `asleep`, fences, loads its state; the selector
//! decides the state (and settles the packet), fences, loads `asleep`. In
//! the single order of the two fences, either the waiter's comes first,
//! and the selector sees `asleep` and wakes it, or the selector's does,
//! and the waiter's re-check sees the decision and does not block. A
//! stale `true` (from an earlier round of a reused context) only costs a
//! spurious wake. Measured with a plain OS thread (`main`) and a green
//! thread of a 1-worker runtime bouncing a message over two rendezvous
//! channels: the waker's wake of a waiter that had not blocked was 190 ns
//! of every hand-off, and a green waiter that stopped yielding after two
//! yields had to be woken through its worker's inbox (≈ 380 ns for the
//! waker and as long again before it ran); 2.0 → 1.8 µs per round trip.
//! Checked by `chan/loom_models.rs` (a selector racing a waiter that
//! announces; removing the waiter's fence is caught by the rendezvous
//! and ring models as a waiter left asleep).
//!
//! # Packets
//! A packet's message cell is a plain `UnsafeCell`, never locked: the
//! context CAS decides who may touch it. A packet starts empty, is filled
//! by the one party that selected its waiter (or received it through its
//! context) and is read by the waiter only after `ready` is set. See
//! `Packet`. (A blocked sender needs no packet: its message waits in its
//! wait-list entry, which only the lock holder touches.)
//!
//! # Abandoned selections
//! A select that chose a rendezvous send holds a hand-off: a receiver was
//! selected (its CAS is spent) and waits on a packet that only this select
//! may settle. If the `SelectedOperation` is dropped without `send` — by
//! the user, or while its thread unwinds from a panic — the select's
//! `SendOp` settles the packet *empty* (`Chan::release_send`,
//! `Packet::abandon_and_wake`) and wakes the receiver, which then retries
//! its receive from the start: a blocking `recv` registers again,
//! `try_recv` reports `Empty` unless another sender is there, a select's
//! receive starts a new round. Nothing was transferred, so nothing is lost
//! or duplicated; to the receiver it is a spurious wakeup. Buffered
//! channels give back what the select held the same way: a claimed ring
//! slot becomes a hole, a reserved queue slot is returned.
//!
//! # Cancellation
//! Every wait of a channel is a cancellation point (see `spool::cancel`):
//! `Context::wait_until` waits with the engine's `cancellable_wait`, and
//! when its thread is cancelled the waiter tries to decide `ABORTED`
//! itself, by the same CAS a deadline uses. That CAS is the whole race
//! between a cancel and a counterpart's claim:
//! * **The waiter wins**: nobody selected it, so nothing was handed over.
//!   It removes its entries under the lock (no selector can choose them
//!   any more, and the context may be reused) — a blocked rendezvous send
//!   takes its message back out of its entry — and only then unwinds
//!   with the cancellation, dropping an unsent message with the unwind.
//!   While its thread is already unwinding (rule R1) it returns as at a
//!   deadline instead: `Timeout` (a send's carrying the message back),
//!   `None` from a select with a deadline.
//! * **A counterpart wins** (rule R2): the waiter honours the selection
//!   exactly as it would have without the cancel. A rendezvous message is
//!   returned (waiting, masked, for the packet a claiming select fills
//!   when its user calls `send`); a select completes the chosen operation;
//!   a buffered waiter retries once, and if the retry fails another party
//!   took what woke it, so it registers again and its next wait gives up
//!   at once. The cancellation stays pending (the engine keeps it visible)
//!   and is raised at the next cancellation point.
//!
//! So no message is lost or duplicated by a cancel, and no wakeup: a
//! selection always belongs to a waiter that acts on it. The loom models
//! in `chan/loom_models.rs` check this race. Not cancellation points: the
//! calls that do not wait (`try_*`, and any call whose operation is
//! possible at once), the spin before waiting (`Context::wait_until`
//! yields with the masked `yield_masked`, since unwinding there would
//! leave the entries registered), a claimed packet's fill (above), and a
//! `select` or `ready` without deadline during an unwind, which has no
//! error to return and waits masked, as a lock acquisition does.
//!
//! # Contexts are reused
//! Each thread keeps one context in green-thread-local storage
//! (`Context::current`) and resets it before each registration. That is
//! safe because an operation returns only when none of its entries is
//! left in any wait list, so nobody can decide that context's state any
//! more; at worst a selector's late `unpark` reaches the next operation as
//! a spurious wakeup, and every wait re-checks its state before trusting
//! a wakeup.
//!
//! # Memory ordering
//! Wait lists, the locked queue, `reserved` and `disconnected` are only
//! touched under the mutex, which orders them; the ring and the block list
//! order their slots themselves (see `ring.rs`, `list.rs`) and meet the
//! lists through the handshakes in "Buffered channels" and "Unbounded
//! channels". The context's `state` is
//! decided by `AcqRel` CAS and read with `Acquire` (see `Context`). Packet
//! hand-over: the filler writes the message and then sets `ready` with
//! `Release`; the waiter reads `ready` with `Acquire` before taking the
//! message. A message in a sender's entry is written and taken under the
//! lock. The sender and receiver
//! counts use `AcqRel` decrements so the last handle's drop sees every
//! other handle's prior operations before it disconnects.
//!
//! # Cost
//! Measured with `peers/benches/channels.rs` (see `benches/README.md`). Ring
//! channels: a send is two `SeqCst` read-modify-writes (the `tail` CAS,
//! the stamp swap), a receive one (the `head` CAS), and neither locks
//! while nobody waits. Unbounded channels: a send is two read-modify-writes
//! (the `tail` CAS, the slot's `WRITE`), a receive two (the `head` CAS, the
//! slot's `READ`), plus an allocation and a free per 63 messages, and
//! neither locks while no receiver waits — crossbeam's `list` costs.
//! Measured against the locked `VecDeque` they replace, in two runs of
//! `cargo bench -p spool-peers --bench channels -- unbounded` on a shared
//! 2-core machine (medians, ns/msg; spool/best peer, crossbeam or std):
//! first run before → after: seq 113 → 97 (1.50 → 1.13), spsc 137 → 96
//! (1.79 → 1.19), mpsc 236 → 93 (1.96 → 1.18), mpmc 194 → 85 (1.31 →
//! 1.18), select_rx 899 → 346 (2.61 → 2.26), select_both 1260 → 593
//! (3.85 → 2.67); a second, back-to-back pair put both versions within
//! 1.2–1.5 of the best peer in the plain rows (seq 1.27 → 1.23, spsc
//! 1.51 → 1.17, mpsc 1.48 → 1.23, mpmc 1.19 → 1.32), so on that machine
//! the plain rows are within noise of the peers and short of beating
//! them; the select rows stay 2.3–2.5× crossbeam, where the select's
//! registration (one entry per operation, each under its channel's lock)
//! dominates. Rendezvous channels:
//! the lock, and the reference counts of contexts and packets, dominate;
//! stack-allocated packets are the known next step there.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use spool_runtime::trace::WaitReason;

use std::ops::{Deref, DerefMut};

use crate::loom::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use crate::loom::thread;
use crate::loom::{Mutex, MutexGuard};

use super::context::{Abort, Context, WaitSite, DISCONNECTED, FIRST_OPERATION, WAITING};
use super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::list::List;
use super::ring::{CachePadded, Claim, Pop, Refused, Ring};

/// Capacity of an unbounded channel.
pub(crate) const UNBOUNDED: usize = usize::MAX;

/// The largest capacity stored in a `Ring` (allocated in full up front);
/// larger bounded channels keep the locked queue, which grows on demand.
const MAX_RING_CAPACITY: usize = 1 << 16;

mod buffered;
mod unbounded;
mod waiters;

pub(crate) use waiters::Packet;
use waiters::{Observers, WaitList};

/// A `SeqCst` fence under loom only. Loom does not model `SeqCst` loads,
/// stores and read-modify-writes (it treats them as `AcqRel`), only
/// `SeqCst` fences; where the normal build relies on a `SeqCst`
/// read-modify-write followed by a `SeqCst` load (see "Buffered channels"),
/// the models get the fence that pair stands for spelt out.
#[inline]
fn loom_fence() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// Locks ignoring poisoning: no code panics while holding these locks
/// except through a bug, and the data stays consistent at every unlock.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner<T> {
    /// The messages of a bounded channel of capacity above
    /// `MAX_RING_CAPACITY`.
    queue: VecDeque<T>,
    /// Queue slots promised to selects that chose a send and have not sent
    /// yet (channels with a locked queue).
    reserved: usize,
    disconnected: bool,
    senders: WaitList<T>,
    receivers: WaitList<T>,
    /// Watching for a receive (resp. send) to become possible.
    recv_observers: Observers,
    send_observers: Observers,
}

/// What a select's send operation holds between selection and `send`.
pub(crate) enum SendSlot<T> {
    /// A slot of a locked queue is reserved for the message.
    Reserved,
    /// A ring slot is claimed for the message.
    Claimed(Claim),
    /// An unbounded (list) channel: there is always room, so nothing is
    /// held; the message is appended when the user sends.
    Unbounded,
    /// A rendezvous receiver (the context) waits on this packet.
    Packet(Arc<Packet<T>>, Arc<Context>),
    /// The channel is disconnected: the send fails with the message.
    Disconnected,
}

/// Waiters to unpark once the lock is released: at most one selected
/// waiter plus any observers (rare, so the vector rarely allocates).
#[derive(Default)]
struct Woken {
    waiter: Option<Arc<Context>>,
    observers: Vec<Arc<Context>>,
}

impl Woken {
    fn waiter(waiter: Option<Arc<Context>>) -> Woken {
        Woken {
            waiter,
            observers: Vec::new(),
        }
    }

    /// Unparks everyone collected (call with no lock held).
    fn unpark(self) {
        if let Some(cx) = self.waiter {
            cx.unpark();
        }
        for cx in self.observers {
            cx.unpark();
        }
    }
}

/// Outcome of a send attempt made under the lock.
enum Put<T> {
    /// Done; unpark these waiters once unlocked.
    Sent(Woken),
    Full(T),
    Disconnected(T),
}

/// Outcome of a receive attempt completed once unlocked (`receive_now`).
enum Received<'c, T> {
    Msg(T),
    /// Nothing to receive; the lock is still held.
    Empty(Locked<'c, T>),
    Disconnected,
}

/// Outcome of a receive attempt made under the lock.
enum Took<T> {
    /// A message; unpark these waiters once unlocked.
    Msg(T, Woken),
    /// A select's send was chosen: wake it, then wait on the packet.
    FromSelect(Arc<Packet<T>>, Arc<Context>),
    Empty,
    Disconnected,
}

/// The channel core; see the top of this file.
pub(crate) struct Chan<T> {
    inner: Mutex<Inner<T>>,
    /// The messages of a bounded channel with 1 ≤ capacity ≤
    /// `MAX_RING_CAPACITY`; `None` for the others (see "Buffered channels").
    ring: Option<Ring<T>>,
    /// The messages of an unbounded channel; `None` for the others (see
    /// "Unbounded channels").
    list: Option<List<T>>,
    /// For ring and list channels: how many receive (send) entries and
    /// observers the wait lists hold, published under the lock by
    /// `Locked`'s drop and by `register_ring` (`register_list`); read
    /// without the lock after a push (pop). See "Buffered channels" for
    /// the fences that make this safe.
    recv_waiting: CachePadded<AtomicUsize>,
    send_waiting: CachePadded<AtomicUsize>,
    cap: usize,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

/// The locked channel state. Dropping it (unlocking) publishes the wait
/// lists' sizes for the lock-free paths of ring channels.
struct Locked<'a, T> {
    guard: MutexGuard<'a, Inner<T>>,
    chan: &'a Chan<T>,
}

impl<T> Deref for Locked<'_, T> {
    type Target = Inner<T>;
    fn deref(&self) -> &Inner<T> {
        &self.guard
    }
}

impl<T> DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut Inner<T> {
        &mut self.guard
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        self.chan.publish_waiting(&self.guard);
        self.chan.publish_list_waiting(&self.guard);
    }
}

impl<T> Chan<T> {
    /// A channel of capacity `cap` (`UNBOUNDED` for unbounded) with one
    /// sender and one receiver.
    pub(crate) fn new(cap: usize) -> Chan<T> {
        Chan {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                reserved: 0,
                disconnected: false,
                senders: WaitList(VecDeque::new()),
                receivers: WaitList(VecDeque::new()),
                recv_observers: Observers(Vec::new()),
                send_observers: Observers(Vec::new()),
            }),
            ring: (cap != 0 && cap <= MAX_RING_CAPACITY).then(|| Ring::new(cap)),
            list: (cap == UNBOUNDED).then(List::new),
            recv_waiting: CachePadded(AtomicUsize::new(0)),
            send_waiting: CachePadded(AtomicUsize::new(0)),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    fn lock(&self) -> Locked<'_, T> {
        Locked {
            guard: lock(&self.inner),
            chan: self,
        }
    }

    /// The capacity (`UNBOUNDED` for an unbounded channel).
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Messages in the queue.
    pub(crate) fn len(&self) -> usize {
        if let Some(list) = &self.list {
            return list.len();
        }
        match &self.ring {
            Some(ring) => ring.len(),
            None => self.lock().queue.len(),
        }
    }

    /// Whether a send would find the channel full (rendezvous: always).
    pub(crate) fn is_full(&self) -> bool {
        if let Some(ring) = &self.ring {
            return ring.len() >= self.cap;
        }
        if self.list.is_some() {
            return false;
        }
        let inner = self.lock();
        self.cap == 0 || inner.queue.len() + inner.reserved >= self.cap
    }

    /// Counts a new `Sender`. `Relaxed`: the caller holds one already, so
    /// the count cannot concurrently reach zero.
    pub(crate) fn add_sender(&self) {
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new `Receiver` (as `add_sender`).
    pub(crate) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets a `Sender`; the last one disconnects the channel.
    pub(crate) fn remove_sender(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.disconnect();
        }
    }

    /// Forgets a `Receiver`; the last one disconnects the channel and
    /// drops the queued messages (nobody can receive them any more).
    pub(crate) fn remove_receiver(&self) {
        if self.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            let queued = self.disconnect();
            drop(queued);
            if let Some(ring) = &self.ring {
                // Nobody can receive these any more. A message still being
                // written (or a select's claim) stays in its slot and is
                // dropped with the channel.
                while let Pop::Msg(msg) = ring.pop(&mut false) {
                    drop(msg);
                }
            }
            if let Some(list) = &self.list {
                // SAFETY: `disconnect` marked the list, and we are the last
                // receiver, leaving: nobody pops any more; the count reached
                // zero once, so this runs once.
                unsafe { list.discard() };
            }
        }
    }

    /// Marks the channel disconnected and wakes every waiter. Returns the
    /// queued messages if no receiver is left, to be dropped unlocked.
    fn disconnect(&self) -> VecDeque<T> {
        let mut woken = Vec::new();
        let mut inner = self.lock();
        inner.disconnected = true;
        if let Some(ring) = &self.ring {
            // Under the lock, before waking anyone: a woken sender's retry
            // fails on the mark, a waiter registering later sees the flag.
            ring.disconnect();
        }
        if let Some(list) = &self.list {
            // As for the ring.
            list.disconnect();
        }
        inner.senders.disconnect(&mut woken);
        inner.receivers.disconnect(&mut woken);
        inner.recv_observers.notify(&mut woken);
        inner.send_observers.notify(&mut woken);
        let queued = if self.receivers.load(Ordering::Acquire) == 0 {
            std::mem::take(&mut inner.queue)
        } else {
            VecDeque::new()
        };
        drop(inner);
        for cx in woken {
            cx.unpark();
        }
        queued
    }

    /// Tries to send under the lock.
    fn put(&self, inner: &mut Inner<T>, msg: T) -> Put<T> {
        if inner.disconnected {
            return Put::Disconnected(msg);
        }
        if self.cap == 0 {
            // Rendezvous: hand the message to a blocked receiver.
            let Some(entry) = inner.receivers.select() else {
                return Put::Full(msg);
            };
            let packet = entry
                .packet
                .expect("spool channel: receiver entry without packet");
            // SAFETY: our CAS in `select` chose this receiver, which makes
            // us the one party to fill its (empty) packet.
            unsafe { packet.fill(msg) };
            return Put::Sent(Woken::waiter(Some(entry.cx)));
        }
        if inner.queue.len() + inner.reserved >= self.cap {
            return Put::Full(msg);
        }
        inner.queue.push_back(msg);
        let mut woken = Woken::waiter(inner.receivers.select().map(|e| e.cx));
        inner.recv_observers.notify(&mut woken.observers);
        Put::Sent(woken)
    }

    /// Tries to receive under the lock.
    fn take(&self, inner: &mut Inner<T>) -> Took<T> {
        if self.cap == 0 {
            if let Some(entry) = inner.senders.select() {
                return match entry.msg {
                    // Our CAS chose this blocked sender: the message is ours.
                    Some(msg) => Took::Msg(msg, Woken::waiter(Some(entry.cx))),
                    None => {
                        // A select that registered a send: leave it a packet
                        // to fill, under the lock (see `Context::packet`).
                        let me = Context::current();
                        let packet = Packet::empty(Some(me));
                        entry
                            .cx
                            .store_packet(Arc::into_raw(packet.clone()) as *mut ());
                        Took::FromSelect(packet, entry.cx)
                    }
                };
            }
        } else if let Some(msg) = inner.queue.pop_front() {
            let mut woken = Woken::default();
            if self.cap != UNBOUNDED {
                woken.waiter = inner.senders.select().map(|e| e.cx);
                inner.send_observers.notify(&mut woken.observers);
            }
            return Took::Msg(msg, woken);
        }
        if inner.disconnected {
            Took::Disconnected
        } else {
            Took::Empty
        }
    }

    /// Receives without blocking, starting from the locked `inner`: a
    /// `take`, completed once unlocked. A select that was chosen as the
    /// counterpart and then abandoned its send (see "Abandoned selections")
    /// leaves its packet empty; the receive then simply tries again.
    /// Returns the lock with `Empty`, so that a blocking caller registers
    /// in the same critical section in which it saw the channel empty.
    fn receive_now<'c>(&'c self, mut inner: Locked<'c, T>) -> Received<'c, T> {
        loop {
            match self.take(&mut inner) {
                Took::Msg(msg, woken) => {
                    drop(inner);
                    woken.unpark();
                    return Received::Msg(msg);
                }
                Took::FromSelect(packet, sender) => {
                    drop(inner);
                    sender.unpark();
                    let me = packet
                        .waiter
                        .as_ref()
                        .expect("a select's packet names its waiter");
                    // SAFETY: `take` created the packet with us as its waiter.
                    if let Some(msg) = unsafe { packet.wait_take(me) } {
                        return Received::Msg(msg);
                    }
                    inner = self.lock();
                }
                Took::Empty => return Received::Empty(inner),
                Took::Disconnected => return Received::Disconnected,
            }
        }
    }

    /// Sends without blocking.
    pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        if let Some(ring) = &self.ring {
            return self.ring_try_send(ring, msg);
        }
        if let Some(list) = &self.list {
            return self
                .list_send(list, msg)
                .map_err(TrySendError::Disconnected);
        }
        let put = self.put(&mut self.lock(), msg);
        match put {
            Put::Sent(woken) => {
                woken.unpark();
                Ok(())
            }
            Put::Full(msg) => Err(TrySendError::Full(msg)),
            Put::Disconnected(msg) => Err(TrySendError::Disconnected(msg)),
        }
    }

    /// Receives without blocking. On a rendezvous channel whose only
    /// counterpart is a select that registered a send, waits until the
    /// select supplies its message (or gives the hand-off back, when this
    /// reports `Empty`; see "Abandoned selections").
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(ring) = &self.ring {
            return self.ring_try_recv(ring);
        }
        if let Some(list) = &self.list {
            return self.list_try_recv(list);
        }
        match self.receive_now(self.lock()) {
            Received::Msg(msg) => Ok(msg),
            Received::Empty(_) => Err(TryRecvError::Empty),
            Received::Disconnected => Err(TryRecvError::Disconnected),
        }
    }

    /// Sends, blocking until `deadline` (forever if `None`).
    #[track_caller]
    pub(crate) fn send(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        entry_checkpoint();
        if let Some(ring) = &self.ring {
            return self.ring_send(ring, msg, deadline);
        }
        if let Some(list) = &self.list {
            // Never blocks.
            return self
                .list_send(list, msg)
                .map_err(SendTimeoutError::Disconnected);
        }
        self.zero_send(msg, deadline)
    }

    /// `send` on a rendezvous channel: out of line, so that the buffered
    /// flavours' sends stay short (a small frame, no spills).
    #[track_caller]
    #[inline(never)]
    fn zero_send(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let site = Location::caller();
        let mut inner = self.lock();
        match self.put(&mut inner, msg) {
            Put::Sent(woken) => {
                drop(inner);
                woken.unpark();
                Ok(())
            }
            Put::Disconnected(msg) => Err(SendTimeoutError::Disconnected(msg)),
            // Still holding the lock, so the registration below belongs to
            // the same critical section as the failed attempt.
            Put::Full(msg) => {
                Context::with_current(move |cx| self.send_blocking(inner, msg, deadline, cx, site))
            }
        }
    }

    /// The blocking part of `send`: `inner` is locked and `msg` did not fit.
    /// A cancellation point (see "Cancellation"): a cancelled send hands
    /// nothing over; it raises (dropping `msg` with the unwind) or, while
    /// unwinding, fails with `Timeout(msg)`.
    fn send_blocking<'c>(
        &'c self,
        mut inner: Locked<'c, T>,
        mut msg: T,
        deadline: Option<Instant>,
        cx: &Arc<Context>,
        site: &'static Location<'static>,
    ) -> Result<(), SendTimeoutError<T>> {
        let why = WaitSite {
            reason: WaitReason::Send(crate::loom::object_id(self)),
            site,
        };
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(msg));
            }
            cx.reset();
            if self.cap == 0 {
                inner.senders.push_message(cx, msg);
                let mut observers = Vec::new();
                inner.recv_observers.notify(&mut observers);
                drop(inner);
                observers.iter().for_each(|o| o.unpark());
                let outcome = cx.wait_until(deadline, why);
                if matches!(outcome, Ok(state) if state != DISCONNECTED) {
                    // A receiver selected us and took the message out of
                    // our entry (even if we are cancelled by now: rule R2).
                    return Ok(());
                }
                // No receiver selected us (we, or the disconnection,
                // decided the outcome), so our entry is still listed with
                // the message in it (the `Entry` invariant).
                let msg = self
                    .lock()
                    .senders
                    .remove(cx, FIRST_OPERATION)
                    .and_then(|entry| entry.msg)
                    .expect("send_blocking: an unselected rendezvous entry keeps its message");
                return match outcome {
                    Ok(_) => Err(SendTimeoutError::Disconnected(msg)),
                    Err(abort) => {
                        abort.raise_if_cancelled();
                        Err(SendTimeoutError::Timeout(msg))
                    }
                };
            }
            inner.senders.push(cx, FIRST_OPERATION, None);
            drop(inner);
            if let Err(abort) = cx.wait_until(deadline, why) {
                self.lock().senders.remove(cx, FIRST_OPERATION);
                abort.raise_if_cancelled();
                return Err(SendTimeoutError::Timeout(msg));
            }
            // Selected (a slot freed) or disconnected: retry, and register
            // again in the same critical section if it still does not fit.
            // (A cancelled sender whose retry fails registers again and its
            // next wait gives up at once: nothing lost, see "Cancellation".)
            inner = self.lock();
            msg = match self.put(&mut inner, msg) {
                Put::Sent(woken) => {
                    drop(inner);
                    woken.unpark();
                    return Ok(());
                }
                Put::Disconnected(msg) => return Err(SendTimeoutError::Disconnected(msg)),
                Put::Full(msg) => msg,
            };
        }
    }

    /// Receives, blocking until `deadline` (forever if `None`). A
    /// cancellation point: raises, or while unwinding fails with `Timeout`.
    #[track_caller]
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        entry_checkpoint();
        if let Some(ring) = &self.ring {
            return self.ring_recv(ring, deadline);
        }
        if let Some(list) = &self.list {
            return self.list_recv(list, deadline);
        }
        self.zero_recv(deadline)
    }

    /// `recv` on a rendezvous channel: out of line, as `zero_send`.
    #[track_caller]
    #[inline(never)]
    fn zero_recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let site = Location::caller();
        match self.receive_now(self.lock()) {
            Received::Msg(msg) => Ok(msg),
            Received::Empty(inner) => {
                Context::with_current(move |cx| self.recv_blocking(inner, deadline, cx, site))
            }
            Received::Disconnected => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// The blocking part of `recv`: `inner` is locked and empty.
    fn recv_blocking<'c>(
        &'c self,
        mut inner: Locked<'c, T>,
        deadline: Option<Instant>,
        cx: &Arc<Context>,
        site: &'static Location<'static>,
    ) -> Result<T, RecvTimeoutError> {
        let why = WaitSite {
            reason: WaitReason::Recv(crate::loom::object_id(self)),
            site,
        };
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            cx.reset();
            let packet = (self.cap == 0).then(|| Packet::empty(None));
            inner.receivers.push(cx, FIRST_OPERATION, packet.clone());
            let mut observers = Vec::new();
            if self.cap == 0 {
                inner.send_observers.notify(&mut observers);
            }
            drop(inner);
            observers.iter().for_each(|o| o.unpark());
            match cx.wait_until(deadline, why) {
                Err(abort) => {
                    // Nobody selected us: withdraw, and nothing was taken.
                    self.lock().receivers.remove(cx, FIRST_OPERATION);
                    abort.raise_if_cancelled();
                    return Err(RecvTimeoutError::Timeout);
                }
                Ok(DISCONNECTED) => {}
                // Selected: a rendezvous sender fills our packet; on a
                // buffered channel a message was pushed and we retry.
                // An abandoned packet (empty): the select that chose us
                // dropped its selection; retry as for a buffered channel.
                // Either way this holds if we are cancelled meanwhile: the
                // message handed over is returned (rule R2), and a failed
                // retry means another receiver took what woke us.
                Ok(_) => {
                    if let Some(packet) = packet {
                        // SAFETY: we created the packet as its waiter.
                        if let Some(msg) = unsafe { packet.wait_take(cx) } {
                            return Ok(msg);
                        }
                    }
                }
            }
            inner = match self.receive_now(self.lock()) {
                Received::Msg(msg) => return Ok(msg),
                Received::Empty(inner) => inner,
                Received::Disconnected => return Err(RecvTimeoutError::Disconnected),
            };
        }
    }

    // ----- the pieces `Select` is made of -----

    /// A select's non-blocking attempt at a send: reserves the right to
    /// send, or reports disconnection. `None` if it would block.
    pub(crate) fn select_try_send(&self) -> Option<SendSlot<T>> {
        if let Some(ring) = &self.ring {
            return match ring.claim() {
                Ok(claim) => Some(SendSlot::Claimed(claim)),
                Err(Refused::Disconnected) => Some(SendSlot::Disconnected),
                Err(Refused::Full) => None,
            };
        }
        if let Some(list) = &self.list {
            // Always room: nothing to reserve (see `SendSlot::Unbounded`).
            return Some(if list.is_disconnected() {
                SendSlot::Disconnected
            } else {
                SendSlot::Unbounded
            });
        }
        let mut inner = self.lock();
        if inner.disconnected {
            return Some(SendSlot::Disconnected);
        }
        if self.cap == 0 {
            let entry = inner.receivers.select()?;
            // The receiver stays parked until `complete_send` fills this.
            let packet = entry
                .packet
                .expect("spool channel: receiver entry without packet");
            return Some(SendSlot::Packet(packet, entry.cx));
        }
        if inner.queue.len() + inner.reserved < self.cap {
            inner.reserved += 1;
            return Some(SendSlot::Reserved);
        }
        None
    }

    /// Sends `msg` through a slot obtained from `select_try_send` (or a
    /// packet handed over by a receiver). Fails with `msg` if disconnected.
    pub(crate) fn complete_send(&self, slot: SendSlot<T>, msg: T) -> Result<(), T> {
        match slot {
            SendSlot::Disconnected => Err(msg),
            SendSlot::Packet(packet, waiter) => {
                // SAFETY: the slot holds the packet we were given as the
                // one party to fill it (we selected its waiter, or its
                // waiter handed it to our context).
                unsafe { packet.fill_and_wake(msg, &waiter) };
                Ok(())
            }
            SendSlot::Claimed(claim) => {
                let ring = self.ring.as_ref().expect("a claim comes from a ring");
                let result = if ring.is_disconnected() {
                    // SAFETY: the claim was made on this ring
                    // (`select_try_send`). A hole: the message comes back.
                    unsafe { ring.write(claim, None) };
                    Err(msg)
                } else {
                    // SAFETY: as above.
                    unsafe { ring.write(claim, Some(msg)) };
                    Ok(())
                };
                self.notify_receivers();
                result
            }
            SendSlot::Unbounded => {
                let list = self
                    .list
                    .as_ref()
                    .expect("an unbounded slot comes from a list");
                self.list_send(list, msg)
            }
            SendSlot::Reserved => {
                let mut inner = self.lock();
                inner.reserved -= 1;
                if inner.disconnected {
                    return Err(msg);
                }
                inner.queue.push_back(msg);
                let mut woken = Woken::waiter(inner.receivers.select().map(|e| e.cx));
                inner.recv_observers.notify(&mut woken.observers);
                drop(inner);
                woken.unpark();
                Ok(())
            }
        }
    }

    /// Gives back a slot that will not be used (a dropped selection).
    pub(crate) fn release_send(&self, slot: SendSlot<T>) {
        if let SendSlot::Packet(packet, waiter) = slot {
            // SAFETY: as in `complete_send`: the slot holds the packet we
            // were given as the one party to settle it, still empty.
            unsafe { packet.abandon_and_wake(&waiter) };
        } else if let SendSlot::Claimed(claim) = slot {
            let ring = self.ring.as_ref().expect("a claim comes from a ring");
            // SAFETY: the claim was made on this ring (`select_try_send`).
            // A hole, which receivers skip; the slot frees when one does.
            unsafe { ring.write(claim, None) };
            // Messages behind the claim may be waited for.
            self.notify_receivers();
        } else if let SendSlot::Reserved = slot {
            let mut inner = self.lock();
            inner.reserved -= 1;
            // The freed slot may let a blocked sender proceed.
            let mut woken = Woken::waiter(inner.senders.select().map(|e| e.cx));
            inner.send_observers.notify(&mut woken.observers);
            drop(inner);
            woken.unpark();
        }
    }

    /// Turns a packet pointer a receiver left in our context into a slot.
    ///
    /// # Safety
    /// `raw` came from `Context::take_packet` of a select whose send on
    /// *this* channel was selected (so it is an `Arc<Packet<T>>` of this
    /// `T`, stored by `take`), and is used once.
    pub(crate) unsafe fn packet_slot(&self, raw: *mut ()) -> SendSlot<T> {
        // SAFETY: by the contract, `raw` is `Arc::into_raw` of an
        // `Arc<Packet<T>>` whose ownership we now take.
        let packet = unsafe { Arc::from_raw(raw as *const Packet<T>) };
        let waiter = packet
            .waiter
            .clone()
            .expect("spool channel: a handed-over packet names its waiter");
        SendSlot::Packet(packet, waiter)
    }

    /// Registers a select's send operation `oper`. Returns whether the
    /// operation may be ready already (the select then aborts its wait).
    pub(crate) fn register_send(&self, cx: &Arc<Context>, oper: usize) -> bool {
        if self.list.is_some() {
            // An unbounded send is always ready: nothing to wait for.
            return true;
        }
        let mut inner = self.lock();
        inner.senders.push(cx, oper, None);
        if let Some(ring) = &self.ring {
            self.register_ring(&inner);
            return inner.disconnected || self.ring_ready(ring, true);
        }
        let mut observers = Vec::new();
        if self.cap == 0 {
            inner.recv_observers.notify(&mut observers);
        }
        let ready = inner.disconnected
            || (self.cap != 0 && inner.queue.len() + inner.reserved < self.cap)
            || (self.cap == 0 && inner.receivers.has_waiting_other(Some(cx)));
        drop(inner);
        observers.iter().for_each(|o| o.unpark());
        ready
    }

    /// Registers a select's receive operation `oper`; on a rendezvous
    /// channel returns the packet a sender will fill (the select is its
    /// waiter). The flag says whether the operation may be ready already.
    pub(crate) fn register_recv(
        &self,
        cx: &Arc<Context>,
        oper: usize,
    ) -> (bool, Option<Arc<Packet<T>>>) {
        let mut inner = self.lock();
        let packet = (self.cap == 0).then(|| Packet::empty(None));
        inner.receivers.push(cx, oper, packet.clone());
        if let Some(ring) = &self.ring {
            self.register_ring(&inner);
            return (inner.disconnected || self.ring_ready(ring, false), None);
        }
        if let Some(list) = &self.list {
            self.register_list(&inner);
            return (inner.disconnected || self.list_ready(list), None);
        }
        let mut observers = Vec::new();
        if self.cap == 0 {
            inner.send_observers.notify(&mut observers);
        }
        let ready = inner.disconnected
            || !inner.queue.is_empty()
            || (self.cap == 0 && inner.senders.has_waiting_other(Some(cx)));
        drop(inner);
        observers.iter().for_each(|o| o.unpark());
        (ready, packet)
    }

    /// Removes a select's send registration (a no-op if a selector or a
    /// disconnection already removed it). Taking the lock also makes a
    /// packet left by a selecting receiver visible (`Context::packet`).
    pub(crate) fn unregister_send(&self, cx: &Context, oper: usize) {
        self.lock().senders.remove(cx, oper);
    }

    /// Removes a select's receive registration (as `unregister_send`).
    pub(crate) fn unregister_recv(&self, cx: &Context, oper: usize) {
        self.lock().receivers.remove(cx, oper);
    }

    /// Whether a receive could proceed now (a hint: it may be gone by the
    /// time the caller acts on it).
    pub(crate) fn recv_ready(&self) -> bool {
        if let Some(ring) = &self.ring {
            return self.ring_ready(ring, false);
        }
        if let Some(list) = &self.list {
            return self.list_ready(list);
        }
        let inner = self.lock();
        inner.disconnected
            || !inner.queue.is_empty()
            || (self.cap == 0 && inner.senders.has_waiting_other(None))
    }

    /// Whether a send could proceed now (a hint, as `recv_ready`).
    pub(crate) fn send_ready(&self) -> bool {
        if let Some(ring) = &self.ring {
            return self.ring_ready(ring, true);
        }
        if self.list.is_some() {
            return true;
        }
        let inner = self.lock();
        inner.disconnected
            || (self.cap != 0 && inner.queue.len() + inner.reserved < self.cap)
            || (self.cap == 0 && inner.receivers.has_waiting_other(None))
    }

    /// Adds `cx` as an observer of sends (`is_send`) or receives; returns
    /// whether that operation is possible already.
    pub(crate) fn watch(&self, cx: &Arc<Context>, oper: usize, is_send: bool) -> bool {
        if self.list.is_some() && is_send {
            // Always possible: no observer needed (`unwatch` finds none).
            return true;
        }
        let mut inner = self.lock();
        if let Some(list) = &self.list {
            inner.recv_observers.0.push((cx.clone(), oper));
            self.register_list(&inner);
            return inner.disconnected || self.list_ready(list);
        }
        if let Some(ring) = &self.ring {
            if is_send {
                inner.send_observers.0.push((cx.clone(), oper));
            } else {
                inner.recv_observers.0.push((cx.clone(), oper));
            }
            self.register_ring(&inner);
            return inner.disconnected || self.ring_ready(ring, is_send);
        }
        if is_send {
            inner.send_observers.0.push((cx.clone(), oper));
            inner.disconnected
                || (self.cap != 0 && inner.queue.len() + inner.reserved < self.cap)
                || (self.cap == 0 && inner.receivers.has_waiting_other(Some(cx)))
        } else {
            inner.recv_observers.0.push((cx.clone(), oper));
            inner.disconnected
                || !inner.queue.is_empty()
                || (self.cap == 0 && inner.senders.has_waiting_other(Some(cx)))
        }
    }

    /// Removes an observer added by `watch`.
    pub(crate) fn unwatch(&self, cx: &Context, oper: usize, is_send: bool) {
        let mut inner = self.lock();
        if is_send {
            inner.send_observers.remove(cx, oper);
        } else {
            inner.recv_observers.remove(cx, oper);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models;
#[cfg(all(test, loom))]
mod loom_unbounded;

/// The cancellation point at the entry of a blocking send or receive, so a
/// loop whose calls never have to wait (a producer that always keeps up)
/// is still cancelled: if the thread is cancelled, the call unwinds before
/// doing anything (nothing was handed over, so nothing is lost). While the
/// thread is already unwinding, the call goes on (rule R1): it fails only
/// if it would have to wait.
#[inline]
fn entry_checkpoint() {
    if let crate::loom::chan_cancel::Check::Raise(cancelled) = crate::loom::chan_cancel::check() {
        crate::loom::chan_cancel::raise(cancelled)
    }
}
