//! A channel for exactly one value.
//!
//! [`Sender::send`] consumes the sender, so at most one value is ever
//! sent; it hands the value back if the receiver is gone. The receiver
//! sees [`RecvError`] once the sender is dropped without sending (or after
//! it took the value). Waiting for the value is a cancellation point (see
//! [`spool::cancel`](crate::cancel)).
//!
//! ```
//! let (tx, rx) = spool::sync::oneshot::channel();
//! spool::thread::spawn(move || tx.send(6 * 7).unwrap());
//! assert_eq!(rx.recv(), Ok(42));
//! ```

use std::fmt;
use std::time::Duration;

use crate::sync::mpmc;

pub use crate::sync::mpmc::{RecvError, RecvTimeoutError, SendError, TryRecvError};

/// Creates a one-shot channel.
///
/// ```
/// let (tx, rx) = spool::sync::oneshot::channel::<&str>();
/// drop(tx);
/// assert!(rx.recv().is_err());
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpmc::bounded(1);
    (Sender { inner: tx }, Receiver { inner: rx })
}

/// Sends the one value; see [`channel`].
///
/// ```
/// let (tx, rx) = spool::sync::oneshot::channel();
/// tx.send(1).unwrap();
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct Sender<T> {
    inner: mpmc::Sender<T>,
}

impl<T> Sender<T> {
    /// Sends `value`, never blocking. Fails, handing the value back, if the
    /// receiver was dropped.
    ///
    /// ```
    /// use spool::sync::oneshot::{channel, SendError};
    /// let (tx, rx) = channel();
    /// drop(rx);
    /// assert_eq!(tx.send("lost?"), Err(SendError("lost?")));
    /// ```
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        // Capacity one and a single send: only disconnection can fail it.
        self.inner
            .try_send(value)
            .map_err(|e| SendError(e.into_inner()))
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

/// Receives the one value; see [`channel`].
///
/// ```
/// let (tx, rx) = spool::sync::oneshot::channel();
/// tx.send(()).unwrap();
/// rx.recv().unwrap();
/// ```
pub struct Receiver<T> {
    inner: mpmc::Receiver<T>,
}

impl<T> Receiver<T> {
    /// Blocks until the value arrives; fails if the sender is dropped
    /// without sending, or the value was already received.
    ///
    /// A cancellation point: a cancelled receive leaves the value (if it
    /// comes) in the channel and unwinds. While the thread is already
    /// unwinding, a cancellation makes it fail with `RecvError` instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = spool::sync::oneshot::channel::<i32>();
    /// assert!(spool::time::timeout(Duration::from_millis(5), || rx.recv()).is_err());
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv(), Ok(1)); // still there for the next receive
    /// ```
    ///
    /// ```
    /// let (tx, rx) = spool::sync::oneshot::channel();
    /// spool::thread::spawn(move || tx.send(5).unwrap());
    /// assert_eq!(rx.recv(), Ok(5));
    /// assert!(rx.recv().is_err());
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner.recv()
    }

    /// Takes the value if it has arrived, without blocking.
    ///
    /// ```
    /// use spool::sync::oneshot::{channel, TryRecvError};
    /// let (tx, rx) = channel::<i32>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv()
    }

    /// As [`recv`](Receiver::recv), giving up after `timeout`. A
    /// cancellation point; while the thread is already unwinding, a
    /// cancellation makes it fail with `Timeout` at once.
    ///
    /// ```
    /// use spool::sync::oneshot::{channel, RecvTimeoutError};
    /// use std::time::Duration;
    /// let (_tx, rx) = channel::<i32>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.inner.recv_timeout(timeout)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}
