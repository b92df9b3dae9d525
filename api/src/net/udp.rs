//! `UdpSocket`, mirroring `std::net`'s.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::io::{fd_conversions, Io};
use super::{describe_exhaustion, each_addr, resolve, ToSocketAddrs};

/// A UDP socket: [`std::net::UdpSocket`] for green threads.
///
/// Receives park the calling green thread until a datagram arrives (up to
/// the read timeout); sends park while the socket's buffer is full. On a
/// plain OS thread they block that thread.
///
/// # Examples
/// ```
/// use spool::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0")?;
/// let b = UdpSocket::bind("127.0.0.1:0")?;
/// let b_addr = b.local_addr()?;
/// let echo = spool::thread::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf)?;
///     b.send_to(&buf[..n], from)?;
///     Ok(())
/// });
/// a.send_to(b"ping", b_addr)?;
/// let mut buf = [0; 16];
/// let (n, from) = a.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
/// echo.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    io: Io<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Creates a socket bound to `addr`, trying each address it resolves
    /// to until one binds.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let addr = socket.local_addr()?;
    /// assert_ne!(addr.port(), 0); // the port the system chose
    /// // The port is taken now.
    /// let err = UdpSocket::bind(addr).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let addrs = resolve(&addr)?;
        let socket = std::net::UdpSocket::bind(&addrs[..])
            .map_err(|e| describe_exhaustion(e, "a UDP socket"))?;
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: Io::new(socket),
        })
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
    /// use spool::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let sender = UdpSocket::bind("127.0.0.1:0")?;
    /// let mut buf = [0; 4];
    /// // Nothing sent yet: a deadline ends the wait.
    /// let waited = spool::time::timeout(Duration::from_millis(10), || socket.recv_from(&mut buf));
    /// assert!(waited.is_err());
    /// sender.send_to(b"too long", socket.local_addr()?)?;
    /// let (n, from) = socket.recv_from(&mut buf)?;
    /// // The rest of a datagram longer than the buffer is lost.
    /// assert_eq!((&buf[..n], from), (&b"too "[..], sender.local_addr()?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read(|s| s.recv_from(buf))
    }

    /// As [`recv_from`](Self::recv_from), leaving the datagram queued.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let sender = UdpSocket::bind("127.0.0.1:0")?;
    /// sender.send_to(b"hello", socket.local_addr()?)?;
    /// let mut buf = [0; 5];
    /// let (n, from) = socket.peek_from(&mut buf)?;
    /// assert_eq!((n, from), (5, sender.local_addr()?));
    /// // The datagram is still queued.
    /// assert_eq!(socket.recv_from(&mut buf)?, (5, from));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read(|s| s.peek_from(buf))
    }

    /// Sends `buf` to the first address `addr` resolves to.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let receiver = UdpSocket::bind("127.0.0.1:0")?;
    /// let sent = socket.send_to(b"hello", receiver.local_addr()?)?;
    /// assert_eq!(sent, 5);
    /// let mut buf = [0; 16];
    /// assert_eq!(receiver.recv(&mut buf)?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        match resolve(&addr)?.first() {
            Some(to) => self.io.write(|s| s.send_to(buf, to)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no addresses to send data to",
            )),
        }
    }

    /// The address of the peer this socket is connected to.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer = UdpSocket::bind("127.0.0.1:0")?;
    /// // Not connected: no peer.
    /// let err = socket.peer_addr().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    /// socket.connect(peer.local_addr()?)?;
    /// assert_eq!(socket.peer_addr()?, peer.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// The local address of the socket.
    ///
    /// # Examples
    /// ```
    /// use spool::net::{IpAddr, Ipv4Addr, UdpSocket};
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let addr = socket.local_addr()?;
    /// assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    /// assert_ne!(addr.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// A new handle (a duplicated descriptor) to the same socket; timeouts
    /// and the non-blocking mode are shared by all clones.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer_addr = peer.local_addr()?;
    /// // Receive in one green thread while sending from another.
    /// let receiver = socket.try_clone()?;
    /// let replies = spool::thread::spawn(move || -> std::io::Result<usize> {
    ///     let mut buf = [0; 8];
    ///     receiver.recv_from(&mut buf).map(|(n, _)| n)
    /// });
    /// let echo = spool::thread::spawn(move || -> std::io::Result<()> {
    ///     let mut buf = [0; 8];
    ///     let (n, from) = peer.recv_from(&mut buf)?;
    ///     peer.send_to(&buf[..n], from)?;
    ///     Ok(())
    /// });
    /// socket.send_to(b"ping", peer_addr)?;
    /// assert_eq!(replies.join().unwrap()?, 4);
    /// echo.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// Sets the read timeout: a receive that waits longer fails with
    /// [`io::ErrorKind::WouldBlock`]. A zero duration is an error.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// // Nothing arrives: std's error for a timed-out receive.
    /// let err = socket.recv_from(&mut [0; 4]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// // A zero timeout is refused, as by std.
    /// let err = socket.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
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
    /// use spool::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(socket.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(timeout)
    }

    /// The read timeout.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.read_timeout()?, None);
    /// let clone = socket.try_clone()?;
    /// socket.set_read_timeout(Some(Duration::from_secs(1)))?;
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
    /// use spool::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.write_timeout()?, None);
    /// socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(socket.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_broadcast(true)?; // may send to broadcast addresses
    /// assert!(socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.io.get().set_broadcast(broadcast)
    }

    /// The value of `SO_BROADCAST`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(!socket.broadcast()?); // off by default
    /// socket.set_broadcast(true)?;
    /// assert!(socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// // Do not deliver this host's own multicast datagrams back to it.
    /// socket.set_multicast_loop_v4(false)?;
    /// assert!(!socket.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get().set_multicast_loop_v4(on)
    }

    /// The value of `IP_MULTICAST_LOOP`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// assert!(socket.multicast_loop_v4()?); // on by default
    /// socket.set_multicast_loop_v4(false)?;
    /// assert!(!socket.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// socket.set_multicast_ttl_v4(4)?; // cross up to 3 routers
    /// assert_eq!(socket.multicast_ttl_v4()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_multicast_ttl_v4(ttl)
    }

    /// The value of `IP_MULTICAST_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// assert_eq!(socket.multicast_ttl_v4()?, 1); // this network only, by default
    /// socket.set_multicast_ttl_v4(4)?;
    /// assert_eq!(socket.multicast_ttl_v4()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// # if UdpSocket::bind("[::]:0").is_err() { return Ok(()) } // no IPv6 here
    /// let socket = UdpSocket::bind("[::]:0")?;
    /// socket.set_multicast_loop_v6(false)?;
    /// assert!(!socket.multicast_loop_v6()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.get().set_multicast_loop_v6(on)
    }

    /// The value of `IPV6_MULTICAST_LOOP`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// # if UdpSocket::bind("[::]:0").is_err() { return Ok(()) } // no IPv6 here
    /// let socket = UdpSocket::bind("[::]:0")?;
    /// assert!(socket.multicast_loop_v6()?); // on by default
    /// socket.set_multicast_loop_v6(false)?;
    /// assert!(!socket.multicast_loop_v6()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.io.get().multicast_loop_v6()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_ttl(100)?;
    /// assert_eq!(socket.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The value of `IP_TTL`.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_ttl(100)?;
    /// assert_eq!(socket.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// Joins an IPv4 multicast group (`IP_ADD_MEMBERSHIP`).
    ///
    /// # Examples
    /// ```
    /// use spool::net::{Ipv4Addr, UdpSocket};
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// let group = Ipv4Addr::new(239, 255, 0, 1);
    /// socket.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// // Joining twice is an error.
    /// assert!(socket.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST).is_err());
    /// socket.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get().join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group (`IPV6_ADD_MEMBERSHIP`).
    ///
    /// # Examples
    /// ```
    /// use spool::net::{Ipv6Addr, UdpSocket};
    ///
    /// # if UdpSocket::bind("[::]:0").is_err() { return Ok(()) } // no IPv6 here
    /// let socket = UdpSocket::bind("[::]:0")?;
    /// let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 3); // link-local
    /// // Interface 0: the one the system picks.
    /// # let joined = socket.join_multicast_v6(&group, 0);
    /// # let route = joined.and_then(|()| socket.leave_multicast_v6(&group, 0));
    /// # if route.is_err() { return Ok(()) } // no IPv6 multicast route here
    /// socket.join_multicast_v6(&group, 0)?;
    /// socket.leave_multicast_v6(&group, 0)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group (`IP_DROP_MEMBERSHIP`).
    ///
    /// # Examples
    /// ```
    /// use spool::net::{Ipv4Addr, UdpSocket};
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// let group = Ipv4Addr::new(239, 255, 0, 1);
    /// socket.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// socket.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// // Not a member any more.
    /// assert!(socket.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group (`IPV6_DROP_MEMBERSHIP`).
    ///
    /// # Examples
    /// ```
    /// use spool::net::{Ipv6Addr, UdpSocket};
    ///
    /// # if UdpSocket::bind("[::]:0").is_err() { return Ok(()) } // no IPv6 here
    /// let socket = UdpSocket::bind("[::]:0")?;
    /// let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 3);
    /// // Not a member: nothing to leave.
    /// assert!(socket.leave_multicast_v6(&group, 0).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get().leave_multicast_v6(multiaddr, interface)
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Connects the socket to the first address `addr` resolves to that
    /// accepts: `send` and `recv` then talk to it only.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer = UdpSocket::bind("127.0.0.1:0")?;
    /// let stranger = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(peer.local_addr()?)?;
    /// // A connected socket receives from its peer only.
    /// stranger.send_to(b"spam", socket.local_addr()?)?;
    /// peer.send_to(b"hello", socket.local_addr()?)?;
    /// let mut buf = [0; 8];
    /// let n = socket.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.io.get().connect(a))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer = UdpSocket::bind("127.0.0.1:0")?;
    /// // Not connected: no address to send to.
    /// assert!(socket.send(b"lost").is_err());
    /// socket.connect(peer.local_addr()?)?;
    /// assert_eq!(socket.send(b"hello")?, 5);
    /// let mut buf = [0; 8];
    /// let (n, from) = peer.recv_from(&mut buf)?;
    /// assert_eq!((&buf[..n], from), (&b"hello"[..], socket.local_addr()?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(|s| s.send(buf))
    }

    /// Receives one datagram from the connected peer.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(peer.local_addr()?)?;
    /// let mut buf = [0; 8];
    /// // Nothing sent yet: a deadline ends the wait.
    /// assert!(spool::time::timeout(Duration::from_millis(10), || socket.recv(&mut buf)).is_err());
    /// peer.send_to(b"hello", socket.local_addr()?)?;
    /// let n = socket.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.recv(buf))
    }

    /// As [`recv`](Self::recv), leaving the datagram queued.
    ///
    /// A cancellation point (see [Cancellation](crate::net#cancellation)):
    /// a cancelled thread unwinds from the wait, and one already unwinding
    /// from a cancellation gets an error of kind `TimedOut` instead of
    /// waiting.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let peer = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(peer.local_addr()?)?;
    /// peer.send_to(b"hello", socket.local_addr()?)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.peek(&mut buf)?, 5);
    /// // The datagram is still queued.
    /// assert_eq!(socket.recv(&mut buf)?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.peek(buf))
    }

    /// In non-blocking mode, calls that would wait return
    /// [`io::ErrorKind::WouldBlock`] instead. Applies to every clone.
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    /// use std::io::ErrorKind;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_nonblocking(true)?;
    /// // Nothing to receive: an error instead of a wait.
    /// let err = socket.recv_from(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// // The mode applies to every clone.
    /// let clone = socket.try_clone()?;
    /// assert_eq!(clone.recv_from(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Unwraps into a blocking std socket with the same timeouts
    /// (non-blocking while clones are alive; see
    /// [`TcpStream::into_std`](super::TcpStream::into_std)).
    ///
    /// # Examples
    /// ```
    /// use spool::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// // A blocking std socket, for code that needs one: the timeout carries over.
    /// let std_socket: std::net::UdpSocket = socket.into_std()?;
    /// assert_eq!(std_socket.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
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

fd_conversions!(UdpSocket, std::net::UdpSocket, udp_from_std);

fn udp_from_std(socket: std::net::UdpSocket) -> UdpSocket {
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
    UdpSocket { io }
}
