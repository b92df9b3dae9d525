//! The sync scenarios' common ground: the channel matrix's shapes and
//! capacities as the children receive them, how a child sizes its sample,
//! and the matrix for the two systems whose channels have
//! crossbeam-channel's API (spool's `mpmc` between green threads and
//! crossbeam-channel itself between OS threads), which runs the scenario
//! code `peers/benches/channels.rs` runs (`peers/benches/common/matrix.rs`).
//! `go/main.go` parses the same names and sizes its samples by the same
//! rule.
//!
//! The shapes, capacities and counts follow `peers/benches/channels.rs` (itself
//! crossbeam-channel's comparison benchmark), so the two suites' figures
//! can be compared: `usize` messages, `THREADS` threads per side, bounded(N)
//! = bounded(`CAP_N`), time taken from before the threads are spawned to
//! after they are joined, ns per message.

use std::time::Duration;

/// Threads (tasks, goroutines) per side in the many-thread shapes, and the
/// threads of `mutex_contended`; crossbeam's `THREADS`.
pub const THREADS: usize = 4;

/// The matrix's "bounded(N)".
pub const CAP_N: usize = 1024;

/// Message counts are multiples of this (whole batches on every thread).
const STEP: usize = THREADS * CAP_N;

/// A sample aims to take at most this long per operation of its count (300
/// ms for 1,000,000): see [`fit`].
const BUDGET_NS_PER_OP: f64 = 300.0;

/// One shape of the channel matrix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One thread sends a batch (the capacity; all messages when
    /// unbounded), then receives it.
    Seq,
    /// One producer, one consumer.
    Spsc,
    /// `THREADS` producers, one consumer.
    Mpsc,
    /// `THREADS` producers, `THREADS` consumers, one channel.
    Mpmc,
    /// `THREADS` producers each on a channel of its own; one consumer
    /// selects a receive over all of them for every message.
    SelectRx,
    /// `THREADS` channels; `THREADS` producers each select a send over all
    /// of them, `THREADS` consumers each select a receive over all of them.
    SelectBoth,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::Seq,
        Shape::Spsc,
        Shape::Mpsc,
        Shape::Mpmc,
        Shape::SelectRx,
        Shape::SelectBoth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Seq => "seq",
            Shape::Spsc => "spsc",
            Shape::Mpsc => "mpsc",
            Shape::Mpmc => "mpmc",
            Shape::SelectRx => "select_rx",
            Shape::SelectBoth => "select_both",
        }
    }
}

/// The capacities of the matrix: `None` is unbounded.
pub const CAPS: [Option<usize>; 4] = [Some(0), Some(1), Some(CAP_N), None];

/// `bounded0`, `bounded1`, `bounded1024` or `unbounded`.
pub fn cap_name(cap: Option<usize>) -> String {
    match cap {
        Some(cap) => format!("bounded{cap}"),
        None => "unbounded".into(),
    }
}

/// The scenario name a child is given for one cell of the matrix:
/// `chan_<cap>_<shape>` (`chan_bounded1_spsc`).
pub fn matrix_name(cap: Option<usize>, shape: Shape) -> String {
    format!("chan_{}_{}", cap_name(cap), shape.name())
}

/// The inverse of [`matrix_name`].
pub fn parse_matrix(name: &str) -> Option<(Shape, Option<usize>)> {
    let (cap, shape) = name.strip_prefix("chan_")?.split_once('_')?;
    let cap = match cap {
        "unbounded" => None,
        c => Some(c.strip_prefix("bounded")?.parse().ok()?),
    };
    let shape = Shape::ALL.into_iter().find(|s| s.name() == shape)?;
    Some((shape, cap))
}

/// How many operations the warm-up run does for a sample of at most `max`:
/// about 1/64 of it, whole steps, at least one step.
pub fn warmup_count(max: usize) -> usize {
    (max / 64 / STEP).max(1) * STEP
}

/// The operations the timed run does: `max`, or fewer when the warm-up
/// (`warmup_ops` in `warmup`) says `max` would take over `max` × 300 ns, so
/// that a system paying microseconds per message (a rendezvous between OS
/// threads) keeps its sample short; whole steps, at least one.
pub fn fit(max: usize, warmup: Duration, warmup_ops: usize) -> usize {
    let per_op = warmup.as_secs_f64() * 1e9 / warmup_ops as f64;
    let budget = max as f64 * BUDGET_NS_PER_OP;
    let fit = (budget / per_op.max(1e-3)) as usize;
    (fit.min(max) / STEP).max(1) * STEP
}

/// What a sync child prints: ns per operation, and the operations timed.
pub fn report(metric: &'static str, ops: usize, elapsed: Duration) -> Vec<(&'static str, f64)> {
    vec![
        (metric, elapsed.as_nanos() as f64 / ops as f64),
        ("ops", ops as f64),
    ]
}

/// Warm-up, sizing and the timed run of a scenario that is a blocking
/// function of its operation count; the child's report.
pub fn sized(
    metric: &'static str,
    max: usize,
    mut measure: impl FnMut(usize) -> Duration,
) -> Vec<(&'static str, f64)> {
    let w = warmup_count(max);
    let n = fit(max, measure(w), w);
    report(metric, n, measure(n))
}

/// The channel matrix and the rendezvous ping-pong for a channel API shaped
/// like crossbeam-channel's (`bounded`, `unbounded`, `Select`), with
/// `$spawn` starting the other parties: the scenarios of
/// `peers/benches/common/matrix.rs` (those of `peers/benches/channels.rs`), with
/// `THREADS` threads per side and 100 untimed round trips before a
/// ping-pong's timed ones. Defines `matrix(shape, cap, n) -> Duration` and
/// `pingpong(n) -> Duration` in the calling module.
macro_rules! crossbeam_api_scenarios {
    ($($chan:ident)::+, $($spawn:ident)::+) => {
        crossbeam_api_matrix! {
            channel: $($chan)::+,
            spawn: $($spawn)::+,
            threads: crate::syncwork::THREADS,
            pingpong_warmup: 100,
        }

        /// `n` messages through one cell of the matrix; the time taken.
        pub fn matrix(shape: crate::syncwork::Shape, cap: Option<usize>, n: usize) -> Duration {
            use crate::syncwork::Shape;
            match shape {
                Shape::Seq => seq(cap, n),
                Shape::Spsc => spsc(cap, n),
                Shape::Mpsc => mpsc(cap, n),
                Shape::Mpmc => mpmc(cap, n),
                Shape::SelectRx => select_rx(cap, n),
                Shape::SelectBoth => select_both(cap, n),
            }
        }
    };
}
