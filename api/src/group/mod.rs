//! Task groups: structured concurrency that borrows, runs in parallel and
//! fails fast.
//!
//! [`spool::group`](crate::group()) runs a *body* on the calling thread and
//! lets it spawn green threads — *children* — that may borrow from the
//! caller, run in parallel on every worker, and are cancelled together:
//!
//! ```
//! use std::time::Duration;
//!
//! let urls = ["a", "b", "bad", "c"];
//! let mut sizes = vec![0; urls.len()];
//! let result = spool::group(|g| {
//!     for (url, size) in urls.iter().zip(&mut sizes) {
//!         g.spawn(move || {
//!             if *url == "bad" {
//!                 return Err(format!("cannot fetch {url}"));
//!             }
//!             spool::thread::sleep(Duration::from_secs(60)); // slow: cancelled
//!             *size = url.len();
//!             Ok(())
//!         });
//!     }
//!     Ok(())
//! });
//! // The failure cancelled the three slow fetches at once.
//! let err = result.unwrap_err();
//! assert_eq!(err.len(), 1);
//! assert_eq!(err.into_first().unwrap(), "cannot fetch bad");
//! ```
//!
//! # The rules
//! * **No child outlives the group.** `group` returns only after every
//!   child has finished — also when the body or a child panics — so
//!   children may borrow from the caller, as with
//!   [`thread::scope`].
//! * **The first failure cancels everything.** A child's `Err`, a child's
//!   panic, or the body's `Err` or panic cancels the group's
//!   [cancel scope](crate::cancel) with [`CancelReason::SiblingFailed`]:
//!   every child *and the body* unwind at their next cancellation point
//!   (any blocking call of spool's). Cancelled threads are not failures.
//! * **Errors are never lost.** The group's result is `Err(`[`GroupError`]`)`
//!   if anything failed, even when the body returned `Ok`; it keeps every
//!   failure, the first (the one that cancelled the rest) with the
//!   [thread](Failure::thread_id) that returned it.
//! * **Panics are bugs**: after every child has finished, the first panic
//!   is resumed in the caller, as `thread::scope` does.
//! * **Cancellation nests.** The group's scope is a child of the caller's
//!   scopes: a [`timeout`](crate::time::timeout) around the group reaches
//!   every child, and then the group resumes the caller's cancellation. A
//!   failure inside a nested group cancels that group only — unless its
//!   error is returned as a failure of the outer one.
//! * **Siblings may spawn siblings**: `&Group` is `Sync`, so a child (an
//!   accept loop, say) can spawn into the group it runs in.
//!
//! ```
//! use spool::net::TcpListener;
//! use std::io::Write;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! spool::group(|g| {
//!     // The accept loop spawns a sibling per connection.
//!     g.spawn(|| -> std::io::Result<()> {
//!         loop {
//!             let (mut conn, _) = listener.accept()?;
//!             g.spawn(move || conn.write_all(b"hello\n"));
//!         }
//!     });
//!     let mut reply = String::new();
//!     let mut client = spool::net::TcpStream::connect(addr)?;
//!     std::io::Read::read_to_string(&mut client, &mut reply)?;
//!     assert_eq!(reply, "hello\n");
//!     g.cancel(); // stop the accept loop: the group ends
//!     Ok::<_, std::io::Error>(())
//! })
//! .unwrap(); // the body returned its value, and cancelled children are no failure
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Compared with
//! * **trio's nursery** (and Python's `asyncio.TaskGroup`): the same shape —
//!   a block that waits for its children and cancels them on the first
//!   failure — but the children run in parallel and borrow from the
//!   caller; [`Group::start`] is `nursery.start`.
//! * **Go's `errgroup`**: [`Builder::limit`] is `SetLimit`, and the group's
//!   cancel scope plays the derived `Context`; but every error is kept, not
//!   only the first, a panic is not lost in a goroutine, and cancellation
//!   needs no `ctx` threaded through every call.
//! * **Java's `StructuredTaskScope`**: a failure also cancels the body
//!   (Java's leaves the owner running, which users report as hangs), and
//!   children may spawn siblings (Java's forbid forking from subtasks).
//!   [`Builder::fail_fast`]`(false)` is a supervisor that collects every
//!   result, as Kotlin's `supervisorScope`.
//!
//! # Helpers
//! [`all`] runs jobs and returns their results in order; [`race`] returns
//! the first success and cancels the rest.
//!
//! ```
//! let lens = spool::group::all(["ab", "cde"].map(|s| move || Ok::<_, ()>(s.len()))).unwrap();
//! assert_eq!(lens, [2, 3]);
//! ```
//!
//! # `thread::scope`
//! [`spool::thread::scope`](crate::thread::scope) keeps `std`'s exact API
//! and behaviour — no fail-fast, a child's panic is the joiner's to handle
//! — so ported programs behave as before; its children inherit the
//! caller's cancel scopes, so a timeout around it reaches them too.

mod builder;
mod error;
mod helpers;

use std::fmt;

pub use builder::Builder;
pub use error::{Failure, GroupError, JoinError};
pub use helpers::{all, race};

use builder::{NotStarted, Outcome, State};
use error::JoinKind;

use crate::cancel::{CancelReason, CancelScope, Cancelled};
use crate::sync::oneshot;
use crate::thread::{self, ScopedJoinHandle, Thread};

/// Runs a task group: `f` is its body, on the calling thread, and spawns
/// the group's children through the [`Group`] it is given. Returns the
/// body's value once every child has finished, or a [`GroupError`] if
/// anything failed; see the [module](self) for the rules.
///
/// Neither the body nor the children need to be `UnwindSafe`. The error
/// type must be `Send` (children's errors cross threads):
///
/// ```compile_fail
/// let r = spool::group(|g| {
///     g.spawn(|| Err::<(), _>(std::rc::Rc::new(1)));
///     Ok(())
/// });
/// ```
///
/// ```
/// let mut counts = [0u32; 3];
/// let total = spool::group(|g| {
///     for (i, c) in counts.iter_mut().enumerate() {
///         g.spawn(move || {
///             *c = i as u32 + 1;
///             Ok::<_, String>(())
///         });
///     }
///     Ok(6)
/// })
/// .unwrap();
/// assert_eq!((total, counts), (6, [1, 2, 3]));
/// ```
#[track_caller]
pub fn group<'env, F, T, E>(f: F) -> Result<T, GroupError<E>>
where
    F: for<'g> FnOnce(&'g Group<'g, 'env, E>) -> Result<T, E>,
    E: Send,
{
    Builder::new().run(f)
}

/// A running task group, given to its body: spawns children, cancels the
/// group. See [`spool::group`](crate::group()).
///
/// ```
/// let mut results = vec![0; 4];
/// spool::group(|g| {
///     for (i, slot) in results.iter_mut().enumerate() {
///         g.spawn(move || {
///             *slot = i * i; // borrows from the caller
///             Ok::<_, ()>(())
///         });
///     }
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(results, [0, 1, 4, 9]);
/// ```
pub struct Group<'g, 'env: 'g, E> {
    scope: &'g thread::Scope<'g, 'env>,
    state: &'g State<E>,
}

impl<'g, E: Send> Group<'g, '_, E> {
    /// Spawns a child: a green thread that runs `f` inside the group (and
    /// may borrow what outlives the group). Its `Err` is a failure of the
    /// group (in a fail-fast group it cancels the rest); its `Ok` value is
    /// for whoever [joins](JoinHandle::join) it. Dropping the handle does
    /// not detach the child from the group.
    ///
    /// In a group with a [limit](Builder::limit), waits for a free slot: a
    /// cancellation point. A child spawned into a cancelled group never
    /// runs `f`.
    ///
    /// # Panics
    /// If no green thread can be created (no stack can be had), as
    /// `thread::spawn` does.
    ///
    /// ```
    /// let v = vec![1, 2, 3];
    /// let sum = spool::group(|g| {
    ///     let h = g.spawn(|| Ok::<_, ()>(v.iter().sum::<i32>()));
    ///     Ok(h.join().unwrap())
    /// })
    /// .unwrap();
    /// assert_eq!(sum, 6);
    /// ```
    #[track_caller]
    pub fn spawn<F, R>(&'g self, f: F) -> JoinHandle<'g, R>
    where
        F: FnOnce() -> Result<R, E> + Send + 'g,
        R: Send + 'g,
    {
        self.spawn_with(thread::Builder::new(), f)
    }

    /// As [`spawn`](Group::spawn), naming the child: the name appears in
    /// panic messages, [`Failure::thread_name`] and the group's error.
    ///
    /// ```
    /// let err = spool::group(|g| {
    ///     g.spawn_named("loader", || Err::<(), _>("missing file"));
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.first().unwrap().thread_name(), Some("loader"));
    /// ```
    #[track_caller]
    pub fn spawn_named<F, R>(&'g self, name: impl Into<String>, f: F) -> JoinHandle<'g, R>
    where
        F: FnOnce() -> Result<R, E> + Send + 'g,
        R: Send + 'g,
    {
        self.spawn_with(thread::Builder::new().name(name.into()), f)
    }

    #[track_caller]
    fn spawn_with<F, R>(&'g self, builder: thread::Builder, f: F) -> JoinHandle<'g, R>
    where
        F: FnOnce() -> Result<R, E> + Send + 'g,
        R: Send + 'g,
    {
        let state = self.state;
        let slot = state.slots.as_ref().map(|slots| slots.acquire());
        let not_started = NotStarted(state);
        let child = move || {
            not_started.started();
            let outcome = state.run_child(f);
            // The slot is free once the closure has returned.
            drop(slot);
            outcome
        };
        match builder.spawn_scoped(self.scope, child) {
            Ok(inner) => JoinHandle { inner },
            Err(e) => panic!("failed to spawn thread: {e}"),
        }
    }

    /// Spawns a child and waits until it is *ready* (trio's
    /// `nursery.start`): until it calls [`Started::ready`] with a value —
    /// a server's bound address, say — which is returned with its handle.
    /// If the child ends before calling `ready` (or drops its `Started`
    /// and then ends), returns why, as a [`JoinError`]. A cancellation
    /// point.
    ///
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// spool::group(|g| {
    ///     let (addr, server) = g
    ///         .start(|started| {
    ///             let listener = TcpListener::bind("127.0.0.1:0")?;
    ///             started.ready(listener.local_addr()?);
    ///             let (_conn, peer) = listener.accept()?;
    ///             Ok(peer)
    ///         })
    ///         .expect("the server started");
    ///     let client = TcpStream::connect(addr)?;
    ///     assert_eq!(server.join().unwrap(), client.local_addr()?);
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    #[track_caller]
    pub fn start<F, V, R>(&'g self, f: F) -> Result<(V, JoinHandle<'g, R>), JoinError>
    where
        F: FnOnce(Started<V>) -> Result<R, E> + Send + 'g,
        V: Send + 'g,
        R: Send + 'g,
    {
        let (ready, value) = oneshot::channel();
        let handle = self.spawn(move || f(Started { ready }));
        match value.recv() {
            Ok(value) => Ok((value, handle)),
            Err(_) => {
                let thread = handle.thread().clone();
                Err(match handle.join() {
                    Ok(_) => JoinError::new(JoinKind::NotReady, &thread),
                    Err(e) => e,
                })
            }
        }
    }

    /// Cancels the group: the body and every child unwind at their next
    /// cancellation point, and children spawned from now on never run.
    /// Not a failure: if the body returned a value first, the group
    /// returns it; if the cancellation unwound the body, the group's
    /// result is a [`GroupError`] with no failure
    /// ([`GroupError::cancelled`]). Idempotent; never blocks.
    ///
    /// ```
    /// let r = spool::group(|g| {
    ///     g.spawn(|| Ok::<_, ()>(spool::thread::park())); // runs until cancelled
    ///     g.cancel();
    ///     Ok("done") // no cancellation point since: the body returns
    /// });
    /// assert_eq!(r.unwrap(), "done");
    /// ```
    pub fn cancel(&self) {
        self.state.cancel.cancel();
    }

    /// The group's cancel scope: the body runs in it and every child
    /// inherits it. Clone it to cancel the group from elsewhere (a signal
    /// handler thread, say), or move its deadline.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let r = spool::group(|g| {
    ///     g.cancel_scope().set_deadline(Some(Instant::now() + Duration::from_millis(5)));
    ///     spool::thread::sleep(Duration::from_secs(60));
    ///     Ok::<_, ()>(())
    /// });
    /// assert!(r.unwrap_err().is_timeout());
    /// ```
    pub fn cancel_scope(&self) -> &CancelScope {
        &self.state.cancel
    }

    /// The group's name, if its [`Builder`] gave it one.
    ///
    /// ```
    /// spool::group::Builder::new()
    ///     .name("crawl")
    ///     .run(|g| {
    ///         assert_eq!(g.name(), Some("crawl"));
    ///         Ok::<_, ()>(())
    ///     })
    ///     .unwrap();
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.state.name.as_deref()
    }
}

impl<E> fmt::Debug for Group<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("name", &self.state.name)
            .field("cancel_scope", &self.state.cancel.id())
            .finish_non_exhaustive()
    }
}

/// A handle to a child of a group: [`join`](JoinHandle::join) it for its
/// value, or [`cancel`](JoinHandle::cancel) it alone. Dropping it leaves
/// the child running in the group.
///
/// ```
/// spool::group(|g| {
///     let a = g.spawn(|| Ok::<_, ()>(1));
///     let b = g.spawn(|| Ok::<_, ()>(2));
///     assert_eq!(a.join().unwrap() + b.join().unwrap(), 3);
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct JoinHandle<'g, R> {
    inner: ScopedJoinHandle<'g, Outcome<R>>,
}

impl<R> JoinHandle<'_, R> {
    /// Waits for the child to end and returns its `Ok` value; otherwise a
    /// [`JoinError`] says whether it failed (its error is kept in the
    /// group's [`GroupError`]), panicked (the panic resumes when the group
    /// ends) or was cancelled. A cancellation point: a joiner that is
    /// cancelled itself unwinds (the child stays in the group).
    ///
    /// ```
    /// spool::group(|g| {
    ///     let child = g.spawn(|| Ok::<_, ()>("value"));
    ///     assert_eq!(child.join().unwrap(), "value");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    #[track_caller]
    pub fn join(self) -> Result<R, JoinError> {
        let thread = self.inner.thread().clone();
        let kind = match self.inner.join() {
            Ok(Outcome::Done(value)) => return Ok(value),
            Ok(Outcome::Failed) => JoinKind::Failed,
            Ok(Outcome::Panicked) => JoinKind::Panicked,
            Ok(Outcome::Cancelled(cancelled)) => JoinKind::Cancelled(cancelled),
            // The closure never ran: cancelled before it started, or its
            // runtime shut down.
            Err(payload) => JoinKind::Cancelled(Cancelled::from_payload(&payload).cloned()),
        };
        if matches!(kind, JoinKind::Cancelled(_)) {
            // A child cancelled with its joiner (by the group, or a scope
            // around it) has no result for the joiner either: the joiner
            // unwinds with its own cancellation, as `thread` joins do.
            crate::cancel::checkpoint();
        }
        Err(JoinError::new(kind, &thread))
    }

    /// Cancels this child alone (not a failure of the group): its next
    /// cancellation point unwinds, and [`join`](JoinHandle::join) returns
    /// a [`JoinError`] for which `is_cancelled()` is true.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let sleeper = g.spawn(|| Ok::<_, ()>(spool::thread::park()));
    ///     sleeper.cancel();
    ///     assert!(sleeper.join().unwrap_err().is_cancelled());
    ///     Ok(())
    /// })
    /// .unwrap(); // a cancelled child is no failure
    /// ```
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// As [`cancel`](JoinHandle::cancel), with a reason.
    ///
    /// ```
    /// use spool::cancel::CancelReason;
    ///
    /// spool::group(|g| {
    ///     let slow = g.spawn(|| Ok::<_, ()>(spool::thread::park()));
    ///     slow.cancel_with(CancelReason::requested("too slow"));
    ///     let e = slow.join().unwrap_err();
    ///     assert_eq!(e.cancelled().unwrap().reason(), &CancelReason::requested("too slow"));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn cancel_with(&self, reason: CancelReason) {
        self.inner.cancel_with(reason);
    }

    /// The child's thread.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let child = g.spawn_named("indexer", || Ok::<_, ()>(()));
    ///     assert_eq!(child.thread().name(), Some("indexer"));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn thread(&self) -> &Thread {
        self.inner.thread()
    }

    /// Whether the child has finished running its closure.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let child = g.spawn(|| Ok::<_, ()>(()));
    ///     while !child.is_finished() {
    ///         spool::thread::yield_now();
    ///     }
    ///     child.join().unwrap(); // returns at once
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<R> fmt::Debug for JoinHandle<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", self.inner.thread())
            .finish_non_exhaustive()
    }
}

/// Given to the child of [`Group::start`]: call [`ready`](Started::ready)
/// once it is ready, to hand a value to the thread that started it.
///
/// ```
/// use spool::sync::mpmc;
///
/// spool::group(|g| {
///     // The child hands back its inbox once it is set up, then serves.
///     let (inbox, server) = g
///         .start(|started| {
///             let (tx, rx) = mpmc::unbounded::<u32>();
///             started.ready(tx);
///             Ok(rx.iter().sum::<u32>())
///         })
///         .unwrap();
///     inbox.send(2).unwrap();
///     inbox.send(3).unwrap();
///     drop(inbox);
///     assert_eq!(server.join().unwrap(), 5);
///     Ok::<_, ()>(())
/// })
/// .unwrap();
/// ```
pub struct Started<V> {
    ready: oneshot::Sender<V>,
}

impl<V> Started<V> {
    /// Reports the child ready: `start` returns `value` with the child's
    /// handle. If the starter gave up waiting (it was cancelled), `value`
    /// is dropped.
    ///
    /// ```
    /// spool::group(|g| {
    ///     let (port, _server) = g.start(|started| {
    ///         started.ready(8080);
    ///         Ok(())
    ///     }).unwrap();
    ///     assert_eq!(port, 8080);
    ///     Ok::<_, ()>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn ready(self, value: V) {
        // An error means the starter is gone: nobody wants the value.
        let _ = self.ready.send(value);
    }
}

impl<V> fmt::Debug for Started<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started").finish_non_exhaustive()
    }
}
