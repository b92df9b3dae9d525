//! Porting a program from std to spool: what to swap, which std calls
//! stall a worker and what to use instead, and what differs from std.
//!
//! This module holds no items; it is a guide.
//!
//! # What to swap
//! spool's modules mirror std's item for item, with std's names,
//! signatures, error types and semantics, so a threaded program ports by
//! changing `use` lines. Every spool call also works on a plain OS thread
//! (`main`, a `std::thread`), where it blocks that thread as std's does, so
//! a program can be ported one part at a time, and `main` needs no
//! attribute: the first spawn starts the runtime.
//!
//! | std | spool | notes |
//! |---|---|---|
//! | `std::thread::{spawn, Builder, JoinHandle, Thread, ThreadId, current, park, park_timeout, sleep, yield_now, scope, Scope, ScopedJoinHandle, panicking}` | [`spool::thread`](crate::thread)`::…` | same items; `available_parallelism` and `Result` are std's, re-exported |
//! | `std::thread_local!`, `std::thread::LocalKey` | [`spool::thread_local!`](crate::thread_local), [`spool::thread::LocalKey`](crate::thread::LocalKey) | same syntax; one value per *green* thread |
//! | `std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Condvar, WaitTimeoutResult, Barrier, BarrierWaitResult}` | [`spool::sync`](crate::sync)`::…` | waiting parks the green thread |
//! | `std::sync::{Once, OnceState, OnceLock, LazyLock}` | [`spool::sync`](crate::sync)`::…` | an initialiser may block on spool |
//! | `std::sync::mpsc::{channel, sync_channel, Sender, SyncSender, Receiver, …}` | [`spool::sync::mpsc`](crate::sync::mpsc)`::…` | error types are std's |
//! | `std::sync::{Arc, Weak, atomic, PoisonError, LockResult, TryLockError, TryLockResult}` | unchanged (also re-exported by [`spool::sync`](crate::sync)) | they never wait |
//! | `crossbeam_channel::{bounded, unbounded, select!, …}` | [`spool::sync::mpmc`](crate::sync::mpmc)`::…` | |
//! | `std::net::{TcpListener, TcpStream, UdpSocket, Incoming}` | [`spool::net`](crate::net)`::…` | `From` the std socket, `into_std` back |
//! | `std::net::{ToSocketAddrs, SocketAddr, SocketAddrV4, SocketAddrV6, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, AddrParseError}` | unchanged (re-exported by [`spool::net`](crate::net)) | the same trait and types, so generic code compiles unchanged |
//! | `std::os::unix::net::{UnixListener, UnixStream, UnixDatagram}` | [`spool::os::unix::net`](crate::os::unix::net)`::…` | |
//! | `std::thread::sleep` | [`spool::thread::sleep`](crate::thread::sleep) (or [`spool::time::sleep`](crate::time::sleep), [`sleep_until`](crate::time::sleep_until)) | |
//! | `std::time::{Duration, Instant, SystemTime}` | unchanged | [`spool::time::timeout`](crate::time::timeout) bounds a block of code |
//! | `std::io::{Read, Write, BufRead, BufReader, BufWriter, copy, …}` | unchanged | spool's sockets implement `Read` and `Write` (also for `&TcpStream`) |
//! | `std::fs`, `std::io::stdin`, `std::process` waits | no counterpart: wrap the call in [`spool::unblock`](crate::unblock()) | see the next section |
//!
//! ```
//! // Before: use std::net::{TcpListener, TcpStream, ToSocketAddrs};
//! //         use std::sync::{mpsc, Arc, Mutex};
//! //         use std::thread;
//! use spool::net::{TcpListener, TcpStream, ToSocketAddrs};
//! use spool::sync::{mpsc, Arc, Mutex};
//! use spool::thread;
//! use std::io::{Read, Write};
//!
//! // Generic code bounded on std's trait needs no change.
//! fn fetch(addr: impl ToSocketAddrs) -> std::io::Result<String> {
//!     let mut stream = TcpStream::connect(addr)?;
//!     let mut reply = String::new();
//!     stream.read_to_string(&mut reply)?;
//!     Ok(reply)
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let port = listener.local_addr()?.port();
//! let served = Arc::new(Mutex::new(0));
//! let server = {
//!     let served = Arc::clone(&served);
//!     thread::spawn(move || -> std::io::Result<()> {
//!         for stream in listener.incoming().take(3) {
//!             stream?.write_all(b"hello")?;
//!             *served.lock().unwrap() += 1;
//!         }
//!         Ok(())
//!     })
//! };
//! let (tx, rx) = mpsc::channel();
//! for addr in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
//!     let tx = tx.clone();
//!     thread::spawn(move || tx.send(fetch(addr.as_str())).unwrap());
//! }
//! tx.send(fetch(("127.0.0.1", port))).unwrap();
//! drop(tx);
//! for reply in rx {
//!     assert_eq!(reply?, "hello");
//! }
//! server.join().unwrap()?;
//! assert_eq!(*served.lock().unwrap(), 3);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Calls that stall a worker
//! A green thread shares its worker OS thread with many others and gives
//! the worker back only at one of spool's blocking calls. A std call that
//! blocks the *OS thread* therefore stops every green thread of that
//! worker until it returns — and if what it waits for is one of those
//! green threads, it never returns. The blocking watchdog names a green
//! thread that holds its worker past 100 ms (see
//! [The blocking watchdog](crate::Runtime#the-blocking-watchdog)); this
//! table says what to use instead.
//!
//! With **one worker** (`SPOOL_WORKERS=1`, or a runtime built with
//! `workers(1)`) every green thread shares the OS thread, so a call that
//! blocks it cannot be woken by any green thread at all: a dependency that
//! waits with `std::thread::park` or on a `std::sync` lock, condition
//! variable or channel for something a green thread does hangs for good,
//! where with several workers it only stalls the green threads of its own
//! worker (and can still hang if the awakener shares it). A loop that
//! waits politely, with [`yield_now`](crate::thread::yield_now) or
//! [`park_timeout`](crate::thread::park_timeout), works on one worker. For
//! the rest: swap the dependency's std types for spool's (if it takes them
//! as parameters), run the blocking part with
//! [`unblock`](crate::unblock()), or give the runtime more workers — which
//! makes the hang less likely, not impossible. The blocking watchdog
//! reports a worker held this way (naming the thread once it switches
//! out).
//!
//! | std call inside a green thread | what happens | instead |
//! |---|---|---|
//! | `std::thread::sleep` | the worker sleeps | [`spool::thread::sleep`](crate::thread::sleep) |
//! | `std::sync::Mutex`/`RwLock` held across a wait, or long | a green thread of the same worker that locks it blocks the worker, and the holder never runs again: a deadlock | [`spool::sync::Mutex`](crate::sync::Mutex), [`RwLock`](crate::sync::RwLock). A std lock held briefly, never across a blocking call, is fine |
//! | `std::sync::{Condvar, Barrier}` waits, `std::sync::mpsc` `recv`/`send` on a full `sync_channel` | the worker blocks; the notifier may be a green thread of it | [`spool::sync`](crate::sync)'s |
//! | `std::sync::{OnceLock, LazyLock, Once}` whose initialiser blocks on spool | other callers block their worker; on the initialiser's own worker, a deadlock | [`spool::sync::OnceLock`](crate::sync::OnceLock), [`LazyLock`](crate::sync::LazyLock), [`Once`](crate::sync::Once) |
//! | `std::thread::JoinHandle::join`, `std::thread::park` | the worker blocks | [`spool::thread`](crate::thread)'s, or [`unblock`](crate::unblock())`(move \|\| handle.join())` for a std thread |
//! | `std::net` sockets | reads, writes, `accept`, `connect` block the worker | [`spool::net`](crate::net) |
//! | DNS: `to_socket_addrs()` on a host name, a crate's own resolver | `getaddrinfo` blocks the worker, seconds when a name server does not answer | [`spool::net::lookup_host`](crate::net::lookup_host); spool's sockets look host names up off the worker themselves |
//! | `std::fs` (`read`, `write`, `File` reads and writes, `metadata`, `read_dir`, …) | the worker waits for the disk (regular files have no readiness to wait for) | [`spool::unblock`](crate::unblock())`(move \|\| std::fs::read(path))` |
//! | `std::io::stdin()` reads | the worker waits for input | [`unblock`](crate::unblock()) |
//! | `std::process::Command::output`/`status`, `Child::wait`/`wait_with_output` | the worker waits for the child | [`unblock`](crate::unblock()) (`Command::spawn` itself returns at once) |
//! | blocking FFI: a C library, a database driver, `libc::read` on a blocking descriptor | the worker waits in C | [`unblock`](crate::unblock()); [`unblock_abandon`](crate::unblock_abandon) when a cancelled caller should not wait for it |
//! | a long computation | the worker runs nothing else | [`spool::thread::yield_now`](crate::thread::yield_now) now and then, or [`unblock`](crate::unblock()) |
//! | a loop that spins on an atomic, `while !flag.load(..) {}` (with or without `std::hint::spin_loop`) | never gives the worker back: the green thread that would set the flag, if it shares the worker, never runs, and the program hangs where OS threads, which the kernel preempts, carry on. Nothing preempts a green thread: the watchdog reports that the worker is held | [`spool::thread::yield_now`](crate::thread::yield_now) in the loop, or a real wait: [`park`](crate::thread::park) / [`unpark`](crate::thread::Thread::unpark), a channel, a [`Condvar`](crate::sync::Condvar) |
//!
//! ```
//! use std::process::Command;
//!
//! spool::run(|| -> std::io::Result<()> {
//!     let path = std::env::temp_dir().join(format!("spool-porting-{}", std::process::id()));
//!     // Files: on the blocking pool, while this green thread parks.
//!     let written = path.clone();
//!     spool::unblock(move || std::fs::write(written, "42"))?;
//!     let read = path.clone();
//!     let text = spool::unblock(move || std::fs::read_to_string(read))?;
//!     assert_eq!(text, "42");
//!     spool::unblock(move || std::fs::remove_file(path))?;
//!
//!     // Child processes: started and waited for on the pool.
//!     let output = spool::unblock(|| Command::new("sh").args(["-c", "echo hi"]).output())?;
//!     assert_eq!(output.stdout, b"hi\n");
//!     Ok(())
//! })?;
//!
//! // Standard input, the same way.
//! fn read_line() -> std::io::Result<String> {
//!     spool::unblock(|| {
//!         let mut line = String::new();
//!         std::io::stdin().read_line(&mut line)?;
//!         Ok(line)
//!     })
//! }
//! # let _ = read_line;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What differs from std
//! * **Stacks are smaller.** A green thread's stack is fixed at spawn:
//!   256 KiB by default, where a `std::thread` gets 2 MiB. Recursion that
//!   fit on std may overflow, which aborts the process with `thread
//!   '<name>' has overflowed its stack (<size> KiB)`. Give a deep thread
//!   more with [`thread::Builder::stack_size`](crate::thread::Builder::stack_size),
//!   or every thread of a runtime with
//!   [`runtime::Builder::stack_size`](crate::runtime::Builder::stack_size);
//!   untouched stack pages cost no memory.
//! * **std's thread functions see the worker.** Inside a green thread,
//!   `std::thread::current()` is the worker OS thread (named
//!   `spool-worker-N`), the same for every green thread on it, and its
//!   `ThreadId` is the worker's; `std::thread::park` parks the worker. Call
//!   [`spool::thread::current`](crate::thread::current), whose
//!   [`ThreadId`](crate::thread::ThreadId) is spool's own type. Green
//!   threads are unnamed unless named, as std's spawned threads are. A name
//!   is spool's alone: std also names the OS thread (Linux keeps 15 bytes
//!   of it, what `ps` and debuggers show), while a green thread's OS
//!   thread is its worker, named `spool-worker-N` whatever runs on it; a
//!   name with a NUL byte makes the spawn panic, as std's does.
//! * **Thread-locals.** `std::thread_local!` values belong to the worker
//!   and are shared by its green threads, and one whose lazy initialiser
//!   blocks on spool is unsound (see
//!   [Thread-local storage](crate::thread#thread-local-storage));
//!   [`spool::thread_local!`](crate::thread_local) gives each green thread
//!   its own value.
//! * **Scheduling is cooperative.** A green thread runs until it reaches
//!   one of spool's blocking calls or
//!   [`yield_now`](crate::thread::yield_now); nothing preempts it. A
//!   started green thread stays on the worker that first ran it (so
//!   addresses into std's thread-locals stay valid); only threads that
//!   have not run yet move to an idle worker. There is one worker per core
//!   (`SPOOL_WORKERS`, or [`Runtime::builder`](crate::Runtime::builder)),
//!   and the global runtime, started by the first spawn, is never shut
//!   down; as with std, the process exits when `main` returns, without
//!   waiting for other threads.
//! * **Panics** print std's message naming the green thread (`thread
//!   '<name>' (<id>) panicked at …`), come back from `join` as
//!   `Err(payload)`, and never take down a worker; a panic hook installed
//!   before the runtime starts is called for them. spool writes its own
//!   message straight to stderr, past the capture of `cargo test`; a test
//!   binary whose green threads panic on purpose stays quiet by installing
//!   a hook of its own before its first runtime starts, e.g.
//!   `let std_hook = std::panic::take_hook();
//!   std::panic::set_hook(Box::new(move |info| std_hook(info)));` —
//!   std's message then goes to the capture of the test that caused it
//!   (naming the worker OS thread rather than the green thread).
//!   [`spool::thread::panicking`](crate::thread::panicking) answers per
//!   green thread; `std::thread::panicking` (and with it
//!   `std::sync::Mutex` poisoning) answers per worker, which can mislead
//!   while another green thread of the worker is switched out in the
//!   middle of unwinding.
//! * **Blocking calls are cancellation points.** Every wait of spool's can
//!   unwind when the thread is cancelled ([`time::timeout`](crate::time::timeout),
//!   [`JoinHandle::cancel`](crate::thread::JoinHandle::cancel), a runtime's
//!   shutdown), running destructors and printing nothing. Code that calls
//!   `catch_unwind` catches a cancellation like a panic: let it go (see
//!   [`spool::cancel`](crate::cancel#limits)).
//! * **Locks are fair.** spool's `Mutex` and `RwLock` serve waiters first
//!   in, first out (see [Differences from std](crate::sync#differences-from-std)).
//! * **Addresses.** [`spool::net::ToSocketAddrs`](crate::net::ToSocketAddrs)
//!   is std's trait. spool's sockets parse numeric addresses in place and
//!   look host names up off the worker; calling `to_socket_addrs()`
//!   yourself is std's method, which resolves on the calling thread
//!   ([`lookup_host`](crate::net::lookup_host) does not).
//! * **Descriptor exhaustion** (`EMFILE`) errors name the limit and the
//!   fix, so their `raw_os_error()` is `None` (see
//!   [Errors](crate::net#errors)).
//!
//! ```
//! use spool::cancel::Cancelled;
//!
//! let (std_name, spool_name) = spool::run(|| {
//!     let std_name = std::thread::current().name().map(String::from);
//!     (std_name, spool::thread::current().name().map(String::from))
//! });
//! assert!(std_name.unwrap().starts_with("spool-worker"));
//! assert_eq!(spool_name, None);
//!
//! // Deep recursion: ask for the stack std would have given.
//! fn depth(n: u32) -> u32 {
//!     let pad = std::hint::black_box([0u8; 512]);
//!     if n == 0 { u32::from(pad[0]) } else { depth(n - 1) + 1 }
//! }
//! let deep = spool::thread::Builder::new()
//!     .stack_size(2 << 20)
//!     .spawn(|| depth(1_000)) // 512 bytes a level, and more
//!     .unwrap();
//! assert_eq!(deep.join().unwrap(), 1_000);
//!
//! // A catch-all `catch_unwind` lets cancellations go.
//! let worker = spool::thread::spawn(|| loop {
//!     let caught = std::panic::catch_unwind(|| spool::thread::sleep(std::time::Duration::from_secs(60)));
//!     if let Err(payload) = caught {
//!         if Cancelled::from_payload(&payload).is_some() {
//!             std::panic::resume_unwind(payload);
//!         }
//!     }
//! });
//! worker.cancel();
//! assert!(Cancelled::from_payload(&worker.join().unwrap_err()).is_some());
//! ```
