//! Rules on `metadata.name` and `metadata.generateName` of a new Cluster, and what TKEStack's
//! API would do to them.
//!
//! TKEStack keeps only the name `global` and names of the form `cls-[a-z0-9]+`: its
//! `PrepareForCreate` (tkestack/tke `pkg/platform/registry/cluster/strategy.go`) passes a
//! given name through `CorrectClusterName`, which blanks a name without the `cls-` prefix and
//! lower-cases and drops the dashes after it, and sets `generateName: cls-` when neither is
//! left. A standalone API server (the CRD) stores names as given. So: a name must be a
//! DNS-1123 subdomain (what any API server requires), a name TKEStack would change gets a
//! warning, and a Cluster without either gets `generateName: cls-` as a default.

use crate::field::{FieldError, quote};
use crate::limits::MAX_DNS_NAME;

/// The prefix of TKEStack's cluster names, and the `generateName` defaulted when neither a
/// name nor a `generateName` is given.
pub const NAME_PREFIX: &str = "cls-";

/// The one cluster name TKEStack keeps without the prefix.
pub const GLOBAL: &str = "global";

/// The fields of `metadata` (apimachinery's `ObjectMeta`): anything else is an unknown field.
pub const OBJECT_META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `metadata.name` and `metadata.generateName` as given (empty strings count as unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.generateName`.
    pub generate_name: Option<String>,
}

impl Names {
    fn name(&self) -> Option<&str> {
        self.name.as_deref().filter(|n| !n.is_empty())
    }

    fn generate_name(&self) -> Option<&str> {
        self.generate_name.as_deref().filter(|n| !n.is_empty())
    }

    /// Neither a name nor a `generateName`: `generateName: cls-` is defaulted.
    pub fn needs_generate_name(&self) -> bool {
        self.name().is_none() && self.generate_name().is_none()
    }
}

/// Whether `s` is a DNS-1123 subdomain: at most 253 characters, dot-separated labels of
/// lower-case letters, digits and `-`, each starting and ending with a letter or digit
/// (apimachinery's `IsDNS1123Subdomain`).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DNS_NAME
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

/// What TKEStack's `CorrectClusterName` makes of `name`: `None` when it blanks the name (and a
/// `cls-` name is generated instead).
pub fn tkestack_name(name: &str) -> Option<String> {
    if name == GLOBAL || is_kept(name) {
        return Some(name.to_string());
    }
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let corrected = format!("{NAME_PREFIX}{}", rest.to_lowercase().replace('-', ""));
    // TKEStack's NamePattern `(cls-[a-z0-9]+|global)` is matched unanchored.
    let matches = corrected.contains(GLOBAL)
        || corrected.match_indices(NAME_PREFIX).any(|(i, _)| {
            corrected[i + NAME_PREFIX.len()..]
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    matches.then_some(corrected)
}

/// Whether TKEStack keeps `name` as it is: `cls-` and lower-case letters and digits.
fn is_kept(name: &str) -> bool {
    name.strip_prefix(NAME_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

const SUBDOMAIN_DETAIL: &str = "must be a lower-case RFC 1123 subdomain: lower-case letters, digits, '-' and '.', \
     starting and ending with a letter or digit, at most 253 characters (e.g. cls-prod)";

/// The create rules on the names: errors for names no API server takes, warnings for names
/// TKEStack's API would change.
pub fn validate(names: &Names, errors: &mut Vec<FieldError>, warn: &mut dyn FnMut(&str, String)) {
    if let Some(name) = names.name() {
        if !is_dns1123_subdomain(name) {
            errors.push(FieldError::invalid(
                "metadata.name",
                Some(quote(name)),
                SUBDOMAIN_DETAIL,
            ));
            return;
        }
        if name == GLOBAL || is_kept(name) {
            return;
        }
        match tkestack_name(name) {
            None => warn(
                "metadata.name",
                format!(
                    "TKEStack's own API would replace {} by a generated cls- name; use {} to keep it",
                    quote(name),
                    quote(&format!("{NAME_PREFIX}{}", name.replace(['-', '.'], "")))
                ),
            ),
            Some(corrected) if corrected != name => warn(
                "metadata.name",
                format!(
                    "TKEStack's own API would store {} as {} (it drops '-' after cls-)",
                    quote(name),
                    quote(&corrected)
                ),
            ),
            Some(_) => {}
        }
        return;
    }
    if let Some(prefix) = names.generate_name() {
        // A generated name is the prefix and 5 random characters; the API server checks the
        // prefix with a trailing '-' allowed.
        let masked = match prefix.strip_suffix('-') {
            Some(head) => format!("{head}a"),
            None => prefix.to_string(),
        };
        if !is_dns1123_subdomain(&masked) {
            errors.push(FieldError::invalid(
                "metadata.generateName",
                Some(quote(prefix)),
                SUBDOMAIN_DETAIL,
            ));
        } else if !prefix.starts_with(NAME_PREFIX) {
            warn(
                "metadata.generateName",
                format!(
                    "TKEStack names clusters cls-[a-z0-9]+; {} generates names outside that pattern",
                    quote(prefix)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        for ok in ["cls-a", "prod", "a.b-c.d", "0", "global"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in [
            "",
            "Prod",
            "-a",
            "a-",
            "a..b",
            "a_b",
            ".a",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn names_as_tkestack_corrects_them() {
        assert_eq!(tkestack_name("global").as_deref(), Some("global"));
        assert_eq!(tkestack_name("cls-abc").as_deref(), Some("cls-abc"));
        assert_eq!(tkestack_name("cls-my-prod").as_deref(), Some("cls-myprod"));
        assert_eq!(tkestack_name("cls-Prod").as_deref(), Some("cls-prod"));
        assert_eq!(tkestack_name("prod"), None);
        assert_eq!(tkestack_name("cls-"), None);
        assert_eq!(tkestack_name("cls-.x"), None);
        // Unanchored match, as TKEStack's regexp.MatchString.
        assert_eq!(tkestack_name("cls-a.b").as_deref(), Some("cls-a.b"));
    }
}
