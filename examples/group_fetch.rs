//! A server and a fan-out of clients under one task group with a deadline.
//!
//! ```text
//! cargo run --example group_fetch
//! cargo run --example group_fetch -- --deadline-ms 6000   # everything completes
//! ```
//!
//! The group's body starts a server (`Group::start` returns once it is
//! listening, with its address), then fetches a list of paths, one client
//! per path, all at once. The server answers `/wait/<ms>` after `<ms>`
//! milliseconds. The group has a deadline: the fetches that finish before
//! it complete; when it passes, every thread still running — slow clients,
//! their connection handlers, the accept loop, and the body waiting for
//! them — is cancelled where it blocks and unwinds, running its
//! destructors (here, a guard that reports the fetch as cancelled). The
//! clients borrow the report table from `main`'s stack: the group does not
//! return before every one of them has ended.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};

/// What became of one fetch.
enum Outcome {
    Completed(String),
    Failed(String),
    Cancelled,
}

/// Reports a fetch as cancelled unless it finished: a cancelled client
/// unwinds out of its blocking call, and this guard's destructor runs.
struct Report<'a> {
    path: &'a str,
    start: Instant,
    table: &'a Mutex<Vec<(String, Duration, Outcome)>>,
    outcome: Option<Outcome>,
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Outcome::Cancelled);
        let entry = (self.path.to_string(), self.start.elapsed(), outcome);
        self.table.lock().unwrap().push(entry);
    }
}

/// One connection: reads `GET <path>`, waits what the path asks, answers.
fn serve(conn: TcpStream) -> std::io::Result<()> {
    let mut request = String::new();
    BufReader::new(&conn).read_line(&mut request)?;
    let path = request.trim().trim_start_matches("GET ").to_string();
    let ms = path.rsplit('/').next().and_then(|n| n.parse().ok());
    let Some(ms) = ms else {
        return writeln!(&conn, "400 no such path: {path}");
    };
    spool::thread::sleep(Duration::from_millis(ms));
    writeln!(&conn, "200 {path} after {ms} ms")
}

/// One client: fetches `path` from `addr`.
fn fetch(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let conn = TcpStream::connect(addr)?;
    writeln!(&conn, "GET {path}")?;
    let mut reply = String::new();
    BufReader::new(&conn).read_line(&mut reply)?;
    Ok(reply.trim().to_string())
}

const USAGE: &str = "usage: group_fetch [--deadline-ms <milliseconds>]";

/// The group's deadline from the command line (300 ms by default); an
/// unknown flag or a bad value is an error.
fn parse_args() -> Result<Duration, lexopt::Error> {
    use lexopt::prelude::*;
    let mut deadline = Duration::from_millis(300);
    let mut args = lexopt::Parser::from_env();
    while let Some(arg) = args.next()? {
        match arg {
            Long("deadline-ms") => deadline = Duration::from_millis(args.value()?.parse()?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(deadline)
}

fn main() -> ExitCode {
    let deadline = match parse_args() {
        Ok(deadline) => deadline,
        Err(e) => {
            eprintln!("group_fetch: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let paths = [
        "/wait/5",
        "/wait/40",
        "/wait/120",
        "/wait/900",
        "/wait/5000",
    ];
    let table = Mutex::new(Vec::new());
    let start = Instant::now();
    let result = spool::group::Builder::new()
        .name("fetch")
        .timeout(deadline)
        .run(|g| {
            let (addr, _server) = g
                .start(|started| -> std::io::Result<()> {
                    let listener = TcpListener::bind("127.0.0.1:0")?;
                    started.ready(listener.local_addr()?);
                    loop {
                        let (conn, _) = listener.accept()?;
                        g.spawn(move || serve(conn));
                    }
                })
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            println!(
                "server listening on {addr}; fetching {} paths with a {} ms deadline",
                paths.len(),
                deadline.as_millis()
            );
            let table = &table;
            let clients: Vec<_> = paths
                .iter()
                .map(|path| {
                    g.spawn_named(format!("fetch {path}"), move || {
                        let mut report = Report {
                            path,
                            start,
                            table,
                            outcome: None,
                        };
                        report.outcome = Some(match fetch(addr, path) {
                            Ok(reply) => Outcome::Completed(reply),
                            Err(e) => Outcome::Failed(e.to_string()),
                        });
                        Ok(())
                    })
                })
                .collect();
            for client in clients {
                let _ = client.join();
            }
            // Every fetch is done: stop the server's accept loop.
            g.cancel();
            Ok::<_, std::io::Error>(())
        });
    let mut table = table.into_inner().unwrap();
    table.sort_by_key(|(_, took, _)| *took);
    for (path, took, outcome) in &table {
        let took = took.as_millis();
        match outcome {
            Outcome::Completed(reply) => {
                println!("  {path:<12} completed in {took:>4} ms: {reply}")
            }
            Outcome::Failed(e) => println!("  {path:<12} failed after {took:>4} ms: {e}"),
            Outcome::Cancelled => println!("  {path:<12} cancelled after {took:>4} ms"),
        }
    }
    if table
        .iter()
        .any(|(_, _, outcome)| matches!(outcome, Outcome::Failed(_)))
    {
        eprintln!("group_fetch: a fetch failed");
        return ExitCode::FAILURE;
    }
    match result {
        Ok(()) => {
            println!("group: every fetch finished in time");
            ExitCode::SUCCESS
        }
        Err(e) if e.is_timeout() => {
            println!("group: {e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("group_fetch: {e}");
            ExitCode::FAILURE
        }
    }
}
