//! A line-based chat server: every line a client sends is broadcast to all
//! other clients. Runs its own clients unless told to serve only.
//!
//! ```text
//! cargo run --release --example chat                      # 200 clients chat, then exit
//! cargo run --release --example chat -- --clients 1000 --lines 20
//! cargo run --release --example chat -- --serve 127.0.0.1:7001   # then: nc 127.0.0.1 7001
//! ```
//!
//! Each connection has two green threads: a reader that parses lines and
//! hands them to the hub, and a writer that drains the connection's own
//! channel, so one slow client never stalls the others. This is the shape a
//! threaded std program would have, with `std::{net, sync, thread}`
//! replaced by spool's.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};
use spool::sync::mpsc::{self, Receiver, Sender};
use spool::sync::{Barrier, Mutex};
use spool::thread;

/// The connected clients' outgoing queues, by client number.
#[derive(Default)]
struct Hub {
    clients: Mutex<HashMap<u64, Sender<Arc<str>>>>,
}

impl Hub {
    fn join(&self, id: u64) -> Receiver<Arc<str>> {
        let (tx, rx) = mpsc::channel();
        self.clients.lock().unwrap().insert(id, tx);
        rx
    }

    fn leave(&self, id: u64) {
        self.clients.lock().unwrap().remove(&id);
    }

    /// Queues `line` for every client but its sender.
    fn broadcast(&self, from: u64, line: &str) {
        let line: Arc<str> = Arc::from(format!("{from}: {line}\n"));
        for (id, tx) in self.clients.lock().unwrap().iter() {
            if *id != from {
                // A client that just left has dropped its receiver.
                let _ = tx.send(line.clone());
            }
        }
    }
}

fn serve_client(hub: Arc<Hub>, id: u64, stream: TcpStream) -> io::Result<()> {
    let outgoing = hub.join(id);
    // Greeting only after joining: a client that has read it knows every
    // later line will reach it.
    (&stream).write_all(format!("welcome, you are client {id}\n").as_bytes())?;
    let mut writer_stream = stream.try_clone()?;
    let writer = thread::spawn(move || -> io::Result<()> {
        for line in outgoing {
            writer_stream.write_all(line.as_bytes())?;
        }
        Ok(())
    });
    let mut result = Ok(());
    for line in BufReader::new(&stream).lines() {
        match line {
            Ok(line) => hub.broadcast(id, &line),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Dropping the queue ends the writer once it has sent what is queued.
    hub.leave(id);
    let _ = writer.join();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    result
}

fn accept_loop(listener: TcpListener, hub: Arc<Hub>) {
    for (id, stream) in (1u64..).zip(listener.incoming()) {
        match stream {
            Ok(stream) => {
                let hub = hub.clone();
                thread::spawn(move || {
                    if let Err(e) = serve_client(hub, id, stream) {
                        eprintln!("chat: client {id}: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("chat: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

const USAGE: &str = "usage: chat [--clients N] [--lines M] [--serve ADDR]";

/// Reads the command line; an unknown flag or a bad value is an error.
fn parse_args() -> Result<(usize, usize, Option<String>), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut clients, mut lines, mut serve) = (200, 10, None);
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
            Long("lines") => lines = positive(&mut args, "--lines")?,
            Long("serve") => serve = Some(args.value()?.string()?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((clients, lines, serve))
}

fn main() -> ExitCode {
    let (clients, lines, serve) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("chat: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let hub = Arc::new(Hub::default());
    if let Some(addr) = serve {
        match TcpListener::bind(addr.as_str()) {
            Ok(listener) => {
                println!("chat: serving on {addr}");
                spool::run(move || accept_loop(listener, hub));
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("chat: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    thread::spawn(move || accept_loop(listener, hub));
    println!("chat: server on {addr}; {clients} clients send {lines} lines each");

    // Everyone connects and is registered before anyone speaks, so every
    // client must receive every other client's lines.
    let connected = Arc::new(Barrier::new(clients + 1));
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|me| {
            let connected = connected.clone();
            thread::spawn(move || -> io::Result<usize> {
                let stream = TcpStream::connect(addr)?;
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                // The greeting says the server has registered us.
                reader.read_line(&mut line)?;
                connected.wait();
                let mut writer = stream.try_clone()?;
                let sender = thread::spawn(move || -> io::Result<()> {
                    for i in 0..lines {
                        writeln!(writer, "line {i} from client {me}")?;
                    }
                    Ok(())
                });
                let expected = (clients - 1) * lines;
                let mut received = 0;
                while received < expected {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("server closed after {received} of {expected} lines"),
                        ));
                    }
                    received += 1;
                }
                sender.join().expect("sender panicked")?;
                Ok(received)
            })
        })
        .collect();
    connected.wait();
    let mut failed = 0;
    let mut delivered = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => delivered += n,
            Ok(Err(e)) => {
                failed += 1;
                if failed <= 5 {
                    eprintln!("chat: client: {e}");
                }
            }
            Err(_) => failed += 1,
        }
    }
    let elapsed = start.elapsed();
    println!(
        "chat: {clients} clients, {} lines sent, {delivered} lines delivered in {elapsed:.2?} \
         ({:.0} deliveries/s); {failed} clients failed",
        clients * lines,
        delivered as f64 / elapsed.as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
