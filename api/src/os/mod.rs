//! Platform-specific extensions: [`std::os`] for green threads.
//!
//! Only Unix has extensions so far: [`os::unix::net`](unix::net) mirrors
//! [`std::os::unix::net`] (Unix domain sockets).
//!
//! ```
//! # #[cfg(unix)] {
//! use spool::os::unix::net::UnixStream;
//! use std::io::{Read, Write};
//!
//! let (mut a, mut b) = UnixStream::pair()?;
//! let echo = spool::thread::spawn(move || -> std::io::Result<()> {
//!     let mut buf = [0; 2];
//!     b.read_exact(&mut buf)?;
//!     b.write_all(&buf)
//! });
//! a.write_all(b"hi")?;
//! let mut buf = [0; 2];
//! a.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"hi");
//! echo.join().unwrap()?;
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```

#[cfg(unix)]
pub mod unix;
