//! tkeha-provisioner: install keepalived HA over SSH and verify third-party load balancers.
//!
//! Library entry points return a [`report::Report`] and never print (except optional progress
//! lines on stderr): [`check::check`], [`apply::apply`], [`status::status`], [`drill::drill`],
//! [`uninstall::uninstall`], or [`cli::run_plan`] for any [`cli::Action`]. Build a [`manifest::Plan`]
//! with [`manifest::load_plan`] and [`fleet::Options`] with a [`hostkeys::HostKeyPolicy`].
//!
//! Job mode ([`cluster_api::run`], or [`cli::run_with`] with a `CLUSTER-NAME`) reads the Cluster
//! through the API server ([`tkeha_kube::Target`]) and writes the `HAReady` condition to its status.

pub mod apply;
pub mod check;
pub mod cli;
pub mod cluster_api;
pub mod drill;
pub mod fleet;
pub mod hostkeys;
pub mod keepalived;
pub mod manifest;
pub mod probe;
pub mod report;
pub mod service;
pub mod ssh;
pub mod status;
pub mod thirdparty;
pub mod uninstall;
pub mod vip;

pub use fleet::Options;
pub use hostkeys::HostKeyPolicy;
pub use manifest::{Plan, load_plan};
pub use report::Report;
