//! The network scenarios, bench side: one sample starts the system's
//! server in a child process (`peers --child <system> echo_server 0`, or
//! `peers-go echo_server 0`; it prints `listening <addr>` and serves until
//! killed), then drives it from a second process, the suite's own load
//! generator (`loadgen.rs`) or `wrk`, and turns what they print into an
//! [`Outcome`]. Server and clients are separate processes, so each has the
//! whole descriptor limit and neither's threads run in the other's
//! scheduler.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::child::{self, Outcome};
use crate::sys;

/// One network sample: what the clients do.
#[derive(Clone, Copy)]
pub enum Job {
    /// `conns` connections play closed-loop ping-pong with `size`-byte
    /// messages for `millis` ms: round trips/s, p50 and p99.
    Echo {
        conns: usize,
        size: usize,
        millis: u64,
    },
    /// `conns` connections are held open and idle: the server's VmRSS
    /// increase per connection.
    Idle { conns: usize },
    /// `conns` connections, all open, each do `rounds` 64-byte round
    /// trips: ms until the last is done.
    Rounds { conns: usize, rounds: u64 },
    /// `wrk -t2 -c<conns> -d<secs>s --latency` against the HTTP server.
    Http { conns: usize, secs: u64 },
}

/// Runs one sample of `job` against `system`'s server.
pub fn run(system: &str, job: Job, go: Result<&PathBuf, &String>) -> Outcome {
    let kind = match job {
        Job::Http { .. } => "http_server",
        _ => "echo_server",
    };
    let server = match Server::start(system, kind, go) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let outcome = match job {
        Job::Echo {
            conns,
            size,
            millis,
        } => loadgen(&server, "echo", conns, size, millis),
        Job::Rounds { conns, rounds } => loadgen(&server, "rounds", conns, 64, rounds),
        Job::Idle { conns } => idle(&server, conns),
        Job::Http { conns, secs } => wrk(&server, conns, secs),
    };
    server.explain(outcome)
}

/// A server under test, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// The server's stderr so far (its last lines explain a failure).
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `system`'s `kind` server and waits for its address.
    fn start(system: &str, kind: &str, go: Result<&PathBuf, &String>) -> Result<Server, Outcome> {
        let mut command = child::command(system, go)?;
        command
            .args([kind, "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| Outcome::Failed(format!("cannot start the server: {e}")))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let mut s = sink.lock().unwrap();
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                // Keep the tail: a failing server may log per connection.
                if s.len() > 64 * 1024 {
                    let cut = s.len() - 16 * 1024;
                    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    s.drain(..cut);
                }
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let mut server = Server {
            child,
            addr: String::new(),
            _stdout: stdout,
            stderr,
        };
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("listening ") {
            server.addr = addr.to_owned();
            return Ok(server);
        }
        if let Some(why) = line.strip_prefix("unsupported ") {
            return Err(Outcome::Skipped(why.to_owned()));
        }
        if let Some(why) = line.strip_prefix("n/a ") {
            return Err(Outcome::NotApplicable(why.to_owned()));
        }
        let why = match line.strip_prefix("error ") {
            Some(why) => why.to_owned(),
            None => {
                let _ = server.child.wait();
                server.explain_text(format!("the server did not start (it printed {line:?})"))
            }
        };
        Err(Outcome::Failed(why))
    }

    /// `why`, with the server's last line on stderr if it wrote one.
    fn explain_text(&self, why: String) -> String {
        let stderr = self.stderr.lock().unwrap();
        match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(last) => format!("{why}; the server's last message: {}", last.trim()),
            None => why,
        }
    }

    /// A failed outcome with the server's last words added.
    fn explain(&self, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Failed(why) => Outcome::Failed(self.explain_text(why)),
            other => other,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The load generator process: `peers --loadgen <mode> <addr> <conns> <size> <amount>`.
fn loadgen_command(mode: &str, addr: &str, conns: usize, size: usize, amount: u64) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.args(["--loadgen", mode, addr])
        .arg(conns.to_string())
        .arg(size.to_string())
        .arg(amount.to_string());
    c
}

/// Runs the load generator to its end and returns its report.
fn loadgen(server: &Server, mode: &str, conns: usize, size: usize, amount: u64) -> Outcome {
    child::collect(loadgen_command(mode, &server.addr, conns, size, amount))
}

/// Has the load generator hold `conns` idle connections and measures the
/// server's VmRSS before and while it holds them.
fn idle(server: &Server, conns: usize) -> Outcome {
    let rss = |what: &str| {
        sys::process_status_kib(server.pid(), "VmRSS")
            .ok_or_else(|| Outcome::Failed(format!("cannot read the server's VmRSS {what}")))
    };
    let before = match rss("before") {
        Ok(kib) => kib,
        Err(o) => return o,
    };
    let mut command = loadgen_command("hold", &server.addr, conns, 1, 0);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut holder = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start the load generator: {e}")),
    };
    let out = read_until_held(holder.stdout.take().expect("piped stdout"));
    let outcome = if out.lines().any(|l| l.starts_with("held ")) {
        match rss("with the connections open") {
            Ok(after) => Outcome::Measured(vec![(
                "kib_per_conn".into(),
                (after - before) / conns as f64,
            )]),
            Err(o) => o,
        }
    } else if let Some(why) = out.lines().find_map(|l| l.strip_prefix("error ")) {
        Outcome::Failed(why.to_owned())
    } else {
        Outcome::Failed(format!("the load generator stopped: {out:?}"))
    };
    drop(holder.stdin.take()); // lets it go
    let _ = holder.wait();
    outcome
}

/// What the load generator printed up to its `held` line (or its end).
fn read_until_held(stdout: ChildStdout) -> String {
    let mut reader = BufReader::new(stdout);
    let mut out = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(1..) => out.push_str(&line),
            _ => return out,
        }
        if line.starts_with("held ") {
            return out;
        }
    }
}

/// Runs `wrk` against the HTTP server; requests/s and p50/p99 latency.
fn wrk(server: &Server, conns: usize, secs: u64) -> Outcome {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
        ])
        .arg(format!("http://{}/", server.addr))
        .stdin(Stdio::null())
        .output();
    let output =
        match output {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Skipped(
                "`wrk` is not on the PATH (Debian: `apt-get install wrk`); the HTTP rows are empty"
                    .into(),
            ),
            Err(e) => return Outcome::Failed(format!("cannot run wrk: {e}")),
        };
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Outcome::Failed(format!(
            "wrk failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_wrk(&text)
}

/// Requests/s and the 50% and 99% latencies (µs) from wrk's report; a run
/// with non-2xx answers or socket errors failed.
fn parse_wrk(text: &str) -> Outcome {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    if let Some(n) = field("Non-2xx or 3xx responses:") {
        return Outcome::Failed(format!("{n} answers were not 2xx or 3xx"));
    }
    if let Some(errors) = field("Socket errors:") {
        return Outcome::Failed(format!("wrk saw socket errors: {errors}"));
    }
    let rate = field("Requests/sec:").and_then(|v| v.parse::<f64>().ok());
    let p50 = field("50%").and_then(micros);
    let p99 = field("99%").and_then(micros);
    match (rate, p50, p99) {
        (Some(rate), Some(p50), Some(p99)) => Outcome::Measured(vec![
            ("requests_per_s".into(), rate),
            ("p50_us".into(), p50),
            ("p99_us".into(), p99),
        ]),
        _ => Outcome::Failed(format!("cannot read wrk's report: {text:?}")),
    }
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.01s`, `1.50m`) in µs.
fn micros(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(number * scale)
}
