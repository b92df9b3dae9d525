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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("spool-doc-dgram-bind-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let socket = UnixDatagram::bind(&path)?;
    /// UnixDatagram::unbound()?.send_to(b"hello", &path)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.recv(&mut buf)?, 5);
    /// // The socket file stays until removed.
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap_new(std_net::UnixDatagram::bind(path))
    }

    /// Creates a socket bound to `addr` (a path name, or on Linux an
    /// abstract name).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use spool::os::unix::net::{SocketAddr, UnixDatagram};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// // An abstract name: no socket file to clean up.
    /// let name = format!("spool-doc-dgram-bind-addr-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let socket = UnixDatagram::bind_addr(&addr)?;
    /// UnixDatagram::unbound()?.send_to_addr(b"hello", &addr)?;
    /// assert_eq!(socket.recv(&mut [0; 8])?, 5);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap_new(std_net::UnixDatagram::bind_addr(addr))
    }

    /// Creates a socket bound to no address: it can send, and receive
    /// replies only once connected (an unbound sender cannot be answered
    /// with `send_to`).
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("spool-doc-dgram-unbound-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.send_to(b"hello", &path)?;
    /// let (n, from) = server.recv_from(&mut [0; 8])?;
    /// assert_eq!(n, 5);
    /// // The sender has no name to reply to.
    /// assert!(from.is_unnamed());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap_new(std_net::UnixDatagram::unbound())
    }

    /// An unnamed pair of connected sockets.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"hello")?;
    /// let mut buf = [0; 8];
    /// let n = b.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("spool-doc-dgram-connect-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect(&path)?;
    /// // `send` needs no address now.
    /// client.send(b"hello")?;
    /// assert_eq!(server.recv(&mut [0; 8])?, 5);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get().connect(path)
    }

    /// Connects the socket to `addr`; see [`connect`](Self::connect).
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("spool-doc-dgram-connect-addr-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect_addr(&server.local_addr()?)?;
    /// client.send(b"hello")?;
    /// assert_eq!(server.recv(&mut [0; 8])?, 5);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.io.get().connect_addr(addr)
    }

    /// A new handle (a duplicated descriptor) to the same socket; timeouts
    /// and the non-blocking mode are shared by all clones.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// // Receive in one green thread while sending from another.
    /// let receiver = a.try_clone()?;
    /// let received = spool::thread::spawn(move || receiver.recv(&mut [0; 8]));
    /// b.send(b"ping")?;
    /// a.send(b"pong")?;
    /// assert_eq!(received.join().unwrap()?, 4);
    /// assert_eq!(b.recv(&mut [0; 8])?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// The address this socket is bound to.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("spool-doc-dgram-local-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let socket = UnixDatagram::bind(&path)?;
    /// assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    /// assert!(UnixDatagram::unbound()?.local_addr()?.is_unnamed());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The address of the peer this socket is connected to.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::io::ErrorKind;
    ///
    /// let name = format!("spool-doc-dgram-peer-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let _server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// assert_eq!(client.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    /// client.connect(&path)?;
    /// assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (dir, pid) = (std::env::temp_dir(), std::process::id());
    /// let a_path = dir.join(format!("spool-doc-rf-a-{pid}.sock"));
    /// let b_path = dir.join(format!("spool-doc-rf-b-{pid}.sock"));
    /// # let _ = (std::fs::remove_file(&a_path), std::fs::remove_file(&b_path));
    /// let a = UnixDatagram::bind(&a_path)?;
    /// let b = UnixDatagram::bind(&b_path)?;
    /// let mut buf = [0; 4];
    /// // Nothing sent yet: a deadline ends the wait.
    /// assert!(spool::time::timeout(Duration::from_millis(10), || a.recv_from(&mut buf)).is_err());
    /// b.send_to(b"too long", &a_path)?;
    /// let (n, from) = a.recv_from(&mut buf)?;
    /// // The rest of a datagram longer than the buffer is lost.
    /// assert_eq!(&buf[..n], b"too ");
    /// assert_eq!(from.as_pathname(), Some(b_path.as_path()));
    /// std::fs::remove_file(&a_path)?;
    /// std::fs::remove_file(&b_path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// let mut buf = [0; 8];
    /// // Nothing sent yet: a deadline ends the wait.
    /// assert!(spool::time::timeout(Duration::from_millis(10), || a.recv(&mut buf)).is_err());
    /// b.send(b"one")?;
    /// b.send(b"two")?;
    /// // One datagram per call.
    /// assert_eq!(a.recv(&mut buf)?, 3);
    /// assert_eq!(a.recv(&mut buf)?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// b.send(b"hello")?;
    /// let mut buf = [0; 8];
    /// assert_eq!(a.peek(&mut buf)?, 5);
    /// // The datagram is still queued.
    /// assert_eq!(a.recv(&mut buf)?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("spool-doc-dgram-send-to-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let socket = UnixDatagram::unbound()?;
    /// // No socket there yet.
    /// assert!(socket.send_to(b"hello", &path).is_err());
    /// let server = UnixDatagram::bind(&path)?;
    /// assert_eq!(socket.send_to(b"hello", &path)?, 5);
    /// assert_eq!(server.recv(&mut [0; 8])?, 5);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let (dir, pid) = (std::env::temp_dir(), std::process::id());
    /// let a_path = dir.join(format!("spool-doc-sta-a-{pid}.sock"));
    /// let b_path = dir.join(format!("spool-doc-sta-b-{pid}.sock"));
    /// # let _ = (std::fs::remove_file(&a_path), std::fs::remove_file(&b_path));
    /// let server = UnixDatagram::bind(&a_path)?;
    /// let client = UnixDatagram::bind(&b_path)?;
    /// client.send_to(b"ping", &a_path)?;
    /// let mut buf = [0; 8];
    /// let (n, from) = server.recv_from(&mut buf)?;
    /// // Reply to the address the datagram came from.
    /// server.send_to_addr(&buf[..n], &from)?;
    /// assert_eq!(client.recv(&mut buf)?, 4);
    /// std::fs::remove_file(&a_path)?;
    /// std::fs::remove_file(&b_path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// // Not connected: no peer to send to.
    /// assert!(UnixDatagram::unbound()?.send(b"lost").is_err());
    /// let (a, b) = UnixDatagram::pair()?;
    /// assert_eq!(a.send(b"hello")?, 5);
    /// assert_eq!(b.recv(&mut [0; 8])?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(|s| s.send(buf))
    }

    /// Sets the read timeout: a receive that waits longer fails with
    /// [`io::ErrorKind::WouldBlock`]. `None` waits forever; a zero duration
    /// is an error, as in std.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// // Nothing arrives: std's error for a timed-out receive.
    /// assert_eq!(a.recv(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// // A zero timeout is refused, as by std.
    /// let err = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(timeout)
    }

    /// Sets the write timeout; as [`set_read_timeout`](Self::set_read_timeout).
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?; // `_b` never receives
    /// a.set_write_timeout(Some(Duration::from_millis(10)))?;
    /// // Fill the receiver's queue until a send has to wait too long.
    /// let err = loop {
    ///     if let Err(e) = a.send(&[0; 1024]) {
    ///         break e;
    ///     }
    /// };
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(timeout)
    }

    /// The read timeout.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.read_timeout()?, None);
    /// let clone = a.try_clone()?;
    /// a.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// // Clones share their timeouts, as std's do.
    /// assert_eq!(clone.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.read_timeout())
    }

    /// The write timeout.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.write_timeout()?, None);
    /// a.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// In non-blocking mode, sends and receives that would wait return
    /// [`io::ErrorKind::WouldBlock`] instead. Applies to every clone.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::io::ErrorKind;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.set_nonblocking(true)?;
    /// // Nothing to receive: an error instead of a wait.
    /// assert_eq!(a.recv(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// b.send(b"hello")?;
    /// assert_eq!(a.recv(&mut [0; 8])?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert!(a.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Shuts down the read half, the write half or both. A green thread
    /// parked receiving on a clone wakes and receives 0 bytes, as with
    /// std's.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::net::Shutdown;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// // A receiver parked on a clone...
    /// let receiver = a.try_clone()?;
    /// let parked = spool::thread::spawn(move || receiver.recv(&mut [0; 8]));
    /// // ...wakes when the read side is shut down, and receives 0 bytes.
    /// a.shutdown(Shutdown::Read)?;
    /// assert_eq!(parked.join().unwrap()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Unwraps into a blocking std socket with the same timeouts
    /// (non-blocking while clones are alive; see
    /// [`UnixStream::into_std`](super::UnixStream::into_std)).
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// // A blocking std socket, for code that needs one: the timeout carries over.
    /// let std_socket: std::os::unix::net::UnixDatagram = a.into_std()?;
    /// assert_eq!(std_socket.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
