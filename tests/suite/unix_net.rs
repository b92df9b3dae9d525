//! Behaviour of `spool::os::unix::net`: Unix domain streams, listeners and
//! datagram sockets used from green threads and plain OS threads.
//!
//! Like `tests/suite/channels.rs`, every test in the `rt_test!` block runs in
//! three configurations: on a one-worker runtime, on a two-worker runtime,
//! and called from a plain OS thread (spawning onto the global runtime).

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spool::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use spool::sync::Barrier;
use spool::{thread, Runtime};

const LIMIT: Duration = Duration::from_secs(60);

/// A directory of its own under the system's temp dir, removed on drop
/// (also when the test panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("spool-unix-net-{}-{n}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Echoes everything it reads until end of stream.
fn echo(mut stream: UnixStream) -> std::io::Result<()> {
    let mut buf = [0; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// Writes `message`, reads it back and checks it. Writing all before
/// reading: keep `message` within what the socket buffers hold (64 KiB is
/// safe), or the echo and this writer wait on each other forever.
fn round_trip(stream: &mut UnixStream, message: &[u8]) {
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn assert_path(addr: &spool::os::unix::net::SocketAddr, path: &Path) {
    assert_eq!(addr.as_pathname(), Some(path));
}

rt_test! {
    fn stream_echo_between_green_threads() {
        let dir = TempDir::new("echo");
        let path = dir.join("echo.sock");
        let listener = UnixListener::bind(&path).unwrap();
        assert_path(&listener.local_addr().unwrap(), &path);
        let server = thread::spawn(move || {
            let (conn, peer) = listener.accept().unwrap();
            assert!(peer.is_unnamed());
            echo(conn).unwrap();
        });
        let client = thread::spawn(move || {
            let mut stream = UnixStream::connect(&path).unwrap();
            assert_path(&stream.peer_addr().unwrap(), &path);
            for size in [1, 100, 60_000] {
                round_trip(&mut stream, &pattern(size));
            }
        });
        client.join().unwrap();
        server.join().unwrap();
    }

    fn pair_is_connected_both_ways() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert!(a.local_addr().unwrap().is_unnamed());
        assert!(b.peer_addr().unwrap().is_unnamed());
        let t = thread::spawn(move || {
            echo(b.try_clone().unwrap()).unwrap();
            b.write_all(b"bye").unwrap();
        });
        round_trip(&mut a, b"ping");
        a.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"bye");
        t.join().unwrap();
    }

    fn clones_read_and_write_concurrently() {
        // 4 MiB through an echo: more than the socket buffers hold, so the
        // writer and the reader must run at the same time.
        const TOTAL: usize = 4 << 20;
        let (a, b) = UnixStream::pair().unwrap();
        let echoer = thread::spawn(move || echo(b).unwrap());
        let reader_end = a.try_clone().unwrap();
        let reader = thread::spawn(move || {
            let mut got = vec![0; TOTAL];
            (&reader_end).read_exact(&mut got).unwrap();
            assert!(got == pattern(TOTAL), "echoed bytes differ");
        });
        let writer = thread::spawn(move || {
            (&a).write_all(&pattern(TOTAL)).unwrap();
            a.shutdown(Shutdown::Write).unwrap();
        });
        writer.join().unwrap();
        reader.join().unwrap();
        echoer.join().unwrap();
    }

    fn read_timeout_returns_would_block() {
        let (mut a, b) = UnixStream::pair().unwrap();
        assert_eq!(a.read_timeout().unwrap(), None);
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_millis(20)));
        let err = a.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        // The stream still works after a timeout.
        (&b).write_all(b"late").unwrap();
        let mut buf = [0; 4];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        // Zero is refused, None clears.
        let zero = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
        a.set_read_timeout(None).unwrap();
        assert_eq!(a.read_timeout().unwrap(), None);
    }

    fn write_timeout_returns_would_block_when_peer_stops_reading() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_write_timeout(Some(Duration::from_millis(20))).unwrap();
        let chunk = [7u8; 64 * 1024];
        // Fill the buffers until a write waits longer than the timeout.
        let err = loop {
            if let Err(e) = (&a).write_all(&chunk) {
                break e;
            }
        };
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
    }

    fn eof_after_peer_drops() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let t = thread::spawn(move || {
            let mut b = b;
            b.write_all(b"last words").unwrap();
            // Dropped here.
        });
        let mut all = Vec::new();
        a.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"last words");
        assert_eq!(a.read(&mut [0; 8]).unwrap(), 0);
        t.join().unwrap();
        // Writing to a closed peer fails instead of raising SIGPIPE.
        let err = a.write_all(&[1; 1024]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    }

    fn shutdown_wakes_a_reader_parked_on_a_clone() {
        let (a, _b) = UnixStream::pair().unwrap();
        let clone = a.try_clone().unwrap();
        let reader = thread::spawn(move || (&clone).read(&mut [0; 8]).unwrap());
        thread::sleep(Duration::from_millis(20));
        a.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap(), 0);
    }

    fn peek_leaves_data_queued() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            (&b).write_all(b"abc").unwrap();
            b
        });
        let mut buf = [0; 8];
        assert_eq!(a.peek(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        let mut all = [0; 3];
        a.read_exact(&mut all).unwrap();
        assert_eq!(&all, b"abc");
        drop(t.join().unwrap());
    }

    fn nonblocking_mode_reports_would_block() {
        let dir = TempDir::new("nonblocking");
        let listener = UnixListener::bind(dir.join("l.sock")).unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(listener.take_error().unwrap().is_none());
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        assert_eq!((&a).read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
        a.set_nonblocking(false).unwrap();
        a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        assert_eq!((&a).read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(a.take_error().unwrap().is_none());
    }

    fn datagrams_between_bound_paths() {
        let dir = TempDir::new("dgram");
        let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
        let server = UnixDatagram::bind(&server_path).unwrap();
        let client = UnixDatagram::bind(&client_path).unwrap();
        assert_path(&server.local_addr().unwrap(), &server_path);
        let echoer = thread::spawn(move || {
            let mut buf = [0; 256];
            for _ in 0..3 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to_addr(&buf[..n], &from).unwrap();
            }
        });
        for message in [&b"one"[..], b"two", b"three"] {
            assert_eq!(client.send_to(message, &server_path).unwrap(), message.len());
            let mut buf = [0; 256];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], message);
            assert_path(&from, &server_path);
        }
        echoer.join().unwrap();

        // Connected: send and recv, peek.
        let other = UnixDatagram::bind(dir.join("other.sock")).unwrap();
        client.connect(dir.join("other.sock")).unwrap();
        other.connect(&client_path).unwrap();
        assert_path(&client.peer_addr().unwrap(), &dir.join("other.sock"));
        let receiver = thread::spawn(move || {
            let mut buf = [0; 16];
            let n = other.peek(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
            let n = other.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
            other.send(b"world").unwrap();
        });
        client.send(b"hello").unwrap();
        let mut buf = [0; 16];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"world");
        receiver.join().unwrap();
    }

    fn datagram_pair_unbound_and_timeouts() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let t = thread::spawn(move || {
            let mut buf = [0; 8];
            let n = b.recv(&mut buf).unwrap();
            b.send(&buf[..n]).unwrap();
        });
        a.send(b"hi").unwrap();
        let mut buf = [0; 8];
        assert_eq!(a.recv(&mut buf).unwrap(), 2);
        t.join().unwrap();

        a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_millis(10)));
        assert_eq!(a.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);

        let dir = TempDir::new("unbound");
        let path = dir.join("sink.sock");
        let sink = UnixDatagram::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        assert!(sender.local_addr().unwrap().is_unnamed());
        sender.send_to(b"anon", &path).unwrap();
        let (n, from) = sink.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());
        assert!(sink.take_error().unwrap().is_none());
        // A clone shares the socket; shutdown wakes a receiver parked on it.
        let clone = sink.try_clone().unwrap();
        let parked = thread::spawn(move || clone.recv(&mut [0; 8]).unwrap());
        thread::sleep(Duration::from_millis(20));
        sink.shutdown(Shutdown::Read).unwrap();
        assert_eq!(parked.join().unwrap(), 0);
        // Later receives return at once too, as std's blocking ones do;
        // in non-blocking mode they report WouldBlock, as std's do.
        let (n, from) = sink.recv_from(&mut buf).unwrap();
        assert_eq!(n, 0);
        assert!(from.is_unnamed());
        sink.set_nonblocking(true).unwrap();
        assert_eq!(sink.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    }

    fn thousand_concurrent_connections() {
        const CLIENTS: usize = 1000;
        let dir = TempDir::new("thousand");
        let path = dir.join("server.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let server = {
            let served = served.clone();
            thread::spawn(move || {
                let handlers: Vec<_> = listener
                    .incoming()
                    .take(CLIENTS)
                    .map(|conn| {
                        let conn = conn.unwrap();
                        let served = served.clone();
                        thread::spawn(move || {
                            echo(conn).unwrap();
                            served.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect();
                handlers.into_iter().for_each(|h| h.join().unwrap());
            })
        };
        // Every client stays connected until all have exchanged a message,
        // so all 1,000 connections are open at once.
        let all_connected = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let path = path.clone();
                let all_connected = all_connected.clone();
                thread::spawn(move || {
                    let mut stream = UnixStream::connect(&path).unwrap();
                    round_trip(&mut stream, format!("client {i}").as_bytes());
                    all_connected.wait();
                    round_trip(&mut stream, &pattern(10_000));
                })
            })
            .collect();
        clients.into_iter().for_each(|c| c.join().unwrap());
        server.join().unwrap();
        assert_eq!(served.load(Ordering::Relaxed), CLIENTS);
    }

    fn connect_waits_while_the_accept_queue_is_full() {
        // A listener whose queue holds (on Linux) two connections: the other
        // clients' connects find it full and must wait, not fail.
        const CLIENTS: usize = 16;
        let dir = TempDir::new("backlog");
        let path = dir.join("small.sock");
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // SAFETY: listen(2) on a listening socket we own only changes its
        // queue length.
        assert_eq!(unsafe { libc::listen(std_listener.as_raw_fd(), 1) }, 0);
        let listener = UnixListener::from(std_listener);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let path = path.clone();
                thread::spawn(move || {
                    let mut stream = UnixStream::connect(&path).unwrap();
                    stream.write_all(&[i as u8]).unwrap();
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        let mut seen = [false; CLIENTS];
        for _ in 0..CLIENTS {
            let (mut conn, _) = listener.accept().unwrap();
            let mut byte = [0];
            conn.read_exact(&mut byte).unwrap();
            seen[usize::from(byte[0])] = true;
        }
        clients.into_iter().for_each(|c| c.join().unwrap());
        assert!(seen.iter().all(|&s| s));
    }

    fn conversions_to_and_from_std_and_owned_fd() {
        let dir = TempDir::new("conversions");
        let path = dir.join("c.sock");

        // Listener: spool -> std -> OwnedFd -> spool.
        let listener = UnixListener::bind(&path).unwrap();
        let std_listener = listener.into_std().unwrap();
        let fd: OwnedFd = std_listener.into();
        let listener = UnixListener::from(fd);
        assert_path(&listener.local_addr().unwrap(), &path);

        // A std client (blocking) against the spool listener.
        let client = std::thread::spawn({
            let path = path.clone();
            move || {
                let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.write_all(b"std").unwrap();
                let mut buf = [0; 3];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"std");
            }
        });
        let (conn, _) = listener.accept().unwrap();
        // Stream: spool -> OwnedFd -> spool, raw fd round trip, timeouts.
        let fd: OwnedFd = conn.into();
        let conn = UnixStream::from(fd);
        let raw = conn.into_raw_fd();
        // SAFETY: `raw` came from `into_raw_fd` just above and is owned by
        // no one else.
        let mut conn = unsafe { UnixStream::from_raw_fd(raw) };
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0; 3];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
        client.join().unwrap();

        // spool -> std keeps the timeout and is blocking; std -> spool too.
        let std_conn = conn.into_std().unwrap();
        assert_eq!(std_conn.read_timeout().unwrap(), Some(Duration::from_secs(30)));
        let conn = UnixStream::from(std_conn);
        assert_eq!(conn.read_timeout().unwrap(), Some(Duration::from_secs(30)));
        assert!(format!("{conn:?}").contains("UnixStream"));

        // A std pair wrapped by spool works with a std peer.
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut a = UnixStream::from(a);
        b.write_all(b"xy").unwrap();
        let mut two = [0; 2];
        a.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"xy");

        // Datagrams.
        let (d1, d2) = UnixDatagram::pair().unwrap();
        d1.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let std_d1 = d1.into_std().unwrap();
        assert_eq!(std_d1.write_timeout().unwrap(), Some(Duration::from_secs(5)));
        std_d1.send(b"d").unwrap();
        let d2 = UnixDatagram::from(OwnedFd::from(d2));
        let mut one = [0; 1];
        assert_eq!(d2.recv(&mut one).unwrap(), 1);
        let d1 = UnixDatagram::from(std_d1);
        assert_eq!(d1.write_timeout().unwrap(), Some(Duration::from_secs(5)));
    }
}

#[test]
fn stream_echo_between_green_thread_and_os_thread() {
    let _watchdog = common::Watchdog::new("stream_echo_between_green_thread_and_os_thread", LIMIT);
    let dir = TempDir::new("os-thread");
    let path = dir.join("echo.sock");
    let rt = Runtime::builder().workers(2).build().unwrap();
    let listener = UnixListener::bind(&path).unwrap();
    let client_path = path.clone();
    // A plain OS thread using spool's stream: its calls block that thread.
    let client = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(&client_path).unwrap();
        for size in [5, 60_000] {
            round_trip(&mut stream, &pattern(size));
        }
    });
    rt.run(move || {
        let (conn, _) = listener.accept().unwrap();
        thread::spawn(move || echo(conn).unwrap()).join().unwrap();
    });
    client.join().unwrap();

    // And the other way round: the server on an OS thread, the client a
    // green thread.
    let path2 = dir.join("echo2.sock");
    let listener = UnixListener::bind(&path2).unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        echo(conn).unwrap();
    });
    rt.run(move || {
        let mut stream = UnixStream::connect(&path2).unwrap();
        round_trip(&mut stream, &pattern(60_000));
    });
    server.join().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_addresses() {
    use spool::os::unix::net::SocketAddr;
    use std::os::linux::net::SocketAddrExt;

    let _watchdog = common::Watchdog::new("abstract_addresses", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let name = format!("spool-unix-net-abstract-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let local = listener.local_addr().unwrap();
        assert_eq!(local.as_abstract_name(), Some(name.as_bytes()));
        let server = thread::spawn(move || echo(listener.accept().unwrap().0).unwrap());
        let mut stream = UnixStream::connect_addr(&addr).unwrap();
        round_trip(&mut stream, b"abstract");
        drop(stream);
        server.join().unwrap();

        // Datagrams by address.
        let dname = format!("spool-unix-net-abstract-dgram-{}", std::process::id());
        let daddr = SocketAddr::from_abstract_name(dname.as_bytes()).unwrap();
        let sink = UnixDatagram::bind_addr(&daddr).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender.send_to_addr(b"abs", &daddr).unwrap();
        let mut buf = [0; 8];
        assert_eq!(sink.recv(&mut buf).unwrap(), 3);
        sender.connect_addr(&daddr).unwrap();
        sender.send(b"again").unwrap();
        assert_eq!(sink.recv(&mut buf).unwrap(), 5);
    });
}
