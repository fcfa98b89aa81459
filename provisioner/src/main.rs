//! tkeha-provisioner: the command-line front of the provisioner library.

fn main() {}
