//! Platform layer: the few operating-system services the engine needs.
//!
//! # Contract
//!
//! Everything above this module (`stack`, the scheduler) uses only these
//! items; no other module calls `libc` for memory maps or signals.
//!
//! Memory for stacks:
//! - `page_size() -> usize`: the page size, cached after the first call.
//! - `reserve(len) -> io::Result<usize>`: one anonymous private mapping of
//!   `len` bytes, readable and writable, with no swap reservation
//!   (`MAP_NORESERVE`), so untouched pages cost only address space. Returns
//!   its lowest address; the raw OS error on failure.
//! - `GuardKind` / `guard_kind()`: how guard pages are made in this process,
//!   decided once (see "Guard pages" below).
//! - `unsafe install_guard(kind, addr, len)`: makes `[addr, addr + len)` fault
//!   on any access. Returns the raw OS error on failure (`ENOMEM` from
//!   `mprotect` means the process ran out of memory maps).
//! - `unsafe release_pages(addr, len)`: gives the touched pages of a range back
//!   to the kernel; the range stays mapped and reads as zeroes afterwards.
//!   Guard pages inside the range stay guards (for both kinds).
//! - `max_map_count() -> Option<usize>`: the kernel's limit on memory maps per
//!   process, where there is one (`/proc/sys/vm/max_map_count` on Linux).
//! - `address_space_limit() -> Option<u64>`: the `RLIMIT_AS` soft limit in
//!   bytes, `None` when unlimited.
//!
//! Stack-overflow reports:
//! - `RunningStack`: the guard range, size and name of a green thread's stack.
//! - `set_running(*const RunningStack)`: one thread-local store, made by the
//!   scheduler around every resume (null when no green thread runs).
//! - `install_overflow_handler()`: installs, once per process, the `SIGSEGV`
//!   (and `SIGBUS`) handler that reports a fault anywhere in the running
//!   green thread's guard range (several pages: see "Guard size" in
//!   `stack/mod.rs`) and aborts; every other fault goes to the handler
//!   that was installed before ours (std's, which reports overflows of OS
//!   thread stacks).
//! - `ensure_altstack()`: gives the calling OS thread a signal stack if it has
//!   none, so the handler can run when the faulting stack is exhausted.
//!
//! # Backends
//!
//! `unix` holds what POSIX provides everywhere (`mmap`, `mprotect`,
//! `sigaction`, `sigaltstack`). The OS backend, `linux` or `other_unix`,
//! provides the rest under identical names:
//! - `madvise_guard_supported() -> bool`: whether guard pages can be made
//!   without splitting a mapping (Linux >= 6.13 `MADV_GUARD_INSTALL`).
//! - `unsafe install_madvise_guard(addr, len) -> io::Result<()>`.
//! - `RELEASE_ADVICE`: the `madvise` advice that frees touched pages.
//! - `MAP_NORESERVE`: the `mmap` flag that skips swap reservation, or 0.
//! - `max_map_count() -> Option<usize>`.
//! - `unsafe fault_address(*const siginfo_t) -> usize`.
//!
//! Non-unix targets are not supported and fail to compile.
//!
//! # Guard pages
//!
//! `GuardKind::Madvise` installs guards with `madvise(MADV_GUARD_INSTALL)`:
//! the kernel marks the page table entries, so a guard adds no memory map
//! (VMA) and a million guarded stacks fit under the default
//! `vm.max_map_count` of 65530. `GuardKind::Mprotect` uses
//! `mprotect(PROT_NONE)`, which works everywhere but splits the mapping: each
//! guard inside a slab costs two maps, so about 32,000 live stacks exhaust
//! the default limit. Either way a guard of several pages costs one call and
//! no more maps than a guard of one page.
//!
//! The kind is probed once per process. The environment variable
//! `SPOOL_STACK_GUARD` (read through `config.rs`, like every variable)
//! overrides the probe:
//! - `mprotect`: always use `mprotect` guards (for testing the fallback, or
//!   a kernel whose `MADV_GUARD_INSTALL` misbehaves);
//! - `madvise`: use `MADV_GUARD_INSTALL`; when the kernel lacks it, a warning
//!   is printed and `mprotect` guards are used instead;
//! - unset or `auto`: probe. Any other value fails every runtime start.

#[cfg(not(unix))]
compile_error!("spool supports only unix targets (it needs mmap, madvise and sigaltstack)");

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(all(unix, not(target_os = "linux")))]
#[path = "other_unix.rs"]
mod os;
mod unix;

use std::sync::OnceLock;

use crate::config::GuardSetting;

pub(crate) use os::max_map_count;
pub(crate) use unix::{
    address_space_limit, ensure_altstack, install_guard, install_overflow_handler, page_size,
    release_pages, reserve, set_running, RunningStack,
};
#[cfg(test)]
pub(crate) use unix::{is_readable, OVERFLOW_HELP};

/// The environment variable that overrides the guard-page probe.
pub(crate) const GUARD_ENV: &str = crate::config::STACK_GUARD.name;

/// How guard pages below stacks are made. See "Guard pages" at the top of
/// this file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13): no extra memory map.
    Madvise,
    /// `mprotect(PROT_NONE)`: portable, but each guard splits its mapping.
    Mprotect,
}

/// The guard kind of this process, decided on first call from
/// `SPOOL_STACK_GUARD` and a probe of the kernel.
pub(crate) fn guard_kind() -> GuardKind {
    static KIND: OnceLock<GuardKind> = OnceLock::new();
    *KIND.get_or_init(|| {
        // Every runtime start checks the variable before any of its threads
        // needs a stack, so an error here means the environment changed
        // since: say so, and let the probe decide.
        let setting = crate::config::stack_guard().unwrap_or_else(|error| {
            eprintln!("{error}; probing the kernel instead");
            None
        });
        let (kind, warning) = resolve_guard_kind(setting, os::madvise_guard_supported);
        if let Some(warning) = warning {
            eprintln!("{warning}");
        }
        kind
    })
}

/// Decides the guard kind from the `SPOOL_STACK_GUARD` setting and, when it
/// matters, the kernel probe. Returns a warning to print for a setting that
/// cannot be honoured.
fn resolve_guard_kind(
    setting: Option<GuardSetting>,
    madvise_supported: impl FnOnce() -> bool,
) -> (GuardKind, Option<String>) {
    let probe = |supported: bool| {
        if supported {
            GuardKind::Madvise
        } else {
            GuardKind::Mprotect
        }
    };
    match setting.unwrap_or(GuardSetting::Auto) {
        GuardSetting::Mprotect => (GuardKind::Mprotect, None),
        GuardSetting::Madvise => {
            if madvise_supported() {
                (GuardKind::Madvise, None)
            } else {
                let warning = format!(
                    "spool: {GUARD_ENV}=madvise, but this kernel does not support \
                     madvise(MADV_GUARD_INSTALL) (Linux >= 6.13); using mprotect guard pages"
                );
                (GuardKind::Mprotect, Some(warning))
            }
        }
        GuardSetting::Auto => (probe(madvise_supported()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_setting_overrides_the_probe() {
        let no_probe = || -> bool { panic!("probe must not run for an explicit mprotect") };
        assert_eq!(
            resolve_guard_kind(Some(GuardSetting::Mprotect), no_probe),
            (GuardKind::Mprotect, None)
        );
        assert_eq!(
            resolve_guard_kind(None, || true),
            (GuardKind::Madvise, None)
        );
        assert_eq!(
            resolve_guard_kind(Some(GuardSetting::Auto), || false),
            (GuardKind::Mprotect, None)
        );
        assert_eq!(
            resolve_guard_kind(Some(GuardSetting::Madvise), || true),
            (GuardKind::Madvise, None)
        );

        let (kind, warning) = resolve_guard_kind(Some(GuardSetting::Madvise), || false);
        assert_eq!(kind, GuardKind::Mprotect);
        assert!(warning.unwrap().contains("MADV_GUARD_INSTALL"));
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert!(page_size() >= 4096);
    }

    /// Guard markers made with `MADV_GUARD_INSTALL` must survive
    /// `MADV_DONTNEED`, because the pool releases runs of stacks, guards
    /// included, with one call.
    #[test]
    fn release_keeps_guards() {
        for kind in [GuardKind::Madvise, GuardKind::Mprotect] {
            if kind == GuardKind::Madvise && !os::madvise_guard_supported() {
                eprintln!("skipping: MADV_GUARD_INSTALL unsupported");
                continue;
            }
            let page = page_size();
            let base = reserve(3 * page).unwrap();
            // SAFETY: the three pages were just mapped by us and hold no data.
            unsafe { install_guard(kind, base + page, page).unwrap() };
            for addr in [base, base + 2 * page] {
                // SAFETY: pages 0 and 2 are mapped read-write and owned here.
                unsafe { (addr as *mut u8).write_volatile(7) };
            }
            assert!(
                !is_readable(base + page),
                "{kind:?} guard missing after install"
            );
            // SAFETY: the mapping is ours; nothing in it is referenced.
            unsafe { release_pages(base, 3 * page).unwrap() };
            assert!(
                !is_readable(base + page),
                "{kind:?} guard lost by release_pages"
            );
            for addr in [base, base + 2 * page] {
                assert!(is_readable(addr));
                // SAFETY: still mapped read-write; release only dropped the contents.
                assert_eq!(unsafe { (addr as *const u8).read_volatile() }, 0);
            }
            // SAFETY: the mapping was made above and nothing refers to it any more.
            unsafe { libc::munmap(base as *mut libc::c_void, 3 * page) };
        }
    }

    #[test]
    fn ensure_altstack_installs_one_when_missing() {
        std::thread::spawn(|| {
            let disable = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: this thread is not running on its signal stack; turning
            // it off only changes where later handlers run.
            let result = unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
            assert_eq!(result, 0);
            ensure_altstack();
            // SAFETY: zeroed stack_t is a valid out-parameter.
            let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
            // SAFETY: only reads the current setting into `current`.
            let result = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
            assert_eq!(result, 0);
            assert_eq!(current.ss_flags & libc::SS_DISABLE, 0);
            assert!(current.ss_size >= 64 * 1024);
            // A second call keeps the stack it finds.
            ensure_altstack();
        })
        .join()
        .unwrap();
    }
}
