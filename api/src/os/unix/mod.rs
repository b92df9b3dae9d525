//! Unix-specific extensions: [`std::os::unix`] for green threads.
//!
//! A socket made by std (or handed over by a parent process as a
//! descriptor) converts into spool's, which switches it to non-blocking
//! mode and keeps its timeouts:
//!
//! ```
//! use spool::os::unix::net::UnixStream;
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
//! a.set_read_timeout(Some(Duration::from_secs(5)))?;
//! let mut a = UnixStream::from(a);
//! assert_eq!(a.read_timeout()?, Some(Duration::from_secs(5)));
//! b.write_all(b"hi")?;
//! let mut buf = [0; 2];
//! a.read_exact(&mut buf)?; // parks a green thread, not its worker
//! assert_eq!(&buf, b"hi");
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod net;
