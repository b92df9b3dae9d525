//! Dumps on demand from outside: `SPOOL_DUMP_SIGNAL` / `Builder::dump_signal`
//! print the dump to stderr on a signal and the program keeps running; the
//! monitor console (`SPOOL_MONITOR` / `Builder::monitor`) is driven through
//! a TCP socket and a Unix socket; malformed settings are errors naming the
//! variable.
//!
//! The signal and environment tests run in child processes (re-executions
//! of this binary, see `tests/common`): a signal handler and environment
//! variables are process-wide.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{is_child, run_child, Watchdog, CHILD_ENV};
use spool::cancel::{CancelReason, Cancelled};
use spool::runtime::{DumpSignal, MonitorAddr};
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);

/// Waits until the green thread named `name` is blocked (a dump says it
/// waits).
fn wait_until_blocked(name: &str) {
    loop {
        let dump = spool::debug::dump();
        if dump
            .threads()
            .any(|t| t.name() == Some(name) && t.is_waiting())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A green thread blocked in `park` until released.
struct Blocked {
    stop: Arc<AtomicBool>,
    handle: spool::thread::JoinHandle<bool>,
}

impl Blocked {
    /// Spawns a green thread named `name` on `rt` that parks until
    /// released.
    fn spawn(rt: &Runtime, name: &str) -> Blocked {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let name = name.to_string();
        let handle = rt.run(|| {
            spool::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    while !flag.load(Ordering::Acquire) {
                        spool::thread::park();
                    }
                    true
                })
                .unwrap()
        });
        wait_until_blocked(&name);
        Blocked { stop, handle }
    }

    /// Lets it finish; whether it returned normally.
    fn release(self) -> bool {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        self.handle.join().unwrap()
    }
}

// ---------------------------------------------------------------------------
// The dump signal

/// Runs the child scenario `test` with piped stdin, waits for its "ready"
/// line, sends it `signal`, waits for a stderr line naming `marker`, then
/// lets it finish; returns its stderr. The child must exit normally.
fn signal_child(test: &str, env: &[(&str, &str)], signal: i32, marker: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env_remove("SPOOL_DUMP_SIGNAL")
        .env_remove("SPOOL_MONITOR")
        .env_remove("SPOOL_WORKERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "child ended early");
    }
    // SAFETY: kill(2) on our own child's pid, not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).unwrap(),
            0,
            "child's stderr ended without naming {marker}: {seen}"
        );
        seen.push_str(&line);
        if line.contains(marker) {
            break;
        }
    }
    // The child still runs: let it finish.
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status:?}\n{rest}\n{seen}");
    assert!(rest.contains("finished normally"), "{rest}\n{seen}");
    seen
}

/// The child of the signal tests: a named thread blocked in a channel
/// receive, "ready" on stdout, then waits for a line on stdin.
fn signal_child_body(rt: &Runtime) {
    let blocked = Blocked::spawn(rt, "sig-blocked");
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert!(blocked.release());
    println!("finished normally");
}

#[test]
fn dump_signal_from_the_environment_prints_the_dump_and_keeps_running() {
    let _w = Watchdog::new("dump_signal_from_the_environment", LIMIT);
    let stderr = signal_child(
        "child_signal_env",
        &[("SPOOL_DUMP_SIGNAL", "SIGUSR1")],
        libc::SIGUSR1,
        "'sig-blocked'",
    );
    assert!(stderr.contains("SIGUSR1 received"), "{stderr}");
    assert!(stderr.contains("'sig-blocked' [park"), "{stderr}");
}

#[test]
fn child_signal_env() {
    if !is_child("child_signal_env") {
        return;
    }
    // The global runtime reads SPOOL_DUMP_SIGNAL when it starts.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = spool::thread::Builder::new()
        .name("sig-blocked".into())
        .spawn(move || {
            while !flag.load(Ordering::Acquire) {
                spool::thread::park();
            }
        })
        .unwrap();
    wait_until_blocked("sig-blocked");
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    stop.store(true, Ordering::Release);
    handle.thread().unpark();
    handle.join().unwrap();
    println!("finished normally");
}

#[test]
fn dump_signal_from_the_builder_accepts_a_number_too() {
    let _w = Watchdog::new("dump_signal_from_the_builder", LIMIT);
    let stderr = signal_child("child_signal_builder", &[], libc::SIGUSR2, "'sig-blocked'");
    assert!(stderr.contains("SIGUSR2 received"), "{stderr}");
}

#[test]
fn child_signal_builder() {
    if !is_child("child_signal_builder") {
        return;
    }
    let signal: DumpSignal = libc::SIGUSR2.to_string().parse().unwrap();
    let rt = Runtime::builder()
        .workers(2)
        .dump_signal(signal)
        .build()
        .unwrap();
    signal_child_body(&rt);
}

// ---------------------------------------------------------------------------
// The console

/// A console connection: sends commands, reads replies up to the "." line.
struct Console<S: Read + Write> {
    reader: BufReader<S>,
    writer: S,
}

impl<S: Read + Write> Console<S> {
    fn new(reader: S, writer: S) -> Console<S> {
        let mut console = Console {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = console.reply();
        assert!(greeting[0].starts_with("spool monitor"), "{greeting:?}");
        console
    }

    fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert_ne!(
                self.reader.read_line(&mut line).unwrap(),
                0,
                "console closed mid-reply: {lines:?}"
            );
            let line = line.trim_end_matches('\n').to_string();
            if line == "." {
                return lines;
            }
            lines.push(line);
        }
    }

    fn command(&mut self, command: &str) -> Vec<String> {
        writeln!(self.writer, "{command}").unwrap();
        self.reply()
    }
}

fn tcp_console(addr: SocketAddr) -> Console<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    Console::new(stream.try_clone().unwrap(), stream)
}

fn unix_console(path: &std::path::Path) -> Console<UnixStream> {
    let stream = UnixStream::connect(path).unwrap();
    Console::new(stream.try_clone().unwrap(), stream)
}

fn tcp_addr(rt: &Runtime) -> SocketAddr {
    match rt.monitor_addr() {
        Some(MonitorAddr::Tcp(addr)) => *addr,
        other => panic!("expected a TCP console, got {other:?}"),
    }
}

/// The id `ps` shows for the thread named `name`.
fn id_of(ps: &[String], name: &str) -> u64 {
    let line = ps
        .iter()
        .find(|l| l.contains(&format!("'{name}'")))
        .unwrap_or_else(|| panic!("ps lists no {name}: {ps:?}"));
    line.strip_prefix("thread ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {line:?}"))
}

/// Every command of the console, over any stream.
fn drive<S: Read + Write>(console: &mut Console<S>, name: &str) -> u64 {
    let help = console.command("help");
    for command in [
        "ps",
        "where ID",
        "tree",
        "cancel ID",
        "stats",
        "help",
        "quit",
    ] {
        assert!(
            help.iter().any(|l| l.trim_start().starts_with(command)),
            "help lacks {command}: {help:?}"
        );
    }

    let ps = console.command("ps");
    let id = id_of(&ps, name);
    let line = ps.iter().find(|l| l.contains(name)).unwrap();
    assert!(line.contains("[park, "), "{line}");
    assert!(line.contains("worker "), "{line}");

    let block = console.command(&format!("where {id}"));
    assert!(
        block[0].starts_with(&format!("thread {id} '{name}' [park")),
        "{block:?}"
    );
    assert!(
        block
            .iter()
            .any(|l| l.contains("blocked at") && l.contains("monitor.rs")),
        "{block:?}"
    );
    assert!(block.iter().any(|l| l.contains("spawned")), "{block:?}");

    let tree = console.command("tree");
    assert!(tree.iter().any(|l| l.starts_with("runtime ")), "{tree:?}");
    assert!(
        tree.iter()
            .any(|l| l.starts_with("  ") && l.contains(&format!("'{name}'"))),
        "{tree:?}"
    );

    let stats = console.command("stats");
    assert!(stats.iter().any(|l| l.contains("worker 0:")), "{stats:?}");
    assert!(
        stats.iter().any(|l| l.starts_with("unblock pool")),
        "{stats:?}"
    );

    // An unknown command: one line, and the connection stays usable.
    let error = console.command("frobnicate 7");
    assert_eq!(error.len(), 1, "{error:?}");
    assert!(error[0].starts_with("error: unknown command"), "{error:?}");
    let error = console.command("where nine");
    assert_eq!(error.len(), 1, "{error:?}");
    assert_eq!(id_of(&console.command("ps"), name), id);

    let missing = console.command("where 18446744073709551615");
    assert!(missing[0].starts_with("error: no thread"), "{missing:?}");
    id
}

#[test]
fn console_over_tcp() {
    let _w = Watchdog::new("console_over_tcp", LIMIT);
    let rt = Runtime::builder()
        .workers(2)
        .monitor("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .build()
        .unwrap();
    let blocked = Blocked::spawn(&rt, "tcp-blocked");
    // A task group whose child sleeps: `tree` nests it under the group.
    let group = rt.spawn(|| {
        spool::group::Builder::new().name("tree-group").run(|g| {
            g.spawn_named("grouped", || {
                spool::thread::sleep(Duration::from_secs(3600));
                Ok::<_, ()>(())
            });
            Ok(())
        })
    });
    wait_until_blocked("grouped");
    let mut console = tcp_console(tcp_addr(&rt));
    let id = drive(&mut console, "tcp-blocked");

    let tree = console.command("tree");
    let scope = tree
        .iter()
        .position(|l| l.contains("scope #") && l.contains("'tree-group'"))
        .unwrap_or_else(|| panic!("no tree-group scope: {tree:?}"));
    let depth = |line: &str| line.len() - line.trim_start().len();
    let child = tree[scope + 1..]
        .iter()
        .find(|l| l.contains("'grouped' [sleep"))
        .unwrap_or_else(|| panic!("no grouped thread under the group: {tree:?}"));
    assert!(depth(child) > depth(&tree[scope]), "{tree:?}");
    group.cancel();
    let _ = group.join();

    let cancelled = console.command(&format!("cancel {id}"));
    assert_eq!(
        cancelled,
        [format!("cancelled thread {id} 'tcp-blocked'")],
        "{cancelled:?}"
    );
    let payload = blocked.handle.join().unwrap_err();
    let cancelled = Cancelled::from_payload(&payload).expect("a Cancelled payload");
    assert_eq!(
        cancelled.reason(),
        &CancelReason::requested("cancelled from the monitor console")
    );
    let again = console.command(&format!("cancel {id}"));
    assert!(again[0].starts_with("error: no thread"), "{again:?}");
    assert_eq!(console.command("quit"), ["bye"]);
}

#[test]
fn console_over_a_unix_socket() {
    let _w = Watchdog::new("console_over_a_unix_socket", LIMIT);
    let path = std::env::temp_dir().join(format!("spool-monitor-{}.sock", std::process::id()));
    let rt = Runtime::builder()
        .workers(1)
        .monitor(path.as_path())
        .build()
        .unwrap();
    assert_eq!(rt.monitor_addr(), Some(&MonitorAddr::Unix(path.clone())));
    let blocked = Blocked::spawn(&rt, "unix-blocked");
    let mut console = unix_console(&path);
    drive(&mut console, "unix-blocked");
    assert!(blocked.release());
    drop(console);
    drop(rt);
    // The console closes with its runtime and removes its socket file.
    while path.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_client_gone_mid_dump_harms_nothing() {
    let _w = Watchdog::new("a_client_gone_mid_dump_harms_nothing", LIMIT);
    const THREADS: usize = 10_000;
    let rt = Runtime::builder()
        .workers(2)
        .monitor("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = rt.run(|| {
        (0..THREADS)
            .map(|i| {
                let stop = Arc::clone(&stop);
                spool::thread::Builder::new()
                    .name(format!("many-{i}"))
                    .spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            spool::thread::park();
                        }
                    })
                    .unwrap()
            })
            .collect()
    });
    let addr = tcp_addr(&rt);
    for _ in 0..3 {
        let stream = TcpStream::connect(addr).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap(); // greeting
        (&stream).write_all(b"ps\n").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap(); // "." of the greeting
        line.clear();
        reader.read_line(&mut line).unwrap(); // the first line of ps
        drop(reader);
        drop(stream); // unread data: the server's writes fail
    }
    let mut console = tcp_console(addr);
    // A dump waits 250 ms for each worker; a worker slower than that (in a
    // sanitizer build, listing 10,000 threads) is reported as not
    // answering and its threads are left out of that `ps`. The console
    // must still answer in full once the worker keeps up.
    let mut listed = 0;
    for _ in 0..20 {
        let ps = console.command("ps");
        listed = ps.iter().filter(|l| l.contains("'many-")).count();
        if listed >= THREADS {
            break;
        }
    }
    assert!(listed >= THREADS, "ps listed {listed} of {THREADS}");
    stop.store(true, Ordering::Release);
    for handle in handles {
        handle.thread().unpark();
        handle.join().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Bad settings

#[test]
fn a_malformed_dump_signal_fails_the_global_runtime_naming_the_variable() {
    let child = run_child("child_global_spawn", &[("SPOOL_DUMP_SIGNAL", "SIGKILL")]);
    assert!(!child.status.success(), "{child:?}");
    assert!(
        child.stderr.contains(
            "SPOOL_DUMP_SIGNAL=\"SIGKILL\" is not valid: expected SIGQUIT, SIGUSR1 or SIGUSR2"
        ),
        "{}",
        child.stderr
    );
    assert!(child.stderr.contains("\"SIGKILL\""), "{}", child.stderr);
}

#[test]
fn child_global_spawn() {
    if !is_child("child_global_spawn") {
        return;
    }
    // Panics: the global runtime cannot start.
    let _ = spool::thread::spawn(|| ()).join();
    println!("spawned");
}

#[test]
fn a_malformed_monitor_address_fails_the_build_naming_the_variable() {
    for (value, expected) in [
        ("spool.sock", "SPOOL_MONITOR=\"spool.sock\" is not valid"),
        ("127.0.0.1", "SPOOL_MONITOR=\"127.0.0.1\" is not valid"),
        ("10.1.2.3:48802", "SPOOL_MONITOR_ALLOW_REMOTE=1"),
    ] {
        let child = run_child("child_build", &[("SPOOL_MONITOR", value)]);
        assert!(child.status.success(), "{value}: {child:?}");
        assert!(
            child.stdout.contains(expected) && child.stdout.contains(value),
            "{value}: {}",
            child.stdout
        );
    }
    let child = run_child("child_build", &[("SPOOL_DUMP_SIGNAL", "HUP")]);
    assert!(
        child
            .stdout
            .contains("SPOOL_DUMP_SIGNAL=\"HUP\" is not valid"),
        "{}",
        child.stdout
    );
    let child = run_child("child_build", &[("SPOOL_MONITOR_ALLOW_REMOTE", "perhaps")]);
    assert!(
        child
            .stdout
            .contains("SPOOL_MONITOR_ALLOW_REMOTE=\"perhaps\" is not valid"),
        "{}",
        child.stdout
    );
}

#[test]
fn child_build() {
    if !is_child("child_build") {
        return;
    }
    let error = Runtime::builder().workers(1).build().unwrap_err();
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::PermissionDenied
        ),
        "{error:?}"
    );
    println!("{error}");
}

#[test]
fn a_remote_monitor_address_needs_the_opt_in() {
    let error = Runtime::builder()
        .workers(1)
        .monitor("10.1.2.3:48802".parse::<SocketAddr>().unwrap())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(
        error.to_string().contains("not a loopback address"),
        "{error}"
    );
}
