//! The network service's records and request shapes: networks with their
//! containers' addresses (persisted as `networks.json`), what a create or connect
//! asks for, what attaching a container produced, and lookup by name or id prefix.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ipam::{Subnet, Subnet6};
use super::NetworkError;

/// A container's address on one network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    pub container: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// Names it answers to on this network: its name, its short id, `--network-alias`.
    pub names: Vec<String>,
    /// The host end of its veth pair.
    #[serde(default)]
    pub host_if: String,
    /// Its IPv6 address on an `--ipv6` network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// Its endpoint's links (`--link target:alias` on this network): (alias, target),
    /// names only it resolves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// The Linux bridge behind a bridge network.
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// Predefined networks (`bridge`, `host`, `none`) cannot be removed.
    #[serde(default)]
    pub predefined: bool,
    /// `--ip-range`, `--aux-address` and `--ipam-opt`.
    #[serde(default)]
    pub ipam: IpamSettings,
    /// Running containers' addresses, by container id.
    #[serde(default)]
    pub attachments: BTreeMap<String, Attachment>,
}

impl NetworkRecord {
    /// User-defined bridge networks get name resolution; the default bridge does not.
    pub fn has_dns(&self) -> bool {
        self.driver == "bridge" && !self.predefined
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Store {
    pub networks: BTreeMap<String, NetworkRecord>,
    /// The nftables table this engine owns (for tooling that cleans up after it).
    #[serde(default)]
    pub table: String,
}

/// A network's IPAM settings beyond its subnet and gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpamSettings {
    /// Addresses are handed out from this part of the subnet only.
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// Addresses never handed out, by the name the user gave them.
    #[serde(default)]
    pub aux: BTreeMap<String, Ipv4Addr>,
    /// The IPAM driver's options, as given (`null` when none were).
    #[serde(default)]
    pub options: Option<HashMap<String, String>>,
    /// `--ipv6`: the network's IPv6 subnet, gateway and `--ip-range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Net>,
}

/// The IPv6 half of a dual-stack network.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ipv6Net {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
    #[serde(default)]
    pub ip_range: Option<Subnet6>,
}

/// What a network create request asks for.
#[derive(Debug, Default, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: HashMap<String, String>,
    pub options: HashMap<String, String>,
    pub check_duplicate: bool,
    /// `--ip-range` (a CIDR inside the subnet).
    pub ip_range: Option<String>,
    /// `--aux-address name=ip`.
    pub aux: HashMap<String, String>,
    pub ipam_options: Option<HashMap<String, String>>,
    /// `--ipv6`, with the IPv6 pool's subnet, gateway and range if given.
    pub enable_ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub ip_range6: Option<String>,
}

/// Where a container is asked to connect, from its create request.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
    /// `--mac-address`: the interface's MAC instead of the one derived from its IP.
    pub mac: Option<[u8; 6]>,
    /// The endpoint's links: (alias, target container name).
    pub links: Vec<(String, String)>,
    /// `--ip6` on an `--ipv6` network.
    pub ipv6: Option<Ipv6Addr>,
}

/// What `attach` set up for a container, for its spec and its inspect document.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    /// The namespace file, or None for `--network host`.
    pub netns: Option<PathBuf>,
    pub host: bool,
    /// By network name.
    pub endpoints: BTreeMap<String, WiredEndpoint>,
}

#[derive(Debug, Clone)]
pub struct WiredEndpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub aliases: Vec<String>,
    pub dns: bool,
    /// Address, prefix length and gateway on an `--ipv6` network.
    pub ipv6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
}

pub(super) use crate::clock::now;

pub(super) fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub(super) fn find<'a>(s: &'a Store, name_or_id: &str) -> Result<&'a NetworkRecord, NetworkError> {
    if let Some(n) = s.networks.values().find(|n| n.name == name_or_id) {
        return Ok(n);
    }
    if let Some(n) = s.networks.get(name_or_id) {
        return Ok(n);
    }
    let matches: Vec<&NetworkRecord> = s
        .networks
        .values()
        .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(NetworkError::NotFound(name_or_id.into())),
        _ => Err(NetworkError::InvalidArgument(format!(
            "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
            matches.len()
        ))),
    }
}

/// dockerd takes network names well beyond container names' rules (`test 01` is
/// one): Berth asks only for a leading letter or digit, and no `/` (the name must stay
/// addressable as `/networks/{name}`) or control characters.
pub(super) fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_alphanumeric())
        && n.chars().all(|ch| ch != '/' && !ch.is_control())
}

pub(super) fn sha_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lookup() {
        assert!(valid_name("my-net_1.x"));
        assert!(!valid_name("-bad"));
        assert!(valid_name("test 01"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a\nb"));
        let mut s = Store::default();
        for (id, name) in [("abc123", "one"), ("abd456", "two")] {
            s.networks.insert(
                id.into(),
                NetworkRecord {
                    id: id.into(),
                    name: name.into(),
                    driver: "bridge".into(),
                    created: String::new(),
                    subnet: None,
                    gateway: None,
                    bridge: None,
                    internal: false,
                    attachable: false,
                    labels: HashMap::new(),
                    options: HashMap::new(),
                    predefined: false,
                    ipam: Default::default(),
                    attachments: BTreeMap::new(),
                },
            );
        }
        assert_eq!(find(&s, "two").unwrap().id, "abd456");
        assert_eq!(find(&s, "abc").unwrap().name, "one");
        assert!(matches!(
            find(&s, "ab"),
            Err(NetworkError::InvalidArgument(_))
        ));
        assert!(matches!(find(&s, "zz"), Err(NetworkError::NotFound(_))));
    }
}
