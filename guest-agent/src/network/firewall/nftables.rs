//! The nftables firewall driver: masquerading and forwarding for bridge networks, as
//! one nftables table the engine owns: every rule Berth adds lives in it, so replacing or deleting the table touches
//! nothing else on the machine. The ruleset is generated as nft's own language and
//! loaded in one transaction by `nft -f -` (the `nftables` crate would shell out to
//! the same binary with JSON, for no gain here).

use std::process::{Command, Stdio};

use super::{BridgeRule, Firewall};
use crate::network::NetworkError;

pub struct Nftables {
    table: String,
}

impl Nftables {
    pub fn new(table: String) -> Nftables {
        Nftables { table }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

impl Firewall for Nftables {
    /// Replaces the table's contents with rules for `bridges` (atomically).
    fn apply(&self, bridges: &[BridgeRule]) -> Result<(), NetworkError> {
        run_nft(&script(&self.table, bridges))
    }

    /// Deletes the table: everything this driver added is in it.
    fn teardown(&self) -> Result<(), NetworkError> {
        run_nft(&teardown_script(&self.table))
    }
}

/// Declaring the table first makes the delete succeed when it is already gone.
pub fn teardown_script(table: &str) -> String {
    format!("table ip {table}\ndelete table ip {table}\n")
}

/// `table; delete table; table {…}` in one file: creates the table if missing, then
/// replaces it, in one transaction.
pub fn script(table: &str, bridges: &[BridgeRule]) -> String {
    let mut post = String::new();
    let mut fwd = String::new();
    for b in bridges {
        let br = &b.bridge;
        if b.internal {
            fwd.push_str(&format!(
                "    iifname \"{br}\" oifname != \"{br}\" drop\n    oifname \"{br}\" iifname != \"{br}\" drop\n"
            ));
        } else {
            post.push_str(&format!(
                "    ip saddr {} oifname != \"{br}\" masquerade\n",
                b.subnet
            ));
            fwd.push_str(&format!(
                "    iifname \"{br}\" accept\n    oifname \"{br}\" ct state established,related accept\n"
            ));
        }
    }
    format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{fwd}  }}\n}}\n"
    )
}

fn run_nft(script: &str) -> Result<(), NetworkError> {
    let out = crate::reaper::output(
        Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        script.as_bytes(),
    )
    .map_err(|e| NetworkError::Nft(format!("running nft: {e}")))?;
    if !out.status.success() {
        return Err(NetworkError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ipam::Subnet;

    #[test]
    fn script_shape() {
        let s = script(
            "berth_t",
            &[
                BridgeRule {
                    bridge: "br-a".into(),
                    subnet: Subnet::parse("172.18.0.0/16").unwrap(),
                    internal: false,
                },
                BridgeRule {
                    bridge: "br-b".into(),
                    subnet: Subnet::parse("172.19.0.0/16").unwrap(),
                    internal: true,
                },
            ],
        );
        assert!(s.starts_with("table ip berth_t\ndelete table ip berth_t\n"));
        assert!(s.contains("ip saddr 172.18.0.0/16 oifname != \"br-a\" masquerade"));
        assert!(
            !s.contains("172.19.0.0/16 oifname"),
            "internal networks are not NATed"
        );
        assert!(s.contains("iifname \"br-b\" oifname != \"br-b\" drop"));
    }

    #[test]
    fn applies_and_removes_a_real_table() {
        let table = format!("berth_test_{:08x}", rand::random::<u32>());
        let nat = Nftables::new(table.clone());
        nat.apply(&[BridgeRule {
            bridge: "br-nonexist".into(),
            subnet: Subnet::parse("10.250.0.0/24").unwrap(),
            internal: false,
        }])
        .unwrap();
        let listed = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listed.stdout);
        assert!(text.contains("masquerade"), "{text}");
        nat.teardown().unwrap();
        let gone = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap();
        assert!(!gone.status.success());
    }
}
