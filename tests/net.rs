//! Behaviour of `spool::net` over loopback: what a program ported from
//! `std::net` relies on.
//!
//! Scenarios that need a process of their own (10,000 client connections,
//! a lowered descriptor limit, the default `SIGPIPE` action, counting
//! descriptors without other tests opening some at the same time) are
//! `child_*` tests: they do nothing unless the parent test re-executes this
//! binary to run exactly them (see `common::run_child`).

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{is_child, run_child, Watchdog};
use spool::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use spool::sync::Barrier;
use spool::thread;

const LIMIT: Duration = Duration::from_secs(120);

/// A generous upper bound for anything that should take milliseconds: the
/// machine is shared and noisy, so only a hang should exceed it.
const SLOW: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A listener on a free loopback port.
fn listener() -> TcpListener {
    TcpListener::bind(loopback()).expect("bind a loopback listener")
}

/// Both ends of a loopback connection: (client, server).
fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = listener();
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// `len` bytes that differ with `seed` and do not repeat with a short
/// period, so a lost, duplicated or reordered chunk shows.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_mul(7).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// Raises the soft descriptor limit to the hard one; returns the new limit.
fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the rlimit we pass.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
    limit.rlim_cur
}

/// Sets the soft descriptor limit to `soft`.
fn lower_nofile_limit(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit.rlim_cur = soft;
    // SAFETY: setrlimit reads the rlimit we pass.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// Number of descriptors this process has open.
fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Runs the child scenario `test` and asserts it ran and passed.
#[track_caller]
fn assert_child_passes(test: &str, env: &[(&str, &str)]) -> common::ChildOutput {
    let out = run_child(test, env);
    // A filter that matched nothing would also exit successfully.
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "child `{test}` with {env:?} failed ({}, signal {:?}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        out.signal(),
        out.stdout,
        out.stderr
    );
    out
}

/// Echoes everything `stream` sends until it closes its write half.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(()),
            n => stream.write_all(&buf[..n])?,
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Ten thousand connections, one green thread each
// ---------------------------------------------------------------------------

const CONNECTIONS: usize = 10_000;
/// Descriptors beyond the connections that each process needs (runtime,
/// listener, test harness, stdio).
const SPARE_FDS: u64 = 100;

/// Server-side figures of the 10,000-connection test.
#[derive(Default)]
struct ServerCounts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    accept_errors: AtomicUsize,
}

#[test]
fn ten_thousand_connections_each_served_by_its_own_green_thread() {
    let _watchdog = Watchdog::new(
        "ten_thousand_connections_each_served_by_its_own_green_thread",
        LIMIT,
    );
    let limit = raise_nofile_limit();
    if limit < CONNECTIONS as u64 + SPARE_FDS {
        println!(
            "skipped: RLIMIT_NOFILE hard limit is {limit}; {} connections need {}",
            CONNECTIONS,
            CONNECTIONS as u64 + SPARE_FDS
        );
        return;
    }

    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(ServerCounts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (counts, stop) = (Arc::clone(&counts), Arc::clone(&stop));
        thread::spawn(move || loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    counts.accepted.fetch_add(1, Ordering::SeqCst);
                    let counts = Arc::clone(&counts);
                    thread::spawn(move || {
                        let now = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
                        counts.max_open.fetch_max(now, Ordering::SeqCst);
                        let result = echo(stream);
                        counts.open.fetch_sub(1, Ordering::SeqCst);
                        result
                    });
                }
                Err(e) => {
                    counts.accept_errors.fetch_add(1, Ordering::SeqCst);
                    eprintln!("accept: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };

    let start = Instant::now();
    let out = assert_child_passes(
        "child_ten_thousand_clients",
        &[("SPOOL_NET_ADDR", &addr.to_string())],
    );
    if let Some(at) = out.stdout.find("clients:") {
        println!("{}", out.stdout[at..].lines().next().unwrap_or(""));
    }
    println!("10,000 connections served in {:?}", start.elapsed());

    // The child's exit closed every client; each handler sees end of stream.
    let wait_start = Instant::now();
    while counts.open.load(Ordering::SeqCst) != 0 {
        assert!(
            wait_start.elapsed() < Duration::from_secs(60),
            "{} server handlers still open a minute after the clients exited",
            counts.open.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    drop(std::net::TcpStream::connect(addr).expect("wake the accept loop"));
    server.join().expect("accept loop");

    assert_eq!(counts.accept_errors.load(Ordering::SeqCst), 0);
    assert_eq!(counts.accepted.load(Ordering::SeqCst), CONNECTIONS);
    assert_eq!(
        counts.max_open.load(Ordering::SeqCst),
        CONNECTIONS,
        "the server should have held all connections open at once"
    );
}

#[test]
fn child_ten_thousand_clients() {
    if !is_child("child_ten_thousand_clients") {
        return;
    }
    raise_nofile_limit();
    let addr: SocketAddr = std::env::var("SPOOL_NET_ADDR")
        .expect("SPOOL_NET_ADDR")
        .parse()
        .expect("SPOOL_NET_ADDR is an address");
    let start = Instant::now();
    let failures: Vec<String> = spool::run(|| {
        let all_open = Arc::new(Barrier::new(CONNECTIONS));
        let all_echoed = Arc::new(Barrier::new(CONNECTIONS));
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let (all_open, all_echoed) = (Arc::clone(&all_open), Arc::clone(&all_echoed));
                thread::spawn(move || -> Result<(), String> {
                    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {i}: {e}"));
                    // Every client waits at both barriers, failed or not,
                    // so one failure cannot hang the others.
                    all_open.wait();
                    let result = stream.and_then(|mut stream| {
                        let message = format!("message from client {i:05}\n");
                        stream
                            .write_all(message.as_bytes())
                            .map_err(|e| format!("write {i}: {e}"))?;
                        let mut back = vec![0u8; message.len()];
                        stream
                            .read_exact(&mut back)
                            .map_err(|e| format!("read {i}: {e}"))?;
                        if back != message.as_bytes() {
                            return Err(format!("client {i}: echo differs"));
                        }
                        Ok(stream)
                    });
                    // Connections stay open until every client has its echo,
                    // so the server holds all of them at once.
                    all_echoed.wait();
                    result.map(drop)
                })
            })
            .collect();
        clients
            .into_iter()
            .filter_map(|client| match client.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("a client panicked".to_string()),
            })
            .collect()
    });
    println!(
        "clients: {CONNECTIONS} connected, echoed and closed in {:?}",
        start.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {CONNECTIONS} clients failed; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

// ---------------------------------------------------------------------------
// 2. Reading and writing one connection at once from two green threads
// ---------------------------------------------------------------------------

const BULK: usize = 3 << 20;

/// Writes `data` through one clone while another clone reads the peer's
/// `expected` bytes, in two green threads.
fn full_duplex(stream: TcpStream, data: Vec<u8>, expected: Vec<u8>) -> io::Result<()> {
    let mut reader = stream.try_clone()?;
    let mut writer = stream;
    let read = thread::spawn(move || -> io::Result<()> {
        let mut got = vec![0u8; expected.len()];
        reader.read_exact(&mut got)?;
        assert!(got == expected, "bytes read differ from the bytes written");
        // The peer closes its write half after its data: nothing more.
        assert_eq!(reader.read(&mut [0u8; 16])?, 0);
        Ok(())
    });
    let write = thread::spawn(move || -> io::Result<()> {
        // Chunks of odd sizes, so reads and writes do not line up.
        for chunk in data.chunks(65_521) {
            writer.write_all(chunk)?;
        }
        writer.shutdown(Shutdown::Write)
    });
    write.join().expect("writer")?;
    read.join().expect("reader")?;
    Ok(())
}

#[test]
fn concurrent_read_and_write_on_a_cloned_stream() {
    let _watchdog = Watchdog::new("concurrent_read_and_write_on_a_cloned_stream", LIMIT);
    spool::run(|| {
        let (client, server) = connected_pair();
        let (up, down) = (pattern(1, BULK), pattern(2, BULK + 12_345));
        let server = {
            let (up, down) = (up.clone(), down.clone());
            thread::spawn(move || full_duplex(server, down, up))
        };
        // Both sides write megabytes before reading any: only concurrent
        // reading and writing of the same connection gets through.
        full_duplex(client, up, down).expect("client side");
        server.join().expect("server").expect("server side");
    });
}

// ---------------------------------------------------------------------------
// 3. Timeouts
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_took_about(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout,
        "gave up after {elapsed:?}, before the {timeout:?} timeout"
    );
    assert!(
        elapsed < timeout + SLOW,
        "took {elapsed:?} for a {timeout:?} timeout"
    );
}

#[test]
fn tcp_read_timeout_fails_with_would_block() {
    let _watchdog = Watchdog::new("tcp_read_timeout_fails_with_would_block", LIMIT);
    let check = || {
        let (client, mut server) = connected_pair();
        let timeout = Duration::from_millis(150);
        assert_eq!(server.read_timeout().unwrap(), None);
        server.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(server.read_timeout().unwrap(), Some(timeout));
        let start = Instant::now();
        let err = server.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        assert_took_about(start.elapsed(), timeout);
        // A timeout set through one clone applies to the others (as std's,
        // kept by the kernel per open file).
        let clone = server.try_clone().unwrap();
        assert_eq!(clone.read_timeout().unwrap(), Some(timeout));
        // The connection still works after a timeout.
        (&client).write_all(b"late").unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"late");
        server.set_read_timeout(None).unwrap();
        assert_eq!(server.read_timeout().unwrap(), None);
    };
    spool::run(check);
    check();
}

#[test]
fn zero_timeouts_are_invalid_input() {
    let _watchdog = Watchdog::new("zero_timeouts_are_invalid_input", LIMIT);
    let (client, _server) = connected_pair();
    for result in [
        client.set_read_timeout(Some(Duration::ZERO)),
        client.set_write_timeout(Some(Duration::ZERO)),
    ] {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let udp = UdpSocket::bind(loopback()).unwrap();
    assert_eq!(
        udp.set_read_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let addr = listener().local_addr().unwrap();
    let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn tcp_write_timeout_when_the_peer_never_reads() {
    let _watchdog = Watchdog::new("tcp_write_timeout_when_the_peer_never_reads", LIMIT);
    spool::run(|| {
        let (mut client, _server) = connected_pair();
        let timeout = Duration::from_millis(150);
        client.set_write_timeout(Some(timeout)).unwrap();
        assert_eq!(client.write_timeout().unwrap(), Some(timeout));
        let chunk = vec![7u8; 1 << 16];
        let mut written = 0usize;
        let err = loop {
            let start = Instant::now();
            match client.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break (e, start.elapsed()),
            }
            assert!(
                written < 1 << 30,
                "wrote 1 GiB to a peer that never reads without a timeout"
            );
        };
        assert_eq!(err.0.kind(), ErrorKind::WouldBlock, "{}", err.0);
        assert_took_about(err.1, timeout);
        assert!(written > 0);
    });
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let _watchdog = Watchdog::new("connect_to_a_closed_port_is_refused", LIMIT);
    // A port that was free a moment ago; nothing listens on it now.
    let addr = listener().local_addr().unwrap();
    let check = || {
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let err = TcpStream::connect_timeout(&addr, SLOW).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    };
    spool::run(check);
    check();
    // And connect_timeout to a listening port connects.
    let listener = listener();
    let stream = TcpStream::connect_timeout(&listener.local_addr().unwrap(), SLOW).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
}

#[test]
fn connect_timeout_to_a_full_listen_queue_times_out() {
    let _watchdog = Watchdog::new("connect_timeout_to_a_full_listen_queue_times_out", LIMIT);
    // A listener that never accepts, with the shortest listen queue: once
    // the queue is full, the kernel drops further SYNs and the connecting
    // side waits.
    let full = std::net::TcpListener::bind(loopback()).unwrap();
    // SAFETY: listen(2) again on a listening socket we own only changes
    // its queue length.
    let rc = unsafe { libc::listen(full.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen: {}", io::Error::last_os_error());
    let addr = full.local_addr().unwrap();
    let check = || {
        let timeout = Duration::from_millis(200);
        let mut held = Vec::new();
        let (err, elapsed) = loop {
            assert!(
                held.len() < 20,
                "{} connections to a listener with a full queue",
                held.len()
            );
            let start = Instant::now();
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => held.push(stream),
                Err(e) => break (e, start.elapsed()),
            }
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert_took_about(elapsed, timeout);
    };
    spool::run(check);
    check();
}

#[test]
fn udp_recv_timeout_fails_with_would_block() {
    let _watchdog = Watchdog::new("udp_recv_timeout_fails_with_would_block", LIMIT);
    let check = || {
        let socket = UdpSocket::bind(loopback()).unwrap();
        let timeout = Duration::from_millis(150);
        socket.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(socket.read_timeout().unwrap(), Some(timeout));
        let start = Instant::now();
        let err = socket.recv_from(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        assert_took_about(start.elapsed(), timeout);
    };
    spool::run(check);
    check();
}

// ---------------------------------------------------------------------------
// 4. Out of descriptors: accept fails, the server carries on
// ---------------------------------------------------------------------------

/// The child server's soft descriptor limit.
const SMALL_NOFILE: u64 = 64;

/// Reads what `control` has sent so far (it has a short read timeout).
fn drain(control: &mut std::net::TcpStream, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match control.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return,
            Err(e) => panic!("reading the control connection: {e}"),
        }
    }
}

/// Reads the server's greeting on `stream` and checks one echo.
#[track_caller]
fn assert_served(stream: &mut std::net::TcpStream, timeout: Duration) {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut hello = [0u8; 6];
    stream
        .read_exact(&mut hello)
        .expect("the server should greet this connection");
    assert_eq!(&hello, b"hello\n");
    stream.write_all(b"ping\n").unwrap();
    let mut back = [0u8; 5];
    stream.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"ping\n");
}

#[test]
fn accept_reports_running_out_of_descriptors_and_the_server_recovers() {
    let _watchdog = Watchdog::new(
        "accept_reports_running_out_of_descriptors_and_the_server_recovers",
        LIMIT,
    );
    // The clients live in this process, so only the server (the child,
    // with a small limit) can run out of descriptors.
    let port = std::net::TcpListener::bind(loopback())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let child = std::thread::spawn(move || {
        run_child(
            "child_emfile_server",
            &[("SPOOL_NET_PORT", &port.to_string())],
        )
    });

    let start = Instant::now();
    let mut control = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the child server did not start listening: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    control
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut ready = [0u8; 6];
    control.read_exact(&mut ready).expect("ready line");
    assert_eq!(&ready, b"ready\n");
    control
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();

    // Open connections until the server cannot accept one.
    let mut served = Vec::new();
    let mut log = Vec::new();
    let mut queued = loop {
        assert!(
            served.len() < 2 * SMALL_NOFILE as usize,
            "the server accepted {} connections with a limit of {SMALL_NOFILE} descriptors",
            served.len()
        );
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the child");
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let waiting = Instant::now();
        let greeted = loop {
            let mut hello = [0u8; 6];
            match stream.read(&mut hello) {
                // The greeting is one small segment.
                Ok(6) => break true,
                Ok(n) => panic!("unexpected greeting of {n} bytes"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("waiting for the greeting: {e}"),
            }
            drain(&mut control, &mut log);
            if String::from_utf8_lossy(&log).contains("accept error:") {
                break false;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "connection {} was neither greeted nor refused by accept",
                served.len()
            );
        };
        if greeted {
            served.push(stream);
        } else {
            break vec![stream];
        }
    };
    let log_text = String::from_utf8_lossy(&log).into_owned();
    let error_line = log_text
        .lines()
        .find(|l| l.starts_with("accept error:"))
        .expect("an accept error line");
    assert!(
        error_line.contains("RLIMIT_NOFILE"),
        "the accept error should name the limit: {error_line}"
    );
    println!(
        "server accepted {} connections, then: {error_line}",
        served.len()
    );
    assert!(
        served.len() > 10,
        "only {} connections before EMFILE",
        served.len()
    );

    // Two more wait in the listen queue; then free five descriptors.
    for _ in 0..2 {
        queued.push(std::net::TcpStream::connect(addr).expect("connect while the server is full"));
    }
    served.drain(..5);
    // The queued connections and a new one are all served now.
    for stream in &mut queued {
        assert_served(stream, Duration::from_secs(30));
    }
    let mut fresh = std::net::TcpStream::connect(addr).unwrap();
    assert_served(&mut fresh, Duration::from_secs(30));
    // The connections accepted before the limit still work.
    for stream in &mut served[..3] {
        stream.write_all(b"ping\n").unwrap();
        let mut back = [0u8; 5];
        stream.set_read_timeout(Some(SLOW)).unwrap();
        stream.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping\n");
    }

    drop((served, queued, fresh));
    drop(control);
    let out = child.join().expect("run_child");
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "child server failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

#[test]
fn child_emfile_server() {
    if !is_child("child_emfile_server") {
        return;
    }
    let port: u16 = std::env::var("SPOOL_NET_PORT")
        .expect("SPOOL_NET_PORT")
        .parse()
        .expect("SPOOL_NET_PORT is a port");
    let errors = spool::run(|| {
        lower_nofile_limit(SMALL_NOFILE);
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .expect("bind the port the parent picked");
        // The first connection is the parent's control connection: the
        // server reports its accept errors there, and ends when it closes.
        let (control, _) = listener.accept().expect("accept the control connection");
        (&control).write_all(b"ready\n").unwrap();
        let control = Arc::new(Mutex::new(control));
        let errors = Arc::new(Mutex::new(Vec::<io::Error>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (control, errors, stop) =
                (Arc::clone(&control), Arc::clone(&errors), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            thread::spawn(move || {
                                stream.write_all(b"hello\n")?;
                                echo(stream)
                            });
                        }
                        Err(e) => {
                            // What a server does: log, back off, carry on.
                            let _ = writeln!(control.lock().unwrap(), "accept error: {e}");
                            errors.lock().unwrap().push(e);
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            })
        };
        // Wait for the parent to close the control connection.
        let reader = control.lock().unwrap().try_clone().unwrap();
        let mut buf = [0u8; 64];
        while (&reader).read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
        stop.store(true, Ordering::SeqCst);
        // The accept loop stays parked in accept; the process exits.
        drop(server);
        let errors = std::mem::take(&mut *errors.lock().unwrap());
        errors
    });
    assert!(!errors.is_empty(), "accept never failed");
    for e in &errors {
        let os = e
            .get_ref()
            .and_then(|inner| inner.source())
            .and_then(|source| source.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        assert_eq!(
            os,
            Some(libc::EMFILE),
            "accept error other than EMFILE: {e}"
        );
        assert!(e.to_string().contains("RLIMIT_NOFILE"), "{e}");
    }
}

// ---------------------------------------------------------------------------
// 5. UDP
// ---------------------------------------------------------------------------

#[test]
fn udp_send_to_and_recv_from_between_green_threads() {
    let _watchdog = Watchdog::new("udp_send_to_and_recv_from_between_green_threads", LIMIT);
    spool::run(|| {
        let server = UdpSocket::bind(loopback()).unwrap();
        let client = UdpSocket::bind(loopback()).unwrap();
        let (server_addr, client_addr) =
            (server.local_addr().unwrap(), client.local_addr().unwrap());
        const ROUNDS: usize = 200;
        let echo = thread::spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..ROUNDS {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                assert_eq!(from, client_addr);
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        // The echo thread parks in recv_from first; the client wakes it.
        thread::sleep(Duration::from_millis(20));
        let mut buf = [0u8; 1500];
        for round in 0..ROUNDS {
            let message = pattern(round as u8, 1 + round * 7);
            assert_eq!(
                client.send_to(&message, server_addr).unwrap(),
                message.len()
            );
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from, server_addr);
            assert_eq!(&buf[..n], &message[..]);
        }
        echo.join().unwrap();
    });
}

#[test]
fn udp_connect_send_recv_and_peek() {
    let _watchdog = Watchdog::new("udp_connect_send_recv_and_peek", LIMIT);
    spool::run(|| {
        let a = UdpSocket::bind(loopback()).unwrap();
        let b = UdpSocket::bind(loopback()).unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        a.connect(b_addr).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        b.connect(a_addr).unwrap();

        let receiver = thread::spawn(move || {
            let mut buf = [0u8; 64];
            let n = b.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"to b");
            b.send(b"to a").unwrap();
            b
        });
        a.send(b"to b").unwrap();
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to a");
        let b = receiver.join().unwrap();

        drop(b);

        // peek_from and peek leave the datagram queued.
        let d = UdpSocket::bind(loopback()).unwrap();
        let d_addr = d.local_addr().unwrap();
        let sender = UdpSocket::bind(loopback()).unwrap();
        sender.send_to(b"first", d_addr).unwrap();
        sender.send_to(b"second", d_addr).unwrap();
        let (n, from) = d.peek_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"first"[..], sender.local_addr().unwrap())
        );
        let (n, _) = d.peek_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        let (n, _) = d.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        d.connect(sender.local_addr().unwrap()).unwrap();
        let n = d.peek(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
        let n = d.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
    });
}

#[test]
fn udp_datagrams_are_truncated_to_the_buffer_as_std() {
    let _watchdog = Watchdog::new("udp_datagrams_are_truncated_to_the_buffer_as_std", LIMIT);
    spool::run(|| {
        let receiver = UdpSocket::bind(loopback()).unwrap();
        let sender = UdpSocket::bind(loopback()).unwrap();
        let to = receiver.local_addr().unwrap();
        let long = pattern(9, 100);
        sender.send_to(&long, to).unwrap();
        sender.send_to(b"next", to).unwrap();
        let mut small = [0u8; 10];
        // The rest of a datagram that does not fit is discarded.
        let (n, _) = receiver.recv_from(&mut small).unwrap();
        assert_eq!((n, &small[..]), (10, &long[..10]));
        let (n, _) = receiver.recv_from(&mut small).unwrap();
        assert_eq!(&small[..n], b"next");

        // std's behaviour, for comparison.
        let std_receiver = std::net::UdpSocket::bind(loopback()).unwrap();
        sender
            .send_to(&long, std_receiver.local_addr().unwrap())
            .unwrap();
        assert_eq!(std_receiver.recv_from(&mut small).unwrap().0, 10);
    });
}

#[test]
fn many_green_threads_waiting_on_one_socket_are_all_served() {
    let _watchdog = Watchdog::new(
        "many_green_threads_waiting_on_one_socket_are_all_served",
        LIMIT,
    );
    const WAITERS: usize = 8;
    const EACH: usize = 25;
    spool::run(|| {
        // Several green threads parked in recv_from on one socket: each
        // datagram goes to exactly one, and none is left parked.
        let socket = Arc::new(UdpSocket::bind(loopback()).unwrap());
        let to = socket.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let receivers: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (socket, received) = (Arc::clone(&socket), Arc::clone(&received));
                thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 8];
                    loop {
                        let (n, _) = socket.recv_from(&mut buf).unwrap();
                        let value = u32::from_be_bytes(buf[..n].try_into().unwrap());
                        if value == u32::MAX {
                            return mine;
                        }
                        mine.push(value);
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let sender = UdpSocket::bind(loopback()).unwrap();
        // One datagram at a time, so none is dropped for want of buffer.
        for value in 0..(WAITERS * EACH) as u32 {
            sender.send_to(&value.to_be_bytes(), to).unwrap();
            let start = Instant::now();
            while received.load(Ordering::SeqCst) <= value as usize {
                assert!(
                    start.elapsed() < SLOW,
                    "datagram {value} was never received"
                );
                thread::sleep(Duration::from_millis(1));
            }
        }
        for _ in 0..WAITERS {
            sender.send_to(&u32::MAX.to_be_bytes(), to).unwrap();
        }
        let mut all: Vec<u32> = receivers
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..(WAITERS * EACH) as u32).collect::<Vec<_>>());

        // Several green threads accepting from one listener.
        let listener = Arc::new(listener());
        let addr = listener.local_addr().unwrap();
        let acceptors: Vec<_> = (0..WAITERS)
            .map(|_| {
                let listener = Arc::clone(&listener);
                thread::spawn(move || {
                    for _ in 0..EACH {
                        let (stream, _) = listener.accept().unwrap();
                        echo(stream).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..WAITERS * EACH {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"one of many").unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            stream.read_to_end(&mut back).unwrap();
            assert_eq!(back, b"one of many");
        }
        for acceptor in acceptors {
            acceptor.join().unwrap();
        }
    });
}

#[test]
fn udp_to_a_closed_port_reports_connection_refused() {
    let _watchdog = Watchdog::new("udp_to_a_closed_port_reports_connection_refused", LIMIT);
    let check = || {
        // A port that was free a moment ago; nothing listens on it now.
        let closed = UdpSocket::bind(loopback()).unwrap().local_addr().unwrap();
        let socket = UdpSocket::bind(loopback()).unwrap();
        socket.connect(closed).unwrap();
        socket.set_read_timeout(Some(SLOW)).unwrap();
        socket.send(b"anyone?").unwrap();
        // The ICMP port-unreachable wakes the parked receiver with std's
        // error, as a blocking std socket gets it.
        let err = socket.recv(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    };
    spool::run(check);
    check();
}

#[test]
fn many_read_timeouts_at_once_all_expire() {
    let _watchdog = Watchdog::new("many_read_timeouts_at_once_all_expire", LIMIT);
    const READERS: usize = 500;
    spool::run(|| {
        let listener = Arc::new(listener());
        let addr = listener.local_addr().unwrap();
        // The clients stay open (and silent) until every reader is done.
        let clients: Vec<_> = (0..READERS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|i| {
                let listener = Arc::clone(&listener);
                thread::spawn(move || {
                    let (mut server, _) = listener.accept().unwrap();
                    // Timeouts spread over 50..100 ms.
                    let timeout = Duration::from_millis(50 + (i % 50) as u64);
                    server.set_read_timeout(Some(timeout)).unwrap();
                    let start = Instant::now();
                    let err = server.read(&mut [0u8; 4]).unwrap_err();
                    (err.kind(), start.elapsed(), timeout)
                })
            })
            .collect();
        for reader in readers {
            let (kind, elapsed, timeout) = reader.join().unwrap();
            assert_eq!(kind, ErrorKind::WouldBlock);
            assert!(elapsed >= timeout, "{elapsed:?} < {timeout:?}");
            // Generous: 500 green threads on a noisy 2-core machine.
            assert!(elapsed < timeout + 4 * SLOW, "{elapsed:?} for {timeout:?}");
        }
        drop(clients);
    });
}

#[test]
fn ipv6_loopback_works_where_available() {
    let _watchdog = Watchdog::new("ipv6_loopback_works_where_available", LIMIT);
    let any = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0));
    let listener = match TcpListener::bind(any) {
        Ok(listener) => listener,
        Err(e) => {
            println!("skipped: no IPv6 loopback here ({e})");
            return;
        }
    };
    let addr = listener.local_addr().unwrap();
    assert!(addr.is_ipv6());
    let server = thread::spawn(move || echo_server(listener));
    spool::run(|| echo_client(addr)).expect("IPv6 client");
    server.join().unwrap().expect("IPv6 server");
    let a = UdpSocket::bind(any).unwrap();
    let b = UdpSocket::bind(any).unwrap();
    a.send_to(b"v6", b.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 4];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"v6"[..], a.local_addr().unwrap()));
}

// ---------------------------------------------------------------------------
// 6. Plain OS threads, and OS threads talking to green threads
// ---------------------------------------------------------------------------

/// Connects to `addr`, sends a few messages and checks their echoes.
fn echo_client(addr: SocketAddr) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    for round in 0..20u8 {
        let message = pattern(round, 1000 + 37 * round as usize);
        stream.write_all(&message)?;
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back)?;
        assert!(back == message, "echo differs in round {round}");
    }
    stream.shutdown(Shutdown::Write)?;
    assert_eq!(stream.read(&mut [0u8; 8])?, 0);
    Ok(())
}

/// Serves one echo connection.
fn echo_server(listener: TcpListener) -> io::Result<()> {
    let (stream, _) = listener.accept()?;
    echo(stream)
}

#[test]
fn sockets_work_on_plain_os_threads() {
    let _watchdog = Watchdog::new("sockets_work_on_plain_os_threads", LIMIT);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || echo_server(listener));
    let client = std::thread::spawn(move || echo_client(addr));
    client.join().unwrap().expect("OS-thread client");
    server.join().unwrap().expect("OS-thread server");

    // UDP between OS threads, with a blocking recv_from.
    let a = UdpSocket::bind(loopback()).unwrap();
    let b = UdpSocket::bind(loopback()).unwrap();
    let b_addr = b.local_addr().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    std::thread::sleep(Duration::from_millis(20));
    a.send_to(b"os threads", b_addr).unwrap();
    assert_eq!(receiver.join().unwrap(), b"os threads");
}

#[test]
fn green_server_with_os_thread_client() {
    let _watchdog = Watchdog::new("green_server_with_os_thread_client", LIMIT);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || echo_server(listener));
    let client = std::thread::spawn(move || echo_client(addr));
    client.join().unwrap().expect("OS-thread client");
    server.join().unwrap().expect("green server");
}

#[test]
fn os_thread_server_with_green_client() {
    let _watchdog = Watchdog::new("os_thread_server_with_green_client", LIMIT);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || echo_server(listener));
    spool::run(|| echo_client(addr)).expect("green client");
    server.join().unwrap().expect("OS-thread server");
}

#[test]
fn spool_sockets_talk_to_std_sockets() {
    let _watchdog = Watchdog::new("spool_sockets_talk_to_std_sockets", LIMIT);
    // A std server on an OS thread, a spool client in a green thread.
    let std_listener = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let server = std::thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = std_listener.accept()?;
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(()),
                n => stream.write_all(&buf[..n])?,
            }
        }
    });
    spool::run(|| echo_client(addr)).expect("green client of a std server");
    server.join().unwrap().expect("std server");
}

// ---------------------------------------------------------------------------
// 7. Errors surface as std's kinds
// ---------------------------------------------------------------------------

/// Makes closing `stream` send a reset (SO_LINGER on, zero seconds).
fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a descriptor `stream` keeps open, reading a
    // `linger` of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt SO_LINGER: {}",
        io::Error::last_os_error()
    );
}

#[test]
fn a_reset_by_the_peer_is_connection_reset() {
    let _watchdog = Watchdog::new("a_reset_by_the_peer_is_connection_reset", LIMIT);
    spool::run(|| {
        let (client, mut server) = connected_pair();
        // The server is parked in read when the reset arrives.
        let reader = thread::spawn(move || server.read(&mut [0u8; 16]));
        thread::sleep(Duration::from_millis(20));
        set_linger_zero(&client);
        drop(client);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

        // And a read after the reset arrived.
        let (client, mut server) = connected_pair();
        set_linger_zero(&client);
        drop(client);
        thread::sleep(Duration::from_millis(20));
        let err = server.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    });
}

#[test]
fn half_close_lets_the_peer_read_the_end_and_reply() {
    let _watchdog = Watchdog::new("half_close_lets_the_peer_read_the_end_and_reply", LIMIT);
    spool::run(|| {
        let (mut client, mut server) = connected_pair();
        let peer = thread::spawn(move || -> io::Result<Vec<u8>> {
            let mut request = Vec::new();
            server.read_to_end(&mut request)?;
            server.write_all(b"reply after your end")?;
            Ok(request)
        });
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"reply after your end");
        assert_eq!(peer.join().unwrap().unwrap(), b"request");
        // Writing after shutting down the write half is a broken pipe.
        let err = client.write(b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    });
}

#[test]
fn shutdown_read_wakes_a_reader_parked_on_a_clone() {
    let _watchdog = Watchdog::new("shutdown_read_wakes_a_reader_parked_on_a_clone", LIMIT);
    spool::run(|| {
        let (client, _server) = connected_pair();
        let mut clone = client.try_clone().unwrap();
        let reader = thread::spawn(move || clone.read(&mut [0u8; 16]));
        thread::sleep(Duration::from_millis(20));
        client.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

/// Writes to `stream`, whose peer has closed, until a write fails; returns
/// that error.
fn write_until_error(stream: &mut TcpStream) -> io::Error {
    let start = Instant::now();
    loop {
        if let Err(e) = stream.write(&[1u8; 1024]) {
            return e;
        }
        assert!(
            start.elapsed() < SLOW,
            "writes to a closed peer kept succeeding"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn writing_to_a_closed_peer_fails_without_sigpipe() {
    let _watchdog = Watchdog::new("writing_to_a_closed_peer_fails_without_sigpipe", LIMIT);
    let out = assert_child_passes("child_write_after_peer_closed", &[]);
    assert_eq!(out.signal(), None);
}

#[test]
fn child_write_after_peer_closed() {
    if !is_child("child_write_after_peer_closed") {
        return;
    }
    // Rust programs ignore SIGPIPE by default; a C host or a program that
    // restores the default must not be killed by a write to a closed peer.
    // SAFETY: setting a signal's disposition to its default action.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let check = || {
        let (mut client, server) = connected_pair();
        drop(server);
        let err = write_until_error(&mut client);
        assert!(
            matches!(
                err.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ),
            "{err}"
        );
    };
    spool::run(check);
    check();
}

// ---------------------------------------------------------------------------
// 8. No descriptor leak when a green thread panics
// ---------------------------------------------------------------------------

#[test]
fn a_panicking_green_thread_closes_its_sockets() {
    let _watchdog = Watchdog::new("a_panicking_green_thread_closes_its_sockets", LIMIT);
    assert_child_passes("child_panicking_threads_close_their_sockets", &[]);
}

#[test]
fn child_panicking_threads_close_their_sockets() {
    if !is_child("child_panicking_threads_close_their_sockets") {
        return;
    }
    // The child is alone in its process, so the descriptor count is ours.
    std::panic::set_hook(Box::new(|_| {}));
    spool::run(|| {
        let listener = Arc::new(listener());
        let addr = listener.local_addr().unwrap();
        // Warm up: start the runtime's workers and reactors.
        let (a, b) = connected_pair();
        thread::spawn(move || {
            a.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let _ = (&a).read(&mut [0u8; 1]);
            drop((a, b));
        })
        .join()
        .unwrap();
        let baseline = open_fd_count();

        let threads: Vec<_> = (0..100)
            .map(|i| {
                let listener = Arc::clone(&listener);
                thread::spawn(move || {
                    let client = TcpStream::connect(addr).unwrap();
                    let (server, _) = listener.accept().unwrap();
                    let _clone = server.try_clone().unwrap();
                    // Park once on the socket so it is registered with a
                    // reactor before the panic.
                    client
                        .set_read_timeout(Some(Duration::from_millis(1)))
                        .unwrap();
                    let _ = (&client).read(&mut [0u8; 1]);
                    assert!(open_fd_count() >= baseline + 3);
                    panic!("green thread {i} panics holding three sockets");
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_err(), "the green thread should panic");
        }
        assert_eq!(open_fd_count(), baseline, "descriptors leaked");
    });
}

// ---------------------------------------------------------------------------
// 9. Non-blocking mode, addresses and options, clones, incoming, conversions
// ---------------------------------------------------------------------------

#[test]
fn nonblocking_mode_returns_would_block_at_once() {
    let _watchdog = Watchdog::new("nonblocking_mode_returns_would_block_at_once", LIMIT);
    let check = || {
        let (mut client, server) = connected_pair();
        client.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let err = client.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() < SLOW);
        // Data that is there is read.
        (&server).write_all(b"ready").unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 5];
        loop {
            match client.read(&mut buf) {
                Ok(n) => break assert_eq!(&buf[..n], b"ready"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < SLOW);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Back to blocking: a read waits (here until the read timeout).
        client.set_nonblocking(false).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let start = Instant::now();
        assert_eq!(
            client.read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(start.elapsed() >= Duration::from_millis(50));

        let listener = listener();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        let udp = UdpSocket::bind(loopback()).unwrap();
        udp.set_nonblocking(true).unwrap();
        assert_eq!(
            udp.recv_from(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    };
    spool::run(check);
    check();
}

#[test]
fn addresses_and_options_round_trip() {
    let _watchdog = Watchdog::new("addresses_and_options_round_trip", LIMIT);
    let listener = listener();
    let (client, server) = {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap())
    };
    let (server, peer) = server;
    assert_eq!(client.peer_addr().unwrap(), listener.local_addr().unwrap());
    assert_eq!(client.peer_addr().unwrap(), server.local_addr().unwrap());
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(peer, client.local_addr().unwrap());

    client.set_ttl(42).unwrap();
    assert_eq!(client.ttl().unwrap(), 42);
    listener.set_ttl(43).unwrap();
    assert_eq!(listener.ttl().unwrap(), 43);
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    client.set_nodelay(false).unwrap();
    assert!(!client.nodelay().unwrap());
    assert!(client.take_error().unwrap().is_none());

    // peek waits like read and leaves the bytes for the next read.
    let peeker = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let n = server.peek(&mut buf).unwrap();
        let mut again = vec![0u8; n];
        (&server).read_exact(&mut again).unwrap();
        assert_eq!(&buf[..n], &again[..]);
        again
    });
    std::thread::sleep(Duration::from_millis(20));
    (&client).write_all(b"peek").unwrap();
    assert_eq!(peeker.join().unwrap(), b"peek");
    assert!(listener.take_error().unwrap().is_none());

    let udp = UdpSocket::bind(loopback()).unwrap();
    udp.set_ttl(17).unwrap();
    assert_eq!(udp.ttl().unwrap(), 17);
    udp.set_broadcast(true).unwrap();
    assert!(udp.broadcast().unwrap());
    assert_eq!(udp.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
}

#[test]
fn a_cloned_listener_accepts_and_incoming_iterates() {
    let _watchdog = Watchdog::new("a_cloned_listener_accepts_and_incoming_iterates", LIMIT);
    spool::run(|| {
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        let clone = listener.try_clone().unwrap();
        assert_eq!(clone.local_addr().unwrap(), addr);
        let acceptor = thread::spawn(move || clone.accept().map(|(s, _)| s));
        let client = TcpStream::connect(addr).unwrap();
        let accepted = acceptor.join().unwrap().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());

        let server = thread::spawn(move || {
            let mut count = 0;
            for stream in listener.incoming().take(3) {
                let mut stream = stream.unwrap();
                stream.write_all(&[count]).unwrap();
                count += 1;
            }
            count
        });
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(addr).unwrap();
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).unwrap();
            seen.push(byte[0]);
        }
        assert_eq!(server.join().unwrap(), 3);
        assert_eq!(seen, [0, 1, 2]);
    });
}

#[test]
fn conversions_from_and_to_std_and_descriptors() {
    let _watchdog = Watchdog::new("conversions_from_and_to_std_and_descriptors", LIMIT);
    spool::run(|| {
        // std listener and stream into spool; timeouts carry over.
        let std_listener = std::net::TcpListener::bind(loopback()).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from(std_listener);
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        std_client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let client = TcpStream::from(std_client);
        assert_eq!(
            client.read_timeout().unwrap(),
            Some(Duration::from_millis(300))
        );
        let (server, _) = listener.accept().unwrap();
        // The converted stream parks (here until its timeout), not blocks.
        let start = Instant::now();
        assert_eq!(
            (&client).read(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(start.elapsed() >= Duration::from_millis(300));

        // spool into std: a blocking stream with the same timeout.
        (&server).write_all(b"to std").unwrap();
        let mut std_stream = client.into_std().unwrap();
        assert_eq!(
            std_stream.read_timeout().unwrap(),
            Some(Duration::from_millis(300))
        );
        let mut buf = [0u8; 6];
        std_stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"to std");
        // Blocking again: a read waits for its timeout, not WouldBlock at once.
        let start = Instant::now();
        let err = std_stream.read(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        assert!(start.elapsed() >= Duration::from_millis(250));

        // Through owned and raw descriptors.
        let fd = OwnedFd::from(server);
        let server = TcpStream::from(fd);
        let raw = server.into_raw_fd();
        // SAFETY: `raw` came from into_raw_fd just above and nothing else
        // owns it.
        let server = unsafe { TcpStream::from_raw_fd(raw) };
        (&server).write_all(b"raw").unwrap();
        let mut buf = [0u8; 3];
        std_stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"raw");
        let std_listener = listener.into_std().unwrap();
        assert_eq!(std_listener.local_addr().unwrap(), addr);

        // UDP both ways.
        let std_udp = std::net::UdpSocket::bind(loopback()).unwrap();
        let udp = UdpSocket::from(std_udp);
        let peer = UdpSocket::bind(loopback()).unwrap();
        peer.send_to(b"dgram", udp.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"dgram");
        let std_udp = udp.into_std().unwrap();
        peer.send_to(b"again", std_udp.local_addr().unwrap())
            .unwrap();
        let (n, _) = std_udp.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"again");
    });
}

// ---------------------------------------------------------------------------
// 10. Sockets used on more than one runtime
// ---------------------------------------------------------------------------

/// Parks once in `read` on `server` inside `runtime` (so the socket is
/// watched by that runtime's worker), then returns the pair.
fn first_use_on(runtime: &spool::Runtime) -> (TcpStream, TcpStream) {
    runtime.run(|| {
        let (client, mut server) = connected_pair();
        server
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(
            server.read(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        server.set_read_timeout(None).unwrap();
        (client, server)
    })
}

/// A green thread of the global runtime parks in `read` on `server` until
/// `client` writes (or, if the wakeup is lost, until a 10 s timeout).
fn read_on_the_global_runtime(client: TcpStream, mut server: TcpStream) {
    spool::run(move || {
        let reader = thread::spawn(move || {
            server.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut buf = [0u8; 5];
            server.read_exact(&mut buf).map(|()| buf)
        });
        thread::sleep(Duration::from_millis(20));
        (&client).write_all(b"wake!").unwrap();
        match reader.join().unwrap() {
            Ok(buf) => assert_eq!(&buf, b"wake!"),
            Err(e) => panic!(
                "the reader timed out ({e}) although data came 20 ms after it \
                 parked: the socket's readiness went to a worker that no longer runs"
            ),
        }
    });
}

#[test]
fn a_socket_first_used_on_another_runtime_wakes_its_reader() {
    let _watchdog = Watchdog::new(
        "a_socket_first_used_on_another_runtime_wakes_its_reader",
        LIMIT,
    );
    let other = spool::Runtime::builder().workers(1).build().unwrap();
    let (client, server) = first_use_on(&other);
    read_on_the_global_runtime(client, server);
}

/// A socket registered with a worker of a runtime that has since been
/// dropped moves to the worker of its next waiter (it used to stay with the
/// dead worker, and the waiter was never woken).
#[test]
fn a_socket_outliving_the_runtime_it_was_first_used_on_wakes_its_reader() {
    let _watchdog = Watchdog::new(
        "a_socket_outliving_the_runtime_it_was_first_used_on_wakes_its_reader",
        LIMIT,
    );
    let other = spool::Runtime::builder().workers(1).build().unwrap();
    let (client, server) = first_use_on(&other);
    drop(other);
    read_on_the_global_runtime(client, server);
}
