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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    /// use std::io::ErrorKind;
    ///
    /// let name = format!("spool-doc-connect-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let stream = UnixStream::connect(&path)?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// // Nobody listens there any more.
    /// drop((stream, listener));
    /// let err = UnixStream::connect(&path).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    ///
    /// let name = format!("spool-doc-connect-addr-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// // Connect to the address a listener reports.
    /// let stream = UnixStream::connect_addr(&listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, mut b) = UnixStream::pair()?;
    /// a.write_all(b"hello")?;
    /// drop(a);
    /// let mut got = String::new();
    /// b.read_to_string(&mut got)?;
    /// assert_eq!(got, "hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::{Read, Write};
    ///
    /// let (a, mut b) = UnixStream::pair()?;
    /// // Read in one green thread while writing in another.
    /// let mut reader = a.try_clone()?;
    /// let mut writer = a;
    /// let read = spool::thread::spawn(move || -> std::io::Result<[u8; 4]> {
    ///     let mut buf = [0; 4];
    ///     reader.read_exact(&mut buf)?;
    ///     Ok(buf)
    /// });
    /// writer.write_all(b"pong")?;
    /// b.write_all(b"ping")?;
    /// assert_eq!(&read.join().unwrap()?, b"ping");
    /// let mut buf = [0; 4];
    /// b.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"pong");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// The address of this end of the connection.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    ///
    /// let name = format!("spool-doc-stream-local-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let client = UnixStream::connect(&path)?;
    /// let (server, _) = listener.accept()?;
    /// // The server's end has the listener's name; the client's, none.
    /// assert_eq!(server.local_addr()?.as_pathname(), Some(path.as_path()));
    /// assert!(client.local_addr()?.is_unnamed());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The address of the other end of the connection.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// // The ends of a pair have no names.
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::{ErrorKind, Write};
    /// use std::time::Duration;
    ///
    /// let (mut a, _b) = UnixStream::pair()?; // `_b` never reads
    /// a.set_write_timeout(Some(Duration::from_millis(10)))?;
    /// // Fill the socket buffer until a write has to wait too long.
    /// let chunk = vec![0; 64 * 1024];
    /// let err = loop {
    ///     if let Err(e) = a.write(&chunk) {
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
    /// use spool::os::unix::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixStream::pair()?;
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
    /// use spool::os::unix::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert_eq!(a.write_timeout()?, None);
    /// a.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// In non-blocking mode, reads and writes that would wait return
    /// [`io::ErrorKind::WouldBlock`] instead. Applies to every clone.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::{ErrorKind, Read, Write};
    ///
    /// let (mut a, mut b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// // Nothing to read: an error instead of a wait.
    /// let err = a.read(&mut [0; 4]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// // Data that is there is read as usual.
    /// b.write_all(b"data")?;
    /// let mut buf = [0; 4];
    /// assert_eq!(a.read(&mut buf)?, 4);
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
    /// use spool::os::unix::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert!(a.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Shuts down the read half, the write half or both. A green thread
    /// parked reading on a clone wakes and sees end of stream.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::{Read, Write};
    /// use std::net::Shutdown;
    ///
    /// let (mut a, mut b) = UnixStream::pair()?;
    /// // Closing the write half tells the peer the request is complete...
    /// a.write_all(b"request")?;
    /// a.shutdown(Shutdown::Write)?;
    /// let mut request = String::new();
    /// b.read_to_string(&mut request)?;
    /// assert_eq!(request, "request");
    /// // ...while the read half still works.
    /// b.write_all(b"reply")?;
    /// let mut reply = [0; 5];
    /// a.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"reply");
    ///
    /// // Shutting down the read half wakes a reader parked on a clone.
    /// let reader = a.try_clone()?;
    /// let parked = spool::thread::spawn(move || (&reader).read(&mut [0; 8]));
    /// a.shutdown(Shutdown::Read)?;
    /// assert_eq!(parked.join().unwrap()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, b) = UnixStream::pair()?;
    /// a.write_all(b"hello")?;
    /// // Waits for data, then looks at it without taking it...
    /// let mut buf = [0; 5];
    /// assert_eq!(b.peek(&mut buf)?, 5);
    /// // ...so the next read sees the same bytes.
    /// let mut again = [0; 5];
    /// (&b).read_exact(&mut again)?;
    /// assert_eq!(again, buf);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| SockRef::from(s).peek(as_uninit(buf)))
    }

    /// Unwraps into a blocking std stream with the same timeouts.
    ///
    /// While clones of this stream are alive, the std stream stays in
    /// non-blocking mode: clones share the descriptor's file status flags,
    /// and spool's clones need the mode.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// a.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// // A blocking std stream, for code that needs one: the timeout carries over.
    /// let std_stream: std::os::unix::net::UnixStream = a.into_std()?;
    /// assert_eq!(std_stream.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
