//! Synchronisation with `std::sync`'s API that parks *green* threads, and
//! channels.
//!
//! std's `Mutex`, `Condvar`, `RwLock`, `Barrier` and `Once` block the *OS
//! thread* when they wait. Under green threads that is a trap: a green
//! thread waiting on a `std::sync::Mutex` held by a switched-out green
//! thread of the same worker blocks the worker, so the holder never runs
//! again and the worker deadlocks. Every wait in this module instead parks
//! through spool's one blocking primitive, so a green thread switches to
//! the other green threads of its worker and an OS thread blocks. The same
//! lock therefore works between green threads of one worker, across
//! workers, between green threads and plain OS threads (like `main`), and
//! between OS threads.
//!
//! # Porting from `std::sync`
//! Every item mirrors the item of the same name in [`std::sync`] —
//! signatures, `const fn` constructors, poisoning and error types — so a
//! program ports by changing the path:
//!
//! ```
//! // Before: use std::sync::{Arc, Condvar, Mutex};
//! use spool::sync::{Arc, Condvar, Mutex};
//! use spool::thread; // was std::thread
//!
//! static LOG: Mutex<Vec<u32>> = Mutex::new(Vec::new());
//!
//! let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
//! let workers: Vec<_> = (1..=4)
//!     .map(|i| {
//!         let pair = Arc::clone(&pair);
//!         thread::spawn(move || {
//!             LOG.lock().unwrap().push(i);
//!             let (count, done) = &*pair;
//!             *count.lock().unwrap() += 1;
//!             done.notify_all();
//!         })
//!     })
//!     .collect();
//! let (count, done) = &*pair;
//! let all = done.wait_while(count.lock().unwrap(), |n| *n < 4).unwrap();
//! assert_eq!(*all, 4);
//! drop(all);
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(LOG.lock().unwrap().len(), 4);
//! ```
//!
//! Port std's one-time initialisers too: a `std::sync::OnceLock`,
//! `LazyLock` or `Once` whose initialiser blocks on spool (sleeps, locks,
//! receives, reads a socket) blocks the *OS thread* of every thread that
//! waits for it, and when that is a green thread of the initialiser's own
//! worker, the parked initialiser never runs again: a silent deadlock of
//! the worker. [`OnceLock`], [`LazyLock`] and [`Once`] here park instead.
//! The same goes for thread-locals: swap `std::thread_local!` for
//! [`spool::thread_local!`](crate::thread_local) (same syntax; see
//! [Thread-local storage](crate::thread#thread-local-storage)).
//!
//! Types that never wait are std's own, re-exported: [`Arc`], [`Weak`],
//! [`atomic`], and the error types [`LockResult`], [`PoisonError`],
//! [`TryLockError`] and [`TryLockResult`] (so code matching on them, or
//! mixing std and spool locks, needs no change).
//!
//! # Differences from std
//! * Waiters are served in FIFO order; [`Mutex`] hands the lock straight
//!   to a waiter that has waited 1 ms (Go's starvation mode), and
//!   [`RwLock`] admits nobody ahead of a queued waiter, so no waiter
//!   starves.
//! * Poisoning asks [`thread::panicking`](crate::thread::panicking), which
//!   answers per green thread.
//! * A wakeup may leave one stray unpark token on a thread that had
//!   already stopped waiting, so its next [`thread::park`](crate::thread::park)
//!   may return early — which std's `park` documents as possible anyway.
//!
//! The design (one wait list under all of them, and why no wakeup is lost)
//! is written at the top of `waitlist.rs`.
//!
//! # Cancellation
//! Every wait here is a cancellation point (see [`crate::cancel`]): inside
//! a [`timeout`](crate::time::timeout) or a cancelled
//! [`CancelScope`](crate::cancel::CancelScope), a blocked call unwinds with
//! [`Cancelled`](crate::cancel::Cancelled), running destructors. What each
//! promises:
//!
//! * **Nothing is lost to a cancel (rule R2).** A call whose wakeup came
//!   before it noticed the cancellation — a `notify_one`, a permit, the
//!   lock handed over, the barrier's round completed, the event set —
//!   returns normally with it, and the cancellation is raised at the next
//!   cancellation point; a call that unwinds took nothing, so the wakeup
//!   goes to another waiter.
//! * **A cancelled [`Condvar`] wait holds the mutex again** before it
//!   unwinds, so the guard the unwind drops is a real one.
//! * **A cancellation poisons nothing.** It is not a panic: a
//!   [`MutexGuard`] or [`RwLockWriteGuard`] dropped by a cancellation's
//!   unwind leaves its lock unpoisoned, and a [`Once`] or [`OnceLock`]
//!   whose initialiser was cancelled stays uninitialised for the next
//!   caller ([`LazyLock`], whose initialiser is used up, is poisoned).
//! * **[`Mutex`], [`RwLock`] and the `Once` family** check only where they
//!   would park; their fast paths are unchanged.
//! * **Already unwinding (rule R1)** — a destructor running during a panic
//!   or a cancellation, in a cancelled thread — no call unwinds again:
//!   [`Condvar::wait`] returns early (a spurious wakeup), the timed waits
//!   fail fast (a timeout, `None` or `false`), and lock acquisitions,
//!   [`Condvar::wait_while`], [`Barrier::wait`], [`Semaphore::acquire`],
//!   [`WaitGroup::wait`] and [`Event::wait`], which cannot return early
//!   without breaking their promise, wait as usual.
//!
//! ```
//! use spool::sync::{Condvar, Mutex};
//! use std::time::Duration;
//!
//! let (ready, cvar) = (Mutex::new(false), Condvar::new());
//! // Nobody notifies: the timeout ends the wait.
//! let waited = spool::time::timeout(Duration::from_millis(5), || {
//!     drop(cvar.wait_while(ready.lock().unwrap(), |ready| !*ready));
//! });
//! assert!(waited.is_err());
//! assert!(!ready.is_poisoned()); // and the mutex is fine
//! ```
//!
//! # Beyond std
//! * [`Semaphore`]: counted permits with an RAII [`SemaphorePermit`]
//!   (`acquire`, `try_acquire`, `acquire_timeout`), served in FIFO order;
//! * [`WaitGroup`]: Go's `sync.WaitGroup` (`add`, `done`, `wait`);
//! * [`Event`]: Curio's event (`set`, `clear`, `wait`).
//!
//! # Channels
//! * [`mpsc`] mirrors [`std::sync::mpsc`] exactly;
//! * [`mpmc`] mirrors the public API of `crossbeam-channel`, `select!`
//!   included;
//! * [`oneshot`] carries a single value.
//!
//! All three are built on one channel core (its design is at the top of
//! `mpmc/chan.rs`), and every blocking operation parks the calling green
//! thread (or blocks a plain OS thread), so a channel connects green threads
//! and OS threads in any combination.
//!
//! ```
//! use spool::sync::mpsc;
//! let (tx, rx) = mpsc::channel();
//! spool::thread::spawn(move || tx.send("from a green thread").unwrap());
//! assert_eq!(rx.recv().unwrap(), "from a green thread");
//! ```

mod barrier;
mod condvar;
mod event;
mod lazy_lock;
pub mod mpmc;
pub mod mpsc;
mod mutex;
mod once;
mod once_lock;
pub mod oneshot;
mod poison;
mod rwlock;
mod semaphore;
mod wait_group;
mod waitlist;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use lazy_lock::LazyLock;
pub use mutex::{Mutex, MutexGuard};
#[allow(deprecated)]
#[cfg(not(loom))]
pub use once::ONCE_INIT;
pub use once::{Once, OnceState};
pub use once_lock::OnceLock;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};

pub use std::sync::{atomic, Arc, LockResult, PoisonError, TryLockError, TryLockResult, Weak};
pub use wait_group::WaitGroup;
