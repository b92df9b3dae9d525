//! [`Mutex`]: std's mutex, parking green threads instead of OS threads.
//!
//! # Algorithm
//! One atomic word, `state`, with two bits:
//! * `LOCKED`: someone owns the mutex;
//! * `QUEUED`: the wait list may be non-empty. It is only changed under
//!   the wait list's lock, and whenever that lock is free `QUEUED` is set
//!   exactly when the list is non-empty.
//!
//! **Fast paths.** `lock` is `CAS(0 → LOCKED)` (`Acquire`), `unlock` is
//! `CAS(LOCKED → 0)` (`Release`): the same two atomic operations as std's
//! futex mutex. The unlock CAS fails only when `QUEUED` is set, and then
//! the unlocker takes the slow path and wakes a waiter.
//!
//! **Slow lock.** After a short spin, the locker takes the list lock, sets
//! `QUEUED` (`fetch_or`), and tries once more to take `LOCKED`; only if that
//! fails does it enqueue itself and park (see `waitlist.rs`).
//! *No lost wakeup:* the unlocker's `CAS(LOCKED → 0)` and the locker's
//! `fetch_or(QUEUED)` are read-modify-writes of one word, so one comes
//! first. If the unlock came first, the locker's retry sees the mutex free
//! and takes it. If the `fetch_or` came first, the unlock CAS fails, and the
//! unlocker's slow path must take the list lock, which it gets only after
//! the locker has enqueued itself, so it finds the locker in the list.
//!
//! **Slow unlock and fairness** (Go's `sync.Mutex` starvation mode is the
//! model). Under the list lock the unlocker pops the head waiter. Normally
//! it releases the mutex and wakes that waiter with `RETRY`: the waiter
//! competes with newly arriving lockers (which keeps the lock busy instead
//! of idle while the woken thread is scheduled), and if it loses it goes
//! back to the *front* of the list keeping its original start time. Once
//! the head has waited [`STARVATION`] (1 ms, Go's figure) the unlocker
//! instead hands the mutex over: it leaves `LOCKED` set and wakes the head
//! with `GRANTED`, so the head owns the mutex without competing. Every
//! waiter therefore gets the lock at most about 1 ms plus one lock hold per
//! waiter ahead of it after it starts waiting, however hard others hammer.
//!
//! **Cancellation.** `lock` is a cancellation point only where it would
//! park (the fast path and the spin are untouched). A cancelled waiter
//! withdraws from the list under the list lock, clearing `QUEUED` if it
//! was the last, so the bit stays exact. If an unlocker popped it first,
//! the wakeup is the waiter's: `GRANTED` means it owns the mutex, so `lock`
//! returns the guard (rule R2, the cancellation is raised at the next
//! cancellation point); `RETRY` means the unlocker released the mutex and
//! woke nobody else, so before unwinding the waiter passes that wakeup on
//! (takes the mutex if it is free and releases it at once, which wakes the
//! next waiter): otherwise a waiter behind it could sleep with the mutex
//! free. A thread already unwinding (rule R1) waits with the masked wait,
//! as for any lock acquisition. `Condvar` re-locks through
//! `raw_lock_masked`, which is never a cancellation point: a condvar wait
//! must hold the mutex again before it returns or unwinds.
//!
//! **Who holds it** (for thread dumps and their wait-for cycles; the design
//! is "Who holds a lock" in the engine's `trace.rs`). The mutex itself does
//! not record its owner: a dump cannot safely read a mutex that may be
//! gone. The owner records the mutex instead, in its own green thread's
//! list of held locks: `raw_lock`, `raw_lock_masked` and `try_lock` note
//! the mutex's id after *every* way of acquiring it (the fast path, the
//! spin, a `RETRY` wakeup won, a `GRANTED` handover, a handover kept by a
//! cancelled waiter: all return through them), and `raw_unlock` forgets
//! it just before releasing (guards may drop in any order; a condvar wait
//! unlocks and relocks through the same two, so a thread waiting on a
//! condvar is not listed as the holder). A waiter's cancellation that
//! passes a `RETRY` wakeup on (`withdraw`) takes and releases the mutex
//! without noting it: `release`, not `raw_unlock`. On a green thread this
//! adds a thread-local read and a store to `lock` and to `unlock`, no
//! atomics: 9 instructions each, 18 of the 48 an uncontended lock+unlock
//! pair now takes on a green thread (callgrind, a loop of a million
//! pairs). The same change made the poison flag ask std's inlined
//! `panicking` count before spool's call, which took 40 off the pair: it
//! took 67 before either. On a plain OS thread it does nothing.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::{LockResult, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use spool_runtime::trace::WaitReason;

use super::poison;
use super::waitlist::{WaitList, Waited, Waiter, WAITING};
use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::cancel;
use crate::loom::hint;
use crate::loom::Arc;

/// Someone owns the mutex.
const LOCKED: u32 = 1;
/// The wait list may be non-empty (see "Algorithm").
const QUEUED: u32 = 2;

/// Wake reason: the mutex was released; try again to take it.
const RETRY: u32 = 1;
/// Wake reason: the mutex was handed over; the waiter owns it.
const GRANTED: u32 = 2;

/// How long the head waiter may wait before unlock hands it the mutex.
#[cfg_attr(loom, allow(dead_code))]
const STARVATION: Duration = Duration::from_millis(1);

#[cfg(loom)]
std::thread_local! {
    /// Loom has no time, so under loom the model chooses whether `unlock`
    /// finds the head waiter starving (a model's threads all run on the
    /// OS thread that set it).
    static LOOM_STARVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How many times a contended `lock` re-checks before it parks. Kept small:
/// the owner may be a switched-out green thread of the locker's own worker,
/// which cannot release the mutex while the locker spins. One under loom:
/// the spin path is still explored, without multiplying interleavings.
const SPINS: u32 = if cfg!(loom) { 1 } else { 32 };

/// A mutual exclusion primitive protecting shared data, like
/// [`std::sync::Mutex`], but a thread that must wait parks: a green thread
/// switches to other green threads of its worker, a plain OS thread blocks.
///
/// The same mutex works between green threads of one worker, across
/// workers, and between green threads and OS threads. Poisoning is std's:
/// if a thread panics while holding the guard, later `lock`s return
/// `Err(PoisonError)` with the guard inside.
///
/// ```
/// use spool::sync::{Arc, Mutex};
/// use spool::thread;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10)
///     .map(|_| {
///         let counter = Arc::clone(&counter);
///         thread::spawn(move || *counter.lock().unwrap() += 1)
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock().unwrap(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    /// `LOCKED` and `QUEUED` bits (see "Algorithm").
    state: AtomicU32,
    waiters: WaitList,
    poison: poison::Flag,
    /// # Invariant
    /// Accessed only by the owner of `LOCKED` (through a guard), or through
    /// `&mut self`.
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands `&mut T` to one thread at a time (the owner of
// `LOCKED`), so sharing it between threads only ever moves access to the
// `T` between them: `T: Send` is what that needs, as for std's `Mutex`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T: ?Sized> UnwindSafe for Mutex<T> {}
impl<T: ?Sized> RefUnwindSafe for Mutex<T> {}

/// RAII guard of a locked [`Mutex`]: derefs to the data and unlocks when
/// dropped. Returned by [`Mutex::lock`] and [`Mutex::try_lock`].
///
/// ```
/// let m = spool::sync::Mutex::new(vec![1]);
/// let mut guard = m.lock().unwrap();
/// guard.push(2);
/// drop(guard); // unlocks
/// assert_eq!(*m.lock().unwrap(), [1, 2]);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    lock: &'a Mutex<T>,
    poison: poison::Guard,
    /// Not `Send`, as std's guard: unlocking belongs to the locking thread.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives out `&T`, so sharing it is sharing
// `&T`, which `T: Sync` allows (std's bound).
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    crate::loom::const_fn! {
        /// Creates an unlocked mutex; `const`, so it can initialise a `static`.
        ///
        /// ```
        /// use spool::sync::Mutex;
        /// static NAMES: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        /// NAMES.lock().unwrap().push("spool");
        /// assert_eq!(NAMES.lock().unwrap().len(), 1);
        /// ```
        #[inline]
        pub fn new(t: T) -> Mutex<T> {
            Mutex {
                state: AtomicU32::new(0),
                waiters: WaitList::new(),
                poison: poison::Flag::new(),
                data: UnsafeCell::new(t),
            }
        }
    }

    /// Consumes the mutex and returns the data; `Err` (with the data
    /// inside) if it is poisoned.
    ///
    /// ```
    /// let m = spool::sync::Mutex::new(5);
    /// assert_eq!(m.into_inner().unwrap(), 5);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        let data = self.data.into_inner();
        if poisoned {
            Err(std::sync::PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the mutex, parking the calling thread (green or OS) until
    /// it is available. `Err` if the mutex is poisoned; the guard is inside
    /// the error either way.
    ///
    /// Locking a mutex the calling thread already holds deadlocks, as with
    /// std.
    ///
    /// # Cancellation
    /// A cancellation point, but only when the mutex is taken and the call
    /// would park: a cancelled thread then unwinds with
    /// [`Cancelled`](crate::cancel::Cancelled) without the lock, unless the
    /// lock was handed to it first (then it returns the guard and the
    /// cancellation is raised at the next cancellation point). A thread
    /// already unwinding (a destructor during a panic or a cancellation)
    /// waits for the lock as usual. A cancellation unwinding through a
    /// guard does not poison the mutex: it is not a panic.
    ///
    /// ```
    /// use spool::sync::{Arc, Mutex};
    /// let m = Arc::new(Mutex::new(0));
    /// let m2 = Arc::clone(&m);
    /// spool::thread::spawn(move || *m2.lock().unwrap() = 10).join().unwrap();
    /// assert_eq!(*m.lock().unwrap(), 10);
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.raw_lock();
        MutexGuard::new(self)
    }

    /// Acquires the mutex if it is free right now; otherwise
    /// `Err(TryLockError::WouldBlock)` (or `Poisoned` if it is poisoned).
    ///
    /// ```
    /// use spool::sync::{Mutex, TryLockError};
    /// let m = Mutex::new(1);
    /// let held = m.lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(held);
    /// assert_eq!(*m.try_lock().unwrap(), 1);
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self.try_acquire() {
            self.note_held();
            MutexGuard::new(self).map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether the mutex is poisoned (a holder panicked).
    ///
    /// ```
    /// use spool::sync::{Arc, Mutex};
    /// let m = Arc::new(Mutex::new(0));
    /// let m2 = Arc::clone(&m);
    /// let _ = spool::thread::spawn(move || {
    ///     let _guard = m2.lock().unwrap();
    ///     panic!("poison it");
    /// })
    /// .join();
    /// assert!(m.is_poisoned());
    /// ```
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poisoned state, so later `lock`s return `Ok`.
    ///
    /// ```
    /// use spool::sync::{Arc, Mutex};
    /// let m = Arc::new(Mutex::new(0));
    /// let m2 = Arc::clone(&m);
    /// let _ = spool::thread::spawn(move || {
    ///     let _guard = m2.lock().unwrap();
    ///     panic!("poison it");
    /// })
    /// .join();
    /// let mut guard = m.lock().unwrap_or_else(|e| e.into_inner());
    /// *guard = 1; // repair the data
    /// m.clear_poison();
    /// drop(guard);
    /// assert!(!m.is_poisoned());
    /// ```
    #[inline]
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// A mutable reference to the data, with no locking (the `&mut self`
    /// proves exclusive access); `Err` if poisoned.
    ///
    /// ```
    /// let mut m = spool::sync::Mutex::new(0);
    /// *m.get_mut().unwrap() = 10;
    /// assert_eq!(*m.lock().unwrap(), 10);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        let data = self.data.get_mut();
        if poisoned {
            Err(std::sync::PoisonError::new(data))
        } else {
            Ok(data)
        }
    }

    /// Takes `LOCKED`, parking if needed; a cancellation point where it
    /// parks. Used by `lock`.
    #[inline]
    #[track_caller]
    pub(crate) fn raw_lock(&self) {
        // `Acquire`: pairs with the previous owner's `Release` unlock, so
        // its writes to the data are visible to us.
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(true);
        }
        self.note_held();
    }

    /// As `raw_lock`, but never a cancellation point: how `Condvar` takes
    /// the mutex back, which it must hold before it returns or unwinds.
    #[inline]
    #[track_caller]
    pub(crate) fn raw_lock_masked(&self) {
        // `Acquire`: as in `raw_lock`.
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(false);
        }
        self.note_held();
    }

    /// Releases the mutex (waking a waiter if any). The caller owns it,
    /// and took it through `raw_lock`, `raw_lock_masked` or `try_lock`.
    #[inline]
    pub(crate) fn raw_unlock(&self) {
        crate::loom::note_released(self.id());
        self.release();
    }

    /// The id thread dumps show for this mutex.
    #[inline]
    fn id(&self) -> u64 {
        crate::loom::object_id(&self.state)
    }

    /// Records the calling thread as the holder, for thread dumps (see
    /// "Who holds it"): after every acquisition that a guard will release.
    #[inline]
    fn note_held(&self) {
        crate::loom::note_held(self.id());
    }

    /// Releases the mutex (waking a waiter if any) without touching the
    /// holder record: `raw_unlock`, and `withdraw`'s pass-on. The caller
    /// owns it.
    #[inline]
    fn release(&self) {
        // `Release`: publishes our writes to the data to the next owner.
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_contended();
        }
    }

    /// Sets `LOCKED` if it is clear, keeping `QUEUED` as it is.
    #[inline]
    fn try_acquire(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & LOCKED == 0 {
            // `Acquire` on success: as in `raw_lock`.
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
        false
    }

    /// The slow path of `raw_lock` (`cancellable`) and `raw_lock_masked`.
    #[cold]
    #[track_caller]
    fn lock_contended(&self, cancellable: bool) {
        let mut waiter: Option<Arc<Waiter>> = None;
        loop {
            for _ in 0..SPINS {
                if self.state.load(Ordering::Relaxed) & LOCKED == 0 && self.try_acquire() {
                    return;
                }
                hint::spin_loop();
            }
            let mut list = self.waiters.lock();
            // `Relaxed` is enough: what matters is that this RMW and the
            // unlocker's CAS are ordered on one word ("No lost wakeup"),
            // and the acquisition itself is the `Acquire` CAS below.
            self.state.fetch_or(QUEUED, Ordering::Relaxed);
            if self.try_acquire() {
                if list.is_empty() {
                    self.state.fetch_and(!QUEUED, Ordering::Relaxed);
                }
                return;
            }
            // Woken with RETRY and lost the race: back to the front,
            // keeping the original start time (see "fairness").
            let requeue = waiter.is_some();
            let current = waiter.get_or_insert_with(|| Waiter::new(0, Instant::now()));
            if requeue {
                current.reset();
                list.push_front(current.clone());
            } else {
                list.push_back(current.clone());
            }
            drop(list);
            if !requeue {
                // The holder is named by the dump, as of the dump (see
                // "Who holds it"): none noted here, it would go stale.
                crate::loom::note_wait(WaitReason::Mutex(self.id(), None));
            }
            let reason = if cancellable {
                match current.wait_cancellable(None) {
                    Waited::Woken(reason) => reason,
                    Waited::Cancelled(cancelled) => {
                        if self.withdraw(current) == GRANTED {
                            // Handed over before we left: ours (rule R2).
                            return;
                        }
                        cancel::raise(cancelled);
                    }
                    // Rule R1: a lock acquisition waits as usual.
                    Waited::Unwinding => current.wait(),
                    Waited::TimedOut => unreachable!("a wait without a deadline timed out"),
                }
            } else {
                current.wait()
            };
            match reason {
                GRANTED => return,
                RETRY => continue,
                other => panic!("spool::sync::Mutex::lock: bad wake reason {other}"),
            }
        }
    }

    /// A cancelled waiter leaves the list (see "Cancellation"). Returns
    /// `GRANTED` if the mutex was handed to it meanwhile (it owns it);
    /// otherwise it owns nothing, and nobody counts on it any more.
    #[cold]
    fn withdraw(&self, waiter: &Arc<Waiter>) -> u32 {
        let (reason, list) = self.waiters.withdraw_locked(waiter);
        match reason {
            WAITING => {
                if list.is_empty() {
                    // `QUEUED` must say "list non-empty" once the list lock
                    // is free. `Relaxed`: as in `lock_contended`.
                    self.state.fetch_and(!QUEUED, Ordering::Relaxed);
                }
                WAITING
            }
            RETRY => {
                drop(list);
                // The unlocker released the mutex for us to compete and
                // woke nobody else: pass that wakeup on. If the mutex is
                // free, take it and release it at once, which wakes the
                // next waiter (if any); if someone else took it, their
                // unlock will, since `QUEUED` is set while waiters remain.
                if self.try_acquire() {
                    self.release();
                }
                RETRY
            }
            other => other,
        }
    }

    #[cold]
    fn unlock_contended(&self) {
        let mut list = self.waiters.lock();
        // While we own `LOCKED` nobody else can change `state`: lockers
        // only CAS when `LOCKED` is clear, and `QUEUED` changes only under
        // the list lock, which we hold. So plain stores are exact here.
        let Some(head) = list.front() else {
            // `Release`: publishes our writes to the next owner.
            self.state.store(0, Ordering::Release);
            return;
        };
        #[cfg(not(loom))]
        let starving = head.since.elapsed() >= STARVATION;
        // Loom has no time: the model picks the branch (see `loom_models`).
        #[cfg(loom)]
        let starving = {
            let _ = head;
            LOOM_STARVING.with(std::cell::Cell::get)
        };
        let woken = if starving {
            let woken = list.wake_front(GRANTED);
            let queued = if list.is_empty() { 0 } else { QUEUED };
            // Still `LOCKED`: ownership passes through the waiter's state,
            // whose `Release` store publishes our writes to the data.
            self.state.store(LOCKED | queued, Ordering::Relaxed);
            woken
        } else {
            let woken = list.wake_front(RETRY);
            let queued = if list.is_empty() { 0 } else { QUEUED };
            // `Release`: as in `raw_unlock`.
            self.state.store(queued, Ordering::Release);
            woken
        };
        drop(list);
        if let Some(woken) = woken {
            woken.unpark();
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    /// A mutex holding `T::default()`.
    ///
    /// ```
    /// let m: spool::sync::Mutex<u8> = Default::default();
    /// assert_eq!(*m.lock().unwrap(), 0);
    /// ```
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    /// A mutex holding `t`.
    ///
    /// ```
    /// let m = spool::sync::Mutex::from(3);
    /// assert_eq!(*m.lock().unwrap(), 3);
    /// ```
    fn from(t: T) -> Mutex<T> {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    /// Formats as std does: the data if the mutex is free, `<locked>`
    /// otherwise, and the poison flag.
    ///
    /// ```
    /// let m = spool::sync::Mutex::new(1);
    /// assert_eq!(format!("{m:?}"), "Mutex { data: 1, poisoned: false, .. }");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
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
        d.field("poisoned", &self.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Wraps an acquired mutex; the caller owns `LOCKED`.
    fn new(lock: &'a Mutex<T>) -> LockResult<MutexGuard<'a, T>> {
        let guard = MutexGuard {
            lock,
            poison: lock.poison.guard(),
            _not_send: PhantomData,
        };
        lock.poison.result(guard)
    }

    /// The guard's mutex (for `Condvar`).
    pub(crate) fn mutex(guard: &MutexGuard<'a, T>) -> &'a Mutex<T> {
        guard.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its thread owns `LOCKED`
        // (`data`'s invariant), and `&self` allows shared access only.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.poison.done(&self.poison);
        self.lock.raw_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Exhaustive models of the lock/unlock handshake. Loom
    //! reports a thread left parked with nobody to unpark it as a
    //! deadlock, so "no lost wakeup" needs no assertion of its own.
    use super::*;
    use ::loom::sync::atomic::AtomicBool;
    use ::loom::thread;

    /// One critical section: checks mutual exclusion (with a yield inside,
    /// so loom can try to run another thread there) and increments.
    fn increment(m: &Mutex<usize>, inside: &AtomicBool) {
        let mut guard = m.lock().unwrap();
        assert!(!inside.swap(true, Ordering::Relaxed), "two owners");
        thread::yield_now();
        *guard += 1;
        inside.store(false, Ordering::Relaxed);
    }

    /// `threads` threads increment once each; `starving` picks the unlock
    /// branch (`RETRY` and competing, or `GRANTED` hand-over).
    fn count_exactly(threads: usize, starving: bool, preemption_bound: Option<usize>) {
        LOOM_STARVING.with(|s| s.set(starving));
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = preemption_bound;
        builder.check(move || {
            let m = Arc::new(Mutex::new(0));
            let inside = Arc::new(AtomicBool::new(false));
            let others: Vec<_> = (1..threads)
                .map(|_| {
                    let (m, inside) = (m.clone(), inside.clone());
                    thread::spawn(move || increment(&m, &inside))
                })
                .collect();
            increment(&m, &inside);
            for other in others {
                other.join().unwrap();
            }
            assert_eq!(*m.lock().unwrap(), threads);
            // Every waiter left the list and cleared `QUEUED` behind it.
            assert_eq!(m.state.load(Ordering::Relaxed), 0);
            assert!(m.waiters.lock().is_empty());
        });
    }

    #[test]
    fn two_threads_retry() {
        count_exactly(2, false, None);
    }

    #[test]
    fn two_threads_handoff() {
        count_exactly(2, true, None);
    }

    // Three threads: bounded to 3 preemptions, which keeps each model to a
    // few seconds and still reaches a waiter requeued at the front while a
    // third thread competes.
    #[test]
    fn three_threads_retry() {
        count_exactly(3, false, Some(3));
    }

    #[test]
    fn three_threads_handoff() {
        count_exactly(3, true, Some(3));
    }

    /// An unlock racing the cancel of the waiter it wakes, with a second
    /// waiter behind: the cancelled waiter returns holding the mutex
    /// (handed over first: rule R2) or leaves, passing a `RETRY` wakeup on;
    /// either way the other waiter gets the mutex. Dropping the `RETRY`
    /// would leave it parked on a free mutex: a loom deadlock.
    fn unlock_races_cancel(starving: bool) {
        LOOM_STARVING.with(|s| s.set(starving));
        let mut builder = ::loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let m = Arc::new(Mutex::new(0));
            let held = m.lock().unwrap();
            let canceller = crate::loom::cancel::Canceller::new();
            let cancellable = {
                let (m, canceller) = (m.clone(), canceller.clone());
                thread::spawn(move || {
                    let _installed = canceller.install();
                    // As `raw_lock`'s slow path, reporting the cancel
                    // instead of unwinding (loom does not unwind).
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        *m.lock().unwrap() += 1;
                    })) {
                        Ok(()) => true,
                        Err(payload) => {
                            assert!(payload.is::<crate::loom::cancel::Cancelled>());
                            false
                        }
                    }
                })
            };
            let other = {
                let m = m.clone();
                thread::spawn(move || *m.lock().unwrap() += 1)
            };
            drop(held);
            canceller.cancel();
            let got = cancellable.join().unwrap();
            other.join().unwrap();
            assert_eq!(*m.lock().unwrap(), 1 + usize::from(got));
            assert_eq!(m.state.load(Ordering::Relaxed), 0);
            assert!(m.waiters.lock().is_empty());
        });
    }

    #[test]
    fn an_unlock_racing_a_cancel_is_not_lost_retry() {
        unlock_races_cancel(false);
    }

    #[test]
    fn an_unlock_racing_a_cancel_is_not_lost_handoff() {
        unlock_races_cancel(true);
    }
}
