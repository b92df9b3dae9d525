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
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// A new handle (a duplicated descriptor) to the same socket; timeouts
    /// and the non-blocking mode are shared by all clones.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: self.io.try_clone(|s| s.try_clone())?,
        })
    }

    /// Sets the read timeout: a receive that waits longer fails with
    /// [`io::ErrorKind::WouldBlock`]. A zero duration is an error.
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

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.io.get().set_broadcast(broadcast)
    }

    /// The value of `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get().set_multicast_loop_v4(on)
    }

    /// The value of `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_multicast_ttl_v4(ttl)
    }

    /// The value of `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.get().set_multicast_loop_v6(on)
    }

    /// The value of `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.io.get().multicast_loop_v6()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The value of `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// Joins an IPv4 multicast group (`IP_ADD_MEMBERSHIP`).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get().join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group (`IPV6_ADD_MEMBERSHIP`).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group (`IP_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group (`IPV6_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get().leave_multicast_v6(multiaddr, interface)
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Connects the socket to the first address `addr` resolves to that
    /// accepts: `send` and `recv` then talk to it only.
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
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.peek(buf))
    }

    /// In non-blocking mode, calls that would wait return
    /// [`io::ErrorKind::WouldBlock`] instead. Applies to every clone.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Unwraps into a blocking std socket with the same timeouts
    /// (non-blocking while clones are alive; see
    /// [`TcpStream::into_std`](super::TcpStream::into_std)).
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
