//! Child processes: running one sample of one system in its own process,
//! and the child side that does the work.
//!
//! The protocol (shared with `go/main.go`): the child prints `<metric>
//! <value>` lines on stdout and exits 0, or prints `error <message>` and
//! exits 1 when the system could not do the work, or prints `n/a <reason>`
//! and exits 0 when the system has no such primitive (tokio has no
//! rendezvous channel, Go no unbounded one): a result, not a failure. Anything else (a signal,
//! a panic, a hang past `CHILD_TIME_LIMIT`) is turned into an error message
//! here, with the last line the child wrote on stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A child running longer than this is killed and its cell reports it.
const CHILD_TIME_LIMIT: Duration = Duration::from_secs(60);

/// What one child reported.
pub enum Outcome {
    /// `(metric, value)` pairs.
    Measured(Vec<(String, f64)>),
    /// The system could not do the work; the message says what it hit.
    Failed(String),
    /// The system was not run (Go missing, say); the message says why.
    Skipped(String),
    /// The system has no such primitive; the message says what it lacks.
    NotApplicable(String),
}

/// The cargo target directory: this binary is `<target>/<profile>/deps/peers-…`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find this executable");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Builds the Go peer into `out_dir`; the error says why Go is skipped.
pub fn build_go(out_dir: &Path) -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/go");
    let binary = out_dir.join("peers-go");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        // Never fetch a newer toolchain: build with the one installed.
        .env("GOTOOLCHAIN", "local")
        .output();
    match built {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
            "`go` is not on the PATH (Debian: `apt-get install golang-go`); the Go column is empty"
                .into(),
        ),
        Err(e) => Err(format!("cannot run `go build`: {e}")),
        Ok(out) if !out.status.success() => Err(format!(
            "`go build` in {} failed: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => Ok(binary),
    }
}

/// Runs one sample of `system` doing `scenario` with `count`, in a child.
pub fn run(system: &str, scenario: &str, count: usize, go: Result<&PathBuf, &String>) -> Outcome {
    let mut command = match command(system, go) {
        Ok(c) => c,
        Err(skipped) => return skipped,
    };
    command.args([scenario, &count.to_string()]);
    collect(command)
}

/// The command that runs `system` as a child: `peers --child <system>`, or
/// the Go binary; its arguments are the scenario's.
pub fn command(system: &str, go: Result<&PathBuf, &String>) -> Result<Command, Outcome> {
    if system == "go" {
        match go {
            Ok(binary) => Ok(Command::new(binary)),
            Err(why) => Err(Outcome::Skipped(why.clone())),
        }
    } else {
        let mut c = Command::new(std::env::current_exe().expect("current_exe"));
        c.args(["--child", system]);
        Ok(c)
    }
}

/// Runs `command` to its end (killing it after `CHILD_TIME_LIMIT`) and
/// reads its report.
pub fn collect(mut command: Command) -> Outcome {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start the child: {e}")),
    };
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > CHILD_TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Outcome::Failed(format!("waiting for the child: {e}")),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    parse(&out, &err, status)
}

/// Turns a child's output and exit status into an [`Outcome`].
fn parse(out: &str, err: &str, status: Option<std::process::ExitStatus>) -> Outcome {
    let last_err = err.lines().rev().find(|l| !l.trim().is_empty());
    if let Some(message) = out.lines().find_map(|l| l.strip_prefix("error ")) {
        return Outcome::Failed(message.trim().to_owned());
    }
    if let Some(message) = out.lines().find_map(|l| l.strip_prefix("unsupported ")) {
        return Outcome::Skipped(message.trim().to_owned());
    }
    if let Some(reason) = out.lines().find_map(|l| l.strip_prefix("n/a ")) {
        return Outcome::NotApplicable(reason.trim().to_owned());
    }
    let Some(status) = status else {
        return Outcome::Failed(format!(
            "killed after running for over {} s",
            CHILD_TIME_LIMIT.as_secs()
        ));
    };
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let how = match status.signal() {
            Some(9) => "killed by SIGKILL (out of memory?)".to_owned(),
            Some(sig) => format!("killed by signal {sig}"),
            None => format!("exited with {status}"),
        };
        return Outcome::Failed(match last_err {
            Some(line) => format!("{how}: {}", line.trim()),
            None => how,
        });
    }
    let mut values = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        if let (Some(metric), Some(value), None) = (words.next(), words.next(), words.next()) {
            if let Ok(v) = value.parse::<f64>() {
                values.push((metric.to_owned(), v));
            }
        }
    }
    if values.is_empty() {
        return Outcome::Failed(format!("the child printed no result: {out:?}"));
    }
    Outcome::Measured(values)
}

/// The child side's command line: `--child <system> <scenario> <count>`.
pub struct Args {
    system: String,
    scenario: String,
    count: usize,
}

impl Args {
    /// Reads the words after `--child`.
    pub fn parse(args: &mut lexopt::Parser) -> Result<Args, lexopt::Error> {
        let usage = "usage: peers --child <system> <scenario> <count>";
        let mut words = Vec::new();
        while let Some(arg) = args.next()? {
            match arg {
                lexopt::Arg::Value(v) if words.len() < 3 => words.push(v),
                lexopt::Arg::Value(v) => {
                    return Err(format!("unexpected argument {v:?} ({usage})").into())
                }
                other => return Err(other.unexpected()),
            }
        }
        let [system, scenario, count] = <[_; 3]>::try_from(words)
            .map_err(|_| lexopt::Error::from(format!("--child needs 3 words ({usage})")))?;
        use lexopt::ValueExt;
        Ok(Args {
            system: system.string()?,
            scenario: scenario.string()?,
            count: count.parse()?,
        })
    }
}

/// The child side: runs one sample. Returns the exit status.
pub fn child_main(args: Args) -> i32 {
    crate::sys::raise_nofile_limit();
    let Args {
        system,
        scenario,
        count,
    } = args;
    let scenario = scenario.as_str();
    let result = match system.as_str() {
        "spool" => crate::spool_peer::run(scenario, count),
        "tokio" => crate::tokio_peer::run(scenario, count),
        "may" => crate::may_peer::run(scenario, count),
        "std" => crate::std_peer::run(scenario, count),
        "crossbeam" => crate::crossbeam_peer::run(scenario, count),
        other => Err(Failure::Error(format!("unknown system {other:?}"))),
    };
    match result {
        Ok(values) => {
            for (metric, value) in values {
                println!("{metric} {value}");
            }
            0
        }
        Err(Failure::Unsupported) => {
            println!("unsupported {system} has no {scenario} scenario yet");
            0
        }
        Err(Failure::NotApplicable(reason)) => {
            println!("n/a {reason}");
            0
        }
        Err(Failure::Error(message)) => {
            println!("error {message}");
            1
        }
    }
}

/// Why a child did not measure.
pub enum Failure {
    /// The scenario is not written for this system (yet).
    Unsupported,
    /// The system has no such primitive; the reason names what it lacks,
    /// in words that fit every scenario needing it (the report prints
    /// each reason once per system).
    NotApplicable(String),
    /// The system hit an error doing the work.
    Error(String),
}

/// A child's measurements, or why there are none.
pub type Measured = Result<Vec<(&'static str, f64)>, Failure>;
