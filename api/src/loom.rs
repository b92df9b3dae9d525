//! The synchronisation `spool::sync`'s wait protocols are built on: std's
//! atomics, `Mutex` and `Arc` and the engine's park/unpark normally, loom's
//! under `--cfg loom`, so the `loom_models` modules next to `waitlist.rs`,
//! `mutex.rs`, `condvar.rs` and `mpmc/chan.rs` can explore every
//! interleaving of a wait/wake handshake (the facade tokio uses; STYLE.md
//! §7; the engine's own is `runtime/src/loom.rs`). Run them with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p spool --release --lib loom`.
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
        current, in_green_thread, wait, wait_until, yield_now, ThreadHandle as Thread,
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

    /// Loom's yield.
    #[cfg(loom)]
    pub(crate) use ::loom::thread::yield_now;

    /// Loom's threads count as green ones: no spinning before a park.
    #[cfg(loom)]
    pub(crate) fn in_green_thread() -> bool {
        true
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
