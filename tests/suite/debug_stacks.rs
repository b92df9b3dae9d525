//! `spool::debug::dump_with_stacks`: a switched-out green thread is resumed
//! in trace mode to capture its stack and goes back to its wait untouched,
//! so traced threads lose no wakeup and behave as if never traced.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spool::thread;
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(60);

#[inline(never)]
fn park_deep_inside(depth: u32, stop: &AtomicBool) {
    if depth == 0 {
        while !stop.load(Ordering::Acquire) {
            thread::park();
        }
    } else {
        park_deep_inside(depth - 1, stop);
        std::hint::black_box(depth);
    }
}

/// Waits until `n` threads of the dump are switched out in a wait.
fn until_waiting(name: &str, n: usize) {
    while spool::debug::dump()
        .threads()
        .filter(|t| t.name() == Some(name) && t.is_waiting())
        .count()
        < n
    {
        thread::sleep(Duration::from_millis(2));
    }
}

rt_test! {
    fn a_traced_thread_shows_its_own_frames_and_runs_on() {
        let stop = Arc::new(AtomicBool::new(false));
        let parked = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("deep".into())
                .spawn(move || park_deep_inside(3, &stop))
                .unwrap()
        };
        until_waiting("deep", 1);
        let dump = spool::debug::dump_with_stacks();
        let me = dump.threads().find(|t| t.name() == Some("deep")).unwrap();
        let frames = me.stack().expect("a stack was captured");
        let deep = frames.iter().filter(|f| f.contains("park_deep_inside")).count();
        assert_eq!(deep, 4, "one frame per level: {frames:#?}");
        // The text shows the frames under the thread.
        assert!(dump.to_string().contains("park_deep_inside"));
        // Traced, it still wakes on its unpark and finishes.
        stop.store(true, Ordering::Release);
        parked.thread().unpark();
        parked.join().unwrap();
    }

    fn unparks_racing_traces_are_never_lost() {
        // Each round: a thread parks until a flag is set; the flag is set
        // and the thread unparked while dumps with stacks resume it in
        // trace mode. A lost unpark hangs (the watchdog names the test).
        for _ in 0..20 {
            let stop = Arc::new(AtomicBool::new(false));
            let parked = {
                let stop = stop.clone();
                thread::Builder::new()
                    .name("racer".into())
                    .spawn(move || park_deep_inside(1, &stop))
                    .unwrap()
            };
            let tracer = thread::spawn(|| {
                for _ in 0..3 {
                    drop(spool::debug::dump_with_stacks());
                }
            });
            thread::yield_now();
            stop.store(true, Ordering::Release);
            parked.thread().unpark();
            parked.join().unwrap();
            tracer.join().unwrap();
        }
    }

    fn messages_keep_flowing_while_threads_are_traced() {
        let (tx, rx) = spool::sync::mpmc::bounded::<u32>(0);
        let received = Arc::new(AtomicUsize::new(0));
        let consumers: Vec<_> = (0..8)
            .map(|_| {
                let (rx, received) = (rx.clone(), received.clone());
                thread::spawn(move || {
                    for _ in rx.iter() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        drop(rx);
        let tracer = thread::spawn(|| {
            for _ in 0..10 {
                drop(spool::debug::dump_with_stacks());
                thread::sleep(Duration::from_millis(1));
            }
        });
        for i in 0..2_000 {
            tx.send(i).unwrap();
        }
        drop(tx);
        consumers.into_iter().for_each(|c| c.join().unwrap());
        tracer.join().unwrap();
        assert_eq!(received.load(Ordering::Relaxed), 2_000);
    }

    fn a_thread_with_too_little_stack_is_not_traced() {
        let stop = Arc::new(AtomicBool::new(false));
        let small = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("small".into())
                .stack_size(32 * 1024)
                .spawn(move || park_deep_inside(0, &stop))
                .unwrap()
        };
        until_waiting("small", 1);
        let dump = spool::debug::dump_with_stacks();
        let me = dump.threads().find(|t| t.name() == Some("small")).unwrap();
        let frames = me.stack().expect("a stack entry");
        assert_eq!(frames.len(), 1);
        assert!(frames[0].contains("less than 64 KiB"), "{frames:?}");
        stop.store(true, Ordering::Release);
        small.thread().unpark();
        small.join().unwrap();
    }
}
