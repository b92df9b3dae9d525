//! Cancellation: cancel scopes, timeouts around blocks of code, and
//! cancelling threads — structured, and with nothing lost.
//!
//! # A timeout around a read
//! A green thread waiting on a silent peer waits forever, unless something
//! bounds it. [`spool::time::timeout`](crate::time::timeout) bounds a whole
//! block of code, not a single call: every blocking call inside it — a
//! socket read, a channel receive, a lock's wait, a `sleep`, a `join` — is a
//! *cancellation point*, and when the deadline passes, the one the thread is
//! blocked in unwinds out of the block, running destructors on the way.
//!
//! ```
//! use spool::net::{TcpListener, TcpStream};
//! use std::io::Read;
//! use std::time::Duration;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut stream = TcpStream::connect(listener.local_addr()?)?;
//! let (_silent_peer, _) = listener.accept()?;
//! let mut buf = [0; 64];
//! let read = spool::time::timeout(Duration::from_millis(20), || stream.read(&mut buf));
//! assert!(read.is_err()); // Elapsed: the peer never wrote
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `timeout` returns `Err(`[`Elapsed`](crate::time::Elapsed)`)` — an
//! ordinary error that converts into an `io::Error` of kind `TimedOut` — so
//! `?` works in functions that return `io::Result`.
//!
//! # Cancel scopes
//! A timeout is a [`CancelScope`] with a deadline. A scope can also be
//! cancelled by a call, from any thread holding a clone of its handle:
//!
//! ```
//! use spool::cancel::CancelScope;
//! use std::time::Duration;
//!
//! let scope = CancelScope::new();
//! let stop = scope.clone();
//! let (_tx, rx) = spool::sync::mpsc::channel::<String>();
//! let canceller = spool::thread::spawn(move || {
//!     spool::thread::sleep(Duration::from_millis(5));
//!     stop.cancel();
//! });
//! let got = scope.run(|| rx.recv()); // nobody sends
//! assert!(got.is_none()); // `None`: this scope's cancellation ended the body
//! canceller.join().unwrap();
//! ```
//!
//! Scopes are entered only through closures ([`CancelScope::run`]), so one
//! can never be exited out of order or from another thread. They nest: a
//! thread is *effectively cancelled* when any scope around it is cancelled,
//! up to and including the first *shielded* one; its effective deadline is
//! the earliest over the same scopes. Scoped threads
//! ([`thread::scope`](crate::thread::scope)) and the pool thread running an
//! [`unblock`](crate::unblock) closure inherit the scopes of the code that
//! started them, so a timeout around a `scope` reaches its children.
//!
//! # Cancelling a thread
//! [`JoinHandle::cancel`](crate::thread::JoinHandle::cancel) cancels a
//! thread's outermost scope. `join` keeps std's signature: a thread that
//! ended by cancellation returns `Err(payload)`, and
//! [`Cancelled::from_payload`] tells that payload from a panic's. Nothing
//! is printed for a cancellation. Only holders of the handle can cancel.
//!
//! # Shielding a cleanup
//! Code that must finish even when the thread is cancelled — sending a
//! goodbye, flushing a log, releasing a lease on a remote server — runs in
//! [`shield`]; put a `timeout` inside it so it cannot hang forever:
//!
//! ```
//! use spool::cancel::{shield, CancelScope};
//! use std::time::Duration;
//!
//! let scope = CancelScope::new();
//! scope.cancel();
//! let (tx, rx) = spool::sync::mpsc::channel();
//! let result = scope.run(|| {
//!     let _goodbye = Guard(tx);
//!     spool::thread::sleep(Duration::from_secs(60)); // unwinds at once
//! });
//! assert!(result.is_none());
//! assert_eq!(rx.recv().unwrap(), "bye");
//!
//! struct Guard(spool::sync::mpsc::Sender<&'static str>);
//! impl Drop for Guard {
//!     fn drop(&mut self) {
//!         // The thread is cancelled and unwinding: shield the cleanup, and
//!         // bound it.
//!         shield(|| {
//!             let _ = spool::time::timeout(Duration::from_secs(1), || self.0.send("bye"));
//!         });
//!     }
//! }
//! ```
//!
//! # The rules
//! * **R1 — never unwind while unwinding.** A second unwind during an
//!   unwind aborts a Rust process. So while a thread is already unwinding
//!   (a panic, or the cancellation itself, running destructors) and is
//!   effectively cancelled, blocking calls do not unwind: those with an
//!   error return fail fast with it (I/O returns an `io::Error` of kind
//!   `TimedOut`; a channel send returns the message in its error),
//!   `sleep`, `park` and `Condvar::wait` return early, and `join`, scope
//!   exit and lock acquisition block as usual. A `BufWriter<TcpStream>`
//!   dropped during a cancellation, whose peer never reads, neither hangs
//!   nor aborts: its flush fails with `TimedOut`.
//! * **R2 — a completed operation beats a late cancellation.** If the
//!   operation completed (a message was handed over, a permit or
//!   notification was granted, a read returned data) before the cancel was
//!   observed, the call returns its value and the cancellation is raised at
//!   the next cancellation point. No message, permit, wakeup or byte is
//!   lost to a cancel race.
//! * **R3 — a timeout is an error, not a cancellation.** `timeout` returns
//!   `Err(Elapsed)` only when its own deadline ended the body; an outer
//!   cancellation or a panic passes through unchanged, and a body that
//!   returned after the deadline but before noticing it returns `Ok`.
//!
//! Besides: a socket is never closed or shut down because of a
//! cancellation, and a cancelled thread's destructors run as for a panic.
//! `Mutex`, `RwLock` and `Once` check for cancellation only when they would
//! actually wait, so their fast paths cost nothing more.
//!
//! # Limits
//! * **std's blocking calls** (`std::thread::sleep`, `std::fs`, a blocking
//!   C library) cannot be interrupted: a cancellation is seen at the next
//!   spool call. Run such work through [`unblock`](crate::unblock), which is
//!   shielded — the cancellation is raised at the first cancellation point
//!   after it returns — and whose
//!   closure can poll [`is_cancelled`] to stop early; or through
//!   [`unblock_abandon`](crate::unblock_abandon), which returns at once on
//!   cancellation and lets the closure finish on its own.
//! * **CPU loops** make no blocking calls: call [`checkpoint`] (unwinds) or
//!   [`is_cancelled`] (polls) in the loop.
//! * **FFI frames** must not be unwound through: a callback from C that
//!   calls spool should use [`is_cancelled`], or run inside [`shield`].
//! * **`catch_unwind`** catches a cancellation like a panic. That is safe —
//!   the thread stays cancelled, and the next cancellation point raises it
//!   again — but code that catches and retries in a loop should check
//!   [`Cancelled::from_payload`] and let cancellations go.
//! * **`panic = "abort"`** builds cannot unwind. There, cancellation is
//!   cooperative: every cancellation point behaves as under R1 — blocking
//!   calls with an error return return it (`TimedOut` for I/O, the message
//!   back for a send, the error for a receive), `sleep`, `park` and
//!   `Condvar::wait` return early, `join` and locks block as usual, and
//!   [`checkpoint`] does nothing — and code that must stop checks
//!   [`is_cancelled`]. `timeout` still works for bodies that return: their
//!   blocking calls end at the deadline, and `timeout` returns the body's
//!   value (`Ok`; nothing the body received is dropped), so check the inner
//!   result. `examples/abort_build.rs` shows it; CI runs it with a profile
//!   that sets `panic = "abort"`.
//! * **Plain OS threads** (like `main`) get the same semantics for spool's
//!   blocking calls; only green threads have a root scope for
//!   `JoinHandle::cancel`.

pub use spool_runtime::cancel::{
    checkpoint, current_deadline, is_cancelled, shield, CancelReason, CancelScope, Cancelled,
    ScopeId,
};
