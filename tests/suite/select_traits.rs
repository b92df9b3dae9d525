//! The auto traits of `Select`, `SelectedOperation` and the channel
//! handles, as crossbeam-channel (and std, for `mpsc`) has them, and every
//! form of arm crossbeam-channel's `select!` accepts.
//!
//! Auto traits: `Select` is `Send + Sync` whatever its channels carry (so a
//! select built here can run on a scoped thread), `SelectedOperation` is
//! unwind-safe but neither `Send` nor `Sync`, and the handles are
//! `UnwindSafe + RefUnwindSafe` whatever their message type, so a channel
//! of `Cell`s can be used inside `catch_unwind` without
//! `AssertUnwindSafe`. The compile-time checks are the `assert_*` calls:
//! without the impls this file does not compile. The negative half (a
//! `SelectedOperation` cannot cross threads) is a `compile_fail` example
//! in `SelectedOperation`'s documentation.

use crate::common;

use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, RefUnwindSafe, UnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use spool::sync::mpmc::{self, bounded, select, select_biased, unbounded, Select};
use spool::sync::{mpsc, oneshot};
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(60);

fn assert_send_sync<T: Send + Sync>() {}
fn assert_unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

/// Not `Send`, not `Sync`, not unwind-safe: the hardest message type.
type Hostile = Rc<UnsafeCell<i32>>;

#[test]
fn select_is_send_and_sync_whatever_the_messages() {
    assert_send_sync::<Select<'static>>();
    // The operations of a select over channels of `!Send` messages.
    fn over<'a>(r: &'a mpmc::Receiver<Hostile>, s: &'a mpmc::Sender<Hostile>) -> Select<'a> {
        let mut sel = Select::new();
        sel.recv(r);
        sel.send(s);
        sel
    }
    fn assert_value_send_sync<T: Send + Sync>(_: &T) {}
    let (s, r) = unbounded::<Hostile>();
    assert_value_send_sync(&over(&r, &s));
}

#[test]
fn handles_are_unwind_safe_whatever_the_messages() {
    assert_unwind_safe::<mpmc::Sender<Hostile>>();
    assert_unwind_safe::<mpmc::Receiver<Hostile>>();
    assert_unwind_safe::<mpmc::Iter<'static, Hostile>>();
    assert_unwind_safe::<mpmc::TryIter<'static, Hostile>>();
    assert_unwind_safe::<mpmc::IntoIter<Hostile>>();
    assert_unwind_safe::<mpsc::Sender<Hostile>>();
    assert_unwind_safe::<mpsc::SyncSender<Hostile>>();
    assert_unwind_safe::<mpsc::Receiver<Hostile>>();
    assert_unwind_safe::<mpsc::Iter<'static, Hostile>>();
    assert_unwind_safe::<mpsc::TryIter<'static, Hostile>>();
    assert_unwind_safe::<mpsc::IntoIter<Hostile>>();
    assert_unwind_safe::<oneshot::Sender<Hostile>>();
    assert_unwind_safe::<oneshot::Receiver<Hostile>>();
    assert_unwind_safe::<mpmc::SelectedOperation<'static>>();
}

#[test]
fn channel_of_cells_crosses_catch_unwind() {
    let _watchdog = common::Watchdog::new("channel_of_cells_crosses_catch_unwind", LIMIT);
    let (s, r) = bounded::<Cell<i32>>(4);
    let (ms, mr) = mpsc::channel::<UnsafeCell<i32>>();
    // No `AssertUnwindSafe`: the closure borrows the handles.
    let got = catch_unwind(|| {
        s.send(Cell::new(7)).unwrap();
        ms.send(UnsafeCell::new(8)).unwrap();
        let a = r.recv().unwrap().get();
        let b = mr.recv().unwrap().into_inner();
        a + b
    });
    assert_eq!(got.ok(), Some(15));
    // And by value.
    let moved = catch_unwind(move || {
        s.send(Cell::new(1)).unwrap();
        r.try_recv().unwrap().get()
    });
    assert_eq!(moved.ok(), Some(1));
}

/// Runs `body` on a plain OS thread and as a green thread of a two-worker
/// runtime.
fn both(name: &'static str, body: fn()) {
    let _watchdog = common::Watchdog::new(name, LIMIT);
    body();
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(body);
}

/// A select built here, moved into a scoped thread and run there, with
/// the message taken on the thread that owns the receiver.
fn moved_select_body() {
    let (s1, r1) = unbounded::<u32>();
    let (s2, r2) = bounded::<u32>(0);
    let mut sel = Select::new();
    let i1 = sel.recv(&r1);
    let i2 = sel.recv(&r2);
    let r1 = &r1;
    std::thread::scope(|scope| {
        let picker = scope.spawn(move || {
            let oper = sel.select();
            let index = oper.index();
            assert_eq!(index, i1, "only r1 gets a message");
            oper.recv(r1).unwrap()
        });
        s1.send(41).unwrap();
        assert_eq!(picker.join().unwrap(), 41);
    });
    drop((s2, r2, i2));

    // The same with spool's scoped green threads, and a send operation.
    let (s, r) = bounded::<u32>(1);
    let mut sel = Select::new();
    sel.send(&s);
    let s = &s;
    spool::thread::scope(|scope| {
        scope.spawn(move || sel.select().send(s, 5).unwrap());
    });
    assert_eq!(r.recv(), Ok(5));
}

#[test]
fn select_moved_into_scoped_threads() {
    both("select_moved_into_scoped_threads", moved_select_body);
}

/// One select shared by reference between scoped threads, each selecting
/// with its own copy (`Clone` works through `&Select`).
fn shared_select_body() {
    const PER: u32 = 200;
    let (s1, r1) = unbounded::<u32>();
    let (s2, r2) = unbounded::<u32>();
    let mut sel = Select::new();
    sel.recv(&r1);
    sel.recv(&r2);
    let sel = &sel;
    let (r1, r2) = (&r1, &r2);
    let total: u32 = std::thread::scope(|scope| {
        let pickers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = sel.clone();
                    let mut sum = 0;
                    for _ in 0..PER {
                        let oper = mine.select();
                        sum += match oper.index() {
                            0 => oper.recv(r1).unwrap(),
                            _ => oper.recv(r2).unwrap(),
                        };
                    }
                    sum
                })
            })
            .collect();
        for i in 0..PER {
            s1.send(i).unwrap();
            s2.send(i).unwrap();
        }
        pickers.into_iter().map(|p| p.join().unwrap()).sum()
    });
    assert_eq!(total, 2 * (0..PER).sum::<u32>());
}

#[test]
fn select_shared_between_scoped_threads() {
    both("select_shared_between_scoped_threads", shared_select_body);
}

/// A select over a channel of `Rc`s, run on another thread, takes the
/// message there; it can neither hand it out nor drop it there, so
/// dropping the selection leaks it (no reference count is touched on the
/// wrong thread) and the `Rc` stays valid here.
#[test]
fn select_over_rc_run_elsewhere_leaks_rather_than_drops() {
    let _watchdog = common::Watchdog::new("select_over_rc_run_elsewhere", LIMIT);
    let (s, r) = unbounded::<Rc<i32>>();
    let rc = Rc::new(3);
    s.send(rc.clone()).unwrap();
    let mut sel = Select::new();
    sel.recv(&r);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let oper = sel.select();
            // Completing needs `&r` on this thread, which does not compile
            // for `Rc` messages; dropping the selection panics.
            let dropped = catch_unwind(std::panic::AssertUnwindSafe(|| drop(oper)));
            assert!(dropped.is_err());
        });
    });
    // The count still includes the leaked clone.
    assert_eq!(Rc::strong_count(&rc), 2);
}

/// Every arm form of crossbeam-channel's `select!`.
fn forms_body() {
    let (s, r) = unbounded::<i32>();
    let (_keep, idle) = unbounded::<i32>();
    let ms = Duration::from_millis;

    // recv: with and without a trailing comma in its arguments; an
    // expression body with a comma, a block with and without one; the
    // last arm with and without a comma.
    s.send(1).unwrap();
    let v = select! { recv(r) -> m => m.unwrap() };
    assert_eq!(v, 1);
    s.send(2).unwrap();
    let v = select! { recv(r,) -> m => m.unwrap(), };
    assert_eq!(v, 2);
    s.send(3).unwrap();
    let v = select! {
        recv(idle) -> _ => unreachable!(),
        recv(r,) -> m => { m.unwrap() }
    };
    assert_eq!(v, 3);
    s.send(4).unwrap();
    let v = select! {
        recv(idle) -> _ => { unreachable!() }
        recv(r) -> m => { m.unwrap() },
    };
    assert_eq!(v, 4);
    // A block followed by more expression is an expression body.
    s.send(5).unwrap();
    let v = select! {
        recv(r) -> m => { m.unwrap() } + 10,
        recv(idle) -> _ => unreachable!()
    };
    assert_eq!(v, 15);

    // send: with and without a trailing comma in its arguments.
    let v = select! { send(s, 6) -> res => res.map(|()| 6).unwrap() };
    assert_eq!(v, 6);
    select! { send(s, 7,) -> res => res.unwrap(), }
    assert_eq!((r.recv(), r.recv()), (Ok(6), Ok(7)));

    // Patterns: wildcards, or-patterns, bindings.
    s.send(8).unwrap();
    select! {
        recv(r) -> Ok(_) | Err(_) => {}
        recv(idle) -> _ => unreachable!(),
    }

    // default, in every spelling, first, in the middle or last.
    let v = select! { recv(idle) -> _ => 0, default => 1 };
    assert_eq!(v, 1);
    let v = select! { recv(idle) -> _ => 0, default => { 2 } };
    assert_eq!(v, 2);
    let v = select! { default() => 3, recv(idle) -> _ => 0, };
    assert_eq!(v, 3);
    let v = select! { recv(idle) -> _ => 0, default() => { 4 }, };
    assert_eq!(v, 4);
    let start = Instant::now();
    let v = select! {
        recv(idle) -> _ => 0,
        default(ms(5)) => 5,
        recv(idle) -> _ => 0,
    };
    assert_eq!(v, 5);
    assert!(start.elapsed() >= ms(5));
    let v = select! { recv(idle) -> _ => 0, default(ms(1),) => 6 };
    assert_eq!(v, 6);
    let v = select! { recv(idle) -> _ => 0, default(ms(1),) => { 7 } };
    assert_eq!(v, 7);
    // A default alone.
    let v = select! { default => 8 };
    assert_eq!(v, 8);
    let v = select! { default(ms(1)) => 9, };
    assert_eq!(v, 9);
    // A default that loses to a ready operation.
    s.send(10).unwrap();
    let v = select! { recv(r) -> m => m.unwrap(), default => 0 };
    assert_eq!(v, 10);

    // The biased form takes the same grammar.
    s.send(11).unwrap();
    let v = select_biased! { recv(r,) -> m => m.unwrap(), default(ms(1),) => 0, };
    assert_eq!(v, 11);
    let v = select_biased! { send(s, 12,) -> res => { res.unwrap(); 12 } default => 0 };
    assert_eq!((v, r.recv()), (12, Ok(12)));
}

#[test]
fn select_macro_accepts_every_crossbeam_form() {
    both("select_macro_accepts_every_crossbeam_form", forms_body);
}
