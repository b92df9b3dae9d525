//! Timeouts around blocks of code, and sleeping until an instant.
//!
//! ```
//! use std::time::Duration;
//!
//! let (_tx, rx) = spool::sync::mpsc::channel::<u32>();
//! // Nobody sends: the receive is cancelled when the deadline passes.
//! let r = spool::time::timeout(Duration::from_millis(10), || rx.recv());
//! assert!(r.is_err());
//! ```
//!
//! A timeout is a [`CancelScope`] with a
//! deadline; see [`spool::cancel`](crate::cancel) for how cancellation
//! works and its rules.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::cancel::CancelScope;

/// The error of a [`timeout`] whose deadline passed before its body
/// finished.
///
/// ```
/// use std::time::Duration;
///
/// let err = spool::time::timeout(Duration::ZERO, || spool::thread::park()).unwrap_err();
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    deadline: Instant,
}

impl Elapsed {
    /// The deadline that passed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// let err = spool::time::timeout_at(deadline, || spool::thread::park()).unwrap_err();
    /// assert_eq!(err.deadline(), deadline);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(elapsed: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, elapsed)
    }
}

/// Runs `f`, cancelling it if it has not finished within `duration`.
///
/// Returns `Err(Elapsed)` only when this timeout's own deadline ended `f`
/// (rule R3 in [`spool::cancel`](crate::cancel)): a cancellation of an
/// enclosing scope, or a panic, passes through unchanged, and if `f`
/// returns — even after the deadline, before noticing it — its value is
/// returned. `Duration::MAX` means no deadline.
///
/// In a build with `panic = "abort"`, which cannot unwind, the body's
/// blocking calls fail (or return early) at the deadline instead, and
/// `timeout` returns the body's value; see "Limits" in
/// [`spool::cancel`](crate::cancel).
///
/// ```
/// use spool::time::timeout;
/// use std::time::Duration;
///
/// let (tx, rx) = spool::sync::mpsc::channel();
/// tx.send(1).unwrap();
/// assert_eq!(timeout(Duration::from_secs(1), || rx.recv()), Ok(Ok(1)));
/// assert!(timeout(Duration::from_millis(5), || rx.recv()).is_err());
/// ```
pub fn timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    match Instant::now().checked_add(duration) {
        Some(deadline) => timeout_at(deadline, f),
        // Further than an `Instant` can express: no deadline at all.
        None => Ok(f()),
    }
}

/// As [`timeout`], with a deadline. A deadline in the past cancels `f` at
/// its first cancellation point.
///
/// ```
/// use spool::time::timeout_at;
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(5);
/// let r = timeout_at(deadline, || spool::thread::sleep(Duration::from_secs(60)));
/// assert_eq!(r.unwrap_err().deadline(), deadline);
/// ```
pub fn timeout_at<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let scope = CancelScope::new().with_deadline(deadline);
    match scope.run(f) {
        Some(value) => Ok(value),
        None => Err(Elapsed { deadline }),
    }
}

/// Puts the calling thread to sleep for at least `duration`; the same as
/// [`thread::sleep`](crate::thread::sleep). A cancellation point.
///
/// ```
/// let start = std::time::Instant::now();
/// spool::time::sleep(std::time::Duration::from_millis(2));
/// assert!(start.elapsed() >= std::time::Duration::from_millis(2));
/// ```
pub fn sleep(duration: Duration) {
    crate::thread::sleep(duration);
}

/// Puts the calling thread to sleep until `deadline` (returns at once if
/// it has passed). A cancellation point.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let until = Instant::now() + Duration::from_millis(2);
/// spool::time::sleep_until(until);
/// assert!(Instant::now() >= until);
/// ```
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        crate::thread::sleep(deadline - now);
    }
}
