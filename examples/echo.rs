//! A TCP echo server, one green thread per connection, that loads itself.
//!
//! With no arguments it listens on a free loopback port, opens 5,000
//! client connections from green threads, has every client send and check
//! 100 echoed 64-byte messages while all connections are open, prints what
//! it did and exits:
//!
//! ```text
//! cargo run --release --example echo
//! cargo run --release --example echo -- --clients 10000 --messages 50 --size 4096
//! cargo run --release --example echo -- --serve 127.0.0.1:7000   # serve only
//! ```
//!
//! The server is the plain blocking code a thread-per-connection std
//! server would be, with `std::net` replaced by `spool::net`.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};
use spool::sync::Barrier;
use spool::thread;

struct Options {
    clients: usize,
    /// Whether `--clients` was given (otherwise it may be lowered to fit
    /// the descriptor limit).
    clients_given: bool,
    messages: usize,
    size: usize,
    serve: Option<String>,
}

const USAGE: &str = "usage: echo [--clients N] [--messages M] [--size BYTES] [--serve ADDR]";

/// Reads the command line; an unknown flag or a bad value is an error.
fn parse_args() -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut options = Options {
        clients: 5_000,
        clients_given: false,
        messages: 100,
        size: 64,
        serve: None,
    };
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
            Long("clients") => {
                options.clients = positive(&mut args, "--clients")?;
                options.clients_given = true;
            }
            Long("messages") => options.messages = positive(&mut args, "--messages")?,
            Long("size") => options.size = positive(&mut args, "--size")?,
            Long("serve") => options.serve = Some(args.value()?.string()?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(options)
}

/// Echoes everything back until the client closes.
fn serve_connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// Accepts forever; an accept error (say, out of descriptors) is reported
/// and the loop goes on.
fn accept_loop(listener: TcpListener, served: Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let served = served.clone();
                thread::spawn(move || {
                    match serve_connection(stream) {
                        // A client that goes away without reading its last
                        // echo resets the connection: not the server's error.
                        Err(e) if e.kind() != io::ErrorKind::ConnectionReset => {
                            eprintln!("echo: connection: {e}");
                        }
                        _ => {}
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                });
            }
            Err(e) => {
                eprintln!("echo: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// One client: connect, wait for everyone, then ping-pong `messages`
/// messages and check each echo.
fn client(addr: std::net::SocketAddr, options: &Options, ready: &Barrier) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    ready.wait();
    let message: Vec<u8> = (0..options.size).map(|i| i as u8).collect();
    let mut echo = vec![0; options.size];
    for _ in 0..options.messages {
        stream.write_all(&message)?;
        stream.read_exact(&mut echo)?;
        if echo != message {
            return Err(io::Error::other("echo differs from the message sent"));
        }
    }
    Ok(())
}

/// Raises the soft descriptor limit to the hard one (each connection
/// needs two descriptors here: client and server end); returns the limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, exclusively borrowed rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fd_limit = raise_fd_limit();
    let served = Arc::new(AtomicUsize::new(0));

    if let Some(addr) = &options.serve {
        let listener = match TcpListener::bind(addr.as_str()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("echo: serving on {addr}");
        // `spool::run` makes `main`'s code a green thread too.
        spool::run(move || accept_loop(listener, served));
        return ExitCode::SUCCESS;
    }

    let mut options = options;
    let needed = 2 * options.clients as u64 + 64;
    if fd_limit < needed && !options.clients_given {
        let fit = usize::try_from(fd_limit.saturating_sub(64) / 2)
            .unwrap_or(0)
            .max(1);
        println!(
            "echo: the open-file limit (RLIMIT_NOFILE) is {fd_limit}, too low for {} clients \
             (two descriptors each): running {fit}; raise it with `ulimit -n {needed}`",
            options.clients
        );
        options.clients = fit;
    } else if fd_limit < needed {
        eprintln!(
            "echo: {} clients need about {needed} file descriptors but the limit \
             (RLIMIT_NOFILE) is {fd_limit}: raise it with `ulimit -n {needed}` or use fewer --clients",
            options.clients
        );
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!(
        "echo: server on {addr}; {} clients x {} messages of {} bytes",
        options.clients, options.messages, options.size
    );
    {
        let served = served.clone();
        thread::spawn(move || accept_loop(listener, served));
    }

    let options = Arc::new(options);
    // Everyone connects first, so all connections are open at once while
    // the messages flow; the main thread joins the barrier to time it.
    let ready = Arc::new(Barrier::new(options.clients + 1));
    let connect_start = Instant::now();
    let clients: Vec<_> = (0..options.clients)
        .map(|_| {
            let (options, ready) = (options.clone(), ready.clone());
            thread::spawn(move || client(addr, &options, &ready))
        })
        .collect();
    ready.wait();
    let connected_in = connect_start.elapsed();
    let start = Instant::now();
    let mut failed = 0;
    for (i, client) in clients.into_iter().enumerate() {
        match client.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("echo: client {i}: {e}");
                }
            }
            Err(_) => failed += 1,
        }
    }
    let elapsed = start.elapsed();
    let round_trips = (options.clients - failed) * options.messages;
    println!(
        "echo: {} connections open at once (connected in {:.0?})",
        options.clients, connected_in
    );
    println!(
        "echo: {round_trips} round trips in {elapsed:.2?}: {:.0} round trips/s, {:.1} MiB/s each way",
        round_trips as f64 / elapsed.as_secs_f64(),
        (round_trips * options.size) as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
    );
    // The server's green threads finish as their clients' sockets close.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.load(Ordering::Relaxed) < options.clients && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    println!(
        "echo: server finished {} connections; {failed} clients failed",
        served.load(Ordering::Relaxed)
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
