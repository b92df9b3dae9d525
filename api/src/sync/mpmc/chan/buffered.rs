//! The ring side of `Chan`: sends and receives of bounded channels that
//! keep their messages in a `Ring`, and the handshake that wakes their
//! waiters. See "Buffered channels" at the top of `chan.rs`.

use super::*;

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
    pub(super) fn notify_receivers(&self) {
        loom_fence();
        if self.recv_waiting.load(Ordering::SeqCst) != 0 {
            let mut inner = self.lock();
            let mut woken = Woken::waiter(inner.receivers.select().map(|e| e.cx));
            inner.recv_observers.notify(&mut woken.observers);
            drop(inner);
            woken.unpark();
        }
    }

    /// After a pop freed a slot: as `notify_receivers`, for senders; the
    /// `SeqCst` read-modify-write is the pop's CAS on `head`.
    pub(super) fn notify_senders(&self) {
        loom_fence();
        if self.send_waiting.load(Ordering::SeqCst) != 0 {
            let mut inner = self.lock();
            let mut woken = Woken::waiter(inner.senders.select().map(|e| e.cx));
            inner.send_observers.notify(&mut woken.observers);
            drop(inner);
            woken.unpark();
        }
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
    /// with `Timeout(msg)`.
    #[track_caller]
    pub(super) fn ring_send(
        &self,
        ring: &Ring<T>,
        mut msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        loop {
            msg = match self.ring_try_send(ring, msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(msg)) => {
                    return Err(SendTimeoutError::Disconnected(msg))
                }
                Err(TrySendError::Full(msg)) => msg,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(msg));
            }
            let why = WaitSite::here(WaitReason::Send(crate::loom::object_id(self)));
            if let Err(abort) =
                Context::with_current(|cx| self.ring_wait(ring, cx, deadline, true, why))
            {
                abort.raise_if_cancelled();
                return Err(SendTimeoutError::Timeout(msg));
            }
        }
    }

    /// Ring receive, blocking until `deadline`. A cancellation point:
    /// raises, or while unwinding fails with `Timeout`.
    #[track_caller]
    pub(super) fn ring_recv(
        &self,
        ring: &Ring<T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        loop {
            match self.ring_try_recv(ring) {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
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
