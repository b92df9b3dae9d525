//! Addresses in `spool::net`: code written against std's
//! `std::net::ToSocketAddrs` bound ports by changing `use std::net` to
//! `use spool::net`; numeric addresses are converted in place, never on
//! the blocking pool; host names are still looked up there, as a
//! cancellation point recorded as "name resolution" in thread dumps.
//!
//! That literals bypass the pool is shown by events, not timings: with
//! the pool limited to one thread and that thread held by a job that
//! waits for the test, literal binds, connects and sends all complete,
//! while a host-name lookup stays queued until the test cancels it (see
//! `child_literals_bypass_a_blocked_pool`, run in a process of its own
//! because the pool's limit is read once per process).

use crate::common;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::cancel::{CancelScope, Cancelled};
use spool::net::{TcpListener, TcpStream, UdpSocket};
use spool::thread;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);

// Generic code as written against std: the bound is std's trait, and only
// the socket types come from spool.

fn listen_on<A: std::net::ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

fn connect_to<A: std::net::ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
    TcpStream::connect(addr)
}

fn udp_bind<A: std::net::ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
    UdpSocket::bind(addr)
}

fn udp_connect<A: std::net::ToSocketAddrs>(socket: &UdpSocket, addr: A) -> io::Result<()> {
    socket.connect(addr)
}

fn udp_send_to<A: std::net::ToSocketAddrs>(
    socket: &UdpSocket,
    buf: &[u8],
    addr: A,
) -> io::Result<usize> {
    socket.send_to(buf, addr)
}

/// The same, with the trait named through `spool::net` as ported code
/// names it: it is one trait, so either bound passes to either library.
fn through_spool_name<A: spool::net::ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
    let stream = connect_to(addr)?;
    Ok(stream)
}

/// Accepts one connection on `listener` and checks a byte goes through
/// `client`.
fn exchange(listener: &TcpListener, mut client: TcpStream) {
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"x").unwrap();
    let mut byte = [0];
    server.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
}

/// Receives one datagram on `socket` and checks it is `want`.
fn receive(socket: &UdpSocket, want: &[u8]) {
    let mut buf = [0; 16];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], want);
}

/// A type of the user's that implements only std's trait.
struct Backend {
    port: u16,
}

impl std::net::ToSocketAddrs for Backend {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(vec![SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))].into_iter())
    }
}

/// Ported code that implements the trait under spool's name: std's
/// sockets take it too.
struct Ported(SocketAddr);

impl spool::net::ToSocketAddrs for Ported {
    type Iter = std::option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(self.0).into_iter())
    }
}

rt_test! {
    // The borrowed forms are the point: `&&str`, `&(&str, u16)` and
    // `&&&SocketAddr` are address types of their own.
    #[allow(clippy::needless_borrows_for_generic_args)]
    fn generic_code_over_std_trait_connects_every_address_form() {
        let listener = listen_on("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let port = addr.port();
        let text = addr.to_string();
        let v4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let slice: &[SocketAddr] = &[addr];
        exchange(&listener, connect_to(addr).unwrap());
        exchange(&listener, connect_to(v4).unwrap());
        exchange(&listener, connect_to((Ipv4Addr::LOCALHOST, port)).unwrap());
        exchange(&listener, connect_to((std::net::IpAddr::from(Ipv4Addr::LOCALHOST), port)).unwrap());
        exchange(&listener, connect_to(text.as_str()).unwrap());
        exchange(&listener, connect_to(&text.as_str()).unwrap());
        exchange(&listener, connect_to(text.clone()).unwrap());
        exchange(&listener, connect_to(&text).unwrap());
        exchange(&listener, connect_to(("127.0.0.1", port)).unwrap());
        exchange(&listener, connect_to(&("127.0.0.1", port)).unwrap());
        exchange(&listener, connect_to(("127.0.0.1".to_string(), port)).unwrap());
        exchange(&listener, connect_to(&("127.0.0.1".to_string(), port)).unwrap());
        exchange(&listener, connect_to(slice).unwrap());
        exchange(&listener, connect_to(&&&addr).unwrap());
        exchange(&listener, through_spool_name(addr).unwrap());
    }

    fn generic_code_over_std_trait_binds_connects_and_sends_udp() {
        let receiver = udp_bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let sender = udp_bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        udp_send_to(&sender, b"text", to.to_string()).unwrap();
        receive(&receiver, b"text");
        udp_send_to(&sender, b"pair", ("127.0.0.1", to.port())).unwrap();
        receive(&receiver, b"pair");
        udp_send_to(&sender, b"addr", to).unwrap();
        receive(&receiver, b"addr");
        udp_connect(&sender, format!("127.0.0.1:{}", to.port())).unwrap();
        sender.send(b"connected").unwrap();
        receive(&receiver, b"connected");
    }

    fn host_names_still_resolve() {
        let listener = listen_on("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // "localhost" may resolve to ::1 first, where nobody listens;
        // connect tries each address in turn, as std's does.
        exchange(&listener, connect_to(("localhost", port)).unwrap());
        exchange(&listener, connect_to(format!("localhost:{port}")).unwrap());
        exchange(&listener, connect_to(&("localhost".to_string(), port)).unwrap());
        let socket = udp_bind("localhost:0").unwrap();
        assert!(socket.local_addr().unwrap().ip().is_loopback());
        let resolved: Vec<SocketAddr> = spool::net::lookup_host(("localhost", port)).unwrap().collect();
        assert!(!resolved.is_empty());
        assert!(resolved.iter().all(|a| a.ip().is_loopback() && a.port() == port), "{resolved:?}");
        // A malformed address fails as std's does, without a lookup.
        for bad in ["localhost", "localhost:http", "localhost:99999"] {
            let err = connect_to(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}: {err}");
        }
    }

    fn a_type_implementing_only_std_trait_works() {
        let listener = listen_on("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        exchange(&listener, connect_to(Backend { port }).unwrap());
        exchange(&listener, TcpStream::connect(Backend { port }).unwrap());
        exchange(&listener, TcpStream::connect(&Backend { port }).unwrap());
        let socket = UdpSocket::bind(Backend { port: 0 }).unwrap();
        assert!(socket.local_addr().unwrap().ip().is_loopback());
        // Implemented under spool's name, accepted by std's sockets too.
        let addr = listener.local_addr().unwrap();
        let std_stream = std::net::TcpStream::connect(Ported(addr)).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, std_stream.local_addr().unwrap());
        exchange(&listener, TcpStream::connect(Ported(addr)).unwrap());
    }

    fn a_lookup_is_a_cancellation_point_and_a_literal_is_not() {
        let scope = CancelScope::new();
        scope.cancel();
        // A literal needs no wait: the bind completes in a cancelled scope.
        for literal in ["127.0.0.1:0".to_string(), "[::1]:0".to_string()] {
            let bound = scope.run(|| UdpSocket::bind(literal.as_str()).map(|_| ()));
            assert!(bound.is_some(), "a literal bind has no cancellation point");
        }
        let bound = scope.run(|| UdpSocket::bind(("127.0.0.1", 0)).map(|_| ()));
        assert!(bound.is_some(), "a literal bind has no cancellation point");
        // A host name goes to the pool, whose entry is a cancellation point.
        let looked_up = scope.run(|| UdpSocket::bind("localhost:0"));
        assert!(looked_up.is_none(), "a lookup in a cancelled scope unwinds");
    }
}

/// With the pool limited to one thread and that thread held, literal
/// addresses still bind, connect and send, and a host-name lookup waits,
/// recorded as "name resolution", until it is cancelled.
#[test]
fn child_literals_bypass_a_blocked_pool() {
    if !common::is_child("child_literals_bypass_a_blocked_pool") {
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        // Hold the pool's only thread until `release` is set (or long after
        // `run_child` has given up on this process, were a literal stuck
        // behind it).
        let (started, release) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let holder = {
            let (started, release) = (started.clone(), release.clone());
            thread::spawn(move || {
                spool::unblock(move || {
                    started.store(true, Ordering::SeqCst);
                    let give_up = Instant::now() + Duration::from_secs(300);
                    while !release.load(Ordering::SeqCst) && Instant::now() < give_up {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
        };
        while !started.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }

        // Every literal form works while the pool can run nothing.
        let listener = listen_on("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        exchange(&listener, connect_to(format!("127.0.0.1:{port}")).unwrap());
        exchange(&listener, connect_to(("127.0.0.1", port)).unwrap());
        exchange(
            &listener,
            connect_to(&("127.0.0.1".to_string(), port)).unwrap(),
        );
        exchange(&listener, connect_to(Backend { port }).unwrap());
        let receiver = udp_bind(("127.0.0.1", 0)).unwrap();
        let to = receiver.local_addr().unwrap();
        let sender = udp_bind("127.0.0.1:0").unwrap();
        udp_send_to(&sender, b"literal", to.to_string().as_str()).unwrap();
        receive(&receiver, b"literal");
        udp_connect(&sender, ("127.0.0.1".to_string(), to.port())).unwrap();

        // A host name queues behind the held job, as a resolution wait.
        let lookup = thread::spawn(move || connect_to(("localhost", port)));
        let id = lookup.thread().id();
        loop {
            let dump = spool::debug::dump();
            let me = dump.threads().find(|t| t.id() == id);
            if me.is_some_and(|t| t.is_waiting() && t.wait_kind() == Some("name resolution")) {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !lookup.is_finished(),
            "the lookup ran although the pool is held"
        );
        // The lookup is a cancellation point: cancelled, it unwinds at once
        // although its job has not even started.
        lookup.cancel();
        let payload = lookup.join().unwrap_err();
        assert!(Cancelled::from_payload(&payload).is_some());

        release.store(true, Ordering::SeqCst);
        holder.join().unwrap();
        exchange(&listener, connect_to(("localhost", port)).unwrap());
    });
}

#[test]
fn literals_bypass_a_blocked_pool() {
    let _watchdog = common::Watchdog::new("literals_bypass_a_blocked_pool", LIMIT);
    let out = common::run_child(
        "child_literals_bypass_a_blocked_pool",
        &[("SPOOL_UNBLOCK_THREADS", "1")],
    );
    assert!(
        out.status.success(),
        "child failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    // The scenario ran (a misspelt name would run nothing and pass).
    assert!(out.stdout.contains("1 passed"), "{}", out.stdout);
}
