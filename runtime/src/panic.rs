//! The panic message of a green thread.
//!
//! std's default hook names the *OS* thread (`spool-worker-0`), which would
//! tell a user nothing. When the first runtime starts, spool installs a hook
//! that, for a panic inside a green thread, prints std's message with the
//! green thread's name and id — `thread '<name>' (<id>) panicked at
//! <location>:` followed by the payload and the backtrace note, honouring
//! `RUST_BACKTRACE` as std does — and passes every other panic to the hook
//! that was installed before. A hook the program installs later replaces
//! this one for all threads, as with std; it can name green threads through
//! `spool::thread::current().name()`.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::scheduler;

static INSTALL: Once = Once::new();
/// std prints the "run with RUST_BACKTRACE=1" note on the first panic only.
static NOTE_PRINTED: AtomicBool = AtomicBool::new(false);

/// Installs the green-thread-aware panic hook (once per process).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(task) = scheduler::current_task() {
                task.unwinding.set(true);
                print_green_panic(info);
            } else {
                previous(info);
            }
        }));
    });
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
