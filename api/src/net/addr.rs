//! [`ToSocketAddrs`]: std's address conversion trait, with host-name
//! lookups moved off the worker.

use std::io;
use std::iter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::option;
use std::slice;
use std::vec;

use spool_runtime::trace::WaitReason;

use crate::unblock::run_abandoning;

/// Converts a value to one or more [`SocketAddr`]s, mirroring
/// [`std::net::ToSocketAddrs`].
///
/// It is implemented for the same types as std's trait: the socket
/// address types, `(IpAddr, u16)`, `(Ipv4Addr, u16)`, `(Ipv6Addr, u16)`,
/// `(&str, u16)`, `(String, u16)`, `str` and `String` (as
/// `"host:port"`), `&[SocketAddr]`, and references to any of these.
/// Numeric addresses are parsed at once. A host name is looked up with
/// std's resolver (the system's `getaddrinfo`) on spool's pool of OS
/// threads, so a slow DNS server parks only the calling green thread,
/// never its worker.
///
/// A lookup is a cancellation point: a cancelled caller (a `timeout`
/// around a `connect` to a host name whose name server does not answer)
/// unwinds at once, and the lookup, which cannot be interrupted, finishes
/// on its pool thread and is dropped (see
/// [`unblock_abandon`](crate::unblock_abandon)). While the caller is
/// already unwinding and cancelled, the lookup is waited for.
///
/// ```
/// use spool::net::{SocketAddr, ToSocketAddrs};
///
/// let numeric: Vec<SocketAddr> = "127.0.0.1:8080".to_socket_addrs().unwrap().collect();
/// assert_eq!(numeric, ["127.0.0.1:8080".parse().unwrap()]);
///
/// // A name: looked up on spool's blocking pool ("localhost" resolves
/// // from /etc/hosts, without a network).
/// let local = spool::run(|| ("localhost", 80).to_socket_addrs().unwrap().collect::<Vec<_>>());
/// assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// ```
///
/// # Why not std's trait
/// spool's sockets take this trait rather than re-exporting
/// `std::net::ToSocketAddrs`. std's `to_socket_addrs(&self)` resolves on
/// the calling thread and is implemented by arbitrary types, so spool could
/// only call it where it is — inside the worker, blocking every green
/// thread there for the length of a lookup. It cannot be moved to another
/// thread either: `&self` of an arbitrary implementor is not `Send`, and a
/// generic implementation gives no way to copy out just the host name.
/// Defining the trait ourselves for the concrete std types lets each
/// implementation parse numbers in place and send only an owned host name
/// to the pool. async-std made the same choice for the same reason.
///
/// Code that passes concrete addresses (`"example.com:80"`,
/// `("10.0.0.1", 80)`, a `SocketAddr`, a slice of them) ports unchanged.
/// A type that implements only std's trait needs an implementation of this
/// one, or its addresses collected into a `Vec<SocketAddr>` first.
pub trait ToSocketAddrs {
    /// The iterator over the socket addresses a value converts to.
    type Iter: Iterator<Item = SocketAddr>;

    /// Converts the value to socket addresses. A host name that cannot be
    /// resolved, or a string that is not `"host:port"`, gives an error of
    /// the same kind std's trait gives.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

impl ToSocketAddrs for SocketAddr {
    type Iter = option::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(*self).into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    type Iter = option::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::V4(*self).to_socket_addrs()
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    type Iter = option::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::V6(*self).to_socket_addrs()
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::new(self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddrV4::new(self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddrV6::new(self.0, self.1, 0, 0).to_socket_addrs()
    }
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        let (host, port) = *self;
        // A numeric host needs no lookup (std parses these first too).
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)].into_iter());
        }
        lookup_host(host, port)
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = vec::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        // Split as std does ("host:port", the port after the last colon),
        // with std's error kinds, so a malformed string fails without a
        // trip to the pool.
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port value"))?;
        lookup_host(host, port)
    }
}

impl ToSocketAddrs for String {
    type Iter = vec::IntoIter<SocketAddr>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = iter::Cloned<slice::Iter<'a, SocketAddr>>;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    #[track_caller]
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (**self).to_socket_addrs()
    }
}

/// Resolves `host` with std's resolver on the blocking pool, so the lookup
/// never blocks a worker, and a cancellation of the caller does not wait
/// for it.
#[track_caller]
fn lookup_host(host: &str, port: u16) -> io::Result<vec::IntoIter<SocketAddr>> {
    let host = host.to_owned();
    let lookup = move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(|addrs| addrs.collect::<Vec<_>>().into_iter())
    };
    run_abandoning(lookup, WaitReason::Resolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours<A: ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<Vec<SocketAddr>> {
        addr.to_socket_addrs().map(Iterator::collect)
    }

    fn std_<A: std::net::ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<Vec<SocketAddr>> {
        addr.to_socket_addrs().map(Iterator::collect)
    }

    #[test]
    fn numeric_forms_match_std() {
        let v4 = Ipv4Addr::new(10, 1, 2, 3);
        let v6 = Ipv6Addr::LOCALHOST;
        let sa: SocketAddr = "10.1.2.3:80".parse().unwrap();
        let sa6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(ours(&sa).unwrap(), std_(&sa).unwrap());
        assert_eq!(
            ours(&SocketAddrV4::new(v4, 1)).unwrap(),
            std_(&SocketAddrV4::new(v4, 1)).unwrap()
        );
        let sv6 = SocketAddrV6::new(v6, 2, 0, 0);
        assert_eq!(ours(&sv6).unwrap(), std_(&sv6).unwrap());
        assert_eq!(
            ours(&(IpAddr::V4(v4), 3)).unwrap(),
            std_(&(IpAddr::V4(v4), 3)).unwrap()
        );
        assert_eq!(ours(&(v4, 4)).unwrap(), std_(&(v4, 4)).unwrap());
        assert_eq!(ours(&(v6, 5)).unwrap(), std_(&(v6, 5)).unwrap());
        assert_eq!(
            ours(&("10.1.2.3", 6)).unwrap(),
            std_(&("10.1.2.3", 6)).unwrap()
        );
        assert_eq!(ours(&("::1", 7)).unwrap(), std_(&("::1", 7)).unwrap());
        assert_eq!(
            ours(&("::1".to_string(), 8)).unwrap(),
            std_(&("::1".to_string(), 8)).unwrap()
        );
        assert_eq!(ours("10.1.2.3:9").unwrap(), std_("10.1.2.3:9").unwrap());
        assert_eq!(ours("[::1]:10").unwrap(), std_("[::1]:10").unwrap());
        assert_eq!(
            ours(&"[::1]:11".to_string()).unwrap(),
            std_(&"[::1]:11".to_string()).unwrap()
        );
        let slice: &[SocketAddr] = &[sa, sa6];
        assert_eq!(ours(&slice).unwrap(), std_(&slice).unwrap());
        assert_eq!(ours(&&&sa).unwrap(), vec![sa]);
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        for addrs in [
            ours("localhost:8080"),
            ours(&("localhost", 8080)),
            ours(&"localhost:8080".to_string()),
        ] {
            let addrs = addrs.unwrap();
            assert!(!addrs.is_empty());
            assert!(
                addrs
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 8080),
                "{addrs:?}"
            );
        }
    }

    #[test]
    fn malformed_strings_fail_like_std() {
        for bad in [
            "garbage",
            "localhost:99999",
            "localhost:port",
            "localhost",
            "[::1]",
            "1.2.3.4:-1",
            "",
        ] {
            let ours = ours(bad).expect_err(bad).kind();
            let std = std_(bad).expect_err(bad).kind();
            assert_eq!(ours, std, "{bad:?}");
        }
    }
}
