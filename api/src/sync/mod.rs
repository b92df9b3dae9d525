//! Green-aware synchronization: channels.
//!
//! * [`mpsc`] mirrors [`std::sync::mpsc`] exactly;
//! * [`mpmc`] mirrors the public API of `crossbeam-channel`, `select!`
//!   included;
//! * [`oneshot`] carries a single value.
//!
//! All three are built on one channel core, and every blocking operation
//! parks the calling green thread (or blocks a plain OS thread), so a
//! channel connects green threads and OS threads in any combination.
//!
//! ```
//! use spool::sync::mpsc;
//! let (tx, rx) = mpsc::channel();
//! spool::thread::spawn(move || tx.send("from a green thread").unwrap());
//! assert_eq!(rx.recv().unwrap(), "from a green thread");
//! ```

pub mod mpmc;
pub mod mpsc;
pub mod oneshot;
