//! The list side of `Chan`: sends and receives of unbounded channels that
//! keep their messages in a `List`, and the handshake that wakes their
//! receivers. See "Unbounded channels" at the top of `chan.rs`.

use super::*;

impl<T> Chan<T> {
    /// Publishes how many receive entries and observers the wait lists
    /// hold (list channels; called with the lock held, by `Locked`'s drop).
    /// `Relaxed`: the stores are ordered by the lock among themselves, and
    /// against the list by the handshake's `SeqCst` operations. Senders
    /// never wait on an unbounded channel, so `send_waiting` stays 0.
    pub(super) fn publish_list_waiting(&self, inner: &Inner<T>) {
        if self.list.is_some() {
            let receivers = inner.receivers.0.len() + inner.recv_observers.0.len();
            self.recv_waiting.store(receivers, Ordering::Relaxed);
        }
    }

    /// The registration half of the handshake: publish the new entry, then
    /// (`SeqCst` fence) look at the list. The caller still holds the lock
    /// and reports `list_ready` to its waiter.
    pub(super) fn register_list(&self, inner: &Inner<T>) {
        self.publish_list_waiting(inner);
        fence(Ordering::SeqCst);
    }

    /// Whether a list receive could proceed now: a message (or a claimed
    /// slot about to be written), or disconnection.
    pub(super) fn list_ready(&self, list: &List<T>) -> bool {
        list.has_message() || list.is_disconnected()
    }

    /// List send (never blocks): appends, then wakes a receiver if one
    /// waits (`notify_receivers`: the `SeqCst` load of `recv_waiting` after
    /// the push's `SeqCst` claim).
    pub(super) fn list_send(&self, list: &List<T>, msg: T) -> Result<(), T> {
        list.push(msg)?;
        self.notify_receivers();
        Ok(())
    }

    /// List receive without blocking.
    pub(super) fn list_try_recv(&self, list: &List<T>) -> Result<T, TryRecvError> {
        match list.pop() {
            Pop::Msg(msg) => Ok(msg),
            Pop::Empty => Err(TryRecvError::Empty),
            Pop::Disconnected => Err(TryRecvError::Disconnected),
        }
    }

    /// List receive, blocking until `deadline`. A cancellation point:
    /// raises, or while unwinding fails with `Timeout`. Inlined try, wait
    /// out of line, as `ring_recv`.
    #[track_caller]
    #[inline]
    pub(super) fn list_recv(
        &self,
        list: &List<T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        match self.list_try_recv(list) {
            Ok(msg) => Ok(msg),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => self.list_recv_blocking(list, deadline),
        }
    }

    /// `list_recv` once the list was empty: waits, then tries again.
    #[track_caller]
    #[inline(never)]
    fn list_recv_blocking(
        &self,
        list: &List<T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let why = WaitSite::here(WaitReason::Recv(crate::loom::object_id(self)));
            if let Err(abort) = Context::with_current(|cx| self.list_wait(list, cx, deadline, why))
            {
                abort.raise_if_cancelled();
                return Err(RecvTimeoutError::Timeout);
            }
            match self.list_try_recv(list) {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// Waits until a list receive may proceed: registers an entry,
    /// re-checks the list after the handshake's fence, and waits unless it
    /// became ready. `Ok` means "retry" (selected, disconnected, or ready
    /// after all; if cancelled by now, the retry still comes first, rule
    /// R2); `Err` means it gave up (deadline or cancellation) and its entry
    /// is withdrawn. As `ring_wait`, for receives only.
    fn list_wait(
        &self,
        list: &List<T>,
        cx: &Arc<Context>,
        deadline: Option<Instant>,
        why: WaitSite,
    ) -> Result<(), Abort> {
        let mut inner = self.lock();
        cx.reset();
        inner.receivers.push(cx, FIRST_OPERATION, None);
        self.register_list(&inner);
        if inner.disconnected || self.list_ready(list) {
            // Ready after all: withdraw (nobody can have selected the
            // entry, we hold the lock) and retry.
            inner.receivers.remove(cx, FIRST_OPERATION);
            return Ok(());
        }
        drop(inner);
        if let Err(abort) = cx.wait_until(deadline, why) {
            self.lock().receivers.remove(cx, FIRST_OPERATION);
            return Err(abort);
        }
        Ok(())
    }
}
