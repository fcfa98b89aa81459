//! The failover profile: how fast keepalived moves the VIP (`standard` or `fast`), chosen by
//! `--failover-profile` or by the Cluster's annotation, and read back from a master's config.

use tkeha_api::validation::profile::{FAILOVER_PROFILE_ANNOTATION, FAILOVER_PROFILES};

/// How keepalived detects a failure and moves the VIP.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FailoverProfile {
    /// VRRPv2 with `auth_pass`, adverts every 1 s, a health-check script every 1 s (fails
    /// twice): the VIP moves about 1.7 s after apiserver death, 2.6 s after a link loss.
    #[default]
    Standard,
    /// VRRPv3, adverts every 0.1 s, a resident apiserver probe every 50 ms feeding keepalived
    /// through a track file: the VIP moves in a few hundred milliseconds.
    Fast,
}

impl FailoverProfile {
    /// The name as written on the command line, in the annotation and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FailoverProfile::Standard => "standard",
            FailoverProfile::Fast => "fast",
        }
    }

    /// From its name (`standard`, `fast`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "standard" => Some(FailoverProfile::Standard),
            "fast" => Some(FailoverProfile::Fast),
            _ => None,
        }
    }

    /// The profile a Cluster object asks for through its annotation (`None` when it has none;
    /// the rule engine has already refused a value outside [`FAILOVER_PROFILES`]).
    pub fn from_object(object: &serde_json::Value) -> Option<Self> {
        tkeha_api::validation::profile::annotation(object).and_then(Self::parse)
    }

    /// VRRP's master-down interval in milliseconds: how long a backup waits without adverts
    /// before it takes the VIP (3 adverts; the skew time is under one advert at our priorities).
    pub fn master_down_ms(self) -> u64 {
        match self {
            FailoverProfile::Standard => 3000,
            FailoverProfile::Fast => 300,
        }
    }
}

impl std::fmt::Display for FailoverProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The annotation's key, for help texts.
pub const ANNOTATION: &str = FAILOVER_PROFILE_ANNOTATION;

/// Which masters change first when the profile changes, so that no backup ever goes long
/// without understandable adverts (VRRPv2 and VRRPv3 do not hear each other):
/// - towards `fast`, the VIP holder first: the backups still run `standard` and wait 3 s
///   without adverts before they take over, longer than the rest of the change takes;
/// - towards `standard`, the backups first: the holder still runs `fast`, and backups already
///   on `standard` wait 3 s, while backups left on `fast` would take over after 0.3 s.
///
/// `None` when no master changes profile (every master reloads at once, as before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeOrder {
    /// The VIP holder reloads first, then the others.
    HolderFirst,
    /// The others reload first, then the VIP holder.
    BackupsFirst,
}

/// The order of a change from the profiles the masters run now to `desired`.
pub(crate) fn change_order(
    current: impl IntoIterator<Item = Option<FailoverProfile>>,
    desired: FailoverProfile,
) -> Option<ChangeOrder> {
    let changes = current.into_iter().any(|c| c.is_some_and(|c| c != desired));
    if !changes {
        return None;
    }
    Some(match desired {
        FailoverProfile::Fast => ChangeOrder::HolderFirst,
        FailoverProfile::Standard => ChangeOrder::BackupsFirst,
    })
}

/// `standard|fast`, for messages.
pub fn allowed() -> String {
    FAILOVER_PROFILES.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip_and_match_the_rule_engine() {
        for p in [FailoverProfile::Standard, FailoverProfile::Fast] {
            assert_eq!(FailoverProfile::parse(p.name()), Some(p));
            assert!(FAILOVER_PROFILES.contains(&p.name()));
        }
        assert_eq!(FailoverProfile::parse("turbo"), None);
        assert_eq!(allowed(), "standard|fast");
    }

    #[test]
    fn the_annotation_chooses_the_profile() {
        let obj = json!({"metadata": {"annotations": {ANNOTATION: "fast"}}});
        assert_eq!(
            FailoverProfile::from_object(&obj),
            Some(FailoverProfile::Fast)
        );
        assert_eq!(FailoverProfile::from_object(&json!({"metadata": {}})), None);
    }

    #[test]
    fn a_change_towards_fast_reloads_the_holder_first_and_back_the_backups_first() {
        use FailoverProfile::{Fast, Standard};
        assert_eq!(
            change_order([Some(Standard), Some(Standard)], Fast),
            Some(ChangeOrder::HolderFirst)
        );
        assert_eq!(
            change_order([Some(Fast), Some(Fast), None], Standard),
            Some(ChangeOrder::BackupsFirst)
        );
        // Nothing to order: a fresh fleet, or the same profile everywhere.
        assert_eq!(change_order([None, None], Fast), None);
        assert_eq!(change_order([Some(Fast), Some(Fast)], Fast), None);
    }
}
