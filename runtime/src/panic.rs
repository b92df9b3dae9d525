//! Panics of green threads: how they are reported, and how spool keeps
//! them from unwinding into a worker.
//!
//! # The message
//! std's default hook names the *OS* thread (`spool-worker-0`), which would
//! tell a user nothing. When the first runtime starts, spool installs a hook
//! that, for a panic inside a green thread, prints std's message with the
//! green thread's name and id — `thread '<name>' (<id>) panicked at
//! <location>:` followed by the payload and the backtrace note, honouring
//! `RUST_BACKTRACE` as std does — and passes every other panic to the hook
//! that was installed before.
//!
//! A hook the program installed *before* the runtime started (sentry,
//! color-eyre, human-panic, a test's quiet hook) is called for green
//! threads' panics too, instead of spool's message: it can name the green
//! thread through `spool::thread::current().name()`. std has no way to ask
//! whether a hook is its default one, so `install_hook` compares the hook
//! it takes with a freshly taken default (see `is_std_default`). A hook the
//! program installs later replaces spool's for all threads, as with std.
//!
//! # Containment: a worker never unwinds
//! A worker OS thread runs many green threads; if a panic unwound it, the
//! worker would be lost with every green thread pinned to it, and its
//! thread-local pointers would dangle. So every place where a worker runs
//! or drops user code contains panics:
//!
//! * a green thread's closure runs under `catch_unwind` (the `spool` crate
//!   wraps it once more to keep the payload for `join`);
//! * a caught payload is dropped by `drop_payload`: if its destructor
//!   panics in turn, spool **aborts** with a message naming it, as std does
//!   when a thread's result panics on drop (`thread result panicked on
//!   drop`). Leaking the second payload would keep the process alive, but
//!   it would hide a destructor that cannot clean up, and the first
//!   payload's drop has already stopped half way;
//! * a thread-local value whose destructor panics aborts likewise, as in
//!   std (`thread local panicked on drop`);
//! * the closure of a green thread that never ran is dropped at shutdown
//!   by its `task::Entry`, which reports a panic from its destructors and
//!   carries on: shutdown is no place to give up, and nothing half-done is
//!   left behind;
//! * as a last line of defence, `AbortOnUnwind` turns any panic that still
//!   escapes a coroutine into an abort that names it (`fatal`).

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::scheduler;
use crate::task::Task;

static INSTALL: Once = Once::new();
/// std prints the "run with RUST_BACKTRACE=1" note on the first panic only.
static NOTE_PRINTED: AtomicBool = AtomicBool::new(false);

/// What `std::panic::take_hook` returns.
type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Installs the green-thread-aware panic hook (once per process).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        // A hook of the program's own sees green threads' panics too.
        let chain_green_panics = !is_std_default(&previous);
        std::panic::set_hook(Box::new(move |info| {
            crate::cancel::panic_began();
            match scheduler::current_task() {
                Some(task) => {
                    task.unwinding.set(true);
                    if chain_green_panics {
                        previous(info);
                    } else {
                        print_green_panic(info);
                    }
                }
                None => previous(info),
            }
        }));
    });
}

/// Whether `hook`, just taken with `take_hook`, is std's default hook.
///
/// `take_hook` leaves the default hook installed, so taking it again
/// returns the default, boxed by the same code in std: a zero-sized
/// function item, so the same dangling data address and the same vtable.
/// A hook the program set is another type (another vtable) or a heap
/// address. Should a build ever give the default two vtables, the check
/// errs on the side of calling the default hook, which then names the
/// worker OS thread instead of the green thread; no panic goes unreported.
fn is_std_default(hook: &Hook) -> bool {
    let default = std::panic::take_hook();
    // Wide-pointer comparison on purpose: address and vtable.
    std::ptr::eq::<dyn Fn(&PanicHookInfo<'_>) + Sync + Send>(&**hook, &*default)
}

/// Drops a caught panic payload on a worker. If its destructor panics in
/// turn, the process aborts with a message naming it, as std does for a
/// thread result that panics on drop (see "Containment" above); the second
/// payload is never dropped, so nothing unwinds.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
        crate::fatal(
            "a green thread's panic payload panicked while being dropped; \
             aborting, as std does when a thread result panics on drop",
        );
    }
}

/// Aborts with `what` (via `fatal`), naming a green thread, if dropped
/// while unwinding: put one in front of code that must not unwind into a
/// worker, and `disarm` it after.
pub(crate) struct AbortOnUnwind<'a> {
    what: &'static str,
    /// The green thread the guarded code runs or settles.
    thread: &'a Task,
}

impl<'a> AbortOnUnwind<'a> {
    pub(crate) fn naming(what: &'static str, thread: &'a Task) -> Self {
        AbortOnUnwind { what, thread }
    }

    /// The guarded code returned normally.
    #[inline]
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        // Only reached while unwinding: `disarm` forgets the guard.
        crate::fatal(&format!(
            "{} (green thread '{}', id {})",
            self.what,
            self.thread.name().unwrap_or("<unnamed>"),
            self.thread.id
        ))
    }
}

fn payload_text<'a>(info: &'a PanicHookInfo<'_>) -> &'a str {
    let payload = info.payload();
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

fn print_green_panic(info: &PanicHookInfo<'_>) {
    let handle = crate::current();
    let name = handle.name().unwrap_or("<unnamed>");
    let location = info.location().map_or_else(
        || "<unknown>".to_string(),
        |l| format!("{}:{}:{}", l.file(), l.line(), l.column()),
    );
    let backtrace = Backtrace::capture();
    let mut text = format!(
        "\nthread '{name}' ({}) panicked at {location}:\n{}\n",
        handle.id(),
        payload_text(info)
    );
    match backtrace.status() {
        BacktraceStatus::Captured => text.push_str(&format!("stack backtrace:\n{backtrace}\n")),
        _ => {
            if !NOTE_PRINTED.swap(true, Ordering::Relaxed) {
                text.push_str(
                    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
                );
            }
        }
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
