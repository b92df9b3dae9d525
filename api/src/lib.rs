//! # spool: green threads with std's blocking API
//!
//! spool runs plain blocking Rust — `spawn`, `join`, `park`, `sleep` — as
//! cheap stackful *green threads* multiplexed over a few OS threads, the way
//! goroutines run in Go. There is no `async`/`await`: a green thread is an
//! ordinary closure on its own small guarded stack, and a blocking call
//! switches to another green thread instead of blocking the OS thread.
//!
//! ## From std to spool
//! [`spool::thread`](thread) mirrors [`std::thread`] item for item, so a
//! threaded program ports by replacing `std::thread` with `spool::thread`:
//!
//! ```
//! use spool::thread;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let hits = Arc::new(AtomicUsize::new(0));
//! let handles: Vec<_> = (0..10_000)
//!     .map(|_| {
//!         let hits = hits.clone();
//!         thread::spawn(move || hits.fetch_add(1, Ordering::Relaxed))
//!     })
//!     .collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! assert_eq!(hits.load(Ordering::Relaxed), 10_000);
//! ```
//!
//! Ten thousand green threads cost a few tens of MiB of *address space*
//! and, while parked, about one page of memory each.
//!
//! The same goes for `std::sync`, `std::net` and `std::thread_local!`;
//! [`porting`] lists exactly what to swap, which std calls stall a worker
//! inside a green thread (files, child processes, DNS, blocking C
//! libraries) and what to use instead, and what differs from std (stack
//! size, scheduling, thread-locals, panics).
//!
//! ## Borrowing: scoped threads
//! ```
//! let mut counts = [0usize; 4];
//! spool::thread::scope(|s| {
//!     for (i, slot) in counts.iter_mut().enumerate() {
//!         s.spawn(move || *slot = i * 10);
//!     }
//! });
//! assert_eq!(counts, [0, 10, 20, 30]);
//! ```
//!
//! ## Waiting: park, unpark and sleep
//! Every blocking operation in spool is built on one primitive: park the
//! current thread until someone unparks it. In a green thread that switches
//! to the next runnable green thread; on a plain OS thread (like `main`) it
//! blocks the OS thread. So the same code works on both:
//!
//! ```
//! use spool::thread;
//! use std::time::Duration;
//!
//! let main = thread::current(); // a plain OS thread
//! let child = thread::spawn(move || {
//!     thread::sleep(Duration::from_millis(1));
//!     main.unpark(); // wakes the OS thread from a green thread
//! });
//! thread::park();
//! child.join().unwrap();
//! ```
//!
//! ## Locks: `spool::sync`
//! [`spool::sync`](sync) mirrors `std::sync`'s `Mutex`, `RwLock`,
//! `Condvar`, `Barrier`, `Once`, `OnceLock` and `LazyLock`, but a thread
//! that must wait parks instead of blocking its worker, so a green thread
//! may hold a lock across a blocking call. Port by changing the path:
//!
//! ```
//! use spool::sync::{Arc, Mutex}; // was std::sync
//!
//! let total = Arc::new(Mutex::new(0));
//! let hs: Vec<_> = (0..100)
//!     .map(|i| {
//!         let total = total.clone();
//!         spool::thread::spawn(move || *total.lock().unwrap() += i)
//!     })
//!     .collect();
//! hs.into_iter().for_each(|h| h.join().unwrap());
//! assert_eq!(*total.lock().unwrap(), 4950);
//! ```
//!
//! ## Channels
//! [`spool::sync`](sync) has channels that park green threads rather than
//! their workers: [`sync::mpsc`] mirrors `std::sync::mpsc`, [`sync::mpmc`]
//! mirrors `crossbeam-channel` (with `select!`), and [`sync::oneshot`]
//! carries one value. One channel connects green threads and plain OS
//! threads alike:
//!
//! ```
//! use spool::sync::mpmc::{bounded, select};
//! use std::time::Duration;
//!
//! let (jobs, inbox) = bounded(0);
//! let (done, results) = bounded(16);
//! for _ in 0..4 {
//!     let (inbox, done) = (inbox.clone(), done.clone());
//!     spool::thread::spawn(move || {
//!         for n in inbox.iter() {
//!             done.send(n * n).unwrap();
//!         }
//!     });
//! }
//! drop(done);
//! for n in 1..=3 {
//!     jobs.send(n).unwrap();
//! }
//! drop(jobs);
//! let mut total = 0;
//! loop {
//!     select! {
//!         recv(results) -> r => match r {
//!             Ok(sq) => total += sq,
//!             Err(_) => break, // every worker finished
//!         },
//!         default(Duration::from_secs(10)) => panic!("stuck"),
//!     }
//! }
//! assert_eq!(total, 1 + 4 + 9);
//! ```
//!
//! ## Networking: `spool::net`
//! [`spool::net`](net) mirrors `std::net`: a server written one thread per
//! connection ports by changing the path, and scales to tens of thousands of
//! connections because each connection costs a green thread, not an OS
//! thread. Sockets implement `std::io::Read` and `Write`, so existing
//! parsers, TLS and WebSocket crates work over them.
//!
//! ```
//! use spool::net::{TcpListener, TcpStream};
//! use std::io::{BufRead, BufReader, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! spool::thread::spawn(move || {
//!     for stream in listener.incoming().flatten() {
//!         spool::thread::spawn(move || {
//!             // Echo lines back, upper-cased, until the client hangs up.
//!             for line in BufReader::new(&stream).lines().map_while(Result::ok) {
//!                 let _ = writeln!(&stream, "{}", line.to_uppercase());
//!             }
//!         });
//!     }
//! });
//! let clients: Vec<_> = (0..100)
//!     .map(|i| {
//!         spool::thread::spawn(move || -> std::io::Result<String> {
//!             let mut stream = TcpStream::connect(addr)?;
//!             writeln!(stream, "hello {i}")?;
//!             let mut reply = String::new();
//!             BufReader::new(&stream).read_line(&mut reply)?;
//!             Ok(reply)
//!         })
//!     })
//!     .collect();
//! for (i, c) in clients.into_iter().enumerate() {
//!     assert_eq!(c.join().unwrap()?, format!("HELLO {i}\n"));
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Work with no readiness model — files, a blocking C library, anything
//! that would hold its worker — goes through [`unblock`], which runs it on
//! a pool of OS threads while the green thread parks. It is shielded from
//! cancellation (the closure can still poll for it);
//! [`unblock_abandon`] instead returns at once when the caller is
//! cancelled and lets the closure finish on its own.
//!
//! ## Cancellation and timeouts
//! [`spool::time::timeout`](time::timeout) puts a deadline around a block
//! of code, and [`spool::cancel`](cancel) cancels one from outside: every
//! blocking call of spool is a cancellation point, where a cancelled thread
//! unwinds — running its destructors, printing nothing — back to the scope
//! that was cancelled. The guide is in [`cancel`].
//!
//! ```
//! use std::time::Duration;
//!
//! let (_tx, rx) = spool::sync::mpmc::bounded::<String>(1);
//! // A receive nobody answers, bounded: `Err(Elapsed)` after 10 ms.
//! let reply = spool::time::timeout(Duration::from_millis(10), || rx.recv());
//! assert!(reply.is_err());
//!
//! // A thread cancelled by its handle.
//! let worker = spool::thread::spawn(|| spool::thread::sleep(Duration::from_secs(60)));
//! worker.cancel();
//! assert!(worker.join().is_err());
//! ```
//!
//! ## Task groups
//! [`spool::group`](group()) runs a body that spawns children which
//! borrow from the caller, run in parallel, and are cancelled together
//! when one fails; the group waits for every child and keeps every
//! error. The guide, with `Builder`, `start`, `all` and `race`, is in
//! [`group`](mod@group).
//!
//! ```
//! let pages = ["/a", "/b", "/c"];
//! let mut sizes = [0; 3];
//! spool::group(|g| {
//!     for (page, size) in pages.iter().zip(&mut sizes) {
//!         g.spawn(move || {
//!             *size = page.len(); // a fetch, say
//!             Ok::<_, std::io::Error>(())
//!         });
//!     }
//!     Ok(())
//! })?;
//! assert_eq!(sizes, [2, 2, 2]);
//! # Ok::<(), spool::group::GroupError<std::io::Error>>(())
//! ```
//!
//! ## Per-green-thread values
//! `std::thread_local!` values belong to the worker OS thread and are
//! shared by every green thread on it — and one whose lazy initialiser
//! blocks on spool is unsound (a second green thread runs the initialiser
//! too and std drops the value the first is borrowing; see
//! [Thread-local storage](thread#thread-local-storage) for exactly what
//! is and is not sound). [`spool::thread_local!`](crate::thread_local)
//! takes the same syntax and gives each green thread its own value, so
//! port by swapping the macro name:
//!
//! ```
//! use std::cell::Cell;
//! spool::thread_local! { // was std::thread_local!
//!     static DEPTH: Cell<u32> = const { Cell::new(0) };
//! }
//! DEPTH.set(1);
//! assert_eq!(spool::thread::spawn(|| DEPTH.get()).join().unwrap(), 0);
//! ```
//!
//! Likewise std's `OnceLock`, `LazyLock` and `Once` with an initialiser
//! that blocks on spool can deadlock a worker; use `spool::sync`'s.
//!
//! ## Choosing the runtime
//! The first spawn starts a global runtime with one worker per core
//! (`SPOOL_WORKERS=n` overrides; every variable is listed under
//! [Configuration](#configuration)). [`Runtime::builder`] configures workers
//! and the default stack size, and [`run`] runs a closure as a green thread
//! and returns its result:
//!
//! ```
//! let rt = spool::Runtime::builder().workers(1).stack_size(64 * 1024).build().unwrap();
//! let n = rt.run(|| (0..10).map(|i| spool::thread::spawn(move || i)).map(|h| h.join().unwrap()).sum::<i32>());
//! assert_eq!(n, 45);
//! ```
//!
//! ## Configuration
//! spool needs no configuration; these environment variables change its
//! defaults. A runtime reads them when it starts (the global one on first
//! use), and a [`runtime::Builder`] option replaces its variable. The stack
//! size follows the most specific setting:
//! [`thread::Builder::stack_size`] for one thread, then
//! [`runtime::Builder::stack_size`], then `SPOOL_STACK_SIZE`, then
//! `RUST_MIN_STACK`, then 256 KiB (std's threads default to 2 MiB, so deep
//! recursion that worked on std may need one of these); sizes are rounded
//! up to whole pages and to at least 16 KiB.
//!
//! | Variable | What it sets | Accepted values | When unset |
//! |---|---|---|---|
//! | `SPOOL_WORKERS` | worker OS threads of a runtime whose builder sets none (the global one) | a whole number from 1 to 1024 | one worker per core |
//! | `SPOOL_STACK_SIZE` | default stack size of green threads; wins over `RUST_MIN_STACK` | bytes, or KiB or MiB with a `K` or `M` suffix (`512K`, `8M`); at most 1 GiB | `RUST_MIN_STACK`, else 256 KiB |
//! | `RUST_MIN_STACK` | std's default stack for OS threads; spool's for green threads when `SPOOL_STACK_SIZE` is unset | bytes; at most 1 GiB | 256 KiB |
//! | `SPOOL_BLOCKING_MS` | how long a green thread may hold its worker before the watchdog reports it | whole milliseconds; `0` turns the watchdog off | 100 ms |
//! | `SPOOL_DEADLOCK` | what a global deadlock does | `report`, `fatal` (report, then exit with status 2) or `off` | `report` |
//! | `SPOOL_DUMP_SIGNAL` | a signal that prints a dump of every green thread to stderr | `SIGQUIT`, `SIGUSR1` or `SIGUSR2` (with or without `SIG`, in any case, or the number) | no signal |
//! | `SPOOL_MONITOR` | the monitor console's address | `IP:PORT` or `localhost:PORT`, or a Unix socket path starting with `/` or `./` | no console |
//! | `SPOOL_MONITOR_ALLOW_REMOTE` | whether the console may listen on an address other than loopback | `1`, `true` or `yes` (or `0`, `false`, `no`) | loopback only |
//! | `SPOOL_UNBLOCK_THREADS` | the most OS threads the `unblock` pool runs at once | a whole number from 1 to 65536 | 512 |
//! | `SPOOL_STACK_GUARD` | how the guard pages below stacks are made | `madvise`, `mprotect` or `auto` | `auto`: `MADV_GUARD_INSTALL` on Linux 6.13 and later, else `mprotect` |
//!
//! A bad value — one that does not parse, is out of range, is empty or is
//! not UTF-8 — is an error when the runtime starts, naming the variable,
//! the value and what is accepted:
//!
//! ```text
//! spool: SPOOL_WORKERS="zero" is not valid: expected a whole number from 1 to 1024; unset it for the default, one worker per core
//! ```
//!
//! [`Runtime::new`] and [`runtime::Builder::build`] return it
//! (`InvalidInput`); [`thread::spawn`] and [`run`], which start the global
//! runtime implicitly, panic with it, as `std::thread::spawn` does when it
//! cannot create a thread ([`thread::Builder::spawn`] returns it). An
//! unknown `SPOOL_*` variable that looks like a misspelt one
//! (`SPOOL_WORKER`) is mentioned once on stderr.
//!
//! ```
//! // The builder's options win over SPOOL_WORKERS, SPOOL_STACK_SIZE and RUST_MIN_STACK.
//! let rt = spool::Runtime::builder().workers(2).stack_size(512 * 1024).build()?;
//! assert_eq!((rt.workers(), rt.stack_size()), (2, 512 * 1024));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Failure
//! * A panic in a green thread prints `thread '<name>' (<id>) panicked at …`
//!   like std, is returned by `join` as `Err(payload)`, and never takes down
//!   a worker.
//! * A stack overflow hits the guard page below the green thread's stack
//!   and aborts with `thread '<name>' has overflowed its stack (<size> KiB)`
//!   and a line naming the fix: [`thread::Builder::stack_size`], or a
//!   bigger default (see [Configuration](#configuration)).
//! * Running out of address space, memory maps or file descriptors makes
//!   [`thread::Builder::spawn`] return an `io::Error` naming the limit and
//!   the fix ([`thread::spawn`] panics with it, as std does).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod cancel;
pub mod debug;
pub mod group;
mod loom;
mod monitor;
pub mod net;
pub mod os;
pub mod porting;
pub mod runtime;
pub mod sync;
pub mod thread;
pub mod time;
mod unblock;

pub use group::group;
pub use runtime::{run, Runtime};
pub use unblock::{unblock, unblock_abandon};
