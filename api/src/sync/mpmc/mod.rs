//! Multi-producer multi-consumer channels with the public API of
//! [`crossbeam-channel`](https://docs.rs/crossbeam-channel/0.5), green-aware.
//!
//! A program ports by changing `crossbeam_channel` to `spool::sync::mpmc`
//! in its paths. Blocking operations park the calling *green* thread (or,
//! on a plain OS thread, block that thread), so the same channel connects
//! green threads on one worker, green threads on different workers, green
//! threads and OS threads, and OS threads with each other.
//!
//! ```
//! use spool::sync::mpmc::{bounded, select, unbounded};
//! use std::time::Duration;
//!
//! let (s, r) = bounded(0); // rendezvous
//! let worker = spool::thread::spawn(move || {
//!     for i in 0..3 {
//!         s.send(i).unwrap();
//!     }
//! });
//! assert_eq!(r.iter().collect::<Vec<_>>(), [0, 1, 2]); // ends when `s` drops
//! worker.join().unwrap();
//!
//! let (_keep, idle) = unbounded::<i32>();
//! select! {
//!     recv(idle) -> msg => panic!("unexpected {msg:?}"),
//!     default(Duration::from_millis(5)) => println!("timed out"),
//! }
//! ```
//!
//! The design and the argument that no wakeup is lost are written at the
//! top of `chan.rs`.
//!
//! # Cancellation
//! Every operation that waits — a receive on an empty channel, a send on a
//! full or rendezvous channel, [`Select`] and [`select!`], the iterators —
//! is a cancellation point (see [`spool::cancel`](crate::cancel)). When
//! the waiting thread is cancelled (a [`timeout`](crate::time::timeout)
//! around the call, [`JoinHandle::cancel`](crate::thread::JoinHandle::cancel),
//! a cancelled [`CancelScope`](crate::cancel::CancelScope)), the operation
//! withdraws from the channel and unwinds, having done nothing: a
//! cancelled receive took no message, a cancelled send handed nothing over
//! (its message is dropped with the unwind). If a counterpart completed
//! the operation before the cancellation was seen (a rendezvous partner
//! took or handed over the message), the call returns normally and the
//! cancellation is raised at the next cancellation point: no message is
//! lost or duplicated by a cancellation. Calls that do not wait (`try_*`,
//! or a receive that finds a message) never look at cancellation.
//!
//! While a thread is already unwinding (a destructor run by a panic or by
//! the cancellation itself), a cancelled call does not unwind again: a
//! receive fails with its error (`Timeout`, or [`RecvError`] for calls
//! that have no other), a send fails handing its message back, and a
//! select with a deadline returns as if it had passed; a select without
//! one blocks as usual.
//!
//! ```
//! use spool::sync::mpmc::unbounded;
//! use std::time::Duration;
//!
//! let (s, r) = unbounded::<i32>();
//! // Nobody sends in time: the timeout cancels the receive.
//! assert!(spool::time::timeout(Duration::from_millis(5), || r.recv()).is_err());
//! // The cancelled receive left nothing behind to catch this message.
//! s.send(1).unwrap();
//! assert_eq!(r.try_recv(), Ok(1));
//! ```
//!
//! # Differences from crossbeam-channel
//! * `select!` accepts at most 32 operations, and its error messages for
//!   malformed arms are less specific.
//! * [`TryReadyError`] and [`ReadyTimeoutError`] also implement `Display`
//!   and `Error`.
//! * Bounded channels of capacity 1 to 65,536 keep their messages in a
//!   lock-free ring as crossbeam's `array` flavour does, and unbounded
//!   channels in a lock-free block list as its `list` flavour does; larger
//!   bounded channels use a mutex-guarded queue (held for a few
//!   instructions, never across a park); see `benches/README.md` for what
//!   these cost.

mod chan;
mod context;
mod error;
mod list;
mod ring;
mod select;
mod select_macro;

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spool_runtime::trace::WaitReason;

use crate::loom::chan_cancel::{self, Check};

pub(crate) use chan::Chan;
use chan::UNBOUNDED;
pub use error::{
    ReadyTimeoutError, RecvError, RecvTimeoutError, SelectTimeoutError, SendError,
    SendTimeoutError, TryReadyError, TryRecvError, TrySelectError, TrySendError,
};
pub use select::{Select, SelectedOperation};

#[doc(inline)]
pub use crate::__spool_select as select;
#[doc(inline)]
pub use crate::__spool_select_biased as select_biased;

/// Creates a channel of unbounded capacity.
///
/// ```
/// let (s, r) = spool::sync::mpmc::unbounded();
/// for i in 0..1000 {
///     s.send(i).unwrap(); // never blocks
/// }
/// assert_eq!(r.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new_pair(UNBOUNDED)
}

/// Creates a channel holding at most `cap` messages; `bounded(0)` is a
/// rendezvous channel, where each send waits for a receive.
///
/// ```
/// use spool::sync::mpmc::{bounded, TrySendError};
/// let (s, r) = bounded(1);
/// s.send(1).unwrap();
/// assert_eq!(s.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(r.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    // `UNBOUNDED` is `usize::MAX`, a capacity no queue can reach anyway.
    new_pair(cap)
}

fn new_pair<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (
        Sender { chan: chan.clone() },
        Receiver {
            flavor: Flavor::Chan(chan),
        },
    )
}

/// A receiver that delivers one message, the instant it fires, after
/// `duration`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let r = spool::sync::mpmc::after(Duration::from_millis(5));
/// let fired = r.recv().unwrap();
/// assert!(fired >= start + Duration::from_millis(5));
/// ```
pub fn after(duration: Duration) -> Receiver<Instant> {
    at_deadline(Instant::now().checked_add(duration))
}

/// A receiver that delivers one message, `when`, at the instant `when`.
///
/// ```
/// use std::time::Instant;
/// let now = Instant::now();
/// assert_eq!(spool::sync::mpmc::at(now).recv(), Ok(now));
/// ```
pub fn at(when: Instant) -> Receiver<Instant> {
    at_deadline(Some(when))
}

fn at_deadline(deadline: Option<Instant>) -> Receiver<Instant> {
    Receiver {
        flavor: Flavor::At(
            Arc::new(AtTimer {
                deadline,
                delivered: AtomicBool::new(false),
            }),
            |t| t,
        ),
    }
}

/// A receiver that delivers a message (the instant it was due) every
/// `duration`; a slow reader gets the next tick a full period after it
/// took the last one.
///
/// ```
/// use std::time::Duration;
/// let ticks = spool::sync::mpmc::tick(Duration::from_millis(2));
/// let a = ticks.recv().unwrap();
/// let b = ticks.recv().unwrap();
/// assert!(b >= a + Duration::from_millis(2));
/// ```
pub fn tick(duration: Duration) -> Receiver<Instant> {
    Receiver {
        flavor: Flavor::Tick(
            Arc::new(TickTimer {
                period: duration,
                next: Mutex::new(Instant::now().checked_add(duration)),
            }),
            |t| t,
        ),
    }
}

/// A receiver that never delivers anything: useful to disable an arm of a
/// [`select!`].
///
/// ```
/// use spool::sync::mpmc::{never, select};
/// use std::time::Duration;
/// let r = never::<i32>();
/// select! {
///     recv(r) -> _ => unreachable!(),
///     default(Duration::from_millis(1)) => {}
/// }
/// ```
pub fn never<T>() -> Receiver<T> {
    Receiver {
        flavor: Flavor::Never,
    }
}

/// The one-shot timer behind [`after`] and [`at`].
pub(crate) struct AtTimer {
    /// `None`: further away than an `Instant` can express.
    deadline: Option<Instant>,
    /// Whether some clone of the receiver took the message.
    delivered: AtomicBool,
}

/// The periodic timer behind [`tick`].
pub(crate) struct TickTimer {
    period: Duration,
    /// When the next tick is due (`None`: never).
    next: Mutex<Option<Instant>>,
}

pub(crate) enum Flavor<T> {
    Chan(Arc<Chan<T>>),
    At(Arc<AtTimer>, fn(Instant) -> T),
    Tick(Arc<TickTimer>, fn(Instant) -> T),
    Never,
}

impl<T> Flavor<T> {
    /// A message without blocking, for the timer flavours.
    fn timer_try_recv(&self) -> Result<T, TryRecvError> {
        let now = Instant::now();
        match self {
            Flavor::At(timer, make) => {
                let due = timer.deadline.is_some_and(|d| now >= d);
                // `Relaxed`: the flag guards nothing but itself; the swap
                // makes exactly one receiver take the message.
                if due && !timer.delivered.swap(true, Ordering::Relaxed) {
                    Ok(make(timer.deadline.expect("due timers have a deadline")))
                } else {
                    Err(TryRecvError::Empty)
                }
            }
            Flavor::Tick(timer, make) => {
                let mut next = timer.next.lock().unwrap_or_else(|e| e.into_inner());
                match *next {
                    Some(due) if now >= due => {
                        *next = now.checked_add(timer.period);
                        Ok(make(due))
                    }
                    _ => Err(TryRecvError::Empty),
                }
            }
            Flavor::Never => Err(TryRecvError::Empty),
            Flavor::Chan(_) => unreachable!("timer_try_recv on a channel"),
        }
    }

    /// The channel's id in thread dumps: the address of its shared state
    /// (0 for `never`, which has none).
    fn id(&self) -> u64 {
        match self {
            Flavor::Chan(chan) => crate::loom::object_id(Arc::as_ptr(chan)),
            Flavor::At(timer, _) => crate::loom::object_id(Arc::as_ptr(timer)),
            Flavor::Tick(timer, _) => crate::loom::object_id(Arc::as_ptr(timer)),
            Flavor::Never => 0,
        }
    }

    /// When a timer flavour may next have a message (`None`: never).
    fn timer_due(&self) -> Option<Instant> {
        match self {
            Flavor::At(timer, _) if !timer.delivered.load(Ordering::Relaxed) => timer.deadline,
            Flavor::Tick(timer, _) => *timer.next.lock().unwrap_or_else(|e| e.into_inner()),
            _ => None,
        }
    }
}

/// Waits until `deadline` (forever if `None`): a cancellation point.
/// Returns `false` if it ended early because the thread is cancelled while
/// already unwinding (rule R1); the caller then fails as at its deadline.
fn sleep_until(deadline: Option<Instant>) -> bool {
    loop {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return true;
        }
        match chan_cancel::cancellable_wait(deadline) {
            Check::Continue => {}
            Check::Raise(cancelled) => chan_cancel::raise(cancelled),
            Check::Unwinding => return false,
        }
    }
}

/// `now + timeout`, or `None` if that is beyond what `Instant` can express
/// (so `Duration::MAX` means "no deadline", as in std).
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The sending half of a channel; clone it for more producers.
///
/// ```
/// let (s, r) = spool::sync::mpmc::unbounded();
/// let s2 = s.clone();
/// s.send(1).unwrap();
/// s2.send(2).unwrap();
/// assert_eq!(r.try_iter().collect::<Vec<_>>(), [1, 2]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

// A panic caught while a thread holds (a reference to) a sender leaves
// nothing half-done that others could see: every channel operation keeps
// the channel consistent at each point where it may unwind. Whatever `T`
// is, as for crossbeam-channel's and std's senders.
impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}

impl<T> Sender<T> {
    /// Sends without blocking: fails with `Full` if the channel is full
    /// (at capacity zero: if no receiver is waiting).
    ///
    /// ```
    /// use spool::sync::mpmc::{bounded, TrySendError};
    /// let (s, r) = bounded(1);
    /// assert_eq!(s.try_send(1), Ok(()));
    /// assert_eq!(s.try_send(2), Err(TrySendError::Full(2)));
    /// drop(r);
    /// assert_eq!(s.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(msg)
    }

    /// Sends, blocking while the channel is full. Fails, handing the
    /// message back, once every receiver is dropped.
    ///
    /// A cancellation point if it has to wait (see "Cancellation" in the
    /// [module docs](self)): a cancelled send hands nothing over and
    /// unwinds, dropping the message, unless a receiver took it first
    /// (then it returns `Ok`). While the thread is already unwinding, a
    /// cancellation makes it fail with `SendError(msg)` instead.
    ///
    /// ```
    /// let (s, r) = spool::sync::mpmc::bounded(0);
    /// let t = spool::thread::spawn(move || r.recv().unwrap());
    /// s.send("hi").unwrap();
    /// assert_eq!(t.join().unwrap(), "hi");
    /// ```
    #[track_caller]
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        self.chan
            .send(msg, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// As [`send`](Sender::send), giving up after `timeout`. A
    /// cancellation point; while the thread is already unwinding, a
    /// cancellation makes it fail with `Timeout(msg)` at once.
    ///
    /// ```
    /// use spool::sync::mpmc::{bounded, SendTimeoutError};
    /// use std::time::Duration;
    /// let (s, _r) = bounded(1);
    /// s.send(1).unwrap();
    /// assert_eq!(s.send_timeout(2, Duration::from_millis(1)), Err(SendTimeoutError::Timeout(2)));
    /// ```
    #[track_caller]
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(msg, deadline_after(timeout))
    }

    /// As [`send`](Sender::send), giving up at `deadline`. A cancellation
    /// point, as [`send_timeout`](Sender::send_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (s, r) = spool::sync::mpmc::bounded(1);
    /// s.send_deadline(1, Instant::now() + Duration::from_millis(1)).unwrap();
    /// assert_eq!(r.recv(), Ok(1));
    /// ```
    #[track_caller]
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(msg, Some(deadline))
    }

    /// Whether the channel holds no message.
    ///
    /// ```
    /// let (s, _r) = spool::sync::mpmc::unbounded::<i32>();
    /// assert!(s.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.len() == 0
    }

    /// Whether the channel is full (a rendezvous channel always is).
    ///
    /// ```
    /// let (s, _r) = spool::sync::mpmc::bounded(1);
    /// s.send(1).unwrap();
    /// assert!(s.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.chan.is_full()
    }

    /// The number of messages in the channel.
    ///
    /// ```
    /// let (s, _r) = spool::sync::mpmc::unbounded();
    /// s.send(1).unwrap();
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// The capacity, or `None` if unbounded.
    ///
    /// ```
    /// assert_eq!(spool::sync::mpmc::bounded::<i32>(3).0.capacity(), Some(3));
    /// assert_eq!(spool::sync::mpmc::unbounded::<i32>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        let cap = self.chan.capacity();
        (cap != UNBOUNDED).then_some(cap)
    }

    /// Whether both senders belong to the same channel.
    ///
    /// ```
    /// let (s, _r) = spool::sync::mpmc::unbounded::<i32>();
    /// assert!(s.same_channel(&s.clone()));
    /// assert!(!s.same_channel(&spool::sync::mpmc::unbounded().0));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.chan
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.remove_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

/// The receiving half of a channel; clone it for more consumers (each
/// message goes to exactly one of them).
///
/// ```
/// let (s, r) = spool::sync::mpmc::unbounded();
/// let r2 = r.clone();
/// s.send(1).unwrap();
/// s.send(2).unwrap();
/// assert_eq!(r.recv().unwrap() + r2.recv().unwrap(), 3);
/// ```
pub struct Receiver<T> {
    pub(crate) flavor: Flavor<T>,
}

// As for `Sender`: a message is either still in the channel or handed
// out, never half-received, at any point a receive may unwind.
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

impl<T> Receiver<T> {
    /// Receives without blocking.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, TryRecvError};
    /// let (s, r) = unbounded();
    /// assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
    /// s.send(1).unwrap();
    /// assert_eq!(r.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.flavor {
            Flavor::Chan(chan) => chan.try_recv(),
            timer => timer.timer_try_recv(),
        }
    }

    /// Receives, blocking while the channel is empty. Fails once the
    /// channel is empty and every sender is dropped.
    ///
    /// A cancellation point if it has to wait (see "Cancellation" in the
    /// [module docs](self)): a cancelled receive takes no message and
    /// unwinds, unless a message was handed to it first (then it returns
    /// it). While the thread is already unwinding, a cancellation makes it
    /// fail with `RecvError` — the only error it has — although senders
    /// may remain.
    ///
    /// ```
    /// let (s, r) = spool::sync::mpmc::unbounded();
    /// spool::thread::spawn(move || s.send(5).unwrap());
    /// assert_eq!(r.recv(), Ok(5));
    /// assert!(r.recv().is_err()); // the sender is gone
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// As [`recv`](Receiver::recv), giving up after `timeout`. A
    /// cancellation point; while the thread is already unwinding, a
    /// cancellation makes it fail with `Timeout` at once.
    ///
    /// ```
    /// use spool::sync::mpmc::{unbounded, RecvTimeoutError};
    /// use std::time::Duration;
    /// let (_s, r) = unbounded::<i32>();
    /// assert_eq!(r.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match deadline_after(timeout) {
            Some(deadline) => self.recv_until(Some(deadline)),
            None => self.recv_until(None),
        }
    }

    /// As [`recv`](Receiver::recv), giving up at `deadline`. A
    /// cancellation point, as [`recv_timeout`](Receiver::recv_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (s, r) = spool::sync::mpmc::unbounded();
    /// s.send(1).unwrap();
    /// assert_eq!(r.recv_deadline(Instant::now() + Duration::from_millis(1)), Ok(1));
    /// ```
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    #[track_caller]
    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match &self.flavor {
            Flavor::Chan(chan) => chan.recv(deadline),
            _ => self.timer_recv_until(deadline),
        }
    }

    /// `recv_until` of a timer channel (`after`, `tick`, `never`): out of
    /// line, so a channel's receive does not carry it.
    #[track_caller]
    #[inline(never)]
    fn timer_recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let timer = &self.flavor;
        loop {
            if let Ok(msg) = timer.timer_try_recv() {
                return Ok(msg);
            }
            crate::loom::note_wait(WaitReason::Recv(timer.id()));
            let wake = match (timer.timer_due(), deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if deadline.is_some_and(|d| Instant::now() >= d) || !sleep_until(wake) {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    /// A blocking iterator over messages; it ends when the channel is
    /// empty and disconnected. Each `next` is a cancellation point, as
    /// [`recv`](Receiver::recv) (while the thread is already unwinding, a
    /// cancellation ends the iteration).
    ///
    /// ```
    /// let (s, r) = spool::sync::mpmc::unbounded();
    /// spool::thread::spawn(move || (1..=3).for_each(|i| s.send(i).unwrap()));
    /// assert_eq!(r.iter().sum::<i32>(), 6);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the messages available now, without blocking.
    ///
    /// ```
    /// let (s, r) = spool::sync::mpmc::unbounded();
    /// s.send(1).unwrap();
    /// s.send(2).unwrap();
    /// assert_eq!(r.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }

    /// Whether the channel holds no message.
    ///
    /// ```
    /// let (_s, r) = spool::sync::mpmc::unbounded::<i32>();
    /// assert!(r.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the channel is full.
    ///
    /// ```
    /// let (s, r) = spool::sync::mpmc::bounded(1);
    /// s.send(()).unwrap();
    /// assert!(r.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        match &self.flavor {
            Flavor::Chan(chan) => chan.is_full(),
            Flavor::Never => true,
            _ => self.len() == 1,
        }
    }

    /// The number of messages in the channel.
    ///
    /// ```
    /// let (s, r) = spool::sync::mpmc::unbounded();
    /// s.send(1).unwrap();
    /// assert_eq!(r.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Chan(chan) => chan.len(),
            Flavor::Never => 0,
            timer => usize::from(timer.timer_due().is_some_and(|due| Instant::now() >= due)),
        }
    }

    /// The capacity, or `None` if unbounded.
    ///
    /// ```
    /// assert_eq!(spool::sync::mpmc::bounded::<i32>(0).1.capacity(), Some(0));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Chan(chan) => (chan.capacity() != UNBOUNDED).then_some(chan.capacity()),
            Flavor::Never => Some(0),
            _ => Some(1),
        }
    }

    /// Whether both receivers belong to the same channel.
    ///
    /// ```
    /// let (_s, r) = spool::sync::mpmc::unbounded::<i32>();
    /// assert!(r.same_channel(&r.clone()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        match (&self.flavor, &other.flavor) {
            (Flavor::Chan(a), Flavor::Chan(b)) => Arc::ptr_eq(a, b),
            (Flavor::At(a, _), Flavor::At(b, _)) => Arc::ptr_eq(a, b),
            (Flavor::Tick(a, _), Flavor::Tick(b, _)) => Arc::ptr_eq(a, b),
            (Flavor::Never, Flavor::Never) => true,
            _ => false,
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        let flavor = match &self.flavor {
            Flavor::Chan(chan) => {
                chan.add_receiver();
                Flavor::Chan(chan.clone())
            }
            Flavor::At(timer, make) => Flavor::At(timer.clone(), *make),
            Flavor::Tick(timer, make) => Flavor::Tick(timer.clone(), *make),
            Flavor::Never => Flavor::Never,
        };
        Receiver { flavor }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Flavor::Chan(chan) = &self.flavor {
            chan.remove_receiver();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// A blocking iterator over a receiver's messages; see [`Receiver::iter`]
/// (each `next` is a cancellation point).
///
/// ```
/// let (s, r) = spool::sync::mpmc::unbounded();
/// s.send(1).unwrap();
/// drop(s);
/// let mut it: spool::sync::mpmc::Iter<'_, i32> = r.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None);
/// ```
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}

/// A non-blocking iterator over a receiver's messages; see
/// [`Receiver::try_iter`].
///
/// ```
/// let (s, r) = spool::sync::mpmc::unbounded::<i32>();
/// let mut it: spool::sync::mpmc::TryIter<'_, i32> = r.try_iter();
/// assert_eq!(it.next(), None); // empty, yet `s` is alive
/// ```
pub struct TryIter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryIter { .. }")
    }
}

/// An owning blocking iterator over a receiver's messages (each `next` is
/// a cancellation point, as [`Receiver::recv`]).
///
/// ```
/// let (s, r) = spool::sync::mpmc::unbounded();
/// s.send(1).unwrap();
/// drop(s);
/// let it: spool::sync::mpmc::IntoIter<i32> = r.into_iter();
/// assert_eq!(it.collect::<Vec<_>>(), [1]);
/// ```
pub struct IntoIter<T> {
    receiver: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntoIter { .. }")
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
        IntoIter { receiver: self }
    }
}
