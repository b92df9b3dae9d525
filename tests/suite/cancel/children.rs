//! The cancellation tests that need a process of their own (see the top of
//! `cancel.rs`): nothing is printed for a cancellation (the child's stderr
//! is checked), a scope run twice at once panics saying why (the panics
//! are silenced in the child), and scopes in thread-local destructors.

use super::*;

fn describe(out: &ChildOutput) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

#[track_caller]
fn assert_child_passes(test: &str) -> ChildOutput {
    let out = run_child(test, &[]);
    assert!(
        out.status.success() && out.stdout.contains(CHILD_PASSED),
        "child `{test}` failed:\n{}",
        describe(&out)
    );
    out
}

/// Runs `body` green on a one-worker and a two-worker runtime and on the
/// calling OS thread.
fn in_every_configuration(body: fn()) {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(body);
    }
    body();
}

#[test]
fn nothing_is_printed_for_a_cancellation() {
    let _watchdog = Watchdog::new("nothing_is_printed_for_a_cancellation", LIMIT);
    let out = assert_child_passes("child_cancellations");
    assert!(
        !out.stderr.contains("panicked"),
        "a cancellation printed something:\n{}",
        describe(&out)
    );
}

#[test]
fn child_cancellations() {
    if !is_child("child_cancellations") {
        return;
    }
    in_every_configuration(|| {
        let t = thread::spawn(|| thread::sleep(LONG));
        t.cancel();
        assert!(t.join().is_err());
        let t = thread::spawn(|| park_forever());
        thread::sleep(SETTLE);
        t.cancel_with(CancelReason::requested("quietly"));
        assert!(t.join().is_err());
        assert!(timeout(SHORT, || thread::sleep(LONG)).is_err());
        let scope = CancelScope::new();
        scope.cancel();
        assert!(scope.run(cancel::checkpoint).is_none());
        assert!(timeout(SHORT, || thread::scope(|s| {
            s.spawn(|| park_forever());
        }))
        .is_err());
        // A cancellation swallowed and left unhandled in a thread.
        let t = thread::spawn(|| {
            let _ = catch_unwind(|| thread::sleep(LONG));
            thread::sleep(LONG);
        });
        t.cancel();
        assert!(t.join().is_err());
    });
}

#[test]
fn a_scope_run_twice_at_once_panics_saying_why() {
    let _watchdog = Watchdog::new("a_scope_run_twice_at_once_panics_saying_why", LIMIT);
    assert_child_passes("child_scope_run_twice_at_once");
}

#[test]
fn child_scope_run_twice_at_once() {
    if !is_child("child_scope_run_twice_at_once") {
        return;
    }
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !payload_text(info.payload()).contains("already running") {
            report(info);
        }
    }));
    in_every_configuration(|| {
        let scope = CancelScope::new();
        let other = scope.clone();
        let again = scope.clone();
        scope.run(|| {
            // From another thread (green, then OS)...
            let o = other.clone();
            let green = thread::spawn(move || catch_unwind(AssertUnwindSafe(|| o.run(|| ()))))
                .join()
                .unwrap();
            let o = other.clone();
            let os = std::thread::spawn(move || catch_unwind(AssertUnwindSafe(|| o.run(|| ()))))
                .join()
                .unwrap();
            // ... and from inside itself.
            let nested = catch_unwind(AssertUnwindSafe(|| again.run(|| ())));
            for result in [green, os, nested] {
                let payload = result.expect_err("a running scope was entered again");
                let text = payload_text(&*payload);
                assert!(
                    text.contains("already running") && text.contains("new scope"),
                    "unhelpful message: {text}"
                );
            }
        });
        // Once returned, it runs again.
        assert_eq!(scope.run(|| 1), Some(1));
    });
}

#[test]
fn scopes_work_in_thread_local_destructors() {
    let _watchdog = Watchdog::new("scopes_work_in_thread_local_destructors", LIMIT);
    let out = assert_child_passes("child_scopes_in_tls_destructors");
    assert!(
        out.stdout.contains("destructor ran its scopes"),
        "the destructor did not finish:\n{}",
        describe(&out)
    );
}

#[test]
fn child_scopes_in_tls_destructors() {
    if !is_child("child_scopes_in_tls_destructors") {
        return;
    }
    struct UsesScopes;
    impl Drop for UsesScopes {
        fn drop(&mut self) {
            assert_eq!(timeout(LONG, || 1), Ok(1));
            assert_eq!(cancel::shield(|| 2), 2);
            assert_eq!(CancelScope::new().run(|| 3), Some(3));
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "destructor ran its scopes");
        }
    }
    thread_local! {
        static USES_SCOPES: UsesScopes = const { UsesScopes };
    }
    std::thread::spawn(|| {
        // Registered first, so destroyed after spool's own thread-locals,
        // which the scopes below create.
        USES_SCOPES.with(|_| {});
        assert_eq!(
            timeout(LONG, || thread::sleep(Duration::from_millis(1))),
            Ok(())
        );
        assert_eq!(CancelScope::new().run(|| 4), Some(4));
    })
    .join()
    .unwrap();
}
