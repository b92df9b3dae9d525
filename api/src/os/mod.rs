//! Platform-specific extensions: [`std::os`] for green threads.
//!
//! Only Unix has extensions so far: [`os::unix::net`](unix::net) mirrors
//! [`std::os::unix::net`] (Unix domain sockets).

#[cfg(unix)]
pub mod unix;
