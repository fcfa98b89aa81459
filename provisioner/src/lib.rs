//! tkeha-provisioner: install keepalived HA over SSH and verify third-party load balancers.

pub mod cli;
