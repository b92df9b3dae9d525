//! Unix domain sockets: [`std::os::unix::net`] for green threads.
//!
//! [`UnixListener`], [`UnixStream`] and [`UnixDatagram`] have std's names,
//! methods and semantics, and the streams implement `std::io::Read` and
//! `Write`. An operation that would block (accept, connect, read, write,
//! send, receive) parks the calling green thread until the socket is
//! ready, so one green thread per connection scales to thousands of
//! connections; on a plain OS thread the same types block that thread, as
//! std's do. Addresses are std's [`SocketAddr`].
//!
//! Every call that can wait is a cancellation point, with the rules of
//! [`spool::net`'s](crate::net#cancellation): a cancelled thread unwinds
//! from the wait (a call that need not wait completes), the socket stays
//! open, and a thread already unwinding from a cancellation gets an error
//! of kind `TimedOut` instead of waiting.
//!
//! ```
//! use spool::os::unix::net::UnixStream;
//! use std::io::Read;
//! use std::time::Duration;
//!
//! let (mut a, _b) = UnixStream::pair()?;
//! let read = spool::time::timeout(Duration::from_millis(10), || a.read(&mut [0; 4]));
//! assert!(read.is_err()); // Elapsed: nothing was written
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Examples
//! An echo server on a socket file, with one green thread per client:
//! ```
//! use spool::os::unix::net::{UnixListener, UnixStream};
//! use std::io::{Read, Write};
//!
//! let dir = std::env::temp_dir().join(format!("spool-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("echo.sock");
//! # let _ = std::fs::remove_file(&path);
//! let listener = UnixListener::bind(&path)?;
//! let server = spool::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf)
//! });
//! let mut client = UnixStream::connect(&path)?;
//! client.write_all(b"hello")?;
//! let mut echo = [0; 5];
//! client.read_exact(&mut echo)?;
//! assert_eq!(&echo, b"hello");
//! server.join().unwrap()?;
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod datagram;
mod listener;
mod stream;

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::net::describe_exhaustion;

pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use std::os::unix::net::SocketAddr;
pub use stream::UnixStream;

/// A new non-blocking, close-on-exec Unix socket of type `ty`.
fn new_socket(ty: Type, what: &str) -> io::Result<Socket> {
    Socket::new(Domain::UNIX, ty.nonblocking().cloexec(), None)
        .map_err(|e| describe_exhaustion(e, what))
}

/// std's Unix socket address as socket2's, for binding and connecting
/// sockets std did not create. An unnamed address names no socket.
fn to_sock_addr(addr: &SocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        if let Some(name) = addr.as_abstract_name() {
            // socket2 reads a leading NUL as the abstract namespace.
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0);
            bytes.extend_from_slice(name);
            return SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "an unnamed Unix socket address names no socket to bind or connect to",
    ))
}

/// `buf` as the possibly-uninitialised buffer socket2's `peek` takes.
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the callee
    // (a `recv` with `MSG_PEEK`) only writes initialised bytes into it, so
    // `buf` holds valid `u8`s whatever it does.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// Whether the read side of the socket `fd` is shut down, by whichever
/// descriptor (Linux reports it as `POLLRDHUP`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_side_shut(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll_fd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one initialised `pollfd` naming a descriptor that `fd`
    // keeps open for the call; a zero timeout never blocks.
    let ready = unsafe { libc::poll(&mut poll_fd, 1, 0) };
    ready == 1 && poll_fd.revents & libc::POLLRDHUP != 0
}

/// Elsewhere `shutdown(Read)` is not known to leave a non-blocking
/// receive failing with `EAGAIN`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_side_shut(_fd: BorrowedFd<'_>) -> bool {
    false
}
