//! [`Builder`], and how a group runs: its state, its children's wrapper
//! and the rules that turn what happened into its result.

use std::any::Any;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use spool_runtime::cancel::{resume, unwind_caught};

use super::error::{Cause, Failure, GroupError};
use super::Group;
use crate::cancel::{CancelReason, CancelScope, Cancelled};
use crate::sync::Semaphore;
use crate::thread;

/// Configures a task group: a name, fail-fast or supervisor, a limit on
/// how many children run at once, and a deadline.
///
/// ```
/// use spool::group::Builder;
/// use std::time::Duration;
///
/// let mut squares = vec![0u64; 8];
/// Builder::new()
///     .name("squares")
///     .limit(2) // at most two children at once
///     .timeout(Duration::from_secs(10))
///     .run(|g| {
///         for (i, slot) in squares.iter_mut().enumerate() {
///             g.spawn(move || {
///                 *slot = (i * i) as u64;
///                 Ok::<_, std::io::Error>(())
///             });
///         }
///         Ok(())
///     })
///     .unwrap();
/// assert_eq!(squares[7], 49);
/// ```
#[derive(Clone, Debug)]
#[must_use = "call `run` to run the group"]
pub struct Builder {
    name: Option<Arc<str>>,
    fail_fast: bool,
    limit: Option<NonZeroUsize>,
    deadline: Option<Deadline>,
}

#[derive(Clone, Copy, Debug)]
enum Deadline {
    At(Instant),
    After(Duration),
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A fail-fast group with no name, no limit and no deadline: what
    /// [`spool::group`](crate::group()) runs.
    ///
    /// ```
    /// // The same as `spool::group(…)`:
    /// let n = spool::group::Builder::new().run(|g| {
    ///     let child = g.spawn(|| Ok::<_, ()>(20));
    ///     Ok(child.join().unwrap() + 1)
    /// });
    /// assert_eq!(n.unwrap(), 21);
    /// ```
    pub fn new() -> Builder {
        Builder {
            name: None,
            fail_fast: true,
            limit: None,
            deadline: None,
        }
    }

    /// Names the group; the name appears in its [`GroupError`]'s message.
    ///
    /// ```
    /// let err = spool::group::Builder::new()
    ///     .name("fetch")
    ///     .run(|_| Err::<(), _>("offline"))
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with("task group 'fetch' failed"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Whether the first failure cancels the group (`true`, the default).
    ///
    /// With `false` the group is a *supervisor* (Kotlin's
    /// `supervisorScope`): an `Err` — a child's or the body's — cancels
    /// nothing; every child runs to its end and every error is collected.
    /// A panic still cancels the group, in both modes: a panic is a bug,
    /// it is resumed when the group ends, and no result can be returned
    /// past it anyway.
    ///
    /// ```
    /// let err = spool::group::Builder::new()
    ///     .fail_fast(false)
    ///     .run(|g| {
    ///         g.spawn(|| Err::<(), _>("a"));
    ///         g.spawn(|| Err::<(), _>("b"));
    ///         let ok = g.spawn(|| {
    ///             spool::thread::sleep(std::time::Duration::from_millis(20));
    ///             Ok(7)
    ///         });
    ///         assert_eq!(ok.join().unwrap(), 7); // not cancelled by the failures
    ///         Ok(())
    ///     })
    ///     .unwrap_err();
    /// assert_eq!(err.len(), 2);
    /// ```
    pub fn fail_fast(mut self, fail_fast: bool) -> Builder {
        self.fail_fast = fail_fast;
        self
    }

    /// Runs at most `n` children at once: [`Group::spawn`] waits for a
    /// free slot (a cancellation point), like Go's `errgroup.SetLimit`. A
    /// slot is freed when a child's closure has returned.
    ///
    /// A child that spawns a sibling needs a slot for it while holding its
    /// own: if every running child does that at once, they wait for each
    /// other forever. Spawn from the body, or keep the limit above the
    /// number of such children.
    ///
    /// # Panics
    /// If `n` is 0: no child could ever run.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
    /// spool::group::Builder::new()
    ///     .limit(2)
    ///     .run(|g| {
    ///         for _ in 0..10 {
    ///             g.spawn(|| {
    ///                 let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    ///                 most.fetch_max(now, Ordering::SeqCst);
    ///                 spool::thread::sleep(std::time::Duration::from_millis(1));
    ///                 running.fetch_sub(1, Ordering::SeqCst);
    ///                 Ok::<_, ()>(())
    ///             });
    ///         }
    ///         Ok(())
    ///     })
    ///     .unwrap();
    /// assert!(most.load(Ordering::SeqCst) <= 2);
    /// ```
    #[track_caller]
    pub fn limit(mut self, n: usize) -> Builder {
        match NonZeroUsize::new(n) {
            Some(n) => self.limit = Some(n),
            None => panic!(
                "spool::group::Builder::limit(0): a group limited to 0 children at once could \
                 never run one; use limit(1) to run children one at a time"
            ),
        }
        self
    }

    /// Cancels the group (body and children, with
    /// [`CancelReason::Deadline`]) if it has not ended `timeout` after
    /// [`run`](Builder::run) starts. A group that times out before its body
    /// returned ends with a [`GroupError`] for which
    /// [`is_timeout`](GroupError::is_timeout) is true; so does one whose
    /// body returned but whose children the deadline cancelled.
    /// `Duration::MAX` (or anything too far for an `Instant`) means no
    /// deadline.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let r = spool::group::Builder::new()
    ///     .timeout(Duration::from_millis(10))
    ///     .run(|g| {
    ///         g.spawn(|| Ok::<_, ()>(spool::thread::sleep(Duration::from_secs(60))));
    ///         Ok(())
    ///     });
    /// assert!(r.unwrap_err().is_timeout());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.deadline = Some(Deadline::After(timeout));
        self
    }

    /// As [`timeout`](Builder::timeout), at an instant.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let r = spool::group::Builder::new()
    ///     .deadline(Instant::now() + Duration::from_millis(5))
    ///     .run(|_| Ok::<_, ()>(spool::thread::park()));
    /// assert!(r.unwrap_err().is_timeout());
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Builder {
        self.deadline = Some(Deadline::At(deadline));
        self
    }

    /// Runs the group: `f` is its body, on the calling thread; see
    /// [`spool::group`](crate::group()) for the semantics.
    ///
    /// ```
    /// let total = spool::group::Builder::new()
    ///     .run(|g| {
    ///         let a = g.spawn(|| Ok::<_, ()>(20));
    ///         let b = g.spawn(|| Ok::<_, ()>(22));
    ///         Ok(a.join().unwrap() + b.join().unwrap())
    ///     })
    ///     .unwrap();
    /// assert_eq!(total, 42);
    /// ```
    #[track_caller]
    pub fn run<'env, F, T, E>(self, f: F) -> Result<T, GroupError<E>>
    where
        F: for<'g> FnOnce(&'g Group<'g, 'env, E>) -> Result<T, E>,
        E: Send,
    {
        let deadline = match self.deadline {
            Some(Deadline::At(at)) => Some(at),
            Some(Deadline::After(timeout)) => Instant::now().checked_add(timeout),
            None => None,
        };
        let mut cancel = match &self.name {
            Some(name) => CancelScope::new().with_name(name.clone()),
            None => CancelScope::new().with_name("task group"),
        };
        if let Some(deadline) = deadline {
            cancel = cancel.with_deadline(deadline);
        }
        let state = State {
            cancel,
            fail_fast: self.fail_fast,
            name: self.name,
            record: Mutex::new(Record {
                failures: Vec::new(),
                panic: None,
                cancelled_by_group: None,
            }),
            slots: self.limit.map(|n| Semaphore::new(n.get())),
            cancelled_outside: AtomicBool::new(false),
        };
        run_group(&state, f)
    }
}

/// What the group's threads share.
pub(crate) struct State<E> {
    /// The group's cancel scope: the body runs in it, the children inherit
    /// it.
    pub(crate) cancel: CancelScope,
    fail_fast: bool,
    pub(crate) name: Option<Arc<str>>,
    record: Mutex<Record<E>>,
    /// A semaphore of `limit` permits; a child holds one while it runs.
    pub(crate) slots: Option<Semaphore>,
    /// A child ended by the cancellation of a scope around the group.
    cancelled_outside: AtomicBool,
}

/// What went wrong, as it happened.
struct Record<E> {
    failures: Vec<Failure<E>>,
    /// The first panic, resumed when the group ends.
    panic: Option<Box<dyn Any + Send>>,
    /// The group's own cancellation, as the first child it ended saw it.
    cancelled_by_group: Option<Cancelled>,
}

/// How a child ended, as its wrapper reports it to the child's handle.
pub(crate) enum Outcome<R> {
    Done(R),
    Failed,
    Panicked,
    Cancelled(Option<Cancelled>),
}

/// How the body ended.
enum Body<T> {
    Value(T),
    Failed,
    Panicked,
    Cancelled(Box<Cancelled>),
}

impl<E> State<E> {
    fn record(&self) -> MutexGuard<'_, Record<E>> {
        // Nothing panics while holding the lock; recover anyway.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a failure of the calling thread and, in a fail-fast group,
    /// cancels the group (the first reason is kept: the first failure's).
    fn fail(&self, error: E, body: bool) {
        let failure = Failure::here(error, body);
        self.record().failures.push(failure);
        if self.fail_fast {
            self.cancel.cancel_with(CancelReason::SiblingFailed);
        }
    }

    /// Records a panic (the first one is kept, to resume) and cancels the
    /// group, in either mode.
    fn panicked(&self, payload: Box<dyn Any + Send>) {
        let later = {
            let mut record = self.record();
            match record.panic {
                None => {
                    record.panic = Some(payload);
                    None
                }
                Some(_) => Some(payload),
            }
        };
        // A later panic's payload is dropped outside the lock; one whose
        // destructor panics is forgotten rather than unwind out of here.
        if let Some(payload) = later {
            if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(second);
            }
        }
        self.cancel.cancel_with(CancelReason::SiblingFailed);
    }

    /// Notes a child's cancellation: by the group's own scope, or by one
    /// around it.
    fn child_cancelled(&self, cancelled: &Cancelled) {
        if cancelled.scope() == self.cancel.id() {
            let mut record = self.record();
            if record.cancelled_by_group.is_none() {
                record.cancelled_by_group = Some(cancelled.clone());
            }
        } else {
            self.cancelled_outside.store(true, Ordering::Relaxed);
        }
    }

    /// Whether an `Err` the calling thread returned is a failure. In a
    /// build with `panic = "abort"` cancellation is cooperative: blocking
    /// calls of a cancelled thread fail with errors instead of unwinding,
    /// so an `Err` from an effectively cancelled thread is its cancellation
    /// (`Some`), not a failure. With unwinding, a cancelled thread unwinds,
    /// so an `Err` it returns is a failure of its own.
    fn err_is_cancellation(&self) -> Option<Cancelled> {
        if !cfg!(panic = "abort") {
            return None;
        }
        spool_runtime::cancel::cancellation()
    }

    /// Runs a child's closure (on the child) and reports how it ended.
    pub(crate) fn run_child<R>(&self, f: impl FnOnce() -> Result<R, E>) -> Outcome<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(value)) => Outcome::Done(value),
            Ok(Err(error)) => match self.err_is_cancellation() {
                None => {
                    self.fail(error, false);
                    Outcome::Failed
                }
                Some(cancelled) => {
                    self.child_cancelled(&cancelled);
                    Outcome::Cancelled(Some(cancelled))
                }
            },
            Err(payload) => {
                unwind_caught();
                match payload.downcast::<Cancelled>() {
                    Ok(cancelled) => {
                        self.child_cancelled(&cancelled);
                        Outcome::Cancelled(Some(*cancelled))
                    }
                    Err(payload) => {
                        self.panicked(payload);
                        Outcome::Panicked
                    }
                }
            }
        }
    }
}

/// Owned by a child's closure until it runs. A closure dropped unrun
/// belongs to a child cancelled before it started (by the group's scope
/// or one around it): its drop reports that cancellation as `run_child`
/// reports one that ends a running child, so the group's result does not
/// depend on whether the child had started (a deadline that cancelled it
/// is a timeout; a caller's cancellation resumes in the caller).
pub(crate) struct NotStarted<'a, E>(pub(crate) &'a State<E>);

impl<E> NotStarted<'_, E> {
    /// The closure runs: nothing to report here.
    pub(crate) fn started(self) {
        std::mem::forget(self);
    }
}

impl<E> Drop for NotStarted<'_, E> {
    fn drop(&mut self) {
        // Dropped on the child, inside the scopes it inherited, while its
        // cancellation unwinds the unrun closure.
        if let Some(cancelled) = spool_runtime::cancel::cancellation() {
            self.0.child_cancelled(&cancelled);
        }
    }
}

/// Runs a group with its state made: the body inside the group's scope,
/// then the wait for every child, then the result (see `finish`).
#[track_caller]
fn run_group<'env, F, T, E>(state: &State<E>, f: F) -> Result<T, GroupError<E>>
where
    F: for<'g> FnOnce(&'g Group<'g, 'env, E>) -> Result<T, E>,
    E: Send,
{
    // The closure catches every unwind itself and makes no cancellation
    // point after the body (the wait is masked), so `run` always returns
    // its value.
    let site = Location::caller();
    let body = state.cancel.run(|| {
        // Made inside the group's scope: the children inherit it.
        let scope = thread::Scope::new();
        let group = Group {
            scope: &scope,
            state,
        };
        let body = match catch_unwind(AssertUnwindSafe(|| f(&group))) {
            Ok(Ok(value)) => Body::Value(value),
            Ok(Err(error)) => match state.err_is_cancellation() {
                None => {
                    state.fail(error, true);
                    Body::Failed
                }
                // Cooperative cancellation (`panic = "abort"`): the error
                // is the body's cancellation.
                Some(cancelled) => Body::Cancelled(Box::new(cancelled)),
            },
            Err(payload) => {
                unwind_caught();
                match payload.downcast::<Cancelled>() {
                    Ok(cancelled) => Body::Cancelled(cancelled),
                    Err(payload) => {
                        state.panicked(payload);
                        Body::Panicked
                    }
                }
            }
        };
        // Exit always waits for every child, whatever the body did. Not a
        // cancellation point: the children borrow from the caller.
        scope.wait_all(site);
        body
    });
    finish(state, body)
}

/// The group's result, once every child has finished.
///
/// 1. A panic (a child's or the body's) is resumed: panics are bugs.
/// 2. Failures make a [`GroupError`], even if the body returned a value or
///    was cancelled from outside (the caller then meets its cancellation
///    at its next cancellation point: the errors are not lost).
/// 3. A body unwound by a cancellation from outside the group resumes it
///    in the caller, as `thread::scope` does.
/// 4. A body unwound by the group's own cancellation (`cancel`, deadline)
///    makes a [`GroupError`] with no failure, saying why.
/// 5. A body value is returned — unless the group's deadline cancelled a
///    child (a timeout), or a child was cancelled from outside (then the
///    caller is cancelled too, and unwinds here).
fn finish<T, E>(state: &State<E>, body: Option<Body<T>>) -> Result<T, GroupError<E>> {
    let (failures, panic, cancelled_by_group) = {
        let mut record = state.record();
        (
            std::mem::take(&mut record.failures),
            record.panic.take(),
            record.cancelled_by_group.take(),
        )
    };
    if let Some(payload) = panic {
        resume(payload);
    }
    let name = state.name.clone();
    if !failures.is_empty() {
        return Err(GroupError::new(name, failures, Cause::Failed));
    }
    match body {
        Some(Body::Value(value)) => {
            if let Some(cancelled) = cancelled_by_group {
                if *cancelled.reason() == CancelReason::Deadline {
                    return Err(GroupError::new(name, failures, Cause::Cancelled(cancelled)));
                }
            }
            if state.cancelled_outside.load(Ordering::Relaxed) {
                crate::cancel::checkpoint();
            }
            Ok(value)
        }
        // (Where nothing can unwind, `panic = "abort"`, the caller's
        // cancellation is reported as the group's error instead.)
        Some(Body::Cancelled(cancelled))
            if cancelled.scope() != state.cancel.id() && !cfg!(panic = "abort") =>
        {
            resume(cancelled)
        }
        Some(Body::Cancelled(cancelled)) => Err(GroupError::new(
            name,
            failures,
            Cause::Cancelled(*cancelled),
        )),
        // A failed body left a failure and a panicked one a panic, both
        // handled above; and `run` returns `None` only if its closure
        // unwound, which catches everything.
        Some(Body::Failed) | Some(Body::Panicked) | None => {
            unreachable!("task group: a body ended with no failure, panic or value")
        }
    }
}
