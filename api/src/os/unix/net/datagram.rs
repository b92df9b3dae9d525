//! `UnixDatagram`, mirroring `std::os::unix::net`'s.
//!
//! # Receiving after `shutdown(Read)`
//! Once a datagram socket's read side is shut down, Linux ends a
//! *blocking* receive with 0 bytes, but a non-blocking one (which is what
//! spool makes) keeps failing with `EAGAIN`, and no further readiness edge
//! comes: a green thread would park forever where std returns. So when a
//! receive that is allowed to wait finds nothing, spool asks `poll(2)`
//! whether the read side is shut (`POLLRDHUP`) and, if so, returns what
//! std's blocking call returns: 0 bytes (and an unnamed sender). Shutting
//! down wakes the parked receivers, which retry and see it. A socket in
//! non-blocking mode keeps std's non-blocking answer, `WouldBlock`.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net as std_net;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use socket2::SockRef;

use super::{as_uninit, read_side_shut, SocketAddr};
use crate::net::describe_exhaustion;
use crate::net::io::{fd_conversions, Io};

/// A Unix domain datagram socket: [`std::os::unix::net::UnixDatagram`]
/// for green threads.
///
/// Receives park the calling green thread until a datagram arrives (up to
/// the read timeout); sends park while the receiver's queue is full (up to
/// the write timeout). On a plain OS thread they block that thread.
///
/// # Examples
/// ```
/// use spool::os::unix::net::UnixDatagram;
///
/// let dir = std::env::temp_dir().join(format!("spool-doc-dgram-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let server = UnixDatagram::bind(dir.join("server.sock"))?;
/// let client = UnixDatagram::bind(dir.join("client.sock"))?;
/// let echo = spool::thread::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 16];
///     let (n, from) = server.recv_from(&mut buf)?;
///     server.send_to_addr(&buf[..n], &from)?;
///     Ok(())
/// });
/// client.send_to(b"ping", dir.join("server.sock"))?;
/// let mut buf = [0; 16];
/// let (n, from) = client.recv_from(&mut buf)?;
/// assert_eq!(&buf[..n], b"ping");
/// assert_eq!(from.as_pathname(), Some(dir.join("server.sock").as_path()));
/// echo.join().unwrap()?;
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    io: Io<std_net::UnixDatagram>,
}

impl UnixDatagram {
    /// Creates a socket bound to the socket file `path`, which must not
    /// exist yet.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap_new(std_net::UnixDatagram::bind(path))
    }

    /// Creates a socket bound to `addr` (a path name, or on Linux an
    /// abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap_new(std_net::UnixDatagram::bind_addr(addr))
    }

    /// Creates a socket bound to no address: it can send, and receive
    /// replies only once connected (an unbound sender cannot be answered
    /// with `send_to`).
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap_new(std_net::UnixDatagram::unbound())
    }

    /// An unnamed pair of connected sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std_net::UnixDatagram::pair()
            .map_err(|e| describe_exhaustion(e, "a Unix datagram socket pair"))?;
        Ok((
            UnixDatagram::wrap_new(Ok(a))?,
            UnixDatagram::wrap_new(Ok(b))?,
        ))
    }

    fn wrap_new(socket: io::Result<std_net::UnixDatagram>) -> io::Result<UnixDatagram> {
        let socket = socket.map_err(|e| describe_exhaustion(e, "a Unix datagram socket"))?;
        socket.set_nonblocking(true)?;
        Ok(UnixDatagram {
            io: Io::new(socket),
        })
    }

    /// Connects the socket to the socket named by `path`: `send` and
    /// `recv` then talk to it only. Never waits.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get().connect(path)
    }

    /// Connects the socket to `addr`; see [`connect`](Self::connect).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.io.get().connect_addr(addr)
    }

    /// A new handle (a duplicated descriptor) to the same socket; timeouts
    /// and the non-blocking mode are shared by all clones.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The address of the peer this socket is connected to.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// Receives one datagram, waiting for it; returns its length and
    /// sender. A datagram longer than `buf` is truncated.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self.receive(
            |s| s.recv_from(buf).map(|(n, from)| (n, Some(from))),
            (0, None),
        )?;
        match from {
            Some(from) => Ok((n, from)),
            None => Ok((n, unnamed()?)),
        }
    }

    /// Receives one datagram (from the connected peer, if connected),
    /// waiting for it; returns its length.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(|s| s.recv(buf), 0)
    }

    /// As [`recv`](Self::recv), leaving the datagram queued. (std has this
    /// method only on nightly.)
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(|s| SockRef::from(s).peek(as_uninit(buf)), 0)
    }

    /// Runs the receive `op` as std's blocking call would; `shut` is what
    /// it returns once the read side is shut down (see "Receiving after
    /// `shutdown(Read)`" at the top of this file).
    #[track_caller]
    fn receive<R>(
        &self,
        mut op: impl FnMut(&std_net::UnixDatagram) -> io::Result<R>,
        shut: R,
    ) -> io::Result<R> {
        if self.io.is_nonblocking() {
            return self.io.read(op);
        }
        let mut shut = Some(shut);
        self.io.read(|s| match op(s) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && read_side_shut(s.as_fd()) => {
                shut.take().ok_or(e)
            }
            result => result,
        })
    }

    /// Sends `buf` to the socket named by `path`, waiting while its queue
    /// is full; returns the number of bytes sent.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.write(|s| s.send_to(buf, path))
    }

    /// Sends `buf` to `addr`; see [`send_to`](Self::send_to).
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.io.write(|s| s.send_to_addr(buf, addr))
    }

    /// Sends `buf` to the connected peer, waiting while its queue is full.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(|s| s.send(buf))
    }

    /// Sets the read timeout: a receive that waits longer fails with
    /// [`io::ErrorKind::WouldBlock`]. `None` waits forever; a zero duration
    /// is an error, as in std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(timeout)
    }

    /// Sets the write timeout; as [`set_read_timeout`](Self::set_read_timeout).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.read_timeout())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// In non-blocking mode, sends and receives that would wait return
    /// [`io::ErrorKind::WouldBlock`] instead. Applies to every clone.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Shuts down the read half, the write half or both. A green thread
    /// parked receiving on a clone wakes and receives 0 bytes, as with
    /// std's.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Unwraps into a blocking std socket with the same timeouts
    /// (non-blocking while clones are alive; see
    /// [`UnixStream::into_std`](super::UnixStream::into_std)).
    pub fn into_std(self) -> io::Result<std_net::UnixDatagram> {
        let has_clones = self.io.has_clones();
        let (read, write) = (self.io.read_timeout(), self.io.write_timeout());
        let socket = self.io.into_inner();
        if !has_clones {
            socket.set_nonblocking(false)?;
        }
        socket.set_read_timeout(read)?;
        socket.set_write_timeout(write)?;
        Ok(socket)
    }
}

/// An unnamed address: what std reports as the sender of the 0-byte
/// "datagram" a shut-down socket receives. std has no constructor for
/// one, so it is taken, once, from a fresh unbound socket.
fn unnamed() -> io::Result<SocketAddr> {
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(addr) = UNNAMED.get() {
        return Ok(addr.clone());
    }
    let addr = std_net::UnixDatagram::unbound()
        .and_then(|s| s.local_addr())
        .map_err(|e| describe_exhaustion(e, "a Unix datagram socket"))?;
    Ok(UNNAMED.get_or_init(|| addr).clone())
}

fd_conversions!(UnixDatagram, std_net::UnixDatagram, datagram_from_std);

fn datagram_from_std(socket: std_net::UnixDatagram) -> UnixDatagram {
    let (read, write) = (
        socket.read_timeout().ok().flatten(),
        socket.write_timeout().ok().flatten(),
    );
    // Only an invalid descriptor can fail here; its first operation will
    // report that.
    let _ = socket.set_nonblocking(true);
    let io = Io::new(socket);
    let _ = io.set_read_timeout(read);
    let _ = io.set_write_timeout(write);
    UnixDatagram { io }
}
