//! Thread-local storage and spool:
//!
//! * `spool::thread_local!` is a drop-in replacement for
//!   `std::thread_local!`: every syntactic form std accepts compiles, and
//!   each green thread gets its own value — also when the initialiser
//!   blocks, which would be unsound with std's macro under green threads
//!   (see "Thread-local storage" in `spool::thread`).
//! * spool's blocking calls (a receive with a timeout, a `select!`, a
//!   receive that waits for another thread) work inside a thread-local
//!   destructor of an exiting thread — a `std::thread_local!` of a plain OS
//!   thread, whichever of spool's own thread-locals are already gone by
//!   then (as crossbeam-channel's do), or a `spool::thread_local!` — run in
//!   a child process, since failing there aborts ("thread local panicked
//!   on drop").

use crate::common;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{is_child, run_child, Watchdog};
use spool::sync::mpmc::{bounded, select, unbounded, RecvTimeoutError};
use spool::thread::ThreadId;
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- spool::thread_local! takes every form std's macro takes --------------
//
// Each declaration below is written exactly as it would be for
// `std::thread_local!`; that they compile is the first half of the test.

const ONE: u32 = 1;

// A `const` initialiser that is a single expression...
spool::thread_local! {
    static CONST_EXPR: Cell<u32> = const { Cell::new(ONE) };
}

// ...and one that is a block with statements.
spool::thread_local! {
    static CONST_BLOCK: Cell<u32> = const {
        let two = ONE + 1;
        Cell::new(two)
    };
}

// One declaration in parentheses, without a trailing semicolon.
spool::thread_local!(static SINGLE: RefCell<Vec<u32>> = RefCell::new(vec![ONE]));

// Several declarations with doc comments, other attributes and visibility,
// mixing lazy and `const` forms, the last without a semicolon.
spool::thread_local! {
    /// A doc comment is an attribute too.
    #[allow(dead_code)]
    pub static PUBLIC_LAZY: Cell<u8> = Cell::new(3);
    pub(crate) static CRATE_CONST: Cell<u8> = const { Cell::new(4) }
}

// A lazy initialiser that is a block, and a non-`Cell` value.
spool::thread_local! {
    static BLOCK_LAZY: u32 = {
        let twenty = 20;
        twenty + ONE
    };
    static ARRAY: [u8; 4] = [7; 4];
}

// Declarations chosen by `#[cfg]`.
spool::thread_local! {
    #[cfg(unix)]
    static CFG_CHOSEN: Cell<u32> = const { Cell::new(5) };
    #[cfg(not(unix))]
    static CFG_CHOSEN: Cell<u32> = const { Cell::new(6) };
}

// An initialiser reading another key, an unsized-pointer type, and an
// explicit `'static` reference.
spool::thread_local! {
    static FROM_OTHER_KEY: Cell<u32> = Cell::new(CONST_EXPR.get() + 100);
    static CALLBACK: RefCell<Option<Box<dyn Fn() -> u32>>> = const { RefCell::new(None) };
    static NAME: &'static str = "spool";
}

/// Every key's value as this thread sees it.
fn snapshot() -> Vec<u32> {
    vec![
        CONST_EXPR.get(),
        CONST_BLOCK.get(),
        SINGLE.with_borrow(|v| v.iter().sum()),
        PUBLIC_LAZY.get().into(),
        CRATE_CONST.get().into(),
        BLOCK_LAZY.with(|v| *v),
        ARRAY.with(|a| a.iter().map(|&b| u32::from(b)).sum()),
        CFG_CHOSEN.get(),
        FROM_OTHER_KEY.get(),
        CALLBACK.with_borrow(|f| f.as_ref().map_or(0, |f| f())),
        NAME.with(|n| n.len() as u32),
        function_local(),
    ]
}

/// A declaration inside a function body.
fn function_local() -> u32 {
    spool::thread_local! {
        static INSIDE: Cell<u32> = const { Cell::new(8) };
    }
    INSIDE.get()
}

/// What a fresh thread sees.
const INITIAL: [u32; 12] = [1, 2, 1, 3, 4, 21, 28, 5, 101, 0, 5, 8];

/// Changes every mutable key by `by`.
fn mutate(by: u32) {
    CONST_EXPR.set(CONST_EXPR.get() + by);
    CONST_BLOCK.set(CONST_BLOCK.get() + by);
    SINGLE.with_borrow_mut(|v| v.push(by));
    PUBLIC_LAZY.set(PUBLIC_LAZY.get() + by as u8);
    CRATE_CONST.set(CRATE_CONST.get() + by as u8);
    CFG_CHOSEN.set(CFG_CHOSEN.get() + by);
    FROM_OTHER_KEY.set(FROM_OTHER_KEY.get() + by);
    CALLBACK.set(Some(Box::new(move || by)));
}

/// Each green thread (and the calling thread) sees its own values of every
/// form: a child starts from the initial values while its parent has
/// changed them, and its changes do not reach the parent.
fn each_form_is_per_thread() {
    assert_eq!(snapshot(), INITIAL);
    mutate(10);
    let mine = snapshot();
    assert_ne!(mine, INITIAL);
    let children: Vec<_> = (1..=3u32)
        .map(|i| {
            spool::thread::spawn(move || {
                assert_eq!(snapshot(), INITIAL, "child {i} saw another thread's value");
                mutate(i);
                spool::thread::sleep(ms(2)); // the others run meanwhile
                snapshot()
            })
        })
        .collect();
    let seen: Vec<Vec<u32>> = children.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, values) in seen.iter().enumerate() {
        for (other, other_values) in seen.iter().enumerate() {
            if i != other {
                assert_ne!(
                    values, other_values,
                    "children {i} and {other} shared a value"
                );
            }
        }
    }
    assert_eq!(snapshot(), mine, "a child's change reached its parent");
}

#[test]
fn every_std_form_is_per_green_thread_on_one_worker() {
    let _watchdog = Watchdog::new("every_std_form_is_per_green_thread_on_one_worker", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(each_form_is_per_thread);
}

#[test]
fn every_std_form_is_per_thread_from_an_os_thread() {
    let _watchdog = Watchdog::new("every_std_form_is_per_thread_from_an_os_thread", LIMIT);
    std::thread::spawn(each_form_is_per_thread).join().unwrap();
}

// ---- a blocking initialiser is sound with spool's macro ------------------

/// A value that records its own drop, to tell whether a value was dropped
/// while its thread still borrowed it.
struct Owned {
    owner: ThreadId,
    serial: u64,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(0);
static DROPPED: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static INITIALISING: AtomicUsize = AtomicUsize::new(0);
static MOST_INITIALISING: AtomicUsize = AtomicUsize::new(0);

impl Drop for Owned {
    fn drop(&mut self) {
        DROPPED.lock().unwrap().push(self.serial);
    }
}

/// Blocks on spool in the middle of initialising: with
/// `std::thread_local!`, another green thread of the worker would run this
/// too and std would replace (and drop) the first value while its thread
/// borrows it.
fn slow_init() -> Owned {
    let now = INITIALISING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_INITIALISING.fetch_max(now, Ordering::SeqCst);
    spool::thread::sleep(ms(20));
    INITIALISING.fetch_sub(1, Ordering::SeqCst);
    Owned {
        owner: spool::thread::current().id(),
        serial: NEXT_SERIAL.fetch_add(1, Ordering::SeqCst),
    }
}

spool::thread_local! {
    static SLOW_INIT: Owned = slow_init();
}

#[test]
fn a_blocking_initialiser_gives_each_green_thread_its_own_value() {
    let _watchdog = Watchdog::new(
        "a_blocking_initialiser_gives_each_green_thread_its_own_value",
        LIMIT,
    );
    // One worker: the green threads share its OS thread, so with std's
    // macro they would share one value too.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let serials = rt.run(|| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                spool::thread::spawn(|| {
                    let me = spool::thread::current().id();
                    SLOW_INIT.with(|value| {
                        assert_eq!(value.owner, me, "saw another green thread's value");
                        // Borrowed across a blocking call: still alive and ours.
                        spool::thread::sleep(ms(20));
                        assert!(
                            !DROPPED.lock().unwrap().contains(&value.serial),
                            "the value was dropped while borrowed"
                        );
                        assert_eq!(value.owner, me);
                        value.serial
                    })
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        MOST_INITIALISING.load(Ordering::SeqCst),
        2,
        "the two initialisers should have been blocked at the same time"
    );
    assert_ne!(serials[0], serials[1]);
    let mut dropped = DROPPED.lock().unwrap().clone();
    dropped.sort_unstable();
    let mut expected = serials.clone();
    expected.sort_unstable();
    assert_eq!(
        dropped, expected,
        "each value is dropped once, when its thread exits"
    );
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

spool::thread_local! {
    static SPOOL_AT_EXIT: RefCell<AtExit> = const { RefCell::new(AtExit(None)) };
}

/// Whose destructor makes the blocking calls, and when.
#[derive(Clone, Copy, Debug)]
enum Exit {
    /// A `std::thread_local!` of an OS thread, registered before spool's
    /// own thread-locals (so destroyed after them: destructors run in
    /// reverse order of registration).
    StdKeyBeforeSpool,
    /// The same, registered after spool's (destroyed before them).
    StdKeyAfterSpool,
    /// A `spool::thread_local!` of an OS thread.
    SpoolKeyOfOsThread,
    /// A `spool::thread_local!` of a green thread.
    SpoolKeyOfGreenThread,
}

/// Runs a thread whose exit runs `blocking_calls_at_exit` from the
/// destructor `exit` names; returns what the calls produced.
fn exit_with_blocking_destructor(exit: Exit) -> Vec<(&'static str, String)> {
    let outcomes: Outcomes = Arc::default();
    let at_exit = {
        let outcomes = outcomes.clone();
        move || blocking_calls_at_exit(&outcomes)
    };
    let body = move || {
        let mut at_exit: Option<Box<dyn FnOnce()>> = Some(Box::new(at_exit));
        let mut register = move || match exit {
            Exit::StdKeyBeforeSpool | Exit::StdKeyAfterSpool => {
                AT_EXIT.with(|a| a.borrow_mut().0 = at_exit.take())
            }
            Exit::SpoolKeyOfOsThread | Exit::SpoolKeyOfGreenThread => {
                SPOOL_AT_EXIT.with(|a| a.borrow_mut().0 = at_exit.take())
            }
        };
        if !matches!(exit, Exit::StdKeyAfterSpool) {
            register();
        }
        // Create spool's per-thread state on this thread: its handle, a
        // select's random state and a channel context.
        let (_s, r) = unbounded::<u32>();
        assert_eq!(r.recv_timeout(ms(1)), Err(RecvTimeoutError::Timeout));
        select! {
            recv(r) -> _ => unreachable!(),
            default(ms(1)) => {}
        }
        if matches!(exit, Exit::StdKeyAfterSpool) {
            register();
        }
    };
    if matches!(exit, Exit::SpoolKeyOfGreenThread) {
        spool::thread::spawn(body).join()
    } else {
        std::thread::spawn(body).join()
    }
    .expect("the thread exits cleanly");
    let outcomes = outcomes.lock().unwrap().clone();
    outcomes
}

#[test]
fn blocking_calls_work_in_thread_local_destructors() {
    let _watchdog = Watchdog::new("blocking_calls_work_in_thread_local_destructors", LIMIT);
    let out = run_child("child_blocking_calls_in_tls_destructor", &[]);
    // A filter that matched nothing would also exit successfully.
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
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
    for exit in [
        Exit::StdKeyBeforeSpool,
        Exit::StdKeyAfterSpool,
        Exit::SpoolKeyOfOsThread,
        Exit::SpoolKeyOfGreenThread,
    ] {
        let outcomes = exit_with_blocking_destructor(exit);
        let outcomes: Vec<(&str, &str)> = outcomes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(outcomes, EXPECTED, "{exit:?}");
    }
}
