//! `UnixListener`, mirroring `std::os::unix::net`'s.

use std::io;
use std::path::Path;

use socket2::{SockAddr, Type};

use super::{new_socket, to_sock_addr, SocketAddr, UnixStream};
use crate::net::io::{fd_conversions, Io};
use crate::net::{describe_exhaustion, listen_backlog};

/// A Unix domain socket server, listening for connections:
/// [`std::os::unix::net::UnixListener`] for green threads.
///
/// [`accept`](UnixListener::accept) parks the calling green thread (not its
/// worker) until a connection arrives; on a plain OS thread it blocks that
/// thread, as std's does.
///
/// # Examples
/// ```no_run
/// use spool::os::unix::net::{UnixListener, UnixStream};
/// use std::io::{Read, Write};
///
/// fn handle_client(mut stream: UnixStream) -> std::io::Result<()> {
///     let mut buf = [0; 1024];
///     loop {
///         let n = stream.read(&mut buf)?;
///         if n == 0 {
///             return Ok(());
///         }
///         stream.write_all(&buf[..n])?;
///     }
/// }
///
/// fn main() -> std::io::Result<()> {
///     let listener = UnixListener::bind("/path/to/the/socket")?;
///     for stream in listener.incoming() {
///         let stream = stream?;
///         spool::thread::spawn(move || handle_client(stream));
///     }
///     Ok(())
/// }
/// ```
pub struct UnixListener {
    io: Io<std::os::unix::net::UnixListener>,
}

/// An iterator over the connections of a [`UnixListener`]: each item is
/// what [`UnixListener::accept`] returns, without the address. Never ends.
///
/// # Examples
/// ```
/// use spool::os::unix::net::{UnixListener, UnixStream};
///
/// let name = format!("spool-doc-incoming-{}.sock", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// # let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let _clients = [UnixStream::connect(&path)?, UnixStream::connect(&path)?];
/// // `Incoming` never ends by itself: take as many connections as wanted.
/// for stream in listener.incoming().take(2) {
///     assert_eq!(stream?.local_addr()?.as_pathname(), Some(path.as_path()));
/// }
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl UnixListener {
    /// Creates a listener bound to the socket file `path`, which must not
    /// exist yet (remove a stale one first).
    ///
    /// The accept queue is as long as the system allows
    /// (`net.core.somaxconn`), as for spool's TCP listeners, so thousands
    /// of clients may connect at once.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixListener;
    /// use std::io::ErrorKind;
    ///
    /// let name = format!("spool-doc-bind-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// drop(listener);
    /// // The socket file outlives the listener: binding again needs it removed.
    /// assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), ErrorKind::AddrInUse);
    /// std::fs::remove_file(&path)?;
    /// let _listener = UnixListener::bind(&path)?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::bind_sock_addr(&SockAddr::unix(path)?)
    }

    /// Creates a listener bound to `addr` (a path name, or on Linux an
    /// abstract name).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use spool::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("spool-doc-bind-addr-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let listener = UnixListener::bind_addr(&addr)?;
    /// let _client = UnixStream::connect_addr(&addr)?;
    /// listener.accept()?;
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::bind_sock_addr(&to_sock_addr(addr)?)
    }

    fn bind_sock_addr(addr: &SockAddr) -> io::Result<UnixListener> {
        let socket = new_socket(Type::STREAM, "a Unix listener")?;
        socket.bind(addr)?;
        socket.listen(listen_backlog())?;
        Ok(UnixListener {
            io: Io::new(std::os::unix::net::UnixListener::from(socket)),
        })
    }

    /// Waits for a connection and returns it with the peer's address
    /// (usually unnamed: clients seldom bind).
    ///
    /// When the process is out of file descriptors, returns the error
    /// (whose message names the limit and the fix) and leaves the pending
    /// connection queued, so a server loop that reports the error and
    /// calls `accept` again serves it once descriptors are freed.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    /// use std::time::Duration;
    ///
    /// let name = format!("spool-doc-accept-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// // No client yet: a deadline ends the wait.
    /// let waited = spool::time::timeout(Duration::from_millis(10), || listener.accept());
    /// assert!(waited.is_err());
    /// // The listener still works.
    /// let _client = UnixStream::connect(&path)?;
    /// let (_server, peer) = listener.accept()?;
    /// assert!(peer.is_unnamed()); // the client did not bind
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self
            .io
            .accept(|l| l.accept())
            .map_err(|e| describe_exhaustion(e, "an accepted Unix connection"))?;
        Ok((UnixStream::from_accepted(stream)?, addr))
    }

    /// A new handle (a duplicated descriptor) to the same listener;
    /// accepting through either takes connections from the same queue.
    /// The non-blocking mode is shared by all clones.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    ///
    /// let name = format!("spool-doc-listener-clone-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let clone = listener.try_clone()?;
    /// // Both handles accept from the same queue: a second acceptor thread.
    /// let acceptor = spool::thread::spawn(move || clone.accept().map(|_| ()));
    /// let _client = UnixStream::connect(&path)?;
    /// acceptor.join().unwrap()?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: self.io.try_clone(|l| l.try_clone())?,
        })
    }

    /// The local address this listener is bound to.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::UnixListener;
    ///
    /// let name = format!("spool-doc-listener-addr-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// In non-blocking mode, `accept` returns
    /// [`io::ErrorKind::WouldBlock`] instead of waiting. Applies to every
    /// clone of this listener.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    /// use std::io::ErrorKind;
    ///
    /// let name = format!("spool-doc-listener-nb-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// listener.set_nonblocking(true)?;
    /// // Nothing to accept: an error instead of a wait.
    /// assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    /// let _client = UnixStream::connect(&path)?;
    /// listener.accept()?; // the connection is queued
    /// std::fs::remove_file(&path)?;
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
    /// use spool::os::unix::net::UnixListener;
    ///
    /// let name = format!("spool-doc-listener-err-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// assert!(listener.take_error()?.is_none());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// An iterator that accepts connections forever.
    ///
    /// Each `next` is an [`accept`](Self::accept), and so a cancellation
    /// point.
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    /// use std::io::{Read, Write};
    ///
    /// let name = format!("spool-doc-listener-inc-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let server = spool::thread::spawn(move || -> std::io::Result<()> {
    ///     // One green thread per connection.
    ///     for stream in listener.incoming().take(2) {
    ///         let mut stream = stream?;
    ///         spool::thread::spawn(move || stream.write_all(b"welcome"));
    ///     }
    ///     Ok(())
    /// });
    /// for _ in 0..2 {
    ///     let mut greeting = String::new();
    ///     UnixStream::connect(&path)?.read_to_string(&mut greeting)?;
    ///     assert_eq!(greeting, "welcome");
    /// }
    /// server.join().unwrap()?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Unwraps into a blocking std listener (non-blocking while clones of
    /// this listener are alive, which share the descriptor's file status
    /// flags and need the mode).
    ///
    /// # Examples
    /// ```
    /// use spool::os::unix::net::{UnixListener, UnixStream};
    ///
    /// let name = format!("spool-doc-listener-std-{}.sock", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let std_listener: std::os::unix::net::UnixListener = listener.into_std()?;
    /// // A blocking std listener: its `accept` waits for the connection.
    /// let _client = UnixStream::connect(&path)?;
    /// std_listener.accept()?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let has_clones = self.io.has_clones();
        let listener = self.io.into_inner();
        if !has_clones {
            listener.set_nonblocking(false)?;
        }
        Ok(listener)
    }
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = Incoming<'a>;

    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    #[track_caller]
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}

fd_conversions!(
    UnixListener,
    std::os::unix::net::UnixListener,
    listener_from_std
);

fn listener_from_std(listener: std::os::unix::net::UnixListener) -> UnixListener {
    // Only an invalid descriptor can fail here; its first operation will
    // report that.
    let _ = listener.set_nonblocking(true);
    UnixListener {
        io: Io::new(listener),
    }
}
