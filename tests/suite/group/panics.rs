//! Panics in a group (resumed in the caller once every child has
//! finished), supervisor groups (`fail_fast(false)`), and
//! `spool::thread::scope`, which keeps std's behaviour: no fail-fast.

use super::*;

/// Runs `f`, which must panic, and returns the payload.
#[track_caller]
fn panic_of<T>(f: impl FnOnce() -> T) -> Box<dyn std::any::Any + Send> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => payload,
    }
}

group_tests! {
    // -- panics ---------------------------------------------------------------------------

    fn a_child_panic_is_resumed_with_its_payload_after_every_sibling_finished() {
        let seen = &Seen::default();
        let dropped = AtomicUsize::new(0);
        let (_tx, rx) = mpsc::channel::<u32>();
        let payload = panic_of(|| {
            spool::group(|g| -> Result<(), ()> {
                for _ in 0..3 {
                    let guard = CountOnDrop(&dropped);
                    g.spawn(move || {
                        let _guard = guard;
                        seen.until_cancelled(|| thread::sleep(LONG))
                    });
                }
                g.spawn_named("panicker", || -> Result<(), ()> {
                    seen.wait_entered(4);
                    panic!("a child panics on purpose")
                });
                seen.until_cancelled(|| rx.recv())
            })
        });
        assert_eq!(payload_text(&*payload), "a child panics on purpose");
        assert_eq!(dropped.load(Ordering::SeqCst), 3, "the panic resumed before every sibling finished");
        seen.assert(4, CancelReason::SiblingFailed);

        // Any payload, as it was.
        let payload = panic_of(|| {
            spool::group(|g| {
                g.spawn(|| -> Result<(), ()> { std::panic::panic_any(Marker(7)) });
                Ok(())
            })
        });
        assert_eq!(payload.downcast_ref::<Marker>(), Some(&Marker(7)));
    }

    fn a_panic_before_ready_is_resumed_from_start_and_race() {
        let seen = &Seen::default();
        let (_tx, rx) = mpsc::channel::<u32>();
        let payload = panic_of(|| {
            spool::group(|g| -> Result<(), ()> {
                g.spawn(|| seen.until_cancelled(|| rx.recv()));
                let _ = g.start(|_: spool::group::Started<u16>| -> Result<(), ()> {
                    panic!("a server panics on purpose before it is ready")
                });
                Ok(())
            })
        });
        assert_eq!(payload_text(&*payload), "a server panics on purpose before it is ready");
        seen.assert_every(0, CancelReason::SiblingFailed);
        let payload = panic_of(|| {
            spool::group::race([0, 1].map(|i| {
                move || -> Result<(), ()> {
                    if i == 0 {
                        panic!("a racer panics on purpose");
                    }
                    thread::sleep(LONG);
                    Ok(())
                }
            }))
        });
        assert_eq!(payload_text(&*payload), "a racer panics on purpose");
    }

    fn joining_a_panicked_child_says_so_and_the_panic_still_resumes() {
        let payload = panic_of(|| {
            spool::group(|g| {
                let child = g.spawn_named("panicker", || -> Result<(), ()> {
                    panic!("a joined child panics on purpose")
                });
                let joined = child.join().unwrap_err();
                assert!(joined.is_panic() && !joined.is_cancelled(), "{joined}");
                assert_eq!(joined.thread_name(), Some("panicker"));
                Ok(())
            })
        });
        assert_eq!(payload_text(&*payload), "a joined child panics on purpose");
    }

    fn a_second_panic_does_not_replace_the_first() {
        let (_tx, rx) = mpsc::channel::<u32>();
        let payload = panic_of(|| {
            spool::group(|g| -> Result<(), ()> {
                g.spawn(|| -> Result<(), ()> {
                    // Cancelled by the first panic, then panics itself.
                    let _ = catch_unwind(|| thread::sleep(LONG));
                    panic!("a second panic on purpose, in a child")
                });
                g.spawn(|| -> Result<(), ()> {
                    thread::sleep(SETTLE);
                    panic!("the first panic on purpose")
                });
                let _ = catch_unwind(AssertUnwindSafe(|| rx.recv()));
                panic!("a second panic on purpose, in the body")
            })
        });
        assert_eq!(payload_text(&*payload), "the first panic on purpose");
    }

    fn a_panic_is_resumed_even_after_a_failure() {
        let seen = &Seen::default();
        let payload = panic_of(|| {
            spool::group(|g| {
                g.spawn(|| -> Result<(), _> {
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        seen.until_cancelled::<_, ()>(|| thread::sleep(LONG))
                    }));
                    panic!("a panic on purpose after the failure")
                });
                g.spawn(|| {
                    seen.wait_entered(1);
                    Err::<(), _>("boom")
                });
                Ok(())
            })
        });
        assert_eq!(payload_text(&*payload), "a panic on purpose after the failure");
    }

    fn the_bodys_panic_cancels_the_children_and_is_resumed_after_them() {
        let seen = &Seen::default();
        let dropped = AtomicUsize::new(0);
        let payload = panic_of(|| {
            spool::group(|g| -> Result<(), ()> {
                for _ in 0..3 {
                    let guard = CountOnDrop(&dropped);
                    g.spawn(move || {
                        let _guard = guard;
                        seen.until_cancelled(|| thread::sleep(LONG))
                    });
                }
                seen.wait_entered(3);
                panic!("the body panics on purpose")
            })
        });
        assert_eq!(payload_text(&*payload), "the body panics on purpose");
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
        seen.assert(3, CancelReason::SiblingFailed);
    }

    // -- supervisors: fail_fast(false) ------------------------------------------------------

    fn a_supervisor_collects_every_error_and_cancels_nothing() {
        let finished = AtomicUsize::new(0);
        let err = Builder::new()
            .fail_fast(false)
            .run(|g| {
                for i in 0..8u64 {
                    let finished = &finished;
                    g.spawn(move || {
                        thread::sleep(Duration::from_millis(i));
                        finished.fetch_add(1, Ordering::SeqCst);
                        Err::<(), _>(i)
                    });
                }
                for _ in 0..4 {
                    g.spawn(|| {
                        thread::sleep(SHORT);
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    });
                }
                // A cancellation point: the failures do not cancel the body.
                thread::sleep(SETTLE);
                Err::<(), _>(100)
            })
            .unwrap_err();
        assert_eq!(finished.load(Ordering::SeqCst), 12, "a supervisor cancelled a child");
        assert_eq!(err.len(), 9);
        let mut errors: Vec<u64> = err.iter().map(|f| *f.error()).collect();
        errors.sort();
        assert_eq!(errors, [0, 1, 2, 3, 4, 5, 6, 7, 100]);
        assert_eq!(err.iter().filter(|f| f.is_body()).count(), 1);
        assert!(err.to_string().contains("9 failures"), "{err}");
    }

    fn a_panic_still_cancels_a_supervisor() {
        let seen = &Seen::default();
        let payload = panic_of(|| {
            Builder::new().fail_fast(false).run(|g| -> Result<(), ()> {
                g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                g.spawn(|| -> Result<(), ()> {
                    seen.wait_entered(2);
                    panic!("a supervised child panics on purpose")
                });
                seen.until_cancelled(park_forever)
            })
        });
        assert_eq!(payload_text(&*payload), "a supervised child panics on purpose");
        seen.assert(2, CancelReason::SiblingFailed);
    }

    // -- thread::scope: std's behaviour -------------------------------------------------------

    fn a_scoped_childs_panic_cancels_no_sibling() {
        // The sibling is blocked when the panic happens, and gets its
        // message after: `thread::scope` has no fail-fast.
        let (tx, rx) = mpsc::channel::<u32>();
        let got = AtomicUsize::new(0);
        let payload = panic_of(|| {
            thread::scope(|s| {
                let panicker = s.spawn(|| panic!("a scoped child panics on purpose"));
                let got = &got;
                s.spawn(move || {
                    got.store(rx.recv().unwrap() as usize, Ordering::SeqCst);
                    assert!(!cancel::is_cancelled());
                });
                while !panicker.is_finished() {
                    thread::sleep(Duration::from_millis(1));
                }
                tx.send(7).unwrap();
            })
        });
        assert_eq!(payload_text(&*payload), "a scoped thread panicked");
        assert_eq!(got.load(Ordering::SeqCst), 7);
    }
}
