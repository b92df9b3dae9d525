//! A minimal HTTP/1.1 keep-alive "hello" server, one green thread per
//! connection. Drives itself with keep-alive clients unless told to serve
//! only.
//!
//! ```text
//! cargo run --release --example http_hello                # 500 clients x 200 requests, then exit
//! cargo run --release --example http_hello -- --serve 127.0.0.1:8080
//! wrk -t2 -c100 -d5s http://127.0.0.1:8080/               # against --serve
//! ```
//!
//! The request parser is deliberately small (request line and headers up
//! to a blank line, `Content-Length` bodies, `Connection: close`); a real
//! server would use an HTTP crate over the same `Read`/`Write` streams.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};
use spool::thread;

const BODY: &str = "Hello, World!";

/// Longest request head accepted, as servers cap it.
const MAX_HEAD: usize = 16 * 1024;

/// Reads one request head; `Ok(None)` at a clean end of stream. Returns
/// whether the client asked to close, after skipping any body.
fn read_request(reader: &mut BufReader<&TcpStream>) -> io::Result<Option<bool>> {
    let mut line = String::new();
    let mut head_len = 0;
    let mut close = false;
    let mut content_length = 0usize;
    let mut first = true;
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return if first && head_len == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-request",
                ))
            };
        }
        head_len += n;
        if head_len > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let trimmed = line.trim_end();
        if first {
            first = false;
            if !trimmed.ends_with("HTTP/1.1") && !trimmed.ends_with("HTTP/1.0") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an HTTP/1.x request",
                ));
            }
            close = trimmed.ends_with("HTTP/1.0");
            continue;
        }
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")
                })?;
            }
        }
    }
    io::copy(&mut reader.take(content_length as u64), &mut io::sink())?;
    Ok(Some(close))
}

fn serve_connection(stream: TcpStream, requests: &AtomicU64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(&stream);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    while let Some(close) = read_request(&mut reader)? {
        (&stream).write_all(response.as_bytes())?;
        requests.fetch_add(1, Ordering::Relaxed);
        if close {
            break;
        }
    }
    Ok(())
}

fn accept_loop(listener: TcpListener, requests: Arc<AtomicU64>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let requests = requests.clone();
                thread::spawn(move || {
                    if let Err(e) = serve_connection(stream, &requests) {
                        if e.kind() != io::ErrorKind::ConnectionReset {
                            eprintln!("http_hello: connection: {e}");
                        }
                    }
                });
            }
            Err(e) => {
                eprintln!("http_hello: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// One keep-alive client: `n` GETs on one connection, each response
/// checked.
fn client(addr: std::net::SocketAddr, n: usize) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    for _ in 0..n {
        (&stream).write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut content_length = None;
        line.clear();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!("bad status line {line:?}")));
        }
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("Content-Length: ") {
                content_length = v.parse::<usize>().ok();
            }
        }
        let mut body = vec![0; content_length.unwrap_or(0)];
        reader.read_exact(&mut body)?;
        if body != BODY.as_bytes() {
            return Err(io::Error::other("unexpected body"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut clients, mut per_client, mut serve) = (500usize, 200usize, None);
    while let Some(arg) = args.next() {
        let value = args.next();
        let number = value
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0);
        match (arg.as_str(), number, value) {
            ("--clients", Some(n), _) => clients = n,
            ("--requests", Some(n), _) => per_client = n,
            ("--serve", _, Some(addr)) => serve = Some(addr),
            _ => {
                eprintln!("usage: http_hello [--clients N] [--requests M] [--serve ADDR]");
                return ExitCode::from(2);
            }
        }
    }
    let requests = Arc::new(AtomicU64::new(0));
    if let Some(addr) = serve {
        match TcpListener::bind(addr.as_str()) {
            Ok(listener) => {
                println!("http_hello: serving on http://{addr}/");
                spool::run(move || accept_loop(listener, requests));
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("http_hello: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("http_hello: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    {
        let requests = requests.clone();
        thread::spawn(move || accept_loop(listener, requests));
    }
    println!("http_hello: http://{addr}/; {clients} keep-alive clients x {per_client} requests");
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| thread::spawn(move || client(addr, per_client)))
        .collect();
    let failed = handles
        .into_iter()
        .map(|h| h.join())
        .filter(|r| {
            if let Ok(Err(e)) = r {
                eprintln!("http_hello: client: {e}");
            }
            !matches!(r, Ok(Ok(())))
        })
        .count();
    let elapsed = start.elapsed();
    let served = requests.load(Ordering::Relaxed);
    println!(
        "http_hello: {served} requests served in {elapsed:.2?}: {:.0} requests/s; {failed} clients failed",
        served as f64 / elapsed.as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
