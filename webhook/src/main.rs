//! tkeha-webhook: admission server.

fn main() {}
