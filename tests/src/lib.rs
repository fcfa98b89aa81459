//! The network-namespace lab used by end-to-end tests, `make demo` and `make bench`, and helpers to
//! run the workspace's binaries against it.

pub mod bench;
pub mod bins;
pub mod lab;
pub mod provisioner;
pub mod remote;
pub mod scenario;
pub mod watch;
