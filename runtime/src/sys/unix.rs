//! What every unix provides: memory maps, `mprotect` guards, and the
//! stack-overflow signal handler. See the contract in `sys/mod.rs`.

use std::cell::Cell;
use std::io;
use std::mem;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use libc::{c_int, c_void};

use super::{guard_kind, os, GuardKind};

/// The page size, cached after the first call.
pub(crate) fn page_size() -> usize {
    // Relaxed is enough: every thread that computes the value computes the
    // same one, so a racing store can only store what is already there.
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096);
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// Maps `len` bytes of fresh, lazily backed, read-write memory and returns
/// its lowest address. On failure returns the raw OS error (`ENOMEM` when
/// address space or memory is exhausted); callers add the context.
pub(crate) fn reserve(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous mapping at an address the kernel chooses touches
    // no memory that exists yet.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | os::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(addr as usize)
    }
}

/// Makes `[addr, addr + len)` fault on every access, using `kind`.
///
/// # Safety
///
/// The range must be page aligned, lie inside a mapping made by [`reserve`]
/// that the caller owns, and hold nothing still in use: its contents are
/// discarded.
pub(crate) unsafe fn install_guard(kind: GuardKind, addr: usize, len: usize) -> io::Result<()> {
    match kind {
        // SAFETY: forwarded from this function's contract.
        GuardKind::Madvise => unsafe { os::install_madvise_guard(addr, len) },
        GuardKind::Mprotect => {
            // SAFETY: the caller owns the range and nothing in it is in use,
            // so revoking access cannot break a live reference.
            let result = unsafe { libc::mprotect(addr as *mut c_void, len, libc::PROT_NONE) };
            if result == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
    }
}

/// Gives the touched pages of `[addr, addr + len)` back to the kernel. The
/// range stays mapped; guard pages inside it stay guards.
///
/// # Safety
///
/// The range must be page aligned, inside a mapping the caller owns, and
/// hold nothing still in use: its contents are lost.
pub(crate) unsafe fn release_pages(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and nothing in it is in use.
    let result = unsafe { libc::madvise(addr as *mut c_void, len, os::RELEASE_ADVICE) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The `RLIMIT_AS` soft limit (what `ulimit -v` shows, in bytes), or `None`
/// when unlimited or unknown.
pub(crate) fn address_space_limit() -> Option<u64> {
    // SAFETY: an all-zero rlimit is a valid out-parameter.
    let mut limit: libc::rlimit = unsafe { mem::zeroed() };
    // SAFETY: getrlimit only writes into `limit`.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    if result != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(limit.rlim_cur as u64)
    }
}

/// Whether the byte at `addr` can be read, asked of the kernel without
/// touching it from user space: `access(2)` copies its path argument from
/// our memory and fails with `EFAULT` where a read would fault. A readable
/// page holds a (possibly empty) string, which gives another error or
/// success.
pub(crate) fn is_readable(addr: usize) -> bool {
    // SAFETY: the kernel validates the pointer itself and reports EFAULT for
    // memory we may not read; nothing is written.
    let result = unsafe { libc::access(addr as *const libc::c_char, libc::F_OK) };
    result == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EFAULT)
}

// ---------------------------------------------------------------------------
// Stack overflow reports
// ---------------------------------------------------------------------------

/// Describes the stack of a green thread for the overflow handler. The
/// scheduler keeps one inside each green thread and points
/// [`set_running`] at it while that thread runs.
#[derive(Debug)]
pub(crate) struct RunningStack {
    /// Lowest address of the guard page below the stack (set when the
    /// thread first runs, on the stack it then gets).
    pub(crate) guard_start: Cell<usize>,
    /// One past the highest address of the guard page.
    pub(crate) guard_end: Cell<usize>,
    /// Usable bytes of the stack, reported in KiB.
    pub(crate) stack_size: usize,
    /// The green thread's name, if it has one.
    pub(crate) name: Option<Box<str>>,
}

thread_local! {
    /// The green thread running on this OS thread, or null.
    ///
    /// # Invariant
    ///
    /// When non-null it points to a live `RunningStack` (see `set_running`).
    /// Const-initialized with no destructor, so reading it from the signal
    /// handler is a plain thread-local load: no lazy initialization, no
    /// allocation.
    static RUNNING: Cell<*const RunningStack> = const { Cell::new(ptr::null()) };
}

/// Records which green thread runs on this OS thread (null: none). The
/// scheduler calls it before and after every resume; it is one
/// thread-local store.
///
/// `info` must stay valid until it is replaced by another call on this
/// thread: the overflow handler reads it.
#[inline]
pub(crate) fn set_running(info: *const RunningStack) {
    RUNNING.set(info);
}

/// The signals a guard-page hit can raise: Linux reports `SIGSEGV`, macOS
/// and some BSDs `SIGBUS`.
const FAULT_SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The actions that were installed before ours, one per `FAULT_SIGNALS`
/// entry; set before our handler is installed and never changed after.
static PREVIOUS: [OnceLock<libc::sigaction>; 2] = [OnceLock::new(), OnceLock::new()];

/// Installs the overflow handler for `SIGSEGV` and `SIGBUS`, once per
/// process, keeping the previous actions to pass other faults on to.
pub(crate) fn install_overflow_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        for (signal, previous) in FAULT_SIGNALS.into_iter().zip(&PREVIOUS) {
            // SAFETY: an all-zero sigaction is a valid out-parameter.
            let mut old: libc::sigaction = unsafe { mem::zeroed() };
            // SAFETY: a null new action only reads the current one.
            if unsafe { libc::sigaction(signal, ptr::null(), &mut old) } != 0 {
                continue;
            }
            // Saved before installing, so the handler never sees it missing.
            let _ = previous.set(old);
            // SAFETY: an all-zero sigaction is valid; we fill in the fields
            // we need and an empty mask below.
            let mut action: libc::sigaction = unsafe { mem::zeroed() };
            action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `sa_mask` is a valid sigset_t to initialize.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: `on_fault` has the SA_SIGINFO signature and is
            // async-signal-safe (see its docs).
            unsafe { libc::sigaction(signal, &action, ptr::null_mut()) };
        }
    });
}

/// The fault handler. Async-signal-safe: it reads a thread-local pointer,
/// compares addresses and, on a guard hit, formats into a stack buffer and
/// calls `write(2)` and `abort(3)`. No allocation, no locks.
extern "C" fn on_fault(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler of
    // a fault signal.
    let addr = unsafe { os::fault_address(info) };
    let running = RUNNING.get();
    if !running.is_null() {
        // SAFETY: RUNNING's invariant: a non-null pointer is live while set.
        let stack = unsafe { &*running };
        if (stack.guard_start.get()..stack.guard_end.get()).contains(&addr) {
            report_overflow_and_abort(stack);
        }
    }
    // SAFETY: called from the handler of `signal` with its own arguments.
    unsafe { pass_on(signal, info, context) };
}

/// Hands a fault that is not ours to the action installed before ours.
///
/// A default or ignored previous action is restored and we return: the
/// faulting instruction runs again and the kernel applies it (the default
/// kills the process with the signal). A previous handler (std's, which
/// reports overflows of OS thread stacks) is called directly, so ours stays
/// installed for later green threads.
///
/// # Safety
///
/// Must be called from the handler of `signal`, with the arguments the
/// kernel passed to it.
unsafe fn pass_on(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let index = FAULT_SIGNALS.iter().position(|&s| s == signal);
    let previous = index.and_then(|i| PREVIOUS[i].get());
    let handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    match previous {
        Some(previous) if handler != libc::SIG_DFL && handler != libc::SIG_IGN => {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the stored address is a
                // three-argument handler; we pass the kernel's arguments.
                unsafe {
                    let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                        mem::transmute(handler);
                    handler(signal, info, context);
                }
            } else {
                // SAFETY: without SA_SIGINFO the stored address is a
                // one-argument handler.
                unsafe {
                    let handler: extern "C" fn(c_int) = mem::transmute(handler);
                    handler(signal);
                }
            }
        }
        _ => {
            // SAFETY: an all-zero sigaction with SIG_DFL is valid.
            let mut default: libc::sigaction = unsafe { mem::zeroed() };
            default.sa_sigaction = libc::SIG_DFL;
            let restore = previous.unwrap_or(&default);
            // SAFETY: reinstalls an action the kernel gave us (or the
            // default); sigaction is async-signal-safe.
            unsafe { libc::sigaction(signal, restore, ptr::null_mut()) };
        }
    }
}

/// What to do about an overflow, printed under the overflow line: every
/// setting that gives a green thread a bigger stack, most specific first
/// (see "One story for every variable" in `config.rs`).
pub(crate) const OVERFLOW_HELP: &[u8] = b"help: give this thread a bigger stack with \
    spool::thread::Builder::stack_size, or raise the default of every green thread \
    with SPOOL_STACK_SIZE (e.g. SPOOL_STACK_SIZE=2M), RUST_MIN_STACK (in bytes) or \
    spool::runtime::Builder::stack_size\n";

/// Prints Rust's overflow message for a green thread, and what to do about
/// it, and aborts, using only async-signal-safe calls.
fn report_overflow_and_abort(stack: &RunningStack) -> ! {
    let name = stack.name.as_deref().unwrap_or("<unnamed>");
    let mut digits = [0u8; 20];
    write_stderr(b"\nthread '");
    write_stderr(name.as_bytes());
    write_stderr(b"' has overflowed its stack (");
    write_stderr(format_decimal(stack.stack_size / 1024, &mut digits));
    write_stderr(b" KiB)\n");
    write_stderr(OVERFLOW_HELP);
    write_stderr(b"fatal runtime error: stack overflow, aborting\n");
    // SAFETY: abort has no preconditions and is async-signal-safe.
    unsafe { libc::abort() }
}

/// Writes all of `bytes` to fd 2 with raw `write(2)`, ignoring errors.
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of the given length.
        let written = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if written > 0 {
            bytes = &bytes[written as usize..];
        } else if written < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

/// Formats `value` in decimal into the end of `buffer` and returns the
/// digits. Twenty digits hold any `u64`.
fn format_decimal(mut value: usize, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

/// Size of the signal stack `ensure_altstack` maps: far more than the
/// handler needs, and enough for the largest signal frames (AVX-512).
const ALTSTACK_SIZE: usize = 64 * 1024;

thread_local! {
    /// The signal stack this module mapped for this thread (its lowest
    /// address, guard included, and total length), unmapped at thread exit.
    static OWNED_ALTSTACK: OwnedAltstack = const { OwnedAltstack(Cell::new((0, 0))) };
}

/// A signal stack mapped by `ensure_altstack`.
struct OwnedAltstack(Cell<(usize, usize)>);

impl Drop for OwnedAltstack {
    fn drop(&mut self) {
        let (base, len) = self.0.get();
        if len == 0 {
            return;
        }
        let disable = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: the thread is exiting and not running a handler, so it is
        // not on the signal stack; disabling it first means no later signal
        // can use the memory we unmap next.
        unsafe {
            libc::sigaltstack(&disable, ptr::null_mut());
            libc::munmap(base as *mut c_void, len);
        }
    }
}

/// Gives the calling OS thread a signal stack if it has none, so the
/// overflow handler can run after the green thread's stack is exhausted.
/// Threads started by `std::thread` usually have one already; a stack we
/// map (64 KiB above a guard page) is unmapped when the thread exits.
pub(crate) fn ensure_altstack() {
    // SAFETY: an all-zero stack_t is a valid out-parameter.
    let mut current: libc::stack_t = unsafe { mem::zeroed() };
    // SAFETY: a null new stack only reads the current setting.
    if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
        return;
    }
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let page = page_size();
    let size = ALTSTACK_SIZE.max(libc::SIGSTKSZ);
    let size = size.div_ceil(page) * page;
    let Ok(base) = reserve(page + size) else {
        return;
    };
    // SAFETY: the lowest page of the mapping just made is ours and unused.
    // Without a guard the signal stack still works, so a failure is ignored.
    let _ = unsafe { install_guard(guard_kind(), base, page) };
    let stack = libc::stack_t {
        ss_sp: (base + page) as *mut c_void,
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: the memory is mapped read-write, owned by this thread's
    // OWNED_ALTSTACK until the thread exits, and not used for anything else.
    if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } == 0 {
        // If thread-local storage is already being torn down the mapping
        // is leaked, which is harmless for the little life left.
        let _ = OWNED_ALTSTACK.try_with(|owned| owned.0.set((base, page + size)));
    } else {
        // SAFETY: the mapping was never handed out.
        unsafe { libc::munmap(base as *mut c_void, page + size) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_formatting() {
        let mut buffer = [0u8; 20];
        assert_eq!(format_decimal(0, &mut buffer), b"0");
        assert_eq!(format_decimal(256, &mut buffer), b"256");
        assert_eq!(
            format_decimal(usize::MAX, &mut buffer),
            usize::MAX.to_string().as_bytes()
        );
    }
}
