//! Dumps on demand from outside the process: a signal that prints
//! [`crate::debug::dump`] to stderr, and an opt-in console on a socket.
//!
//! # One monitor OS thread
//! Both are served by one plain OS thread, `spool-monitor`, started the
//! first time a runtime asks for either. It uses std's blocking I/O and
//! `poll(2)`, never spool's, so it works while every worker is wedged (a
//! dump then says which workers did not answer). It waits on the read end
//! of a pipe and on the console's listening sockets:
//!
//! * **Signals.** Formatting a dump in a signal handler would be unsound
//!   (it allocates and locks), and `signalfd` would need the signal
//!   blocked in every thread of the process, which a library cannot
//!   arrange. So the handler does the one async-signal-safe thing needed:
//!   it writes the signal's number as one byte to the pipe (non-blocking;
//!   if the pipe is full, a dump is pending anyway) and restores `errno`.
//!   The monitor thread reads the byte and prints the dump.
//! * **Listeners.** A byte 0 on the same pipe tells the thread that the
//!   set of listening sockets changed (a runtime with its own console
//!   started or was dropped). Each accepted client gets an OS thread of its
//!   own (`spool-monitor-client`, at most [`MAX_CLIENTS`] at once), so a
//!   slow client holds up no one. Replies are written with
//!   `send(MSG_NOSIGNAL)`, so a client that disconnects mid-reply ends its
//!   own connection with `EPIPE` and raises no `SIGPIPE` (std ignores
//!   `SIGPIPE` in Rust programs, but spool may live in a program that does
//!   not), and with a 10-second send timeout, so a client that stops
//!   reading cannot hold its thread forever.
//!
//! The console's commands are listed in [`HELP`]; each reply ends with a
//! line holding a single `.`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use spool_runtime::config;
use spool_runtime::monitor_hooks::{self, CancelOutcome};
use spool_runtime::trace::{ThreadRecord, ThreadState};

use crate::debug::DUMP_PATIENCE;

/// How many console clients are served at once.
pub const MAX_CLIENTS: usize = 16;

/// The console's `help` text: its commands.
pub const HELP: &str = "\
commands (one per line; each reply ends with a line holding a single '.'):
  ps         one line per green thread: id, name, state or wait reason, for how long, worker
  where ID   thread ID's block of the dump: wait, call site, spawn site, cancel scopes
  tree       the threads nested under their cancel scopes and task groups
  dump       the whole dump, as SPOOL_DUMP_SIGNAL prints it
  cancel ID  cancels thread ID (as JoinHandle::cancel does) and says whether it was found
  stats      per runtime and worker: threads, queues, sockets, sleeping; the unblock pool
  help       this text
  quit       closes the connection";

/// A signal that prints a dump of every green thread to stderr (see
/// [`Builder::dump_signal`](crate::runtime::Builder::dump_signal)).
///
/// Parsed from `SPOOL_DUMP_SIGNAL`'s forms: the name with or without the
/// `SIG` prefix, in any case (`SIGQUIT`, `quit`, `SIGUSR1`, `usr2`), or
/// the number (`3`, `10`, `12` on Linux).
///
/// ```
/// use spool::runtime::DumpSignal;
///
/// assert_eq!("SIGUSR1".parse::<DumpSignal>().unwrap(), DumpSignal::Usr1);
/// assert_eq!("quit".parse::<DumpSignal>().unwrap(), DumpSignal::Quit);
/// assert_eq!("12".parse::<DumpSignal>().unwrap(), DumpSignal::Usr2);
/// assert!("SIGKILL".parse::<DumpSignal>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DumpSignal {
    /// `SIGQUIT` (Ctrl-\ in a terminal), as Go uses it. Its default
    /// action, a core dump, is replaced.
    Quit,
    /// `SIGUSR1`.
    Usr1,
    /// `SIGUSR2`.
    Usr2,
}

impl DumpSignal {
    /// The signal's number.
    ///
    /// ```
    /// use spool::runtime::DumpSignal;
    /// assert_eq!(DumpSignal::Quit.number(), 3); // on Linux
    /// ```
    pub fn number(self) -> i32 {
        match self {
            DumpSignal::Quit => libc::SIGQUIT,
            DumpSignal::Usr1 => libc::SIGUSR1,
            DumpSignal::Usr2 => libc::SIGUSR2,
        }
    }

    /// The signal's name (`"SIGQUIT"`, ...).
    ///
    /// ```
    /// use spool::runtime::DumpSignal;
    /// assert_eq!(DumpSignal::Usr1.name(), "SIGUSR1");
    /// assert_eq!(DumpSignal::Usr1.to_string(), "SIGUSR1");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            DumpSignal::Quit => "SIGQUIT",
            DumpSignal::Usr1 => "SIGUSR1",
            DumpSignal::Usr2 => "SIGUSR2",
        }
    }

    const ALL: [DumpSignal; 3] = [DumpSignal::Quit, DumpSignal::Usr1, DumpSignal::Usr2];

    fn forms() -> String {
        format!(
            "SIGQUIT, SIGUSR1 or SIGUSR2 (the name with or without SIG, in any case, \
             or the number: {}, {} or {})",
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2
        )
    }
}

impl fmt::Display for DumpSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value that could not be parsed; its message names the accepted forms.
///
/// ```
/// use spool::runtime::DumpSignal;
///
/// let err = "SIGKILL".parse::<DumpSignal>().unwrap_err();
/// // The message says what is accepted and what was given.
/// assert!(err.to_string().contains("SIGUSR1"));
/// assert!(err.to_string().contains("\"SIGKILL\""));
/// ```
#[derive(Clone, Debug)]
pub struct ParseError {
    /// The accepted forms.
    forms: String,
    /// The text given.
    got: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, got {:?}", self.forms, self.got)
    }
}

impl std::error::Error for ParseError {}

impl FromStr for DumpSignal {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<DumpSignal, ParseError> {
        let text = text.trim();
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let found = DumpSignal::ALL.into_iter().find(|signal| {
            signal.name()[3..] == *name || text.parse::<i32>() == Ok(signal.number())
        });
        found.ok_or_else(|| ParseError {
            forms: DumpSignal::forms(),
            got: text.into(),
        })
    }
}

/// Where the monitor console listens (see
/// [`Builder::monitor`](crate::runtime::Builder::monitor)).
///
/// Parsed from `SPOOL_MONITOR`'s forms: an IP address and port
/// (`127.0.0.1:48802`, `[::1]:48802`), `localhost:PORT` (127.0.0.1), or
/// the path of a Unix socket starting with `/` or `./`.
///
/// ```
/// use spool::runtime::MonitorAddr;
///
/// let tcp: MonitorAddr = "127.0.0.1:48802".parse().unwrap();
/// assert_eq!(tcp, MonitorAddr::Tcp("127.0.0.1:48802".parse().unwrap()));
/// let unix: MonitorAddr = "./spool.sock".parse().unwrap();
/// assert_eq!(unix, MonitorAddr::Unix("./spool.sock".into()));
/// assert!("spool.sock".parse::<MonitorAddr>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MonitorAddr {
    /// A TCP address. Port 0 picks a free port: read the bound address
    /// with [`Runtime::monitor_addr`](crate::Runtime::monitor_addr).
    Tcp(SocketAddr),
    /// A Unix socket path. A stale socket file (one nothing listens on) is
    /// replaced; the file is removed when the console closes.
    Unix(PathBuf),
}

impl MonitorAddr {
    fn forms() -> &'static str {
        "an IP address and port on loopback (127.0.0.1:48802, [::1]:48802, localhost:48802) \
         or a Unix socket path starting with / or ./"
    }

    fn is_loopback(&self) -> bool {
        match self {
            MonitorAddr::Tcp(addr) => addr.ip().is_loopback(),
            MonitorAddr::Unix(_) => true,
        }
    }
}

impl fmt::Display for MonitorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorAddr::Tcp(addr) => write!(f, "{addr}"),
            MonitorAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

impl FromStr for MonitorAddr {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<MonitorAddr, ParseError> {
        let text = text.trim();
        if text.starts_with('/') || text.starts_with("./") {
            return Ok(MonitorAddr::Unix(PathBuf::from(text)));
        }
        if let Some(port) = text.strip_prefix("localhost:") {
            if let Ok(port) = port.parse::<u16>() {
                return Ok(MonitorAddr::Tcp(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
        }
        text.parse::<SocketAddr>()
            .map(MonitorAddr::Tcp)
            .map_err(|_| ParseError {
                forms: MonitorAddr::forms().into(),
                got: text.into(),
            })
    }
}

impl From<SocketAddr> for MonitorAddr {
    fn from(addr: SocketAddr) -> MonitorAddr {
        MonitorAddr::Tcp(addr)
    }
}

impl From<PathBuf> for MonitorAddr {
    fn from(path: PathBuf) -> MonitorAddr {
        MonitorAddr::Unix(path)
    }
}

impl From<&Path> for MonitorAddr {
    fn from(path: &Path) -> MonitorAddr {
        MonitorAddr::Unix(path.to_path_buf())
    }
}

/// A runtime builder's monitor options; `None` falls back to the
/// environment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    pub(crate) signal: Option<DumpSignal>,
    pub(crate) address: Option<MonitorAddr>,
    pub(crate) allow_remote: Option<bool>,
}

/// What a runtime start set up. Dropping it closes the console it owns (one
/// its builder asked for; one from `SPOOL_MONITOR` serves the whole
/// process and stays).
#[derive(Debug, Default)]
pub(crate) struct Started {
    address: Option<MonitorAddr>,
    owned: Option<Arc<Listener>>,
}

impl Started {
    /// The console's address, if one serves this runtime.
    pub(crate) fn address(&self) -> Option<&MonitorAddr> {
        self.address.as_ref()
    }

    /// Keeps the console open for the life of the process.
    pub(crate) fn keep(mut self) {
        if let Some(listener) = self.owned.take() {
            std::mem::forget(listener);
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(listener) = self.owned.take() {
            listener.closed.store(true, Ordering::Relaxed);
            if let Some(monitor) = *lock(&MONITOR) {
                monitor.poke(0);
            }
        }
    }
}

/// Reads the options and the environment, and sets up what they ask for:
/// the dump signal's handler and the console. An option replaces its
/// variable; a bad variable fails with `InvalidInput` naming it, its value
/// and the accepted forms (`spool_runtime::config`).
pub(crate) fn start(options: &Options) -> io::Result<Started> {
    config::mention_likely_typos();
    let signal = match options.signal {
        Some(signal) => Some(signal),
        None => config::DUMP_SIGNAL.read(|text| text.parse::<DumpSignal>().ok())?,
    };
    let allow_remote = match options.allow_remote {
        Some(allow) => allow,
        None => config::allow_remote_monitor()?.unwrap_or(false),
    };
    let (address, from_env) = match &options.address {
        Some(address) => (Some(address.clone()), false),
        None => match config::MONITOR.read(|text| text.parse::<MonitorAddr>().ok())? {
            Some(address) => (Some(address), true),
            None => (None, false),
        },
    };
    let origin = if from_env {
        format!(
            "{}={}",
            config::MONITOR.name,
            address.as_ref().map_or(String::new(), |a| a.to_string())
        )
    } else {
        "the builder's monitor address".to_string()
    };
    if let Some(address) = &address {
        if !address.is_loopback() && !allow_remote {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "spool: {origin}: {address} is not a loopback address, and whoever reaches \
                     the console can read every thread's state and cancel threads; set \
                     {}=1 (or Builder::allow_remote_monitor) to serve it anyway",
                    config::MONITOR_ALLOW_REMOTE.name
                ),
            ));
        }
    }
    if signal.is_none() && address.is_none() {
        return Ok(Started::default());
    }
    let monitor = monitor()?;
    if let Some(signal) = signal {
        install_handler(signal)?;
    }
    let Some(address) = address else {
        return Ok(Started::default());
    };
    if from_env {
        // One console serves the process, however many runtimes read it.
        let mut served = lock(&ENV_CONSOLE);
        if let Some((served_address, bound)) = &*served {
            if *served_address == address {
                return Ok(Started {
                    address: Some(bound.clone()),
                    owned: None,
                });
            }
        }
        let listener = Listener::bind(&address, &origin)?;
        let bound = listener.address.clone();
        monitor.add(Arc::new(listener));
        *served = Some((address, bound.clone()));
        return Ok(Started {
            address: Some(bound),
            owned: None,
        });
    }
    let listener = Arc::new(Listener::bind(&address, &origin)?);
    monitor.add(Arc::clone(&listener));
    Ok(Started {
        address: Some(listener.address.clone()),
        owned: Some(listener),
    })
}

/// The console `SPOOL_MONITOR` asked for: its address and bound address.
static ENV_CONSOLE: Mutex<Option<(MonitorAddr, MonitorAddr)>> = Mutex::new(None);

/// Whether the global runtime's start hook is set.
static HOOKED: AtomicBool = AtomicBool::new(false);

/// Makes the global runtime, when it starts, read `SPOOL_DUMP_SIGNAL` and
/// `SPOOL_MONITOR` (a relaxed load once set).
#[inline]
pub(crate) fn hook_global_start() {
    if !HOOKED.load(Ordering::Relaxed) {
        monitor_hooks::set_global_start_hook(|| start(&Options::default()).map(Started::keep));
        HOOKED.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A listening socket of the console.
#[derive(Debug)]
struct Listener {
    socket: Socket,
    /// The bound address (the port chosen for port 0).
    address: MonitorAddr,
    /// Set by its owner to stop serving it.
    closed: AtomicBool,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn bind(address: &MonitorAddr, origin: &str) -> io::Result<Listener> {
        let fail = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("spool: cannot serve the monitor console on {address} ({origin}): {e}"),
            )
        };
        let (socket, address) = match address {
            MonitorAddr::Tcp(addr) => {
                let listener = TcpListener::bind(addr).map_err(fail)?;
                let bound = listener.local_addr().map_err(fail)?;
                (Socket::Tcp(listener), MonitorAddr::Tcp(bound))
            }
            MonitorAddr::Unix(path) => {
                let listener = match UnixListener::bind(path) {
                    // A socket file nothing listens on is a leftover.
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        match UnixStream::connect(path) {
                            Err(c) if c.kind() == io::ErrorKind::ConnectionRefused => {
                                std::fs::remove_file(path).map_err(fail)?;
                                UnixListener::bind(path).map_err(fail)?
                            }
                            _ => return Err(fail(e)),
                        }
                    }
                    other => other.map_err(fail)?,
                };
                (Socket::Unix(listener), MonitorAddr::Unix(path.clone()))
            }
        };
        match &socket {
            Socket::Tcp(l) => l.set_nonblocking(true),
            Socket::Unix(l) => l.set_nonblocking(true),
        }
        .map_err(fail)?;
        Ok(Listener {
            socket,
            address,
            closed: AtomicBool::new(false),
        })
    }

    fn fd(&self) -> RawFd {
        match &self.socket {
            Socket::Tcp(l) => l.as_raw_fd(),
            Socket::Unix(l) => l.as_raw_fd(),
        }
    }

    /// Accepts the pending clients, each on an OS thread of its own; `false`
    /// if accepting failed with a lasting error (no descriptor left, say).
    fn accept_all(&self) -> bool {
        loop {
            let accepted: io::Result<OwnedFd> = match &self.socket {
                Socket::Tcp(l) => l.accept().and_then(|(s, _)| {
                    s.set_nonblocking(false)?;
                    s.set_write_timeout(Some(SEND_TIMEOUT))?;
                    Ok(s.into())
                }),
                Socket::Unix(l) => l.accept().and_then(|(s, _)| {
                    s.set_nonblocking(false)?;
                    s.set_write_timeout(Some(SEND_TIMEOUT))?;
                    Ok(s.into())
                }),
            };
            match accepted {
                Ok(fd) => Client::start(fd),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                // A client that reset before we accepted, or no descriptor
                // left: the latter would leave the socket readable.
                Err(e) => return e.kind() == io::ErrorKind::ConnectionAborted,
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let MonitorAddr::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How long a reply may wait for a client to read.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The monitor thread's shared state.
struct Monitor {
    /// The pipe's write end (also in `WAKE_FD`, for the signal handler).
    wake: OwnedFd,
    listeners: Mutex<Vec<Arc<Listener>>>,
}

/// The monitor, once started (leaked: it lives as long as the process).
static MONITOR: Mutex<Option<&'static Monitor>> = Mutex::new(None);

/// The pipe's write end for the signal handler; -1 before the monitor
/// starts.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// The monitor, started on first use.
fn monitor() -> io::Result<&'static Monitor> {
    let mut slot = lock(&MONITOR);
    if let Some(monitor) = *slot {
        return Ok(monitor);
    }
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("spool: cannot create the monitor's pipe: {e}"),
        ));
    }
    // SAFETY: pipe2 just opened both descriptors, and nothing else owns
    // them.
    let (read, wake) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let monitor: &'static Monitor = Box::leak(Box::new(Monitor {
        wake,
        listeners: Mutex::new(Vec::new()),
    }));
    std::thread::Builder::new()
        .name("spool-monitor".into())
        .spawn(move || monitor.run(read))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("spool: cannot start the monitor thread: {e}"),
            )
        })?;
    WAKE_FD.store(monitor.wake.as_raw_fd(), Ordering::Release);
    *slot = Some(monitor);
    Ok(monitor)
}

/// The signal handler: one byte down the pipe (see the module's essay).
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot; reading
    // and restoring it is async-signal-safe.
    let saved = unsafe { *libc::__errno_location() };
    let fd = WAKE_FD.load(Ordering::Acquire);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the leaked
        // monitor's pipe, open for the life of the process; the buffer is
        // one byte on our stack.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Installs `on_signal` for `signal`, once.
fn install_handler(signal: DumpSignal) -> io::Result<()> {
    static INSTALLED: Mutex<[bool; 3]> = Mutex::new([false; 3]);
    let slot = DumpSignal::ALL
        .iter()
        .position(|s| *s == signal)
        .unwrap_or_default();
    let mut installed = lock(&INSTALLED);
    if installed[slot] {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid value to fill in; the handler
    // only does async-signal-safe work; the mask is initialised by
    // sigemptyset before use.
    let result = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal.number(), &action, std::ptr::null_mut())
    };
    if result != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("spool: cannot install a handler for {signal}: {e}"),
        ));
    }
    installed[slot] = true;
    Ok(())
}

impl Monitor {
    /// Writes `byte` to the pipe (0: the listeners changed).
    fn poke(&self, byte: u8) {
        // SAFETY: the pipe's write end is open for the life of the monitor
        // (the process); one byte from our stack.
        unsafe { libc::write(self.wake.as_raw_fd(), (&byte as *const u8).cast(), 1) };
    }

    fn add(&self, listener: Arc<Listener>) {
        lock(&self.listeners).push(listener);
        self.poke(0);
    }

    /// The monitor thread's loop.
    fn run(&self, read: OwnedFd) {
        // It waits in poll(2) for signals and clients: the deadlock check
        // must not take it for user code that might wake a thread.
        let _helper = spool_runtime::deadlock::helper_thread();
        let mut pipe = File::from(read);
        loop {
            let listeners: Vec<Arc<Listener>> = {
                let mut all = lock(&self.listeners);
                all.retain(|l| !l.closed.load(Ordering::Relaxed));
                all.clone()
            };
            let mut fds: Vec<libc::pollfd> = std::iter::once(pipe.as_raw_fd())
                .chain(listeners.iter().map(|l| l.fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a valid array of `fds.len()` pollfds; the
            // descriptors stay open while `listeners` and `pipe` live.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if ready < 0 {
                // EINTR (a dump signal landed on this thread): go round.
                continue;
            }
            if fds[0].revents != 0 {
                let mut bytes = [0u8; 64];
                while let Ok(n @ 1..) = pipe.read(&mut bytes) {
                    let mut seen = [false; 3];
                    for &byte in &bytes[..n] {
                        if let Some(i) = DumpSignal::ALL
                            .iter()
                            .position(|s| s.number() == byte as i32)
                        {
                            seen[i] = true;
                        }
                    }
                    for (i, _) in seen.iter().enumerate().filter(|(_, seen)| **seen) {
                        print_dump(DumpSignal::ALL[i]);
                    }
                }
            }
            let mut failed = false;
            for (listener, fd) in listeners.iter().zip(&fds[1..]) {
                if fd.revents != 0 && !listener.closed.load(Ordering::Relaxed) {
                    failed |= !listener.accept_all();
                }
            }
            if failed {
                // The pending client stays pending (poll would report it
                // again at once): pause instead of spinning.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Prints a dump to stderr, for `signal`.
fn print_dump(signal: DumpSignal) {
    let dump = crate::debug::dump();
    let stderr = io::stderr();
    let mut out = BufWriter::new(stderr.lock());
    let _ = writeln!(out, "spool: {signal} received; dump of every green thread:");
    let _ = write!(out, "{dump}");
    let _ = out.flush();
}

/// A console client, served on an OS thread of its own.
///
/// # Invariant
/// `out` writes to the descriptor `input` owns: it must never write after
/// `input` is dropped (the number may name another connection by then), so
/// `out` comes first (fields drop in order) and `finish` throws its
/// unsent bytes away rather than flush them on drop.
struct Client {
    out: BufWriter<Sender>,
    input: BufReader<File>,
}

/// Writes to a socket with `send(MSG_NOSIGNAL)`: a closed peer is an
/// `EPIPE` error, never a `SIGPIPE`.
struct Sender(RawFd);

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `self.0` is the client's socket, open while the
            // `Client` (which owns it through `input`) lives; `buf` is a
            // valid slice.
            let n =
                unsafe { libc::send(self.0, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Console clients being served.
static CLIENTS: AtomicUsize = AtomicUsize::new(0);

impl Client {
    fn start(fd: OwnedFd) {
        let file = File::from(fd);
        let out = BufWriter::new(Sender(file.as_raw_fd()));
        let mut client = Client {
            out,
            input: BufReader::new(file),
        };
        if CLIENTS.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
            CLIENTS.fetch_sub(1, Ordering::Relaxed);
            let _ = writeln!(
                client.out,
                "error: {MAX_CLIENTS} clients are connected already; try again later"
            );
            let _ = client.out.flush();
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("spool-monitor-client".into())
            .spawn(move || {
                let _ = client.serve();
                client.finish();
                CLIENTS.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            CLIENTS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Closes the connection, dropping unsent bytes (after a write error,
    /// flushing them would only fail again).
    fn finish(self) {
        let Client { out, input } = self;
        let _ = out.into_parts();
        drop(input);
    }

    /// Serves commands until `quit`, end of input or an I/O error (a
    /// client gone mid-reply ends here, harming nothing).
    fn serve(&mut self) -> io::Result<()> {
        writeln!(self.out, "spool monitor: type help for the commands\n.")?;
        self.out.flush()?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.input.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let mut words = line.split_whitespace();
            let command = words.next().unwrap_or("").to_ascii_lowercase();
            let argument = words.next();
            let extra = words.next().is_some();
            match (command.as_str(), argument, extra) {
                ("", _, _) => {}
                ("help", None, false) => writeln!(self.out, "{HELP}")?,
                ("quit" | "exit", None, false) => {
                    writeln!(self.out, "bye\n.")?;
                    return self.out.flush();
                }
                ("ps", None, false) => self.ps()?,
                ("tree", None, false) => self.tree()?,
                ("dump", None, false) => self.dump()?,
                ("stats", None, false) => self.stats()?,
                ("where" | "cancel", Some(id), false) => match parse_id(id) {
                    Some(id) if command == "where" => self.where_(id)?,
                    Some(id) => self.cancel(id)?,
                    None => writeln!(
                        self.out,
                        "error: {command} takes a thread id (a number, as ps shows it), got {id:?}"
                    )?,
                },
                ("help" | "quit" | "exit" | "ps" | "tree" | "dump" | "stats", _, _) => {
                    writeln!(self.out, "error: {command} takes no argument")?
                }
                ("where" | "cancel", _, _) => writeln!(
                    self.out,
                    "error: usage: {command} ID (a thread id, as ps shows it)"
                )?,
                (other, _, _) => writeln!(
                    self.out,
                    "error: unknown command {other:?}; type help for the commands"
                )?,
            }
            writeln!(self.out, ".")?;
            self.out.flush()?;
        }
    }

    fn ps(&mut self) -> io::Result<()> {
        let snapshot = spool_runtime::trace::snapshot(DUMP_PATIENCE);
        let taken = snapshot.taken;
        for (index, rt) in snapshot.runtimes.iter().enumerate() {
            write!(
                self.out,
                "runtime {index}: {} workers, {} threads",
                rt.workers,
                rt.threads.len()
            )?;
            if rt.unstarted > 0 {
                write!(self.out, ", {} not started yet", rt.unstarted)?;
            }
            writeln!(self.out)?;
            unanswered(&mut self.out, &rt.unanswered)?;
            for record in &rt.threads {
                writeln!(self.out, "{}", Header { record, taken })?;
            }
        }
        Ok(())
    }

    fn tree(&mut self) -> io::Result<()> {
        let snapshot = spool_runtime::trace::snapshot(DUMP_PATIENCE);
        for (index, rt) in snapshot.runtimes.iter().enumerate() {
            writeln!(self.out, "runtime {index}: {} workers", rt.workers)?;
            unanswered(&mut self.out, &rt.unanswered)?;
            Tree::new(&rt.threads).write(&mut self.out, snapshot.taken)?;
        }
        Ok(())
    }

    fn dump(&mut self) -> io::Result<()> {
        let dump = crate::debug::dump();
        let mut lines = Lines {
            out: &mut self.out,
            only: None,
            in_block: false,
            found: false,
            partial: String::new(),
            error: None,
        };
        let _ = write!(lines, "{dump}");
        lines.finish()
    }

    fn where_(&mut self, id: u64) -> io::Result<()> {
        let dump = crate::debug::dump();
        let mut lines = Lines {
            out: &mut self.out,
            only: Some(format!("thread {id} ")),
            in_block: false,
            found: false,
            partial: String::new(),
            error: None,
        };
        let _ = write!(lines, "{dump}");
        let found = lines.found;
        lines.finish()?;
        if !found {
            writeln!(
                self.out,
                "error: no thread {id}: it finished, has not started, or runs on a worker \
                 that did not answer within {DUMP_PATIENCE:?} (see ps)"
            )?;
        }
        Ok(())
    }

    fn cancel(&mut self, id: u64) -> io::Result<()> {
        let reason =
            spool_runtime::cancel::CancelReason::requested("cancelled from the monitor console");
        match monitor_hooks::cancel_thread_by_id(id, reason, DUMP_PATIENCE) {
            CancelOutcome::Cancelled(Some(name)) => {
                writeln!(self.out, "cancelled thread {id} '{name}'")
            }
            CancelOutcome::Cancelled(None) => writeln!(self.out, "cancelled thread {id}"),
            CancelOutcome::NotFound(busy) if busy.is_empty() => writeln!(
                self.out,
                "error: no thread {id}: it finished or has not started (see ps)"
            ),
            CancelOutcome::NotFound(busy) => {
                let list: Vec<String> = busy
                    .iter()
                    .map(|(rt, worker)| format!("worker {worker} of runtime {rt}"))
                    .collect();
                writeln!(
                    self.out,
                    "error: thread {id} not found, but {} did not answer within \
                     {DUMP_PATIENCE:?} (busy running one green thread): it may be there; \
                     try again",
                    list.join(", ")
                )
            }
            _ => writeln!(self.out, "error: thread {id} not found"),
        }
    }

    fn stats(&mut self) -> io::Result<()> {
        let figures = monitor_hooks::stats();
        let snapshot = spool_runtime::trace::snapshot(DUMP_PATIENCE);
        let counts_match = figures.len() == snapshot.runtimes.len();
        for (index, rt) in figures.iter().enumerate() {
            write!(self.out, "runtime {index}: {} workers", rt.workers.len())?;
            if counts_match {
                let listed = &snapshot.runtimes[index];
                let waiting = listed
                    .threads
                    .iter()
                    .filter(|t| t.state == ThreadState::Waiting)
                    .count();
                write!(
                    self.out,
                    ", {waiting} threads parked, {} runnable",
                    listed.threads.len() - waiting
                )?;
            }
            writeln!(
                self.out,
                ", {} spawned from outside not yet taken by a worker",
                rt.injected
            )?;
            for (worker, w) in rt.workers.iter().enumerate() {
                writeln!(
                    self.out,
                    "  worker {worker}: {} live threads, {} queued to start, {} placed to start, \
                     {} sockets, {}",
                    w.live,
                    w.queued,
                    w.placed,
                    w.sockets,
                    if w.exited {
                        "exited"
                    } else if w.sleeping {
                        "sleeping"
                    } else {
                        "awake"
                    }
                )?;
            }
        }
        let (threads, idle, queued) = crate::unblock::pool_figures();
        writeln!(
            self.out,
            "unblock pool: {threads} OS threads ({idle} idle), {queued} jobs queued"
        )?;
        writeln!(
            self.out,
            "live: started, unfinished threads pinned to the worker; queued/placed to start: \
             spawned, never run; parked/runnable: from a dump; not counted (it would cost the \
             scheduling path): context switches, each worker's queue of woken threads"
        )
    }
}

fn parse_id(text: &str) -> Option<u64> {
    text.trim_start_matches('#').parse().ok()
}

fn unanswered(out: &mut impl Write, workers: &[usize]) -> io::Result<()> {
    for worker in workers {
        writeln!(
            out,
            "  worker {worker} did not answer within {DUMP_PATIENCE:?}: it is running one green \
             thread that has not reached a blocking point; its threads are not listed"
        )?;
    }
    Ok(())
}

/// A thread's one-line header: `thread 42 'name' [reason, 2.3s, worker 1]`.
struct Header<'a> {
    record: &'a ThreadRecord,
    taken: Instant,
}

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.record;
        write!(f, "thread {}", t.id.as_u64())?;
        if let Some(name) = &t.name {
            write!(f, " '{name}'")?;
        }
        match (t.state, &t.wait) {
            (ThreadState::Waiting, Some((reason, _, since))) => write!(
                f,
                " [{}, {}",
                reason.describe(),
                Human(self.taken.saturating_duration_since(*since))
            )?,
            (ThreadState::Waiting, None) => f.write_str(" [waiting")?,
            (ThreadState::NotStarted, _) => f.write_str(" [not started")?,
            _ => f.write_str(" [runnable")?,
        }
        write!(f, ", worker {}]", t.worker)
    }
}

/// A duration the way a person reads it: `850ms`, `2.3s`, `3m12s`, `2h5m`.
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        match secs {
            0 => write!(f, "{}ms", self.0.as_millis()),
            1..60 => write!(f, "{:.1}s", self.0.as_secs_f64()),
            60..3600 => write!(f, "{}m{}s", secs / 60, secs % 60),
            _ => write!(f, "{}h{}m", secs / 3600, secs % 3600 / 60),
        }
    }
}

/// The `tree` command's view of one runtime: scopes nested by the
/// threads' chains, each thread under its innermost scope.
///
/// Chains need not agree: a task group's child also carries the scopes it
/// inherited from the group's body (the body thread's root scope among
/// them), which the body's own chain does not list. So each scope sits
/// under the scope that precedes it in the chain where it is outermost;
/// the parent is then always shallower than the child, so no cycle can
/// form, and a group's body and children meet under the group.
struct Tree<'a> {
    scopes: BTreeMap<u64, TreeScope<'a>>,
    threads: Vec<&'a ThreadRecord>,
    /// Each scope's inner scopes (`None`: the top level), by id.
    children: HashMap<Option<u64>, Vec<u64>>,
    /// The scopes that hold a thread, themselves or deeper.
    occupied: HashSet<u64>,
}

struct TreeScope<'a> {
    record: &'a spool_runtime::trace::ScopeRecord,
    /// (depth in the chain it was placed by, parent scope id)
    placed: (usize, Option<u64>),
    threads: Vec<&'a ThreadRecord>,
}

impl<'a> Tree<'a> {
    fn new(threads: &'a [ThreadRecord]) -> Tree<'a> {
        let mut tree = Tree {
            scopes: BTreeMap::new(),
            threads: Vec::new(),
            children: HashMap::new(),
            occupied: HashSet::new(),
        };
        for t in threads {
            let mut parent = None;
            for (depth, scope) in t.scopes.iter().enumerate() {
                let id = scope.id.as_u64().get();
                let entry = tree.scopes.entry(id).or_insert(TreeScope {
                    record: scope,
                    placed: (depth, parent),
                    threads: Vec::new(),
                });
                if depth < entry.placed.0 {
                    entry.placed = (depth, parent);
                }
                parent = Some(id);
            }
            match parent {
                Some(innermost) => {
                    if let Some(scope) = tree.scopes.get_mut(&innermost) {
                        scope.threads.push(t);
                    }
                }
                None => tree.threads.push(t),
            }
        }
        // In id order, since `scopes` is a BTreeMap.
        for (&id, scope) in &tree.scopes {
            tree.children.entry(scope.placed.1).or_default().push(id);
            if !scope.threads.is_empty() {
                // Up to the top, stopping where an earlier walk went.
                let mut at = Some(id);
                while let Some(id) = at {
                    if !tree.occupied.insert(id) {
                        break;
                    }
                    at = tree.scopes[&id].placed.1;
                }
            }
        }
        tree
    }

    fn write(&self, out: &mut impl Write, taken: Instant) -> io::Result<()> {
        for record in &self.threads {
            writeln!(out, "  {}", Header { record, taken })?;
        }
        self.write_scopes(out, None, 1, taken)
    }

    fn write_scopes(
        &self,
        out: &mut impl Write,
        parent: Option<u64>,
        depth: usize,
        taken: Instant,
    ) -> io::Result<()> {
        let indent = "  ".repeat(depth);
        let ids = self.children.get(&parent).map_or(&[][..], Vec::as_slice);
        for &id in ids {
            if !self.occupied.contains(&id) {
                continue;
            }
            let scope = &self.scopes[&id];
            let record = scope.record;
            write!(out, "{indent}scope #{id}")?;
            if let Some(label) = &record.label {
                write!(out, " '{label}'")?;
            }
            if let Some(deadline) = record.deadline {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => write!(out, ", deadline in {}", Human(left))?,
                    None => write!(out, ", deadline passed")?,
                }
            }
            if record.cancelled {
                write!(out, ", cancelled")?;
            }
            writeln!(out)?;
            for record in &scope.threads {
                writeln!(out, "{indent}  {}", Header { record, taken })?;
            }
            self.write_scopes(out, Some(id), depth + 1, taken)?;
        }
        Ok(())
    }
}

/// Streams a dump's `Display` to a client line by line, all of it or only
/// the block of one thread (`only`: its header's prefix).
struct Lines<'a, W: Write> {
    out: &'a mut W,
    only: Option<String>,
    in_block: bool,
    found: bool,
    partial: String,
    error: Option<io::Error>,
}

impl<W: Write> Lines<'_, W> {
    fn line(&mut self, line: &str) -> io::Result<()> {
        if let Some(prefix) = &self.only {
            if line.starts_with("thread ") {
                self.in_block = line.starts_with(prefix.as_str());
                self.found |= self.in_block;
            } else if !line.starts_with(' ') {
                self.in_block = false;
            }
            if !self.in_block {
                return Ok(());
            }
        }
        writeln!(self.out, "{line}")
    }

    fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last)?;
        }
        Ok(())
    }
}

impl<W: Write> fmt::Write for Lines<'_, W> {
    fn write_str(&mut self, mut s: &str) -> fmt::Result {
        while let Some(end) = s.find('\n') {
            self.partial.push_str(&s[..end]);
            let line = std::mem::take(&mut self.partial);
            if let Err(e) = self.line(&line) {
                self.error = Some(e);
                return Err(fmt::Error);
            }
            self.partial = line;
            self.partial.clear();
            s = &s[end + 1..];
        }
        self.partial.push_str(s);
        Ok(())
    }
}
