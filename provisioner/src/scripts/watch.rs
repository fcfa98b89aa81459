//! The VIP watch: a remote loop that prints `1` while the VIP is on one of the master's interfaces and `0` otherwise, and the reader of its lines.

use std::net::IpAddr;

use super::{Markers, PATH_EXPORT, Script};

/// A remote loop printing `1` (VIP on one of my interfaces) or `0` every `interval_ms`, for at most `secs`.
pub fn watch_script(vip: IpAddr, interval_ms: u32, secs: u32) -> Script {
    let family = if vip.is_ipv4() { "inet" } else { "inet6" };
    let sleep = f64::from(interval_ms) / 1000.0;
    Script::shell(
        "VIP watch",
        format!(
            "{PATH_EXPORT}end=$((SECONDS+{secs}))\n\
             while [ $SECONDS -lt $end ]; do\n\
               if ip -o addr show 2>/dev/null | grep -qF ' {family} {vip}/'; then echo 1; else echo 0; fi\n\
               sleep {sleep}\n\
             done\n"
        ),
    )
}

/// One reading of whether the master holds the VIP now: `@@holds=1|0`, then `@@end=1`.
pub fn holds_script(vip: IpAddr) -> Script {
    let family = if vip.is_ipv4() { "inet" } else { "inet6" };
    Script::shell(
        "VIP holders",
        format!(
            "{PATH_EXPORT}if ip -o addr show 2>/dev/null | grep -qF ' {family} {vip}/'; then echo \"@@holds=1\"; else echo \"@@holds=0\"; fi\n\
             echo \"@@end=1\"\n"
        ),
    )
}

/// What [`holds_script`] read (`None` when it did not run to its end).
pub fn parse_holds(stdout: &str) -> Option<bool> {
    let m = Markers::parse(stdout);
    if !m.has("end") {
        return None;
    }
    m.value("holds").map(|v| v.trim() == "1")
}

/// One line of the watch: whether the master holds the VIP (`None` for anything else).
pub fn parse_line(line: &str) -> Option<bool> {
    match line {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_script_matches_whole_address() {
        let s = watch_script(IpAddr::from([10, 0, 0, 1]), 50, 10);
        assert!(
            s.text().contains("grep -qF ' inet 10.0.0.1/'"),
            "{}",
            s.text()
        );
        assert!(s.text().contains("sleep 0.05"));
    }

    #[test]
    fn a_single_reading_says_whether_the_vip_is_held() {
        let s = holds_script(IpAddr::from([10, 0, 0, 100]));
        assert!(
            s.text().contains("grep -qF ' inet 10.0.0.100/'"),
            "{}",
            s.text()
        );
        assert_eq!(parse_holds("@@holds=1\n@@end=1\n"), Some(true));
        assert_eq!(parse_holds("@@holds=0\n@@end=1\n"), Some(false));
        assert_eq!(parse_holds("@@holds=1\n"), None, "cut off");
    }

    #[test]
    fn lines_are_held_or_not() {
        assert_eq!(parse_line("1"), Some(true));
        assert_eq!(parse_line("0"), Some(false));
        assert_eq!(parse_line("bash: ip: command not found"), None);
    }
}
