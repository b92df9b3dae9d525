//! Unix-specific extensions: [`std::os::unix`] for green threads.

pub mod net;
