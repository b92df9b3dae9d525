//! Guarded stacks for green threads, carved from large slabs and pooled.
//!
//! # Design
//!
//! **Slabs.** A green thread needs a stack of fixed size (default 256 KiB)
//! with a guard directly below it. Mapping each stack separately costs
//! one memory map (VMA) per stack, and Linux allows 65,530 per process by
//! default (`vm.max_map_count`). So stacks of one size class are carved from
//! slabs: one `mmap` (read-write, `MAP_NORESERVE`) holds many slots, each
//! slot a guard (64 KiB) followed by the usable stack:
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
//! **Guard size.** The guard is 64 KiB (`GUARD_BYTES`), not one page,
//! because the memory directly below it is the top of the neighbouring
//! green thread's stack, where that thread's live frames are. Rust code
//! probes every page of a large frame, so it always faults in the guard's
//! top page; but C code built without `-fstack-clash-protection` may move
//! its stack pointer past a large local array and first touch memory
//! several pages further down. A one-page guard lets any such frame over
//! 4 KiB write silently into the neighbour; a 64 KiB guard reports it as
//! an overflow up to 64 KiB (the overflow handler covers the whole guard).
//! Both guard kinds install a larger guard with the same single call and
//! no more memory maps (`mprotect`: still one `PROT_NONE` map per slot).
//! What it costs, measured with 20,000 fresh 256 KiB stacks (CPU time per
//! stack, Linux 6.18): address space 327 instead of 266 KiB per slot
//! (+23%; a 16 KiB stack's slot grows from 20 to 80 KiB); page tables 0.63
//! instead of 0.51 KiB per live stack (the slots are further apart); with
//! `MADV_GUARD_INSTALL`, carving a never-used slot about 0.5 µs more and a
//! coalesced release beyond the high-water mark 0.4 µs more (the kernel
//! walks sixteen guard entries instead of one); with `mprotect`, no
//! measurable change. A million parked threads took about 1 s longer to
//! spawn and join (every slot fresh) and the same resident memory (4.3 KiB
//! each) and memory maps. Spawning on reused stacks, the common case, makes
//! no system call and does not change.
//!
//! **Hot and cold.** Freed stacks go to a process-wide pool, one entry per
//! size class behind one `Mutex`. A *hot* stack still has its touched pages
//! resident and is reused first, last-in first-out, so the most recently
//! used (cache-warm) stack is handed out again. A *cold* stack has had its
//! pages given back with `MADV_DONTNEED`; reusing it costs page faults.
//! Untouched address space is carved from the current slab only when both
//! lists are empty.
//!
//! **High-water mark.** At most `max(256 MiB / stack size, 64)` hot stacks
//! sit in the pool per size class (1,024 stacks at the 256 KiB default). A
//! stack returned beyond that is released and goes on the cold list. Why
//! that number: reusing a hot stack costs nothing, while a cold one costs a
//! `madvise` on release and page faults on reuse — about a microsecond,
//! four times the whole spawn-and-join budget — so the mark must cover the
//! bursts real programs have (a server's connection storm, a fork-join
//! batch of a thousand tasks). A green thread typically touches one to
//! three pages of its stack, so 1,024 idle hot stacks typically pin 4 to 12
//! MiB; the mark bounds the worst case (every stack touched to its full
//! size) at 256 MiB per size class. Releases of a batch are sorted and
//! adjacent slots coalesced, so a run of stacks (guards included, which
//! stay guards) is released with one call.
//!
//! **Per-worker caches.** A `StackCache` in each worker holds up to 256
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
const HOT_LIMIT_BYTES: usize = 256 << 20;

/// ... but always at least this many, so large stacks still get reused
/// across a worker cache's spill and refill.
const HOT_LIMIT_MIN_STACKS: usize = 64;

/// Slots in a size class's first slab; each later slab doubles, up to
/// `MAX_SLAB_SLOTS` and `MAX_SLAB_BYTES`.
const FIRST_SLAB_SLOTS: usize = 16;
const MAX_SLAB_SLOTS: usize = 1024;
const MAX_SLAB_BYTES: usize = 1 << 30;

/// Stack coloring (see `GuardedStack::base`): how many different offsets,
/// and how far apart (a multiple of `corosensei::stack::STACK_ALIGNMENT`
/// and of the cache line).
const COLORS: usize = 8;
const COLOR_STEP: usize = 192;
/// 2⁶⁴ divided by the golden ratio, odd: the multiplier of Fibonacci
/// hashing, whose top bits spread an arithmetic progression evenly.
const FIBONACCI_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
/// Keeps the top log2(`COLORS`) bits of the hash.
const COLOR_SHIFT: u32 = u64::BITS - COLORS.trailing_zeros();
const _: () = assert!(COLORS.is_power_of_two());

/// Bytes of the guard below each stack (rounded up to whole pages; see
/// "Guard size" above).
const GUARD_BYTES: usize = 64 * 1024;

/// The guard below each stack, in bytes: `GUARD_BYTES` rounded up to
/// whole pages.
pub(crate) fn guard_size() -> usize {
    let page = sys::page_size();
    GUARD_BYTES.div_ceil(page) * page
}

/// Stacks a `StackCache` holds at most, and how many it moves at once.
const CACHE_CAPACITY: usize = 256;
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

/// One usable stack region with a guard directly below it, owned
/// exclusively; dropping it returns it to its pool (never unmaps it).
pub(crate) struct GuardedStack {
    /// Lowest address of the slot: the start of the guard.
    ///
    /// # Invariant
    ///
    /// With `guard = guard_size()`, `[start, start + guard)` is an
    /// installed guard and `[start + guard, start + guard + size)` is
    /// mapped read-write. Both lie
    /// in a slab of `pool`, belong to no other `GuardedStack`, and are not
    /// in any free list or cache while this value exists.
    start: NonZeroUsize,
    /// Usable bytes: a page multiple of at least `MIN_STACK_SIZE`.
    size: usize,
    /// The pool the slot came from and goes back to.
    pool: &'static Pool,
    /// Where the stack starts (its highest address, colored): computed
    /// once, as corosensei asks for it at every resume.
    base: NonZeroUsize,
}

impl GuardedStack {
    /// The stack of the slot at `start`, of `size` usable bytes, from
    /// `pool`; the caller hands over the slot's ownership (see `start`).
    #[inline]
    fn new(start: NonZeroUsize, size: usize, pool: &'static Pool) -> GuardedStack {
        // Stack coloring: slots are a whole number of pages apart, so their
        // tops would all map to the same L1 cache sets (and to few L2
        // sets), and a batch of fresh threads would evict each other's
        // first frames. Starting each stack a few cache lines below its top,
        // varying with the slot, spreads them (`COLORS` × `COLOR_STEP`
        // bytes at most, all within the first page, which a green thread
        // touches anyway). Measured on spawn+join of 1,000-thread batches on
        // one worker: 400 → 325 ns per thread. The color comes from a
        // multiplicative hash of the slot's page number (Knuth's Fibonacci
        // hashing): slots of one size class are a fixed number of pages
        // apart, often a multiple of `COLORS` (a 256 KiB stack and a 64 KiB
        // guard make 80 pages), and the hash spreads any such progression
        // over every color where the page number modulo `COLORS` would not.
        // Computed here, once per stack handed out, not in `base`: that is
        // called at every resume, and the two divisions by the page size
        // cost a yield about a tenth of its instructions.
        let page_number = (start.get() / sys::page_size()) as u64;
        let color = (page_number.wrapping_mul(FIBONACCI_MULTIPLIER) >> COLOR_SHIFT) as usize;
        let color = color * COLOR_STEP;
        let base = start.saturating_add(guard_size() + size - color);
        GuardedStack {
            start,
            size,
            pool,
            base,
        }
    }

    /// Usable bytes, excluding the guard.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard's address range: `(start, end)`, end exclusive.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let start = self.start.get();
        (start, start + guard_size())
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
// is a guard followed by `size` >= 16 KiB (> corosensei's 4 KiB
// MIN_STACK_SIZE) of read-write memory owned by this value alone until it is
// dropped. Both ends are page aligned, hence aligned to STACK_ALIGNMENT.
unsafe impl Stack for GuardedStack {
    #[inline]
    fn base(&self) -> StackPointer {
        // Colored (see `GuardedStack::new`).
        self.base
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

    /// The stack a green thread starting now runs on, given `reserved`, the
    /// one set aside for it at its spawn: the most recently used stack of
    /// the cache, whose top pages are likely resident and in this core's
    /// caches, while `reserved`, maybe never touched, takes its place. A
    /// stack of another size class or pool is used as it is; so is
    /// `reserved` when the cache is empty.
    #[inline]
    pub(crate) fn warmest(&mut self, reserved: GuardedStack) -> GuardedStack {
        if reserved.size != self.size || !ptr::eq(reserved.pool, self.pool) {
            return reserved;
        }
        match self.stacks.last_mut() {
            Some(top) => {
                // The cache takes over `reserved` (see `stacks`) and hands
                // out what it owned in that slot.
                let reserved = ManuallyDrop::new(reserved);
                let warm = std::mem::replace(top, reserved.start);
                self.owned(warm)
            }
            None => reserved,
        }
    }

    /// Wraps a slot the cache owns as a `GuardedStack`, transferring
    /// ownership.
    #[inline]
    fn owned(&self, start: NonZeroUsize) -> GuardedStack {
        GuardedStack::new(start, self.size, self.pool)
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
    /// Usable bytes of each stack; a slot is `guard_size()` more.
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
        Ok(GuardedStack::new(start, size, self))
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
        let guard = guard_size();
        for index in before..out.len() {
            // SAFETY: the slot was just carved, so nobody else owns it, and
            // its guard range lies in a slab we mapped and holds no data.
            if let Err(error) = unsafe { sys::install_guard(kind, out[index].get(), guard) } {
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
        let slot = self.size + guard_size();
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
    let guard = guard_size();
    let slot = size + guard;
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
        let (start, end) = (first + guard, last + slot);
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
mod tests;
