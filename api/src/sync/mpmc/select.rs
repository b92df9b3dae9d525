//! `Select` and the `select!` macro: wait on several channel operations and
//! complete exactly one, chosen fairly at random among the ready ones.
//!
//! A select runs in rounds (see "Waiters and selection" in `chan.rs`):
//! 1. *Try*: attempt every operation without blocking, in a fresh random
//!    order; the first that can proceed wins. A receive takes its message
//!    (or its disconnection error) right away; a send reserves a slot, or
//!    selects a waiting rendezvous receiver, and sends when the user calls
//!    [`SelectedOperation::send`].
//! 2. *Register*: one `Context` for the whole select, one wait-list entry
//!    per operation. Each registration reports whether its operation may
//!    have become ready meanwhile; if one does, the select aborts its wait
//!    and starts a new round instead of parking.
//! 3. *Wait* until some channel selects one of the entries (or the
//!    deadline, or a timer operation's due time, passes), then remove every
//!    entry. A selected operation is completed: a rendezvous through its
//!    packet, a buffered one by trying it again (if that fails, someone
//!    else took what woke us, and a new round starts).
//!
//! The wait of step 3 is a cancellation point. A cancelled select removes
//! every entry, as at its deadline, and then unwinds (while its thread is
//! already unwinding: returns as at its deadline, or — without one —
//! waits on, masked). If a channel selected one of its operations first,
//! it completes that one as usual and returns it, and the cancellation is
//! raised at the next cancellation point. See "Cancellation" in `chan.rs`.
//!
//! `ready` runs the same rounds with *observers* instead of wait-list
//! entries: a channel selects every observer whenever the watched
//! operation may have become possible, and an observer owes nothing in
//! return, so it never swallows a message or a rendezvous meant for a
//! thread that would perform it.
//!
//! The chosen operation is moved out of the `Select` into the
//! `SelectedOperation` (a fresh copy takes its place), so the selected
//! operation does not borrow the `Select`, as in crossbeam-channel.
//!
//! # Threads
//! A `Select` is `Send + Sync` whatever its channels carry, as
//! crossbeam-channel's is, so it can be built on one thread and run on
//! another (say, a scoped thread). Its operations hold `&Receiver<T>` and
//! `&Sender<T>`, which are not `Send` for `T: !Send`: run on another
//! thread, the select takes a message out of a channel there. That is
//! sound because an operation never *uses* a message, it only moves it:
//! * through the handles it calls only channel methods that synchronise
//!   through the channel's lock and atomics, whatever `T` is;
//! * a received message leaves only through `SelectedOperation::recv`,
//!   which takes the receiver by reference on the calling thread — Rust
//!   lets a `&Receiver<T>` reach a thread only where `T` may be used —
//!   and a send's message enters only through `SelectedOperation::send`,
//!   likewise;
//! * an operation dropped while holding a message leaks it instead of
//!   dropping it, and a rendezvous packet is dropped only empty;
//! * `SelectedOperation` is neither `Send` nor `Sync` (as crossbeam's), so
//!   a taken message stays on the thread that took it.
//!
//! So a `Select` over a `Receiver<Rc<_>>` moved to another thread can take
//! an `Rc` there but can neither hand it out nor drop it there. Like
//! crossbeam's, a `Select` is not `UnwindSafe`; `SelectedOperation` is.
//!
//! # Cost
//! Most selects find an operation ready in the first round (step 1), and
//! `select!` builds a new `Select` each time, so building and running one
//! is the hot path, and allocation was most of it: the operations were
//! boxed trait objects (one allocation each, plus one for the fresh copy
//! of the selected one), and each round collected the indices of the
//! present operations and of the registered ones into two more vectors.
//! Now:
//! * an operation is stored in place in its entry (`OpBox`: a 48-byte
//!   buffer and a function that views it as the operation's type, which
//!   is how it is reached and dropped); every send and every receive of a
//!   message up to 24 bytes fits, larger ones are still boxed;
//! * each entry carries its index, and a fair select shuffles the entries
//!   themselves, so a round needs no index vector, and the context names
//!   an operation by its position, which stays put for the round;
//!   registrations are a prefix of the entries, kept as a count.
//!
//! A select over four ready receives then allocates once (the entries'
//! vector). What the rounds do — every operation tried in a fresh random
//! order, one registration per operation, the cancellation check on entry
//! and at the wait — is unchanged. Measured on a 2-core shared machine:
//! instructions (callgrind) for a loop of one `try_send` to each of four
//! channels and four selects over their receivers, per select: unbounded
//! 2,562 → 1,549, bounded(1024) 2,418 → 1,392. `cargo bench -p
//! spool-peers --bench channels -- select`, ratio of spool's median to
//! crossbeam-channel's in the same run, two runs before and after:
//! `unbounded_select_rx` 2.11, 2.28 → 1.80, 1.77; `unbounded_select_both`
//! 2.61, 2.77 → 2.17, 2.47; `bounded1024_select_rx` 1.09, 1.30 → 1.10,
//! 1.01; `bounded1024_select_both` 1.64, 1.95 → 1.30, 1.54. The
//! `bounded0` and `bounded1` rows, where most selects park, are dominated
//! by parking and waking and stay ahead of crossbeam's (0.3–0.7).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool_runtime::trace::WaitReason;

use super::chan::{Packet, SendSlot};
use super::context::{Abort, Context, WaitSite, ABORTED, FIRST_OPERATION};
use super::error::{ReadyTimeoutError, TryReadyError};
use super::{
    sleep_until, Flavor, Receiver, RecvError, SelectTimeoutError, SendError, Sender, TryRecvError,
    TrySelectError,
};
use crate::loom::chan_cancel;

/// One operation of a select, with its type erased.
trait Operation<'a> {
    /// Attempts the operation without blocking; `true` if it can complete.
    fn try_complete(&mut self) -> bool;
    /// Adds a wait-list entry for operation `oper` of `cx`; `true` if the
    /// operation may be ready already.
    fn register(&mut self, cx: &Arc<Context>, oper: usize) -> bool;
    /// Removes the entry added by `register`.
    fn unregister(&mut self, cx: &Context, oper: usize);
    /// Completes the selection of this operation; `false` if it must be
    /// retried in a new round.
    fn accept(&mut self, cx: &Context) -> bool;
    /// Whether the operation could proceed now, without performing it.
    fn is_ready(&self) -> bool;
    /// Adds `cx` as an observer of this operation; `true` if ready already.
    fn watch(&self, cx: &Arc<Context>, oper: usize) -> bool;
    /// Removes the observer added by `watch`.
    fn unwatch(&self, cx: &Context, oper: usize);
    /// When a timer operation may next be ready.
    fn due(&self) -> Option<Instant>;
    /// Address of the `Sender`/`Receiver`, to check the user passes the
    /// same one to `SelectedOperation::{send, recv}`.
    fn address(&self) -> *const ();
    fn is_send(&self) -> bool;
    /// The same operation, not yet attempted.
    fn fresh(&self) -> OpBox<'a>;
    /// Gives back whatever a selected operation holds for its counterpart
    /// (a send's claimed slot or rendezvous hand-off) when it will not be
    /// completed. Idempotent.
    fn release(&mut self) {}
}

/// An operation as a `Select` holds it. `Send + Sync` so that a `Select`
/// is, as crossbeam-channel's is, whatever its channels carry; see
/// "Threads" at the top of this file for why that is sound.
type DynOp<'a> = dyn Operation<'a> + Send + Sync + 'a;

/// Room for an operation inside its `Select` entry: a receive of messages
/// up to 24 bytes and every send fit, so adding them allocates nothing
/// (see "Cost" at the top of this file).
type OpBuf = MaybeUninit<[usize; 6]>;

/// An operation, stored in place when it fits in `OpBuf`, else boxed; a
/// `Box<DynOp>` that mostly does not allocate.
enum OpBox<'a> {
    Inline {
        buf: OpBuf,
        /// Views `buf` as the operation stored in it (`inline_op::<O>`,
        /// which knows its type).
        view: unsafe fn(*mut OpBuf) -> *mut DynOp<'a>,
        /// The auto traits of `DynOp` (`Send + Sync`, not unwind-safe),
        /// which the bytes in `buf` do not carry.
        _op: PhantomData<Box<DynOp<'a>>>,
    },
    Boxed(Box<DynOp<'a>>),
}

/// `OpBox::Inline`'s `view` for operations of type `O`.
///
/// # Safety
/// `buf` holds a live `O`, written by `OpBox::new`.
unsafe fn inline_op<'a, O: Operation<'a> + Send + Sync + 'a>(buf: *mut OpBuf) -> *mut DynOp<'a> {
    buf.cast::<O>()
}

impl<'a> OpBox<'a> {
    fn new<O: Operation<'a> + Send + Sync + 'a>(op: O) -> OpBox<'a> {
        if size_of::<O>() <= size_of::<OpBuf>() && align_of::<O>() <= align_of::<OpBuf>() {
            let mut buf = OpBuf::uninit();
            // SAFETY: `O` fits in `buf` (size and alignment checked above),
            // which is ours and uninitialised; from here `buf` holds it, and
            // `view` (typed for `O`) is how it is reached and dropped.
            unsafe { buf.as_mut_ptr().cast::<O>().write(op) };
            OpBox::Inline {
                buf,
                view: inline_op::<O>,
                _op: PhantomData,
            }
        } else {
            OpBox::Boxed(Box::new(op))
        }
    }
}

impl<'a> Deref for OpBox<'a> {
    type Target = DynOp<'a>;
    fn deref(&self) -> &DynOp<'a> {
        match self {
            OpBox::Inline { buf, view, .. } => {
                // SAFETY: `buf` holds the operation `view` was made for
                // (`OpBox::new`); it is only read through this shared view.
                unsafe { &*view((buf as *const OpBuf).cast_mut()) }
            }
            OpBox::Boxed(op) => &**op,
        }
    }
}

impl DerefMut for OpBox<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            // SAFETY: as in `deref`, with `buf` borrowed mutably.
            OpBox::Inline { buf, view, .. } => unsafe { &mut *view(buf) },
            OpBox::Boxed(op) => &mut **op,
        }
    }
}

impl Drop for OpBox<'_> {
    fn drop(&mut self) {
        if let OpBox::Inline { buf, view, .. } = self {
            // SAFETY: `buf` holds the operation (`OpBox::new`), dropped
            // once, here; nothing reads `buf` afterwards.
            unsafe { ptr::drop_in_place(view(buf)) };
        }
    }
}

struct RecvOp<'a, T> {
    receiver: &'a Receiver<T>,
    result: Option<Result<T, RecvError>>,
    /// The packet of this round's rendezvous registration.
    packet: Option<Arc<Packet<T>>>,
}

// SAFETY: what keeps `RecvOp` from being `Send`/`Sync` for every `T` is
// that it reaches a `Receiver<T>` and holds messages. Both are harmless
// here (invariant "Threads" at the top of this file): through the receiver
// it only calls channel methods that synchronise through the channel's
// lock and atomics whatever `T` is; a message is only moved (out of the
// channel or a filled packet into `result`), never read, cloned or dropped
// by the operation; it leaves only through `SelectedOperation::recv`,
// whose caller hands in this very receiver on its own thread, which Rust
// allows only where the message may be used; and dropping an operation
// that still holds one leaks it (`Drop` below). The packet of a
// registration is filled only for the operation the select then accepts,
// which takes the message before anything else happens to it, so an
// operation drops packets only empty. The `&self` methods (reached
// through a shared `Select`: `Clone`) do not touch `result` or `packet`.
unsafe impl<T> Send for RecvOp<'_, T> {}
// SAFETY: see `Send` above.
unsafe impl<T> Sync for RecvOp<'_, T> {}

impl<T> Drop for RecvOp<'_, T> {
    fn drop(&mut self) {
        // A message that was not handed out through
        // `SelectedOperation::recv` is leaked, not dropped: this thread
        // may not be one where `T` may be dropped (see "Threads").
        if let Some(Ok(msg)) = self.result.take() {
            std::mem::forget(msg);
        }
    }
}

impl<'a, T> Operation<'a> for RecvOp<'a, T> {
    fn try_complete(&mut self) -> bool {
        let result = match &self.receiver.flavor {
            Flavor::Chan(chan) => chan.try_recv(),
            timer => timer.timer_try_recv(),
        };
        self.result = match result {
            Ok(msg) => Some(Ok(msg)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
            Err(TryRecvError::Empty) => return false,
        };
        true
    }

    fn register(&mut self, cx: &Arc<Context>, oper: usize) -> bool {
        match &self.receiver.flavor {
            Flavor::Chan(chan) => {
                let (ready, packet) = chan.register_recv(cx, oper);
                self.packet = packet;
                ready
            }
            // Timers are waited for through `due`.
            _ => false,
        }
    }

    fn unregister(&mut self, cx: &Context, oper: usize) {
        if let Flavor::Chan(chan) = &self.receiver.flavor {
            chan.unregister_recv(cx, oper);
        }
    }

    fn accept(&mut self, cx: &Context) -> bool {
        match self.packet.take() {
            // Rendezvous: the sender that selected us fills the packet.
            Some(packet) => {
                // SAFETY: `register` created this packet with us (this
                // select's thread) as its waiter, and takes it once.
                match unsafe { packet.wait_take(cx) } {
                    Some(msg) => {
                        self.result = Some(Ok(msg));
                        true
                    }
                    // The sender was a select that dropped its selection
                    // (see "Abandoned selections" in `chan.rs`): next round.
                    None => false,
                }
            }
            None => self.try_complete(),
        }
    }

    fn is_ready(&self) -> bool {
        match &self.receiver.flavor {
            Flavor::Chan(chan) => chan.recv_ready(),
            Flavor::Never => false,
            timer => timer.timer_due().is_some_and(|due| Instant::now() >= due),
        }
    }

    fn watch(&self, cx: &Arc<Context>, oper: usize) -> bool {
        match &self.receiver.flavor {
            Flavor::Chan(chan) => chan.watch(cx, oper, false),
            _ => false,
        }
    }

    fn unwatch(&self, cx: &Context, oper: usize) {
        if let Flavor::Chan(chan) = &self.receiver.flavor {
            chan.unwatch(cx, oper, false);
        }
    }

    fn due(&self) -> Option<Instant> {
        match &self.receiver.flavor {
            Flavor::Chan(_) | Flavor::Never => None,
            timer => timer.timer_due(),
        }
    }

    fn address(&self) -> *const () {
        (self.receiver as *const Receiver<T>).cast()
    }

    fn is_send(&self) -> bool {
        false
    }

    fn fresh(&self) -> OpBox<'a> {
        OpBox::new(RecvOp {
            receiver: self.receiver,
            result: None,
            packet: None,
        })
    }
}

struct SendOp<'a, T> {
    sender: &'a Sender<T>,
    slot: Option<SendSlot<T>>,
}

// SAFETY: a `SendOp` holds no message (the message is handed over in
// `SelectedOperation::send`, with the user's sender on the user's thread),
// and through the sender it only calls channel methods that synchronise
// through the channel's lock and atomics whatever `T` is. The rendezvous
// packet it may hold belongs to a waiting receiver and is empty until
// `SelectedOperation::send` fills it, so dropping it drops no message.
unsafe impl<T> Send for SendOp<'_, T> {}
// SAFETY: see `Send` above; the `&self` methods do not touch `slot`.
unsafe impl<T> Sync for SendOp<'_, T> {}

impl<'a, T> Operation<'a> for SendOp<'a, T> {
    fn try_complete(&mut self) -> bool {
        self.slot = self.sender.chan().select_try_send();
        self.slot.is_some()
    }

    fn register(&mut self, cx: &Arc<Context>, oper: usize) -> bool {
        self.sender.chan().register_send(cx, oper)
    }

    fn unregister(&mut self, cx: &Context, oper: usize) {
        self.sender.chan().unregister_send(cx, oper);
    }

    fn accept(&mut self, cx: &Context) -> bool {
        let packet = cx.take_packet();
        if packet.is_null() {
            // Buffered: a slot freed up; try to claim it.
            return self.try_complete();
        }
        // SAFETY: a non-null pointer in our context was stored by a
        // rendezvous receiver of *this* operation's channel (only the
        // selector of operation `oper` stores one, and it selected this
        // operation), and `take_packet` swapped it out, so we use it once.
        self.slot = Some(unsafe { self.sender.chan().packet_slot(packet) });
        true
    }

    fn is_ready(&self) -> bool {
        self.sender.chan().send_ready()
    }

    fn watch(&self, cx: &Arc<Context>, oper: usize) -> bool {
        self.sender.chan().watch(cx, oper, true)
    }

    fn unwatch(&self, cx: &Context, oper: usize) {
        self.sender.chan().unwatch(cx, oper, true);
    }

    fn due(&self) -> Option<Instant> {
        None
    }

    fn address(&self) -> *const () {
        (self.sender as *const Sender<T>).cast()
    }

    fn is_send(&self) -> bool {
        true
    }

    fn fresh(&self) -> OpBox<'a> {
        OpBox::new(SendOp {
            sender: self.sender,
            slot: None,
        })
    }

    fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.sender.chan().release_send(slot);
        }
    }
}

impl<T> Drop for SendOp<'_, T> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Waits on several channel operations and completes one of them.
///
/// Add operations with [`send`](Select::send) and [`recv`](Select::recv)
/// (each returns the operation's index), then call one of the select
/// methods; complete the returned [`SelectedOperation`] with the same
/// sender or receiver. When several operations are ready, one is chosen
/// at random. An operation on a disconnected channel counts as ready (it
/// completes with an error). The `ready` methods only report which
/// operation looks ready, leaving it to the caller to perform it.
///
/// ```
/// use spool::sync::mpmc::{unbounded, Select};
///
/// let (s1, r1) = unbounded::<i32>();
/// let (s2, r2) = unbounded::<&str>();
/// s2.send("two").unwrap();
///
/// let mut sel = Select::new();
/// let op1 = sel.recv(&r1);
/// let op2 = sel.recv(&r2);
/// let oper = sel.select();
/// match oper.index() {
///     i if i == op1 => panic!("r1 is empty: {:?}", oper.recv(&r1)),
///     i if i == op2 => assert_eq!(oper.recv(&r2), Ok("two")),
///     _ => unreachable!(),
/// }
/// # drop(s1);
/// ```
///
/// A `Select` is `Send + Sync`, as crossbeam-channel's is, whatever its
/// channels carry: it can be built on one thread and run on another.
///
/// ```
/// use spool::sync::mpmc::{unbounded, Select};
///
/// let (s, r) = unbounded();
/// let mut sel = Select::new();
/// sel.recv(&r);
/// let r = &r;
/// std::thread::scope(|scope| {
///     scope.spawn(move || assert_eq!(sel.select().recv(r), Ok(1)));
///     s.send(1).unwrap();
/// });
/// ```
///
/// The blocking methods are cancellation points (see
/// [`spool::cancel`](crate::cancel)): a cancelled select withdraws all its
/// operations and unwinds without performing any.
///
/// ```
/// use spool::sync::mpmc::{bounded, Select};
/// use std::time::Duration;
///
/// let (s, r) = bounded::<i32>(0);
/// let mut sel = Select::new();
/// sel.recv(&r);
/// let cancelled = spool::time::timeout(Duration::from_millis(5), || sel.select().index());
/// assert!(cancelled.is_err());
/// // Nothing of the select is left: a rendezvous send finds no receiver.
/// assert!(s.try_send(1).is_err());
/// ```
pub struct Select<'a> {
    /// The operations, each with its index. A fair select shuffles them in
    /// place at every round (see "Cost" at the top of this file); a biased
    /// one keeps them in the order they were added.
    operations: Vec<Entry<'a>>,
    /// The index of the next operation added.
    next_index: usize,
    biased: bool,
}

/// An operation of a `Select` and the index `send`/`recv` returned for it.
struct Entry<'a> {
    index: usize,
    op: OpBox<'a>,
}

/// The outcome a select waits for.
#[derive(Clone, Copy)]
enum Wait {
    Now,
    Until(Option<Instant>),
}

impl<'a> Select<'a> {
    /// An empty select.
    ///
    /// ```
    /// let sel = spool::sync::mpmc::Select::new();
    /// # drop(sel);
    /// ```
    pub fn new() -> Select<'a> {
        Select {
            operations: Vec::new(),
            next_index: 0,
            biased: false,
        }
    }

    /// A select that, when several operations are ready, picks the one
    /// added first instead of a random one.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s, r) = unbounded();
    /// s.send(1).unwrap();
    /// let mut sel = Select::new_biased();
    /// let first = sel.recv(&r);
    /// sel.recv(&r);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), first);
    /// assert_eq!(oper.recv(&r), Ok(1));
    /// ```
    pub fn new_biased() -> Select<'a> {
        Select {
            operations: Vec::new(),
            next_index: 0,
            biased: true,
        }
    }

    /// Adds a send on `sender`; returns its index.
    ///
    /// ```
    /// use spool::sync::mpmc::{bounded, Select};
    /// let (s, r) = bounded(1);
    /// let mut sel = Select::new();
    /// let i = sel.send(&s);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), i);
    /// oper.send(&s, 10).unwrap();
    /// assert_eq!(r.recv(), Ok(10));
    /// ```
    pub fn send<T>(&mut self, sender: &'a Sender<T>) -> usize {
        self.push(OpBox::new(SendOp { sender, slot: None }))
    }

    /// Adds a receive on `receiver`; returns its index.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s, r) = unbounded();
    /// s.send('x').unwrap();
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// assert_eq!(sel.select().recv(&r), Ok('x'));
    /// ```
    pub fn recv<T>(&mut self, receiver: &'a Receiver<T>) -> usize {
        self.push(OpBox::new(RecvOp {
            receiver,
            result: None,
            packet: None,
        }))
    }

    fn push(&mut self, operation: OpBox<'a>) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        self.operations.push(Entry {
            index,
            op: operation,
        });
        index
    }

    /// Removes the operation with index `index`; other indices stay valid.
    ///
    /// # Panics
    /// If there is no such operation (never added, or already removed).
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s1, r1) = unbounded::<i32>();
    /// let (s2, r2) = unbounded();
    /// s1.send(1).unwrap();
    /// s2.send(2).unwrap();
    /// let mut sel = Select::new();
    /// let i1 = sel.recv(&r1);
    /// sel.recv(&r2);
    /// sel.remove(i1);
    /// assert_eq!(sel.select().recv(&r2), Ok(2));
    /// ```
    pub fn remove(&mut self, index: usize) {
        let pos = self.operations.iter().position(|e| e.index == index);
        let pos = pos.unwrap_or_else(|| panic!("Select::remove: no operation with index {index}"));
        // `remove`, not `swap_remove`: a biased select keeps its order.
        self.operations.remove(pos);
    }

    /// Completes a ready operation if there is one, without blocking.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s, r) = unbounded();
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// assert!(sel.try_select().is_err());
    /// s.send(1).unwrap();
    /// assert_eq!(sel.try_select().unwrap().recv(&r), Ok(1));
    /// ```
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        match self.run(Wait::Now) {
            Some(index) => Ok(self.selected(index)),
            None => Err(TrySelectError),
        }
    }

    /// Blocks until an operation can complete.
    ///
    /// A cancellation point (see [`spool::cancel`](crate::cancel)): a
    /// cancelled select withdraws every operation and unwinds, having
    /// performed none (an operation a channel completed for it before the
    /// cancel was seen is returned instead, and the cancellation is raised
    /// at the next cancellation point). While the thread is already
    /// unwinding, it has no error to return and blocks as usual.
    ///
    /// # Panics
    /// If the select has no operations: it would block forever.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s, r) = unbounded();
    /// spool::thread::spawn(move || s.send(3).unwrap());
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// assert_eq!(sel.select().recv(&r), Ok(3));
    /// ```
    #[track_caller]
    pub fn select(&mut self) -> SelectedOperation<'a> {
        let index = self
            .run(Wait::Until(None))
            .expect("a select without deadline returns an operation");
        self.selected(index)
    }

    /// Blocks until an operation can complete, or `timeout` passes.
    ///
    /// A cancellation point, as [`select`](Select::select); while the
    /// thread is already unwinding, a cancellation makes it return
    /// `Err(SelectTimeoutError)` at once, as if the timeout had passed.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// use std::time::Duration;
    /// let (_s, r) = unbounded::<()>();
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// assert!(sel.select_timeout(Duration::from_millis(1)).is_err());
    /// ```
    #[track_caller]
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_until(Instant::now().checked_add(timeout))
    }

    /// Blocks until an operation can complete, or `deadline` passes. A
    /// cancellation point, as [`select_timeout`](Select::select_timeout).
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// use std::time::{Duration, Instant};
    /// let (s, r) = unbounded();
    /// s.send(1).unwrap();
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// let oper = sel.select_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert_eq!(oper.recv(&r), Ok(1));
    /// ```
    #[track_caller]
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_until(Some(deadline))
    }

    #[track_caller]
    fn select_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        match self.run(Wait::Until(deadline)) {
            Some(index) => Ok(self.selected(index)),
            None => Err(SelectTimeoutError),
        }
    }

    /// Returns the index of an operation that looks ready, without
    /// performing it; the caller then performs it (say, with `try_recv`),
    /// which may fail if another thread got there first.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s, r) = unbounded();
    /// let mut sel = Select::new();
    /// let i = sel.recv(&r);
    /// assert!(sel.try_ready().is_err());
    /// s.send(1).unwrap();
    /// assert_eq!(sel.try_ready(), Ok(i));
    /// assert_eq!(r.try_recv(), Ok(1));
    /// ```
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        self.run_ready(Wait::Now).ok_or(TryReadyError)
    }

    /// Blocks until an operation looks ready and returns its index (see
    /// [`try_ready`](Select::try_ready)).
    ///
    /// A cancellation point: a cancelled `ready` stops watching and
    /// unwinds; while the thread is already unwinding, it blocks as usual.
    ///
    /// # Panics
    /// If the select has no operations: it would block forever.
    ///
    /// ```
    /// use spool::sync::mpmc::{bounded, Select};
    /// let (s, r) = bounded(0);
    /// let t = spool::thread::spawn(move || r.recv().unwrap());
    /// let mut sel = Select::new();
    /// let i = sel.send(&s);
    /// assert_eq!(sel.ready(), i); // a receiver is waiting
    /// s.send(5).unwrap();
    /// assert_eq!(t.join().unwrap(), 5);
    /// ```
    #[track_caller]
    pub fn ready(&mut self) -> usize {
        self.run_ready(Wait::Until(None))
            .expect("a ready without deadline returns an operation")
    }

    /// As [`ready`](Select::ready), giving up after `timeout`; while the
    /// thread is already unwinding, a cancellation makes it give up at
    /// once with `Err(ReadyTimeoutError)`.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// use std::time::Duration;
    /// let (_s, r) = unbounded::<i32>();
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// assert!(sel.ready_timeout(Duration::from_millis(1)).is_err());
    /// ```
    #[track_caller]
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        self.run_ready(Wait::Until(Instant::now().checked_add(timeout)))
            .ok_or(ReadyTimeoutError)
    }

    /// As [`ready`](Select::ready), giving up at `deadline` (or, while the
    /// thread is already unwinding, when it is cancelled).
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// use std::time::Instant;
    /// let (s, r) = unbounded();
    /// s.send(()).unwrap();
    /// let mut sel = Select::new();
    /// let i = sel.recv(&r);
    /// assert_eq!(sel.ready_deadline(Instant::now()), Ok(i));
    /// ```
    #[track_caller]
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        self.run_ready(Wait::Until(Some(deadline)))
            .ok_or(ReadyTimeoutError)
    }

    /// Moves the operation at position `pos` out (leaving a fresh copy in
    /// its place).
    fn selected(&mut self, pos: usize) -> SelectedOperation<'a> {
        let entry = &mut self.operations[pos];
        let fresh = entry.op.fresh();
        let operation = std::mem::replace(&mut entry.op, fresh);
        SelectedOperation {
            operation,
            index: entry.index,
            completed: false,
            _not_send: PhantomData,
        }
    }

    /// `Ok` if there are operations to run, else what to return.
    fn present(&self, wait: Wait, what: &str) -> Result<(), Option<usize>> {
        if !self.operations.is_empty() {
            return Ok(());
        }
        match wait {
            Wait::Now => Err(None),
            Wait::Until(None) => panic!("Select::{what} with no operations would block forever"),
            Wait::Until(deadline) => {
                sleep_until(deadline);
                Err(None)
            }
        }
    }

    /// The select loop; see the top of this file. Returns the position (in
    /// `operations`) of the operation that can complete, or `None` when the wait is over (the
    /// deadline passed, or the thread is cancelled while unwinding and the
    /// wait has a deadline). A cancellation point: see the top of this
    /// file.
    #[track_caller]
    fn run(&mut self, wait: Wait) -> Option<usize> {
        if let Wait::Until(_) = wait {
            // A cancellation point on entry too, so a select loop whose
            // operations are always ready is still cancelled.
            if let chan_cancel::Check::Raise(cancelled) = chan_cancel::check() {
                chan_cancel::raise(cancelled)
            }
        }
        if let Err(none) = self.present(wait, "select") {
            return none;
        }
        let n = self.operations.len();
        let why = WaitSite::here(WaitReason::Select(n));
        let mut cx: Option<Arc<Context>> = None;
        let mut masked = false;
        loop {
            // Positions stay put from here to the end of the round: the
            // context names an operation by its position.
            if !self.biased {
                shuffle(&mut self.operations);
            }
            for pos in 0..n {
                if self.op(pos).try_complete() {
                    return Some(pos);
                }
            }
            let deadline = match wait {
                Wait::Now => return None,
                Wait::Until(deadline) => deadline,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }

            let cx = cx.get_or_insert_with(Context::current);
            cx.reset();
            let mut wake = deadline;
            let mut ready = false;
            // Operations `0..registered` have an entry.
            let mut registered = 0;
            for pos in 0..n {
                let op = self.op(pos);
                if let Some(due) = op.due() {
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                }
                registered = pos + 1;
                if op.register(cx, FIRST_OPERATION + pos) {
                    ready = true;
                    break;
                }
            }
            let outcome = if ready {
                if cx.try_select(ABORTED) {
                    Err(Abort::Deadline)
                } else {
                    Ok(cx.state())
                }
            } else if masked {
                cx.wait_masked(wake, why)
            } else {
                cx.wait_until(wake, why)
            };
            for pos in 0..registered {
                self.op(pos).unregister(cx, FIRST_OPERATION + pos);
            }
            match outcome {
                // Selected by a counterpart, even if we are cancelled by
                // now: complete the operation (rule R2).
                Ok(state) if state >= FIRST_OPERATION => {
                    let pos = state - FIRST_OPERATION;
                    if self.op(pos).accept(cx) {
                        return Some(pos);
                    }
                }
                // Every entry is withdrawn: raise, or while unwinding
                // return as at the deadline (a select without one has
                // nothing to return and blocks as usual from now on).
                Err(Abort::Cancelled(cancelled)) => chan_cancel::raise(cancelled),
                Err(Abort::Unwinding) => {
                    if deadline.is_some() {
                        return None;
                    }
                    masked = true;
                }
                // Aborted (something looked ready, a timer or the deadline
                // is due), disconnected, or a lost retry: next round.
                Ok(_) | Err(Abort::Deadline) => {}
            }
        }
    }

    /// The `ready` loop: as `run`, with observers instead of wait-list
    /// entries and without performing the operation.
    #[track_caller]
    fn run_ready(&mut self, wait: Wait) -> Option<usize> {
        if let Wait::Until(_) = wait {
            // A cancellation point on entry too, so a select loop whose
            // operations are always ready is still cancelled.
            if let chan_cancel::Check::Raise(cancelled) = chan_cancel::check() {
                chan_cancel::raise(cancelled)
            }
        }
        if let Err(none) = self.present(wait, "ready") {
            return none;
        }
        let n = self.operations.len();
        let why = WaitSite::here(WaitReason::Select(n));
        let mut cx: Option<Arc<Context>> = None;
        let mut masked = false;
        loop {
            if !self.biased {
                shuffle(&mut self.operations);
            }
            if let Some(entry) = self.operations.iter().find(|e| e.op.is_ready()) {
                return Some(entry.index);
            }
            let deadline = match wait {
                Wait::Now => return None,
                Wait::Until(deadline) => deadline,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            let cx = cx.get_or_insert_with(Context::current);
            cx.reset();
            let mut wake = deadline;
            let mut ready = false;
            // Operations `0..watched` have an observer.
            let mut watched = 0;
            for pos in 0..n {
                let op = self.op(pos);
                if let Some(due) = op.due() {
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                }
                watched = pos + 1;
                if op.watch(cx, FIRST_OPERATION + pos) {
                    ready = true;
                    break;
                }
            }
            let outcome = if ready {
                cx.try_select(ABORTED);
                Ok(ABORTED)
            } else if masked {
                cx.wait_masked(wake, why)
            } else {
                cx.wait_until(wake, why)
            };
            for pos in 0..watched {
                self.op(pos).unwatch(cx, FIRST_OPERATION + pos);
            }
            // An observer owes nothing: a cancellation simply ends the
            // wait once every observer is withdrawn.
            match outcome {
                Err(Abort::Cancelled(cancelled)) => chan_cancel::raise(cancelled),
                Err(Abort::Unwinding) => {
                    if deadline.is_some() {
                        return None;
                    }
                    masked = true;
                }
                // Whatever woke us, look again (the probe decides).
                Ok(_) | Err(Abort::Deadline) => {}
            }
        }
    }

    fn op(&mut self, pos: usize) -> &mut DynOp<'a> {
        &mut *self.operations[pos].op
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl<'a> Clone for Select<'a> {
    /// A select with the same operations (and indices), none attempted.
    fn clone(&self) -> Select<'a> {
        Select {
            operations: self
                .operations
                .iter()
                .map(|e| Entry {
                    index: e.index,
                    op: e.op.fresh(),
                })
                .collect(),
            next_index: self.next_index,
            biased: self.biased,
        }
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Select { .. }")
    }
}

/// The operation a select chose; complete it with
/// [`send`](SelectedOperation::send) or [`recv`](SelectedOperation::recv),
/// passing the same sender or receiver that was added.
///
/// # Dropping it uncompleted
/// A selected operation holds something for its counterpart until it is
/// completed: a chosen send on a rendezvous channel (`bounded(0)`) has
/// paired with a receiver that now waits for the message, a chosen send on
/// a bounded channel holds a free slot. Dropping the selected operation
/// without completing it — explicitly, or because its thread panics before
/// `send` — gives that back first: the receiver goes on waiting for another
/// sender (a blocking `recv`) or reports an empty channel (`try_recv`), and
/// the slot is freed. A chosen receive has already taken its message, which
/// is then leaked rather than dropped: the select may run on a thread
/// where the message must not be dropped (see `Select`'s `Send`).
///
/// # Panics
/// After giving back what it held, dropping it uncompleted panics with
/// "dropped \`SelectedOperation\` without completing the operation", as
/// crossbeam-channel does, since it is almost always a bug — except while
/// the thread is already panicking, when it stays silent (a second panic
/// there would abort the process).
///
/// ```
/// use spool::sync::mpmc::{bounded, Select};
/// let (s, r) = bounded::<i32>(0);
/// let receiver = spool::thread::spawn(move || r.recv());
/// let mut sel = Select::new();
/// sel.send(&s);
/// let oper = sel.select(); // paired with the waiting receiver
/// let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(oper)));
/// assert!(dropped.is_err()); // panics, after releasing the receiver
/// s.send(2).unwrap(); // which takes the next message instead
/// assert_eq!(receiver.join().unwrap(), Ok(2));
/// ```
///
/// Completing it:
///
/// ```
/// use spool::sync::mpmc::{unbounded, Select};
/// let (s, r) = unbounded();
/// s.send(1).unwrap();
/// let mut sel = Select::new();
/// let i = sel.recv(&r);
/// let oper = sel.select();
/// assert_eq!(oper.index(), i);
/// assert_eq!(oper.recv(&r), Ok(1));
/// ```
///
/// It is completed on the thread that selected it: like crossbeam-channel's,
/// it is neither `Send` nor `Sync` (a [`Select`] is both).
///
/// ```compile_fail
/// use spool::sync::mpmc::{unbounded, Select};
/// let (s, r) = unbounded::<i32>();
/// s.send(1).unwrap();
/// let mut sel = Select::new();
/// sel.recv(&r);
/// let oper = sel.select();
/// let r = &r;
/// std::thread::scope(|scope| {
///     scope.spawn(move || oper.recv(r)); // error: not `Send`
/// });
/// ```
pub struct SelectedOperation<'a> {
    operation: OpBox<'a>,
    index: usize,
    completed: bool,
    /// Neither `Send` nor `Sync`, as crossbeam-channel's: it is completed
    /// on the thread that selected it.
    _not_send: PhantomData<*const ()>,
}

// Unwind-safe as crossbeam-channel's is: a panic caught between selection
// and completion leaves the operation either completed or still holding
// what it will give back when dropped (see "Dropping it uncompleted").
impl UnwindSafe for SelectedOperation<'_> {}
impl RefUnwindSafe for SelectedOperation<'_> {}

impl<'a> SelectedOperation<'a> {
    /// The index of the chosen operation.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select};
    /// let (s, r) = unbounded();
    /// s.send(()).unwrap();
    /// let mut sel = Select::new();
    /// let i = sel.recv(&r);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), i);
    /// oper.recv(&r).unwrap();
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes the chosen send with `msg`; fails, handing `msg` back, if
    /// the channel is disconnected.
    ///
    /// # Panics
    /// If `sender` is not the one whose send was chosen.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, Select, SendError};
    /// let (s, r) = unbounded();
    /// drop(r);
    /// let mut sel = Select::new();
    /// sel.send(&s);
    /// assert_eq!(sel.select().send(&s, 1), Err(SendError(1)));
    /// ```
    pub fn send<'s, T>(mut self, sender: &'s Sender<T>, msg: T) -> Result<(), SendError<T>> {
        assert!(
            self.operation.is_send()
                && self.operation.address() == (sender as *const Sender<T>).cast(),
            "SelectedOperation::send: passed a sender that was not selected"
        );
        let operation: *mut DynOp<'a> = &mut *self.operation;
        // SAFETY: the operation is a `SendOp` (`is_send`) over the sender
        // at this very address. That sender is borrowed for `'a` by the
        // operation, so it is alive and is the object `sender` points at;
        // one object has one type, so the operation is a `SendOp<'a, T>`
        // with this `T`. Viewing its reference with the shorter lifetime
        // `'s` is sound: we only take `slot`, which does not involve it.
        let op = unsafe { &mut *(operation as *mut SendOp<'s, T>) };
        let slot = op
            .slot
            .take()
            .expect("a selected send holds its slot until completed");
        self.completed = true;
        sender.chan().complete_send(slot, msg).map_err(SendError)
    }

    /// Completes the chosen receive.
    ///
    /// # Panics
    /// If `receiver` is not the one whose receive was chosen.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, RecvError, Select};
    /// let (s, r) = unbounded::<i32>();
    /// drop(s);
    /// let mut sel = Select::new();
    /// sel.recv(&r);
    /// assert_eq!(sel.select().recv(&r), Err(RecvError));
    /// ```
    pub fn recv<'r, T>(mut self, receiver: &'r Receiver<T>) -> Result<T, RecvError> {
        assert!(
            !self.operation.is_send()
                && self.operation.address() == (receiver as *const Receiver<T>).cast(),
            "SelectedOperation::recv: passed a receiver that was not selected"
        );
        let operation: *mut DynOp<'a> = &mut *self.operation;
        // SAFETY: as in `send`: the operation is a `RecvOp` over the live
        // receiver at this address, hence a `RecvOp<'a, T>` with this `T`,
        // viewed with the shorter lifetime `'r` to take `result` only.
        let op = unsafe { &mut *(operation as *mut RecvOp<'r, T>) };
        self.completed = true;
        op.result
            .take()
            .expect("a selected receive holds its result until completed")
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        // Release first, so a waiting counterpart proceeds whatever happens
        // next (see "Abandoned selections" in `chan.rs`).
        self.operation.release();
        // std's answer, not `crate::thread::panicking`: std's panic count is
        // per OS thread, so it may also say `true` because another green
        // thread of this worker is suspended mid-unwind (then we only skip
        // a diagnostic), but it is never `false` while this thread unwinds,
        // where a second panic would abort the process.
        if !std::thread::panicking() {
            panic!("dropped `SelectedOperation` without completing the operation");
        }
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// xorshift64* state for choosing among ready operations. Per worker
    /// OS thread (not per green thread), which is fine: it is only read
    /// and written in one go, never borrowed across a switch.
    static RNG: Cell<u64> = Cell::new({
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ (&RNG as *const _ as u64);
        seed | 1
    });
}

/// Shuffles `order` (Fisher–Yates).
fn shuffle<T>(order: &mut [T]) {
    if order.len() < 2 {
        return;
    }
    RNG.with(|rng| {
        let mut x = rng.get();
        for i in (1..order.len()).rev() {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            order.swap(i, (r % (i as u64 + 1)) as usize);
        }
        rng.set(x);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::mpmc::{bounded, unbounded};

    /// The common operations are stored in place; a change that makes them
    /// bigger than `OpBuf` would bring back an allocation per operation.
    #[test]
    fn common_operations_fit_in_place() {
        fn fits<O>() -> bool {
            size_of::<O>() <= size_of::<OpBuf>() && align_of::<O>() <= align_of::<OpBuf>()
        }
        assert!(fits::<RecvOp<'static, usize>>());
        assert!(fits::<RecvOp<'static, String>>());
        assert!(fits::<SendOp<'static, [u8; 4096]>>());
        assert!(!fits::<RecvOp<'static, [u64; 8]>>());
    }

    /// Operations too big to store in place are boxed, and behave alike.
    #[test]
    fn boxed_and_inline_operations_mix() {
        let (s1, r1) = unbounded::<[u64; 8]>();
        let (s2, r2) = bounded::<String>(1);
        let mut sel = Select::new();
        let i1 = sel.recv(&r1);
        let i2 = sel.send(&s2);
        assert!(matches!(sel.operations[0].op, OpBox::Boxed(_)));
        assert!(matches!(sel.operations[1].op, OpBox::Inline { .. }));
        s1.send([7; 8]).unwrap();
        let mut got = (false, false);
        while got != (true, true) {
            let oper = sel.select();
            match oper.index() {
                i if i == i1 => {
                    assert_eq!(oper.recv(&r1), Ok([7; 8]));
                    got.0 = true;
                }
                i if i == i2 => {
                    oper.send(&s2, "x".to_string()).unwrap();
                    got.1 = true;
                }
                _ => unreachable!(),
            }
        }
        assert_eq!(r2.try_recv().as_deref(), Ok("x"));
        // A selection dropped uncompleted, while unwinding, drops the
        // boxed operation without a second panic.
        s1.send([1; 8]).unwrap();
        let mut sel = Select::new();
        sel.recv(&r1);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _oper = sel.select();
            std::panic::resume_unwind(Box::new("unwinding on purpose"));
        }));
        assert!(caught.is_err());
    }
}
