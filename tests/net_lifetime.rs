//! Sockets that outlive the runtime that first watched them.
//!
//! A socket is registered with the worker of the first green thread that
//! waits on it. These tests drop that runtime while a green thread of
//! another runtime is parked on the socket, and check that the parked
//! thread still wakes when the socket becomes ready (a test that builds a
//! runtime per case, a listener made under one runtime and served by
//! another).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::Watchdog;
use spool::net::{TcpListener, TcpStream};
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(120);

/// A generous upper bound for anything that should take milliseconds: the
/// machine is shared and noisy, so only a lost wakeup should exceed it.
const SLOW: Duration = Duration::from_secs(10);

/// How long a green thread is given to reach its park.
const SETTLE: Duration = Duration::from_millis(50);

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Both ends of a loopback connection: (client, server).
fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(loopback()).expect("bind a loopback listener");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

fn one_worker() -> Runtime {
    Runtime::builder().workers(1).build().unwrap()
}

/// Makes a green thread of `runtime` park once in a read on `stream` (one
/// that times out), so the socket is registered with that runtime's worker.
fn watch_on(runtime: &Runtime, stream: &TcpStream) {
    runtime.run(|| {
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let err = (&*stream).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        stream.set_read_timeout(None).unwrap();
    });
}

/// Spawns on `runtime` a green thread that reads five bytes from `server`
/// (giving up after `SLOW`).
fn spawn_reader(
    runtime: &Runtime,
    server: TcpStream,
) -> spool::thread::JoinHandle<std::io::Result<[u8; 5]>> {
    runtime.spawn(move || {
        server.set_read_timeout(Some(SLOW))?;
        let mut buf = [0u8; 5];
        (&server).read_exact(&mut buf).map(|()| buf)
    })
}

fn expect_woken(reader: spool::thread::JoinHandle<std::io::Result<[u8; 5]>>, what: &str) {
    match reader.join().unwrap() {
        Ok(buf) => assert_eq!(&buf, b"wake!"),
        Err(e) => panic!(
            "{what}: the reader gave up ({e}) although data came right after the \
             runtime the socket was registered with shut down: its wakeup was lost"
        ),
    }
}

/// The reader parks while the socket is registered with a live worker of
/// `first`; then `first` is dropped, then data arrives.
#[test]
fn a_reader_parked_when_the_first_runtime_shuts_down_is_woken() {
    let _watchdog = Watchdog::new(
        "a_reader_parked_when_the_first_runtime_shuts_down_is_woken",
        LIMIT,
    );
    let first = one_worker();
    let second = one_worker();
    let (client, server) = connected_pair();
    watch_on(&first, &server);
    let reader = spawn_reader(&second, server);
    std::thread::sleep(SETTLE);
    drop(first);
    (&client).write_all(b"wake!").unwrap();
    expect_woken(reader, "read");
}

/// As above for a writer parked on a full send buffer.
#[test]
fn a_writer_parked_when_the_first_runtime_shuts_down_is_woken() {
    let _watchdog = Watchdog::new(
        "a_writer_parked_when_the_first_runtime_shuts_down_is_woken",
        LIMIT,
    );
    const LEN: usize = 16 << 20; // more than any loopback socket buffers
    let first = one_worker();
    let second = one_worker();
    let (mut client, server) = connected_pair();
    watch_on(&first, &server);
    let writer = second.spawn(move || {
        server.set_write_timeout(Some(SLOW))?;
        (&server).write_all(&vec![7u8; LEN])
    });
    std::thread::sleep(SETTLE);
    drop(first);
    let start = Instant::now();
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 16];
    client.set_read_timeout(Some(SLOW)).unwrap();
    while received < LEN {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) => panic!(
                "write: got {received} of {LEN} bytes, then {e} after {:?}: the writer \
                 parked on the full buffer was not woken when it drained",
                start.elapsed()
            ),
        }
    }
    if let Err(e) = writer.join().unwrap() {
        panic!("write: the writer gave up ({e}) although the reader drained the socket");
    }
}

/// As above for `accept` on a listener first served under `first`.
#[test]
fn an_accept_parked_when_the_first_runtime_shuts_down_is_woken() {
    let _watchdog = Watchdog::new(
        "an_accept_parked_when_the_first_runtime_shuts_down_is_woken",
        LIMIT,
    );
    let first = one_worker();
    let second = one_worker();
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    first.run(|| {
        let connector = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::net::TcpStream::connect(addr).unwrap()
        });
        // Parks (registering the listener with `first`) until the connect.
        listener.accept().unwrap();
        drop(connector.join().unwrap());
    });
    let acceptor = second.spawn(move || listener.accept().map(|(_, peer)| peer));
    std::thread::sleep(SETTLE);
    drop(first);
    let client = std::net::TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + SLOW;
    while !acceptor.is_finished() {
        assert!(
            Instant::now() < deadline,
            "accept: the acceptor parked on the listener was not woken by a \
             connection made after the runtime it was registered with shut down"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let peer = acceptor.join().unwrap().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
}

/// The reader starts waiting at about the moment `first` shuts down, in
/// every order: before the worker exits, while it exits, after.
#[test]
fn a_reader_racing_the_first_runtimes_shutdown_is_woken() {
    let _watchdog = Watchdog::new(
        "a_reader_racing_the_first_runtimes_shutdown_is_woken",
        LIMIT,
    );
    let second = one_worker();
    for round in 0..200u32 {
        let first = one_worker();
        let (client, server) = connected_pair();
        watch_on(&first, &server);
        let reader = spawn_reader(&second, server);
        // From 0 to about 200 µs: a thread spawn and an exit's worth.
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_micros(u64::from(round % 40) * 5) {
            std::hint::spin_loop();
        }
        drop(first);
        (&client).write_all(b"wake!").unwrap();
        expect_woken(reader, &format!("round {round}"));
    }
}
