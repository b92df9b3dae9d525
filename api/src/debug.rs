//! Seeing what every green thread is doing: thread dumps.
//!
//! [`dump`] lists every started, unfinished green thread of every runtime:
//! its id and name, whether it waits and for what (a channel, a lock, a
//! socket, a `join`, ...), since when, where it blocked (the call site of
//! the blocking call), where and by whom it was spawned, and the cancel
//! scopes — task groups, timeouts — it runs in. Its `Display` reads like
//! Go's goroutine dump, preceded by an *aggregated* view that counts the
//! threads blocked at each call site (the first thing to read when threads
//! leak); [`Dump::to_json`] nests the threads under their scopes.
//!
//! ```
//! use std::time::Duration;
//!
//! let sleeper = spool::thread::Builder::new()
//!     .name("sleeper".into())
//!     .spawn(|| spool::thread::sleep(Duration::from_secs(60)))
//!     .unwrap();
//! spool::thread::sleep(Duration::from_millis(20)); // let it block
//! let dump = spool::debug::dump();
//! let it = dump.threads().find(|t| t.name() == Some("sleeper")).unwrap();
//! assert_eq!(it.wait_kind(), Some("sleep"));
//! assert!(it.blocked_at().unwrap().file().ends_with(".rs"));
//! println!("{dump}");
//! sleeper.cancel();
//! ```
//!
//! # What a thread waits for
//! Every blocking call of spool records its [`WaitReason`] when it has to
//! wait, with the call site of the public function you called (the line
//! of your `recv()`, not a line inside spool). An object's id — a
//! channel's, a lock's — is the address of its shared state, printed in
//! hex, so threads waiting on the same object show the same `#0x…`.
//!
//! | Call | Recorded as ([`ThreadInfo::wait_kind`]) |
//! |------|------------------------------------------|
//! | `thread::park`, `park_timeout` | `park` |
//! | `thread::sleep` | `sleep` |
//! | `JoinHandle::join`, `ScopedJoinHandle::join`, a task group's `JoinHandle::join` | `join` (of thread N) |
//! | the end of `thread::scope`, of a task group (`spool::group`) | `scope exit` |
//! | `recv`, `recv_timeout`, ... of `mpmc`, `mpsc`, `oneshot`, their iterators | `channel receive` (#id) |
//! | `send`, `send_timeout`, ... of a full or rendezvous channel | `channel send` (#id) |
//! | `select!`, `Select::select`, `Select::ready` and their timed forms | `select` (over n operations) |
//! | `Mutex::lock`, and `Condvar` taking its mutex back | `mutex` (#id, and who holds it) |
//! | `RwLock::read`, `RwLock::write` | `rwlock read`, `rwlock write` (#id, and who holds it for writing) |
//! | `Condvar::wait` and its timed and `_while` forms | `condvar` (#id) |
//! | `Barrier::wait` | `barrier` (#id) |
//! | `Semaphore::acquire`, `acquire_timeout` | `semaphore` (#id) |
//! | `WaitGroup::wait`, `wait_timeout` | `wait group` (#id) |
//! | `Event::wait`, `wait_timeout` | `event` (#id) |
//! | `Once`, `OnceLock`, `LazyLock` initialised by another thread | `once` (#id) |
//! | `accept` of `TcpListener`, `UnixListener` | `socket accept` (fd) |
//! | `TcpStream::connect`, `connect_timeout` | `socket connect` (fd) |
//! | reads, receives and peeks of every spool socket | `socket read` (fd) |
//! | writes and sends of every spool socket | `socket write` (fd) |
//! | `unblock`, `unblock_abandon` | `unblock job` |
//! | host name resolution (`connect("host:port")`, `bind`, `send_to`) | `name resolution` |
//!
//! A thread waiting for a `Mutex`, or for a `RwLock` a writer holds, is
//! shown with the green thread that holds the lock *when the dump is
//! taken* — after a handover to another waiter, the new holder:
//! `mutex #0x55d0c2a4b7e0 held by thread 12 ('worker-3')`
//! ([`WaitReason::Mutex`]'s second field). Each green thread keeps the ids
//! of the locks it holds (up to four at once; see
//! [`ThreadInfo::held_locks`]), and the dump matches them up; it never
//! reads the lock itself, which may be gone. The holder is left out when
//! it is not known: a plain OS thread (which a dump does not list), a
//! thread holding more than four locks (the extra ones), readers of a
//! `RwLock`, or a waiter the lock was just handed to that has not run
//! since.
//!
//! `spool::time::timeout` records nothing of its own: the call it wraps
//! records its wait. A call reached through a function that is not
//! `#[track_caller]` — `Read::read_exact`, `Write::write_all` and other
//! provided methods of std's traits, or your own wrapper — shows the line
//! inside that function: mark your wrapper `#[track_caller]` to see its
//! caller's line instead. A `UnixStream::connect` to a listener whose
//! queue is full retries with pauses, and shows as a `sleep`.
//!
//! # What it costs
//! The record is kept always: a blocking call that has to wait writes what
//! it waits for, its call site and a coarse time into cells its thread
//! owns — a few stores next to the cost of switching out — and a call that
//! completes at once writes nothing. A spool `Mutex` (or `RwLock` taken
//! for writing) notes its holder: a thread-local read and a store on lock
//! and on unlock. Every switch checks whether the thread was resumed to
//! have its stack traced, and every resume ends with one load for the
//! blocking watchdog: about 18 instructions of a switch's ~170, +12% on a
//! bare `yield_now` switch; `benches/README.md` has the A/B figures. A
//! dump asks each worker for its own
//! threads, so it never reads a thread another worker is running; a worker
//! that does not answer within [`DUMP_PATIENCE`] is running one green
//! thread that has not reached a blocking point for that long, and the
//! dump says so instead of waiting for it.
//!
//! # Deadlocks
//! When every thread is parked and nothing is left that could wake one —
//! every worker of every runtime asleep with nothing queued and no timer
//! pending, no socket registered, no job out on the blocking pool, and
//! every OS thread of the process either a worker, waiting inside a spool
//! call without a deadline, or one of spool's idle helpers — spool prints
//!
//! ```text
//! spool: all threads are parked and nothing can wake them — deadlock
//! ```
//!
//! followed by a dump, whose [wait-for cycles](Dump::cycles) (threads
//! joining each other, or each waiting for a lock the next one holds)
//! name the culprits. The state must hold for half a
//! second with no worker waking before it is reported, and is reported
//! once. [`DeadlockMode`] (`Runtime::builder().deadlock(..)` or
//! `SPOOL_DEADLOCK=report|fatal|off`) makes it fatal instead — exit
//! status 2, as Go does — or turns it off. An OS thread running code of
//! its own might still wake someone, so none must exist for a report:
//! test harnesses have one, so a deadlock inside a `#[test]` is not
//! reported (run the scenario in a child process). [`Dump::cycles`] also
//! finds deadlocks among *some* threads while others run, which the global
//! check cannot see.
//!
//! # Names in logs
//! On a green thread, `std::thread::current()` is its *worker's* std
//! handle, so loggers that print thread names print `spool-worker-N`. With
//! the crate's `tracing` feature every green thread has a `tracing` span,
//! `green_thread{id=… name=…}`, entered on its worker around each resume,
//! so every event it emits is inside it and subscribers that print span
//! context (tracing-subscriber's `fmt` does) name the green thread.
//! Without the feature nothing is compiled in; with it and no subscriber
//! a resume pays one branch. A span that a green thread enters itself and
//! holds across a blocking call stays entered on the worker while other
//! green threads run (tracing keeps its span stack per OS thread): hold
//! your own spans only between blocking calls. With `log`, name the thread
//! from [`spool::thread::current().name()`](crate::thread::Thread::name)
//! in the format.

use std::fmt::{self, Write as _};
use std::panic::Location;
use std::time::{Duration, Instant};

pub use spool_runtime::deadlock::DeadlockMode;
use spool_runtime::trace::{Snapshot, ThreadRecord, ThreadState};
pub use spool_runtime::trace::{SocketOp, WaitReason};

use crate::cancel::ScopeId;
use crate::thread::ThreadId;

/// How long [`dump`] waits for a busy worker to answer.
pub const DUMP_PATIENCE: Duration = Duration::from_millis(250);

/// Takes a dump of every green thread of every runtime (see the
/// [module](self)).
///
/// ```
/// use std::time::Duration;
///
/// let sleeper = spool::thread::spawn(|| spool::thread::sleep(Duration::from_secs(60)));
/// // A thread just spawned is listed once it has started.
/// let dump = loop {
///     let dump = spool::debug::dump();
///     if dump.threads().any(|t| t.id() == sleeper.thread().id()) {
///         break dump;
///     }
///     spool::thread::sleep(Duration::from_millis(5));
/// };
/// println!("{dump}"); // the text form: one line per thread, then the blocked sites
/// sleeper.cancel();
/// ```
pub fn dump() -> Dump {
    Dump {
        snapshot: spool_runtime::trace::snapshot(DUMP_PATIENCE),
    }
}

/// As [`dump`], with the stack of every listed thread.
///
/// Each switched-out green thread is resumed for a moment in *trace mode*
/// on its own worker: it captures a backtrace of its own stack and
/// switches straight back, its wait untouched (a wakeup that arrives
/// meanwhile is kept). Symbols are resolved when the dump is printed.
/// What it costs (measured on a 2-core machine, release build, 1,000
/// sleeping threads): capturing takes about 7 µs per thread, on the
/// thread's own worker, which runs nothing else meanwhile; printing
/// resolves symbols, 75–150 µs per thread (the first print also reads the
/// binary's debug information). A plain [`dump`] of the same threads takes
/// well under a millisecond. A thread with less than 64 KiB of stack left
/// is not traced (the unwinder runs on that stack); its dump says so.
///
/// ```
/// use std::time::Duration;
///
/// let sleeper = spool::thread::spawn(|| spool::thread::sleep(Duration::from_secs(60)));
/// spool::thread::sleep(Duration::from_millis(20));
/// let dump = spool::debug::dump_with_stacks();
/// let it = dump.threads().find(|t| t.id() == sleeper.thread().id()).unwrap();
/// assert!(it.stack().is_some());
/// sleeper.cancel();
/// ```
pub fn dump_with_stacks() -> Dump {
    Dump {
        snapshot: spool_runtime::trace::snapshot_with_stacks(DUMP_PATIENCE),
    }
}

/// Installs the formatter of the dump printed after a deadlock report
/// (see "Deadlocks"); idempotent and cheap after the first call.
pub(crate) fn install_reporter() {
    spool_runtime::deadlock::set_reporter(|| dump().to_string());
}

/// A dump of green threads: see [`dump`].
///
/// ```
/// let dump = spool::debug::dump();
/// for t in dump.threads() {
///     println!("{:?} {:?} waits for {:?}", t.id(), t.name(), t.wait_kind());
/// }
/// println!("{}", dump.to_json());
/// ```
pub struct Dump {
    snapshot: Snapshot,
}

/// One green thread in a [`Dump`].
///
/// ```
/// # use std::time::Duration;
/// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
/// # let waiter = spool::thread::Builder::new()
/// #     .name("waiter".into())
/// #     .spawn(move || { let _ = rx.recv(); })
/// #     .unwrap();
/// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
/// #     spool::thread::sleep(Duration::from_millis(5));
/// # }
/// // A thread named "waiter" is blocked in `rx.recv()`.
/// let dump = spool::debug::dump();
/// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
/// assert!(t.is_waiting());
/// assert_eq!(t.wait_kind(), Some("channel receive"));
/// # drop(tx);
/// # waiter.join().unwrap();
/// ```
pub struct ThreadInfo<'a> {
    record: &'a ThreadRecord,
    taken: Instant,
}

impl<'a> ThreadInfo<'a> {
    /// Its id.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert_eq!(t.id(), waiter.thread().id());
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn id(&self) -> ThreadId {
        self.record.id
    }

    /// Its name.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert_eq!(t.name(), waiter.thread().name());
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn name(&self) -> Option<&'a str> {
        self.record.name.as_deref()
    }

    /// Whether it is switched out in a wait (rather than queued to run).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert!(t.is_waiting()); // switched out, not queued to run
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn is_waiting(&self) -> bool {
        self.record.state == ThreadState::Waiting
    }

    /// What it waits for (if it waits), or last waited for.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert!(matches!(t.wait_reason(), Some(spool::debug::WaitReason::Recv(_))));
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn wait_reason(&self) -> Option<WaitReason> {
        self.record.wait.map(|(reason, _, _)| reason)
    }

    /// The kind of its wait, as the aggregated view names it
    /// (`"channel receive"`, `"mutex"`, `"socket read"`, ...).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert_eq!(t.wait_kind(), Some("channel receive"));
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn wait_kind(&self) -> Option<&'static str> {
        self.record
            .wait
            .as_ref()
            .map(|(reason, _, _)| reason.kind())
    }

    /// Where it blocked: the call site of the blocking call.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// let site = t.blocked_at().unwrap(); // the `rx.recv()` call
    /// assert!(site.file().ends_with(".rs"));
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn blocked_at(&self) -> Option<&'static Location<'static>> {
        self.record.wait.and_then(|(_, site, _)| site)
    }

    /// How long it has waited, as of the dump.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert!(t.waited().is_some()); // how long it has been in `recv`
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn waited(&self) -> Option<Duration> {
        self.record
            .wait
            .map(|(_, _, since)| self.taken.saturating_duration_since(since))
    }

    /// The worker it belongs to.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// println!("runs on worker {}", t.worker());
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn worker(&self) -> usize {
        self.record.worker
    }

    /// Where it was spawned.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert_eq!(t.spawned_at().unwrap().file(), file!());
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.record.spawn_site
    }

    /// The thread that spawned it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let (tx, rx) = spool::sync::mpsc::channel::<()>();
    /// # let waiter = spool::thread::Builder::new()
    /// #     .name("waiter".into())
    /// #     .spawn(move || { let _ = rx.recv(); })
    /// #     .unwrap();
    /// # while !spool::debug::dump().threads().any(|t| t.name() == Some("waiter") && t.is_waiting()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// // A thread named "waiter" is blocked in `rx.recv()`.
    /// let dump = spool::debug::dump();
    /// let t = dump.threads().find(|t| t.name() == Some("waiter")).unwrap();
    /// assert_eq!(t.spawned_by(), Some(spool::thread::current().id()));
    /// # drop(tx);
    /// # waiter.join().unwrap();
    /// ```
    pub fn spawned_by(&self) -> Option<ThreadId> {
        self.record.parent
    }

    /// The cancel scopes it runs in, outermost first: `(id, name,
    /// deadline, cancelled)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let scoped = spool::thread::spawn(|| {
    ///     let _ = spool::time::timeout(Duration::from_secs(60), || {
    ///         spool::thread::sleep(Duration::from_secs(60))
    ///     });
    /// });
    /// let dump = loop {
    ///     let dump = spool::debug::dump();
    ///     let it = dump.threads().find(|t| t.id() == scoped.thread().id());
    ///     if it.is_some_and(|t| t.scopes().count() > 0) {
    ///         break dump;
    ///     }
    ///     spool::thread::sleep(Duration::from_millis(5));
    /// };
    /// let t = dump.threads().find(|t| t.id() == scoped.thread().id()).unwrap();
    /// // The timeout's scope, with its deadline, not cancelled.
    /// let (_id, _name, deadline, cancelled) = t.scopes().last().unwrap();
    /// assert!(deadline.is_some() && !cancelled);
    /// scoped.cancel();
    /// ```
    pub fn scopes(
        &self,
    ) -> impl Iterator<Item = (ScopeId, Option<&'a str>, Option<Instant>, bool)> + use<'a> {
        self.record
            .scopes
            .iter()
            .map(|s| (s.id, s.label.as_deref(), s.deadline, s.cancelled))
    }

    /// The ids of the locks it holds — spool `Mutex`es, and `RwLock`s it
    /// holds for writing — the same ids its waiters' [`WaitReason`]s show
    /// (at most four; one held beyond them is not listed).
    ///
    /// ```
    /// use spool::sync::{mpsc, Arc, Mutex};
    ///
    /// let m = Arc::new(Mutex::new(()));
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let m2 = m.clone();
    /// let holder = spool::thread::spawn(move || {
    ///     let _guard = m2.lock().unwrap();
    ///     let _ = rx.recv(); // holds the mutex while it waits
    /// });
    /// let dump = loop {
    ///     let dump = spool::debug::dump();
    ///     let it = dump.threads().find(|t| t.id() == holder.thread().id());
    ///     if it.is_some_and(|t| t.is_waiting() && !t.held_locks().is_empty()) {
    ///         break dump;
    ///     }
    ///     spool::thread::sleep(std::time::Duration::from_millis(5));
    /// };
    /// let it = dump.threads().find(|t| t.id() == holder.thread().id()).unwrap();
    /// assert_eq!(it.held_locks().len(), 1);
    /// drop(tx);
    /// holder.join().unwrap();
    /// ```
    pub fn held_locks(&self) -> &'a [u64] {
        &self.record.held
    }

    /// Its stack, innermost frame first, when the dump was taken with
    /// [`dump_with_stacks`]: one entry per frame (the function, then its
    /// source location on the next line when known).
    ///
    /// ```
    /// let dump = spool::debug::dump(); // without stacks
    /// assert!(dump.threads().all(|t| t.stack().is_none()));
    /// ```
    pub fn stack(&self) -> Option<Vec<String>> {
        self.record.stack.as_ref().map(|stack| stack.frames())
    }

    fn state_text(&self, names: &Names<'_>) -> String {
        match (self.record.state, &self.record.wait) {
            (ThreadState::Waiting, Some((reason, _, _))) => describe(reason, names),
            (ThreadState::Waiting, None) => "waiting".into(),
            (ThreadState::Runnable, _) => "runnable".into(),
            (ThreadState::NotStarted, _) => "not started".into(),
            (_, _) => "unknown".into(),
        }
    }
}

/// The names of a dump's threads, by id.
type Names<'a> = std::collections::HashMap<ThreadId, &'a str>;

/// `reason.describe()`, with the name of the lock's holder after its id
/// when it has one: `mutex #0x… held by thread 12 ('worker-3')`.
fn describe(reason: &WaitReason, names: &Names<'_>) -> String {
    let mut text = reason.describe();
    if let Some((_, Some(holder))) = reason.lock() {
        if let Some(name) = names.get(&holder) {
            let _ = write!(text, " ('{name}')");
        }
    }
    text
}

/// `thread 12 'worker-3'`, or `thread 12` without a name.
fn thread_label(id: ThreadId, names: &Names<'_>) -> String {
    match names.get(&id) {
        Some(name) => format!("thread {} '{name}'", id.as_u64()),
        None => format!("thread {}", id.as_u64()),
    }
}

impl Dump {
    /// The names of the listed threads that have one.
    fn names(&self) -> Names<'_> {
        self.threads()
            .filter_map(|t| Some((t.id(), t.name()?)))
            .collect()
    }

    /// Every listed thread, by runtime and worker.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let h = spool::thread::Builder::new()
    ///     .name("napper".into())
    ///     .spawn(|| spool::thread::sleep(Duration::from_secs(60)))
    ///     .unwrap();
    /// // Listed once it has started.
    /// while !spool::debug::dump().threads().any(|t| t.name() == Some("napper")) {
    ///     spool::thread::sleep(Duration::from_millis(5));
    /// }
    /// h.cancel();
    /// ```
    pub fn threads(&self) -> impl Iterator<Item = ThreadInfo<'_>> {
        let taken = self.snapshot.taken;
        self.snapshot.runtimes.iter().flat_map(move |rt| {
            rt.threads
                .iter()
                .map(move |record| ThreadInfo { record, taken })
        })
    }

    /// How many threads are listed.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let h = spool::thread::spawn(|| spool::thread::sleep(Duration::from_secs(60)));
    /// # while !spool::debug::dump().threads().any(|t| t.id() == h.thread().id()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// assert!(spool::debug::dump().len() >= 1);
    /// h.cancel();
    /// ```
    pub fn len(&self) -> usize {
        self.snapshot
            .runtimes
            .iter()
            .map(|rt| rt.threads.len())
            .sum()
    }

    /// Whether no thread is listed.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let h = spool::thread::spawn(|| spool::thread::sleep(Duration::from_secs(60)));
    /// # while !spool::debug::dump().threads().any(|t| t.id() == h.thread().id()) {
    /// #     spool::thread::sleep(Duration::from_millis(5));
    /// # }
    /// assert!(!spool::debug::dump().is_empty());
    /// h.cancel();
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The aggregated view: waiting threads grouped by call site and kind
    /// of wait, the largest group first, with the longest wait of each.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = spool::sync::mpmc::unbounded::<()>();
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let rx = rx.clone();
    ///         spool::thread::spawn(move || { let _ = rx.recv(); }) // one call site
    ///     })
    ///     .collect();
    /// let top = loop {
    ///     let sites = spool::debug::dump().blocked_sites();
    ///     match sites.first() {
    ///         Some(top) if top.threads == 3 => break top.clone(),
    ///         _ => spool::thread::sleep(Duration::from_millis(5)),
    ///     }
    /// };
    /// assert_eq!(top.kind, "channel receive");
    /// drop(tx);
    /// waiters.into_iter().for_each(|h| h.join().unwrap());
    /// ```
    pub fn blocked_sites(&self) -> Vec<BlockedSite> {
        use std::collections::HashMap;
        let mut groups: HashMap<(Option<&'static Location<'static>>, &'static str), BlockedSite> =
            HashMap::new();
        for thread in self.threads().filter(ThreadInfo::is_waiting) {
            let kind = thread.wait_kind().unwrap_or("waiting");
            let site = thread.blocked_at();
            let waited = thread.waited().unwrap_or_default();
            let entry = groups.entry((site, kind)).or_insert(BlockedSite {
                site,
                kind,
                threads: 0,
                oldest: Duration::ZERO,
            });
            entry.threads += 1;
            entry.oldest = entry.oldest.max(waited);
        }
        let mut sites: Vec<_> = groups.into_values().collect();
        sites.sort_by(|a, b| b.threads.cmp(&a.threads).then(b.oldest.cmp(&a.oldest)));
        sites
    }

    /// Wait-for cycles among the listed threads: each is a list of threads
    /// where every one waits for the next — joins it, or wants a `Mutex`
    /// it holds, or a `RwLock` it holds for writing (see "What a thread
    /// waits for" in the [module](self)) — and the last for the first. A
    /// cycle is a deadlock of those threads even while others run (Go's
    /// global check cannot see those). A thread relocking a mutex it holds
    /// is a cycle of one.
    ///
    /// The workers report their threads one after another: threads stuck
    /// in a cycle look the same whenever they are looked at, so a deadlock
    /// is always seen; threads that keep taking and releasing locks on
    /// different workers may, rarely, be caught at moments that look like
    /// a cycle. A cycle found again in a second dump is a deadlock.
    ///
    /// ```
    /// let dump = spool::debug::dump();
    /// assert!(dump.cycles().is_empty());
    /// ```
    pub fn cycles(&self) -> Vec<Vec<ThreadId>> {
        use std::collections::HashMap;
        let waits_for: HashMap<ThreadId, ThreadId> = self
            .threads()
            .filter(ThreadInfo::is_waiting)
            .filter_map(|t| match t.wait_reason()? {
                WaitReason::Join(other) => Some((t.id(), other)),
                reason => Some((t.id(), reason.lock()?.1?)),
            })
            .collect();
        let mut cycles: Vec<Vec<ThreadId>> = Vec::new();
        let mut done: std::collections::HashSet<ThreadId> = Default::default();
        let mut starts: Vec<ThreadId> = waits_for.keys().copied().collect();
        starts.sort();
        for start in starts {
            if done.contains(&start) {
                continue;
            }
            // Follow the chain; a thread seen twice closes a cycle.
            let mut path = vec![start];
            let mut at = start;
            while let Some(&next) = waits_for.get(&at) {
                if done.contains(&next) {
                    break;
                }
                if let Some(i) = path.iter().position(|&p| p == next) {
                    cycles.push(path[i..].to_vec());
                    break;
                }
                path.push(next);
                at = next;
            }
            done.extend(path);
        }
        cycles
    }

    /// The dump as JSON: runtimes, and in each the threads nested under the
    /// cancel scopes (task groups, timeouts) they run in — the shape of
    /// Java's thread-container dumps. A thread waiting for a lock has its
    /// holder's id in `"holder"` when it is known (else `null`).
    ///
    /// ```
    /// let json = spool::debug::dump().to_json();
    /// assert!(json.starts_with('{') && json.contains("\"runtimes\""));
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        json::dump(self, &mut out);
        out
    }
}

/// Threads blocked at one call site in one kind of wait: a line of
/// [`Dump::blocked_sites`].
///
/// ```
/// for site in spool::debug::dump().blocked_sites() {
///     // `3 threads  channel receive  at src/main.rs:10:5  (oldest 1.2s)`
///     println!("{site}");
/// }
/// ```
#[derive(Clone, Debug)]
pub struct BlockedSite {
    /// The call site (`None` for waits without one).
    pub site: Option<&'static Location<'static>>,
    /// The kind of wait.
    pub kind: &'static str,
    /// How many threads.
    pub threads: usize,
    /// The longest wait among them.
    pub oldest: Duration,
}

impl fmt::Display for BlockedSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.threads == 1 {
            "thread"
        } else {
            "threads"
        };
        write!(f, "{} {noun} blocked", Thousands(self.threads))?;
        if let Some(site) = self.site {
            write!(f, " at {}:{}", site.file(), site.line())?;
        }
        write!(f, " in {}, oldest {}", self.kind, Human(self.oldest))
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runtimes = self.snapshot.runtimes.len();
        writeln!(
            f,
            "spool: {} green threads in {runtimes} runtime{}",
            Thousands(self.len()),
            if runtimes == 1 { "" } else { "s" }
        )?;
        let sites = self.blocked_sites();
        if !sites.is_empty() {
            writeln!(f)?;
            for site in &sites {
                writeln!(f, "  {site}")?;
            }
        }
        let names = self.names();
        for cycle in self.cycles() {
            if let [alone] = cycle[..] {
                writeln!(
                    f,
                    "\nwait-for cycle: {} waits for a lock it holds itself (a deadlock)",
                    thread_label(alone, &names)
                )?;
                continue;
            }
            let ids: Vec<String> = cycle
                .iter()
                .map(|&id| {
                    let label = thread_label(id, &names);
                    label.strip_prefix("thread ").unwrap_or(&label).to_owned()
                })
                .collect();
            writeln!(
                f,
                "\nwait-for cycle: threads {} each wait for the next, and the last for the \
                 first (a deadlock)",
                ids.join(" → ")
            )?;
        }
        for (index, rt) in self.snapshot.runtimes.iter().enumerate() {
            writeln!(f)?;
            write!(f, "runtime {index}: {} workers", rt.workers)?;
            if rt.unstarted > 0 {
                write!(f, ", {} threads not started yet", Thousands(rt.unstarted))?;
            }
            writeln!(f)?;
            for worker in &rt.unanswered {
                writeln!(
                    f,
                    "worker {worker} did not answer within {}: it is running one green thread \
                     that has not reached a blocking point since; its threads are not listed",
                    Human(DUMP_PATIENCE)
                )?;
            }
            let taken = self.snapshot.taken;
            for record in &rt.threads {
                writeln!(f)?;
                write_thread(f, &ThreadInfo { record, taken }, &names)?;
            }
        }
        Ok(())
    }
}

/// One thread, in Go's layout.
fn write_thread(f: &mut fmt::Formatter<'_>, t: &ThreadInfo<'_>, names: &Names<'_>) -> fmt::Result {
    write!(f, "thread {}", t.id().as_u64())?;
    if let Some(name) = t.name() {
        write!(f, " '{name}'")?;
    }
    write!(f, " [{}", t.state_text(names))?;
    if let (true, Some(waited)) = (t.is_waiting(), t.waited()) {
        write!(f, ", {}", Human(waited))?;
    }
    writeln!(f, ", worker {}]:", t.worker())?;
    if let (true, Some(site)) = (t.is_waiting(), t.blocked_at()) {
        writeln!(f, "    blocked at {}:{}", site.file(), site.line())?;
    }
    match (t.spawned_by(), t.spawned_at()) {
        (Some(parent), Some(site)) => writeln!(
            f,
            "    spawned by thread {} at {}:{}",
            parent.as_u64(),
            site.file(),
            site.line()
        )?,
        (Some(parent), None) => writeln!(f, "    spawned by thread {}", parent.as_u64())?,
        (None, Some(site)) => writeln!(f, "    spawned at {}:{}", site.file(), site.line())?,
        (None, None) => {}
    }
    for (id, name, deadline, cancelled) in t.scopes() {
        let mut line = String::new();
        let _ = write!(line, "    in scope #{}", id.as_u64());
        if let Some(name) = name {
            let _ = write!(line, " '{name}'");
        }
        if let Some(deadline) = deadline {
            match deadline.checked_duration_since(Instant::now()) {
                Some(left) => {
                    let _ = write!(line, ", deadline in {}", Human(left));
                }
                None => line.push_str(", deadline passed"),
            }
        }
        if cancelled {
            line.push_str(", cancelled");
        }
        writeln!(f, "{line}")?;
    }
    if let Some(frames) = t.stack() {
        for frame in frames {
            writeln!(f, "    | {frame}")?;
        }
    }
    Ok(())
}

/// A count with thousands separators.
struct Thousands(usize);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        f.write_str(&out)
    }
}

/// A duration the way a person reads it: `850ms`, `2.3s`, `3m12s`, `2h5m`.
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs == 0 {
            write!(f, "{}ms", d.as_millis())
        } else if secs < 60 {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else if secs < 3600 {
            write!(f, "{}m{}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h{}m", secs / 3600, secs % 3600 / 60)
        }
    }
}

mod json {
    //! A hand-written JSON encoder for the dump (no dependency).

    use std::collections::HashMap;
    use std::fmt::Write as _;

    use super::{describe, Dump, Names, ThreadInfo};
    use crate::cancel::ScopeId;

    pub(super) fn string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn opt_string(out: &mut String, s: Option<&str>) {
        match s {
            Some(s) => string(out, s),
            None => out.push_str("null"),
        }
    }

    fn thread(out: &mut String, t: &ThreadInfo<'_>, names: &Names<'_>) {
        let _ = write!(out, "{{\"id\":{},\"name\":", t.id().as_u64());
        opt_string(out, t.name());
        out.push_str(",\"state\":");
        string(
            out,
            if t.is_waiting() {
                "waiting"
            } else {
                "runnable"
            },
        );
        out.push_str(",\"wait\":");
        match t.wait_reason() {
            Some(reason) if t.is_waiting() => string(out, &describe(&reason, names)),
            _ => out.push_str("null"),
        }
        out.push_str(",\"holder\":");
        match t.wait_reason().and_then(|r| r.lock()?.1) {
            Some(holder) if t.is_waiting() => {
                let _ = write!(out, "{}", holder.as_u64());
            }
            _ => out.push_str("null"),
        }
        out.push_str(",\"kind\":");
        opt_string(out, t.wait_kind().filter(|_| t.is_waiting()));
        out.push_str(",\"waited_ms\":");
        match t.waited().filter(|_| t.is_waiting()) {
            Some(d) => {
                let _ = write!(out, "{}", d.as_millis());
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"blocked_at\":");
        let site = t.blocked_at().filter(|_| t.is_waiting());
        opt_string(
            out,
            site.map(|s| format!("{}:{}", s.file(), s.line()))
                .as_deref(),
        );
        let _ = write!(out, ",\"worker\":{},\"spawned_by\":", t.worker());
        match t.spawned_by() {
            Some(id) => {
                let _ = write!(out, "{}", id.as_u64());
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"spawned_at\":");
        let site = t.spawned_at();
        opt_string(
            out,
            site.map(|s| format!("{}:{}", s.file(), s.line()))
                .as_deref(),
        );
        if let Some(frames) = t.stack() {
            out.push_str(",\"stack\":[");
            for (i, frame) in frames.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, frame);
            }
            out.push(']');
        }
        out.push('}');
    }

    /// A tree node: a scope (by its position in the threads' chains) with
    /// the threads whose innermost scope it is, and child scopes.
    #[derive(Default)]
    struct Node<'a> {
        id: Option<crate::cancel::ScopeId>,
        name: Option<&'a str>,
        cancelled: bool,
        threads: Vec<ThreadInfo<'a>>,
        children: Vec<Node<'a>>,
    }

    impl<'a> Node<'a> {
        fn insert(
            &mut self,
            path: &[(crate::cancel::ScopeId, Option<&'a str>, bool)],
            t: ThreadInfo<'a>,
        ) {
            match path.split_first() {
                None => self.threads.push(t),
                Some((&(id, name, cancelled), rest)) => {
                    let child = match self.children.iter().position(|c| c.id == Some(id)) {
                        Some(i) => &mut self.children[i],
                        None => {
                            self.children.push(Node {
                                id: Some(id),
                                name,
                                cancelled,
                                ..Node::default()
                            });
                            self.children.last_mut().expect("just pushed")
                        }
                    };
                    child.insert(rest, t);
                }
            }
        }

        fn write(&self, out: &mut String, names: &Names<'_>) {
            out.push('{');
            if let Some(id) = self.id {
                let _ = write!(out, "\"scope\":{},\"name\":", id.as_u64());
                opt_string(out, self.name);
                let _ = write!(out, ",\"cancelled\":{},", self.cancelled);
            }
            out.push_str("\"threads\":[");
            for (i, t) in self.threads.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                thread(out, t, names);
            }
            out.push_str("],\"scopes\":[");
            for (i, c) in self.children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                c.write(out, names);
            }
            out.push_str("]}");
        }
    }

    /// Where each scope goes in the tree. A thread's chain may lack outer
    /// scopes another thread's chain has — a thread's own root scope is
    /// not on its chain, but its children inherit it — so a scope is put
    /// under the parent it has in the deepest chain it appears in, and
    /// every thread under its innermost scope there: each scope is one
    /// node of the tree (a task group's body and its children under the
    /// same node).
    struct Placement<'a> {
        /// Scope → (its depth, its parent, its name, whether cancelled).
        scopes: HashMap<ScopeId, Scope<'a>>,
    }

    type Scope<'a> = (usize, Option<ScopeId>, Option<&'a str>, bool);

    impl<'a> Placement<'a> {
        fn of(threads: impl Iterator<Item = ThreadInfo<'a>>) -> Placement<'a> {
            let mut scopes: HashMap<ScopeId, Scope<'a>> = HashMap::new();
            for t in threads {
                let mut parent = None;
                for (depth, (id, name, _, cancelled)) in t.scopes().enumerate() {
                    let entry = scopes.entry(id).or_insert((depth, parent, name, cancelled));
                    if depth > entry.0 {
                        *entry = (depth, parent, name, cancelled);
                    }
                    parent = Some(id);
                }
            }
            Placement { scopes }
        }

        /// The path from the root to `t`'s innermost scope.
        fn path(&self, t: &ThreadInfo<'a>) -> Vec<(ScopeId, Option<&'a str>, bool)> {
            let mut path = Vec::new();
            let mut next = t.scopes().last().map(|(id, ..)| id);
            while let Some(id) = next {
                let Some(&(_, parent, name, cancelled)) = self.scopes.get(&id) else {
                    break;
                };
                // A contradictory nesting cannot loop: a chain is at most
                // as long as the number of scopes.
                if path.len() > self.scopes.len() {
                    break;
                }
                path.push((id, name, cancelled));
                next = parent;
            }
            path.reverse();
            path
        }
    }

    pub(super) fn dump(d: &Dump, out: &mut String) {
        let _ = write!(out, "{{\"threads\":{},\"runtimes\":[", d.len());
        let names = d.names();
        let taken = d.snapshot.taken;
        for (i, rt) in d.snapshot.runtimes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut root = Node::default();
            let placement =
                Placement::of(rt.threads.iter().map(|record| ThreadInfo { record, taken }));
            for record in &rt.threads {
                let t = ThreadInfo { record, taken };
                let path = placement.path(&t);
                root.insert(&path, t);
            }
            let _ = write!(
                out,
                "{{\"runtime\":{i},\"workers\":{},\"unstarted\":{},\"unanswered_workers\":{:?},\"root\":",
                rt.workers, rt.unstarted, rt.unanswered
            );
            root.write(out, &names);
            out.push('}');
        }
        out.push_str("]}");
    }
}
