//! The behaviour tests that can share a process, as one test binary:
//! one link instead of one per file, which is most of the build time of
//! `cargo test`. Each module is the file of the same name; the tests that
//! measure or change their whole process (memory figures, thread counts,
//! descriptor limits, signals) keep binaries of their own in `tests/`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cancel;
mod cancel_channels;
mod cancel_net;
mod cancel_sync;
mod cancel_unblock;
mod channels;
mod config;
mod debug;
mod debug_stacks;
mod group;
mod lifecycle;
mod links;
mod net_addrs;
mod net_lifetime;
mod overflow;
mod park_token;
mod porting;
mod select_abandon;
mod select_traits;
mod shutdown;
mod sync_extra;
mod sync_locks;
mod thread;
mod tls;
mod unblock;
mod unix_net;
mod watchdog;
