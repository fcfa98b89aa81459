//! tkeha-provisioner: make the masters of a TKEStack Cluster highly available over SSH:
//! keepalived and a VIP (TKE HA), or a verified third-party load balancer and the hairpin rule.
//!
//! The library never prints. Build a [`Plan`] from a manifest ([`load_plan`],
//! [`plan_from_text`]) or let [`run`] read it by name through the API server; run an
//! [`Action`] with a [`Provisioner`]; get a [`Report`] back. Progress is told to an
//! [`Observer`] (the binaries print it on a terminal). In Job mode ([`Source::Cluster`]) the
//! outcome is also written to the Cluster's status ([`cluster_api`]).
//!
//! Layers, each only calling the ones below it:
//! - [`run`] / [`Provisioner::run`]: a Cluster from a file or by name, to a report;
//! - the actions (check, apply, status, drill, uninstall): decisions on typed values;
//! - `scripts`: the bash scripts for the masters and the typed parsers of what they print;
//! - [`remote`] (run a script on a master: the [`Remote`](remote::Remote) trait, SSH behind
//!   it) and [`net`] (the provisioner host's own probes of the VIP and the load balancer), both
//!   along each machine's route ([`transport`]: directly, a SOCKS5 proxy or an SSH jump server).
//!
//! The command-line flags both binaries share are in [`cli`].

#![warn(missing_docs)]

mod action;
mod apply;
mod check;
pub mod cli;
pub mod cluster_api;
mod drill;
#[cfg(test)]
mod fake;
mod fleet;
pub mod hostkeys;
pub mod input;
pub mod interrupt;
mod keepalived;
mod managed;
pub mod manifest;
pub mod net;
pub mod observer;
pub mod profile;
#[cfg(test)]
mod proxied_tests;
pub mod remote;
pub mod report;
mod runner;
pub mod scripts;
mod status;
mod thirdparty;
mod tkestack;
pub mod transport;
mod uninstall;
mod vip;

pub use action::Action;
pub use hostkeys::HostKeyPolicy;
pub use interrupt::Interrupt;
pub use manifest::{Machine, Mode, Plan, PlanError, load_plan, plan_from_text};
pub use net::{Network, Routed};
pub use observer::{Observer, Silent, Step, StepEvent};
pub use profile::FailoverProfile;
pub use report::Report;
pub use runner::{Options, Outcome, Provisioner, RunError, Source, run};
