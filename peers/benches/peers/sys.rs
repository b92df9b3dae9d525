//! What the children and the report read from the machine: memory figures
//! from `/proc/self/status` and a description of the machine.

use std::process::Command;

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_field(&status, field)
}

/// A `kB` field of a `/proc/*/status` text, in KiB.
fn status_field(status: &str, field: &str) -> Option<f64> {
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resident set size of this process, KiB; panics if /proc cannot say.
pub fn rss_kib() -> f64 {
    status_kib("VmRSS").expect("no VmRSS in /proc/self/status")
}

/// Peak resident set size of this process, MiB.
pub fn peak_rss_mib() -> f64 {
    status_kib("VmHWM").expect("no VmHWM in /proc/self/status") / 1024.0
}

/// The machine and toolchains a run was measured on.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub rustc: String,
    pub go: String,
    pub tokio: String,
    pub may: String,
    pub max_map_count: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute load averages at the start and
    /// end of the run: how busy the shared machine was (set by `main`).
    pub load: String,
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

impl Machine {
    pub fn describe() -> Machine {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "?".into())
        };
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_else(|| "?".into());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let version = |cmd: &str, arg: &str| {
            Command::new(cmd)
                .arg(arg)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_else(|| "not installed".into())
        };
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib,
            kernel: format!("Linux {}", read("/proc/sys/kernel/osrelease")),
            rustc: version("rustc", "--version"),
            go: version("go", "version"),
            tokio: locked_version("tokio"),
            may: locked_version("may"),
            max_map_count: read("/proc/sys/vm/max_map_count"),
            load: format!("at start {}", load_average()),
        }
    }

    pub fn summary(&self) -> String {
        format!("{}; {}", self.hardware(), self.toolchains())
    }

    /// Cores, memory and kernel.
    pub fn hardware(&self) -> String {
        format!(
            "{} cores ({}), {:.0} GiB, {}, vm.max_map_count {}",
            self.cores, self.cpu, self.memory_gib, self.kernel, self.max_map_count
        )
    }

    /// The compilers and peer versions.
    pub fn toolchains(&self) -> String {
        format!(
            "{}; tokio {}, may {}; {}",
            self.rustc, self.tokio, self.may, self.go
        )
    }
}

/// The version of `package` in the workspace's Cargo.lock.
fn locked_version(package: &str) -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .unwrap_or_default();
    let needle = format!("name = \"{package}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| {
            let rest = &lock[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// Raises this process's soft limit on open descriptors to its hard limit:
/// the network scenarios hold 10,000 connections in one process.
pub fn raise_nofile_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill,
    // and setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A `kB` field of `/proc/<pid>/status`, in KiB: another process's memory.
pub fn process_status_kib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field(&status, field)
}
