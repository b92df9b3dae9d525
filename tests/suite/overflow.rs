//! What a user sees when a green thread overflows its stack or panics.
//!
//! Each scenario runs in a child process (this test binary re-executed to
//! run exactly one `child_*` test, see `common::run_child`): a stack
//! overflow aborts the whole process by design, and panic messages go to
//! the real stderr, which the parent captures.

use crate::common;

use std::hint::black_box;

use common::{is_child, run_child, ChildOutput};
use spool::thread;

/// Recurses until the stack runs out.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let frame = black_box([depth; 32]);
    recurse(frame[1] + 1).wrapping_add(frame[2])
}

/// Everything the child printed, for failure messages.
fn describe(out: &ChildOutput) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

#[track_caller]
fn assert_overflow_abort(out: &ChildOutput, expected_line: &str) {
    assert!(
        !out.status.success(),
        "the overflowing child exited successfully:\n{}",
        describe(out)
    );
    assert_eq!(
        out.signal(),
        Some(libc::SIGABRT),
        "the child was not killed by SIGABRT:\n{}",
        describe(out)
    );
    assert!(
        out.stderr.contains(expected_line),
        "stderr lacks {expected_line:?}:\n{}",
        describe(out)
    );
    assert!(
        !out.stderr.contains("spool-worker"),
        "the message names the worker OS thread instead of the green thread:\n{}",
        describe(out)
    );
    assert!(
        !out.stdout.contains("test result"),
        "the child finished its test run instead of aborting:\n{}",
        describe(out)
    );
}

#[test]
fn overflow_in_a_named_green_thread_names_it_and_aborts() {
    let out = run_child("child_overflow_named", &[]);
    assert_overflow_abort(
        &out,
        "thread 'deep-diver' has overflowed its stack (64 KiB)",
    );
}

#[test]
fn child_overflow_named() {
    if !is_child("child_overflow_named") {
        return;
    }
    let h = thread::Builder::new()
        .name("deep-diver".into())
        .stack_size(64 * 1024)
        .spawn(|| recurse(0))
        .unwrap();
    let _ = h.join();
    unreachable!("the overflowing thread returned");
}

#[test]
fn overflow_in_an_unnamed_green_thread_says_unnamed() {
    let out = run_child("child_overflow_unnamed", &[]);
    assert_overflow_abort(&out, "thread '<unnamed>' has overflowed its stack (64 KiB)");
}

#[test]
fn child_overflow_unnamed() {
    if !is_child("child_overflow_unnamed") {
        return;
    }
    // The runtime's default stack size is what the message reports.
    let rt = spool::Runtime::builder()
        .workers(2)
        .stack_size(64 * 1024)
        .build()
        .unwrap();
    rt.run(|| {
        let h = thread::spawn(|| recurse(0));
        let _ = h.join();
    });
    unreachable!("the overflowing thread returned");
}

#[test]
fn overflow_after_many_threads_names_the_right_one() {
    // Other green threads (parked, finished, running on the same worker)
    // must not confuse which thread the message names.
    let out = run_child("child_overflow_among_others", &[]);
    assert_overflow_abort(&out, "thread 'the-one' has overflowed its stack (128 KiB)");
}

#[test]
fn child_overflow_among_others() {
    if !is_child("child_overflow_among_others") {
        return;
    }
    let rt = spool::Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let parked: Vec<_> = (0..100)
            .map(|i| {
                thread::Builder::new()
                    .name(format!("bystander-{i}"))
                    .spawn(|| thread::park_timeout(std::time::Duration::from_secs(60)))
                    .unwrap()
            })
            .collect();
        for i in 0..100 {
            thread::Builder::new()
                .name(format!("finished-{i}"))
                .spawn(|| ())
                .unwrap()
                .join()
                .unwrap();
        }
        thread::yield_now();
        let h = thread::Builder::new()
            .name("the-one".into())
            .stack_size(128 * 1024)
            .spawn(|| {
                thread::yield_now();
                recurse(0)
            })
            .unwrap();
        let _ = h.join();
        drop(parked);
    });
    unreachable!("the overflowing thread returned");
}

/// Checks that `stderr` has `thread '<name>' (<digits>) panicked at
/// <file>:` with the given payload on the next line.
#[track_caller]
fn assert_green_panic_message(out: &ChildOutput, name: &str, payload: &str) {
    let head = format!("thread '{name}' (");
    let start = out
        .stderr
        .find(&head)
        .unwrap_or_else(|| panic!("stderr lacks {head:?}:\n{}", describe(out)));
    let rest = &out.stderr[start + head.len()..];
    let close = rest
        .find(')')
        .unwrap_or_else(|| panic!("no ')' after {head:?}:\n{}", describe(out)));
    let id = &rest[..close];
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "the thread id {id:?} is not a number:\n{}",
        describe(out)
    );
    let rest = &rest[close..];
    assert!(
        rest.starts_with(") panicked at ") && rest.lines().next().unwrap().contains("overflow.rs:"),
        "malformed panic line after {head:?}:\n{}",
        describe(out)
    );
    assert_eq!(
        rest.lines().nth(1),
        Some(payload),
        "payload line:\n{}",
        describe(out)
    );
}

#[test]
fn a_panic_in_a_named_green_thread_names_it() {
    let out = run_child("child_panic_named", &[]);
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "a joined panic made the child fail:\n{}",
        describe(&out)
    );
    assert_green_panic_message(&out, "panicky", "boom-123");
    assert_green_panic_message(&out, "<unnamed>", "unnamed boom");
    assert!(
        !out.stderr.contains("thread 'spool-worker"),
        "a green thread's panic was reported under the worker's name:\n{}",
        describe(&out)
    );
}

#[test]
fn child_panic_named() {
    if !is_child("child_panic_named") {
        return;
    }
    let h = thread::Builder::new()
        .name("panicky".into())
        .spawn(|| -> u32 { panic!("boom-123") })
        .unwrap();
    assert!(h.join().is_err());
    let h = thread::spawn(|| -> u32 { panic!("unnamed boom") });
    assert!(h.join().is_err());
    // The process carries on normally.
    assert_eq!(thread::spawn(|| 1).join().unwrap(), 1);
}
