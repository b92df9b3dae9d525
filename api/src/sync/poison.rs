//! Poisoning, as std does it: a lock is poisoned when a thread panics while
//! holding it (for writing, for `RwLock`), and later lockers get
//! `Err(PoisonError)` with the guard inside.
//!
//! std asks `std::thread::panicking()`, whose count is per *OS* thread;
//! spool asks [`crate::thread::panicking`], which answers for the calling
//! *green* thread, so a green thread unwinding on the same worker does not
//! poison locks released by its neighbours.
//!
//! A cancellation unwinds like a panic (std's `thread::panicking()` is
//! true during it), but it is not a failure: the code it unwound simply
//! did not finish, as if it had returned early. So a guard released by a
//! cancellation's unwind does not poison; the engine tells the two apart
//! (`spool_runtime::cancel::unwinding_from_cancel`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LockResult, PoisonError};

use crate::loom::cancel;
use crate::thread;

/// Whether the calling green (or OS) thread is panicking: spool's answer,
/// asked only when std's per-OS-thread count says some thread of this OS
/// thread is unwinding. Spool's answer is never `true` when std's is
/// `false`, and std's is an inlined load of a global counter, while
/// spool's is a call: asking std first takes about 40 instructions off an
/// uncontended lock and unlock.
#[inline]
fn panicking() -> bool {
    std::thread::panicking() && thread::panicking()
}

/// The poison bit of one lock.
pub(crate) struct Flag {
    failed: AtomicBool,
}

/// Whether the guard's owner was already panicking when it locked (a lock
/// taken during unwinding and released by the same unwinding does not
/// poison, as with std).
#[derive(Clone, Copy)]
pub(crate) struct Guard {
    panicking: bool,
}

impl Flag {
    pub(crate) const fn new() -> Flag {
        Flag {
            failed: AtomicBool::new(false),
        }
    }

    /// Called on lock: records whether the locker is already panicking.
    #[inline]
    pub(crate) fn guard(&self) -> Guard {
        Guard {
            panicking: panicking(),
        }
    }

    /// Called on unlock: poisons if the owner began panicking meanwhile
    /// (a panic, not a cancellation).
    #[inline]
    pub(crate) fn done(&self, guard: &Guard) {
        if !guard.panicking && panicking() && !cancel::unwinding_from_cancel() {
            // `Relaxed`: the flag is only a hint about the data, which the
            // lock itself orders (std uses `Relaxed` too).
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.failed.store(false, Ordering::Relaxed);
    }

    /// `Ok(guard)` or, if poisoned, `Err(PoisonError::new(guard))`.
    #[inline]
    pub(crate) fn result<G>(&self, guard: G) -> LockResult<G> {
        if self.get() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }
}
