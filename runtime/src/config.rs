//! Settings from the environment: every variable spool reads, in one place.
//!
//! # One story for every variable
//! spool reads a few `SPOOL_*` variables, and std's `RUST_MIN_STACK`. Each
//! is described once, by a [`Var`] below (its name, what it sets, the values
//! it accepts and what happens when it is unset), and read by one function,
//! [`Var::read`], so they all behave alike:
//!
//! * **When.** The variables a runtime needs are read when it starts
//!   (`Runtime::new`, `spool::runtime::Builder::build`, the global runtime
//!   on first use). Choices that are made once per process — how guard
//!   pages are made, the `unblock` pool's limit, the console that
//!   `SPOOL_MONITOR` opens — are fixed by the first start that needs them;
//!   every later start still checks that the variable parses.
//! * **Builder options win.** A runtime builder's option replaces its
//!   variable, which that start then does not read (`Builder::workers`
//!   replaces `SPOOL_WORKERS`, and so on). For the stack size the most
//!   specific setting wins: `spool::thread::Builder::stack_size` for one
//!   thread, then `Builder::stack_size` for a runtime, then
//!   `SPOOL_STACK_SIZE`, then `RUST_MIN_STACK` (which std's `thread::spawn`
//!   reads too), then 256 KiB.
//! * **A bad value is an error at start.** A value that does not parse, is
//!   out of range, is not UTF-8 or is empty makes the start fail with an
//!   `io::Error` of kind `InvalidInput` that names the variable, the value
//!   and what is accepted:
//!   `spool: SPOOL_WORKERS="zero" is not valid: expected a whole number
//!   from 1 to 1024; unset it for the default, one worker per core`.
//!   All the bad variables a start reads are named, one per line. Spaces
//!   around a value are ignored; an empty value is not taken for "unset",
//!   since a variable set to nothing is more likely a script's mistake
//!   than a wish for the default.
//! * **Where no `Result` can carry it.** The global runtime starts
//!   implicitly, in `spool::thread::spawn` and `spool::run`; these panic
//!   with the error, as `std::thread::spawn` panics when the OS refuses a
//!   thread, and every later call fails the same way.
//!   `spool::thread::Builder::spawn` returns it instead.
//! * **Unknown names.** The `SPOOL_` prefix is not spool's alone (an
//!   application called spool-something has its own, and this crate's
//!   test suite marks its child processes with one), so an unknown
//!   `SPOOL_*` variable is no error. A *likely typo* — a name within two
//!   edits of one of ours, or one of ours in another case — is mentioned
//!   once per process on stderr, naming the variable it resembles, since a
//!   misspelt setting that is silently ignored is the hardest to find
//!   ([`mention_likely_typos`]).
//!
//! The table of the variables lives in the README and in spool's crate
//! documentation ("Configuration"); the suite checks that both list every
//! variable of [`ALL`].

use std::ffi::OsStr;
use std::io;
use std::num::NonZeroUsize;
use std::sync::Once;
use std::time::Duration;

use crate::deadlock::DeadlockMode;
use crate::{stack, RuntimeConfig, MAX_WORKERS};

/// One environment variable spool reads: its name, what it sets, the values
/// it accepts and what happens when it is unset.
///
/// ```
/// use spool_runtime::config;
///
/// assert_eq!(config::WORKERS.name, "SPOOL_WORKERS");
/// assert!(config::ALL.iter().any(|var| var.name == "RUST_MIN_STACK"));
/// ```
#[derive(Debug)]
pub struct Var {
    /// The variable's name.
    pub name: &'static str,
    /// What it sets, in a few words.
    pub sets: &'static str,
    /// The values it accepts, as an error message says them after
    /// "expected".
    pub accepted: &'static str,
    /// What happens when it is unset.
    pub default: &'static str,
}

/// `SPOOL_WORKERS`: the worker count of a runtime started without
/// `Builder::workers` (the global one among them).
pub const WORKERS: Var = Var {
    name: "SPOOL_WORKERS",
    sets:
        "worker OS threads of a runtime whose builder does not set them, the global one among them",
    accepted: "a whole number from 1 to 1024",
    default: "one worker per core",
};

/// `SPOOL_STACK_SIZE`: the default stack size of green threads.
pub const STACK_SIZE: Var = Var {
    name: "SPOOL_STACK_SIZE",
    sets: "default stack size of green threads (wins over RUST_MIN_STACK)",
    accepted: "a number of bytes, or of KiB or MiB with a K or M suffix (512K, 8M), at most 1 GiB",
    default: "RUST_MIN_STACK, or else 256 KiB",
};

/// `RUST_MIN_STACK`: std's default stack size for threads, which spool
/// follows for green threads when `SPOOL_STACK_SIZE` is unset.
pub const RUST_MIN_STACK: Var = Var {
    name: "RUST_MIN_STACK",
    sets: "default stack size of green threads when SPOOL_STACK_SIZE is unset, as std's for OS threads",
    accepted: "a number of bytes, at most 1 GiB (or set SPOOL_STACK_SIZE, which \
               leaves RUST_MIN_STACK to std's threads)",
    default: "256 KiB",
};

/// `SPOOL_STACK_GUARD`: how the guard pages below stacks are made.
pub const STACK_GUARD: Var = Var {
    name: "SPOOL_STACK_GUARD",
    sets: "how the guard pages below green-thread stacks are made",
    accepted: "madvise, mprotect or auto",
    default:
        "auto: madvise(MADV_GUARD_INSTALL) where the kernel has it (Linux 6.13 on), else mprotect",
};

/// `SPOOL_BLOCKING_MS`: the blocking watchdog's threshold.
pub const BLOCKING_MS: Var = Var {
    name: "SPOOL_BLOCKING_MS",
    sets: "how long a green thread may hold its worker before the watchdog reports it",
    accepted: "a whole number of milliseconds (0 turns the watchdog off)",
    default: "100 ms",
};

/// `SPOOL_DEADLOCK`: what a runtime does on a global deadlock.
pub const DEADLOCK: Var = Var {
    name: "SPOOL_DEADLOCK",
    sets: "what a global deadlock does",
    accepted: "report, fatal or off (fatal: print the report and exit with status 2)",
    default: "report: print a report and a dump, keep waiting",
};

/// `SPOOL_DUMP_SIGNAL`: the signal that prints a dump of every green
/// thread (parsed by `spool::runtime::DumpSignal`).
pub const DUMP_SIGNAL: Var = Var {
    name: "SPOOL_DUMP_SIGNAL",
    sets: "a signal that prints a dump of every green thread to stderr",
    accepted:
        "SIGQUIT, SIGUSR1 or SIGUSR2 (the name with or without SIG, in any case, or its number)",
    default: "no dump signal",
};

/// `SPOOL_MONITOR`: where the monitor console listens (parsed by
/// `spool::runtime::MonitorAddr`).
pub const MONITOR: Var = Var {
    name: "SPOOL_MONITOR",
    sets: "the address of the monitor console",
    accepted: "an IP address and port (127.0.0.1:48802, [::1]:48802, localhost:48802) \
               or a Unix socket path starting with / or ./",
    default: "no console",
};

/// `SPOOL_MONITOR_ALLOW_REMOTE`: whether the console may listen on a
/// non-loopback address.
pub const MONITOR_ALLOW_REMOTE: Var = Var {
    name: "SPOOL_MONITOR_ALLOW_REMOTE",
    sets: "whether the monitor console may listen on an address other than loopback",
    accepted: "1, true or yes (or 0, false or no)",
    default: "no: loopback only",
};

/// `SPOOL_UNBLOCK_THREADS`: the most OS threads `unblock`'s pool runs.
pub const UNBLOCK_THREADS: Var = Var {
    name: "SPOOL_UNBLOCK_THREADS",
    sets: "the most OS threads the unblock pool runs at once",
    accepted: "a whole number from 1 to 65536",
    default: "512",
};

/// Every variable spool reads.
pub const ALL: [&Var; 10] = [
    &WORKERS,
    &STACK_SIZE,
    &RUST_MIN_STACK,
    &STACK_GUARD,
    &BLOCKING_MS,
    &DEADLOCK,
    &DUMP_SIGNAL,
    &MONITOR,
    &MONITOR_ALLOW_REMOTE,
    &UNBLOCK_THREADS,
];

/// The largest stack size a variable may ask for (as `Builder::stack_size`).
const MAX_STACK_BYTES: u64 = 1 << 30;

/// The most OS threads `SPOOL_UNBLOCK_THREADS` may allow.
const MAX_UNBLOCK_THREADS: usize = 65_536;

impl Var {
    /// Reads the variable: `Ok(None)` when it is unset, the value `parse`
    /// makes of its text (spaces around it removed) when it is set, and an
    /// `InvalidInput` error naming the variable, the value and
    /// [`accepted`](Var::accepted) when `parse` returns `None` or the value
    /// is not UTF-8.
    ///
    /// ```
    /// use spool::runtime::DumpSignal;
    /// use spool_runtime::config;
    ///
    /// // What spool does with `SPOOL_DUMP_SIGNAL`: its own type parses the text.
    /// match config::DUMP_SIGNAL.read(|text| text.parse::<DumpSignal>().ok()) {
    ///     Ok(Some(signal)) => println!("a dump on {signal}"),
    ///     Ok(None) => println!("unset"),
    ///     // spool: SPOOL_DUMP_SIGNAL="HUP" is not valid: expected SIGQUIT, ...
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// ```
    pub fn read<T>(&self, parse: impl FnOnce(&str) -> Option<T>) -> io::Result<Option<T>> {
        self.parse(std::env::var_os(self.name).as_deref(), parse)
    }

    /// [`read`](Var::read) with the value given rather than read.
    fn parse<T>(
        &self,
        value: Option<&OsStr>,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> io::Result<Option<T>> {
        let Some(value) = value else {
            return Ok(None);
        };
        match value.to_str().map(str::trim).and_then(parse) {
            Some(parsed) => Ok(Some(parsed)),
            None => Err(self.invalid(value)),
        }
    }

    /// The error for a bad `value`.
    fn invalid(&self, value: &OsStr) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "spool: {}={value:?} is not valid: expected {}; unset it for the default, {}",
                self.name, self.accepted, self.default
            ),
        )
    }
}

/// `SPOOL_WORKERS`, if set.
///
/// ```
/// // `Ok(None)` unless SPOOL_WORKERS is set; an error naming it if it is bad.
/// if let Ok(Some(n)) = spool_runtime::config::workers() {
///     assert!((1..=spool_runtime::MAX_WORKERS).contains(&n));
/// }
/// ```
pub fn workers() -> io::Result<Option<usize>> {
    WORKERS.read(parse_workers)
}

fn parse_workers(text: &str) -> Option<usize> {
    let n = parse_whole(text)?;
    (1..=MAX_WORKERS).contains(&n).then_some(n)
}

/// The default stack size the environment asks for, in bytes (before
/// rounding to pages): `SPOOL_STACK_SIZE` if set, else `RUST_MIN_STACK`
/// if set.
///
/// ```
/// if let Ok(Some(bytes)) = spool_runtime::config::stack_size() {
///     assert!(bytes <= 1 << 30);
/// }
/// ```
pub fn stack_size() -> io::Result<Option<usize>> {
    match STACK_SIZE.read(|text| parse_size(text, true))? {
        Some(bytes) => Ok(Some(bytes)),
        None => RUST_MIN_STACK.read(|text| parse_size(text, false)),
    }
}

/// A byte count of at most 1 GiB; with `suffixes`, also a count of KiB or
/// MiB followed by `K` or `M` (in either case).
fn parse_size(text: &str, suffixes: bool) -> Option<usize> {
    let (digits, unit) = match text.as_bytes().last()? {
        b'k' | b'K' if suffixes => (&text[..text.len() - 1], 1 << 10),
        b'm' | b'M' if suffixes => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    let bytes = (parse_whole(digits)? as u64).checked_mul(unit)?;
    (bytes <= MAX_STACK_BYTES).then_some(bytes as usize)
}

/// `SPOOL_BLOCKING_MS`, if set.
///
/// ```
/// let threshold = spool_runtime::config::blocking_threshold();
/// # let _ = threshold;
/// ```
pub fn blocking_threshold() -> io::Result<Option<Duration>> {
    BLOCKING_MS.read(parse_millis)
}

fn parse_millis(text: &str) -> Option<Duration> {
    Some(Duration::from_millis(parse_whole(text)? as u64))
}

/// `SPOOL_DEADLOCK`, if set.
///
/// ```
/// let mode = spool_runtime::config::deadlock().ok().flatten().unwrap_or_default();
/// # let _ = mode;
/// ```
pub fn deadlock() -> io::Result<Option<DeadlockMode>> {
    DEADLOCK.read(parse_deadlock)
}

fn parse_deadlock(text: &str) -> Option<DeadlockMode> {
    match text {
        "report" => Some(DeadlockMode::Report),
        "fatal" => Some(DeadlockMode::Fatal),
        "off" => Some(DeadlockMode::Off),
        _ => None,
    }
}

/// What `SPOOL_STACK_GUARD` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuardSetting {
    /// Probe the kernel.
    Auto,
    /// `MADV_GUARD_INSTALL` guards (with a warning and `mprotect` ones when
    /// the kernel lacks it).
    Madvise,
    /// `mprotect` guards.
    Mprotect,
}

/// `SPOOL_STACK_GUARD`, if set.
pub(crate) fn stack_guard() -> io::Result<Option<GuardSetting>> {
    STACK_GUARD.read(parse_guard)
}

fn parse_guard(text: &str) -> Option<GuardSetting> {
    match text {
        "auto" => Some(GuardSetting::Auto),
        "madvise" => Some(GuardSetting::Madvise),
        "mprotect" => Some(GuardSetting::Mprotect),
        _ => None,
    }
}

/// `SPOOL_MONITOR_ALLOW_REMOTE`, if set.
///
/// ```
/// let allow = spool_runtime::config::allow_remote_monitor().ok().flatten().unwrap_or(false);
/// # let _ = allow;
/// ```
pub fn allow_remote_monitor() -> io::Result<Option<bool>> {
    MONITOR_ALLOW_REMOTE.read(parse_yes_no)
}

fn parse_yes_no(text: &str) -> Option<bool> {
    match text {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// `SPOOL_UNBLOCK_THREADS`, if set.
///
/// ```
/// if let Ok(Some(limit)) = spool_runtime::config::unblock_threads() {
///     assert!(limit >= 1);
/// }
/// ```
pub fn unblock_threads() -> io::Result<Option<usize>> {
    UNBLOCK_THREADS.read(parse_unblock_threads)
}

fn parse_unblock_threads(text: &str) -> Option<usize> {
    let n = parse_whole(text)?;
    (1..=MAX_UNBLOCK_THREADS).contains(&n).then_some(n)
}

/// Digits only: no sign, no spaces inside, no `_`.
fn parse_whole(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The errors of one start, reported together.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<io::Error>);

impl Errors {
    /// The value of `result`, keeping its error for [`Errors::finish`].
    pub(crate) fn take<T>(&mut self, result: io::Result<Option<T>>) -> Option<T> {
        result.unwrap_or_else(|error| {
            self.0.push(error);
            None
        })
    }

    /// `Ok` if no error was kept; else one error naming them all, one per
    /// line, of the first one's kind.
    pub(crate) fn finish(self) -> io::Result<()> {
        let mut errors = self.0.into_iter();
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let mut message = first.to_string();
        for error in errors {
            message.push('\n');
            message.push_str(&error.to_string());
        }
        Err(io::Error::new(first.kind(), message))
    }
}

/// A runtime's settings once its configuration and the environment are
/// read.
pub(crate) struct Settled {
    pub(crate) workers: usize,
    /// Normalized (see `stack::normalize_stack_size`).
    pub(crate) stack_size: usize,
    pub(crate) deadlock: DeadlockMode,
    pub(crate) blocking_threshold: Duration,
}

impl RuntimeConfig {
    /// Checks this configuration, and the environment variables that
    /// settle what it leaves unset (see [the module docs](self)),
    /// without starting anything: the error [`Runtime::new`](crate::Runtime::new) would return
    /// for them, naming every bad variable.
    ///
    /// ```
    /// use spool_runtime::RuntimeConfig;
    ///
    /// let config = RuntimeConfig { workers: Some(0), ..RuntimeConfig::default() };
    /// assert_eq!(config.check().unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn check(&self) -> io::Result<()> {
        self.settle().map(drop)
    }

    /// This configuration, with what it leaves unset read from the
    /// environment.
    pub(crate) fn settle(&self) -> io::Result<Settled> {
        mention_likely_typos();
        let mut errors = Errors::default();
        let workers = match self.workers {
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("spool: a runtime needs from 1 to {MAX_WORKERS} workers, got {n}"),
                ))
            }
            None => errors.take(workers()).unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
            }),
        };
        let stack_size = match self.stack_size {
            Some(bytes) => bytes,
            None => errors
                .take(stack_size())
                .unwrap_or(stack::DEFAULT_STACK_SIZE),
        };
        let deadlock = match self.deadlock {
            Some(mode) => mode,
            None => errors.take(deadlock()).unwrap_or_default(),
        };
        let blocking_threshold = match self.blocking_threshold {
            Some(threshold) => threshold,
            None => errors
                .take(blocking_threshold())
                .unwrap_or(crate::DEFAULT_BLOCKING_THRESHOLD),
        };
        // Process-wide settings no builder replaces: checked at every start,
        // used where they are needed.
        errors.take(stack_guard());
        errors.take(unblock_threads());
        errors.finish()?;
        Ok(Settled {
            workers,
            stack_size: stack::normalize_stack_size(stack_size)?,
            deadlock,
            blocking_threshold,
        })
    }
}

/// `error`, a bad setting found before the engine's own were read (the
/// dump signal's or the console's), followed by the engine's bad settings
/// for `config`, if any: so one start names every bad variable.
///
/// ```
/// use std::io;
/// use spool_runtime::{config, RuntimeConfig};
///
/// let first = io::Error::new(io::ErrorKind::InvalidInput, "spool: SPOOL_MONITOR=\"x\" is not valid");
/// let both = config::and_engine_errors(first, &RuntimeConfig { workers: Some(0), ..Default::default() });
/// assert_eq!(both.to_string().lines().count(), 2);
/// ```
pub fn and_engine_errors(error: io::Error, config: &crate::RuntimeConfig) -> io::Error {
    if error.kind() != io::ErrorKind::InvalidInput {
        return error;
    }
    match config.check() {
        Err(more) if more.kind() == io::ErrorKind::InvalidInput => {
            io::Error::new(error.kind(), format!("{error}\n{more}"))
        }
        _ => error,
    }
}

/// Mentions on stderr, once per process, every `SPOOL_*` variable that is
/// not one of spool's but looks like a misspelling of one (see "Unknown
/// names" at the top of this file). Runtime starts call it.
///
/// ```
/// spool_runtime::config::mention_likely_typos(); // once per process
/// spool_runtime::config::mention_likely_typos(); // does nothing
/// ```
pub fn mention_likely_typos() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if let Some(meant) = likely_typo(name) {
                eprintln!(
                    "spool: ignoring {name}, which is not a spool variable; did you mean {meant}?"
                );
            }
        }
    });
}

/// The variable of ours that `name` probably misspells, if any.
fn likely_typo(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if !upper.starts_with("SPOOL_") || ALL.iter().any(|var| var.name == name) {
        return None;
    }
    ALL.iter()
        .map(|var| (edit_distance(&upper, var.name), var.name))
        .filter(|&(distance, _)| distance <= 2)
        .min()
        .map(|(_, meant)| meant)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`:
/// the optimal string alignment distance, over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // Three rows of the dynamic-programming table: two back, one back, now.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn parse<T>(
        var: &Var,
        text: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> io::Result<Option<T>> {
        var.parse(Some(OsStr::new(text)), parse)
    }

    #[test]
    fn unset_is_none_and_spaces_are_trimmed() {
        assert_eq!(WORKERS.parse(None, parse_workers).unwrap(), None);
        assert_eq!(parse(&WORKERS, " 3\n", parse_workers).unwrap(), Some(3));
    }

    #[test]
    fn the_error_names_variable_value_and_accepted_values() {
        let err = parse(&WORKERS, "zero", parse_workers).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "spool: SPOOL_WORKERS=\"zero\" is not valid: expected a whole number from 1 to \
             1024; unset it for the default, one worker per core"
        );
        let err = WORKERS
            .parse(Some(OsStr::from_bytes(b"\xff2")), parse_workers)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spool: SPOOL_WORKERS=\"\\xFF2\" is not valid"),
            "{err}"
        );
    }

    #[test]
    fn workers_range() {
        for good in ["1", "1024", "08"] {
            assert!(parse_workers(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "0",
            "1025",
            "-1",
            "+2",
            "2.0",
            "1 2",
            "1_000",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_workers(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("262144", true), Some(262_144));
        assert_eq!(parse_size("0", false), Some(0));
        assert_eq!(parse_size("512K", true), Some(512 << 10));
        assert_eq!(parse_size("512k", true), Some(512 << 10));
        assert_eq!(parse_size("8M", true), Some(8 << 20));
        assert_eq!(parse_size("1024M", true), Some(1 << 30));
        assert_eq!(parse_size("1073741824", false), Some(1 << 30));
        for bad in [
            "",
            "K",
            "1025M",
            "1073741825",
            "2G",
            "1.5M",
            "-1",
            "8 M",
            "8MiB",
            "0x100",
        ] {
            assert_eq!(parse_size(bad, true), None, "{bad}");
        }
        // RUST_MIN_STACK takes what std takes: bytes, no suffix.
        assert_eq!(parse_size("512K", false), None);
        assert_eq!(parse_size("99999999999999999999999", false), None);
        assert_eq!(
            parse_size("17179869184K", true),
            None,
            "overflows nothing, still too big"
        );
    }

    #[test]
    fn keywords_and_numbers() {
        assert_eq!(parse_millis("0"), Some(Duration::ZERO));
        assert_eq!(parse_millis("250"), Some(Duration::from_millis(250)));
        for bad in ["", "abc", "-1", "1.5", "100ms"] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
        assert_eq!(parse_deadlock("fatal"), Some(DeadlockMode::Fatal));
        assert_eq!(parse_deadlock("Fatal"), None);
        assert_eq!(parse_guard("mprotect"), Some(GuardSetting::Mprotect));
        assert_eq!(parse_guard(""), None);
        assert_eq!(parse_yes_no("yes"), Some(true));
        assert_eq!(parse_yes_no("0"), Some(false));
        assert_eq!(parse_yes_no("perhaps"), None);
        assert_eq!(parse_unblock_threads("65536"), Some(65_536));
        assert_eq!(parse_unblock_threads("0"), None);
        assert_eq!(parse_unblock_threads("65537"), None);
        // Spaces around a value are ignored before the parser sees it.
        let parsed = parse(&BLOCKING_MS, " 250\t", parse_millis).unwrap();
        assert_eq!(parsed, Some(Duration::from_millis(250)));
        let err = parse(&BLOCKING_MS, "", parse_millis).unwrap_err();
        assert!(
            err.to_string()
                .contains("SPOOL_BLOCKING_MS=\"\" is not valid"),
            "{err}"
        );
    }

    #[test]
    fn errors_are_named_together() {
        let mut errors = Errors::default();
        assert_eq!(errors.take(Ok(Some(1))), Some(1));
        assert_eq!(errors.take(parse(&WORKERS, "a", parse_workers)), None);
        assert_eq!(errors.take(parse(&BLOCKING_MS, "b", parse_whole)), None);
        let err = errors.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let lines: Vec<_> = err.to_string().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].contains("SPOOL_WORKERS=\"a\"")
                && lines[1].contains("SPOOL_BLOCKING_MS=\"b\"")
        );
        assert!(Errors::default().finish().is_ok());
    }

    #[test]
    fn likely_typos() {
        assert_eq!(likely_typo("SPOOL_WORKER"), Some("SPOOL_WORKERS"));
        assert_eq!(likely_typo("SPOOL_WOKRERS"), Some("SPOOL_WORKERS"));
        assert_eq!(likely_typo("spool_workers"), Some("SPOOL_WORKERS"));
        assert_eq!(likely_typo("SPOOL_STACKSIZE"), Some("SPOOL_STACK_SIZE"));
        assert_eq!(likely_typo("SPOOL_BLOCKING"), None, "too far to be sure");
        assert_eq!(likely_typo("SPOOL_WORKERS"), None);
        assert_eq!(likely_typo("SPOOL_SUITE_CHILD"), None);
        assert_eq!(likely_typo("SPOOL_APP_MODE"), None);
        assert_eq!(likely_typo("RUST_MIN_STACKS"), None, "only our prefix");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("abc", "ab"), 1);
        assert_eq!(edit_distance("abc", "acb"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn every_variable_is_listed_once() {
        let mut names: Vec<_> = ALL.iter().map(|var| var.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for var in ALL {
            assert!(!var.accepted.is_empty() && !var.default.is_empty() && !var.sets.is_empty());
        }
    }
}
