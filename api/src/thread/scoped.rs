//! Scoped green threads: threads that may borrow from the caller's stack.
//!
//! The soundness argument is std's: [`scope`] does not return — not even
//! when its body or a child panics — until every thread spawned in it has
//! finished and dropped its result, so no borrow outlives its owner, and
//! forgetting a [`ScopedJoinHandle`] cannot break that (the count lives in
//! the thread's packet, not in the handle). A thread that never ran has its
//! closure dropped *before* its packet is released (see `Completion`).
//!
//! One case is spool's own: a thread whose runtime is dropped while the
//! thread is blocked is *abandoned* — it never runs again, is never
//! unwound, and its stack is never freed — and its packet is completed
//! with an error, so the scope returns (reporting the thread as panicked
//! unless it was joined) instead of hanging forever. The borrows the
//! abandoned thread still holds are never used again; the engine's essay
//! "Lifetime" (`spool_runtime`'s `scheduler.rs`) gives the argument.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::Arc;

use super::packet::ScopeData;
use super::{Builder, JoinInner, Result, Thread};

/// A scope to spawn scoped threads in; see [`scope`].
///
/// ```
/// let mut a = vec![1, 2];
/// let b = vec![3];
/// spool::thread::scope(|s| {
///     s.spawn(|| a.push(b[0])); // borrows mutably and shared
///     s.spawn(|| assert_eq!(b.len(), 1));
/// });
/// assert_eq!(a, [1, 2, 3]);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pub(super) data: Arc<ScopeData>,
    /// Invariance over 'scope, to make sure 'scope cannot shrink.
    scope: PhantomData<&'scope mut &'scope ()>,
    /// Invariance over 'env, to make sure 'env cannot shrink or grow.
    env: PhantomData<&'env mut &'env ()>,
}

/// An owned permission to join a scoped thread.
///
/// ```
/// let text = "a b c";
/// let words = spool::thread::scope(|s| {
///     let h = s.spawn(|| text.split(' ').count());
///     h.join().unwrap()
/// });
/// assert_eq!(words, 3);
/// ```
pub struct ScopedJoinHandle<'scope, T>(JoinInner<'scope, T>);

/// Creates a scope for spawning green threads that borrow local data.
///
/// All threads spawned in the scope that were not joined manually are
/// joined before `scope` returns. If one of them panicked (and was not
/// joined), `scope` panics after they have all finished.
///
/// ```
/// let mut numbers = vec![1, 2, 3];
/// let mut x = 0;
/// spool::thread::scope(|s| {
///     s.spawn(|| {
///         println!("borrowing {numbers:?}");
///     });
///     s.spawn(|| {
///         x += numbers[0] + numbers[2];
///     });
/// });
/// numbers.push(4);
/// assert_eq!(x, 4);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope::new();
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.data.wait_all(Location::caller());
    // Children cancelled with the caller (they inherit its cancel scopes)
    // did not finish their work: the caller's cancellation is raised here,
    // at the scope's exit, rather than returning as if they had.
    if result.is_ok() && scope.data.a_thread_was_cancelled() {
        crate::cancel::checkpoint();
    }
    match result {
        Err(payload) => spool_runtime::cancel::resume(payload),
        Ok(_) if scope.data.a_thread_panicked() => panic!("a scoped thread panicked"),
        Ok(value) => value,
    }
}

impl Scope<'_, '_> {
    /// A scope whose children inherit the calling thread's cancel scopes
    /// as they are now, for a caller that waits for them itself (see
    /// [`wait_all`](Self::wait_all)): a task group.
    pub(crate) fn new() -> Self {
        Scope {
            data: Arc::new(ScopeData::new()),
            env: PhantomData,
            scope: PhantomData,
        }
    }

    /// Waits, uncancellably, until every thread spawned in the scope has
    /// finished and dropped its packet. `site` is the call site recorded
    /// for thread dumps.
    pub(crate) fn wait_all(&self, site: &'static Location<'static>) {
        self.data.wait_all(site);
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a scoped green thread; see [`scope`].
    ///
    /// # Panics
    /// If the thread cannot be created, like `std`; use
    /// [`Builder::spawn_scoped`] to get the error instead.
    ///
    /// ```
    /// let mut hits = [0; 3];
    /// spool::thread::scope(|s| {
    ///     for (i, slot) in hits.iter_mut().enumerate() {
    ///         s.spawn(move || *slot = i + 1);
    ///     }
    /// }); // every thread has finished here
    /// assert_eq!(hits, [1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        match Builder::new().spawn_scoped(self, f) {
            Ok(handle) => handle,
            Err(e) => panic!("failed to spawn thread: {e}"),
        }
    }
}

impl<'scope, T> ScopedJoinHandle<'scope, T> {
    pub(super) fn new(inner: JoinInner<'scope, T>) -> Self {
        ScopedJoinHandle(inner)
    }

    /// The thread's handle.
    ///
    /// ```
    /// spool::thread::scope(|s| {
    ///     let h = s.spawn(|| spool::thread::park());
    ///     h.thread().unpark();
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.0.thread
    }

    /// Waits for the thread to finish and returns its result, or `Err`
    /// with its panic payload. A cancellation point, as
    /// [`JoinHandle::join`](super::JoinHandle::join) is (the scope still
    /// waits for the thread before it returns).
    ///
    /// ```
    /// let data = [1, 2, 3];
    /// let sum = spool::thread::scope(|s| s.spawn(|| data.iter().sum::<i32>()).join().unwrap());
    /// assert_eq!(sum, 6);
    /// ```
    #[track_caller]
    pub fn join(self) -> Result<T> {
        self.0.join()
    }

    /// Cancels the thread, as [`JoinHandle::cancel`](super::JoinHandle::cancel)
    /// does: its next cancellation point unwinds and `join` returns the
    /// [`Cancelled`](crate::cancel::Cancelled) payload.
    ///
    /// ```
    /// spool::thread::scope(|s| {
    ///     let t = s.spawn(|| spool::thread::sleep(std::time::Duration::from_secs(60)));
    ///     t.cancel();
    ///     assert!(t.join().is_err());
    /// });
    /// ```
    pub fn cancel(&self) {
        self.0.cancel(crate::cancel::CancelReason::Requested(None));
    }

    /// As [`cancel`](ScopedJoinHandle::cancel), with a reason.
    ///
    /// ```
    /// use spool::cancel::CancelReason;
    ///
    /// spool::thread::scope(|s| {
    ///     let t = s.spawn(|| spool::thread::park());
    ///     t.cancel_with(CancelReason::requested("done waiting"));
    ///     assert!(t.join().is_err());
    /// });
    /// ```
    pub fn cancel_with(&self, reason: crate::cancel::CancelReason) {
        self.0.cancel(reason);
    }

    /// Whether the thread has finished running its closure.
    ///
    /// ```
    /// spool::thread::scope(|s| {
    ///     let h = s.spawn(|| 1);
    ///     while !h.is_finished() {
    ///         spool::thread::yield_now();
    ///     }
    ///     assert_eq!(h.join().unwrap(), 1);
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.0.packet.is_finished()
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle").finish_non_exhaustive()
    }
}
