//! End-to-end tests of `kubectl tkeha` through the real kubectl binary's plugin dispatch.

#![allow(clippy::unwrap_used)]

mod completion;
mod create;
mod docs;
mod encode_password;
#[path = "../../../provisioner/tests/support/fake_apiserver.rs"]
mod fake_apiserver;
mod fake_queries;
mod harness;
mod in_cluster;
mod init;
mod init_proxy;
mod krew;
#[path = "../../../provisioner/tests/support/loopback.rs"]
mod loopback;
mod one_voice;
mod prompt;
mod provision;
mod shell_completion;
mod surface;
mod tls;
#[path = "../../../provisioner/tests/support/tls_front.rs"]
mod tls_front;
mod validate;
