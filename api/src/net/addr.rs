//! Addresses: std's [`ToSocketAddrs`], with host-name lookups moved off
//! the worker.
//!
//! # Std's trait, and a look at the concrete type
//! The sockets take `A: std::net::ToSocketAddrs`, and `spool::net`
//! re-exports that very trait, so code written against std — a function
//! generic over the bound, a type of the user's that implements it, a
//! `use spool::net::ToSocketAddrs` where `use std::net::ToSocketAddrs`
//! was — compiles unchanged. The catch is std's method,
//! `to_socket_addrs(&self)`: for a host name it calls the system's
//! `getaddrinfo` on the calling thread, which inside a green thread is the
//! worker, so a lookup that takes seconds (a name server that does not
//! answer) would stall every green thread there. Nor can the call simply
//! move to another thread: `&A` of an arbitrary implementor need not be
//! `Send`, and a lookup that a cancelled caller walks away from must own
//! what it reads, where `&self` only lends it.
//!
//! So [`resolve`] looks at the concrete type first. The types that can
//! name a host are std's string forms: `&str`, `String`, `(&str, u16)`,
//! `(String, u16)`. For those, and for one reference to each (`&&str`,
//! `&String`, `&(&str, u16)`, `&(String, u16)`, as iterating a slice of
//! addresses gives), the text is borrowed, a numeric address is parsed in
//! place exactly as std parses it, and only a host name goes to spool's
//! blocking pool, as an owned copy (`run_abandoning`: a cancellation point,
//! recorded in thread dumps as [`WaitReason::Resolve`]). Every other type
//! has `to_socket_addrs` called where it is: for std's address types
//! (`SocketAddr`, `SocketAddrV4`, `SocketAddrV6`, an IP address with a
//! port, `&[SocketAddr]`) that is a conversion without a system call; a
//! user's type whose implementation does its own DNS lookup blocks the
//! worker for it, as any blocking std call inside a green thread does (the
//! re-export's documentation says so, and [`lookup_host`] or
//! [`unblock`](crate::unblock()) are the way out). A string behind two or
//! more references (`&&&str`) is not recognized and also resolves in
//! place.
//!
//! The alternatives, and why not:
//! * **spool's own trait**, implemented for the concrete std types (what
//!   async-std does): each implementation parses numbers in place and
//!   sends an owned host name to the pool, with no type check at all. But
//!   a function bounded on std's trait then cannot call spool's sockets,
//!   and a type implementing only std's trait needs a second
//!   implementation: porting stops being a change of `use` lines.
//! * **spool's trait with a blanket implementation over std's**
//!   (`impl<T: std::net::ToSocketAddrs> ToSocketAddrs for T`): coherence
//!   then forbids any other implementation (`&str` and the rest implement
//!   std's trait, so theirs would overlap the blanket one), so the blanket
//!   implementation would need this same type check, behind a second
//!   trait that makes `.to_socket_addrs()` ambiguous (`E0034`) wherever
//!   both are imported.
//! * **Every conversion on the pool**, borrowing the address for the
//!   call (`unblock`'s scoped form): it needs `A: Sync`, which std's bound
//!   does not give; its wait is shielded, so a cancellation would no
//!   longer end a slow lookup; and every literal would pay a round trip to
//!   another thread.
//!
//! # Why the type check is sound
//! [`TypeId::of`](std::any::TypeId::of) needs `'static`, and `&'a str`
//! is not. [`typeid::of`] (dtolnay's `typeid` crate, which erased-serde
//! also uses) gives the `TypeId` of a type with every lifetime in it
//! replaced by `'static`. So when `typeid::of::<A>()` equals `typeid::of` of
//! `&'a str`, `A` is `&'x str` for *some* lifetime `'x` — equality says
//! nothing about which. [`view`] never needs to know: it is only asked for
//! a `&'a T` where every lifetime in `T` is the `'a` of the borrow of the
//! address (`&'a &'a str`, `&'a (&'a str, u16)`, ...). The borrow
//! `&'a A` exists, so `A: 'a`, so `'x` outlives `'a`; and each `T` is
//! covariant in its lifetimes (shared references, tuples, `str`,
//! `String`). The view is therefore a shortening of the real type, one
//! that safe code could write with a coercion if it knew `A`: a lifetime
//! is never extended, and nothing is written through the view. The text
//! it lends lives no longer than the borrow of the address, and what
//! reaches the pool is an owned `String`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::vec;

use spool_runtime::trace::WaitReason;

use crate::unblock::run_abandoning;

/// std's [`std::net::ToSocketAddrs`], re-exported: the bound every socket
/// constructor and `connect`/`send_to` of [`spool::net`](crate::net)
/// takes, so code generic over std's trait calls them unchanged.
///
/// spool's sockets look at the address they are given before converting
/// it. A numeric address (`"127.0.0.1:80"`, `("::1", 80)`, a
/// [`SocketAddr`], a slice of them) converts in place. A host name given
/// as `&str`, `String`, `(&str, u16)` or `(String, u16)` (or a reference
/// to one) is looked up on spool's pool of OS threads, so a slow name
/// server parks only the calling green thread, never its worker; the
/// lookup is a cancellation point. Any other type — one of yours that
/// implements this trait — has its `to_socket_addrs` called in the
/// calling green thread: if it does a DNS lookup itself, that blocks the
/// worker, as any blocking std call does inside a green thread. Resolve
/// such addresses with [`lookup_host`] (or [`unblock`](crate::unblock()))
/// and pass the result.
///
/// Calling `to_socket_addrs` yourself is std's method: a host name is
/// looked up on the calling thread. [`lookup_host`] is the same
/// conversion with the lookup off the worker.
///
/// ```
/// use spool::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
///
/// // Written against std's trait; only the `use` line changed.
/// fn connect_any<A: ToSocketAddrs>(addr: A) -> std::io::Result<TcpStream> {
///     TcpStream::connect(addr)
/// }
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let port = listener.local_addr()?.port();
/// connect_any(("127.0.0.1", port))?; // parsed in place
/// connect_any(("localhost", port))?; // looked up on the pool
/// let addrs: Vec<SocketAddr> = ("127.0.0.1", port).to_socket_addrs()?.collect();
/// assert_eq!(addrs, [listener.local_addr()?]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(inline)]
pub use std::net::ToSocketAddrs;

/// Converts `addr` to socket addresses, as
/// [`to_socket_addrs`](ToSocketAddrs::to_socket_addrs) does, with a host
/// name looked up on spool's pool of OS threads (std's resolver, the
/// system's `getaddrinfo`), so a slow name server parks only the calling
/// green thread, never its worker.
///
/// Numeric addresses are parsed in place, with no trip to the pool. A
/// string that is not `"host:port"` fails as std's does, with an error of
/// kind [`InvalidInput`](io::ErrorKind::InvalidInput), and so does a
/// lookup that finds nothing. See [`ToSocketAddrs`] for which types are
/// looked up off the worker.
///
/// A lookup is a cancellation point (see
/// [Cancellation](crate::net#cancellation)): a cancelled caller (a
/// [`timeout`](crate::time::timeout) around a lookup whose name server
/// does not answer) unwinds at once, and the lookup, which cannot be
/// interrupted, finishes on its pool thread and is dropped (see
/// [`unblock_abandon`](crate::unblock_abandon)). While the caller is
/// already unwinding and cancelled, the lookup is waited for. Thread dumps
/// show the wait as "name resolution".
///
/// ```
/// use spool::net::{lookup_host, SocketAddr};
///
/// let numeric: Vec<SocketAddr> = lookup_host("127.0.0.1:8080")?.collect();
/// assert_eq!(numeric, ["127.0.0.1:8080".parse().unwrap()]);
///
/// // A name: looked up on spool's blocking pool ("localhost" resolves
/// // from /etc/hosts, without a network).
/// let local = spool::run(|| lookup_host(("localhost", 80)))?;
/// assert!(local.into_iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn lookup_host<A: ToSocketAddrs>(addr: A) -> io::Result<vec::IntoIter<SocketAddr>> {
    resolve(&addr).map(Vec::into_iter)
}

/// Every address `addr` converts to: a string form parsed in place or
/// looked up on the pool, any other type converted where it is (see the
/// top of this file).
#[track_caller]
pub(crate) fn resolve<A: ToSocketAddrs>(addr: &A) -> io::Result<Vec<SocketAddr>> {
    match text_of(addr) {
        Some(Text::Joined(text)) => resolve_joined(text),
        Some(Text::Split(host, port)) => resolve_split(host, port),
        None => Ok(addr.to_socket_addrs()?.collect()),
    }
}

/// The text of a string-form address, borrowed from it.
#[derive(Debug, PartialEq)]
enum Text<'a> {
    /// `"host:port"`, from a `&str` or `String`.
    Joined(&'a str),
    /// A host and a port, from a `(&str, u16)` or `(String, u16)`.
    Split(&'a str, u16),
}

/// The text of `addr` if its type is one of std's string forms or a
/// reference to one; `None` for every other type.
fn text_of<'a, A>(addr: &'a A) -> Option<Text<'a>> {
    // SAFETY: each target type given to `view` below names no lifetime
    // but `'a`, the borrow of `addr`, and is covariant in it (shared
    // references, a tuple, `String`), as `view` requires.
    unsafe {
        if let Some(text) = view::<A, &'a str>(addr) {
            return Some(Text::Joined(text));
        }
        if let Some(text) = view::<A, &'a &'a str>(addr) {
            return Some(Text::Joined(text));
        }
        if let Some(text) = view::<A, String>(addr) {
            return Some(Text::Joined(text));
        }
        if let Some(text) = view::<A, &'a String>(addr) {
            return Some(Text::Joined(text));
        }
        if let Some(&(host, port)) = view::<A, (&'a str, u16)>(addr) {
            return Some(Text::Split(host, port));
        }
        if let Some(&&(host, port)) = view::<A, &'a (&'a str, u16)>(addr) {
            return Some(Text::Split(host, port));
        }
        if let Some((host, port)) = view::<A, (String, u16)>(addr) {
            return Some(Text::Split(host, *port));
        }
        if let Some((host, port)) = view::<A, &'a (String, u16)>(addr) {
            return Some(Text::Split(host, *port));
        }
    }
    None
}

/// `addr` seen as a `&'a T`, if `A` is `T` up to its lifetimes.
///
/// # Safety
/// Every lifetime `T` names must be `'a` (or shorter), and `T` must be
/// covariant in it. Then, if `A` equals `T` up to lifetimes, `A`'s own
/// lifetimes outlive `'a` (the borrow `&'a A` implies `A: 'a`) and
/// `&'a A` coerces to `&'a T`: the view only shortens lifetimes (see "Why
/// the type check is sound" at the top of this file). A `T` naming a
/// longer lifetime (`&'static str`) would extend the borrow of `A`'s
/// contents; one contravariant in `'a` (`fn(&'a str)`) would let a shorter
/// borrow in.
unsafe fn view<'a, A, T: 'a>(addr: &'a A) -> Option<&'a T> {
    if typeid::of::<A>() != typeid::of::<T>() {
        return None;
    }
    let ptr = (addr as *const A).cast::<T>();
    // SAFETY: the ids are equal, so `A` is `T` up to lifetimes: the same
    // layout and validity, and `ptr` points to a valid, aligned value of
    // it for `'a`. The caller guarantees (see `# Safety`) that `&'a T` is
    // a subtype of `&'a A`, so reading it as one extends nothing.
    Some(unsafe { &*ptr })
}

/// A `"host:port"` string, as std's `str` implementation reads it.
#[track_caller]
fn resolve_joined(text: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    // Split as std does ("host:port", the port after the last colon),
    // with std's error kinds, so a malformed string fails without a trip
    // to the pool.
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port value"))?;
    look_up(host, port)
}

/// A host and a port, as std's `(&str, u16)` implementation reads them.
#[track_caller]
fn resolve_split(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    // A numeric host needs no lookup (std parses these first too).
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    look_up(host, port)
}

/// Resolves `host` with std's resolver on the blocking pool, so the lookup
/// never blocks a worker, and a cancellation of the caller does not wait
/// for it.
#[track_caller]
fn look_up(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let host = host.to_owned();
    let lookup = move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(Iterator::collect::<Vec<_>>)
    };
    run_abandoning(lookup, WaitReason::Resolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    fn ours<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
        resolve(&addr)
    }

    fn std_<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
        addr.to_socket_addrs().map(Iterator::collect)
    }

    #[test]
    fn string_forms_are_recognized_with_their_text() {
        let text = String::from("10.1.2.3:80");
        let host = String::from("example.com");
        let joined = Some(Text::Joined("10.1.2.3:80"));
        let split = Some(Text::Split("example.com", 7));
        assert_eq!(text_of(&text.as_str()), joined);
        assert_eq!(text_of(&&text.as_str()), joined);
        assert_eq!(text_of(&text), joined);
        assert_eq!(text_of(&&text), joined);
        assert_eq!(text_of(&(host.as_str(), 7u16)), split);
        assert_eq!(text_of(&&(host.as_str(), 7u16)), split);
        assert_eq!(text_of(&(host.clone(), 7u16)), split);
        assert_eq!(text_of(&&(host.clone(), 7u16)), split);
        // A string that lives shorter than 'static is seen all the same.
        let local = format!("{host}:1");
        let borrowed: &str = &local;
        assert_eq!(text_of(&borrowed), Some(Text::Joined("example.com:1")));
    }

    #[test]
    fn other_types_are_not_string_forms() {
        let sa: SocketAddr = "10.1.2.3:80".parse().unwrap();
        let slice: &[SocketAddr] = &[sa];
        assert_eq!(text_of(&sa), None);
        assert_eq!(text_of(&&sa), None);
        assert_eq!(text_of(&(Ipv4Addr::LOCALHOST, 1)), None);
        assert_eq!(text_of(&slice), None);
        assert_eq!(text_of(&&&"a:1"), None);
        assert_eq!(text_of(&("a", 1u32)), None);
        assert_eq!(text_of(&(1u16, "a")), None);
        assert_eq!(text_of(&String::new().into_boxed_str()), None);
    }

    #[test]
    fn numeric_forms_match_std() {
        let v4 = Ipv4Addr::new(10, 1, 2, 3);
        let v6 = Ipv6Addr::LOCALHOST;
        let sa: SocketAddr = "10.1.2.3:80".parse().unwrap();
        let sa6: SocketAddr = "[::1]:443".parse().unwrap();
        let sv4 = SocketAddrV4::new(v4, 1);
        let sv6 = SocketAddrV6::new(v6, 2, 0, 0);
        assert_eq!(ours(sa).unwrap(), std_(sa).unwrap());
        assert_eq!(ours(sv4).unwrap(), std_(sv4).unwrap());
        assert_eq!(ours(sv6).unwrap(), std_(sv6).unwrap());
        assert_eq!(
            ours((IpAddr::V4(v4), 3)).unwrap(),
            std_((IpAddr::V4(v4), 3)).unwrap()
        );
        assert_eq!(ours((v4, 4)).unwrap(), std_((v4, 4)).unwrap());
        assert_eq!(ours((v6, 5)).unwrap(), std_((v6, 5)).unwrap());
        assert_eq!(
            ours(("10.1.2.3", 6)).unwrap(),
            std_(("10.1.2.3", 6)).unwrap()
        );
        assert_eq!(ours(("::1", 7)).unwrap(), std_(("::1", 7)).unwrap());
        assert_eq!(
            ours(("::1".to_string(), 8)).unwrap(),
            std_(("::1".to_string(), 8)).unwrap()
        );
        assert_eq!(ours("10.1.2.3:9").unwrap(), std_("10.1.2.3:9").unwrap());
        assert_eq!(ours("[::1]:10").unwrap(), std_("[::1]:10").unwrap());
        assert_eq!(
            ours("[::1]:11".to_string()).unwrap(),
            std_("[::1]:11".to_string()).unwrap()
        );
        let slice: &[SocketAddr] = &[sa, sa6];
        assert_eq!(ours(slice).unwrap(), std_(slice).unwrap());
        let nested: &&&SocketAddr = &&&sa;
        assert_eq!(ours(nested).unwrap(), vec![sa]);
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        for addrs in [
            ours("localhost:8080"),
            ours(("localhost", 8080)),
            ours(&("localhost".to_string(), 8080)),
            ours("localhost:8080".to_string()),
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
