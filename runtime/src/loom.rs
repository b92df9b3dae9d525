//! The atomics the park protocol is built on: std's normally, loom's under
//! `--cfg loom` so the models in `park.rs` can explore every interleaving
//! (the facade tokio uses).

#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

/// The waiting side of spool's own wait as the handshake models see it
/// (`shutdown.rs`, `monitor_hooks.rs`): consumes the wake `token`, and
/// while it is not there, checks that a wake can still come (not all of
/// the `workers` counted in `workers_done` have finished, or the token
/// was left meanwhile) and yields. A waiter left with no wake coming fails
/// the model with "stranded".
#[cfg(all(test, loom))]
pub(crate) fn wait_for_token(
    token: &atomic::AtomicBool,
    workers_done: &atomic::AtomicUsize,
    workers: usize,
) {
    use atomic::Ordering::Acquire;
    while token
        .compare_exchange(true, false, Acquire, Acquire)
        .is_err()
    {
        let finished = workers_done.load(Acquire) == workers;
        assert!(
            !finished || token.load(Acquire),
            "stranded: waiting with every worker done and no wake coming"
        );
        loom::thread::yield_now();
    }
}
