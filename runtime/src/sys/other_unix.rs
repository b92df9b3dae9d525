//! Portable unix backend of the platform layer (macOS, the BSDs, ...); see
//! the contract in `sys/mod.rs`. Guards are always `mprotect` pages here.

use std::io;

use libc::c_int;

/// Frees touched pages; on these systems the range stays mapped.
pub(super) const RELEASE_ADVICE: c_int = libc::MADV_DONTNEED;

/// Not every unix has `MAP_NORESERVE`; anonymous memory is lazily committed
/// on those that lack it.
pub(super) const MAP_NORESERVE: c_int = 0;

/// Only Linux can install guards without splitting a mapping.
pub(super) fn madvise_guard_supported() -> bool {
    false
}

/// Never called: `madvise_guard_supported` is false here.
///
/// # Safety
///
/// Same contract as the Linux backend's; it does nothing.
pub(super) unsafe fn install_madvise_guard(_addr: usize, _len: usize) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// These systems have no per-process limit on memory maps to report.
pub(crate) fn max_map_count() -> Option<usize> {
    None
}

/// The faulting address of a `SIGSEGV`/`SIGBUS`.
///
/// # Safety
///
/// `info` must be the `siginfo_t` the kernel passed to an `SA_SIGINFO`
/// handler of a memory-fault signal.
pub(super) unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: the caller passes the kernel's siginfo of a fault signal, for
    // which `si_addr` is set.
    unsafe { (*info).si_addr as usize }
}
