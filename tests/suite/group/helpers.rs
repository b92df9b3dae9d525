//! The builder's limit, and the helpers: `all`, `race` and `Group::start`.

use super::*;

use std::io::{Read, Write};
use std::net::SocketAddr;

use spool::group::{all, race, Started};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

group_tests! {
    // -- limit --------------------------------------------------------------------------

    fn limit_two_never_runs_three_children_at_once() {
        let (running, most, done) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
        Builder::new()
            .limit(2)
            .run(|g| {
                for i in 0..50 {
                    let (running, most, done) = (&running, &most, &done);
                    g.spawn(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        if i % 2 == 0 {
                            thread::sleep(ms(1));
                        } else {
                            thread::yield_now();
                        }
                        running.fetch_sub(1, Ordering::SeqCst);
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, ()>(())
                    });
                }
                Ok(())
            })
            .unwrap();
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} children ran at once under limit(2)");
        assert_eq!(done.load(Ordering::SeqCst), 50);
    }

    fn limit_zero_panics_naming_limit() {
        let payload = catch_unwind(|| Builder::new().limit(0)).unwrap_err();
        let text = payload_text(&*payload);
        assert!(text.contains("Builder::limit(0)") && text.contains("limit(1)"), "{text}");
    }

    fn a_spawn_waiting_for_a_slot_is_a_cancellation_point() {
        let seen = &Seen::default();
        let (ran, ran_after) = (AtomicBool::new(false), AtomicBool::new(false));
        Builder::new()
            .limit(1)
            .run(|g| {
                let sleeper = g.spawn(|| seen.until_cancelled(|| thread::sleep(LONG)));
                // The sleeper holds the only slot: the spawn waits, until
                // the timeout around it.
                let waited = timeout(SHORT, || {
                    g.spawn(|| {
                        ran.store(true, Ordering::SeqCst);
                        Ok(())
                    })
                });
                assert!(waited.is_err(), "the spawn waiting for a slot returned");
                assert!(!cancel::is_cancelled(), "the timeout around a spawn cancelled the group");
                // The cancelled spawn took no slot with it.
                sleeper.cancel();
                g.spawn(|| {
                    ran_after.store(true, Ordering::SeqCst);
                    Ok(())
                });
                Ok::<_, ()>(())
            })
            .unwrap();
        assert!(!ran.load(Ordering::SeqCst), "the child of a cancelled spawn ran");
        assert!(ran_after.load(Ordering::SeqCst));
        seen.assert(1, CancelReason::Requested(None));
    }

    fn a_failure_ends_a_spawn_waiting_for_a_slot() {
        let ran = AtomicBool::new(false);
        let err = Builder::new()
            .limit(1)
            .run(|g| {
                g.spawn(|| {
                    thread::sleep(SETTLE);
                    Err::<(), _>("full")
                });
                g.spawn(|| {
                    ran.store(true, Ordering::SeqCst);
                    Ok(())
                });
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err.into_first(), Some("full"));
        // Whether the spawn returned (the slot came free with the failure)
        // or unwound, the child never ran in the cancelled group.
        assert!(!ran.load(Ordering::SeqCst));
    }

    // -- race -----------------------------------------------------------------------------

    fn race_returns_the_fastest_and_runs_the_losers_destructors() {
        let dropped = AtomicUsize::new(0);
        let jobs: Vec<_> = (0..5u32)
            .map(|i| {
                // Moved in: dropped whether the loser was cancelled while
                // running or never started.
                let guard = (i != 3).then(|| CountOnDrop(&dropped));
                move || {
                    let _guard = guard;
                    if i != 3 {
                        thread::sleep(LONG);
                    }
                    Ok::<_, ()>(i)
                }
            })
            .collect();
        assert_eq!(race(jobs).unwrap(), 3);
        assert_eq!(dropped.load(Ordering::SeqCst), 4, "a loser's destructors did not run");
    }

    fn race_a_failure_does_not_stop_a_later_success() {
        let winner = race([0u64, 1, 2].map(|i| {
            move || {
                if i == 2 {
                    thread::sleep(SETTLE);
                    Ok(i)
                } else {
                    Err(i)
                }
            }
        }));
        assert_eq!(winner.unwrap(), 2);
    }

    fn race_where_every_job_fails_keeps_every_failure() {
        let err = race((0..3u64).map(|i| {
            move || {
                thread::sleep(ms(i));
                Err::<(), _>(format!("job {i} failed"))
            }
        }))
        .unwrap_err();
        assert_eq!(err.len(), 3);
        let mut errors: Vec<&str> = err.iter().map(|f| f.error().as_str()).collect();
        errors.sort();
        assert_eq!(errors, ["job 0 failed", "job 1 failed", "job 2 failed"]);
        assert_eq!(err.group_name(), Some("race"));
        assert!(err.to_string().contains("failed"), "{err}");
    }

    fn race_of_no_jobs_is_an_error() {
        let err = race(Vec::<fn() -> Result<(), String>>::new()).unwrap_err();
        assert!(err.is_empty() && err.first().is_none());
        assert!(err.to_string().contains("no jobs"), "{err}");
    }

    // -- all --------------------------------------------------------------------------------

    fn all_returns_results_in_input_order() {
        let words = ["alpha", "be", "gamma", "d", "epsilon", "zeta"];
        // The later jobs finish first.
        let lens = all(words.iter().enumerate().map(|(i, w)| {
            move || {
                thread::sleep(ms(6 - i as u64));
                Ok::<_, ()>(w.len())
            }
        }))
        .unwrap();
        assert_eq!(lens, [5, 2, 5, 1, 7, 4]);
        assert_eq!(all(Vec::<fn() -> Result<u8, ()>>::new()).unwrap(), Vec::<u8>::new());
    }

    fn all_with_a_failure_is_the_groups_error() {
        let seen = &Seen::default();
        let err = all((0..5).map(|i| {
            move || {
                if i == 3 {
                    seen.wait_entered(4);
                    Err(format!("job {i} failed"))
                } else {
                    seen.until_cancelled(|| thread::sleep(LONG))
                }
            }
        }))
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err.into_first().as_deref(), Some("job 3 failed"));
        // Jobs that never started saw nothing; the others were cancelled.
        let reasons = seen.reasons();
        assert!(reasons.len() <= 4 && reasons.iter().all(|r| *r == CancelReason::SiblingFailed), "{reasons:?}");
    }

    // -- start ------------------------------------------------------------------------------

    fn start_returns_the_bound_address_of_a_listener() {
        let reply = spool::group(|g| {
            let (addr, server) = g
                .start(|started| -> io::Result<SocketAddr> {
                    let listener = TcpListener::bind("127.0.0.1:0")?;
                    started.ready(listener.local_addr()?);
                    let (mut conn, peer) = listener.accept()?;
                    conn.write_all(b"hello")?;
                    Ok(peer)
                })
                .expect("the server started");
            let mut client = TcpStream::connect(addr)?;
            let mut reply = String::new();
            client.read_to_string(&mut reply)?;
            assert_eq!(server.join().unwrap(), client.local_addr()?);
            Ok(reply)
        })
        .unwrap();
        assert_eq!(reply, "hello");
    }

    fn start_of_a_child_that_ends_before_ready_is_not_ready() {
        let ended = AtomicBool::new(false);
        spool::group(|g| {
            let joined = g.start(|_: Started<u16>| Ok::<_, ()>(5)).unwrap_err();
            assert!(joined.is_not_ready(), "{joined}");
            // Dropping `Started` is not the end: `start` waits for the child.
            let joined = g
                .start(|started: Started<u16>| {
                    drop(started);
                    thread::sleep(SETTLE);
                    ended.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap_err();
            assert!(joined.is_not_ready(), "{joined}");
            assert!(ended.load(Ordering::SeqCst));
            Ok(())
        })
        .unwrap();
    }

    fn start_of_a_child_that_fails_before_ready_reports_its_failure() {
        // A supervisor: `start` returns the failure.
        let err = Builder::new()
            .fail_fast(false)
            .run(|g| {
                let joined = g.start(|_: Started<u16>| Err::<(), _>("cannot bind")).unwrap_err();
                assert!(joined.is_failed(), "{joined}");
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.into_first(), Some("cannot bind"));
        // Fail-fast: the failure cancels the body waiting in `start` (or,
        // if the child ended first, `start` returns it); either way it is
        // the group's error.
        let err = spool::group(|g| {
            let joined = g.start(|_: Started<u16>| Err::<(), _>("cannot bind")).unwrap_err();
            assert!(joined.is_failed(), "{joined}");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err.into_first(), Some("cannot bind"));
    }
}
