//! The parties of the locked protocol: wait-list entries, the lists of
//! blocked senders and receivers, `Select::ready` observers, and the
//! rendezvous `Packet`. See "Waiters and selection" and "Packets" at the
//! top of `chan.rs`.

use super::*;

/// A rendezvous message in transit between two parties.
///
/// # Invariant
/// `msg` is accessed by one party at a time, handed over by the context
/// CAS and by `ready` (see "Packets" at the top of this file):
/// a packet starts empty and is settled exactly once, by the party that
/// selected its waiter (or was handed the packet through its context):
/// filled with the message, or — a select that chose this hand-off and
/// then dropped its selection — left empty (`abandon`). Either way that
/// party then sets `ready` with `Release`; the waiter reads `msg` only
/// after seeing `ready` with `Acquire`, and finds `None` if abandoned.
pub(crate) struct Packet<T> {
    msg: UnsafeCell<Option<T>>,
    ready: AtomicBool,
    /// Whom to unpark after filling, when the filler does not know it from
    /// a wait-list entry (a receiver waiting on a select's send).
    pub(super) waiter: Option<Arc<Context>>,
}

// SAFETY: the message moves between threads (hence `T: Send`) and `msg` is
// never accessed by two threads at once (the type's invariant), so sharing
// `&Packet<T>` across threads is sound.
unsafe impl<T: Send> Sync for Packet<T> {}
// SAFETY: as above; owning a `Packet<T>` only owns an `Option<T>`.
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    pub(super) fn empty(waiter: Option<Arc<Context>>) -> Arc<Packet<T>> {
        Arc::new(Packet {
            msg: UnsafeCell::new(None),
            ready: AtomicBool::new(false),
            waiter,
        })
    }

    /// Puts the message in and marks the packet ready. The caller then
    /// unparks the waiter.
    ///
    /// # Safety
    /// The caller is the one party allowed to fill this packet (it won the
    /// CAS selecting its waiter, or was handed it through its context), and
    /// the packet is empty.
    pub(super) unsafe fn fill(&self, msg: T) {
        // SAFETY: by the contract, nobody else touches `msg` until `ready`
        // is seen set, which happens after this write.
        unsafe { *self.msg.get() = Some(msg) };
        self.ready.store(true, Ordering::Release);
    }

    /// Fills the packet and wakes its waiter (a select completing a send).
    ///
    /// # Safety
    /// As for `fill`; `waiter` is the waiting party.
    pub(crate) unsafe fn fill_and_wake(&self, msg: T, waiter: &Context) {
        // SAFETY: forwarded contract.
        unsafe { self.fill(msg) };
        waiter.unpark();
    }

    /// Settles the packet without a message and wakes its waiter: a select
    /// that chose this hand-off dropped its selection (or panicked) before
    /// sending. The waiter's `wait_take` returns `None` and it tries its
    /// receive again, as if it had never been paired.
    ///
    /// # Safety
    /// As for `fill` (the caller is the one party allowed to settle this
    /// packet, which is empty); `waiter` is the waiting party.
    pub(crate) unsafe fn abandon_and_wake(&self, waiter: &Context) {
        // Publishes nothing but the decision: `msg` stays `None`.
        self.ready.store(true, Ordering::Release);
        waiter.unpark();
    }

    /// Blocks (as the packet's waiter) until the packet is settled, then
    /// takes the message: `None` if the sender abandoned the hand-off
    /// (`abandon_and_wake`).
    ///
    /// `cx` is the waiter's own context, the one its settling party
    /// unparks: a brief spin first (the party usually settles the packet
    /// right after selecting us), then it announces the sleep (see "Waking
    /// only a sleeper").
    ///
    /// # Safety
    /// The caller is the packet's waiter, and calls this once.
    pub(crate) unsafe fn wait_take(&self, cx: &Context) -> Option<T> {
        let ready = || self.ready.load(Ordering::Acquire);
        if !Context::spin_until(ready) {
            cx.announce_sleep();
            while !ready() {
                thread::wait();
            }
        }
        // SAFETY: we are the waiter and saw `ready` (Acquire), so the
        // settling party's write (if any) happened before, and nobody else
        // touches `msg` any more.
        unsafe { (*self.msg.get()).take() }
    }
}

/// A blocked operation on one channel.
///
/// # Invariant
/// An entry carrying `msg` (a blocked rendezvous `send`) leaves its list
/// only with the message still in it: popped by the selector whose CAS
/// chose it (which takes the message), or removed by its owner after its
/// wait ended otherwise (which takes the message back). Nobody else drops
/// such an entry, so the message is never lost.
pub(super) struct Entry<T> {
    pub(super) cx: Arc<Context>,
    pub(super) oper: usize,
    pub(super) packet: Option<Arc<Packet<T>>>,
    pub(super) msg: Option<T>,
}

/// Blocked senders or receivers, oldest first.
pub(super) struct WaitList<T>(pub(super) VecDeque<Entry<T>>);

impl<T> WaitList<T> {
    /// Selects the oldest entry whose waiter is still waiting, dropping
    /// stale entries on the way (see "Waiters and selection") — except
    /// those carrying a message, which their owners remove (see `Entry`).
    pub(super) fn select(&mut self) -> Option<Entry<T>> {
        let mut at = 0;
        while let Some(entry) = self.0.get(at) {
            if entry.cx.try_select(entry.oper) {
                return self.0.remove(at);
            }
            if entry.msg.is_some() {
                at += 1;
            } else {
                self.0.remove(at);
            }
        }
        None
    }

    pub(super) fn push(&mut self, cx: &Arc<Context>, oper: usize, packet: Option<Arc<Packet<T>>>) {
        self.0.push_back(Entry {
            cx: cx.clone(),
            oper,
            packet,
            msg: None,
        });
    }

    /// Registers a blocked rendezvous send of `msg`: a receiver that
    /// selects the entry takes the message straight out of it.
    pub(super) fn push_message(&mut self, cx: &Arc<Context>, msg: T) {
        self.0.push_back(Entry {
            cx: cx.clone(),
            oper: FIRST_OPERATION,
            packet: None,
            msg: Some(msg),
        });
    }

    /// Removes the entry of `cx`'s operation `oper`, if still listed.
    pub(super) fn remove(&mut self, cx: &Context, oper: usize) -> Option<Entry<T>> {
        let at = self.0.iter().position(|e| e.cx.is(cx) && e.oper == oper)?;
        self.0.remove(at)
    }

    /// Whether a waiter other than `cx` could be selected now.
    pub(super) fn has_waiting_other(&self, cx: Option<&Context>) -> bool {
        self.0
            .iter()
            .any(|e| !cx.is_some_and(|cx| e.cx.is(cx)) && e.cx.state() == WAITING)
    }

    /// Selects every entry with `DISCONNECTED`; collects those it decided.
    /// Entries carrying a message stay for their owners to remove.
    pub(super) fn disconnect(&mut self, woken: &mut Vec<Arc<Context>>) {
        self.0.retain(|entry| {
            if entry.cx.try_select(DISCONNECTED) {
                woken.push(entry.cx.clone());
            }
            entry.msg.is_some()
        });
    }
}

/// `Select::ready` waiters: told (selected) whenever the operation they
/// watch may have become possible, never obliged to perform it.
pub(super) struct Observers(pub(super) Vec<(Arc<Context>, usize)>);

impl Observers {
    /// Selects every observer still waiting; collects them for `unpark`.
    pub(super) fn notify(&mut self, woken: &mut Vec<Arc<Context>>) {
        for (cx, oper) in self.0.drain(..) {
            if cx.try_select(oper) {
                woken.push(cx);
            }
        }
    }

    pub(super) fn remove(&mut self, cx: &Context, oper: usize) {
        self.0.retain(|(c, o)| !(c.is(cx) && *o == oper));
    }
}
