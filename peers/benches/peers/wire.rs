//! What the network scenarios' servers speak, shared by the Rust peers so
//! each does the same work: the echo buffer's size and the HTTP/1.1
//! "hello" answer (`go/main.go` has the same constants), and the
//! connection loops of the peers whose users write blocking code.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// Bytes each connection's server reads at a time (its buffer).
pub const BUF_SIZE: usize = 4096;

/// The whole answer to every HTTP request: keep-alive is HTTP/1.1's default.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// Appends one [`RESPONSE`] to `out` for each complete request head (up to
/// a blank line) in `buf`; returns how many bytes of `buf` they took. The
/// requests are GETs without a body, so the head is the whole request.
pub fn answer_requests(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut used = 0;
    while let Some(end) = buf[used..].windows(4).position(|w| w == b"\r\n\r\n") {
        used += end + 4;
        out.extend_from_slice(RESPONSE);
    }
    used
}

/// Consumes what [`answer_requests`] answered from the first `filled`
/// bytes of `buf`, moving the rest to the front; returns the bytes left,
/// or `None` when a request head fills the whole buffer (the connection
/// should be closed).
pub fn consume(buf: &mut [u8], filled: usize, used: usize) -> Option<usize> {
    if used == 0 && filled == buf.len() {
        return None;
    }
    buf.copy_within(used..filled, 0);
    Some(filled - used)
}

/// The echo connection of the blocking-code peers (spool, may, std): read
/// up to `BUF_SIZE` bytes, write them back, until the client closes.
pub fn echo<S: Read + Write>(mut stream: S) -> io::Result<()> {
    let mut buf = [0; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// The HTTP keep-alive connection of the blocking-code peers: answer every
/// request head read, until the client closes.
pub fn http<S: Read + Write>(mut stream: S) -> io::Result<()> {
    let mut buf = [0; BUF_SIZE];
    let mut filled = 0;
    let mut out = Vec::new();
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        let used = answer_requests(&buf[..filled + n], &mut out);
        match consume(&mut buf, filled + n, used) {
            Some(left) => filled = left,
            None => return Ok(()),
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}

/// 127.0.0.1 on a port the kernel picks.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
