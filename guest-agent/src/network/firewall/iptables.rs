//! The iptables firewall driver, for a host where another engine already runs.
//! dockerd sets the filter `FORWARD` policy to DROP and loads `br_netfilter`, so
//! bridged traffic between Berth's containers meets iptables' DROP; a drop at any
//! hook wins over the accept in Berth's own nftables table. When a probe finds that
//! policy or dockerd's `DOCKER-USER` chain, this driver inserts ACCEPT rules for
//! traffic in and out of each Berth bridge into `DOCKER-USER` (which dockerd jumps to
//! before its own rules) or else into `FORWARD`. Every rule carries a comment naming
//! the engine's table, which is how teardown and later applies find exactly the
//! rules this engine added, also after a restart, and touch nothing else.
//!
//! Commands are argv built by pure functions from what the probe read; only
//! [`Iptables`] runs them (the `iptables` binary: iptables-nft on Debian).

use std::process::{Command, Stdio};

use super::{BridgeRule, Firewall};
use crate::network::NetworkError;

pub const FORWARD: &str = "FORWARD";
pub const DOCKER_USER: &str = "DOCKER-USER";

/// The host's filter chains as `iptables -S` printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub forward: String,
    /// None when the chain does not exist.
    pub docker_user: Option<String>,
}

impl Probe {
    /// Whether bridged traffic would be dropped without our accepts.
    pub fn host_drops(&self) -> bool {
        self.docker_user.is_some() || forward_policy_drops(&self.forward)
    }

    /// Where the accepts go: dockerd's chain for its users when there is one.
    pub fn chain(&self) -> &'static str {
        if self.docker_user.is_some() {
            DOCKER_USER
        } else {
            FORWARD
        }
    }
}

/// `-P FORWARD DROP` in `iptables -S FORWARD`.
pub fn forward_policy_drops(listing: &str) -> bool {
    listing
        .lines()
        .any(|l| l.split_whitespace().eq(["-P", FORWARD, "DROP"]))
}

/// The arguments that list `chain` (`-w`: wait for the xtables lock).
pub fn list_args(chain: &str) -> Vec<String> {
    ["-w", "-S", chain].map(String::from).to_vec()
}

/// The rule specifications (what follows `-A <chain>`) this driver wants for
/// `bridges`, in the order `iptables -S` prints their parts, so listed rules compare
/// equal to wanted ones.
pub fn wanted_rules(tag: &str, bridges: &[BridgeRule]) -> Vec<Vec<String>> {
    bridges
        .iter()
        .flat_map(|b| {
            // Both directions: Berth's nftables forward chain accepts new connections
            // into its bridges too (its policy is accept), and behaviour must not
            // change because dockerd is installed.
            ["-i", "-o"].map(|dir| {
                [
                    dir,
                    b.bridge.as_str(),
                    "-m",
                    "comment",
                    "--comment",
                    tag,
                    "-j",
                    "ACCEPT",
                ]
                .map(String::from)
                .to_vec()
            })
        })
        .collect()
}

/// The rule specifications in `listing` (of `chain`) that carry `tag`.
pub fn tagged_rules(listing: &str, chain: &str, tag: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .filter_map(|l| {
            let words: Vec<String> = l
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            let (head, spec) = words.split_at_checked(2)?;
            let ours = head == ["-A", chain]
                && spec.windows(2).any(|w| w[0] == "--comment" && w[1] == tag);
            ours.then(|| spec.to_vec())
        })
        .collect()
}

/// The commands that take the host from `probe` to exactly the wanted rules: ours
/// that are no longer wanted (or sit in the other chain) are deleted, missing ones
/// inserted at the top of the chain, ahead of the host's drops.
pub fn plan(probe: &Probe, tag: &str, bridges: &[BridgeRule]) -> Vec<Vec<String>> {
    let chain = probe.chain();
    let wanted = if probe.host_drops() {
        wanted_rules(tag, bridges)
    } else {
        Vec::new()
    };
    let mut listed: Vec<(&str, &String)> = vec![(FORWARD, &probe.forward)];
    if let Some(d) = &probe.docker_user {
        listed.push((DOCKER_USER, d));
    }
    let mut cmds = Vec::new();
    let mut present = Vec::new();
    for (c, listing) in listed {
        for spec in tagged_rules(listing, c, tag) {
            if c == chain && wanted.contains(&spec) && !present.contains(&spec) {
                present.push(spec);
            } else {
                cmds.push(command("-D", c, &spec));
            }
        }
    }
    // Inserted in reverse so they end up at the top in wanted order.
    for spec in wanted.iter().rev().filter(|s| !present.contains(s)) {
        cmds.push(command("-I", chain, spec));
    }
    cmds
}

fn command(op: &str, chain: &str, spec: &[String]) -> Vec<String> {
    let mut v = vec!["-w".to_string(), op.to_string(), chain.to_string()];
    v.extend(spec.iter().cloned());
    v
}

pub struct Iptables {
    binary: String,
    /// The comment on every rule this engine adds: its nftables table's name.
    tag: String,
}

impl Iptables {
    pub fn new(tag: String) -> Iptables {
        Iptables {
            binary: "iptables".into(),
            tag,
        }
    }

    /// Reads the chains; None when there is no iptables to read (nothing to do).
    fn probe(&self) -> Option<Probe> {
        let forward = match self.run(&list_args(FORWARD)) {
            Ok(out) => out,
            Err(e) => {
                tracing::debug!(error = %e, "no iptables FORWARD chain to probe");
                return None;
            }
        };
        // A missing chain is an error exit, which is the answer.
        let docker_user = self.run(&list_args(DOCKER_USER)).ok();
        Some(Probe {
            forward,
            docker_user,
        })
    }

    fn sync(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError> {
        let Some(probe) = self.probe() else {
            return Ok(());
        };
        let cmds = plan(&probe, &self.tag, bridges);
        if !cmds.is_empty() {
            tracing::info!(
                host_drops = probe.host_drops(),
                chain = probe.chain(),
                changes = cmds.len(),
                "syncing iptables accepts for Berth's bridges"
            );
        }
        for argv in cmds {
            self.run(&argv)?;
        }
        Ok(())
    }

    fn run(&self, args: &[String]) -> Result<String, NetworkError> {
        let out = crate::reaper::output(
            Command::new(&self.binary)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            &[],
        )
        .map_err(|e| NetworkError::Iptables(format!("running {}: {e}", self.binary)))?;
        if !out.status.success() {
            return Err(NetworkError::Iptables(format!(
                "{} {}: {}",
                self.binary,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Firewall for Iptables {
    fn apply(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError> {
        self.sync(bridges)
    }

    fn teardown(&self) -> Result<(), NetworkError> {
        self.sync(&[])
    }

    /// Every rule of this driver is in a chain the host or dockerd owns.
    fn release_shared(&self) -> Result<(), NetworkError> {
        self.teardown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ipam::Subnet;

    fn br(name: &str) -> BridgeRule {
        BridgeRule {
            bridge: name.into(),
            subnet: Subnet::parse("172.18.0.0/16").unwrap(),
            internal: false,
        }
    }

    fn line(chain: &str, spec: &[String]) -> String {
        format!("-A {chain} {}\n", spec.join(" "))
    }

    const TAG: &str = "berth_0badcafe";

    #[test]
    fn probe_decides_whether_and_where() {
        let open = Probe {
            forward: "-P FORWARD ACCEPT\n".into(),
            docker_user: None,
        };
        assert!(!open.host_drops());
        let dropping = Probe {
            forward: "-P FORWARD DROP\n-A FORWARD -j DOCKER-FORWARD\n".into(),
            docker_user: None,
        };
        assert!(dropping.host_drops());
        assert_eq!(dropping.chain(), FORWARD);
        let docker = Probe {
            forward: "-P FORWARD DROP\n".into(),
            docker_user: Some("-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n".into()),
        };
        assert_eq!(docker.chain(), DOCKER_USER);
        // A rule that merely mentions DROP is not the policy.
        assert!(!forward_policy_drops(
            "-P FORWARD ACCEPT\n-A FORWARD -i x -j DROP\n"
        ));
    }

    #[test]
    fn nothing_to_do_on_an_open_host() {
        let p = Probe {
            forward: "-P FORWARD ACCEPT\n-A FORWARD -i eth0 -j ACCEPT\n".into(),
            docker_user: None,
        };
        assert!(plan(&p, TAG, &[br("br-a")]).is_empty());
    }

    #[test]
    fn inserts_accepts_into_docker_user_ahead_of_its_return() {
        let p = Probe {
            forward: "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n".into(),
            docker_user: Some("-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n".into()),
        };
        let cmds = plan(&p, TAG, &[br("br-a"), br("berth0")]);
        let text: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            text,
            [
                "-w -I DOCKER-USER -o berth0 -m comment --comment berth_0badcafe -j ACCEPT",
                "-w -I DOCKER-USER -i berth0 -m comment --comment berth_0badcafe -j ACCEPT",
                "-w -I DOCKER-USER -o br-a -m comment --comment berth_0badcafe -j ACCEPT",
                "-w -I DOCKER-USER -i br-a -m comment --comment berth_0badcafe -j ACCEPT",
            ]
        );
    }

    #[test]
    fn keeps_present_rules_deletes_stale_ones_and_leaves_others_alone() {
        let want = wanted_rules(TAG, &[br("br-a")]);
        let stale = wanted_rules(TAG, &[br("br-gone")]);
        let other_engine = wanted_rules("berth_11111111", &[br("br-x")]);
        let mut docker_user = String::from("-N DOCKER-USER\n");
        for spec in want.iter().chain(&stale).chain(&other_engine) {
            docker_user.push_str(&line(DOCKER_USER, spec));
        }
        docker_user.push_str("-A DOCKER-USER -j RETURN\n");
        // Left in FORWARD from before dockerd arrived: moves to DOCKER-USER.
        let forward = format!("-P FORWARD DROP\n{}", line(FORWARD, &want[0]));
        let p = Probe {
            forward,
            docker_user: Some(docker_user),
        };
        let cmds = plan(&p, TAG, &[br("br-a")]);
        let text: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            text,
            [
                "-w -D FORWARD -i br-a -m comment --comment berth_0badcafe -j ACCEPT",
                "-w -D DOCKER-USER -i br-gone -m comment --comment berth_0badcafe -j ACCEPT",
                "-w -D DOCKER-USER -o br-gone -m comment --comment berth_0badcafe -j ACCEPT",
            ]
        );
    }

    #[test]
    fn teardown_removes_only_ours_and_duplicates_collapse() {
        let want = wanted_rules(TAG, &[br("br-a")]);
        let forward = format!(
            "-P FORWARD DROP\n{}{}-A FORWARD -i br-a -j ACCEPT\n",
            line(FORWARD, &want[0]),
            line(FORWARD, &want[0])
        );
        let p = Probe {
            forward: forward.clone(),
            docker_user: None,
        };
        // Applying again keeps one copy.
        let again: Vec<String> = plan(&p, TAG, &[br("br-a")])
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            again,
            [
                "-w -D FORWARD -i br-a -m comment --comment berth_0badcafe -j ACCEPT",
                "-w -I FORWARD -o br-a -m comment --comment berth_0badcafe -j ACCEPT",
            ]
        );
        // Teardown: both tagged copies go, the untagged rule stays.
        let gone = plan(&p, TAG, &[]);
        assert_eq!(gone.len(), 2);
        assert!(gone
            .iter()
            .all(|c| c[1] == "-D" && c.contains(&TAG.to_string())));
    }

    #[test]
    fn quoted_comments_are_read_as_ours() {
        let l = "-A FORWARD -i br-a -m comment --comment \"berth_0badcafe\" -j ACCEPT\n";
        assert_eq!(
            tagged_rules(l, FORWARD, TAG),
            wanted_rules(TAG, &[br("br-a")])[..1]
        );
        assert!(tagged_rules(l, DOCKER_USER, TAG).is_empty());
    }

    /// Runs the driver against a real iptables inside a scratch network namespace,
    /// so the host's own rules are never touched. Needs root and the binary.
    #[test]
    fn syncs_a_real_iptables_in_a_scratch_namespace() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || which("iptables").is_none() {
            eprintln!("skipped: needs root and iptables");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let ns = d.path().join("ns");
        crate::network::datapath::netns::create(&ns).unwrap();
        let result = crate::network::datapath::netns::run_in(&ns, || {
            let fw = Iptables::new(TAG.into());
            let sh = |args: &[&str]| {
                let out = Command::new("iptables").args(args).output()?;
                Ok::<_, std::io::Error>(String::from_utf8_lossy(&out.stdout).into_owned())
            };
            // An open host: nothing is added.
            fw.apply(&[br("br-a")]).map_err(std::io::Error::other)?;
            let open = sh(&["-S", "FORWARD"])?;
            // dockerd's shape: DROP policy, DOCKER-USER with its RETURN, a foreign rule.
            sh(&["-P", "FORWARD", "DROP"])?;
            sh(&["-N", "DOCKER-USER"])?;
            sh(&["-A", "DOCKER-USER", "-j", "RETURN"])?;
            sh(&["-A", "FORWARD", "-j", "DOCKER-USER"])?;
            fw.apply(&[br("br-a"), br("br-b")])
                .map_err(std::io::Error::other)?;
            fw.apply(&[br("br-a")]).map_err(std::io::Error::other)?;
            let applied = sh(&["-S", DOCKER_USER])?;
            fw.teardown().map_err(std::io::Error::other)?;
            let after = sh(&["-S", DOCKER_USER])?;
            Ok((open, applied, after))
        });
        crate::network::datapath::netns::remove(&ns);
        let (open, applied, after) = result.unwrap();
        assert!(!open.contains(TAG), "{open}");
        assert_eq!(
            tagged_rules(&applied, DOCKER_USER, TAG),
            wanted_rules(TAG, &[br("br-a")]),
            "{applied}"
        );
        assert!(applied.ends_with("-A DOCKER-USER -j RETURN\n"), "{applied}");
        assert_eq!(after, "-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n");
    }

    fn which(bin: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| std::path::Path::new(d).join(bin))
            .find(|p| p.exists())
    }
}
