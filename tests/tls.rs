//! Thread-local storage and spool:
//!
//! * `spool::thread_local!` is a drop-in replacement for
//!   `std::thread_local!`: every syntactic form std accepts compiles, and
//!   each green thread gets its own value — also when the initialiser
//!   blocks, which would be unsound with std's macro under green threads
//!   (see "Thread-local storage" in `spool::thread`).
//! * spool's blocking calls work inside a `std::thread_local!` destructor
//!   of a plain OS thread that exits, whichever of spool's own
//!   thread-locals are already gone by then (as crossbeam-channel's do).

#[macro_use]
mod common;

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{is_child, run_child, Watchdog};
use spool::sync::mpmc::{bounded, select, unbounded, RecvTimeoutError};

const LIMIT: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- blocking calls in a std thread-local destructor ----------------------

/// Runs its closure when dropped: a `std::thread_local!` value whose
/// destructor does the work when its OS thread exits.
struct AtExit(Option<Box<dyn FnOnce()>>);

impl Drop for AtExit {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

std::thread_local! {
    static AT_EXIT: RefCell<AtExit> = const { RefCell::new(AtExit(None)) };
}

/// What each destructor scenario produced, by name.
type Outcomes = Arc<Mutex<Vec<(&'static str, String)>>>;

/// The spool calls made from the destructor; each records its outcome.
fn blocking_calls_at_exit(outcomes: &Outcomes) {
    let record = |what: &'static str, outcome: String| {
        outcomes.lock().unwrap().push((what, outcome));
    };
    // A receive that times out.
    let (_s, r) = bounded::<u32>(0);
    record("recv_timeout", format!("{:?}", r.recv_timeout(ms(5))));
    // A select that times out.
    let (_s, r) = unbounded::<u32>();
    let selected = select! {
        recv(r) -> msg => format!("received {msg:?}"),
        default(ms(5)) => "timed out".to_string(),
    };
    record("select_timeout", selected);
    // A receive that finds a message.
    let (s, r) = unbounded();
    s.send(5u32).unwrap();
    record("recv_ready", format!("{:?}", r.recv()));
    // A receive that blocks until a green thread sends, and a select that
    // blocks until an OS thread sends.
    let (s, r) = bounded(0);
    let green = spool::thread::spawn(move || s.send(6u32).unwrap());
    record("recv_from_green", format!("{:?}", r.recv()));
    green.join().unwrap();
    let (s, r) = bounded(0);
    let os = std::thread::spawn(move || s.send(7u32).unwrap());
    let selected = select! {
        recv(r) -> msg => format!("{msg:?}"),
        default(Duration::from_secs(30)) => "timed out".to_string(),
    };
    record("select_from_os", selected);
    os.join().unwrap();
    record(
        "current",
        format!(
            "{}",
            spool::thread::current().id() == spool::thread::current().id()
        ),
    );
}

/// The outcomes every scenario must have produced.
const EXPECTED: &[(&str, &str)] = &[
    ("recv_timeout", "Err(Timeout)"),
    ("select_timeout", "timed out"),
    ("recv_ready", "Ok(5)"),
    ("recv_from_green", "Ok(6)"),
    ("select_from_os", "Ok(7)"),
    ("current", "true"),
];

/// Spawns a plain OS thread that registers the `AT_EXIT` destructor
/// `first` (before or after using spool, which decides whether spool's
/// own thread-locals are destroyed before or after it) and exits.
fn exit_with_blocking_destructor(register_first: bool) -> Vec<(&'static str, String)> {
    let outcomes: Outcomes = Arc::default();
    let at_exit = {
        let outcomes = outcomes.clone();
        move || blocking_calls_at_exit(&outcomes)
    };
    std::thread::spawn(move || {
        let mut at_exit: Option<Box<dyn FnOnce()>> = Some(Box::new(at_exit));
        let mut register = move || AT_EXIT.with(|a| a.borrow_mut().0 = at_exit.take());
        if register_first {
            // Destructors run in reverse order of registration, so spool's
            // thread-locals, created below, are destroyed before ours runs.
            register();
        }
        // Create spool's per-thread state on this OS thread: its handle,
        // a select's random state and a channel context.
        let (_s, r) = unbounded::<u32>();
        assert_eq!(r.recv_timeout(ms(1)), Err(RecvTimeoutError::Timeout));
        select! {
            recv(r) -> _ => unreachable!(),
            default(ms(1)) => {}
        }
        if !register_first {
            register();
        }
    })
    .join()
    .expect("the OS thread exits cleanly");
    let outcomes = outcomes.lock().unwrap().clone();
    outcomes
}

#[test]
fn blocking_calls_work_in_a_std_thread_local_destructor() {
    let _watchdog = Watchdog::new(
        "blocking_calls_work_in_a_std_thread_local_destructor",
        LIMIT,
    );
    let out = run_child("child_blocking_calls_in_tls_destructor", &[]);
    assert!(
        out.status.success(),
        "the child failed ({:?}; an abort here is 'thread local panicked on drop'):\n{}",
        out.status,
        out.stderr
    );
}

#[test]
fn child_blocking_calls_in_tls_destructor() {
    if !is_child("child_blocking_calls_in_tls_destructor") {
        return;
    }
    for register_first in [true, false] {
        let outcomes = exit_with_blocking_destructor(register_first);
        let outcomes: Vec<(&str, &str)> = outcomes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            outcomes, EXPECTED,
            "destructor registered first: {register_first}"
        );
    }
}
