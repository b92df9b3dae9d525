//! [`RwLock`]: std's reader-writer lock, parking green threads.
//!
//! # Algorithm
//! One atomic word, `state`: bit 0 `WRITER` (a writer owns the lock), bit 1
//! `QUEUED` (the wait list is non-empty; changed only under the list lock,
//! and equal to "list non-empty" whenever that lock is free), and the
//! number of readers in the bits above (`READER` per reader).
//!
//! **Fast paths.** A reader adds `READER` if neither `WRITER` nor `QUEUED`
//! is set and fewer than `MAX_READERS` read already; a writer does
//! `CAS(0 → WRITER)`. Both `Acquire`. A `read` that finds `MAX_READERS`
//! readers panics as std's does, rather than queueing: only leaked guards
//! get there, and they would never leave.
//! **Fairness.** Nobody takes the lock on a fast path while anyone waits
//! (`QUEUED` blocks both), and waiters are served strictly in FIFO order by
//! *grants*: so a stream of readers cannot starve a writer, nor the other
//! way round. A grant to a reader at the head also admits every reader
//! queued right behind it (up to the next writer).
//!
//! **Grant pass**, run under the list lock: if the lock has no owner and
//! the list is not empty, pop the head (a writer, or the run of readers at
//! the head), give it ownership (`state = WRITER` or `n × READER`, plus
//! `QUEUED` if others remain) and wake it with `GRANTED`. While `QUEUED` is
//! set and nobody owns the lock, only a grant pass can change `state` (the
//! fast paths refuse, and only owners release), so the pass may `store`.
//!
//! **Slow paths.** A locker takes the list lock, sets `QUEUED`, pushes
//! itself and runs a grant pass (which grants it at once if the lock is
//! free and it is the head). A releaser removes its ownership with one RMW
//! (`Release`); if that left no owner and `QUEUED` set, it runs a grant
//! pass. *No lost wakeup:* the releaser's RMW and the locker's
//! `fetch_or(QUEUED)` are ordered on one word. If the release came first,
//! the locker's own grant pass sees no owner and grants the head. If the
//! `fetch_or` came first, the releaser sees `QUEUED`, and its grant pass
//! takes the list lock after the locker's push. In both cases the pass
//! that finds no owner grants someone, and every later release repeats
//! the check.
//!
//! **Cancellation.** A slow-path wait is a cancellation point (the fast
//! paths are untouched). A cancelled waiter withdraws under the list lock:
//! if a grant reached it first it owns the lock and returns the guard
//! (rule R2: the cancellation is raised at the next cancellation point);
//! otherwise it removes itself, clears `QUEUED` if the list is now empty
//! and else runs a grant pass (it may have been the head that held the
//! others back), then unwinds. A thread already unwinding (rule R1) waits
//! with the masked wait, as for any lock acquisition.
//!
//! **Downgrading.** `RwLockWriteGuard::downgrade` turns `WRITER` into one
//! `READER` without releasing: with `QUEUED` clear by one CAS (a locker
//! setting `QUEUED` meanwhile makes it retry on the slow side); with
//! `QUEUED` set under the list lock, where it also admits the run of
//! readers at the head, as a grant to a reader would, and stores the new
//! state (exact: as for the grant pass, nobody else can change it then).
//! Writers stay queued, in order, until the readers leave.
//!
//! **Who holds it for writing** (for thread dumps and their wait-for
//! cycles): as `Mutex` does (see "Who holds it" in `mutex.rs` and "Who
//! holds a lock" in the engine's `trace.rs`), a writer notes the lock's id
//! in its green thread's list of held locks once `write` or `try_write`
//! has it, by whatever path, and forgets it just before `write_unlock`.
//! So a dump names the writer a reader or writer waits for. Readers are
//! not recorded: there may be any number of them, the list holds a few
//! ids, and `read`'s fast path stays as it was; a writer waiting for
//! readers shows without a holder.

use crate::loom::atomic::{AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::ptr::NonNull;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::Instant;

use spool_runtime::trace::WaitReason;

use super::poison;
use super::waitlist::{Locked, WaitList, Waited, Waiter, Woken, WAITING};
use crate::loom::cancel;

/// A writer owns the lock.
const WRITER: usize = 1;
/// The wait list is non-empty (see "Algorithm").
const QUEUED: usize = 2;
/// One reader.
const READER: usize = 4;
/// The owner bits: any reader or a writer.
const OWNED: usize = !QUEUED;
/// The most readers the lock admits at once: std's futex `RwLock` cap, on
/// every platform. A reader beyond it is refused (`try_read`) or panics
/// (`read`), as with std, so the count can never carry out of `state`
/// (whose count bits hold `usize::MAX >> 2` readers, 2^30 − 1 on 32-bit
/// targets). Only a program that leaks read guards gets near it.
const MAX_READERS: usize = (1 << 30) - 2;

/// `Waiter::kind` of a reader and of a writer.
const KIND_READ: u32 = 0;
const KIND_WRITE: u32 = 1;
/// Wake reason: ownership was granted to the waiter.
const GRANTED: u32 = 1;

/// A reader-writer lock, like [`std::sync::RwLock`]: any number of readers
/// or one writer at a time; a thread that must wait parks (green threads
/// switch, OS threads block). Waiters are served in arrival order, so
/// neither readers nor writers starve. Poisoning is std's: a panic while
/// holding the *write* guard poisons the lock.
///
/// ```
/// use spool::sync::RwLock;
/// let lock = RwLock::new(5);
/// {
///     let r1 = lock.read().unwrap();
///     let r2 = lock.read().unwrap();
///     assert_eq!(*r1 + *r2, 10);
/// }
/// *lock.write().unwrap() += 1;
/// assert_eq!(*lock.read().unwrap(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    /// # Invariant
    /// Written only by the `WRITER` owner; read only by owners.
    data: UnsafeCell<T>,
}

/// The lock without its data: what a guard needs to release it. Apart, so
/// that a read guard need not borrow the `RwLock<T>` (invariant in `T`,
/// through its `UnsafeCell`) and can be covariant in `T`, as std's is.
struct RawRwLock {
    /// `WRITER`, `QUEUED` and the reader count (see "Algorithm").
    state: AtomicUsize,
    waiters: WaitList,
    poison: poison::Flag,
}

// SAFETY: as std's `RwLock`: moving the lock moves the `T` (`Send`), and
// sharing it lets one thread write (`T: Send`) or many read at once
// (`T: Sync`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T: ?Sized> UnwindSafe for RwLock<T> {}
impl<T: ?Sized> RefUnwindSafe for RwLock<T> {}

/// RAII guard of shared read access to an [`RwLock`], from
/// [`RwLock::read`] / [`RwLock::try_read`].
///
/// ```
/// let lock = spool::sync::RwLock::new(1);
/// let guard = lock.read().unwrap();
/// assert_eq!(*guard, 1);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
#[clippy::has_significant_drop]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    /// The data: a pointer rather than a borrow of the `RwLock<T>`, so the
    /// guard is covariant in `T`, as std's (a guard of `&'static str` can
    /// be used as one of `&'a str`).
    ///
    /// # Invariant
    /// Points into the locked `RwLock`'s data, which this guard's read
    /// ownership keeps unwritten until the drop.
    data: NonNull<T>,
    raw: &'a RawRwLock,
    _data: PhantomData<&'a T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared read guard only gives out `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

/// RAII guard of exclusive write access to an [`RwLock`], from
/// [`RwLock::write`] / [`RwLock::try_write`].
///
/// ```
/// let lock = spool::sync::RwLock::new(1);
/// *lock.write().unwrap() = 2;
/// assert_eq!(*lock.read().unwrap(), 2);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
#[clippy::has_significant_drop]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    poison: poison::Guard,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared write guard only gives out `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    crate::loom::const_fn! {
        /// Creates an unlocked lock; `const`, so it can initialise a `static`.
        ///
        /// ```
        /// static CONFIG: spool::sync::RwLock<u32> = spool::sync::RwLock::new(7);
        /// assert_eq!(*CONFIG.read().unwrap(), 7);
        /// ```
        #[inline]
        pub fn new(t: T) -> RwLock<T> {
            RwLock {
                raw: RawRwLock {
                    state: AtomicUsize::new(0),
                    waiters: WaitList::new(),
                    poison: poison::Flag::new(),
                },
                data: UnsafeCell::new(t),
            }
        }
    }

    /// Consumes the lock and returns the data; `Err` (data inside) if
    /// poisoned.
    ///
    /// ```
    /// assert_eq!(spool::sync::RwLock::new("x").into_inner().unwrap(), "x");
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.raw.poison.get();
        let data = self.data.into_inner();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Acquires shared read access, parking while a writer holds the lock
    /// or anyone is queued ahead. `Err` (guard inside) if poisoned.
    ///
    /// ```
    /// use spool::sync::{Arc, RwLock};
    /// let lock = Arc::new(RwLock::new(1));
    /// let lock2 = Arc::clone(&lock);
    /// let n = spool::thread::spawn(move || *lock2.read().unwrap()).join().unwrap();
    /// assert_eq!(n, 1);
    /// ```
    ///
    /// # Panics
    /// If `MAX_READERS` (2^30 − 2, as std) read guards are alive, which
    /// takes leaked ones: "too many active read locks on RwLock".
    ///
    /// # Cancellation
    /// A cancellation point, but only when the call would park: a cancelled
    /// thread then unwinds with [`Cancelled`](crate::cancel::Cancelled)
    /// without the lock, unless it was granted the lock first (then it
    /// returns the guard, and the cancellation is raised at the next
    /// cancellation point). A thread already unwinding waits as usual.
    #[inline]
    #[track_caller]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        if !self.raw.try_acquire_read() {
            self.raw.read_contended();
        }
        self.raw.poison.result(RwLockReadGuard::new(self))
    }

    /// Acquires read access if that needs no waiting; otherwise
    /// `Err(TryLockError::WouldBlock)` (also when the lock has as many
    /// readers as it admits).
    ///
    /// ```
    /// use spool::sync::{RwLock, TryLockError};
    /// let lock = RwLock::new(1);
    /// let w = lock.write().unwrap();
    /// assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
    /// drop(w);
    /// assert_eq!(*lock.try_read().unwrap(), 1);
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.raw.try_acquire_read() {
            self.raw
                .poison
                .result(RwLockReadGuard::new(self))
                .map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Acquires exclusive write access, parking until every other owner
    /// has left. `Err` (guard inside) if poisoned.
    ///
    /// # Cancellation
    /// As [`read`](RwLock::read). A cancellation unwinding through the
    /// write guard does not poison the lock: it is not a panic.
    ///
    /// ```
    /// let lock = spool::sync::RwLock::new(vec![1]);
    /// lock.write().unwrap().push(2);
    /// assert_eq!(*lock.read().unwrap(), [1, 2]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        if !self.raw.try_acquire_write() {
            self.raw.lock_contended(KIND_WRITE);
        }
        crate::loom::note_held(self.raw.id());
        self.raw.poison.result(RwLockWriteGuard::new(self))
    }

    /// Acquires write access if the lock is free right now; otherwise
    /// `Err(TryLockError::WouldBlock)`.
    ///
    /// ```
    /// use spool::sync::{RwLock, TryLockError};
    /// let lock = RwLock::new(1);
    /// let r = lock.read().unwrap();
    /// assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
    /// drop(r);
    /// *lock.try_write().unwrap() = 2;
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.raw.try_acquire_write() {
            crate::loom::note_held(self.raw.id());
            self.raw
                .poison
                .result(RwLockWriteGuard::new(self))
                .map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether the lock is poisoned (a writer panicked).
    ///
    /// ```
    /// use spool::sync::{Arc, RwLock};
    /// let lock = Arc::new(RwLock::new(0));
    /// let lock2 = Arc::clone(&lock);
    /// let _ = spool::thread::spawn(move || {
    ///     let _w = lock2.write().unwrap();
    ///     panic!("poison it");
    /// })
    /// .join();
    /// assert!(lock.is_poisoned());
    /// ```
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.raw.poison.get()
    }

    /// Clears the poisoned state.
    ///
    /// ```
    /// use spool::sync::{Arc, RwLock};
    /// let lock = Arc::new(RwLock::new(0));
    /// let lock2 = Arc::clone(&lock);
    /// let _ = spool::thread::spawn(move || {
    ///     let _w = lock2.write().unwrap();
    ///     panic!("poison it");
    /// })
    /// .join();
    /// lock.clear_poison();
    /// assert!(lock.read().is_ok());
    /// ```
    #[inline]
    pub fn clear_poison(&self) {
        self.raw.poison.clear();
    }

    /// A mutable reference to the data, without locking; `Err` if
    /// poisoned.
    ///
    /// ```
    /// let mut lock = spool::sync::RwLock::new(0);
    /// *lock.get_mut().unwrap() = 3;
    /// assert_eq!(*lock.read().unwrap(), 3);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.raw.poison.get();
        let data = self.data.get_mut();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl RawRwLock {
    /// The id thread dumps show for this lock.
    #[inline]
    fn id(&self) -> u64 {
        crate::loom::object_id(&self.state)
    }

    #[inline]
    fn try_acquire_read(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        // With neither flag set, `state` is the reader count times `READER`.
        while state & (WRITER | QUEUED) == 0 && state < MAX_READERS * READER {
            // `Acquire`: pairs with the last writer's `Release` unlock.
            match self.state.compare_exchange_weak(
                state,
                state + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
        false
    }

    #[inline]
    fn try_acquire_write(&self) -> bool {
        // `Acquire`: pairs with the previous owners' `Release` unlocks.
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// A `read` whose fast path failed: panics at the reader cap (see
    /// "Fast paths"), else waits in the queue.
    #[cold]
    #[track_caller]
    fn read_contended(&self) {
        let readers = (self.state.load(Ordering::Relaxed) & !(WRITER | QUEUED)) / READER;
        assert!(
            readers < MAX_READERS,
            "too many active read locks on RwLock"
        );
        self.lock_contended(KIND_READ);
    }

    /// Enqueues and waits until granted (see "Slow paths").
    #[cold]
    #[track_caller]
    fn lock_contended(&self, kind: u32) {
        let waiter = Waiter::new(kind, Instant::now());
        let mut list = self.waiters.lock();
        // `Relaxed`: the ordering argument needs only that this is an RMW
        // of `state`; data visibility comes through the grant (below).
        self.state.fetch_or(QUEUED, Ordering::Relaxed);
        list.push_back(waiter.clone());
        let woken = self.grant(&mut list);
        drop(list);
        for woken in woken.into_iter().flatten() {
            woken.unpark();
        }
        if waiter.state() == WAITING {
            // The writer holding the lock is named by the dump, as of the
            // dump (see "Who holds it for writing").
            let id = self.id();
            let reason = if kind == KIND_WRITE {
                WaitReason::RwLockWrite(id, None)
            } else {
                WaitReason::RwLockRead(id, None)
            };
            crate::loom::note_wait(reason);
        }
        // `Waiter::state` is read with `Acquire`, and the grant stored it
        // with `Release` after reading `state` with `Acquire`: the previous
        // owners' writes are visible to us.
        let reason = match waiter.wait_cancellable(None) {
            Waited::Woken(reason) => reason,
            Waited::Cancelled(cancelled) => {
                if self.withdraw(&waiter) == GRANTED {
                    return; // granted before we left: ours (rule R2)
                }
                cancel::raise(cancelled);
            }
            // Rule R1: a lock acquisition waits as usual.
            Waited::Unwinding => waiter.wait(),
            Waited::TimedOut => unreachable!("a wait without a deadline timed out"),
        };
        debug_assert_eq!(reason, GRANTED);
    }

    /// A cancelled waiter leaves the list (see "Cancellation"); returns
    /// `GRANTED` if it was granted the lock meanwhile (it owns it).
    #[cold]
    fn withdraw(&self, waiter: &crate::loom::Arc<Waiter>) -> u32 {
        let (reason, mut list) = self.waiters.withdraw_locked(waiter);
        if reason != WAITING {
            return reason;
        }
        let woken = if list.is_empty() {
            // `QUEUED` must say "list non-empty" once the list lock is
            // free. `Relaxed`: as the `fetch_or` in `lock_contended`.
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
            None
        } else {
            // We may have been the head holding the others back.
            self.grant(&mut list)
        };
        drop(list);
        for woken in woken.into_iter().flatten() {
            woken.unpark();
        }
        WAITING
    }

    /// The grant pass (see "Algorithm"). Returns the waiters to unpark once
    /// the list lock is released.
    fn grant(&self, list: &mut Locked<'_>) -> Option<Vec<Woken>> {
        // `Acquire`: synchronises with the releasers' `Release` RMWs, so
        // what they wrote reaches the waiters we grant (via `Woken`).
        let state = self.state.load(Ordering::Acquire);
        if state & OWNED != 0 {
            return None; // an owner's release will run the pass
        }
        let head = list.front()?;
        let (granted, owners) = if head.kind == KIND_WRITE {
            (1, WRITER)
        } else {
            let readers = list.count_front(|w| w.kind == KIND_READ);
            (readers, READER * readers)
        };
        let queued = if list.len() > granted { QUEUED } else { 0 };
        // A plain store is exact: with `QUEUED` set and no owner, nobody
        // else changes `state` (see "Grant pass"). Stored *before* the
        // grants are: a granted waiter may see its grant without waiting
        // for our wake (it had not parked yet, or a stale wake let it look)
        // and release at once, and its release must find itself counted.
        // The grants' `Release` stores publish this one.
        self.state.store(owners | queued, Ordering::Relaxed);
        Some(
            (0..granted)
                .filter_map(|_| list.wake_front(GRANTED))
                .collect(),
        )
    }

    /// Runs a grant pass after a release that left the lock unowned with
    /// `QUEUED` set.
    #[cold]
    fn release_contended(&self) {
        let mut list = self.waiters.lock();
        let woken = self.grant(&mut list);
        drop(list);
        for woken in woken.into_iter().flatten() {
            woken.unpark();
        }
    }

    fn read_unlock(&self) {
        // `Release`: publishes nothing written, but orders our reads before
        // a later writer's writes.
        let before = self.state.fetch_sub(READER, Ordering::Release);
        if before & OWNED == READER && before & QUEUED != 0 {
            self.release_contended();
        }
    }

    /// Turns the caller's write ownership into one read ownership, with no
    /// moment in between when another writer could take the lock (see
    /// "Downgrading"), and admits the readers queued at the head.
    fn downgrade(&self) {
        crate::loom::note_released(self.id());
        // While we own `WRITER` only a locker's `fetch_or(QUEUED)` can
        // change `state`: without `QUEUED`, one CAS. `Release`: publishes
        // our writes to the readers that come in after it.
        let mut state = self.state.load(Ordering::Relaxed);
        while state & QUEUED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state - WRITER + READER,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
        let mut list = self.waiters.lock();
        // Under the list lock, with `WRITER` ours and `QUEUED` set, nobody
        // else changes `state` (the fast paths refuse, only owners
        // release, `QUEUED` changes under this lock): a store is exact.
        let readers = list.count_front(|w| w.kind == KIND_READ);
        let queued = if list.len() > readers { QUEUED } else { 0 };
        // `Release`: with the list empty, fast-path readers may come in
        // on this value. Stored before the grants, as in `grant`; the
        // readers granted here see our writes through their grant.
        self.state
            .store((READER * (1 + readers)) | queued, Ordering::Release);
        let woken: Vec<Woken> = (0..readers)
            .filter_map(|_| list.wake_front(GRANTED))
            .collect();
        drop(list);
        for woken in woken {
            woken.unpark();
        }
    }

    fn write_unlock(&self) {
        crate::loom::note_released(self.id());
        // `Release`: publishes our writes to the next owners.
        let before = self.state.fetch_and(!WRITER, Ordering::Release);
        if before & QUEUED != 0 {
            self.release_contended();
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    /// A lock holding `T::default()`.
    ///
    /// ```
    /// let lock: spool::sync::RwLock<String> = Default::default();
    /// assert!(lock.read().unwrap().is_empty());
    /// ```
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    /// A lock holding `t`.
    ///
    /// ```
    /// let lock = spool::sync::RwLock::from(4);
    /// assert_eq!(*lock.read().unwrap(), 4);
    /// ```
    fn from(t: T) -> RwLock<T> {
        RwLock::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    /// Formats as std does.
    ///
    /// ```
    /// let lock = spool::sync::RwLock::new(1);
    /// assert_eq!(format!("{lock:?}"), "RwLock { data: 1, poisoned: false, .. }");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => {
                d.field("data", &&*guard);
            }
            Err(TryLockError::Poisoned(err)) => {
                d.field("data", &&**err.get_ref());
            }
            Err(TryLockError::WouldBlock) => {
                d.field("data", &format_args!("<locked>"));
            }
        }
        d.field("poisoned", &self.raw.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// The caller holds a read ownership of `lock`, which the guard takes.
    fn new(lock: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard {
            // SAFETY: `UnsafeCell::get` is never null.
            data: unsafe { NonNull::new_unchecked(lock.data.get()) },
            raw: &lock.raw,
            _data: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    fn new(lock: &'a RwLock<T>) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            lock,
            poison: lock.raw.poison.guard(),
            _not_send: PhantomData,
        }
    }

    /// Downgrades write access to read access, atomically: no writer can
    /// take the lock in between, so what this guard wrote is what the
    /// returned read guard reads, and readers queued at the head of the
    /// wait list come in with it (writers queued behind them still wait
    /// for every reader to leave). As std's: an associated function
    /// (`RwLockWriteGuard::downgrade(guard)`), which cannot fail. A panic
    /// that began while this guard was held poisons the lock, as dropping
    /// the guard would (std's own downgrade skips that).
    ///
    /// ```
    /// use spool::sync::{Arc, RwLock, RwLockWriteGuard};
    /// use spool::thread;
    ///
    /// let lock = Arc::new(RwLock::new(1));
    /// let mut write = lock.write().unwrap();
    /// let other = Arc::clone(&lock);
    /// // Waits until every read guard is gone.
    /// let writer = thread::spawn(move || *other.write().unwrap() = 3);
    /// *write = 2;
    /// let read = RwLockWriteGuard::downgrade(write);
    /// assert_eq!(*read, 2, "no writer got in between");
    /// drop(read);
    /// writer.join().unwrap();
    /// assert_eq!(*lock.read().unwrap(), 3);
    /// ```
    pub fn downgrade(s: RwLockWriteGuard<'a, T>) -> RwLockReadGuard<'a, T> {
        let lock = s.lock;
        lock.raw.poison.done(&s.poison);
        // The write guard's drop would release the write lock.
        std::mem::forget(s);
        lock.raw.downgrade();
        RwLockReadGuard::new(lock)
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while its reader is counted in
        // `state`, which excludes a writer (the `RwLock`'s `data` invariant);
        // `data` points at that data (the guard's invariant).
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a write guard exists only while its thread owns `WRITER`,
        // which excludes every other owner.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.raw.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.poison.done(&self.poison);
        self.lock.raw.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Whether `f` panicked with `message`.
    fn panics_with(message: &str, f: impl FnOnce()) -> bool {
        let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => return false,
            Err(payload) => payload,
        };
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        text == Some(message)
    }

    #[test]
    fn the_reader_count_never_carries_out_of_the_state_word() {
        // Every count bit set: one more reader would wrap the word to
        // "unowned" (release builds), letting a writer in beside them.
        let top = usize::MAX & !(WRITER | QUEUED);
        let lock = RwLock::new(0);
        lock.raw.state.store(top, Ordering::Relaxed);
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
        assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
        assert_eq!(lock.raw.state.load(Ordering::Relaxed), top);
    }

    #[test]
    fn readers_beyond_max_readers_are_refused_like_std() {
        // Start a few readers below the cap (reaching it by forgetting
        // 2^30 guards would take seconds), then forget guards up to it.
        let lock = RwLock::new(0);
        lock.raw
            .state
            .store((MAX_READERS - 3) * READER, Ordering::Relaxed);
        for _ in 0..3 {
            std::mem::forget(lock.read().unwrap());
        }
        assert_eq!(lock.raw.state.load(Ordering::Relaxed), MAX_READERS * READER);
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
        assert!(panics_with("too many active read locks on RwLock", || {
            drop(lock.read());
        }));
        // Nothing changed: no reader was added, nobody was queued.
        assert_eq!(lock.raw.state.load(Ordering::Relaxed), MAX_READERS * READER);
        // One reader leaving makes room for one more.
        lock.raw.read_unlock();
        std::mem::forget(lock.try_read().unwrap());
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The grant pass and the downgrade handshake (see "Grant pass" and
    //! "Downgrading"), with a reader and a writer queueing, or not yet.
    //! Loom reports a thread left parked with nobody to wake it as a
    //! deadlock; the assertions check that no writer got in between.
    use super::*;
    use ::loom::thread;

    /// The lock written (0 → 1) by the model's thread while a reader and a
    /// writer (1 → 2) queue, or not yet; `finish` ends the write section.
    fn race_a_reader_and_a_writer(finish: fn(RwLockWriteGuard<'_, u32>)) {
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let lock = crate::loom::Arc::new(RwLock::new(0u32));
            let mut write = lock.write().unwrap();
            let reader = {
                let lock = lock.clone();
                thread::spawn(move || *lock.read().unwrap())
            };
            let writer = {
                let lock = lock.clone();
                thread::spawn(move || *lock.write().unwrap() = 2)
            };
            *write = 1;
            finish(write);
            let seen = reader.join().unwrap();
            assert!(seen == 1 || seen == 2, "the reader saw {seen}");
            writer.join().unwrap();
            assert_eq!(*lock.read().unwrap(), 2);
        });
    }

    /// A writer releases. Caught the grant pass publishing a grant before
    /// the lock's state: a reader that saw its grant early released before
    /// it was counted (the count wrapped), and a writer's early release
    /// left the lock owned by nobody for ever.
    #[test]
    fn a_release_racing_a_reader_and_a_writer() {
        race_a_reader_and_a_writer(|write| drop(write));
    }

    /// A writer downgrades: no writer gets in between.
    #[test]
    fn a_downgrade_racing_a_reader_and_a_writer() {
        race_a_reader_and_a_writer(|write| {
            let read = RwLockWriteGuard::downgrade(write);
            assert_eq!(*read, 1, "a writer got in between");
        });
    }
}
