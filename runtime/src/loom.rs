//! The atomics the park protocol is built on: std's normally, loom's under
//! `--cfg loom` so the models in `park.rs` can explore every interleaving
//! (the facade tokio uses).

#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic;
