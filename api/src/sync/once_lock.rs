//! [`OnceLock`]: a cell written once, built on [`Once`].
//!
//! The value lives in an `UnsafeCell<Option<T>>` written only by the thread
//! running the `Once`'s closure and read only after the `Once` is complete
//! (whose `Acquire`/`Release` pair publishes it; see `once.rs`). A closure
//! that panics leaves the cell empty and the next caller tries again,
//! because initialisation goes through `call_once_force`, as in std.

use std::cell::UnsafeCell;
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::once::Once;

/// A thread-safe cell written at most once, like [`std::sync::OnceLock`];
/// threads that arrive while another initialises it park until it is done.
///
/// ```
/// use spool::sync::OnceLock;
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// let value = CONFIG.get_or_init(|| "loaded".to_string());
/// assert_eq!(value, "loaded");
/// assert_eq!(CONFIG.get().map(String::as_str), Some("loaded"));
/// ```
pub struct OnceLock<T> {
    once: Once,
    /// # Invariant
    /// Written only inside `once`'s closure; read only once `once` is
    /// complete (or through `&mut self`).
    value: UnsafeCell<Option<T>>,
}

// SAFETY: as std's: sharing the cell lets one thread write a `T` that
// others then read (`T: Send + Sync`); moving it moves the `T`.
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}

impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

impl<T> OnceLock<T> {
    crate::loom::const_fn! {
        /// Creates an empty cell; `const`, so it can be a `static`.
        ///
        /// ```
        /// static CELL: spool::sync::OnceLock<u32> = spool::sync::OnceLock::new();
        /// assert!(CELL.get().is_none());
        /// ```
        #[must_use]
        pub fn new() -> OnceLock<T> {
            OnceLock {
                once: Once::new(),
                value: UnsafeCell::new(None),
            }
        }
    }

    /// The value, if the cell is initialised (never waits).
    ///
    /// ```
    /// let cell = spool::sync::OnceLock::new();
    /// assert_eq!(cell.get(), None);
    /// cell.set(1).unwrap();
    /// assert_eq!(cell.get(), Some(&1));
    /// ```
    pub fn get(&self) -> Option<&T> {
        if self.once.is_completed() {
            // SAFETY: the `Once` is complete, so the value was written and
            // is never written again while `&self` lives (invariant).
            unsafe { (*self.value.get()).as_ref() }
        } else {
            None
        }
    }

    /// A mutable reference to the value, if initialised.
    ///
    /// ```
    /// let mut cell = spool::sync::OnceLock::from(1);
    /// *cell.get_mut().unwrap() += 1;
    /// assert_eq!(cell.get(), Some(&2));
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut().as_mut()
    }

    /// Parks until the cell is initialised (by another thread), then
    /// returns the value.
    ///
    /// # Cancellation
    /// A cancellation point when it parks: a cancelled thread unwinds with
    /// [`Cancelled`](crate::cancel::Cancelled) unless the cell was
    /// initialised first; a thread already unwinding waits as usual.
    ///
    /// ```
    /// use spool::sync::{Arc, OnceLock};
    /// let cell = Arc::new(OnceLock::new());
    /// let cell2 = Arc::clone(&cell);
    /// let reader = spool::thread::spawn(move || *cell2.wait());
    /// cell.set(9).unwrap();
    /// assert_eq!(reader.join().unwrap(), 9);
    /// ```
    #[track_caller]
    pub fn wait(&self) -> &T {
        // Not `wait_force`: a panicked initialiser leaves the cell empty
        // and std's `OnceLock::wait` keeps waiting for a successful one.
        self.once.wait_complete();
        match self.get() {
            Some(value) => value,
            None => unreachable!("spool::sync::OnceLock: complete but empty"),
        }
    }

    /// Initialises the cell with `value`; `Err(value)` if it already was
    /// initialised.
    ///
    /// ```
    /// let cell = spool::sync::OnceLock::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// ```
    #[track_caller]
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| {
            value
                .take()
                .expect("spool::sync::OnceLock::set: value taken twice")
        });
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, initialising it with `f` first if needed. Exactly one
    /// thread runs `f`; concurrent callers park until it returns. If `f`
    /// panics the panic propagates and the cell stays empty. Calling it
    /// reentrantly from `f` deadlocks (std leaves that unspecified).
    ///
    /// # Cancellation
    /// A caller that parks waits in a cancellation point (as
    /// [`wait`](OnceLock::wait)). If a cancellation unwinds `f`, the cell
    /// stays empty, as for a panic, and the next caller runs its own `f`.
    ///
    /// ```
    /// let cell = spool::sync::OnceLock::new();
    /// assert_eq!(*cell.get_or_init(|| 92), 92);
    /// assert_eq!(*cell.get_or_init(|| unreachable!()), 92);
    /// ```
    #[track_caller]
    pub fn get_or_init<F>(&self, f: F) -> &T
    where
        F: FnOnce() -> T,
    {
        if let Some(value) = self.get() {
            return value;
        }
        self.once.call_once_force(|_| {
            let value = f();
            // SAFETY: inside `once`'s closure: the one writer, and nobody
            // reads before the `Once` completes (invariant).
            unsafe { *self.value.get() = Some(value) };
        });
        match self.get() {
            Some(value) => value,
            None => unreachable!("spool::sync::OnceLock: complete but empty"),
        }
    }

    /// Consumes the cell, returning its value if initialised.
    ///
    /// ```
    /// let cell = spool::sync::OnceLock::from("x");
    /// assert_eq!(cell.into_inner(), Some("x"));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Takes the value out, leaving the cell empty (and re-initialisable).
    ///
    /// ```
    /// let mut cell = spool::sync::OnceLock::from(1);
    /// assert_eq!(cell.take(), Some(1));
    /// assert_eq!(cell.get(), None);
    /// ```
    pub fn take(&mut self) -> Option<T> {
        self.once = Once::new();
        self.value.get_mut().take()
    }
}

impl<T> Default for OnceLock<T> {
    /// An empty cell.
    ///
    /// ```
    /// let cell: spool::sync::OnceLock<u8> = Default::default();
    /// assert!(cell.get().is_none());
    /// ```
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    /// An initialised cell.
    ///
    /// ```
    /// assert_eq!(spool::sync::OnceLock::from(3).get(), Some(&3));
    /// ```
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        if cell.set(value).is_err() {
            unreachable!("spool::sync::OnceLock::from: fresh cell already set");
        }
        cell
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        match self.get() {
            Some(value) => OnceLock::from(value.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    /// Formats as std does: `OnceLock(value)` or `OnceLock(<uninit>)`.
    ///
    /// ```
    /// let cell = spool::sync::OnceLock::new();
    /// assert_eq!(format!("{cell:?}"), "OnceLock(<uninit>)");
    /// cell.set(1).unwrap();
    /// assert_eq!(format!("{cell:?}"), "OnceLock(1)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
