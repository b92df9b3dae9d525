//! Tests of the stack slabs, pool, caches and guards.

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

/// The whole read-write range of a stack (its `base` lies up to a color
/// below the end).
fn usable(stack: &GuardedStack) -> (usize, usize) {
    let start = stack.guard_range().1;
    (start, start + stack.size())
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
    let guard = guard_size();
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
        assert!(base - limit <= size + guard);
        assert!(base - limit > size + guard - COLORS * COLOR_STEP);
        assert_eq!(stack.size(), size);
        assert_eq!(stack.guard_range(), (limit, limit + guard));
        for offset in (0..guard).step_by(page) {
            assert!(
                !sys::is_readable(limit + offset),
                "guard of {stack:?} is readable at +{offset:#x}"
            );
        }
        assert!(!sys::is_readable(limit + guard - 1));
        assert!(sys::is_readable(limit + guard));
        ranges.push((limit, base));
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
    // Within the first slab the slots are adjacent: each guard sits
    // directly on top of the previous stack.
    for pair in stacks[..16].windows(2) {
        assert_eq!(pair[1].limit().get(), usable(&pair[0]).1);
    }
}

#[test]
fn writing_into_a_guard_page_faults() {
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
        assert_eq!(guard_end - guard_start, guard_size());
    }
}

#[test]
fn the_guard_is_at_least_64_kib_of_whole_pages() {
    let page = sys::page_size();
    assert!(guard_size() >= 64 * KIB);
    assert_eq!(guard_size() % page, 0);
    assert!(guard_size() < 64 * KIB + page);
}

/// A frame that skips past the end of its stack without touching the
/// pages in between (C code built without stack probes allocating a large
/// local array) lands in the guard, not in the stack of the slot below,
/// and is reported as an overflow. 32 KiB is eight 4 KiB pages past the
/// end: with a one-page guard this write silently landed in the top of
/// the neighbouring green thread's stack.
#[test]
fn a_frame_skipping_32_kib_past_the_stack_end_is_reported_as_an_overflow() {
    const SKIP: usize = 32 * KIB;
    for kind in guard_kinds() {
        sys::install_overflow_handler();
        let pool = leak_pool(kind, 0);
        let size = normalize_stack_size(64 * KIB).unwrap();
        // The second slot of the slab, so that another stack lies directly
        // below its guard.
        let below = pool.allocate(size).unwrap();
        let stack = pool.allocate(size).unwrap();
        assert_eq!(stack.limit().get(), usable(&below).1, "slots not adjacent");
        let (guard_start, guard_end) = stack.guard_range();
        let info = RunningStack {
            guard_start: guard_start.into(),
            guard_end: guard_end.into(),
            stack_size: stack.size(),
            name: Some("skipper".into()),
        };
        let (status, stderr) = in_child(move || {
            sys::ensure_altstack();
            let mut coroutine =
                corosensei::Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
                    // SAFETY: the write under test: in the guard (it must
                    // fault) or, with a one-page guard, in `below`, a stack
                    // this child owns and runs nothing on.
                    unsafe { ((guard_end - SKIP) as *mut u64).write_volatile(1) };
                });
            sys::set_running(&info);
            coroutine.resume(());
            sys::set_running(ptr::null());
        });
        assert_eq!(
            killed_by(status),
            Some(libc::SIGABRT),
            "{kind:?}: a write {SKIP} bytes below the stack was not caught \
             (status {status:#x}): {stderr}"
        );
        assert!(
            stderr.contains("thread 'skipper' has overflowed its stack (64 KiB)"),
            "{kind:?}: {stderr}"
        );
        drop(below);
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
        guard_start: guard_start.into(),
        guard_end: guard_end.into(),
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
            format!(
                "\nthread 'overflower' has overflowed its stack (64 KiB)\n{}\
                 fatal runtime error: stack overflow, aborting\n",
                std::str::from_utf8(sys::OVERFLOW_HELP).unwrap()
            )
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
        guard_start: guard_start.into(),
        guard_end: guard_end.into(),
        stack_size: stack.size(),
        name: None,
    };
    let (status, stderr) = in_child(move || {
        sys::ensure_altstack();
        let mut coroutine = corosensei::Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
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

/// What the guard costs (see "Guard size" in `mod.rs`): CPU time per stack
/// to carve and to release fresh stacks, memory maps, address space and
/// page tables, for each guard kind. Run with
/// `cargo test --release -p spool-runtime --lib stack::tests::guard_costs -- --ignored --nocapture`.
#[test]
#[ignore]
fn guard_costs() {
    use std::time::Duration;
    fn cpu_time() -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we pass.
        let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        assert_eq!(result, 0);
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }
    fn status_kib(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        let value = line[field.len() + 1..].trim().trim_end_matches("kB");
        value.trim().parse().unwrap()
    }
    let count = 20_000u32;
    for kind in guard_kinds() {
        let pool = leak_pool(kind, 0);
        let (maps, size, tables) = (maps_count(), status_kib("VmSize"), status_kib("VmPTE"));
        let start = cpu_time();
        let stacks: Vec<GuardedStack> = (0..count)
            .map(|_| pool.allocate(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        let carve = cpu_time() - start;
        for stack in &stacks {
            // SAFETY: the top bytes of a stack we own, mapped read-write.
            unsafe { ((usable(stack).1 - 64) as *mut u8).write_volatile(1) };
        }
        let maps = maps_count() - maps;
        let size = (status_kib("VmSize") - size) / u64::from(count);
        let tables = (status_kib("VmPTE") - tables) as f64 / f64::from(count);
        let mut starts: Vec<NonZeroUsize> = stacks
            .into_iter()
            .map(|stack| ManuallyDrop::new(stack).start)
            .collect();
        let start = cpu_time();
        pool.give(DEFAULT_STACK_SIZE, &mut starts);
        let release = cpu_time() - start;
        eprintln!(
            "{} KiB {kind:?} guards, {count} stacks: carve {:?} and coalesced release {:?} \
             of CPU per stack; memory maps +{maps}; address space {size} KiB and page \
             tables {tables:.3} KiB per stack",
            guard_size() / 1024,
            carve / count,
            release / count,
        );
    }
}
