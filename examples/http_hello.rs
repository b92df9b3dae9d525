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
//! Requests and responses are parsed with `httparse` (the parser under
//! hyper): the server answers every complete request in what it has read,
//! so pipelined requests are answered in order, keeps the connection open
//! unless the client asks to close (or speaks HTTP/1.0 without
//! keep-alive), skips `Content-Length` bodies, and answers a malformed
//! request with `400 Bad Request` and closes the connection.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};
use spool::thread;

const BODY: &str = "Hello, World!";

/// Longest request head accepted, as servers cap it.
const MAX_HEAD: usize = 16 * 1024;

/// Most headers a request may have.
const MAX_HEADERS: usize = 64;

/// The answer to a malformed request, which says what was wrong; the
/// connection is closed after it.
fn bad_request(why: &str) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{why}\n",
        why.len() + 1
    )
}

/// What to do with one request head found at the start of a buffer.
enum Parsed {
    /// A whole head of `head` bytes, followed by a body of `body` bytes;
    /// `close` when the client asked to close after it.
    Request {
        head: usize,
        body: usize,
        close: bool,
    },
    /// The head is not complete yet: read more.
    Partial,
    /// Not a request this server accepts; the text says why.
    Bad(&'static str),
}

/// Parses the request head at the start of `buf`.
fn parse_request(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Parsed::Bad("request head too long")
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad("malformed request"),
    };
    // HTTP/1.1 keeps the connection open unless told to close; HTTP/1.0
    // closes it unless told to keep it.
    let mut close = request.version == Some(0);
    let mut body = 0;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => body = n,
                Err(_) => return Parsed::Bad("bad Content-Length"),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad("chunked bodies are not supported");
        }
    }
    Parsed::Request { head, body, close }
}

/// Answers every request on `stream` until the client closes or asks to.
fn serve_connection(mut stream: TcpStream, requests: &AtomicU64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut buf = vec![0; MAX_HEAD];
    let mut filled = 0;
    // Body bytes still to skip (a body longer than what was read).
    let mut skip = 0usize;
    let mut out = Vec::new();
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(()); // the client closed (mid-request or not)
        }
        filled += n;
        // Answer every complete request read so far (pipelining).
        let mut used = skip.min(filled);
        skip -= used;
        let mut close = false;
        while skip == 0 && !close {
            match parse_request(&buf[used..filled]) {
                Parsed::Request {
                    head,
                    body,
                    close: c,
                } => {
                    out.extend_from_slice(response.as_bytes());
                    requests.fetch_add(1, Ordering::Relaxed);
                    let in_buf = body.min(filled - used - head);
                    used += head + in_buf;
                    skip = body - in_buf;
                    close = c;
                }
                Parsed::Partial => break,
                Parsed::Bad(why) => {
                    out.extend_from_slice(bad_request(why).as_bytes());
                    close = true;
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
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
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = vec![0; 4096];
    let mut filled = 0;
    for _ in 0..n {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        // Read until the whole response (head and body) is in `buf`.
        let (head, body) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(head)) => {
                    if response.code != Some(200) {
                        return Err(io::Error::other(format!(
                            "status {:?} {:?}",
                            response.code, response.reason
                        )));
                    }
                    let length: usize = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                        .ok_or_else(|| io::Error::other("no Content-Length"))?;
                    if filled >= head + length {
                        break (head, length);
                    }
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(io::Error::other(format!("malformed response: {e}"))),
            }
            if filled == buf.len() {
                return Err(io::Error::other("response too long"));
            }
            match stream.read(&mut buf[filled..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                k => filled += k,
            }
        };
        if &buf[head..head + body] != BODY.as_bytes() {
            return Err(io::Error::other("unexpected body"));
        }
        buf.copy_within(head + body..filled, 0);
        filled -= head + body;
    }
    Ok(())
}

const USAGE: &str = "usage: http_hello [--clients N] [--requests M] [--serve ADDR]";

/// `(clients, requests per client, address to serve on)` from the command
/// line; an unknown flag or a bad value is an error.
fn parse_args() -> Result<(usize, usize, Option<String>), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut clients, mut per_client, mut serve) = (500, 200, None);
    let mut args = lexopt::Parser::from_env();
    // A count of at least 1.
    let positive = |args: &mut lexopt::Parser, name: &str| -> Result<usize, lexopt::Error> {
        match args.value()?.parse()? {
            0 => Err(format!("{name} must be at least 1").into()),
            n => Ok(n),
        }
    };
    while let Some(arg) = args.next()? {
        match arg {
            Long("clients") => clients = positive(&mut args, "--clients")?,
            Long("requests") => per_client = positive(&mut args, "--requests")?,
            Long("serve") => serve = Some(args.value()?.string()?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((clients, per_client, serve))
}

fn main() -> ExitCode {
    let (clients, per_client, serve) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("http_hello: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
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
