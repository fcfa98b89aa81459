//! The five things the provisioner does to the masters of one Cluster.

/// What to do to the masters of one Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read-only preflight of every master (and of the LB binding in third-party mode).
    Check,
    /// Install and configure keepalived (TKE HA) or the hairpin rule (third-party HA).
    Apply,
    /// keepalived state, VIP holder and health of every master.
    Status,
    /// Stop keepalived on the VIP holder, time the failover, restore it.
    Drill,
    /// Remove what `apply` installed.
    Uninstall,
}

impl Action {
    /// The command's name, as in the report's `action` field.
    pub fn name(self) -> &'static str {
        match self {
            Action::Check => "check",
            Action::Apply => "apply",
            Action::Status => "status",
            Action::Drill => "drill",
            Action::Uninstall => "uninstall",
        }
    }
}
