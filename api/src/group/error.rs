//! What a task group reports: [`GroupError`], [`Failure`] and [`JoinError`].

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::cancel::{CancelReason, Cancelled};
use crate::thread::{Thread, ThreadId};

/// One failure in a group: a child's (or the body's) `Err`, and which
/// thread returned it.
///
/// ```
/// let err = spool::group(|g| {
///     g.spawn_named("parser", || Err::<(), _>("bad input"));
///     Ok(())
/// })
/// .unwrap_err();
/// let first = err.first().unwrap();
/// assert_eq!(*first.error(), "bad input");
/// assert_eq!(first.thread_name(), Some("parser"));
/// assert!(!first.is_body());
/// ```
pub struct Failure<E> {
    error: E,
    thread: ThreadId,
    name: Option<String>,
    body: bool,
}

impl<E> Failure<E> {
    /// A failure of the calling thread.
    pub(crate) fn here(error: E, body: bool) -> Failure<E> {
        let thread = crate::thread::current();
        Failure {
            error,
            thread: thread.id(),
            name: thread.name().map(String::from),
            body,
        }
    }

    /// The error.
    ///
    /// ```
    /// let err = spool::group(|g| {
    ///     g.spawn_named("parser", || Err::<(), _>(String::from("bad input")));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// let failure = err.into_failures().remove(0);
    /// assert_eq!(failure.error(), "bad input");
    /// ```
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The error, by value.
    ///
    /// ```
    /// let err = spool::group(|g| {
    ///     g.spawn_named("parser", || Err::<(), _>(String::from("bad input")));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// let failure = err.into_failures().remove(0);
    /// let owned: String = failure.into_error();
    /// assert_eq!(owned, "bad input");
    /// ```
    pub fn into_error(self) -> E {
        self.error
    }

    /// The id of the thread that returned the error.
    ///
    /// ```
    /// let mut child_id = None;
    /// let err = spool::group(|g| {
    ///     let child = g.spawn(|| Err::<(), _>("oops"));
    ///     child_id = Some(child.thread().id());
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// assert_eq!(Some(err.first().unwrap().thread_id()), child_id);
    /// ```
    pub fn thread_id(&self) -> ThreadId {
        self.thread
    }

    /// That thread's name, if it has one (see
    /// [`Group::spawn_named`](super::Group::spawn_named)).
    ///
    /// ```
    /// let err = spool::group(|g| {
    ///     g.spawn_named("parser", || Err::<(), _>(String::from("bad input")));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// let failure = err.into_failures().remove(0);
    /// assert_eq!(failure.thread_name(), Some("parser"));
    /// ```
    pub fn thread_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the group's body returned the error (rather than a child).
    /// The body runs on the thread that called the group.
    ///
    /// ```
    /// // The body's own `Err` is a failure too, marked as the body's.
    /// let err = spool::group(|_| Err::<(), _>("body gave up")).unwrap_err();
    /// assert!(err.first().unwrap().is_body());
    /// ```
    pub fn is_body(&self) -> bool {
        self.body
    }

    fn who(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.body {
            f.write_str("the group's body")?;
            return match &self.name {
                Some(name) => write!(f, " (thread '{name}', {:?})", self.thread),
                None => write!(f, " ({:?})", self.thread),
            };
        }
        match &self.name {
            Some(name) => write!(f, "thread '{name}' ({:?})", self.thread),
            None => write!(f, "thread {:?}", self.thread),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.who(f)?;
        write!(f, " failed: {}", self.error)
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("error", &self.error)
            .field("thread", &self.thread)
            .field("name", &self.name)
            .field("body", &self.body)
            .finish()
    }
}

impl<E: Error + 'static> Error for Failure<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.error)
    }
}

/// Why a group ended without its body's value.
pub(crate) enum Cause {
    /// At least one failure (in `failures`).
    Failed,
    /// No failure, but the group's own cancel scope (its `cancel`, or its
    /// deadline) unwound the body before it returned.
    Cancelled(Cancelled),
    /// A child ended without a result, and nothing else explains it (a
    /// child abandoned by its runtime's shutdown, or cancelled while the
    /// group's caller was already unwinding).
    Incomplete(JoinError),
    /// `race` was given no jobs.
    NoJobs,
    /// `race`: no job returned, and none failed (they were cancelled or
    /// abandoned).
    NoResult,
}

/// The error of a task group: what made it end without its body's value.
///
/// Usually the group *failed*: a child, or the body, returned `Err`.
/// Every failure is kept, in the order they happened, with the thread that
/// returned it; [`first`](GroupError::first) is the one that cancelled the
/// rest. A group can also end with no failure at all when its own cancel
/// scope was cancelled — by [`Group::cancel`](super::Group::cancel) or the
/// deadline of [`Builder::timeout`](super::Builder::timeout) — before its
/// body returned; then [`first`](GroupError::first) is `None` and
/// [`cancelled`](GroupError::cancelled) says why.
///
/// Its `Display` is one log line:
///
/// ```
/// let err = spool::group(|g| {
///     g.spawn_named("db", || Err::<(), _>(std::io::Error::other("connection refused")));
///     g.spawn(|| Ok(spool::thread::sleep(std::time::Duration::from_secs(60))));
///     Ok(())
/// })
/// .unwrap_err();
/// assert_eq!(err.len(), 1); // the sleeper was cancelled, which is no failure
/// assert!(err.to_string().contains("thread 'db'"));
/// assert!(err.to_string().ends_with("failed: connection refused"));
/// let io: std::io::Error = err.into_first().unwrap();
/// assert_eq!(io.to_string(), "connection refused");
/// ```
pub struct GroupError<E> {
    pub(crate) failures: Vec<Failure<E>>,
    pub(crate) cause: Cause,
    pub(crate) name: Option<Arc<str>>,
}

impl<E> GroupError<E> {
    pub(crate) fn new(name: Option<Arc<str>>, failures: Vec<Failure<E>>, cause: Cause) -> Self {
        GroupError {
            failures,
            cause,
            name,
        }
    }

    /// The first failure: the one that cancelled the group (in a
    /// fail-fast group), with the thread that returned it. `None` when the
    /// group ended with no failure (see [`cancelled`](GroupError::cancelled)).
    ///
    /// "First" is first *recorded*. A failing thread's closure drops what
    /// it owns as it returns, just before its error is recorded; a sibling
    /// that fails *because* of that drop (its channel disconnected, say)
    /// and is quicker to return can be recorded first. Return the cause
    /// before giving up what siblings depend on, or look through
    /// [`iter`](GroupError::iter).
    ///
    /// ```
    /// let err = spool::group(|g| {
    ///     g.spawn(|| Err::<(), _>(1));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.first().map(|f| *f.error()), Some(1));
    /// ```
    pub fn first(&self) -> Option<&Failure<E>> {
        self.failures.first()
    }

    /// The first failure's error, by value (the others are dropped).
    ///
    /// ```
    /// let r: Result<(), String> = spool::group(|g| {
    ///     g.spawn(|| Err::<(), _>("no".to_string()));
    ///     Ok(())
    /// })
    /// .map_err(|e| e.into_first().unwrap_or_else(|| "cancelled".into()));
    /// assert_eq!(r, Err("no".to_string()));
    /// ```
    pub fn into_first(self) -> Option<E> {
        self.failures.into_iter().next().map(Failure::into_error)
    }

    /// Every failure, in the order they happened.
    ///
    /// ```
    /// let err = spool::group::Builder::new()
    ///     .fail_fast(false)
    ///     .run(|g| {
    ///         for i in 0..3 {
    ///             g.spawn(move || Err::<(), _>(i));
    ///         }
    ///         Ok(())
    ///     })
    ///     .unwrap_err();
    /// let mut errors: Vec<i32> = err.iter().map(|f| *f.error()).collect();
    /// errors.sort();
    /// assert_eq!(errors, [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Failure<E>> {
        self.failures.iter()
    }

    /// How many failures there were.
    ///
    /// ```
    /// let err = spool::group::Builder::new()
    ///     .fail_fast(false) // let every child finish and keep every error
    ///     .run(|g| {
    ///         g.spawn(|| Err::<(), _>("a"));
    ///         g.spawn(|| Err::<(), _>("b"));
    ///         Ok(())
    ///     })
    ///     .unwrap_err();
    /// assert_eq!(err.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether there was no failure (the group was cancelled instead).
    ///
    /// ```
    /// use std::time::Duration;
    /// // Ended by its deadline, with nothing failed: an error with no failure.
    /// let err = spool::group::Builder::new()
    ///     .timeout(Duration::from_millis(5))
    ///     .run(|_| Ok::<_, ()>(spool::thread::sleep(Duration::from_secs(60))))
    ///     .unwrap_err();
    /// assert!(err.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failures, by value.
    ///
    /// ```
    /// let err = spool::group(|g| {
    ///     g.spawn(|| Err::<(), _>("lost connection"));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// for failure in err.into_failures() {
    ///     assert_eq!(failure.into_error(), "lost connection");
    /// }
    /// ```
    pub fn into_failures(self) -> Vec<Failure<E>> {
        self.failures
    }

    /// When the group ended with no failure because its own cancel scope
    /// was cancelled before the body returned: that cancellation (its
    /// reason is [`CancelReason::Deadline`] for a timeout).
    ///
    /// ```
    /// use spool::cancel::CancelReason;
    /// use std::time::Duration;
    ///
    /// let err = spool::group::Builder::new()
    ///     .timeout(Duration::from_millis(5))
    ///     .run(|_| Ok::<_, ()>(spool::thread::sleep(Duration::from_secs(60))))
    ///     .unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.cancelled().map(|c| c.reason().clone()), Some(CancelReason::Deadline));
    /// ```
    pub fn cancelled(&self) -> Option<&Cancelled> {
        match &self.cause {
            Cause::Cancelled(cancelled) => Some(cancelled),
            _ => None,
        }
    }

    /// Whether the group ended because its deadline passed before its body
    /// returned (and nothing failed).
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = spool::group::Builder::new()
    ///     .timeout(Duration::from_millis(5))
    ///     .run(|g| {
    ///         g.spawn(|| Ok::<_, ()>(spool::thread::sleep(Duration::from_secs(60))));
    ///         Ok(())
    ///     })
    ///     .unwrap_err();
    /// assert!(err.is_timeout()); // the children were cancelled at the deadline
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.cancelled()
            .is_some_and(|c| *c.reason() == CancelReason::Deadline)
    }

    /// The group's name, if it was given one with
    /// [`Builder::name`](super::Builder::name).
    ///
    /// ```
    /// let err = spool::group::Builder::new()
    ///     .name("fetch")
    ///     .run(|_| Err::<(), _>("unreachable host"))
    ///     .unwrap_err();
    /// assert_eq!(err.group_name(), Some("fetch"));
    /// assert!(err.to_string().contains("task group 'fetch'"));
    /// ```
    pub fn group_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn group(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "task group '{name}'"),
            None => f.write_str("task group"),
        }
    }

    fn summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.group(f)?;
        match &self.cause {
            Cause::Failed => {
                let n = self.failures.len();
                if n == 1 {
                    f.write_str(" failed")
                } else {
                    write!(f, " failed ({n} failures, first shown)")
                }
            }
            Cause::Cancelled(cancelled) if *cancelled.reason() == CancelReason::Deadline => {
                f.write_str(" timed out: its deadline passed before it finished")
            }
            Cause::Cancelled(cancelled) => write!(
                f,
                " was cancelled before it finished ({})",
                cancelled.reason()
            ),
            Cause::Incomplete(join) => write!(f, " ended without a result: {join}"),
            Cause::NoJobs => f.write_str(" was given no jobs, so none could win"),
            Cause::NoResult => f.write_str(
                " ended with no result: every child was cancelled, or abandoned by its \
                 runtime's shutdown",
            ),
        }
    }
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.summary(f)?;
        match self.failures.first() {
            Some(first) => write!(f, ": {first}"),
            None => Ok(()),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("GroupError");
        d.field("name", &self.name);
        d.field("failures", &self.failures);
        match &self.cause {
            Cause::Failed => {}
            Cause::Cancelled(cancelled) => {
                d.field("cancelled", cancelled);
            }
            Cause::Incomplete(join) => {
                d.field("incomplete", join);
            }
            Cause::NoJobs => {
                d.field("no_jobs", &true);
            }
            Cause::NoResult => {
                d.field("no_result", &true);
            }
        }
        d.finish()
    }
}

impl<E: Error + 'static> Error for GroupError<E> {
    /// The first failure's error.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.cause {
            Cause::Cancelled(cancelled) => Some(cancelled),
            Cause::Incomplete(join) => Some(join),
            _ => self
                .failures
                .first()
                .map(|f| &f.error as &(dyn Error + 'static)),
        }
    }
}

impl<'a, E> IntoIterator for &'a GroupError<E> {
    type Item = &'a Failure<E>;
    type IntoIter = std::slice::Iter<'a, Failure<E>>;

    fn into_iter(self) -> Self::IntoIter {
        self.failures.iter()
    }
}

/// How a group child ended, when it did not return `Ok`.
#[derive(Clone, Debug)]
pub(crate) enum JoinKind {
    /// It returned `Err`; the error is in the group's [`GroupError`].
    Failed,
    /// It panicked; the panic is resumed when the group ends.
    Panicked,
    /// It was cancelled (by the group, its handle, or an enclosing scope),
    /// or abandoned by its runtime's shutdown (`None`).
    Cancelled(Option<Cancelled>),
    /// A child of `Group::start` ended before calling `Started::ready`.
    NotReady,
}

/// Why [`JoinHandle::join`](super::JoinHandle::join) (or
/// [`Group::start`](super::Group::start)) has no value for you.
///
/// A child's error and panic belong to the group, not to whoever joins the
/// child: the error is kept in the group's [`GroupError`] (errors are never
/// lost) and the panic is resumed when the group ends. `join` only says
/// which of these happened.
///
/// ```
/// let r = spool::group(|g| {
///     let child = g.spawn(|| Err::<u32, _>("broken"));
///     let joined = child.join().unwrap_err();
///     assert!(joined.is_failed());
///     Ok(())
/// });
/// assert_eq!(r.unwrap_err().into_first(), Some("broken"));
/// ```
#[derive(Clone, Debug)]
pub struct JoinError {
    pub(crate) kind: JoinKind,
    thread: ThreadId,
    name: Option<String>,
}

impl JoinError {
    pub(crate) fn new(kind: JoinKind, thread: &Thread) -> JoinError {
        JoinError {
            kind,
            thread: thread.id(),
            name: thread.name().map(String::from),
        }
    }

    /// The child returned `Err`: its error is in the group's
    /// [`GroupError`].
    ///
    /// ```
    /// let r = spool::group(|g| {
    ///     let child = g.spawn(|| Err::<(), _>("broken"));
    ///     assert!(child.join().unwrap_err().is_failed());
    ///     Ok(())
    /// });
    /// // The error itself is the group's, not the joiner's.
    /// assert_eq!(r.unwrap_err().into_first(), Some("broken"));
    /// ```
    pub fn is_failed(&self) -> bool {
        matches!(self.kind, JoinKind::Failed)
    }

    /// The child panicked: the panic is resumed when the group ends.
    ///
    /// ```
    /// let r = std::panic::catch_unwind(|| {
    ///     spool::group(|g| {
    ///         let child = g.spawn(|| -> Result<(), ()> { panic!("bug") });
    ///         assert!(child.join().unwrap_err().is_panic());
    ///         Ok::<_, ()>(())
    ///     })
    /// });
    /// assert!(r.is_err()); // the panic resumes when the group ends
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, JoinKind::Panicked)
    }

    /// The child was cancelled before it returned (by the group, by its
    /// handle, or by a scope around the group), or its runtime shut down.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let child = g.spawn(|| Ok::<_, ()>(spool::thread::park()));
    ///     child.cancel();
    ///     assert!(child.join().unwrap_err().is_cancelled());
    ///     Ok::<_, ()>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, JoinKind::Cancelled(_))
    }

    /// The child's cancellation, if it ended by one.
    ///
    /// ```
    /// use spool::cancel::CancelReason;
    ///
    /// spool::group(|g| {
    ///     let child = g.spawn(|| Ok::<_, ()>(spool::thread::park()));
    ///     child.cancel_with(CancelReason::requested("not needed"));
    ///     let e = child.join().unwrap_err();
    ///     assert_eq!(e.cancelled().unwrap().reason(), &CancelReason::requested("not needed"));
    ///     Ok::<_, ()>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn cancelled(&self) -> Option<&Cancelled> {
        match &self.kind {
            JoinKind::Cancelled(cancelled) => cancelled.as_ref(),
            _ => None,
        }
    }

    /// The child of [`Group::start`](super::Group::start) ended — with a
    /// value — without calling [`Started::ready`](super::Started::ready).
    ///
    /// ```
    /// spool::group(|g| {
    ///     // The child returns without calling `started.ready(…)`.
    ///     let e = g.start(|_started: spool::group::Started<u16>| Ok(())).unwrap_err();
    ///     assert!(e.is_not_ready());
    ///     Ok::<_, ()>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn is_not_ready(&self) -> bool {
        matches!(self.kind, JoinKind::NotReady)
    }

    /// The child's thread id.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let child = g.spawn(|| Err::<(), _>("x"));
    ///     let id = child.thread().id();
    ///     assert_eq!(child.join().unwrap_err().thread_id(), id);
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// ```
    pub fn thread_id(&self) -> ThreadId {
        self.thread
    }

    /// The child's name, if it has one.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let child = g.spawn_named("loader", || Err::<(), _>("x"));
    ///     assert_eq!(child.join().unwrap_err().thread_name(), Some("loader"));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// ```
    pub fn thread_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "thread '{name}' ({:?}) ", self.thread)?,
            None => write!(f, "thread {:?} ", self.thread)?,
        }
        match &self.kind {
            JoinKind::Failed => f.write_str("failed (its error is in the group's error)"),
            JoinKind::Panicked => f.write_str("panicked (the panic resumes when the group ends)"),
            JoinKind::Cancelled(Some(cancelled)) => write!(f, "was {cancelled}"),
            JoinKind::Cancelled(None) => {
                f.write_str("was cancelled, or abandoned by its runtime's shutdown")
            }
            JoinKind::NotReady => f.write_str("ended before it called `Started::ready`"),
        }
    }
}

impl Error for JoinError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cancelled().map(|c| c as &(dyn Error + 'static))
    }
}
