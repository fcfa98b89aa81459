//! kubectl tkeha: the plugin binary.

fn main() {}
