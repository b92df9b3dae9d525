//! The ring side of `Chan`: sends and receives of bounded channels that
//! keep their messages in a `Ring`, and the handshake that wakes their
//! waiters. See "Buffered channels" at the top of `chan.rs`.

use super::*;

/// How a blocked ring `send`'s wait ended.
enum SendWait<T> {
    /// A receiver moved the message into the ring.
    Sent,
    /// Try again with the message: room appeared, or the channel was
    /// disconnected.
    Retry(T),
    /// The deadline passed or the thread was cancelled; the message is
    /// back.
    GaveUp(Abort, T),
}

impl<T> Chan<T> {
    /// Publishes the wait lists' sizes (ring channels; called with the lock
    /// held). `Relaxed`: the stores are ordered by the lock among
    /// themselves, and against the ring by the fences of "Buffered
    /// channels".
    pub(super) fn publish_waiting(&self, inner: &Inner<T>) {
        if self.ring.is_some() {
            let receivers = inner.receivers.0.len() + inner.recv_observers.0.len();
            let senders = inner.senders.0.len() + inner.send_observers.0.len();
            self.recv_waiting.store(receivers, Ordering::Relaxed);
            self.send_waiting.store(senders, Ordering::Relaxed);
        }
    }

    /// The registration half of the handshake in "Buffered channels":
    /// publish the new entry, then (`SeqCst` fence) look at the ring. The
    /// caller still holds the lock and reports `ring_ready` to its waiter.
    pub(super) fn register_ring(&self, inner: &Inner<T>) {
        self.publish_waiting(inner);
        fence(Ordering::SeqCst);
    }

    /// After a push (or a hole written): the other half of the handshake.
    /// `Ring::write` published the slot with a `SeqCst` read-modify-write,
    /// and this `SeqCst` load comes after it (see "Buffered channels" for
    /// why that pair needs no fence); only if someone waits do we lock and
    /// select one receiver (and tell the observers).
    #[inline]
    pub(super) fn notify_receivers(&self) {
        loom_fence();
        if self.recv_waiting.load(Ordering::SeqCst) != 0 {
            self.wake_a_receiver();
        }
    }

    /// `notify_receivers` when someone waits: out of line, so that the
    /// path without waiters, inlined into every send, stays short.
    #[inline(never)]
    fn wake_a_receiver(&self) {
        let mut inner = self.lock();
        let mut woken = Woken::waiter(inner.receivers.select().map(|e| e.cx));
        inner.recv_observers.notify(&mut woken.observers);
        drop(inner);
        woken.unpark();
    }

    /// After a pop freed a slot: as `notify_receivers`, for senders; the
    /// `SeqCst` read-modify-write is the pop's CAS on `head`. The oldest
    /// blocked `send` is not merely woken to retry: its message is moved
    /// into the ring here (see "Hand-off to blocked senders").
    #[inline]
    pub(super) fn notify_senders(&self) {
        loom_fence();
        if self.send_waiting.load(Ordering::SeqCst) != 0 {
            self.hand_off_to_a_sender();
        }
    }

    /// `notify_senders` when someone waits: out of line, as
    /// `wake_a_receiver`.
    #[inline(never)]
    fn hand_off_to_a_sender(&self) {
        let ring = self
            .ring
            .as_ref()
            .expect("only ring channels count waiters");
        let mut inner = self.lock();
        let mut woken = Woken::default();
        let wrote = self.wake_a_sender(ring, &mut inner, &mut woken);
        inner.send_observers.notify(&mut woken.observers);
        drop(inner);
        woken.unpark();
        if wrote {
            // A message (or a hole) is in the ring now.
            self.notify_receivers();
        }
    }

    /// Under the lock, after a slot was freed: completes the oldest blocked
    /// `send` by writing its message into the ring (its owner then only
    /// returns), or selects the oldest select's send (which retries), and
    /// puts whom to unpark in `woken`. Returns whether it wrote a slot.
    ///
    /// A slot is claimed before the sender's context is decided, so a
    /// selected sender's message always has a place: if another sender
    /// took the freed slot first, the claim fails and the blocked senders
    /// stay listed for the next pop (whose count load sees them). If the
    /// CAS then fails (the owner is giving up: deadline or cancellation,
    /// and takes its message back itself), the claim serves the next
    /// entry, or is written as a hole that receivers skip.
    fn wake_a_sender(&self, ring: &Ring<T>, inner: &mut Inner<T>, woken: &mut Woken) -> bool {
        let list = &mut inner.senders.0;
        let mut claim = None;
        let mut at = 0;
        let mut wrote = false;
        while let Some(entry) = list.get(at) {
            if entry.msg.is_none() {
                // A select's send: selected, it retries (and claims a slot
                // itself); stale, it goes (see `WaitList::select`).
                let selected = entry.cx.try_select(entry.oper);
                let entry = list.remove(at).expect("listed");
                if selected {
                    woken.waiter = Some(entry.cx);
                    break;
                }
                continue;
            }
            if claim.is_none() {
                match ring.claim() {
                    Ok(fresh) => claim = Some(fresh),
                    // Another sender filled the freed slot, or the channel
                    // is disconnected (whose waking is `disconnect`'s).
                    Err(_) => break,
                }
            }
            if entry.cx.try_select(entry.oper) {
                let entry = list.remove(at).expect("listed");
                let msg = entry
                    .msg
                    .expect("spool channel: a blocked send's entry holds its message");
                let claim = claim.take().expect("claimed above");
                // SAFETY: `claim` was made on this ring just above.
                unsafe { ring.write(claim, Some(msg)) };
                wrote = true;
                woken.waiter = Some(entry.cx);
                break;
            }
            // Its owner is giving up and will take the message back.
            at += 1;
        }
        if let Some(claim) = claim {
            // SAFETY: made on this ring above. Nobody took it: a hole.
            unsafe { ring.write(claim, None) };
            wrote = true;
        }
        wrote
    }

    /// Ring send without blocking.
    pub(super) fn ring_try_send(&self, ring: &Ring<T>, msg: T) -> Result<(), TrySendError<T>> {
        match ring.claim() {
            Ok(claim) => {
                // SAFETY: claimed on this ring just now.
                unsafe { ring.write(claim, Some(msg)) };
                self.notify_receivers();
                Ok(())
            }
            Err(Refused::Full) => Err(TrySendError::Full(msg)),
            Err(Refused::Disconnected) => Err(TrySendError::Disconnected(msg)),
        }
    }

    /// Ring receive without blocking.
    pub(super) fn ring_try_recv(&self, ring: &Ring<T>) -> Result<T, TryRecvError> {
        let mut freed = false;
        let pop = ring.pop(&mut freed);
        if freed {
            self.notify_senders();
        }
        match pop {
            Pop::Msg(msg) => Ok(msg),
            Pop::Empty => Err(TryRecvError::Empty),
            Pop::Disconnected => Err(TryRecvError::Disconnected),
        }
    }

    /// Whether a ring send (`sending`) or receive could proceed now.
    pub(super) fn ring_ready(&self, ring: &Ring<T>, sending: bool) -> bool {
        if sending {
            ring.has_room()
        } else {
            ring.has_message() || ring.is_disconnected()
        }
    }

    /// Ring send, blocking until `deadline`. A cancellation point (see
    /// "Cancellation"): raises, dropping `msg`, or while unwinding fails
    /// with `Timeout(msg)`. The try is inlined into the caller; the wait
    /// is out of line (`ring_send_blocking`), which keeps a send that
    /// finds room short. With the same split in `ring_recv`,
    /// `list_recv`, `notify_*`, `Chan::send`/`recv` (rendezvous out of
    /// line) and `Receiver::recv` (timers out of line), callgrind counts
    /// per message sent and received by one green thread (batches of
    /// 1,024): bounded(1024) 306 → 244 instructions, unbounded 306 → 241,
    /// bounded(1) 324 → 263 (crossbeam-channel between OS threads: 212,
    /// 196, 225).
    #[track_caller]
    #[inline]
    pub(super) fn ring_send(
        &self,
        ring: &Ring<T>,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        match self.ring_try_send(ring, msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(msg)) => Err(SendTimeoutError::Disconnected(msg)),
            Err(TrySendError::Full(msg)) => self.ring_send_blocking(ring, msg, deadline),
        }
    }

    /// `ring_send` once the ring was full: waits, then tries again.
    #[track_caller]
    #[inline(never)]
    fn ring_send_blocking(
        &self,
        ring: &Ring<T>,
        mut msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(msg));
            }
            let why = WaitSite::here(WaitReason::Send(crate::loom::object_id(self)));
            match Context::with_current(|cx| self.ring_send_wait(ring, cx, msg, deadline, why)) {
                SendWait::Sent => return Ok(()),
                SendWait::Retry(back) => msg = back,
                SendWait::GaveUp(abort, back) => {
                    abort.raise_if_cancelled();
                    return Err(SendTimeoutError::Timeout(back));
                }
            }
            msg = match self.ring_try_send(ring, msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(msg)) => {
                    return Err(SendTimeoutError::Disconnected(msg))
                }
                Err(TrySendError::Full(msg)) => msg,
            };
        }
    }

    /// A blocked ring `send`: registers an entry holding `msg`, re-checks
    /// the ring after the handshake's fence, and waits unless there is
    /// room after all. A receiver that frees a slot moves the message into
    /// the ring and selects the entry (`wake_a_sender`), so the sender
    /// wakes with its send done and does not race the other senders for
    /// the slot again. A cancellation point, as `ring_wait`.
    fn ring_send_wait(
        &self,
        ring: &Ring<T>,
        cx: &Arc<Context>,
        msg: T,
        deadline: Option<Instant>,
        why: WaitSite,
    ) -> SendWait<T> {
        let mut inner = self.lock();
        cx.reset();
        inner.senders.push_message(cx, msg);
        self.register_ring(&inner);
        if inner.disconnected || self.ring_ready(ring, true) {
            // Nobody can have selected the entry: we hold the lock.
            return SendWait::Retry(Self::take_back(&mut inner, cx));
        }
        drop(inner);
        match cx.wait_until(deadline, why) {
            // `wake_a_sender` wrote the message into the ring.
            Ok(FIRST_OPERATION) => SendWait::Sent,
            // Disconnected: the retry fails with the message.
            Ok(_) => SendWait::Retry(Self::take_back(&mut self.lock(), cx)),
            Err(abort) => SendWait::GaveUp(abort, Self::take_back(&mut self.lock(), cx)),
        }
    }

    /// Removes `cx`'s blocked-send entry, which no receiver selected, and
    /// returns its message (see `Entry`'s invariant).
    fn take_back(inner: &mut Inner<T>, cx: &Context) -> T {
        inner
            .senders
            .remove(cx, FIRST_OPERATION)
            .and_then(|entry| entry.msg)
            .expect("spool channel: an unselected blocked send is listed with its message")
    }

    /// Ring receive, blocking until `deadline`. A cancellation point:
    /// raises, or while unwinding fails with `Timeout`. Inlined try, wait
    /// out of line, as `ring_send`.
    #[track_caller]
    #[inline]
    pub(super) fn ring_recv(
        &self,
        ring: &Ring<T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        match self.ring_try_recv(ring) {
            Ok(msg) => Ok(msg),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => self.ring_recv_blocking(ring, deadline),
        }
    }

    /// `ring_recv` once the ring was empty: waits, then tries again.
    #[track_caller]
    #[inline(never)]
    fn ring_recv_blocking(
        &self,
        ring: &Ring<T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let why = WaitSite::here(WaitReason::Recv(crate::loom::object_id(self)));
            if let Err(abort) =
                Context::with_current(|cx| self.ring_wait(ring, cx, deadline, false, why))
            {
                abort.raise_if_cancelled();
                return Err(RecvTimeoutError::Timeout);
            }
            match self.ring_try_recv(ring) {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// Waits until a ring send (`sending`) or receive may proceed: registers
    /// an entry, re-checks the ring after the handshake's fence, and waits
    /// unless it became ready. `Ok` means "retry": the waiter was selected
    /// (something changed; if it is cancelled by now, the retry still
    /// comes first, rule R2), the channel was disconnected, or it was ready
    /// after all. `Err` means it gave up (deadline or cancellation) and its
    /// entry is withdrawn.
    pub(super) fn ring_wait(
        &self,
        ring: &Ring<T>,
        cx: &Arc<Context>,
        deadline: Option<Instant>,
        sending: bool,
        why: WaitSite,
    ) -> Result<(), Abort> {
        let mut inner = self.lock();
        cx.reset();
        let list = if sending {
            &mut inner.senders
        } else {
            &mut inner.receivers
        };
        list.push(cx, FIRST_OPERATION, None);
        self.register_ring(&inner);
        if inner.disconnected || self.ring_ready(ring, sending) {
            // Ready after all: withdraw (nobody can have selected the
            // entry, we hold the lock) and retry.
            let list = if sending {
                &mut inner.senders
            } else {
                &mut inner.receivers
            };
            list.remove(cx, FIRST_OPERATION);
            return Ok(());
        }
        drop(inner);
        if let Err(abort) = cx.wait_until(deadline, why) {
            let mut inner = self.lock();
            if sending {
                inner.senders.remove(cx, FIRST_OPERATION);
            } else {
                inner.receivers.remove(cx, FIRST_OPERATION);
            }
            return Err(abort);
        }
        // Selected (something changed) or disconnected: the caller retries.
        Ok(())
    }
}
