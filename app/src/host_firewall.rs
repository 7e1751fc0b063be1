//! What a Linux host's firewall does to bridged traffic, for `berth doctor`: Docker
//! Engine (and ufw or firewalld) set the iptables filter `FORWARD` policy to DROP and
//! send bridged frames through iptables (`br_netfilter`). Berth's native engine then
//! adds ACCEPT rules for its bridges (to `DOCKER-USER` where it exists, else to
//! `FORWARD`) while it runs; this reads the situation and says so.

use std::process::Command;

/// The comment prefix on the engine's own iptables rules (its nftables table name).
const OWN_RULE_MARK: &str = "berth_";

/// What was read from the host.
#[derive(Debug, Default, PartialEq)]
pub struct Probe {
    /// `iptables -S FORWARD`; None when iptables is absent or could not be read.
    pub forward: Option<String>,
    /// Why `forward` is None.
    pub unreadable: Option<String>,
    /// `iptables -S DOCKER-USER`, when the chain exists.
    pub docker_user: Option<String>,
    /// `/proc/sys/net/bridge/bridge-nf-call-iptables`.
    pub bridge_nf: Option<String>,
}

impl Probe {
    pub fn read() -> Probe {
        let iptables = |args: &[&str]| {
            Command::new("iptables")
                .arg("-w")
                .args(args)
                .output()
                .map_err(|e| e.to_string())
                .and_then(|o| match o.status.success() {
                    true => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
                    false => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                })
        };
        let (forward, unreadable) = match iptables(&["-S", "FORWARD"]) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        Probe {
            docker_user: forward
                .as_ref()
                .and_then(|_| iptables(&["-S", "DOCKER-USER"]).ok()),
            forward,
            unreadable,
            bridge_nf: std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }

    /// Whether bridged traffic meets a DROP that Berth must open for its bridges, and
    /// how it stands: the doctor's line. Berth copes in every case, so it is never a
    /// failure; the line tells a user why their rules list has Berth's in it.
    pub fn describe(&self) -> String {
        let Some(forward) = &self.forward else {
            return match &self.unreadable {
                Some(e) if e.contains("ermission") || e.contains("must be root") => {
                    "unknown: reading iptables needs root (sudo berth doctor)".into()
                }
                _ => "no iptables: nothing drops bridged traffic".into(),
            };
        };
        let drops = forward.lines().any(|l| l.trim() == "-P FORWARD DROP");
        let through_iptables = self.bridge_nf.as_deref() == Some("1");
        let chain = match self.docker_user.is_some() {
            true => "DOCKER-USER",
            false => "FORWARD",
        };
        let ours = [Some(forward), self.docker_user.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|s| s.lines())
            .filter(|l| l.contains(OWN_RULE_MARK))
            .count();
        let now = match ours {
            0 => "none now: the engine is not running or has no network".to_string(),
            n => format!("{n} now"),
        };
        match (drops || self.docker_user.is_some(), through_iptables) {
            (true, true) => format!(
                "FORWARD policy DROP{} with bridged traffic through iptables (Docker Engine \
                 or a host firewall): Berth's native engine accepts its bridges' traffic in \
                 {chain} while it runs ({now})",
                if self.docker_user.is_some() {
                    " and DOCKER-USER"
                } else {
                    ""
                }
            ),
            (true, false) => format!(
                "FORWARD policy DROP; bridged traffic does not go through iptables, and \
                 Berth's native engine still accepts its bridges' routed traffic in {chain} \
                 ({now})"
            ),
            (false, _) => "FORWARD policy ACCEPT: nothing drops bridged traffic".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_engine_hosts_are_named_with_the_chain_berth_uses() {
        let p = Probe {
            forward: Some("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n".into()),
            unreadable: None,
            docker_user: Some(
                "-N DOCKER-USER\n-A DOCKER-USER -o berth0 -m comment --comment berth_0badcafe -j ACCEPT\n\
                 -A DOCKER-USER -i berth0 -m comment --comment berth_0badcafe -j ACCEPT\n\
                 -A DOCKER-USER -j RETURN\n"
                    .into(),
            ),
            bridge_nf: Some("1".into()),
        };
        let d = p.describe();
        assert!(d.starts_with("FORWARD policy DROP and DOCKER-USER"), "{d}");
        assert!(d.contains("in DOCKER-USER while it runs (2 now)"), "{d}");
    }

    #[test]
    fn a_plain_host_and_an_unreadable_one_say_what_they_are() {
        let plain = Probe {
            forward: Some("-P FORWARD ACCEPT\n".into()),
            bridge_nf: None,
            ..Default::default()
        };
        assert!(plain.describe().starts_with("FORWARD policy ACCEPT"));
        let firewall = Probe {
            forward: Some("-P FORWARD DROP\n".into()),
            bridge_nf: Some("0".into()),
            ..Default::default()
        };
        let d = firewall.describe();
        assert!(d.contains("in FORWARD") && d.contains("none now"), "{d}");
        let user = Probe {
            unreadable: Some(
                "iptables v1.8.9 (nf_tables): Permission denied (you must be root)".into(),
            ),
            ..Default::default()
        };
        assert!(user.describe().contains("needs root"));
        assert!(Probe::default().describe().starts_with("no iptables"));
    }
}
