//! A `Select` that chose a send on a rendezvous channel (`bounded(0)`) and
//! then never sends — its `SelectedOperation` is dropped, or its thread
//! panics before `send` — must give the hand-off back: the receiver it was
//! paired with goes on waiting for another sender (a blocking `recv`), or
//! reports an empty channel (`try_recv`), instead of waiting forever for a
//! message that will never come.
//!
//! Two pairings are covered: the select finds a receiver already waiting
//! and takes it (`waiting_receiver_*`), and a receiver finds the select's
//! registered send and takes it (`registered_select_*`). Each is run with
//! the selection dropped and with a panic between `select` and `send`. The
//! selecting side runs on plain OS threads (spawned by the test, so their
//! expected panic messages are captured by the test harness); one child
//! process repeats the scenarios with green threads selecting, checking
//! the panic messages on its stderr.

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{is_child, payload_text, run_child, Watchdog};
use spool::sync::mpmc::{bounded, Receiver, Select, Sender, TryRecvError};

/// Per-test watchdog limit: a released hand-off takes microseconds, a
/// forgotten one forever.
const LIMIT: Duration = Duration::from_secs(30);

/// What `SelectedOperation`'s `Drop` says when a selection is dropped.
const DROP_MESSAGE: &str = "dropped `SelectedOperation` without completing the operation";

/// The payload of the test's own panic between `select` and `send`.
const PANIC_MESSAGE: &str = "panicking between select and send, on purpose";

/// How the selecting thread abandons its chosen send.
#[derive(Clone, Copy, Debug)]
enum Abandon {
    /// `drop(selected_operation)`.
    Drop,
    /// A panic while the selected operation is alive.
    Panic,
}

/// Selects a send on `s` (blocking until a receiver is there) and abandons
/// it the way `how` says; checks the panic that ends it.
fn select_send_and_abandon(s: &Sender<u32>, how: Abandon) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut sel = Select::new();
        sel.send(s);
        let selected = sel.select();
        match how {
            Abandon::Drop => drop(selected),
            Abandon::Panic => panic!("{PANIC_MESSAGE}"),
        }
    }));
    let payload = result.expect_err("abandoning a selected send panics");
    let expected = match how {
        Abandon::Drop => DROP_MESSAGE,
        Abandon::Panic => PANIC_MESSAGE,
    };
    assert_eq!(payload_text(&*payload), expected, "{how:?}");
}

/// Blocks until a receiver waits on `s`'s channel, without pairing with it.
fn until_a_receiver_waits(s: &Sender<u32>) {
    let mut sel = Select::new();
    sel.send(s);
    sel.ready();
}

/// Blocks until a sender (here: a select's send) waits on `r`'s channel.
fn until_a_sender_waits(r: &Receiver<u32>) {
    let mut sel = Select::new();
    sel.recv(r);
    sel.ready();
}

/// A receiver blocks in `recv`; a select then takes it as its counterpart
/// and abandons the send. The receiver must still get the next message.
fn waiting_receiver(
    how: Abandon,
    spawn_receiver: impl FnOnce(Receiver<u32>) -> Box<dyn FnOnce() -> u32>,
) {
    let (s, r) = bounded::<u32>(0);
    let receiver = spawn_receiver(r);
    until_a_receiver_waits(&s);
    select_send_and_abandon(&s, how);
    s.send(7).expect("the receiver is still there");
    assert_eq!(receiver(), 7, "{how:?}");
}

/// A select blocks with its send registered; a receiver takes it as its
/// counterpart, and the select abandons the send. A `try_recv` must then
/// report `Empty`, a blocking `recv` must get the next message.
fn registered_select(how: Abandon, blocking: bool, spawn: impl FnOnce(Box<dyn FnOnce() + Send>)) {
    let (s, r) = bounded::<u32>(0);
    let abandoned = Arc::new(AtomicBool::new(false));
    let done = abandoned.clone();
    // The selector hands its sender back at the end, so the channel stays
    // connected while the receiver looks.
    let (finished_tx, finished) = bounded::<Sender<u32>>(1);
    spawn(Box::new(move || {
        select_send_and_abandon(&s, how);
        done.store(true, Ordering::SeqCst);
        if blocking {
            s.send(9).expect("the receiver is still there");
        }
        finished_tx.send(s).unwrap();
    }));
    if blocking {
        until_a_sender_waits(&r);
        assert_eq!(r.recv(), Ok(9), "{how:?}");
    } else {
        // Before the select registers, `try_recv` finds nobody; once it
        // has, a `try_recv` pairs with it and must come back `Empty` after
        // the select abandons the send.
        while !abandoned.load(Ordering::SeqCst) {
            match r.try_recv() {
                Err(TryRecvError::Empty) => spool::thread::yield_now(),
                other => panic!("{how:?}: try_recv answered {other:?}"),
            }
        }
    }
    finished.recv().unwrap();
}

fn os_thread_receiver(r: Receiver<u32>) -> Box<dyn FnOnce() -> u32> {
    let h = std::thread::spawn(move || r.recv().unwrap());
    Box::new(move || h.join().unwrap())
}

fn green_thread_receiver(r: Receiver<u32>) -> Box<dyn FnOnce() -> u32> {
    let h = spool::thread::spawn(move || r.recv().unwrap());
    Box::new(move || h.join().unwrap())
}

fn os_thread_selector(f: Box<dyn FnOnce() + Send>) {
    std::thread::spawn(f);
}

fn green_thread_selector(f: Box<dyn FnOnce() + Send>) {
    spool::thread::spawn(f);
}

#[test]
fn waiting_receiver_survives_a_dropped_selection() {
    let _watchdog = Watchdog::new("waiting_receiver_survives_a_dropped_selection", LIMIT);
    waiting_receiver(Abandon::Drop, green_thread_receiver);
    waiting_receiver(Abandon::Drop, os_thread_receiver);
}

#[test]
fn waiting_receiver_survives_a_panic_before_send() {
    let _watchdog = Watchdog::new("waiting_receiver_survives_a_panic_before_send", LIMIT);
    waiting_receiver(Abandon::Panic, green_thread_receiver);
    waiting_receiver(Abandon::Panic, os_thread_receiver);
}

#[test]
fn registered_select_dropped_try_recv_returns_empty() {
    let _watchdog = Watchdog::new("registered_select_dropped_try_recv_returns_empty", LIMIT);
    registered_select(Abandon::Drop, false, os_thread_selector);
}

#[test]
fn registered_select_panicking_try_recv_returns_empty() {
    let _watchdog = Watchdog::new("registered_select_panicking_try_recv_returns_empty", LIMIT);
    registered_select(Abandon::Panic, false, os_thread_selector);
}

#[test]
fn registered_select_dropped_recv_gets_the_next_message() {
    let _watchdog = Watchdog::new(
        "registered_select_dropped_recv_gets_the_next_message",
        LIMIT,
    );
    registered_select(Abandon::Drop, true, os_thread_selector);
}

#[test]
fn registered_select_panicking_recv_gets_the_next_message() {
    let _watchdog = Watchdog::new(
        "registered_select_panicking_recv_gets_the_next_message",
        LIMIT,
    );
    registered_select(Abandon::Panic, true, os_thread_selector);
}

/// The scenarios above with green threads selecting (and receiving), whose
/// panic messages go to the child's stderr rather than the harness.
#[test]
fn green_selectors_release_their_hand_off() {
    let _watchdog = Watchdog::new("green_selectors_release_their_hand_off", LIMIT);
    let out = run_child("child_green_selectors", &[]);
    // A filter that matched nothing would also exit successfully.
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "child failed ({:?}):\n{}",
        out.status,
        out.stderr
    );
    for message in [DROP_MESSAGE, PANIC_MESSAGE] {
        assert!(
            out.stderr.contains(message),
            "the child's stderr lacks {message:?}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn child_green_selectors() {
    if !is_child("child_green_selectors") {
        return;
    }
    let _watchdog = Watchdog::new("child_green_selectors", LIMIT);
    spool::run(|| {
        for how in [Abandon::Drop, Abandon::Panic] {
            // The select, and its waiting receiver, are green threads.
            let (s, r) = bounded::<u32>(0);
            let receiver = green_thread_receiver(r);
            spool::thread::spawn(move || {
                until_a_receiver_waits(&s);
                select_send_and_abandon(&s, how);
                s.send(7).unwrap();
            });
            assert_eq!(receiver(), 7);
            for blocking in [false, true] {
                registered_select(how, blocking, green_thread_selector);
            }
        }
    });
}
