pub use std::net::ToSocketAddrs;
