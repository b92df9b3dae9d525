//! Networking primitives for TCP and UDP: [`std::net`] for green threads.
//!
//! A program ports by replacing `std::net` with `spool::net`: the types
//! have std's names, methods and semantics, and implement `std::io::Read`
//! and `Write`, so parsers, TLS and WebSocket crates work over them
//! unchanged. An operation that would block parks the calling green thread
//! until its worker's reactor reports the socket ready, so one green thread
//! per connection scales to tens of thousands of connections. On a plain
//! OS thread the same types block that thread, as std's do.
//!
//! # Cancellation
//! Every call that can wait — `accept`, `connect`, reads, writes, `peek`,
//! sends and receives, host-name lookups — is a *cancellation point* (see
//! [`spool::cancel`](crate::cancel)), in a green thread and on a plain OS
//! thread alike: a [`timeout`](crate::time::timeout) around it, a
//! cancelled [`CancelScope`](crate::cancel::CancelScope) or
//! [`JoinHandle::cancel`](crate::thread::JoinHandle::cancel) ends the wait
//! by unwinding out of it, also when the scope is cancelled from another
//! thread.
//!
//! * **Only the wait is a cancellation point.** A call that need not wait
//!   — data is there, the send buffer has room — completes even in a
//!   cancelled thread, and the cancellation comes at the next call that
//!   waits (rule R2): a read that got data returns it. A cancelled call has
//!   not happened: unread bytes stay in the socket for the next read.
//! * **The socket stays open.** A cancellation never closes or shuts down
//!   a socket; after a timeout the same stream can be read again.
//! * **Timeouts combine.** A socket's own read or write timeout and the
//!   thread's deadline both apply, and the earlier one ends the wait: the
//!   socket timeout with std's `WouldBlock` error, the deadline by
//!   unwinding.
//! * **While unwinding** (rule R1): a thread that is already unwinding and
//!   cancelled — a `BufWriter` flushed by its destructor during a
//!   cancellation, say — does not wait and does not unwind again: a call
//!   that would wait fails at once with an [`io::Error`](std::io::Error) of
//!   kind [`TimedOut`](std::io::ErrorKind::TimedOut) whose message says the
//!   thread is cancelled. So such a `BufWriter` whose peer never reads
//!   neither hangs nor aborts; its unflushed data is dropped.
//! * **Plain OS threads** wait in `poll(2)`, which spool makes
//!   interruptible: a cancellation from another thread, or the deadline,
//!   ends it just the same.
//!
//! ```
//! use spool::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let (mut server, _) = listener.accept()?;
//! let mut buf = [0; 4];
//! // The peer is silent: the deadline ends the read...
//! assert!(spool::time::timeout(Duration::from_millis(10), || client.read(&mut buf)).is_err());
//! // ...and the stream is still open.
//! server.write_all(b"late")?;
//! client.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"late");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Errors
//! Errors are std's, with one addition: when a socket cannot be created or
//! accepted because no descriptor is left (`EMFILE`, `ENFILE`), the message
//! also names the limit that was hit and how to raise it. An
//! [`io::Error`](std::io::Error) cannot carry both a message and an OS
//! error code, so for these errors `raw_os_error()` is `None` where std's
//! is `Some(24)` (or 23). The kind is std's, the text ends with std's, and
//! the OS error is the error's [`source`](std::error::Error::source). Code
//! that matches on the code looks there too:
//!
//! ```
//! use std::io;
//!
//! /// The OS error code of `e`, also when spool added a description.
//! fn os_error_code(e: &io::Error) -> Option<i32> {
//!     e.raw_os_error()
//!         .or_else(|| e.get_ref()?.source()?.downcast_ref::<io::Error>()?.raw_os_error())
//! }
//!
//! // Lower the open-file limit and use up every descriptor below it.
//! let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
//! // SAFETY: getrlimit writes into the rlimit we pass.
//! unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
//! limit.rlim_cur = 64;
//! // SAFETY: setrlimit reads the rlimit we pass.
//! unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
//! let mut held = Vec::new();
//! while let Ok(file) = std::fs::File::open("/dev/null") {
//!     held.push(file);
//! }
//!
//! let e = spool::net::TcpListener::bind("127.0.0.1:0").unwrap_err();
//! assert_eq!(e.raw_os_error(), None);
//! assert_eq!(os_error_code(&e), Some(libc::EMFILE));
//! assert!(e.to_string().contains("ulimit -n"), "{e}");
//! ```
//!
//! [`Runtime::builder`](crate::Runtime::builder)'s `build` describes an
//! exhausted limit the same way.

mod addr;
pub(crate) mod io;
mod tcp;
mod udp;

use std::io as stdio;

pub(crate) use addr::resolve;
pub use addr::{lookup_host, ToSocketAddrs};
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
};
pub(crate) use tcp::listen_backlog;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// Tries `f` on each address `addr` resolves to until one succeeds; else
/// the last error, as std does.
#[track_caller]
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> stdio::Result<T>,
) -> stdio::Result<T> {
    let mut last = None;
    for a in resolve(&addr)? {
        match f(&a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        stdio::Error::new(
            stdio::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// Adds the limit and the fix to a descriptor-exhaustion error (`EMFILE`,
/// `ENFILE`), keeping its kind; the OS error stays reachable as the
/// error's source. Other errors pass through unchanged.
pub(crate) fn describe_exhaustion(e: stdio::Error, what: &str) -> stdio::Error {
    let (limit, fix) = match e.raw_os_error() {
        Some(code) if code == EMFILE => (
            "the process's open-file limit (RLIMIT_NOFILE, `ulimit -n`)",
            "raise it (e.g. `ulimit -n 65536`) or close descriptors",
        ),
        Some(code) if code == ENFILE => (
            "the system-wide open-file limit (/proc/sys/fs/file-max)",
            "raise it with sysctl fs.file-max or close descriptors",
        ),
        _ => return e,
    };
    stdio::Error::new(
        e.kind(),
        Exhausted {
            message: format!("cannot open {what}: {limit} is reached: {fix}"),
            source: e,
        },
    )
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// An OS error with a message naming the limit that was hit.
#[derive(Debug)]
struct Exhausted {
    message: String,
    source: stdio::Error,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.source)
    }
}

impl std::error::Error for Exhausted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
