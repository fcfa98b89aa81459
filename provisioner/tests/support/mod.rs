//! Test helpers shared by the provisioner's integration tests.

pub mod fake_apiserver;
pub mod loopback;
pub mod tls_front;
