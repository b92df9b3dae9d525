//! [`LazyLock`]: a value computed on first access, built on [`Once`].
//!
//! The cell holds the initialiser until the first access runs it inside
//! the `Once`, replacing it with the value. If the initialiser panics, the
//! cell is poisoned and every later access panics, as with std. If a
//! cancellation unwinds it, the cell is poisoned too: the initialiser was
//! moved into the call and is gone, so nobody can run it again (the
//! `Once` itself stays incomplete, and the next access finds the cell
//! poisoned and panics).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::once::Once;

/// What a `LazyLock` holds.
enum Data<T, F> {
    Init(F),
    Value(T),
    /// The initialiser panicked (or is running).
    Poisoned,
}

/// A value initialised on first access, like [`std::sync::LazyLock`];
/// threads that access it while another initialises it park.
///
/// ```
/// use spool::sync::LazyLock;
/// use std::collections::HashMap;
///
/// static PRIMES: LazyLock<HashMap<u32, bool>> =
///     LazyLock::new(|| [2, 3, 5, 7].into_iter().map(|p| (p, true)).collect());
/// assert!(PRIMES.contains_key(&5));
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    once: Once,
    /// # Invariant
    /// Changed only inside `once`'s closure; once `once` is complete it is
    /// `Value` and never changes while shared.
    data: UnsafeCell<Data<T, F>>,
}

// SAFETY: as std's: the first accessor runs `F` (moved to it: `F: Send`)
// and every accessor then shares the `T` (`T: Send + Sync`).
unsafe impl<T: Sync + Send, F: Send> Sync for LazyLock<T, F> {}

impl<T: RefUnwindSafe + UnwindSafe, F: UnwindSafe> RefUnwindSafe for LazyLock<T, F> {}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    crate::loom::const_fn! {
        /// Creates a lazy value with initialiser `f`; `const`, for `static`s.
        ///
        /// ```
        /// static N: spool::sync::LazyLock<u64> = spool::sync::LazyLock::new(|| 6 * 7);
        /// assert_eq!(*N, 42);
        /// ```
        pub fn new(f: F) -> LazyLock<T, F> {
            LazyLock {
                once: Once::new(),
                data: UnsafeCell::new(Data::Init(f)),
            }
        }
    }

    /// Forces evaluation and returns a reference to the value (the same as
    /// dereferencing). Panics if the initialiser panicked earlier.
    ///
    /// # Cancellation
    /// A thread that waits for another's initialiser waits in a
    /// cancellation point (as `Once::call_once`). An initialiser unwound by
    /// a cancellation poisons the `LazyLock`, as a panic does: it was
    /// consumed by the call, so it cannot run again.
    ///
    /// ```
    /// use spool::sync::LazyLock;
    /// let lazy = LazyLock::new(|| 92);
    /// assert_eq!(*LazyLock::force(&lazy), 92);
    /// ```
    #[track_caller]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.once.call_once_force(|state| {
            if state.is_poisoned() {
                panic_poisoned();
            }
            // SAFETY: inside `once`'s closure: the only access to `data`
            // until the `Once` completes (invariant).
            let data = unsafe { &mut *this.data.get() };
            // `Poisoned` here: an earlier initialiser was cancelled (which
            // leaves the `Once` incomplete, see `once.rs`).
            let Data::Init(f) = std::mem::replace(data, Data::Poisoned) else {
                panic_poisoned();
            };
            let value = f();
            *data = Data::Value(value);
        });
        // SAFETY: the `Once` is complete, so `data` is `Value` and is never
        // changed again while `this` is shared (invariant).
        match unsafe { &*this.data.get() } {
            Data::Value(value) => value,
            _ => unreachable!("spool::sync::LazyLock: complete but not initialised"),
        }
    }

    /// Forces evaluation through an exclusive reference and returns a
    /// mutable reference to the value (the same as `DerefMut`). No other
    /// thread can be looking, so nobody waits. If the initialiser panics,
    /// the panic propagates and the `LazyLock` is poisoned: this and every
    /// later access panics, as with std.
    ///
    /// ```
    /// use spool::sync::LazyLock;
    /// let mut lazy = LazyLock::new(|| 92);
    /// *LazyLock::force_mut(&mut lazy) += 1;
    /// assert_eq!(*lazy, 93);
    /// ```
    #[track_caller]
    pub fn force_mut(this: &mut LazyLock<T, F>) -> &mut T {
        if let Data::Init(_) = this.data.get_mut() {
            let Data::Init(f) = std::mem::replace(this.data.get_mut(), Data::Poisoned) else {
                unreachable!("spool::sync::LazyLock: matched Init above")
            };
            // A panic here leaves `Poisoned` and the `Once` incomplete: a
            // later `force` finds the cell poisoned and panics.
            let value = f();
            *this.data.get_mut() = Data::Value(value);
            // Complete the `Once` so shared accesses see the value: nobody
            // else can hold `this`, so this neither waits nor races.
            this.once.call_once(|| {});
        }
        match this.data.get_mut() {
            Data::Value(value) => value,
            _ => panic_poisoned(),
        }
    }

    /// The value if it has been initialised, without initialising it.
    ///
    /// ```
    /// use spool::sync::LazyLock;
    /// let lazy = LazyLock::new(|| 7);
    /// assert_eq!(LazyLock::get(&lazy), None);
    /// let _ = *lazy;
    /// assert_eq!(LazyLock::get(&lazy), Some(&7));
    /// ```
    pub fn get(this: &LazyLock<T, F>) -> Option<&T> {
        if !this.once.is_completed() {
            return None;
        }
        // SAFETY: the `Once` is complete, so `data` is `Value` and is never
        // changed again while `this` is shared (invariant).
        match unsafe { &*this.data.get() } {
            Data::Value(value) => Some(value),
            _ => None,
        }
    }

    /// A mutable reference to the value if it has been initialised,
    /// without initialising it.
    ///
    /// ```
    /// use spool::sync::LazyLock;
    /// let mut lazy = LazyLock::new(|| 7);
    /// assert_eq!(LazyLock::get_mut(&mut lazy), None);
    /// let _ = *lazy;
    /// *LazyLock::get_mut(&mut lazy).unwrap() += 1;
    /// assert_eq!(*lazy, 8);
    /// ```
    pub fn get_mut(this: &mut LazyLock<T, F>) -> Option<&mut T> {
        match this.data.get_mut() {
            Data::Value(value) => Some(value),
            _ => None,
        }
    }
}

#[cold]
#[track_caller]
fn panic_poisoned() -> ! {
    panic!("LazyLock instance has previously been poisoned");
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;

    /// Forces evaluation ([`LazyLock::force`]).
    #[track_caller]
    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T, F: FnOnce() -> T> DerefMut for LazyLock<T, F> {
    /// Forces evaluation through an exclusive reference
    /// ([`LazyLock::force_mut`]).
    ///
    /// ```
    /// let mut lazy = spool::sync::LazyLock::new(Vec::new);
    /// lazy.push(1);
    /// assert_eq!(*lazy, [1]);
    /// ```
    #[track_caller]
    fn deref_mut(&mut self) -> &mut T {
        LazyLock::force_mut(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    /// A lazy `T::default()`.
    ///
    /// ```
    /// let lazy: spool::sync::LazyLock<Vec<u8>> = Default::default();
    /// assert!(lazy.is_empty());
    /// ```
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    /// Formats as std does: `LazyLock(value)` or `LazyLock(<uninit>)`.
    ///
    /// ```
    /// let lazy = spool::sync::LazyLock::new(|| 1);
    /// assert_eq!(format!("{lazy:?}"), "LazyLock(<uninit>)");
    /// let _ = *lazy;
    /// assert_eq!(format!("{lazy:?}"), "LazyLock(1)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        if self.once.is_completed() {
            // SAFETY: complete, so `data` is `Value` and stays so.
            if let Data::Value(value) = unsafe { &*self.data.get() } {
                d.field(value);
                return d.finish();
            }
        }
        d.field(&format_args!("<uninit>"));
        d.finish()
    }
}
