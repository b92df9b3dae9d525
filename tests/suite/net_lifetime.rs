//! Descriptors across runtimes: sockets that outlive the runtime that first
//! watched them, and what a runtime or socket reports when no descriptor is
//! left.
//!
//! A socket is registered with the worker of the first green thread that
//! waits on it. The first tests drop that runtime while a green thread of
//! another runtime is parked on the socket, and check that the parked
//! thread still wakes when the socket becomes ready (a test that builds a
//! runtime per case, a listener made under one runtime and served by
//! another).
//!
//! `child_*` tests do nothing unless the parent test re-executes this
//! binary to run exactly them (see `common::run_child`).

use crate::common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{is_child, run_child, Watchdog};
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

// ---------------------------------------------------------------------------
// Descriptor exhaustion
// ---------------------------------------------------------------------------

/// The OS error code of `e`, looking through spool's description of it
/// (the idiom spool's documentation gives).
fn os_error_code(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()?
            .source()?
            .downcast_ref::<io::Error>()?
            .raw_os_error()
    })
}

/// Checks that `e` names the open-file limit and its fix and keeps the OS
/// error as std reports it: same kind, `EMFILE` reachable.
fn assert_describes_emfile(e: &io::Error, what: &str) {
    let std_error = io::Error::from_raw_os_error(libc::EMFILE);
    assert_eq!(e.kind(), std_error.kind(), "{what}: {e}");
    assert_eq!(
        os_error_code(e),
        Some(libc::EMFILE),
        "{what}: the OS error is lost: {e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("RLIMIT_NOFILE") && text.contains(&std_error.to_string()),
        "{what}: the message should name the limit and the OS error: {text}"
    );
}

#[test]
fn exhausted_descriptors_are_reported_with_the_os_error() {
    let out = run_child("child_exhausted_descriptors", &[]);
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "child failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

#[test]
fn child_exhausted_descriptors() {
    if !is_child("child_exhausted_descriptors") {
        return;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit.rlim_cur = 64;
    // SAFETY: setrlimit reads the rlimit we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    // Use up every descriptor below the limit.
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
    }
    let e = Runtime::builder().workers(1).build().unwrap_err();
    assert_describes_emfile(&e, "Runtime::build");
    // The global runtime reports the same error each time it is asked.
    for _ in 0..2 {
        let e = Runtime::builder().workers(1).build_global().unwrap_err();
        assert_describes_emfile(&e, "Runtime::build_global");
    }
    let e = TcpListener::bind(loopback()).unwrap_err();
    assert_describes_emfile(&e, "TcpListener::bind");
    drop(held);
}
