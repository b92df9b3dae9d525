//! Linux backend of the platform layer; see the contract in `sys/mod.rs`.

use std::io;

use libc::{c_int, c_void};

use super::unix::{is_readable, page_size, reserve};

/// `madvise` advice that turns a range into guard pages by writing markers
/// into its page table entries (Linux >= 6.13). Unlike `mprotect` it creates
/// no new memory map (VMA), so guards do not count against
/// `vm.max_map_count`; the markers stay through `MADV_DONTNEED` and are
/// removed only by `MADV_GUARD_REMOVE` or `munmap`. Older kernels answer
/// `EINVAL`. The `libc` crate does not define it yet; the value is from
/// `include/uapi/asm-generic/mman-common.h`.
const MADV_GUARD_INSTALL: c_int = 102;

/// Frees touched pages at once; later reads see zero-filled pages.
pub(super) const RELEASE_ADVICE: c_int = libc::MADV_DONTNEED;

/// Reserves address space without reserving swap for it.
pub(super) const MAP_NORESERVE: c_int = libc::MAP_NORESERVE;

/// Probes `MADV_GUARD_INSTALL` on a scratch mapping: the call must succeed
/// and the page must then really be unreadable (a kernel or sandbox that
/// accepts unknown advice silently would otherwise leave stacks unguarded).
pub(super) fn madvise_guard_supported() -> bool {
    let page = page_size();
    let Ok(base) = reserve(2 * page) else {
        return false;
    };
    // SAFETY: the two pages were just mapped by this function and hold no data.
    let installed = unsafe { install_madvise_guard(base, page) }.is_ok();
    let supported = installed && !is_readable(base) && is_readable(base + page);
    // SAFETY: the scratch mapping is ours and nothing refers to it.
    unsafe { libc::munmap(base as *mut c_void, 2 * page) };
    supported
}

/// Makes `[addr, addr + len)` guard pages with `MADV_GUARD_INSTALL`.
///
/// # Safety
///
/// The range must be page aligned, lie in an anonymous private mapping owned
/// by the caller, and hold nothing anyone still uses: its contents are
/// discarded.
pub(super) unsafe fn install_madvise_guard(addr: usize, len: usize) -> io::Result<()> {
    loop {
        // SAFETY: the caller guarantees the range is ours and unused.
        let result = unsafe { libc::madvise(addr as *mut c_void, len, MADV_GUARD_INSTALL) };
        if result == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        // The kernel retries page-table races itself but can still report
        // EAGAIN/EINTR when interrupted; the call is idempotent.
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

/// `vm.max_map_count`: how many memory maps one process may have.
pub(crate) fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The faulting address of a `SIGSEGV`/`SIGBUS`.
///
/// # Safety
///
/// `info` must be the `siginfo_t` the kernel passed to an `SA_SIGINFO`
/// handler of a memory-fault signal.
pub(super) unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: the caller passes the kernel's siginfo of a fault signal, for
    // which the `si_addr` union member is the one that is set.
    unsafe { (*info).si_addr() as usize }
}
