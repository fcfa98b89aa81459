//! What the shared test steps (`scenario`, `watch`) need from a lab, whichever tier it is:
//! the VIP, who holds it, each master's hostname, and manifests with the lab's known_hosts.

use super::ManifestOptions;
use anyhow::Result;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A lab of masters sharing one VIP: the network-namespace tier or the booted tier.
pub trait LabView {
    /// The lab's VIP.
    fn vip(&self) -> String;
    /// `VIP:port`.
    fn vip_addr(&self, port: u16) -> SocketAddr;
    /// Indexes of the masters that have the VIP on an interface right now.
    fn holders(&self) -> Vec<usize>;
    /// Master `i`'s hostname (what its stand-in apiserver answers with).
    fn hostname(&self, i: usize) -> String;
    /// known_hosts with every master's real host key.
    fn known_hosts_path(&self) -> PathBuf;
    /// Writes a manifest for the lab (edited by `edit`) into the lab dir; returns its path.
    fn write_manifest(
        &self,
        name: &str,
        opts: &ManifestOptions,
        edit: impl FnOnce(&mut Value),
    ) -> Result<PathBuf>;
    /// `GET http://VIP:port/` from this machine: the body (`apiserver <hostname>`) or None.
    fn get_vip(&self, port: u16, timeout: Duration) -> Option<String> {
        super::probe::http_get(self.vip_addr(port), timeout)
    }
}

impl LabView for super::Lab {
    fn vip(&self) -> String {
        super::Lab::vip(self)
    }
    fn vip_addr(&self, port: u16) -> SocketAddr {
        super::Lab::vip_addr(self, port)
    }
    fn holders(&self) -> Vec<usize> {
        super::Lab::holders(self)
    }
    fn hostname(&self, i: usize) -> String {
        self.masters[i].ns.clone()
    }
    fn known_hosts_path(&self) -> PathBuf {
        super::Lab::known_hosts_path(self)
    }
    fn write_manifest(
        &self,
        name: &str,
        opts: &ManifestOptions,
        edit: impl FnOnce(&mut Value),
    ) -> Result<PathBuf> {
        super::Lab::write_manifest(self, name, opts, edit)
    }
}
