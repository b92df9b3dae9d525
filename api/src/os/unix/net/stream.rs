//! `UnixStream`, mirroring `std::os::unix::net`'s.
//!
//! # Connecting without blocking the worker
//! std's `connect` is a blocking `connect(2)`, which on a full accept queue
//! sleeps in the kernel until the server accepts: that would stall a whole
//! worker. spool connects a non-blocking socket instead. On Linux a full
//! queue then fails with `EAGAIN` and leaves the socket unconnected, and
//! nothing signals when the queue has room (the kernel's blocking connect
//! waits on the *listener*, which the client cannot register), so spool
//! retries after a short sleep that doubles up to
//! `CONNECT_RETRY_MAX` — parking only the calling green thread. Systems
//! whose non-blocking Unix connect reports `EINPROGRESS` get the TCP
//! treatment: wait for write readiness, then read `SO_ERROR`.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::panic::Location;
use std::path::Path;
use std::time::Duration;

use socket2::{SockAddr, SockRef, Type};
use spool_runtime::cancel::Check;
use spool_runtime::{Direction, IoSource};

use super::{as_uninit, new_socket, to_sock_addr, SocketAddr};
use crate::net::io::{fd_conversions, Io};

/// The first pause before retrying a connect refused for a full queue.
const CONNECT_RETRY_MIN: Duration = Duration::from_micros(100);
/// The longest pause between connect attempts.
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(10);

/// A Unix domain stream socket: [`std::os::unix::net::UnixStream`] for
/// green threads.
///
/// Reads, writes and connects park the calling green thread until the
/// socket is ready; on a plain OS thread they block that thread. A reader
/// and a writer may use clones of one stream ([`try_clone`], or
/// `&UnixStream`, which implements `Read` and `Write` too) at the same
/// time. Read and write timeouts are honoured as std honours them: a
/// timed-out call fails with [`io::ErrorKind::WouldBlock`].
///
/// [`try_clone`]: UnixStream::try_clone
///
/// # Examples
/// ```
/// use spool::os::unix::net::UnixStream;
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = UnixStream::pair()?;
/// let echo = spool::thread::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 5];
///     b.read_exact(&mut buf)?;
///     b.write_all(&buf)
/// });
/// a.write_all(b"hello")?;
/// let mut buf = [0; 5];
/// a.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hello");
/// echo.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    io: Io<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket named by `path`, parking the calling green
    /// thread while the server's accept queue is full.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_sock_addr(&SockAddr::unix(path)?)
    }

    /// Connects to the socket at `addr` (a path name, or on Linux an
    /// abstract name); see [`connect`](Self::connect).
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_sock_addr(&to_sock_addr(addr)?)
    }

    /// See "Connecting without blocking the worker" at the top of this
    /// file.
    #[track_caller]
    fn connect_sock_addr(addr: &SockAddr) -> io::Result<UnixStream> {
        let socket = new_socket(Type::STREAM, "a Unix socket")?;
        let io = Io::new(std::os::unix::net::UnixStream::from(socket));
        let mut pause = CONNECT_RETRY_MIN;
        loop {
            match SockRef::from(io.get()).connect(addr) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The pause is a cancellation point; while the thread
                    // unwinds cancelled it would return at once, so fail
                    // rather than spin (rule R1).
                    if let Check::Unwinding = spool_runtime::cancel::check() {
                        return Err(IoSource::cancelled_error());
                    }
                    crate::thread::sleep(pause);
                    pause = (pause * 2).min(CONNECT_RETRY_MAX);
                }
                Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {
                    let site = Location::caller();
                    io.run_until(site, Direction::Write, None, |s| match s.take_error()? {
                        Some(e) => Err(e),
                        None => match s.peer_addr() {
                            Ok(_) => Ok(()),
                            // Still connecting.
                            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                                Err(io::ErrorKind::WouldBlock.into())
                            }
                            Err(e) => Err(e),
                        },
                    })?;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream { io })
    }

    /// An unnamed pair of connected sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| crate::net::describe_exhaustion(e, "a Unix socket pair"))?;
        Ok((UnixStream::from_accepted(a)?, UnixStream::from_accepted(b)?))
    }

    /// Wraps a fresh blocking std stream with default settings.
    pub(super) fn from_accepted(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            io: Io::new(stream),
        })
    }

    /// A new handle (a duplicated descriptor) to the same connection, for
    /// example to read in one green thread while writing in another.
    /// Timeouts and the non-blocking mode are shared by all clones, as with
    /// std's.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// The address of this end of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The address of the other end of the connection.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// Sets the read timeout: a read that waits longer fails with
    /// [`io::ErrorKind::WouldBlock`]. `None` waits forever; a zero duration
    /// is an error, as in std.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// let (mut a, _b) = UnixStream::pair()?;
    /// a.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = a.read(&mut [0; 4]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
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

    /// In non-blocking mode, reads and writes that would wait return
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
    /// parked reading on a clone wakes and sees end of stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Reads without removing the data from the queue, waiting as `read`
    /// does. (std has this method only on nightly.)
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| SockRef::from(s).peek(as_uninit(buf)))
    }

    /// Unwraps into a blocking std stream with the same timeouts.
    ///
    /// While clones of this stream are alive, the std stream stays in
    /// non-blocking mode: clones share the descriptor's file status flags,
    /// and spool's clones need the mode.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let has_clones = self.io.has_clones();
        let (read, write) = (self.io.read_timeout(), self.io.write_timeout());
        let stream = self.io.into_inner();
        if !has_clones {
            stream.set_nonblocking(false)?;
        }
        stream.set_read_timeout(read)?;
        stream.set_write_timeout(write)?;
        Ok(stream)
    }
}

/// `EINPROGRESS`: a non-blocking connect has started. Part of each
/// system's ABI: 115 on Linux, 36 on the BSDs and macOS.
const EINPROGRESS: i32 = if cfg!(any(target_os = "linux", target_os = "android")) {
    115
} else {
    36
};

/// Reads are cancellation points (see
/// [Cancellation](crate::net#cancellation)): a cancelled thread unwinds
/// from the wait (a read that got data returns it first), and one already
/// unwinding from a cancellation gets an error of kind `TimedOut` instead
/// of waiting.
impl Read for UnixStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &UnixStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|mut s| s.read(buf))
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io.read(|mut s| s.read_vectored(bufs))
    }
}

/// Writes are cancellation points (see
/// [Cancellation](crate::net#cancellation)): a cancelled thread unwinds
/// from a wait for room in the send buffer, and one already unwinding from
/// a cancellation gets an error of kind `TimedOut` instead of waiting (so
/// a `BufWriter` dropped during a cancellation does not hang).
impl Write for UnixStream {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &UnixStream {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(|mut s| s.write(buf))
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io.write(|mut s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fd_conversions!(UnixStream, std::os::unix::net::UnixStream, stream_from_std);

fn stream_from_std(stream: std::os::unix::net::UnixStream) -> UnixStream {
    let (read, write) = (
        stream.read_timeout().ok().flatten(),
        stream.write_timeout().ok().flatten(),
    );
    // Only an invalid descriptor can fail here; its first operation will
    // report that.
    let _ = stream.set_nonblocking(true);
    let io = Io::new(stream);
    let _ = io.set_read_timeout(read);
    let _ = io.set_write_timeout(write);
    UnixStream { io }
}
