//! End-to-end tests of `kubectl tkeha` through the real kubectl binary's plugin dispatch.

#![allow(clippy::unwrap_used)]

mod completion;
mod encode_password;
mod harness;
mod init;
mod prompt;
mod provision;
mod validate;
