//! Per-green-thread storage: `spool::thread_local!` and [`LocalKey`].
//!
//! `std::thread_local!` stores one value per *OS* thread, which green
//! threads on the same worker would share (and, with an initialiser that
//! blocks, is unsound: see "Thread-local storage" in [`spool::thread`]). A
//! key declared with [`spool::thread_local!`](crate::thread_local) gives
//! each green thread its own value, stored in the green thread itself, and
//! each plain OS thread its own value too. Values are created lazily on
//! first access and dropped when their thread exits (before `join`
//! returns).
//!
//! [`spool::thread`]: crate::thread#thread-local-storage

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Declares per-thread values: one per green thread and one per OS thread.
///
/// A drop-in replacement for [`std::thread_local!`]: the same syntax — any
/// number of declarations in one invocation, each with its attributes
/// (doc comments, `#[allow(..)]`, `#[cfg(..)]`) and visibility, with a
/// lazy initialiser or a `const { … }` one (which, as with std, must be a
/// constant expression) — so a port swaps `std::thread_local!` for
/// `spool::thread_local!` textually. Each key is a [`LocalKey`] with std's
/// methods (`with`, `try_with`, and `set`/`get`/`take`/`replace`/
/// `with_borrow`/`with_borrow_mut` for `Cell` and `RefCell` values).
///
/// Unlike std's, a lazy initialiser may block on spool (sleep, take a
/// lock, receive from a channel): every green thread runs its own
/// initialiser for its own value, so nothing is shared between the green
/// threads of a worker and no value is replaced while it is borrowed. See
/// "Thread-local storage" in [`spool::thread`](crate::thread#thread-local-storage)
/// for what `std::thread_local!` does under green threads.
///
/// ```
/// use std::cell::Cell;
/// spool::thread_local! {
///     static COUNTER: Cell<u32> = const { Cell::new(0) };
/// }
/// COUNTER.set(5);
/// let in_child = spool::thread::spawn(|| {
///     COUNTER.set(COUNTER.get() + 1);
///     COUNTER.get()
/// })
/// .join()
/// .unwrap();
/// assert_eq!(in_child, 1); // the child had its own value
/// assert_eq!(COUNTER.get(), 5);
/// ```
///
/// Several declarations, attributes, visibility, and an initialiser that
/// blocks:
///
/// ```
/// use std::cell::RefCell;
/// use std::time::Duration;
///
/// spool::thread_local! {
///     /// Per-thread scratch space.
///     pub static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64));
///     #[allow(dead_code)]
///     pub(crate) static DEPTH: u32 = const { 0 };
///     static SLOW: String = {
///         spool::thread::sleep(Duration::from_millis(1)); // parks only this thread
///         format!("made by {:?}", spool::thread::current().id())
///     }
/// }
/// SCRATCH.with_borrow_mut(|s| s.push(1));
/// let theirs = spool::thread::spawn(|| SLOW.with(String::clone)).join().unwrap();
/// assert_ne!(theirs, SLOW.with(String::clone));
/// ```
#[macro_export]
macro_rules! thread_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const $init:block $(; $($rest:tt)*)?) => {
        $(#[$attr])* $vis static $name: $crate::thread::LocalKey<$t> = $crate::thread::LocalKey::new({
            // As with std, a `const` initialiser must be a constant
            // expression; each thread's value is a fresh copy of it.
            #[allow(clippy::declare_interior_mutable_const)]
            const __SPOOL_INIT: $t = $init;
            fn __spool_init() -> $t {
                __SPOOL_INIT
            }
            __spool_init
        });
        $($crate::thread_local!($($rest)*);)?
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr_2021 $(; $($rest:tt)*)?) => {
        $(#[$attr])* $vis static $name: $crate::thread::LocalKey<$t> = $crate::thread::LocalKey::new({
            fn __spool_init() -> $t {
                $init
            }
            __spool_init
        });
        $($crate::thread_local!($($rest)*);)?
    };
}

/// A key for per-thread values, declared with
/// [`spool::thread_local!`](crate::thread_local).
///
/// ```
/// use std::cell::Cell;
///
/// spool::thread_local!(static COUNT: Cell<u32> = const { Cell::new(0) });
/// COUNT.set(5);
/// // Each green thread has its own value, even on the same worker.
/// let other = spool::thread::spawn(|| COUNT.get()).join().unwrap();
/// assert_eq!((COUNT.get(), other), (5, 0));
/// ```
pub struct LocalKey<T: 'static> {
    /// Slot number plus one; zero until first use.
    slot: AtomicUsize,
    init: fn() -> T,
}

/// The error of [`LocalKey::try_with`]: the value was already destroyed
/// because its thread is exiting.
///
/// ```
/// use std::cell::Cell;
///
/// spool::thread_local!(static X: Cell<u8> = const { Cell::new(1) });
/// let value: Result<u8, spool::thread::AccessError> = X.try_with(Cell::get);
/// assert_eq!(value, Ok(1)); // `Err` only while the thread's values are destroyed
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("already destroyed")
    }
}

impl Error for AccessError {}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

impl<T: 'static> LocalKey<T> {
    /// Used by `spool::thread_local!`; not meant to be called directly.
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            slot: AtomicUsize::new(0),
            init,
        }
    }

    fn slot(&'static self) -> usize {
        // Relaxed: the slot number is the only data; racing first uses agree
        // through the compare-exchange.
        let slot = self.slot.load(Ordering::Relaxed);
        if slot != 0 {
            return slot - 1;
        }
        let fresh = spool_runtime::new_local_slot() + 1;
        match self
            .slot
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh - 1,
            Err(existing) => existing - 1,
        }
    }

    /// The value for this thread, created with `init` if absent.
    fn get_or_init(&'static self, init: impl FnOnce() -> T) -> Result<*const T, AccessError> {
        let slot = self.slot();
        let found = spool_runtime::with_local_storage(|table| {
            if table.is_destroyed() {
                Err(AccessError)
            } else {
                Ok(table.get(slot))
            }
        });
        match found {
            None | Some(Err(_)) => return Err(AccessError),
            Some(Ok(Some(value))) => return Ok(downcast::<T>(value)),
            Some(Ok(None)) => {}
        }
        // Run the initializer outside the table borrow: it is user code and
        // may touch other keys.
        let boxed: Box<dyn Any> = Box::new(init());
        let value = downcast::<T>(&*boxed);
        let replaced = spool_runtime::with_local_storage(move |table| {
            if table.is_destroyed() {
                Err(boxed)
            } else {
                // SAFETY: a value is only replaced here when a recursive
                // initialization stored one first; that inner access's
                // reference was confined to its own `with` call, which has
                // returned.
                Ok(unsafe { table.insert(slot, boxed) })
            }
        });
        match replaced {
            None => Err(AccessError),
            Some(Err(refused)) => {
                drop(refused);
                Err(AccessError)
            }
            Some(Ok(old)) => {
                // A recursive initialization stored a value first; it is
                // replaced, as std did. Dropped outside the table borrow.
                drop(old);
                Ok(value)
            }
        }
    }

    /// Runs `f` with a reference to this thread's value, creating it first
    /// if needed.
    ///
    /// # Panics
    /// If the value was already destroyed (the thread is exiting), like
    /// std; see [`LocalKey::try_with`].
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// spool::thread_local!(static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new()));
    /// LOG.with(|log| log.borrow_mut().push("started"));
    /// assert_eq!(LOG.with(|log| log.borrow().len()), 1);
    /// ```
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(r) => r,
            Err(_) => panic!(
                "cannot access a Thread Local Storage value during or after destruction: AccessError"
            ),
        }
    }

    /// As [`LocalKey::with`], but returns [`AccessError`] instead of
    /// panicking when the value was already destroyed.
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// spool::thread_local!(static DEPTH: Cell<u32> = const { Cell::new(0) });
    /// // In a destructor that may run after the thread's values are gone:
    /// let depth = DEPTH.try_with(Cell::get).unwrap_or(0);
    /// assert_eq!(depth, 0);
    /// ```
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let value = self.get_or_init(self.init)?;
        // SAFETY: the value is boxed in this thread's table and stays there
        // until the thread exits or the slot is re-initialized, neither of
        // which can happen while `f` runs on this thread with the reference
        // (a value is only replaced during its own first initialization).
        Ok(f(unsafe { &*value }))
    }

    /// Initializes with `value` if absent (without running the
    /// initializer); otherwise hands `value` back.
    fn initialize_with(&'static self, value: T) -> Result<Option<T>, AccessError> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("initialize_with: value taken twice"))?;
        Ok(value)
    }
}

fn downcast<T: 'static>(value: *const dyn Any) -> *const T {
    // SAFETY: `value` points at a live boxed value in this thread's table
    // (the caller just read or inserted it).
    match unsafe { &*value }.downcast_ref::<T>() {
        Some(value) => value,
        None => panic!("spool::thread_local!: a slot holds a value of another type"),
    }
}

impl<T: 'static> LocalKey<Cell<T>> {
    /// Sets the value (initializing it with `value`, without running the
    /// initializer, if absent).
    ///
    /// ```
    /// use std::cell::Cell;
    /// spool::thread_local!(static X: Cell<i32> = panic!("not run"));
    /// X.set(3);
    /// assert_eq!(X.get(), 3);
    /// ```
    pub fn set(&'static self, value: T) {
        match self.initialize_with(Cell::new(value)) {
            Ok(Some(cell)) => self.with(|c| c.set(cell.into_inner())),
            Ok(None) => {}
            Err(_) => {
                panic!("cannot access a Thread Local Storage value during or after destruction")
            }
        }
    }

    /// A copy of the value.
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// spool::thread_local!(static N: Cell<u32> = const { Cell::new(7) });
    /// assert_eq!(N.get(), 7);
    /// ```
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the value, leaving `Default::default()`.
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// spool::thread_local!(static N: Cell<u32> = const { Cell::new(7) });
    /// assert_eq!(N.take(), 7);
    /// assert_eq!(N.get(), 0);
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the value, returning the old one.
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// spool::thread_local!(static N: Cell<u32> = const { Cell::new(1) });
    /// assert_eq!(N.replace(2), 1);
    /// assert_eq!(N.get(), 2);
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> LocalKey<RefCell<T>> {
    /// Runs `f` with a shared borrow of the value.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// spool::thread_local!(static V: RefCell<Vec<u8>> = RefCell::new(vec![1]));
    /// V.with_borrow_mut(|v| v.push(2));
    /// assert_eq!(V.with_borrow(|v| v.len()), 2);
    /// ```
    pub fn with_borrow<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Runs `f` with a mutable borrow of the value.
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// spool::thread_local!(static BUF: RefCell<String> = RefCell::new(String::new()));
    /// BUF.with_borrow_mut(|b| b.push_str("hi"));
    /// assert_eq!(BUF.with_borrow(|b| b.clone()), "hi");
    /// ```
    pub fn with_borrow_mut<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&mut T) -> R,
    {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Sets the value (initializing it with `value`, without running the
    /// initializer, if absent).
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// spool::thread_local!(static V: RefCell<Vec<u8>> = panic!("not run"));
    /// V.set(vec![1, 2]); // the initializer never runs
    /// assert_eq!(V.with_borrow(|v| v.len()), 2);
    /// ```
    pub fn set(&'static self, value: T) {
        match self.initialize_with(RefCell::new(value)) {
            Ok(Some(cell)) => self.with(|c| *c.borrow_mut() = cell.into_inner()),
            Ok(None) => {}
            Err(_) => {
                panic!("cannot access a Thread Local Storage value during or after destruction")
            }
        }
    }

    /// Takes the value, leaving `Default::default()`.
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// spool::thread_local!(static V: RefCell<Vec<u8>> = RefCell::new(vec![1]));
    /// assert_eq!(V.take(), [1]);
    /// assert!(V.with_borrow(Vec::is_empty));
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the value, returning the old one.
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// spool::thread_local!(static V: RefCell<Vec<u8>> = RefCell::new(vec![1]));
    /// assert_eq!(V.replace(vec![2]), [1]);
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}
