//! Multi-producer single-consumer channels mirroring [`std::sync::mpsc`].
//!
//! The items, signatures and error types (re-exported from std) are
//! std's, so a program ports by replacing `std::sync::mpsc` with
//! `spool::sync::mpsc`. Blocking calls park the calling green thread
//! rather than its worker OS thread, and work on plain OS threads too.
//!
//! Unlike std's, the blocking calls are cancellation points (see
//! [`spool::cancel`](crate::cancel) and "Cancellation" in
//! [`mpmc`]): a `recv` or a waiting `SyncSender::send`
//! whose thread is cancelled withdraws and unwinds, having taken or handed
//! over nothing, unless the message moved before the cancel was seen.
//! While the thread is already unwinding, they fail with their error
//! instead (a send handing its value back).
//!
//! ```
//! use spool::sync::mpsc;
//! let (tx, rx) = mpsc::sync_channel(0); // rendezvous
//! let t = spool::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
//! t.join().unwrap();
//! ```

use std::fmt;
use std::time::Duration;

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use crate::sync::mpmc;

/// Creates an unbounded channel: sends never block.
///
/// ```
/// let (tx, rx) = spool::sync::mpsc::channel();
/// tx.send(1).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpmc::unbounded();
    (Sender { inner: tx }, Receiver { inner: rx })
}

/// Creates a channel holding at most `bound` messages; `sync_channel(0)`
/// is a rendezvous channel.
///
/// ```
/// use spool::sync::mpsc::{sync_channel, TrySendError};
/// let (tx, rx) = sync_channel(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let (tx, rx) = mpmc::bounded(bound);
    (SyncSender { inner: tx }, Receiver { inner: rx })
}

fn send_error<T>(e: mpmc::SendError<T>) -> SendError<T> {
    SendError(e.0)
}

fn recv_timeout_error(e: mpmc::RecvTimeoutError) -> RecvTimeoutError {
    match e {
        mpmc::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
        mpmc::RecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
    }
}

/// The sending half of a [`channel`]; clone it for more producers.
///
/// ```
/// let (tx, rx) = spool::sync::mpsc::channel();
/// let tx2 = tx.clone();
/// spool::thread::spawn(move || tx2.send(2).unwrap()).join().unwrap();
/// tx.send(1).unwrap();
/// assert_eq!(rx.iter().take(2).sum::<i32>(), 3);
/// ```
pub struct Sender<T> {
    inner: mpmc::Sender<T>,
}

impl<T> Sender<T> {
    /// Sends without blocking; fails, handing the value back, if the
    /// receiver was dropped.
    ///
    /// ```
    /// use spool::sync::mpsc::{channel, SendError};
    /// let (tx, rx) = channel();
    /// drop(rx);
    /// assert_eq!(tx.send(1), Err(SendError(1)));
    /// ```
    #[track_caller]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t).map_err(send_error)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The sending half of a [`sync_channel`]; sends block while it is full.
///
/// ```
/// let (tx, rx) = spool::sync::mpsc::sync_channel(1);
/// tx.send(1).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub struct SyncSender<T> {
    inner: mpmc::Sender<T>,
}

impl<T> SyncSender<T> {
    /// Sends, blocking while the channel is full (at bound 0: until a
    /// receiver takes the value). Fails, handing the value back, if the
    /// receiver was dropped.
    ///
    /// A cancellation point if it has to wait: a cancelled send hands
    /// nothing over and unwinds, dropping the value, unless the receiver
    /// took it first (then it returns `Ok`). While the thread is already
    /// unwinding, a cancellation makes it fail with `SendError(t)` instead.
    ///
    /// ```
    /// let (tx, rx) = spool::sync::mpsc::sync_channel(0);
    /// spool::thread::spawn(move || assert_eq!(rx.recv(), Ok(9)));
    /// tx.send(9).unwrap();
    /// ```
    #[track_caller]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t).map_err(send_error)
    }

    /// Sends without blocking.
    ///
    /// ```
    /// use spool::sync::mpsc::{sync_channel, TrySendError};
    /// let (tx, rx) = sync_channel(0);
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Full(1))); // nobody waits
    /// drop(rx);
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Disconnected(1)));
    /// ```
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(t).map_err(|e| match e {
            mpmc::TrySendError::Full(t) => TrySendError::Full(t),
            mpmc::TrySendError::Disconnected(t) => TrySendError::Disconnected(t),
        })
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        SyncSender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

/// The receiving half of a [`channel`] or [`sync_channel`].
///
/// ```
/// let (tx, rx) = spool::sync::mpsc::channel();
/// tx.send("a").unwrap();
/// assert_eq!(rx.recv(), Ok("a"));
/// ```
pub struct Receiver<T> {
    inner: mpmc::Receiver<T>,
}

impl<T> Receiver<T> {
    /// Receives without blocking.
    ///
    /// ```
    /// use spool::sync::mpsc::{channel, TryRecvError};
    /// let (tx, rx) = channel::<i32>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv().map_err(|e| match e {
            mpmc::TryRecvError::Empty => TryRecvError::Empty,
            mpmc::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Receives, blocking while the channel is empty; fails once it is
    /// empty and every sender is dropped.
    ///
    /// A cancellation point if it has to wait: a cancelled receive takes
    /// no value and unwinds, unless one was handed to it first (then it
    /// returns it). While the thread is already unwinding, a cancellation
    /// makes it fail with `RecvError` — its only error — although senders
    /// may remain.
    ///
    /// ```
    /// use spool::sync::mpsc::{channel, RecvError};
    /// let (tx, rx) = channel::<i32>();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Err(RecvError));
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner.recv().map_err(|_| RecvError)
    }

    /// As [`recv`](Receiver::recv), giving up after `timeout`
    /// (`Duration::MAX` waits forever, as in std). A cancellation point;
    /// while the thread is already unwinding, a cancellation makes it fail
    /// with `Timeout` at once.
    ///
    /// ```
    /// use spool::sync::mpsc::{channel, RecvTimeoutError};
    /// use std::time::Duration;
    /// let (_tx, rx) = channel::<i32>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.inner.recv_timeout(timeout).map_err(recv_timeout_error)
    }

    /// A blocking iterator that ends when every sender is dropped. Each
    /// `next` is a cancellation point, as [`recv`](Receiver::recv) (while
    /// the thread is already unwinding, a cancellation ends it).
    ///
    /// ```
    /// let (tx, rx) = spool::sync::mpsc::channel();
    /// spool::thread::spawn(move || (0..4).for_each(|i| tx.send(i).unwrap()));
    /// assert_eq!(rx.iter().count(), 4);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages available now.
    ///
    /// ```
    /// let (tx, rx) = spool::sync::mpsc::channel();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Blocking iterator over a [`Receiver`]'s messages.
///
/// ```
/// let (tx, rx) = spool::sync::mpsc::channel::<u8>();
/// drop(tx);
/// let mut it: spool::sync::mpsc::Iter<'_, u8> = rx.iter();
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator over a [`Receiver`]'s messages.
///
/// ```
/// let (_tx, rx) = spool::sync::mpsc::channel::<u8>();
/// let mut it: spool::sync::mpsc::TryIter<'_, u8> = rx.try_iter();
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator over a [`Receiver`]'s messages.
///
/// ```
/// let (tx, rx) = spool::sync::mpsc::channel();
/// tx.send(1).unwrap();
/// drop(tx);
/// let it: spool::sync::mpsc::IntoIter<i32> = rx.into_iter();
/// assert_eq!(it.collect::<Vec<_>>(), [1]);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
