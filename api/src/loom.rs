//! The synchronisation `spool::sync`'s wait protocols are built on: std's
//! atomics, `Mutex` and `Arc` and the engine's park/unpark normally, loom's
//! under `--cfg loom`, so the `loom_models` modules next to `waitlist.rs`,
//! `mutex.rs`, `condvar.rs` and `mpmc/chan.rs` can explore every
//! interleaving of a wait/wake handshake (the facade tokio uses;
//! the engine's own is `runtime/src/loom.rs`). Run them with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p spool-rt --release --lib loom`.
//!
//! In the normal build everything here is a plain re-export, so routing a
//! file through the facade changes nothing. Under loom:
//! * `thread::{current, wait, Thread::wake}` are loom's park and unpark,
//!   which loom tracks (a wake before the wait leaves a token, as the
//!   engine's does; a thread waiting with nobody left to wake it is a
//!   reported deadlock). Loom has no time: `wait_until` only yields (a
//!   timed wait that returns early, which every caller tolerates), and the
//!   models drive timeouts by calling the cancel paths directly.
//! * `thread::in_green_thread` is `true`, so the channel's spin before
//!   parking (which only adds interleavings, never outcomes) is skipped.
//! * `hint::spin_loop` is loom's (a yield).
//! * The primitives' `const fn` constructors are plain `fn`s (loom's
//!   atomics and mutex cannot be built in a const context; see
//!   `const_fn!`), and the mpmc `Context` is not cached in thread-local
//!   storage (loom's threads share the OS thread's storage).

#[cfg(loom)]
pub(crate) use ::loom::sync::{atomic, Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{atomic, Arc, Mutex, MutexGuard};

/// Waiting: the engine's internal `wait`/`wake` normally (which never touch
/// the user's park token), loom's park/unpark under `--cfg loom`.
pub(crate) mod thread {
    #[cfg(not(loom))]
    pub(crate) use spool_runtime::{
        alone_on_worker, current, in_green_thread, wait, wait_until, yield_now,
        ThreadHandle as Thread,
    };

    /// Loom's thread handle, with the engine's name for its wake.
    #[cfg(loom)]
    #[derive(Clone, Debug)]
    pub(crate) struct Thread(::loom::thread::Thread);

    #[cfg(loom)]
    impl Thread {
        /// The engine's `ThreadHandle::wake`: loom's unpark.
        pub(crate) fn wake(&self) {
            self.0.unpark();
        }
    }

    /// Loom's current thread.
    #[cfg(loom)]
    pub(crate) fn current() -> Thread {
        Thread(::loom::thread::current())
    }

    /// The engine's `wait`: loom's park.
    #[cfg(loom)]
    pub(crate) fn wait() {
        ::loom::thread::park();
    }

    /// Loom has no time: a timed wait that returns at once (after letting
    /// other threads run), which every caller already treats as "check
    /// again".
    #[cfg(loom)]
    pub(crate) fn wait_until(_deadline: std::time::Instant) {
        loom::thread::yield_now();
    }

    /// Loom's threads count as green ones: no spinning before a park.
    #[cfg(loom)]
    pub(crate) fn in_green_thread() -> bool {
        true
    }

    /// Loom's threads are never alone on a worker: no yielding for it.
    #[cfg(loom)]
    pub(crate) fn alone_on_worker() -> bool {
        false
    }

    /// Loom's yield.
    #[cfg(loom)]
    pub(crate) use ::loom::thread::yield_now;
}

/// Records the wait a blocking call is about to make, for thread dumps
/// (`spool_runtime::trace::note_wait`), at the call site of the innermost
/// function of the `#[track_caller]` chain that leads here: the public
/// blocking call when every function between it and here is
/// `#[track_caller]`. Nothing under loom, whose threads are no green
/// threads.
#[inline]
#[track_caller]
pub(crate) fn note_wait(reason: spool_runtime::trace::WaitReason) {
    #[cfg(not(loom))]
    spool_runtime::trace::note_wait(reason, std::panic::Location::caller());
    #[cfg(loom)]
    let _ = reason;
}

/// As [`note_wait`], at an explicit call site (captured by a
/// `#[track_caller]` function before a closure, which cannot carry it).
#[inline]
pub(crate) fn note_wait_at(
    reason: spool_runtime::trace::WaitReason,
    site: &'static std::panic::Location<'static>,
) {
    #[cfg(not(loom))]
    spool_runtime::trace::note_wait(reason, site);
    #[cfg(loom)]
    let _ = (reason, site);
}

/// Records that the calling thread now holds the lock `id`, so a thread
/// dump can name it as the holder (`spool_runtime::trace::note_held`; see
/// "Who holds a lock" in the engine's `trace.rs`). Nothing under loom.
#[inline]
pub(crate) fn note_held(id: u64) {
    #[cfg(not(loom))]
    spool_runtime::trace::note_held(id);
    #[cfg(loom)]
    let _ = id;
}

/// Undoes [`note_held`], just before the lock is released.
#[inline]
pub(crate) fn note_released(id: u64) {
    #[cfg(not(loom))]
    spool_runtime::trace::note_released(id);
    #[cfg(loom)]
    let _ = id;
}

/// The id a thread dump shows for the object at `address` (a channel's or
/// a lock's shared state): its address.
#[inline]
pub(crate) fn object_id<T: ?Sized>(address: *const T) -> u64 {
    address.cast::<u8>() as usize as u64
}

// ---- cancellation (`spool::sync`'s waits) -------------------------------

/// The cancellation points of `spool::sync`'s waits: the engine's
/// `cancellable_wait`, `raise` and `Check` normally. Under `--cfg loom` a
/// model plays the canceller with a `cancel::Canceller`: the thread to be
/// cancelled `install`s it, and another thread's `cancel` makes the
/// installer's current or next `cancellable_wait` report `Check::Raise`,
/// as an engine interrupt would (sticky, like a cancelled scope).
///
/// The engine interrupts only a thread parked in an interruptible wait,
/// atomically with its park word; loom's `unpark` cannot tell (unparking a
/// thread blocked on one of loom's mutexes breaks loom). So an installed
/// thread's `cancellable_wait` does not park: it yields and returns (a
/// spurious return, which every wait loop takes as "check again"), and
/// the canceller only sets the flag. A wakeup that never comes then shows
/// as a loom execution that exceeds its branch limit instead of as a
/// deadlock. Threads without a canceller park as before (a timed wait only
/// yields: loom has no time). Loom never unwinds, so `Unwinding` is not
/// modelled and `unwinding_from_cancel` is `false`.
pub(crate) mod cancel {
    #[cfg(not(loom))]
    pub(crate) use spool_runtime::cancel::{raise, unwinding_from_cancel, Cancelled, Check};
    #[cfg(not(loom))]
    pub(crate) use spool_runtime::cancellable_wait;

    #[cfg(loom)]
    pub(crate) use self::model::*;

    #[cfg(loom)]
    mod model {
        use ::loom::sync::atomic::{AtomicBool, Ordering};
        use ::loom::sync::Arc;
        use std::cell::RefCell;
        use std::time::Instant;

        /// The payload of a modelled cancellation.
        #[derive(Debug)]
        pub(crate) struct Cancelled;

        /// The engine's `cancel::Check`.
        #[derive(Debug)]
        #[allow(dead_code)] // `Unwinding` is not modelled
        pub(crate) enum Check {
            Continue,
            Raise(Cancelled),
            Unwinding,
        }

        ::loom::thread_local! {
            /// The flag of the canceller the calling thread installed.
            static FLAG: RefCell<Option<Arc<AtomicBool>>> = RefCell::new(None);
        }

        /// Cancels the model thread that installed it.
        #[derive(Clone)]
        pub(crate) struct Canceller {
            flag: Arc<AtomicBool>,
        }

        #[allow(dead_code)] // used by the models only
        impl Canceller {
            pub(crate) fn new() -> Canceller {
                Canceller {
                    flag: Arc::new(AtomicBool::new(false)),
                }
            }

            /// Makes the calling thread the one this canceller cancels,
            /// until the returned guard is dropped (which must happen
            /// inside the model: loom cannot drop its `Arc` later).
            #[must_use = "the thread is cancellable while the guard lives"]
            pub(crate) fn install(&self) -> Installed {
                FLAG.with(|cell| *cell.borrow_mut() = Some(self.flag.clone()));
                Installed
            }

            /// Cancels the installer.
            pub(crate) fn cancel(&self) {
                // `SeqCst`: the model's stand-in for the engine's interrupt
                // bit, which the park word orders with the wait.
                self.flag.store(true, Ordering::SeqCst);
            }
        }

        /// Keeps a canceller installed on the calling thread.
        pub(crate) struct Installed;

        impl Drop for Installed {
            fn drop(&mut self) {
                FLAG.with(|cell| cell.borrow_mut().take());
            }
        }

        /// Whether the calling thread installed a canceller, and whether it
        /// was cancelled.
        fn flag() -> Option<bool> {
            FLAG.with(|cell| {
                cell.borrow()
                    .as_ref()
                    .map(|flag| flag.load(Ordering::SeqCst))
            })
        }

        /// The engine's `cancellable_wait`: check, wait, check again.
        pub(crate) fn cancellable_wait(until: Option<Instant>) -> Check {
            match flag() {
                Some(true) => Check::Raise(Cancelled),
                Some(false) => {
                    // Wait by yielding: see the module's documentation.
                    ::loom::thread::yield_now();
                    match flag() {
                        Some(true) => Check::Raise(Cancelled),
                        _ => Check::Continue,
                    }
                }
                None => {
                    match until {
                        Some(_) => ::loom::thread::yield_now(),
                        None => ::loom::thread::park(),
                    }
                    Check::Continue
                }
            }
        }

        /// Unwinds with the modelled cancellation (models call the inner
        /// functions that report it instead, or catch it).
        pub(crate) fn raise(cancelled: Cancelled) -> ! {
            std::panic::resume_unwind(Box::new(cancelled))
        }

        /// Loom never unwinds.
        pub(crate) fn unwinding_from_cancel() -> bool {
            false
        }
    }
}

/// `std::hint::spin_loop`, or loom's (which yields to the other threads).
pub(crate) mod hint {
    #[cfg(loom)]
    pub(crate) use ::loom::hint::spin_loop;
    #[cfg(not(loom))]
    pub(crate) use std::hint::spin_loop;
}

/// Declares a `const fn` that is a plain `fn` under `--cfg loom`, whose
/// atomics and mutex have no `const` constructors. Used for the
/// constructors std makes `const` (`Mutex::new`, `Condvar::new`, ...), so
/// `static M: Mutex<_> = Mutex::new(..)` keeps compiling in the normal
/// build.
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn;

// ---- Cancellation points of the channels (`sync/mpmc`) --------------------

/// The engine's cancellation points as the channels use them, normally;
/// under `--cfg loom` a stand-in that the channel models drive.
///
/// Under loom a model arms a `Token` on the thread it will cancel
/// (`Token::arm`); another thread's `Token::cancel` sets it and wakes that
/// thread. `cancellable_wait` is loom's park, answering `Raise` (or
/// `Unwinding`, for a token made with `Token::arm_unwinding`) once
/// the token is set, as the engine answers once the thread is cancelled;
/// a thread with no token is never cancelled. Like the engine, a pending
/// cancellation stays pending: every later wait answers it again.
pub(crate) mod chan_cancel {
    #[cfg(not(loom))]
    pub(crate) use spool_runtime::cancel::{check, raise, Cancelled, Check};
    #[cfg(not(loom))]
    pub(crate) use spool_runtime::{cancellable_wait, yield_masked};

    #[cfg(loom)]
    pub(crate) use self::model::*;

    #[cfg(loom)]
    mod model {
        use std::cell::RefCell;
        use std::time::Instant;

        use ::loom::sync::atomic::{AtomicBool, Ordering};
        use ::loom::sync::Arc;

        /// The stand-in for the engine's unwind payload.
        #[derive(Debug)]
        pub(crate) struct Cancelled;

        /// The engine's `cancel::Check`, with the stand-in payload.
        #[derive(Debug)]
        pub(crate) enum Check {
            Continue,
            Raise(Cancelled),
            Unwinding,
        }

        /// A cancellation aimed at one loom thread.
        #[derive(Clone)]
        pub(crate) struct Token {
            cancelled: Arc<AtomicBool>,
            unwinding: bool,
            thread: ::loom::thread::Thread,
        }

        ::loom::thread_local! {
            static ARMED: RefCell<Option<Token>> = RefCell::new(None);
        }

        impl Token {
            /// A token for the calling thread, whose waits then `Raise`.
            pub(crate) fn arm() -> Token {
                Token::make(false)
            }

            /// As `arm`, but the waits answer `Unwinding` (rule R1).
            pub(crate) fn arm_unwinding() -> Token {
                Token::make(true)
            }

            fn make(unwinding: bool) -> Token {
                let token = Token {
                    cancelled: Arc::new(AtomicBool::new(false)),
                    unwinding,
                    thread: ::loom::thread::current(),
                };
                ARMED.with(|armed| *armed.borrow_mut() = Some(token.clone()));
                token
            }

            /// Cancels the armed thread: sets the token, then wakes it
            /// (the engine's interrupt).
            pub(crate) fn cancel(&self) {
                self.cancelled.store(true, Ordering::Release);
                self.thread.unpark();
            }
        }

        /// What the calling thread's cancellation points must do.
        pub(crate) fn check() -> Check {
            ARMED.with(|armed| match &*armed.borrow() {
                Some(token) if token.cancelled.load(Ordering::Acquire) => {
                    if token.unwinding {
                        Check::Unwinding
                    } else {
                        Check::Raise(Cancelled)
                    }
                }
                _ => Check::Continue,
            })
        }

        /// The engine's `cancellable_wait`: check, park (loom has no
        /// time, so the bound is ignored; a park may end spuriously),
        /// check again.
        pub(crate) fn cancellable_wait(_until: Option<Instant>) -> Check {
            if let cancelled @ (Check::Raise(_) | Check::Unwinding) = check() {
                return cancelled;
            }
            ::loom::thread::park();
            check()
        }

        /// The engine's `raise`: unwinds with the stand-in payload.
        pub(crate) fn raise(cancelled: Cancelled) -> ! {
            std::panic::resume_unwind(Box::new(cancelled))
        }

        /// Loom's yield (the engine's masked yield).
        pub(crate) fn yield_masked() {
            ::loom::thread::yield_now();
        }
    }
}
