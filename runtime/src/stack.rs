//! Guarded stacks for green threads, carved from large slabs and pooled.
//!
//! # Design
//!
//! **Slabs.** A green thread needs a stack of fixed size (default 256 KiB)
//! with a guard page directly below it. Mapping each stack separately costs
//! one memory map (VMA) per stack, and Linux allows 65,530 per process by
//! default (`vm.max_map_count`). So stacks of one size class are carved from
//! slabs: one `mmap` (read-write, `MAP_NORESERVE`) holds many slots, each
//! slot a guard page followed by the usable stack:
//!
//! ```text
//! slab:  | guard | stack 0 ... | guard | stack 1 ... | guard | stack 2 ... |
//!        ^ slot 0 start (= limit() of stack 0)        base() of stack 1 ^
//! ```
//!
//! Slabs grow geometrically per size class, from 16 slots to 1024 slots (and
//! at most 1 GiB of address space), so a small program reserves little and
//! a million 256 KiB stacks take about a thousand slabs. A slab is never
//! unmapped; its address space is only reused.
//!
//! **Guards without maps.** On Linux >= 6.13 the guard is installed with
//! `madvise(MADV_GUARD_INSTALL)`, which marks page table entries and creates
//! no VMA, so a million guarded stacks fit under the default map limit. The
//! portable fallback, `mprotect(PROT_NONE)`, splits the slab's mapping at
//! every guard (two maps per stack, so about 32,000 stacks by default); when
//! it runs out the error names `vm.max_map_count` and how to raise it. See
//! "Guard pages" in `sys/mod.rs` for the choice and `SPOOL_STACK_GUARD`.
//! A slot's guard is installed once, when the slot is first carved, and then
//! survives every reuse and every page release.
//!
//! **Hot and cold.** Freed stacks go to a process-wide pool, one entry per
//! size class behind one `Mutex`. A *hot* stack still has its touched pages
//! resident and is reused first, last-in first-out, so the most recently
//! used (cache-warm) stack is handed out again. A *cold* stack has had its
//! pages given back with `MADV_DONTNEED`; reusing it costs page faults.
//! Untouched address space is carved from the current slab only when both
//! lists are empty.
//!
//! **High-water mark.** At most `max(64 MiB / stack size, 64)` hot stacks
//! sit in the pool per size class (256 stacks at the 256 KiB default). A
//! stack returned beyond that is released and goes on the cold list. Why
//! that number: a hot stack can hold up to its full size in resident
//! memory, so the mark bounds what idle stacks can pin to 64 MiB per size
//! class in the worst case (typically far less: most green threads touch a
//! few pages), while the churn of a busy server (up to 256 exits, plus 64
//! in each worker's cache, before a respawn) reuses stacks with no system
//! call and no page fault. Beyond that, a release costs a `madvise` and the
//! respawn a few page faults, about a microsecond each, which a green
//! thread doing real work amortizes. Releases of a batch are sorted and
//! adjacent slots coalesced, so a run of stacks (guards included, which
//! stay guards) is released with one call.
//!
//! **Per-worker caches.** A `StackCache` in each worker holds up to 64
//! stacks of the worker's size class in a plain `Vec`, so spawning and
//! exiting a green thread usually costs a push and a pop. It refills and
//! spills half its capacity at a time, under one acquisition of the pool's
//! lock.
//!
//! **Errors.** Running out of address space (`mmap` fails) or of memory
//! maps (`mprotect` fails) returns `ErrorKind::OutOfMemory` with a message
//! that names the limit and the fix; nothing here panics on them.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::num::NonZeroUsize;
use std::ptr;
use std::sync::{Mutex, MutexGuard};

use corosensei::stack::{Stack, StackPointer};

use crate::sys::{self, GuardKind};

/// Usable bytes of a green thread's stack unless the user asks otherwise.
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smaller requests are raised to this: a few frames of formatting or
/// unwinding machinery alone need several KiB.
const MIN_STACK_SIZE: usize = 16 * 1024;

/// Larger requests are refused: a green thread needing more than this is
/// better off as an OS thread, and a typo should not reserve terabytes.
const MAX_STACK_SIZE: usize = 1 << 30;

/// The pool keeps at most this many bytes of hot stacks per size class
/// (see "High-water mark" above).
const HOT_LIMIT_BYTES: usize = 64 << 20;

/// ... but always at least this many, so large stacks still get reused
/// across a worker cache's spill and refill.
const HOT_LIMIT_MIN_STACKS: usize = 64;

/// Slots in a size class's first slab; each later slab doubles, up to
/// `MAX_SLAB_SLOTS` and `MAX_SLAB_BYTES`.
const FIRST_SLAB_SLOTS: usize = 16;
const MAX_SLAB_SLOTS: usize = 1024;
const MAX_SLAB_BYTES: usize = 1 << 30;

/// Stacks a `StackCache` holds at most, and how many it moves at once.
const CACHE_CAPACITY: usize = 64;
const CACHE_BATCH: usize = CACHE_CAPACITY / 2;

/// Turns a requested stack size into the size actually used: at least
/// 16 KiB, rounded up to whole pages, at most 1 GiB.
pub(crate) fn normalize_stack_size(requested: usize) -> io::Result<usize> {
    if requested > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "spool: a green-thread stack of {requested} bytes was requested; \
                 the maximum is 1 GiB ({MAX_STACK_SIZE} bytes)"
            ),
        ));
    }
    let page = sys::page_size();
    Ok(requested.max(MIN_STACK_SIZE).div_ceil(page) * page)
}

/// Takes a stack of `size` usable bytes (already normalized) from the global
/// pool. Dropping it gives it back.
pub(crate) fn allocate(size: usize) -> io::Result<GuardedStack> {
    GLOBAL.allocate(size)
}

/// One usable stack region with a guard page directly below it, owned
/// exclusively; dropping it returns it to its pool (never unmaps it).
pub(crate) struct GuardedStack {
    /// Lowest address of the slot: the guard page.
    ///
    /// # Invariant
    ///
    /// `[start, start + page)` is an installed guard page and
    /// `[start + page, start + page + size)` is mapped read-write. Both lie
    /// in a slab of `pool`, belong to no other `GuardedStack`, and are not
    /// in any free list or cache while this value exists.
    start: NonZeroUsize,
    /// Usable bytes: a page multiple of at least `MIN_STACK_SIZE`.
    size: usize,
    /// The pool the slot came from and goes back to.
    pool: &'static Pool,
}

impl GuardedStack {
    /// Usable bytes, excluding the guard page.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range: `(start, end)`, end exclusive.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let start = self.start.get();
        (start, start + sys::page_size())
    }
}

impl fmt::Debug for GuardedStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStack")
            .field("limit", &format_args!("{:#x}", self.start))
            .field("base", &format_args!("{:#x}", self.base()))
            .field("size", &self.size)
            .finish()
    }
}

// SAFETY: by the invariant of `start`, the range from `limit()` to `base()`
// is a guard page followed by `size` >= 16 KiB (> corosensei's 4 KiB
// MIN_STACK_SIZE) of read-write memory owned by this value alone until it is
// dropped. Both ends are page aligned, hence aligned to STACK_ALIGNMENT.
unsafe impl Stack for GuardedStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.start.saturating_add(sys::page_size() + self.size)
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.start
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        self.pool.give_one(self.size, self.start);
    }
}

/// A per-worker cache of stacks of one size class in front of the pool, so
/// that spawn and exit usually take no lock. Single-threaded: each worker
/// owns one.
pub(crate) struct StackCache {
    /// The size class cached; stacks of other sizes bypass the cache.
    size: usize,
    pool: &'static Pool,
    /// Slot starts of cached stacks, most recently used last.
    ///
    /// # Invariant
    ///
    /// Each entry is owned by this cache exactly as a `GuardedStack` of
    /// `size` from `pool` would own it; at most `CACHE_CAPACITY` entries.
    stacks: Vec<NonZeroUsize>,
    /// Scratch space for a spill, kept to avoid allocating on the way out.
    spill: Vec<NonZeroUsize>,
}

impl StackCache {
    /// A cache for stacks of `stack_size` bytes (already normalized) from
    /// the global pool.
    pub(crate) fn new(stack_size: usize) -> Self {
        Self::with_pool(&GLOBAL, stack_size)
    }

    fn with_pool(pool: &'static Pool, stack_size: usize) -> Self {
        StackCache {
            size: stack_size,
            pool,
            stacks: Vec::with_capacity(CACHE_CAPACITY),
            spill: Vec::with_capacity(CACHE_BATCH),
        }
    }

    /// A stack of `size` bytes (already normalized): from the cache when it
    /// is the cache's size class and the cache is not empty, else from the
    /// pool.
    #[inline]
    pub(crate) fn get(&mut self, size: usize) -> io::Result<GuardedStack> {
        if size != self.size {
            return self.pool.allocate(size);
        }
        match self.stacks.pop() {
            Some(start) => Ok(self.owned(start)),
            None => self.refill(),
        }
    }

    /// Keeps `stack` for reuse, or gives it to the pool when it is of
    /// another size class.
    #[inline]
    pub(crate) fn put(&mut self, stack: GuardedStack) {
        if stack.size != self.size || !ptr::eq(stack.pool, self.pool) {
            return drop(stack);
        }
        if self.stacks.len() >= CACHE_CAPACITY {
            self.spill();
        }
        // The cache takes over the stack's ownership (see `stacks`).
        let stack = ManuallyDrop::new(stack);
        self.stacks.push(stack.start);
    }

    /// Wraps a slot the cache owns as a `GuardedStack`, transferring
    /// ownership.
    #[inline]
    fn owned(&self, start: NonZeroUsize) -> GuardedStack {
        GuardedStack {
            start,
            size: self.size,
            pool: self.pool,
        }
    }

    #[cold]
    fn refill(&mut self) -> io::Result<GuardedStack> {
        self.pool.take(self.size, CACHE_BATCH, &mut self.stacks)?;
        match self.stacks.pop() {
            Some(start) => Ok(self.owned(start)),
            None => unreachable!("StackCache::refill: Pool::take returned Ok with no stack"),
        }
    }

    /// Gives the oldest half of the cache back to the pool.
    #[cold]
    fn spill(&mut self) {
        self.spill.extend(self.stacks.drain(..CACHE_BATCH));
        self.pool.give(self.size, &mut self.spill);
    }
}

impl Drop for StackCache {
    fn drop(&mut self) {
        self.pool.give(self.size, &mut self.stacks);
    }
}

impl fmt::Debug for StackCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackCache")
            .field("size", &self.size)
            .field("cached", &self.stacks.len())
            .finish()
    }
}

/// The process-wide pool every stack comes from and returns to.
static GLOBAL: Pool = Pool::new(None, HOT_LIMIT_BYTES, HOT_LIMIT_MIN_STACKS);

/// Free lists and slabs of every size class. The process has one
/// (`GLOBAL`); tests make private ones to control the guard kind and the
/// high-water mark.
struct Pool {
    /// `None`: the process's `sys::guard_kind()`.
    guard: Option<GuardKind>,
    hot_limit_bytes: usize,
    hot_limit_min_stacks: usize,
    /// A handful of size classes at most, searched linearly.
    classes: Mutex<Vec<SizeClass>>,
}

/// The free lists and current slab of one stack size.
struct SizeClass {
    /// Usable bytes of each stack; a slot is one page more.
    size: usize,
    /// Slot starts with an installed guard and resident pages, newest last.
    hot: Vec<NonZeroUsize>,
    /// Slot starts with an installed guard and released pages, newest last.
    cold: Vec<NonZeroUsize>,
    /// Carved slots whose guard could not be installed yet; carved first.
    unguarded: Vec<NonZeroUsize>,
    /// The next uncarved slot of the current slab (meaningless when
    /// `slab_left` is 0).
    slab_next: NonZeroUsize,
    /// Uncarved slots left in the current slab.
    slab_left: usize,
    /// Slots in the next slab mapped.
    next_slab_slots: usize,
    /// Slots ever carved from slabs, for error messages.
    carved: usize,
}

impl Pool {
    const fn new(
        guard: Option<GuardKind>,
        hot_limit_bytes: usize,
        hot_limit_min_stacks: usize,
    ) -> Pool {
        Pool {
            guard,
            hot_limit_bytes,
            hot_limit_min_stacks,
            classes: Mutex::new(Vec::new()),
        }
    }

    fn guard_kind(&self) -> GuardKind {
        self.guard.unwrap_or_else(sys::guard_kind)
    }

    fn hot_limit(&self, size: usize) -> usize {
        (self.hot_limit_bytes / size).max(self.hot_limit_min_stacks)
    }

    /// Locks the size classes. No code panics while holding the lock with
    /// the lists half-updated, so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, Vec<SizeClass>> {
        self.classes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn allocate(&'static self, size: usize) -> io::Result<GuardedStack> {
        debug_assert_eq!(
            normalize_stack_size(size).ok(),
            Some(size),
            "stack size not normalized"
        );
        let reused = SizeClass::find(&mut self.lock(), size).pop_free();
        let start = match reused {
            Some(start) => start,
            None => {
                let mut fresh = Vec::with_capacity(1);
                self.take(size, 1, &mut fresh)?;
                fresh[0]
            }
        };
        Ok(GuardedStack {
            start,
            size,
            pool: self,
        })
    }

    /// Appends between 1 and `want` stacks of `size` to `out`, which then
    /// owns them: hot ones first, then cold ones, and only when both lists
    /// are empty freshly carved ones (whose guards are installed here,
    /// outside the lock).
    fn take(&self, size: usize, want: usize, out: &mut Vec<NonZeroUsize>) -> io::Result<()> {
        let before = out.len();
        {
            let mut classes = self.lock();
            let class = SizeClass::find(&mut classes, size);
            while out.len() - before < want {
                match class.pop_free() {
                    Some(start) => out.push(start),
                    None => break,
                }
            }
            if out.len() > before {
                return Ok(());
            }
            class.carve(want, out)?;
        }
        let kind = self.guard_kind();
        let page = sys::page_size();
        for index in before..out.len() {
            // SAFETY: the slot was just carved, so nobody else owns it, and
            // its first page lies in a slab we mapped and holds no data.
            if let Err(error) = unsafe { sys::install_guard(kind, out[index].get(), page) } {
                let mut classes = self.lock();
                let class = SizeClass::find(&mut classes, size);
                class.unguarded.extend(out.drain(index..));
                if out.len() > before {
                    return Ok(());
                }
                return Err(guard_error(&error, kind, size, class.in_use()));
            }
        }
        Ok(())
    }

    /// Takes back every stack in `stacks` (leaving it empty): as many as fit
    /// under the high-water mark stay hot (the last ones, most recently
    /// used), the rest are released and go cold.
    fn give(&self, size: usize, stacks: &mut Vec<NonZeroUsize>) {
        if stacks.is_empty() {
            return;
        }
        let limit = self.hot_limit(size);
        {
            let mut classes = self.lock();
            let class = SizeClass::find(&mut classes, size);
            let keep = limit.saturating_sub(class.hot.len()).min(stacks.len());
            class.hot.extend(stacks.drain(stacks.len() - keep..));
        }
        if stacks.is_empty() {
            return;
        }
        release(size, stacks);
        SizeClass::find(&mut self.lock(), size).cold.append(stacks);
    }

    /// Takes back one stack (see `give`).
    fn give_one(&self, size: usize, start: NonZeroUsize) {
        {
            let mut classes = self.lock();
            let class = SizeClass::find(&mut classes, size);
            if class.hot.len() < self.hot_limit(size) {
                class.hot.push(start);
                return;
            }
        }
        release(size, &mut [start]);
        SizeClass::find(&mut self.lock(), size).cold.push(start);
    }
}

impl SizeClass {
    /// The class of `size` in `classes`, created empty if missing.
    fn find(classes: &mut Vec<SizeClass>, size: usize) -> &mut SizeClass {
        let index = match classes.iter().position(|class| class.size == size) {
            Some(index) => index,
            None => {
                classes.push(SizeClass {
                    size,
                    hot: Vec::new(),
                    cold: Vec::new(),
                    unguarded: Vec::new(),
                    slab_next: NonZeroUsize::MIN,
                    slab_left: 0,
                    next_slab_slots: FIRST_SLAB_SLOTS,
                    carved: 0,
                });
                classes.len() - 1
            }
        };
        &mut classes[index]
    }

    fn pop_free(&mut self) -> Option<NonZeroUsize> {
        self.hot.pop().or_else(|| self.cold.pop())
    }

    /// Stacks handed out and not yet returned (in use or in a cache).
    fn in_use(&self) -> usize {
        self.carved - self.hot.len() - self.cold.len() - self.unguarded.len()
    }

    /// Appends between 1 and `want` never-used slots to `out`, without
    /// their guards: first slots whose guard failed before, then the current
    /// slab, mapping a new slab only when nothing else was found.
    fn carve(&mut self, want: usize, out: &mut Vec<NonZeroUsize>) -> io::Result<()> {
        let slot = self.size + sys::page_size();
        let mut found = 0;
        while found < want {
            match self.unguarded.pop() {
                Some(start) => out.push(start),
                None => break,
            }
            found += 1;
        }
        if found == 0 && self.slab_left == 0 {
            self.map_slab(slot)?;
        }
        let count = (want - found).min(self.slab_left);
        for _ in 0..count {
            out.push(self.slab_next);
            self.slab_next = self.slab_next.saturating_add(slot);
        }
        self.slab_left -= count;
        self.carved += count;
        Ok(())
    }

    /// Maps the next slab, halving its slot count while the kernel answers
    /// `ENOMEM` (an address-space limit may still allow a smaller one).
    fn map_slab(&mut self, slot: usize) -> io::Result<()> {
        let mut slots = self.next_slab_slots.min(MAX_SLAB_BYTES / slot).max(1);
        loop {
            match sys::reserve(slots * slot) {
                Ok(base) => {
                    // mmap without MAP_FIXED never returns address 0.
                    let Some(base) = NonZeroUsize::new(base) else {
                        return Err(io::Error::other("spool: mmap returned address 0"));
                    };
                    self.slab_next = base;
                    self.slab_left = slots;
                    self.next_slab_slots = (slots * 2).min(MAX_SLAB_SLOTS);
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::OutOfMemory && slots > 1 => {
                    slots /= 2;
                }
                Err(error) => return Err(reserve_error(&error, slots * slot, self)),
            }
        }
    }
}

/// Gives back the pages of `stacks` (all of `size`, owned by the caller),
/// sorting them and releasing each run of adjacent slots with one call. The
/// guards between stacks of a run stay guards.
fn release(size: usize, stacks: &mut [NonZeroUsize]) {
    let page = sys::page_size();
    let slot = size + page;
    stacks.sort_unstable();
    let mut index = 0;
    while index < stacks.len() {
        let first = stacks[index].get();
        let mut last = first;
        while index + 1 < stacks.len() && stacks[index + 1].get() == last + slot {
            index += 1;
            last = stacks[index].get();
        }
        index += 1;
        let (start, end) = (first + page, last + slot);
        // SAFETY: the caller owns every stack of the run, so no live data is
        // in it; the guards inside the run are kept (sys contract).
        let result = unsafe { sys::release_pages(start, end - start) };
        // Failure only leaves the pages resident.
        debug_assert!(result.is_ok(), "release_pages failed: {result:?}");
    }
}

/// The error for a slab `mmap` that failed.
fn reserve_error(error: &io::Error, bytes: usize, class: &SizeClass) -> io::Error {
    if error.kind() != io::ErrorKind::OutOfMemory {
        return io::Error::new(
            error.kind(),
            format!("spool: mmap of {bytes} bytes for green-thread stacks failed: {error}"),
        );
    }
    let limit = match sys::address_space_limit() {
        Some(bytes) => format!("currently {} KiB", bytes / 1024),
        None => "currently unlimited".to_owned(),
    };
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "spool: address space or memory is exhausted: reserving {bytes} bytes for more \
             green-thread stacks of {} KiB failed with {} of them in use ({error}). Use smaller \
             stacks (`Builder::stack_size`), keep fewer green threads alive at once, or check \
             the address-space limit (`ulimit -v`, {limit}).",
            class.size / 1024,
            class.in_use(),
        ),
    )
}

/// The error for a guard page that could not be installed.
fn guard_error(error: &io::Error, kind: GuardKind, size: usize, in_use: usize) -> io::Error {
    let message = match (error.kind(), kind) {
        (io::ErrorKind::OutOfMemory, GuardKind::Mprotect) => {
            map_limit_message(sys::max_map_count(), size, in_use)
        }
        (io::ErrorKind::OutOfMemory, GuardKind::Madvise) => format!(
            "spool: memory is exhausted: installing the guard page of a new green-thread stack \
             of {} KiB failed with {in_use} of them in use ({error}). Keep fewer green threads \
             alive at once.",
            size / 1024
        ),
        _ => format!(
            "spool: installing the guard page of a green-thread stack ({kind:?}) failed: {error}"
        ),
    };
    io::Error::new(error.kind(), message)
}

/// What to say when `mprotect` guards have used up the process's memory
/// maps.
fn map_limit_message(max_map_count: Option<usize>, size: usize, in_use: usize) -> String {
    let size = size / 1024;
    match max_map_count {
        Some(limit) => format!(
            "spool: out of memory maps: each green-thread stack's mprotect guard page splits a \
             memory map, and {in_use} stacks of {size} KiB are in use against \
             vm.max_map_count = {limit}. Raise the limit (`sysctl -w vm.max_map_count={}`), or \
             run on Linux >= 6.13 with {} unset, where guard pages are installed with \
             MADV_GUARD_INSTALL and need no memory map; or keep fewer green threads alive at \
             once.",
            (limit * 4).max(262_144),
            sys::GUARD_ENV,
        ),
        None => format!(
            "spool: the kernel refused to split a memory map for the guard page of a \
             green-thread stack ({in_use} stacks of {size} KiB in use); keep fewer green \
             threads alive at once."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::RunningStack;
    use corosensei::Yielder;
    use libc::c_int;
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;

    const KIB: usize = 1024;

    fn leak_pool(guard: GuardKind, hot_limit_min_stacks: usize) -> &'static Pool {
        Box::leak(Box::new(Pool::new(Some(guard), 0, hot_limit_min_stacks)))
    }

    fn madvise_supported() -> bool {
        let pool = leak_pool(GuardKind::Madvise, 0);
        match pool.allocate(normalize_stack_size(0).unwrap()) {
            Ok(stack) => !sys::is_readable(stack.guard_range().0),
            Err(_) => false,
        }
    }

    /// The guard kinds this kernel can test.
    fn guard_kinds() -> Vec<GuardKind> {
        let mut kinds = vec![GuardKind::Mprotect];
        if madvise_supported() {
            kinds.push(GuardKind::Madvise);
        } else {
            eprintln!("MADV_GUARD_INSTALL unsupported: testing mprotect guards only");
        }
        kinds
    }

    fn usable(stack: &GuardedStack) -> (usize, usize) {
        (stack.guard_range().1, stack.base().get())
    }

    fn touch(stack: &GuardedStack) {
        let (start, end) = usable(stack);
        // SAFETY: the usable range of a stack we own is mapped read-write
        // and no coroutine runs on it.
        unsafe { ptr::write_bytes(start as *mut u8, 0xa5, end - start) };
    }

    fn resident_pages(start: usize, end: usize) -> usize {
        let page = sys::page_size();
        let mut residency = vec![0u8; (end - start) / page];
        // SAFETY: the range is mapped and page aligned; `residency` has one
        // byte per page.
        let result = unsafe {
            libc::mincore(
                start as *mut libc::c_void,
                end - start,
                residency.as_mut_ptr(),
            )
        };
        assert_eq!(result, 0, "mincore: {}", io::Error::last_os_error());
        residency.iter().filter(|&&r| r & 1 != 0).count()
    }

    fn maps_count() -> usize {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    }

    /// Runs `child` in a forked child process (core dumps off, stderr piped
    /// back) and returns its wait status and what it wrote to stderr. The
    /// child exits 0 when `child` returns and 101 when it panics.
    fn in_child(child: impl FnOnce()) -> (c_int, String) {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only runs `child` (which the tests keep to
        // fork-safe work: no locks another thread may hold) and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain system calls on descriptors and limits of the
            // child itself; _exit never returns into the test harness.
            unsafe {
                libc::dup2(fds[1], 2);
                libc::close(fds[0]);
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
            if let Err(payload) = &result {
                // The harness captures `eprint!` per thread, and the child
                // inherits that; write to the real stderr instead.
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic)");
                let _ = write!(io::stderr(), "child panicked: {message}");
            }
            // SAFETY: see above.
            unsafe { libc::_exit(if result.is_ok() { 0 } else { 101 }) }
        }
        // SAFETY: the write end belongs to the child now; the read end is
        // ours alone and is owned by the File from here on.
        let mut reader = unsafe {
            libc::close(fds[1]);
            std::fs::File::from_raw_fd(fds[0])
        };
        let mut output = String::new();
        reader.read_to_string(&mut output).unwrap();
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        (status, output)
    }

    fn killed_by(status: c_int) -> Option<c_int> {
        libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
    }

    #[test]
    fn normalize_rounds_and_rejects() {
        let page = sys::page_size();
        assert_eq!(
            normalize_stack_size(0).unwrap(),
            MIN_STACK_SIZE.div_ceil(page) * page
        );
        assert_eq!(
            normalize_stack_size(1).unwrap(),
            normalize_stack_size(0).unwrap()
        );
        assert_eq!(
            normalize_stack_size(DEFAULT_STACK_SIZE).unwrap(),
            DEFAULT_STACK_SIZE
        );
        let odd = DEFAULT_STACK_SIZE + 1;
        assert_eq!(
            normalize_stack_size(odd).unwrap(),
            DEFAULT_STACK_SIZE + page
        );
        assert_eq!(
            normalize_stack_size(MAX_STACK_SIZE).unwrap(),
            MAX_STACK_SIZE
        );
        for too_big in [MAX_STACK_SIZE + 1, usize::MAX] {
            let error = normalize_stack_size(too_big).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            let message = error.to_string();
            assert!(message.starts_with("spool: "), "{message}");
            assert!(message.contains("1 GiB"), "{message}");
            assert!(message.contains(&too_big.to_string()), "{message}");
        }
    }

    #[test]
    fn slab_slots_do_not_overlap_and_have_guards_below() {
        let page = sys::page_size();
        let size = normalize_stack_size(64 * KIB).unwrap();
        let pool = leak_pool(sys::guard_kind(), 0);
        // 40 stacks span the 16-slot first slab and the 32-slot second one.
        let stacks: Vec<GuardedStack> = (0..40).map(|_| pool.allocate(size).unwrap()).collect();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for stack in &stacks {
            let (base, limit) = (stack.base().get(), stack.limit().get());
            assert_eq!(base % corosensei::stack::STACK_ALIGNMENT, 0);
            assert_eq!(limit % corosensei::stack::STACK_ALIGNMENT, 0);
            assert_eq!(limit % page, 0);
            assert_eq!(base - limit, size + page);
            assert_eq!(stack.size(), size);
            assert_eq!(stack.guard_range(), (limit, limit + page));
            assert!(!sys::is_readable(limit), "guard of {stack:?} is readable");
            assert!(!sys::is_readable(limit + page - 1));
            assert!(sys::is_readable(limit + page));
            ranges.push((limit, base));
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
        }
        // Within the first slab the slots are adjacent: each guard sits
        // directly on top of the previous stack.
        for pair in stacks[..16].windows(2) {
            assert_eq!(pair[1].limit().get(), pair[0].base().get());
        }
    }

    #[test]
    fn writing_into_a_guard_page_faults() {
        let page = sys::page_size();
        for kind in guard_kinds() {
            let pool = leak_pool(kind, 0);
            let stack = pool.allocate(normalize_stack_size(0).unwrap()).unwrap();
            let (guard_start, guard_end) = stack.guard_range();
            let (status, stderr) = in_child(|| {
                // SAFETY: the usable bottom of the stack is ours to write;
                // the guard write below is the fault under test.
                unsafe {
                    ((guard_end) as *mut u8).write_volatile(1);
                    ((guard_end - 8) as *mut u64).write_volatile(1);
                }
            });
            assert_eq!(killed_by(status), Some(libc::SIGSEGV), "{kind:?}: {stderr}");
            let (status, _) = in_child(|| {
                // SAFETY: the fault under test.
                unsafe { (guard_start as *mut u8).write_volatile(1) };
            });
            assert_eq!(killed_by(status), Some(libc::SIGSEGV), "{kind:?}");
            assert_eq!(guard_end - guard_start, page);
        }
    }

    #[test]
    fn pool_reuses_hot_stacks_first_and_releases_above_the_mark() {
        let size = normalize_stack_size(64 * KIB).unwrap();
        let pages = size / sys::page_size();
        for kind in guard_kinds() {
            let pool = leak_pool(kind, 2);
            let stacks: Vec<GuardedStack> = (0..5).map(|_| pool.allocate(size).unwrap()).collect();
            let starts: Vec<usize> = stacks.iter().map(|s| s.limit().get()).collect();
            let usable: Vec<(usize, usize)> = stacks.iter().map(usable).collect();
            stacks.iter().for_each(touch);
            // a, b stay hot (the mark is 2); c, d, e are released.
            drop(stacks);
            for (index, &(start, end)) in usable.iter().enumerate() {
                let expected = if index < 2 { pages } else { 0 };
                assert_eq!(
                    resident_pages(start, end),
                    expected,
                    "{kind:?} stack {index}"
                );
                assert!(!sys::is_readable(starts[index]), "{kind:?}: guard lost");
            }
            // Hot last-in first-out, then cold last-in first-out, then fresh.
            let again: Vec<GuardedStack> = (0..6).map(|_| pool.allocate(size).unwrap()).collect();
            let order: Vec<usize> = again.iter().map(|s| s.limit().get()).collect();
            assert_eq!(
                order[..5],
                [starts[1], starts[0], starts[4], starts[3], starts[2]]
            );
            assert!(!starts.contains(&order[5]));
            // Released pages read back as zeroes.
            // SAFETY: the stack is ours and mapped read-write.
            assert_eq!(unsafe { *(usable[4].0 as *const u8) }, 0);
        }
    }

    #[test]
    fn cache_serves_its_size_and_spills_in_batches() {
        let size = normalize_stack_size(16 * KIB).unwrap();
        let pool = leak_pool(sys::guard_kind(), 2);
        let mut cache = StackCache::with_pool(pool, size);
        let first = cache.get(size).unwrap();
        let first_start = first.limit().get();
        cache.put(first);
        assert_eq!(cache.get(size).unwrap().limit().get(), first_start);

        let mut stacks: Vec<GuardedStack> = (0..CACHE_CAPACITY + 1)
            .map(|_| cache.get(size).unwrap())
            .collect();
        stacks.iter().for_each(touch);
        let usable: Vec<(usize, usize)> = stacks.iter().map(usable).collect();
        // Return what the refills left in the cache, so the puts below start
        // from an empty cache.
        pool.give(size, &mut cache.stacks);
        let hot_before = pool
            .lock()
            .iter()
            .find(|c| c.size == size)
            .unwrap()
            .hot
            .len();
        for stack in stacks.drain(..) {
            cache.put(stack);
        }
        // The 65th put spilled the 32 oldest: up to the mark (2) stay hot in
        // the pool, the rest were released with coalesced calls.
        assert_eq!(cache.stacks.len(), CACHE_CAPACITY + 1 - CACHE_BATCH);
        let released = usable[..CACHE_BATCH]
            .iter()
            .filter(|&&(start, end)| resident_pages(start, end) == 0)
            .count();
        assert_eq!(released, CACHE_BATCH - (2 - hot_before));
        for &(start, _) in &usable[..CACHE_BATCH] {
            assert!(
                !sys::is_readable(start - 1),
                "guard lost by a coalesced release"
            );
        }

        // Another size class goes straight to and from the pool.
        let other = normalize_stack_size(64 * KIB).unwrap();
        let big = cache.get(other).unwrap();
        assert_eq!(big.size(), other);
        cache.put(big);
        assert_eq!(cache.stacks.len(), CACHE_CAPACITY + 1 - CACHE_BATCH);
        drop(cache);
        let classes = pool.lock();
        let class = classes.iter().find(|c| c.size == size).unwrap();
        assert_eq!(class.in_use(), 0);
        assert_eq!(class.hot.len(), 2);
    }

    #[test]
    fn a_hundred_thousand_stacks_add_few_memory_maps() {
        if !madvise_supported() {
            eprintln!("skipping: MADV_GUARD_INSTALL unsupported");
            return;
        }
        let pool = leak_pool(GuardKind::Madvise, HOT_LIMIT_MIN_STACKS);
        let stacks: Vec<GuardedStack> = (0..100_000)
            .map(|_| pool.allocate(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        // Tests running in parallel map and split memory too, so count only
        // the maps that hold one of these stacks.
        let mut starts: Vec<usize> = stacks.iter().map(|s| s.limit().get()).collect();
        starts.sort_unstable();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let holding = maps
            .lines()
            .filter(|line| {
                let range = line.split_whitespace().next().unwrap();
                let (low, high) = range.split_once('-').unwrap();
                let low = usize::from_str_radix(low, 16).unwrap();
                let high = usize::from_str_radix(high, 16).unwrap();
                let first = starts.partition_point(|&start| start < low);
                starts.get(first).is_some_and(|&start| start < high)
            })
            .count();
        assert!(holding < 200, "100,000 stacks lie in {holding} memory maps");
        drop(stacks);
    }

    #[test]
    fn map_limit_error_names_the_sysctl() {
        let message = map_limit_message(Some(65530), DEFAULT_STACK_SIZE, 32_000);
        assert!(message.starts_with("spool: "), "{message}");
        assert!(message.contains("vm.max_map_count = 65530"), "{message}");
        assert!(
            message.contains("sysctl -w vm.max_map_count=262144"),
            "{message}"
        );
        assert!(message.contains("Linux >= 6.13"), "{message}");
        assert!(message.contains("32000 stacks of 256 KiB"), "{message}");

        let enomem = io::Error::from_raw_os_error(libc::ENOMEM);
        let error = guard_error(&enomem, GuardKind::Mprotect, DEFAULT_STACK_SIZE, 7);
        assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
        if cfg!(target_os = "linux") {
            assert!(error.to_string().contains("vm.max_map_count"), "{error}");
        }
    }

    #[test]
    fn exhausted_address_space_is_an_error_that_says_what_to_do() {
        let (status, stderr) = in_child(|| {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
            let cap = pages * sys::page_size() as u64 + (16 << 20);
            let limit = libc::rlimit {
                rlim_cur: cap as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: lowers this child's own address-space limit.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
            let pool = leak_pool(GuardKind::Mprotect, 0);
            let error = pool.allocate(64 << 20).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
            write!(io::stderr(), "{error}").unwrap();
        });
        assert_eq!(status, 0, "{stderr}");
        assert!(
            stderr.starts_with("spool: address space or memory is exhausted"),
            "{stderr}"
        );
        for needle in [
            "65536 KiB",
            "Builder::stack_size",
            "ulimit -v",
            "fewer green threads",
        ] {
            assert!(stderr.contains(needle), "{needle:?} missing: {stderr}");
        }
    }

    /// Recurses until the stack runs out.
    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        if depth == u64::MAX {
            return 0;
        }
        let frame = std::hint::black_box([depth; 32]);
        recurse(frame[1] + 1).wrapping_add(frame[2])
    }

    /// Overflows a green thread's stack in a child; returns how it died and
    /// what it printed.
    fn overflow_in_child(name: Option<&str>, kind: GuardKind) -> (c_int, String) {
        sys::install_overflow_handler();
        let pool = leak_pool(kind, 0);
        let stack = pool
            .allocate(normalize_stack_size(64 * KIB).unwrap())
            .unwrap();
        let (guard_start, guard_end) = stack.guard_range();
        let info = RunningStack {
            guard_start,
            guard_end,
            stack_size: stack.size(),
            name: name.map(Into::into),
        };
        in_child(move || {
            sys::ensure_altstack();
            let mut coroutine =
                corosensei::Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| recurse(0));
            sys::set_running(&info);
            coroutine.resume(());
            sys::set_running(ptr::null());
        })
    }

    #[test]
    fn overflowing_a_green_thread_names_it_and_aborts() {
        for kind in guard_kinds() {
            let (status, stderr) = overflow_in_child(Some("overflower"), kind);
            assert_eq!(killed_by(status), Some(libc::SIGABRT), "{kind:?}: {stderr}");
            assert_eq!(
                stderr,
                "\nthread 'overflower' has overflowed its stack (64 KiB)\n\
                 fatal runtime error: stack overflow, aborting\n"
            );
        }
        let (status, stderr) = overflow_in_child(None, sys::guard_kind());
        assert_eq!(killed_by(status), Some(libc::SIGABRT), "{stderr}");
        assert!(stderr.contains("thread '<unnamed>' has overflowed its stack (64 KiB)"));
    }

    #[test]
    fn other_faults_in_a_green_thread_still_kill_with_sigsegv() {
        sys::install_overflow_handler();
        let stack = allocate(normalize_stack_size(0).unwrap()).unwrap();
        let (guard_start, guard_end) = stack.guard_range();
        let info = RunningStack {
            guard_start,
            guard_end,
            stack_size: stack.size(),
            name: None,
        };
        let (status, stderr) = in_child(move || {
            sys::ensure_altstack();
            let mut coroutine =
                corosensei::Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
                    // SAFETY: deliberately faults (address 8 is never mapped).
                    unsafe { std::ptr::without_provenance_mut::<u64>(8).write_volatile(1) };
                });
            sys::set_running(&info);
            coroutine.resume(());
        });
        assert_eq!(killed_by(status), Some(libc::SIGSEGV), "{stderr}");
        assert!(!stderr.contains("overflowed"), "{stderr}");
    }

    /// Throwaway timings; run with
    /// `cargo test --release -p spool-runtime --lib stack::tests::timings -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timings() {
        use std::time::Instant;
        let size = DEFAULT_STACK_SIZE;
        let rounds = 10_000_000u32;

        let mut cache = StackCache::new(size);
        let warm = cache.get(size).unwrap();
        cache.put(warm);
        let start = Instant::now();
        for _ in 0..rounds {
            let stack = std::hint::black_box(cache.get(size).unwrap());
            cache.put(stack);
        }
        let per = start.elapsed() / rounds;
        eprintln!("StackCache get+put (cache non-empty): {per:?}");

        drop(allocate(size).unwrap());
        let start = Instant::now();
        for _ in 0..rounds / 10 {
            drop(std::hint::black_box(allocate(size).unwrap()));
        }
        eprintln!(
            "pool allocate+drop (hot, uncontended lock): {:?}",
            start.elapsed() / (rounds / 10)
        );

        let count = 100_000;
        let pool = leak_pool(sys::guard_kind(), HOT_LIMIT_MIN_STACKS);
        let maps_before = maps_count();
        let start = Instant::now();
        let stacks: Vec<GuardedStack> = (0..count).map(|_| pool.allocate(size).unwrap()).collect();
        let elapsed = start.elapsed();
        eprintln!(
            "fresh allocate ({:?} guards): {:?} each; memory maps +{} for {count} stacks",
            sys::guard_kind(),
            elapsed / count,
            maps_count() - maps_before
        );
        let start = Instant::now();
        drop(stacks);
        eprintln!(
            "drop above the mark (one release each): {:?} each",
            start.elapsed() / count
        );

        let mut cache = StackCache::with_pool(pool, size);
        let stacks: Vec<GuardedStack> = (0..count).map(|_| cache.get(size).unwrap()).collect();
        stacks.iter().take(1000).for_each(touch);
        let start = Instant::now();
        for stack in stacks {
            cache.put(stack);
        }
        eprintln!(
            "cache put with spills to a full pool (coalesced releases): {:?} each",
            start.elapsed() / count
        );
    }
}
