//! `TcpListener` and `TcpStream`, mirroring `std::net`'s.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::Location;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use spool_runtime::Direction;

use super::io::{fd_conversions, Io};
use super::{describe_exhaustion, each_addr, ToSocketAddrs};

/// A TCP socket server, listening for connections: [`std::net::TcpListener`]
/// for green threads.
///
/// [`accept`](TcpListener::accept) parks the calling green thread (not its
/// worker) until a connection arrives; on a plain OS thread it blocks that
/// thread, as std's does.
///
/// # Examples
/// ```no_run
/// use spool::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// fn handle_client(mut stream: TcpStream) -> std::io::Result<()> {
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
///     let listener = TcpListener::bind("127.0.0.1:8080")?;
///     for stream in listener.incoming() {
///         let stream = stream?;
///         spool::thread::spawn(move || handle_client(stream));
///     }
///     Ok(())
/// }
/// ```
pub struct TcpListener {
    io: Io<std::net::TcpListener>,
}

/// A TCP stream between a local and a remote socket:
/// [`std::net::TcpStream`] for green threads.
///
/// Reads, writes and connects park the calling green thread until the
/// socket is ready; on a plain OS thread they block that thread. A reader
/// and a writer may use clones of one stream ([`try_clone`], or `&TcpStream`,
/// which implements `Read` and `Write` too) at the same time. Read and write
/// timeouts are honoured as std honours them: a timed-out call fails with
/// [`io::ErrorKind::WouldBlock`].
///
/// [`try_clone`]: TcpStream::try_clone
///
/// # Examples
/// ```
/// use spool::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = spool::thread::spawn(move || -> std::io::Result<()> {
///     let (mut conn, _) = listener.accept()?;
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf)?;
///     conn.write_all(&buf)
/// });
/// let mut client = TcpStream::connect(addr)?;
/// client.write_all(b"hello")?;
/// let mut echo = [0; 5];
/// client.read_exact(&mut echo)?;
/// assert_eq!(&echo, b"hello");
/// server.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    io: Io<std::net::TcpStream>,
}

/// An iterator over the connections of a [`TcpListener`]: each item is
/// what [`TcpListener::accept`] returns, without the address. Never ends.
///
/// # Examples
/// ```
/// use spool::net::{TcpListener, TcpStream};
/// use std::io::Write;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// for _ in 0..2 {
///     TcpStream::connect(addr)?.write_all(b"hi")?;
/// }
/// // `Incoming` never ends by itself: take as many connections as wanted.
/// for stream in listener.incoming().take(2) {
///     assert_eq!(stream?.local_addr()?, addr);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Creates a listener bound to `addr`, trying each address `addr`
    /// resolves to until one binds (host names are resolved without
    /// blocking the worker; see [`ToSocketAddrs`]).
    ///
    /// Binding to port 0 asks the system for a free port; see
    /// [`local_addr`](TcpListener::local_addr).
    ///
    /// # Examples
    /// ```
    /// use spool::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// assert_ne!(addr.port(), 0);
    /// // The port is taken now.
    /// let err = TcpListener::bind(addr).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| {
            let socket = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM.nonblocking().cloexec(),
                Some(Protocol::TCP),
            )
            .map_err(|e| describe_exhaustion(e, "a TCP listener"))?;
            // As std does on Unix: rebinding a port in TIME_WAIT works.
            socket.set_reuse_address(true)?;
            socket.bind(&(*addr).into())?;
            socket.listen(listen_backlog())?;
            Ok(TcpListener {
                io: Io::new(std::net::TcpListener::from(socket)),
            })
        })
    }

    /// The local address this listener is bound to.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{IpAddr, Ipv4Addr, TcpListener};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    /// assert_ne!(addr.port(), 0); // the port the system chose
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// A new handle (a duplicated descriptor) to the same listener;
    /// accepting through either takes connections from the same queue.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let clone = listener.try_clone()?;
    /// // Both handles accept from the same queue: a second acceptor thread.
    /// let acceptor = spool::thread::spawn(move || clone.accept().map(|(_, peer)| peer));
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(acceptor.join().unwrap()?, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: self.io.try_clone(|l| l.try_clone())?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
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
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// // No client yet: a deadline ends the wait.
    /// let waited = spool::time::timeout(Duration::from_millis(10), || listener.accept());
    /// assert!(waited.is_err());
    /// // The listener still works.
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, peer) = listener.accept()?;
    /// assert_eq!(peer, client.local_addr()?);
    /// assert_eq!(server.peer_addr()?, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = self
            .io
            .accept(|l| l.accept())
            .map_err(|e| describe_exhaustion(e, "an accepted TCP connection"))?;
        Ok((TcpStream::from_accepted(stream)?, addr))
    }

    /// An iterator that accepts connections forever.
    ///
    /// Each `next` is an [`accept`](Self::accept), and so a cancellation
    /// point.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
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
    ///     TcpStream::connect(addr)?.read_to_string(&mut greeting)?;
    ///     assert_eq!(greeting, "welcome");
    /// }
    /// server.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets `IP_TTL` on the socket.
    ///
    /// # Examples
    /// ```
    /// use spool::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The value of `IP_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// Sets `IPV6_V6ONLY`; only meaningful before binding, so std
    /// deprecates it, and so does spool.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use spool::net::TcpListener;
    ///
    /// # if TcpListener::bind("[::1]:0").is_err() { return Ok(()) } // no IPv6 here
    /// let listener = TcpListener::bind("[::1]:0")?;
    /// // Bound already: Linux refuses to change the option.
    /// #[allow(deprecated)]
    /// let set = listener.set_only_v6(true);
    /// assert!(set.is_err());
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[deprecated(
        since = "0.1.0",
        note = "this option can only be set before the socket is bound"
    )]
    pub fn set_only_v6(&self, only_v6: bool) -> io::Result<()> {
        SockRef::from(self.io.get()).set_only_v6(only_v6)
    }

    /// The value of `IPV6_V6ONLY`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{SocketAddr, TcpListener, TcpStream};
    ///
    /// # if TcpListener::bind("[::]:0").is_err() { return Ok(()) } // no IPv6 here
    /// let listener = TcpListener::bind("[::]:0")?;
    /// // The system's default (`net.ipv6.bindv6only` on Linux, usually off).
    /// #[allow(deprecated)]
    /// let dual_stack = !listener.only_v6()?;
    /// if dual_stack {
    ///     // IPv4 clients reach the listener too, as IPv4-mapped addresses.
    ///     let port = listener.local_addr()?.port();
    ///     let _client = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    ///     let (_, peer) = listener.accept()?;
    ///     assert!(peer.is_ipv6());
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[deprecated(
        since = "0.1.0",
        note = "this option can only be set before the socket is bound"
    )]
    pub fn only_v6(&self) -> io::Result<bool> {
        SockRef::from(self.io.get()).only_v6()
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    ///
    /// # Examples
    /// ```
    /// use spool::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// In non-blocking mode, `accept` returns
    /// [`io::ErrorKind::WouldBlock`] instead of waiting. Applies to every
    /// clone of this listener.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::ErrorKind;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// // Nothing to accept: an error instead of a wait.
    /// let err = listener.accept().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// // The usual loop: do other work until a connection is there.
    /// let (_server, peer) = loop {
    ///     match listener.accept() {
    ///         Err(e) if e.kind() == ErrorKind::WouldBlock => spool::thread::yield_now(),
    ///         accepted => break accepted?,
    ///     }
    /// };
    /// assert_eq!(peer, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<TcpStream>;

    #[track_caller]
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}

impl TcpStream {
    /// Opens a connection to `addr`, trying each address it resolves to
    /// until one connects; the error of the last attempt is returned if
    /// none does. The calling green thread parks while connecting.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::ErrorKind;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let stream = TcpStream::connect(addr)?;
    /// assert_eq!(stream.peer_addr()?, addr);
    /// // Nobody listens there any more.
    /// drop((stream, listener));
    /// let err = TcpStream::connect(addr).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let site = Location::caller();
        each_addr(addr, |a| TcpStream::connect_deadline(a, None, site))
    }

    /// Opens a connection to `addr`, failing with
    /// [`io::ErrorKind::TimedOut`] if it takes longer than `timeout`. A zero
    /// timeout is an error, as in std.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    /// assert_eq!(stream.peer_addr()?, addr);
    /// // A zero timeout is refused, as by std.
    /// let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let deadline = Instant::now().checked_add(timeout);
        TcpStream::connect_deadline(addr, deadline, Location::caller())
    }

    /// Connects to `addr`; `site` is the call site a thread dump shows.
    #[track_caller]
    fn connect_deadline(
        addr: &SocketAddr,
        deadline: Option<Instant>,
        site: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(*addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )
        .map_err(|e| describe_exhaustion(e, "a TCP socket"))?;
        let io = Io::new(std::net::TcpStream::from(socket));
        match SockRef::from(io.get()).connect(&(*addr).into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {
                io.run_until(site, Direction::Write, deadline, |s| {
                    match s.take_error()? {
                        Some(e) => Err(e),
                        None => match s.peer_addr() {
                            Ok(_) => Ok(()),
                            // Still connecting.
                            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                                Err(io::ErrorKind::WouldBlock.into())
                            }
                            Err(e) => Err(e),
                        },
                    }
                })
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
                    } else {
                        e
                    }
                })?;
            }
            Err(e) => return Err(e),
        }
        Ok(TcpStream { io })
    }

    fn from_accepted(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: {
                stream.set_nonblocking(true)?;
                Io::new(stream)
            },
        })
    }

    /// The remote address of the connection.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// assert_eq!(client.peer_addr()?, listener.local_addr()?);
    /// assert_eq!(server.peer_addr()?, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// The local address of the connection.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// assert_eq!(server.local_addr()?, listener.local_addr()?);
    /// assert!(client.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// Shuts down the read half, the write half or both. A green thread
    /// parked reading on a clone wakes and sees end of stream.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{Shutdown, TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// // Closing the write half tells the peer the request is complete...
    /// client.write_all(b"request")?;
    /// client.shutdown(Shutdown::Write)?;
    /// let mut request = String::new();
    /// server.read_to_string(&mut request)?;
    /// assert_eq!(request, "request");
    /// // ...while the read half still works.
    /// server.write_all(b"reply")?;
    /// let mut reply = [0; 5];
    /// client.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"reply");
    ///
    /// // Shutting down the read half wakes a reader parked on a clone.
    /// let reader = server.try_clone()?;
    /// let parked = spool::thread::spawn(move || (&reader).read(&mut [0; 8]));
    /// server.shutdown(Shutdown::Read)?;
    /// assert_eq!(parked.join().unwrap()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// A new handle (a duplicated descriptor) to the same connection, for
    /// example to read in one green thread while writing in another.
    /// Timeouts and the non-blocking mode are shared by all clones, as with
    /// std's.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// // Read in one green thread while writing in another.
    /// let mut reader = server.try_clone()?;
    /// let mut writer = server;
    /// let echo = spool::thread::spawn(move || -> std::io::Result<()> {
    ///     let mut buf = [0; 4];
    ///     reader.read_exact(&mut buf)?;
    ///     assert_eq!(&buf, b"ping");
    ///     Ok(())
    /// });
    /// writer.write_all(b"pong")?;
    /// client.write_all(b"ping")?;
    /// let mut buf = [0; 4];
    /// client.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"pong");
    /// echo.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// Sets the read timeout: a read that waits longer fails with
    /// [`io::ErrorKind::WouldBlock`]. `None` waits forever; a zero duration
    /// is an error, as in std.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// client.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// // The peer is silent: std's error for a timed-out read.
    /// let err = client.read(&mut [0; 4]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// // A zero timeout is refused, as by std.
    /// let err = client.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
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
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Write};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (_server, _) = listener.accept()?; // never reads
    /// client.set_write_timeout(Some(Duration::from_millis(10)))?;
    /// // Fill the socket buffers until a write has to wait too long.
    /// let chunk = vec![0; 64 * 1024];
    /// let err = loop {
    ///     if let Err(e) = client.write(&chunk) {
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
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.read_timeout()?, None);
    /// let clone = stream.try_clone()?;
    /// stream.set_read_timeout(Some(Duration::from_secs(1)))?;
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
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.write_timeout()?, None);
    /// stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(stream.write_timeout()?, Some(Duration::from_secs(1)));
    /// stream.set_write_timeout(None)?;
    /// assert_eq!(stream.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// Reads without removing the data from the queue, waiting as `read`
    /// does.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// let mut buf = [0; 3];
    /// // Nothing sent yet: a deadline ends the wait.
    /// assert!(spool::time::timeout(Duration::from_millis(10), || server.peek(&mut buf)).is_err());
    /// client.write_all(b"GET /")?;
    /// // Waits for data, then looks at it without taking it...
    /// let n = server.peek(&mut buf)?;
    /// assert_eq!(&buf[..n], &b"GET"[..n]);
    /// // ...so the next read sees the same bytes.
    /// let mut request = [0; 5];
    /// server.read_exact(&mut request)?;
    /// assert_eq!(&request, b"GET /");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_nodelay(true)?; // send small writes at once
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get().set_nodelay(nodelay)
    }

    /// The value of `TCP_NODELAY`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(!stream.nodelay()?); // Nagle's algorithm is on by default
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_ttl(100)?;
    /// assert_eq!(stream.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The value of `IP_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_ttl(100)?;
    /// assert_eq!(stream.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// In non-blocking mode, reads and writes that would wait return
    /// [`io::ErrorKind::WouldBlock`] instead. Applies to every clone.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// server.set_nonblocking(true)?;
    /// // Nothing to read: an error instead of a wait.
    /// let err = server.read(&mut [0; 4]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// // Data that is there is read as usual; switch back to wait for it.
    /// server.set_nonblocking(false)?;
    /// client.write_all(b"data")?;
    /// let mut buf = [0; 4];
    /// server.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"data");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Unwraps into a blocking std stream with the same timeouts.
    ///
    /// While clones of this stream are alive, the std stream stays in
    /// non-blocking mode: clones share the descriptor's file status flags,
    /// and spool's clones need the mode.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// // A blocking std stream, for code that needs one: the timeout carries over.
    /// let std_stream: std::net::TcpStream = stream.into_std()?;
    /// assert_eq!(std_stream.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
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

/// The accept queue length asked of `listen`: the system's maximum
/// (`net.core.somaxconn`, 4096 by default on Linux), as Go asks for.
///
/// std asks for 128. A green-thread server is meant to take thousands of
/// connections arriving at once; with a queue of 128 the kernel drops the
/// SYNs that overflow it and clients retry only after a second.
pub(crate) fn listen_backlog() -> i32 {
    static BACKLOG: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(4096)
    })
}

/// `EINPROGRESS`: a non-blocking connect has started.
fn libc_einprogress() -> i32 {
    // The value is part of the Linux ABI (and every BSD uses 36).
    if cfg!(target_os = "linux") {
        115
    } else {
        36
    }
}

/// Reads are cancellation points (see
/// [Cancellation](crate::net#cancellation)): a cancelled thread unwinds
/// from the wait (a read that got data returns it first), and one already
/// unwinding from a cancellation gets an error of kind `TimedOut` instead
/// of waiting.
impl Read for TcpStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.io.read_stream(len, |mut s| s.read(buf))
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.io.read_stream(len, |mut s| s.read_vectored(bufs))
    }
}

/// Writes are cancellation points (see
/// [Cancellation](crate::net#cancellation)): a cancelled thread unwinds
/// from a wait for room in the send buffer, and one already unwinding from
/// a cancellation gets an error of kind `TimedOut` instead of waiting (so
/// a `BufWriter` dropped during a cancellation does not hang).
impl Write for TcpStream {
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

impl Write for &TcpStream {
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

fd_conversions!(TcpStream, std::net::TcpStream, stream_from_std);
fd_conversions!(TcpListener, std::net::TcpListener, listener_from_std);

fn stream_from_std(stream: std::net::TcpStream) -> TcpStream {
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
    TcpStream { io }
}

fn listener_from_std(listener: std::net::TcpListener) -> TcpListener {
    let _ = listener.set_nonblocking(true);
    TcpListener {
        io: Io::new(listener),
    }
}

impl TcpListener {
    /// Unwraps into a blocking std listener (non-blocking while clones of
    /// this listener are alive; see [`TcpStream::into_std`]).
    ///
    /// # Examples
    /// ```
    /// use spool::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let std_listener: std::net::TcpListener = listener.into_std()?;
    /// // A blocking std listener: its `accept` waits for the connection.
    /// let _client = TcpStream::connect(addr)?;
    /// let (_, peer) = std_listener.accept()?;
    /// assert!(peer.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let has_clones = self.io.has_clones();
        let listener = self.io.into_inner();
        if !has_clones {
            listener.set_nonblocking(false)?;
        }
        Ok(listener)
    }
}
