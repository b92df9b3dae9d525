//! Cancellation of `spool::net` and `spool::os::unix::net` calls: every
//! call that can wait is a cancellation point, on green threads and on
//! plain OS threads, and a cancellation never closes the socket.
//!
//! The tests in the `rt_test!` block run in three configurations (see
//! `tests/common`): in a green thread of a one-worker and of a two-worker
//! runtime, and on the test's plain OS thread. A call that is not a
//! cancellation point hangs, which the watchdog reports by name.

use crate::common;

use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use spool::cancel::{CancelScope, Cancelled};
use spool::net::{TcpListener, TcpStream, UdpSocket};
use spool::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use spool::time::timeout;
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(60);
/// The timeout put around calls that would wait forever.
const SHORT: Duration = Duration::from_millis(30);

/// Both ends of a loopback TCP connection: (client, server).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// A fresh directory for socket files, removed by the caller.
fn socket_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("spool-cancel-net-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes to `stream` until its send buffer is full (the peer never reads).
fn fill(stream: &TcpStream) {
    stream.set_nonblocking(true).unwrap();
    let chunk = [0x5a; 64 * 1024];
    loop {
        match (&*stream).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the socket: {e}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
}

/// Cancels `scope` from a plain OS thread after `delay`.
fn cancel_later(scope: &CancelScope, delay: Duration) -> std::thread::JoinHandle<()> {
    let scope = scope.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        scope.cancel();
    })
}

/// Lowers the accept queue of a listening socket to its minimum, so a few
/// connections fill it.
fn shrink_backlog(listener: &impl AsRawFd) {
    // SAFETY: `listen` on a socket we own that is already listening only
    // changes its backlog.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen: {}", io::Error::last_os_error());
}

/// Records, from a destructor run while the thread unwinds from a
/// cancellation, what a read that would wait returns.
struct ReadOnDrop<'a> {
    stream: &'a TcpStream,
    seen: &'a Mutex<Option<io::Result<usize>>>,
}

impl Drop for ReadOnDrop<'_> {
    fn drop(&mut self) {
        let result = (&*self.stream).read(&mut [0; 8]);
        *self.seen.lock().unwrap() = Some(result);
    }
}

/// Connects to the Unix listener at `path`, whose backlog is shrunk, until
/// a connect has to wait (and its timeout ends it); returns the
/// connections made.
fn fill_unix_backlog(path: &std::path::Path) -> Vec<UnixStream> {
    let mut held = Vec::new();
    for _ in 0..64 {
        match timeout(Duration::from_millis(300), || UnixStream::connect(path)) {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("connect: {e}"),
            Err(_elapsed) => return held,
        }
    }
    panic!("the accept queue never filled ({} connections)", held.len());
}

/// Records, from a destructor run while the thread unwinds from a
/// cancellation, what a connect to a full accept queue returns.
struct ConnectOnDrop<'a> {
    path: &'a std::path::Path,
    seen: &'a Mutex<Option<io::Result<UnixStream>>>,
}

impl Drop for ConnectOnDrop<'_> {
    fn drop(&mut self) {
        *self.seen.lock().unwrap() = Some(UnixStream::connect(self.path));
    }
}

rt_test! {
    fn a_timeout_ends_a_tcp_read_from_a_silent_peer() {
        let (mut client, mut server) = tcp_pair();
        let mut buf = [0; 4];
        assert!(timeout(SHORT, || client.read(&mut buf)).is_err());
        assert!(timeout(SHORT, || client.peek(&mut buf)).is_err());
        // The socket is still open: a late write arrives.
        server.write_all(b"late").unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    }

    fn a_timeout_ends_a_tcp_write_to_a_peer_that_never_reads() {
        let (client, mut server) = tcp_pair();
        fill(&client);
        assert!(timeout(SHORT, || (&client).write_all(&[1; 1024])).is_err());
        // Not shut down: the peer still reads what was written.
        server.set_nonblocking(true).unwrap();
        assert!(server.read(&mut [0; 1024]).unwrap() > 0);
    }

    fn a_timeout_ends_a_tcp_accept_with_no_client() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        assert!(timeout(SHORT, || listener.accept()).is_err());
        // The listener still accepts.
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.accept().unwrap();
    }

    fn a_timeout_ends_a_tcp_connect_to_a_full_backlog() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        shrink_backlog(&listener);
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        // Connections are queued until the backlog is full; then the
        // listener drops SYNs and a connect waits for the retransmission.
        for _ in 0..64 {
            match timeout(Duration::from_millis(300), || TcpStream::connect(addr)) {
                Ok(Ok(stream)) => held.push(stream),
                Ok(Err(e)) => panic!("connect: {e}"),
                Err(_elapsed) => return,
            }
        }
        panic!("the accept queue never filled ({} connections)", held.len());
    }

    fn a_timeout_ends_udp_receives() {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut buf = [0; 8];
        assert!(timeout(SHORT, || socket.recv_from(&mut buf)).is_err());
        assert!(timeout(SHORT, || socket.peek_from(&mut buf)).is_err());
        socket.connect(peer.local_addr().unwrap()).unwrap();
        assert!(timeout(SHORT, || socket.recv(&mut buf)).is_err());
        assert!(timeout(SHORT, || socket.peek(&mut buf)).is_err());
        peer.send_to(b"ping", socket.local_addr().unwrap()).unwrap();
        assert_eq!(socket.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
    }

    fn a_timeout_ends_unix_stream_reads_writes_and_accepts() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut buf = [0; 4];
        assert!(timeout(SHORT, || a.read(&mut buf)).is_err());
        assert!(timeout(SHORT, || a.peek(&mut buf)).is_err());
        a.set_nonblocking(true).unwrap();
        while a.write(&[0; 64 * 1024]).is_ok() {}
        a.set_nonblocking(false).unwrap();
        assert!(timeout(SHORT, || a.write_all(&[0; 1024])).is_err());
        b.write_all(b"late").unwrap();
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");

        let dir = socket_dir();
        let path = dir.join("listener.sock");
        let listener = UnixListener::bind(&path).unwrap();
        assert!(timeout(SHORT, || listener.accept()).is_err());
        let _client = UnixStream::connect(&path).unwrap();
        listener.accept().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn a_timeout_ends_a_unix_connect_to_a_full_backlog() {
        let dir = socket_dir();
        let path = dir.join("full.sock");
        let listener = UnixListener::bind(&path).unwrap();
        shrink_backlog(&listener);
        // Ends with a connect that had to wait and that the timeout ended.
        let _held = fill_unix_backlog(&path);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn a_unix_connect_while_unwinding_from_a_cancellation_fails_with_timed_out() {
        let dir = socket_dir();
        let path = dir.join("full.sock");
        let listener = UnixListener::bind(&path).unwrap();
        shrink_backlog(&listener);
        let _held = fill_unix_backlog(&path);
        let seen = Mutex::new(None);
        let result = timeout(SHORT, || {
            let _guard = ConnectOnDrop { path: &path, seen: &seen };
            spool::thread::sleep(Duration::from_secs(60));
        });
        assert!(result.is_err());
        let error = seen.lock().unwrap().take().unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TimedOut);
        assert!(error.to_string().contains("cancelled"), "{error}");
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn a_timeout_ends_unix_datagram_receives_and_sends() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let mut buf = [0; 8];
        assert!(timeout(SHORT, || a.recv(&mut buf)).is_err());
        assert!(timeout(SHORT, || a.recv_from(&mut buf)).is_err());
        assert!(timeout(SHORT, || a.peek(&mut buf)).is_err());
        // Fill b's receive queue, then a send must wait.
        a.set_nonblocking(true).unwrap();
        while a.send(&[0; 1024]).is_ok() {}
        a.set_nonblocking(false).unwrap();
        assert!(timeout(SHORT, || a.send(&[0; 1024])).is_err());
        assert_eq!(b.recv(&mut buf).unwrap(), 8);
    }

    fn the_earlier_of_a_socket_timeout_and_a_scope_deadline_wins() {
        let (client, _server) = tcp_pair();
        let mut buf = [0; 4];
        client.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let read = timeout(Duration::from_secs(30), || (&client).read(&mut buf));
        assert_eq!(read.unwrap().unwrap_err().kind(), ErrorKind::WouldBlock);
        client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        assert!(timeout(SHORT, || (&client).read(&mut buf)).is_err());
    }

    fn a_cancel_from_another_thread_ends_a_read_and_an_accept() {
        let (mut client, _server) = tcp_pair();
        let scope = CancelScope::new();
        let canceller = cancel_later(&scope, Duration::from_millis(20));
        assert!(scope.run(|| client.read(&mut [0; 4])).is_none());
        canceller.join().unwrap();

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let scope = CancelScope::new();
        let canceller = cancel_later(&scope, Duration::from_millis(20));
        assert!(scope.run(|| listener.accept()).is_none());
        canceller.join().unwrap();

        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let scope = CancelScope::new();
        let canceller = cancel_later(&scope, Duration::from_millis(20));
        assert!(scope.run(|| socket.recv_from(&mut [0; 4])).is_none());
        canceller.join().unwrap();
    }

    fn a_moved_deadline_ends_a_read() {
        let (client, _server) = tcp_pair();
        let scope = CancelScope::new();
        let mover = {
            let scope = scope.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                scope.set_deadline(Some(Instant::now()));
            })
        };
        assert!(scope.run(|| (&client).read(&mut [0; 4])).is_none());
        mover.join().unwrap();
    }

    fn a_read_that_got_data_returns_it_and_the_next_read_is_cancelled() {
        let (mut client, mut server) = tcp_pair();
        server.write_all(b"data").unwrap();
        let mut peeked = 0;
        while peeked < 4 {
            peeked = client.peek(&mut [0; 4]).unwrap();
        }
        let scope = CancelScope::new();
        let canceller = scope.clone();
        let mut got = Vec::new();
        let result = scope.run(|| {
            let mut buf = [0; 4];
            let n = client.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            canceller.cancel(); // after the read completed: it keeps its data
            client.read(&mut buf) // the next read unwinds
        });
        assert!(result.is_none());
        assert_eq!(got, b"data");
    }

    fn io_while_unwinding_from_a_cancellation_fails_with_timed_out() {
        let (client, _server) = tcp_pair();
        let seen = Mutex::new(None);
        let result = timeout(SHORT, || {
            let _guard = ReadOnDrop { stream: &client, seen: &seen };
            spool::thread::sleep(Duration::from_secs(60));
        });
        assert!(result.is_err());
        let error = seen.lock().unwrap().take().unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TimedOut);
        assert!(error.to_string().contains("cancelled"), "{error}");
    }

    fn a_bufwriter_dropped_during_a_cancellation_neither_hangs_nor_aborts() {
        let (client, server) = tcp_pair();
        fill(&client);
        let result = timeout(SHORT, || {
            let mut writer = BufWriter::with_capacity(64 * 1024, client.try_clone().unwrap());
            writer.write_all(&[7; 1000]).unwrap(); // buffered: the drop must flush it
            spool::thread::sleep(Duration::from_secs(60));
        });
        assert!(result.is_err());
        drop(server);
    }
}

/// A read blocked on a plain OS thread (in `poll(2)`) ends when another
/// thread cancels its scope.
#[test]
fn a_read_on_a_plain_os_thread_is_cancelled_from_another_thread() {
    let _watchdog = common::Watchdog::new("a_read_on_a_plain_os_thread_is_cancelled", LIMIT);
    let (client, _server) = tcp_pair();
    let scope = CancelScope::new();
    let (started, running) = mpsc::channel();
    let reader = {
        let scope = scope.clone();
        std::thread::spawn(move || {
            scope.run(|| {
                started.send(()).unwrap();
                (&client).read(&mut [0; 4])
            })
        })
    };
    running.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    scope.cancel();
    assert!(reader.join().unwrap().is_none());
}

/// A `JoinHandle::cancel` reaches a green thread blocked in a read, whose
/// `join` then returns the `Cancelled` payload.
#[test]
fn join_handle_cancel_ends_a_blocked_read() {
    let _watchdog = common::Watchdog::new("join_handle_cancel_ends_a_blocked_read", LIMIT);
    let (client, server) = tcp_pair();
    let reader = spool::thread::spawn(move || (&client).read(&mut [0; 4]));
    std::thread::sleep(Duration::from_millis(20));
    reader.cancel();
    let payload = reader.join().unwrap_err();
    assert!(Cancelled::from_payload(&payload).is_some());
    drop(server);
}

/// Many readers on one socket, each in its own timeout: all end, and a
/// reader outside any scope still gets the data written afterwards.
#[test]
fn cancelled_readers_leave_the_socket_to_the_others() {
    let _watchdog =
        common::Watchdog::new("cancelled_readers_leave_the_socket_to_the_others", LIMIT);
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let (client, mut server) = tcp_pair();
        let client = Arc::new(client);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let client = Arc::clone(&client);
                spool::thread::spawn(move || {
                    timeout(SHORT, || (&*client).read(&mut [0; 4])).is_err()
                })
            })
            .collect();
        let last = {
            let client = Arc::clone(&client);
            spool::thread::spawn(move || {
                let mut buf = [0; 4];
                (&*client).read_exact(&mut buf).unwrap();
                buf
            })
        };
        for waiter in waiters {
            assert!(waiter.join().unwrap());
        }
        server.write_all(b"last").unwrap();
        assert_eq!(&last.join().unwrap(), b"last");
        let _: SocketAddr = client.local_addr().unwrap();
    });
}

// A read that finds data at once is a cancellation point too, on entry:
// the cancelled call takes no byte, so the data stays for the next read.
mod on_entry {
    use super::*;

    rt_test! {
        fn a_read_that_would_not_wait_is_still_a_cancellation_point() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            server.write_all(b"hello").unwrap();
            // Let the bytes arrive, so the read below would not wait.
            let mut first = [0u8; 1];
            client.read_exact(&mut first).unwrap();
            let scope = CancelScope::new();
            scope.cancel();
            let mut buf = [0u8; 16];
            assert!(scope.run(|| client.read(&mut buf)).is_none());
            let n = client.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"ello", "the cancelled read took bytes");
        }
    }
}
