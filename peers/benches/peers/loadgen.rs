//! The load generator of the network scenarios, one for every server.
//!
//! It runs in its own process (`peers --loadgen <mode> <addr> <conns>
//! <size> <amount>`), so the server under test has its process, its
//! descriptors and its cores' share to itself, and reports on stdout in
//! the children's protocol (`<metric> <value>` lines or `error
//! <message>`).
//!
//! # How it drives a server
//!
//! `THREADS` OS threads each own a share of the connections. A thread
//! first **establishes** its share in batches of `CONNECT_BATCH`: blocking
//! connects, one 1-byte ping on each, then every ping's echo read back, so
//! when a batch is done the server has accepted each connection and its
//! handler is running (a connect alone completes in the kernel, before the
//! server has called `accept`). Batches keep the listen backlog short.
//!
//! Then all threads meet at a barrier and the **measured phase** starts:
//! each thread turns its sockets non-blocking and multiplexes them with
//! one `mio::Poll` (epoll, edge-triggered). Every connection plays
//! closed-loop ping-pong: write a message of `size` bytes, read until the
//! whole echo is back, note the round trip's time (`Instant` before the
//! first write to after the last read), repeat. A client costs a few
//! hundred bytes and no thread, so 10,000 of them are cheap, and every
//! server sees the same clients.
//!
//! Modes:
//!
//! * `echo <addr> <conns> <size> <millis>`: ping-pong for `millis` ms;
//!   prints `round_trips_per_s` (round trips completed inside the window,
//!   over its length) and the round trips' `p50_us` and `p99_us` (from an
//!   HDR histogram, to 3 significant digits).
//! * `rounds <addr> <conns> <size> <rounds>`: every connection does
//!   `rounds` round trips; prints `ms`, from the barrier to the last one.
//! * `hold <addr> <conns> <size> <_>`: establishes the connections, prints
//!   `held <conns>`, then holds them idle until its stdin is closed (the
//!   bench reads the server's memory meanwhile).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::sys;

/// OS threads the connections are spread over.
const THREADS: usize = 2;

/// Connections connected and pinged before their echoes are read back.
const CONNECT_BATCH: usize = 64;

/// A server silent for this long has stopped answering: the load generator
/// gives up and says how far it got.
const STALL: Duration = Duration::from_secs(20);

/// A histogram of round-trip times in ns, from 1 ns to an hour, to 3
/// significant digits (a p99 of 5,695 µs is exact to ±5 µs): the memory
/// is fixed however many round trips there are, and the percentiles are
/// read off it instead of sorting every sample.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// What the measured phase does.
#[derive(Clone, Copy)]
enum Work {
    /// Ping-pong until the window closes.
    Echo { window: Duration },
    /// This many round trips per connection.
    Rounds(u64),
}

/// One thread's measured phase.
struct Tally {
    /// Round trips completed (inside the window, for `Echo`).
    round_trips: u64,
    /// Round-trip times, ns.
    latencies: Histogram<u64>,
    /// When the thread's last connection was done.
    end: Instant,
}

/// The load generator's command line: `--loadgen <mode> <addr> <conns>
/// <size> <amount>`.
pub struct Args {
    work: Option<Work>,
    addr: SocketAddr,
    conns: usize,
    size: usize,
}

impl Args {
    /// Reads the words after `--loadgen`.
    pub fn parse(args: &mut lexopt::Parser) -> Result<Args, lexopt::Error> {
        use lexopt::ValueExt;
        let usage = "usage: peers --loadgen <echo|rounds|hold> <addr> <conns> <size> <amount>";
        let mut words = Vec::new();
        while let Some(arg) = args.next()? {
            match arg {
                lexopt::Arg::Value(v) if words.len() < 5 => words.push(v),
                lexopt::Arg::Value(v) => {
                    return Err(format!("unexpected argument {v:?} ({usage})").into())
                }
                other => return Err(other.unexpected()),
            }
        }
        let [mode, addr, conns, size, amount] = <[_; 5]>::try_from(words)
            .map_err(|_| lexopt::Error::from(format!("--loadgen needs 5 words ({usage})")))?;
        let amount: u64 = amount.parse()?;
        let work = match mode.to_str() {
            Some("echo") => Some(Work::Echo {
                window: Duration::from_millis(amount),
            }),
            Some("rounds") => Some(Work::Rounds(amount)),
            Some("hold") => None,
            _ => return Err(format!("unknown mode {mode:?} ({usage})").into()),
        };
        Ok(Args {
            work,
            addr: addr.parse()?,
            conns: conns.parse()?,
            size: size.parse::<usize>()?.max(1),
        })
    }
}

/// `peers --loadgen ...`: runs one mode; returns the exit status.
pub fn loadgen_main(args: Args) -> i32 {
    sys::raise_nofile_limit();
    match run(args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            0
        }
        Err(message) => {
            println!("error {message}");
            1
        }
    }
}

fn run(args: Args) -> Result<Vec<String>, String> {
    let Args {
        work,
        addr,
        conns,
        size,
    } = args;
    let established = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let share = conns / THREADS + usize::from(t < conns % THREADS);
            let (established, barrier) = (established.clone(), barrier.clone());
            std::thread::spawn(move || {
                let streams = establish(addr, share, &established);
                // Meet the others even after an error, so no one waits for ever.
                barrier.wait();
                match work {
                    Some(work) => drive(streams?, size, work).map(Some),
                    None => {
                        // Hold the connections until told to let go.
                        barrier.wait();
                        streams.map(|_| None)
                    }
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    if work.is_none() && established.load(Ordering::SeqCst) == conns {
        println!("held {conns}");
        // Hold until the bench closes our stdin.
        let _ = io::stdin().read_to_end(&mut Vec::new());
    }
    if work.is_none() {
        barrier.wait();
    }
    let mut tallies = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(Some(tally))) => tallies.push(tally),
            Ok(Ok(None)) => {}
            Ok(Err(message)) => return Err(message),
            Err(_) => return Err("a load generator thread panicked".into()),
        }
    }
    Ok(match work {
        None => Vec::new(),
        Some(Work::Echo { window }) => {
            let round_trips: u64 = tallies.iter().map(|t| t.round_trips).sum();
            let mut latencies = new_histogram();
            for t in &tallies {
                latencies
                    .add(&t.latencies)
                    .map_err(|e| format!("merging the threads' latencies: {e}"))?;
            }
            if latencies.is_empty() {
                return Err(format!("no round trip completed in {window:?}"));
            }
            let at = |q: f64| latencies.value_at_quantile(q);
            vec![
                format!(
                    "round_trips_per_s {}",
                    round_trips as f64 / window.as_secs_f64()
                ),
                format!("p50_us {}", at(0.50) as f64 / 1e3),
                format!("p99_us {}", at(0.99) as f64 / 1e3),
            ]
        }
        Some(Work::Rounds(_)) => {
            let end = tallies.iter().map(|t| t.end).max().unwrap_or(start);
            vec![format!("ms {}", (end - start).as_secs_f64() * 1e3)]
        }
    })
}

/// Opens `n` connections to `addr` in batches, each pinged once and its
/// echo read back, so the server has accepted all of them.
fn establish(
    addr: SocketAddr,
    n: usize,
    established: &AtomicUsize,
) -> Result<Vec<TcpStream>, String> {
    let failed = |what: &str, e: io::Error| {
        format!(
            "{what} after {} connections were established: {e}",
            established.load(Ordering::SeqCst)
        )
    };
    let mut streams: Vec<TcpStream> = Vec::with_capacity(n);
    while streams.len() < n {
        let first = streams.len();
        for _ in first..n.min(first + CONNECT_BATCH) {
            let mut s =
                TcpStream::connect_timeout(&addr, STALL).map_err(|e| failed("connect", e))?;
            s.set_nodelay(true).map_err(|e| failed("TCP_NODELAY", e))?;
            s.set_read_timeout(Some(STALL))
                .map_err(|e| failed("SO_RCVTIMEO", e))?;
            s.write_all(&[1]).map_err(|e| failed("first ping", e))?;
            streams.push(s);
        }
        for s in &mut streams[first..] {
            let mut echo = [0];
            s.read_exact(&mut echo).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => failed(
                    &format!("no echo of the first ping in {} s", STALL.as_secs()),
                    e,
                ),
                _ => failed("reading the first ping's echo", e),
            })?;
            established.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(streams)
}

/// A client in the measured phase.
struct Client {
    stream: mio::net::TcpStream,
    /// Bytes of the current message written and read back.
    written: usize,
    read: usize,
    /// When the current message's first byte went out.
    sent: Instant,
    round_trips: u64,
    done: bool,
}

/// The measured phase of one thread: ping-pong on every stream.
fn drive(streams: Vec<TcpStream>, size: usize, work: Work) -> Result<Tally, String> {
    let os = |what: &str, e: io::Error| format!("{what}: {e}");
    let mut poll = Poll::new().map_err(|e| os("epoll_create", e))?;
    let mut clients = Vec::with_capacity(streams.len());
    let start = Instant::now();
    for (i, s) in streams.into_iter().enumerate() {
        s.set_nonblocking(true).map_err(|e| os("O_NONBLOCK", e))?;
        let mut stream = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| os("epoll_ctl", e))?;
        clients.push(Client {
            stream,
            written: 0,
            read: 0,
            sent: start,
            round_trips: 0,
            done: false,
        });
    }
    let message = vec![0x5a; size];
    let mut buf = vec![0; size];
    let start = Instant::now();
    let deadline = match work {
        Work::Echo { window } => Some(start + window),
        Work::Rounds(_) => None,
    };
    let mut tally = Tally {
        round_trips: 0,
        latencies: new_histogram(),
        end: start,
    };
    let mut left = clients.len();
    let mut events = Events::with_capacity(1024);
    let mut last_progress = start;
    let mut step = |c: &mut Client, tally: &mut Tally| -> Result<bool, String> {
        let before = tally.round_trips;
        loop {
            if c.done {
                break;
            }
            if c.written == 0 && c.read == 0 {
                c.sent = Instant::now();
            }
            let result = if c.written < size {
                c.stream
                    .write(&message[c.written..])
                    .map(|n| c.written += n)
            } else {
                match c.stream.read(&mut buf[..size - c.read]) {
                    Ok(0) => return Err("the server closed a connection".into()),
                    Ok(n) => {
                        c.read += n;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("a connection failed: {e}")),
            }
            if c.read == size {
                let now = Instant::now();
                c.written = 0;
                c.read = 0;
                match (work, deadline) {
                    (Work::Echo { .. }, Some(deadline)) if now > deadline => c.done = true,
                    _ => {
                        c.round_trips += 1;
                        tally.round_trips += 1;
                        // Saturates at the histogram's highest value (an
                        // hour), which no round trip reaches.
                        tally
                            .latencies
                            .saturating_record((now - c.sent).as_nanos() as u64);
                        if let Work::Rounds(rounds) = work {
                            c.done = c.round_trips >= rounds;
                        }
                    }
                }
                if c.done {
                    tally.end = now;
                }
            }
        }
        Ok(tally.round_trips > before || c.done)
    };
    for c in &mut clients {
        step(c, &mut tally)?;
        if c.done {
            left -= 1;
        }
    }
    while left > 0 {
        let now = Instant::now();
        if deadline.is_some_and(|d| now > d) {
            break;
        }
        if now - last_progress > STALL {
            return Err(format!(
                "no echo for {} s ({left} connections waiting)",
                STALL.as_secs()
            ));
        }
        let timeout = deadline.map_or(Duration::from_millis(100), |d| {
            (d - now).min(Duration::from_millis(100))
        });
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(os("epoll_wait", e)),
        }
        for event in &events {
            let c = &mut clients[event.token().0];
            if c.done {
                continue;
            }
            if step(c, &mut tally)? {
                last_progress = Instant::now();
            }
            if c.done {
                left -= 1;
            }
        }
    }
    if deadline.is_some() {
        tally.end = Instant::now();
    }
    Ok(tally)
}
