//! The network service: its state (the networks and their containers' addresses,
//! the embedded DNS's name tables and resolvers, published ports), opening it on
//! top of a datapath and a firewall, and the network verbs (create, remove, prune,
//! get, list). Wiring containers lives in `attach.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::datapath::{self, Datapath};
use super::firewall::{self, BridgeRule, Firewall};
use super::ipam::{self, Subnet};
use super::records::{find, new_id, now, sha_hex, valid_name, Store};
use super::{dns, io_err, ports, CreateRequest, NetworkError, NetworkRecord};
use crate::fsutil::atomic_write;

pub struct NetworkService {
    dir: PathBuf,
    pub(super) netns_dir: PathBuf,
    store: Mutex<Store>,
    /// Bridges, veths and namespaces: the kernel, or a fake in tests.
    pub(super) datapath: Arc<dyn Datapath>,
    /// Masquerading and forwarding for the bridges.
    firewall: Arc<dyn Firewall>,
    /// The names every embedded resolver answers from.
    names: dns::Table,
    /// Each container's resolver at 127.0.0.11, by container id.
    resolvers: Mutex<HashMap<String, dns::Server>>,
    pub ports: ports::Ports,
    /// Bridges of removed networks still being deleted: the kernel takes ~40 ms per
    /// bridge (an RCU grace period), which `network rm` and `compose down` need not
    /// wait for; anything that creates a bridge waits for them first, so an old
    /// bridge never shares a subnet with a new one. An async lock, held while waiting:
    /// a second waiter must not find the list empty while the first still waits.
    deleting: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The nftables table (and iptables comment) of the engine whose state is at `root`:
/// one per engine, so engines sharing a machine never touch each other's rules.
pub fn table_name(root: &Path) -> String {
    format!("berth_{}", &sha_hex(root.to_string_lossy().as_bytes())[..8])
}

impl NetworkService {
    /// Loads the networks, creating the predefined ones (and the default bridge's Linux
    /// bridge, named `bridge_name`) on first start, on the host's kernel and firewall.
    pub async fn open(root: &Path, bridge_name: &str) -> Result<Arc<NetworkService>, NetworkError> {
        let firewall = Arc::new(firewall::host(table_name(root)));
        Self::open_with(
            root,
            bridge_name,
            Arc::new(datapath::linux::Linux),
            firewall,
        )
        .await
    }

    /// [`Self::open`] on the given datapath and firewall.
    pub async fn open_with(
        root: &Path,
        bridge_name: &str,
        datapath: Arc<dyn Datapath>,
        firewall: Arc<dyn Firewall>,
    ) -> Result<Arc<NetworkService>, NetworkError> {
        let dir = root.join("network");
        std::fs::create_dir_all(&dir).map_err(io_err("creating the network dir"))?;
        let netns_dir = dir.join("netns");
        std::fs::create_dir_all(&netns_dir).map_err(io_err("creating the netns dir"))?;
        let mut store: Store = match std::fs::read(dir.join("networks.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                io_err("reading networks.json")(std::io::Error::other(e.to_string()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Store::default(),
            Err(e) => return Err(io_err("reading networks.json")(e)),
        };
        // Running containers are re-attached by the container service; addresses of
        // containers that died with the engine are released when it reconciles.
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if !store
                .networks
                .values()
                .any(|n| n.name == name && n.predefined)
            {
                let id = new_id();
                store.networks.insert(
                    id.clone(),
                    NetworkRecord {
                        id,
                        name: name.into(),
                        driver: driver.into(),
                        created: now(),
                        subnet: None,
                        gateway: None,
                        bridge: (name == "bridge").then(|| bridge_name.to_string()),
                        internal: false,
                        attachable: false,
                        labels: HashMap::new(),
                        options: HashMap::new(),
                        predefined: true,
                        ipam: Default::default(),
                        attachments: BTreeMap::new(),
                    },
                );
            }
        }
        store.table = table_name(root);
        let svc = Arc::new(NetworkService {
            dir,
            netns_dir,
            store: Mutex::new(store),
            datapath,
            firewall,
            names: Arc::default(),
            resolvers: Mutex::new(HashMap::new()),
            ports: ports::Ports::default(),
            deleting: tokio::sync::Mutex::new(Vec::new()),
        });
        svc.bring_up_all().await?;
        Ok(svc)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn save(&self, store: &Store) -> Result<(), NetworkError> {
        let bytes = serde_json::to_vec_pretty(store)
            .map_err(|e| io_err("encoding networks")(std::io::Error::other(e.to_string())))?;
        atomic_write(&self.dir.join("networks.json"), &bytes).map_err(io_err("saving networks"))
    }

    /// Bridges and their addresses, the NAT table and the DNS servers, for every bridge
    /// network (subnets are chosen here on first start).
    async fn bring_up_all(&self) -> Result<(), NetworkError> {
        let _guard = self.datapath.lock_host()?;
        let ids: Vec<String> = self
            .lock()
            .networks
            .values()
            .filter(|n| n.driver == "bridge")
            .map(|n| n.id.clone())
            .collect();
        for id in ids {
            self.ensure_subnet(&id)?;
            let n = self.get(&id)?;
            if let (Some(br), Some(gw), Some(sn)) = (&n.bridge, n.gateway, n.subnet) {
                self.datapath.ensure_bridge(br, gw, &sn).await?;
            }
        }
        self.apply_firewall()?;
        self.publish_names();
        let s = self.lock();
        self.save(&s)
    }

    /// Gives a bridge network without a subnet the first free default pool.
    fn ensure_subnet(&self, id: &str) -> Result<(), NetworkError> {
        let mut used = self.datapath.routed_subnets();
        let mut s = self.lock();
        used.extend(s.networks.values().filter_map(|n| n.subnet));
        let n = s
            .networks
            .get_mut(id)
            .ok_or_else(|| NetworkError::NotFound(id.into()))?;
        if n.subnet.is_none() {
            let subnet = ipam::pick_subnet(&used).ok_or_else(|| {
                NetworkError::Forbidden(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                )
            })?;
            n.subnet = Some(subnet);
            n.gateway = Some(subnet.first_host());
        }
        Ok(())
    }

    /// The engine is stopping: rules in chains other programs own go (see
    /// [`Firewall::release_shared`]).
    pub fn release_shared_rules(&self) {
        if let Err(e) = self.firewall.release_shared() {
            tracing::warn!(error = %e, "removing Berth's rules from the host's chains");
        }
    }

    /// Hands the firewall the set of bridge networks as it is now.
    pub(super) fn apply_firewall(&self) -> Result<(), NetworkError> {
        let rules: Vec<BridgeRule> = self
            .lock()
            .networks
            .values()
            .filter_map(|n| {
                Some(BridgeRule {
                    bridge: n.bridge.clone()?,
                    subnet: n.subnet?,
                    internal: n.internal,
                })
            })
            .collect();
        self.firewall.apply(&rules)
    }

    pub(super) fn resolvers(&self) -> MutexGuard<'_, HashMap<String, dns::Server>> {
        self.resolvers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the name tables from the attachments (after every change).
    pub(super) fn publish_names(&self) {
        let s = self.lock();
        let mut t = self.names.lock().unwrap_or_else(|p| p.into_inner());
        t.clear();
        for n in s.networks.values().filter(|n| n.has_dns()) {
            let names = n
                .attachments
                .values()
                .flat_map(|a| {
                    let ips = std::iter::once(IpAddr::V4(a.ip)).chain(a.ipv6.map(IpAddr::V6));
                    ips.flat_map(move |ip| {
                        a.names.iter().map(move |name| (name.to_lowercase(), ip))
                    })
                })
                .collect();
            let members = n.attachments.keys().cloned().collect();
            let links = n
                .attachments
                .iter()
                .filter(|(_, a)| !a.links.is_empty())
                .map(|(id, a)| {
                    let l = a
                        .links
                        .iter()
                        .map(|(alias, target)| (alias.to_lowercase(), target.to_lowercase()))
                        .collect();
                    (id.clone(), l)
                })
                .collect();
            t.insert(
                n.id.clone(),
                dns::NetNames {
                    names,
                    members,
                    links,
                },
            );
        }
    }

    /// Opens container `id`'s resolver at 127.0.0.11:53 inside its namespace.
    pub async fn start_resolver(&self, id: &str) -> Result<(), NetworkError> {
        let Some(path) = self.netns_of(id) else {
            return Ok(());
        };
        let sock = self
            .datapath
            .bind_udp_in(&path, SocketAddrV4::new(dns::RESOLVER, 53))
            .await
            .map_err(io_err("opening the embedded DNS socket"))?;
        let server = dns::Server::start(sock, id.to_string(), dns::Lookup::new(self.names.clone()))
            .map_err(io_err("starting the embedded DNS"))?;
        self.resolvers().insert(id.to_string(), server);
        Ok(())
    }

    /// Whether container `id` is on a network with name resolution.
    pub fn wants_resolver(&self, id: &str) -> bool {
        self.lock()
            .networks
            .values()
            .any(|n| n.has_dns() && n.attachments.contains_key(id))
    }

    pub fn get(&self, name_or_id: &str) -> Result<NetworkRecord, NetworkError> {
        let s = self.lock();
        find(&s, name_or_id).cloned()
    }

    pub fn list(&self) -> Vec<NetworkRecord> {
        let mut v: Vec<NetworkRecord> = self.lock().networks.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub async fn create(&self, req: CreateRequest) -> Result<NetworkRecord, NetworkError> {
        let driver = req.driver.clone().unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            return Err(NetworkError::InvalidArgument(format!(
                "plugin \"{driver}\" not found"
            )));
        }
        if req.name.is_empty() || !valid_name(&req.name) {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid network name {:?}",
                req.name
            )));
        }
        let subnet = match &req.subnet {
            Some(s) => Some(
                Subnet::parse(s)
                    .ok_or_else(|| NetworkError::InvalidArgument(format!("invalid subnet {s}")))?,
            ),
            None => None,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    NetworkError::InvalidArgument(format!("invalid gateway address {g}"))
                })?;
                match subnet {
                    Some(s) if !s.contains(ip) => {
                        return Err(NetworkError::InvalidArgument(format!(
                            "no matching subnet for gateway {g}"
                        )))
                    }
                    None => {
                        return Err(NetworkError::InvalidArgument(
                            "a gateway needs a subnet (--subnet)".into(),
                        ))
                    }
                    _ => Some(ip),
                }
            }
            None => subnet.map(|s| s.first_host()),
        };
        let mut ipam = ipam_settings(&req, subnet)?;
        self.settle().await;
        let id = new_id();
        ipam.ipv6 = ipv6_settings(&req, &id)?;
        let _guard = self.datapath.lock_host()?;
        {
            let mut s = self.lock();
            if s.networks.values().any(|n| n.name == req.name) {
                return Err(NetworkError::Conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            if let Some(v6) = ipam.ipv6 {
                let clash = s
                    .networks
                    .values()
                    .filter_map(|n| n.ipam.ipv6)
                    .any(|o| o.subnet.overlaps(&v6.subnet));
                if clash {
                    return Err(NetworkError::Forbidden(
                        "Pool overlaps with other one on this address space".into(),
                    ));
                }
            }
            if let Some(sn) = subnet {
                let mut used = self.datapath.routed_subnets();
                used.extend(s.networks.values().filter_map(|n| n.subnet));
                if used.iter().any(|u| u.overlaps(&sn)) {
                    return Err(NetworkError::Forbidden(
                        "Pool overlaps with other one on this address space".into(),
                    ));
                }
            }
            s.networks.insert(
                id.clone(),
                NetworkRecord {
                    id: id.clone(),
                    name: req.name.clone(),
                    driver,
                    created: now(),
                    subnet,
                    gateway,
                    bridge: Some(format!("br-{}", &id[..12])),
                    internal: req.internal,
                    attachable: req.attachable,
                    labels: req.labels.clone(),
                    options: req.options.clone(),
                    predefined: false,
                    ipam,
                    attachments: BTreeMap::new(),
                },
            );
        }
        let result = async {
            self.ensure_subnet(&id)?;
            let n = self.get(&id)?;
            if let (Some(br), Some(gw), Some(sn)) = (&n.bridge, n.gateway, n.subnet) {
                self.datapath.ensure_bridge(br, gw, &sn).await?;
                if let Some(v6) = n.ipam.ipv6 {
                    self.datapath
                        .bridge_ipv6(br, v6.gateway, v6.subnet.prefix)
                        .await?;
                }
            }
            self.apply_firewall()?;
            Ok::<_, NetworkError>(n)
        }
        .await;
        match result {
            Ok(n) => {
                let s = self.lock();
                self.save(&s)?;
                Ok(n)
            }
            Err(e) => {
                let n = self.lock().networks.remove(&id);
                if let Some(br) = n.and_then(|n| n.bridge) {
                    let _ = self.datapath.delete_bridge(&br).await;
                }
                Err(e)
            }
        }
    }

    pub async fn remove(&self, name_or_id: &str) -> Result<(), NetworkError> {
        let n = self.get(name_or_id)?;
        if n.predefined {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !n.attachments.is_empty() {
            return Err(NetworkError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        {
            let mut s = self.lock();
            s.networks.remove(&n.id);
            self.save(&s)?;
        }
        if let Some(br) = n.bridge.clone() {
            let datapath = self.datapath.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = datapath.delete_bridge(&br).await {
                    tracing::warn!(bridge = %br, error = %e, "deleting a removed network's bridge");
                }
            });
            self.deleting.lock().await.push(task);
        }
        self.apply_firewall()
    }

    /// Waits until the bridges of removed networks are gone.
    pub async fn settle(&self) {
        let mut pending = self.deleting.lock().await;
        for task in pending.drain(..) {
            let _ = task.await;
        }
    }

    /// Removes every user-defined network without containers; returns their names.
    pub async fn prune(&self, keep: impl Fn(&NetworkRecord) -> bool) -> Vec<String> {
        let doomed: Vec<NetworkRecord> = self
            .list()
            .into_iter()
            .filter(|n| !n.predefined && n.attachments.is_empty() && !keep(n))
            .collect();
        let mut gone = Vec::new();
        for n in doomed {
            if self.remove(&n.id).await.is_ok() {
                gone.push(n.name);
            }
        }
        gone
    }

    /// The gateway address of `network` (the bridge's own address).
    pub fn gateway_of(&self, network: &str) -> Option<Ipv4Addr> {
        self.get(network).ok().and_then(|n| n.gateway)
    }
}

/// `--ip-range`, `--aux-address` and `--ipam-opt`, checked against the subnet as
/// dockerd checks them.
fn ipam_settings(
    req: &CreateRequest,
    subnet: Option<Subnet>,
) -> Result<super::records::IpamSettings, NetworkError> {
    let needs_subnet = || {
        NetworkError::InvalidArgument(
            "an IP range or auxiliary address needs a subnet (--subnet)".into(),
        )
    };
    let ip_range = match &req.ip_range {
        None => None,
        Some(r) => {
            let range = Subnet::parse(r)
                .ok_or_else(|| NetworkError::InvalidArgument(format!("invalid ip range {r}")))?;
            let sn = subnet.ok_or_else(needs_subnet)?;
            if !sn.contains(Ipv4Addr::from(range.network())) || range.prefix < sn.prefix {
                return Err(NetworkError::InvalidArgument(format!(
                    "invalid pool request: ip range {r} is not within subnet {sn}"
                )));
            }
            Some(range)
        }
    };
    let mut aux = BTreeMap::new();
    for (name, ip) in &req.aux {
        let addr: Ipv4Addr = ip.parse().map_err(|_| {
            NetworkError::InvalidArgument(format!("invalid auxiliary address {name}={ip}"))
        })?;
        if !subnet.ok_or_else(needs_subnet)?.contains(addr) {
            return Err(NetworkError::InvalidArgument(format!(
                "no matching subnet for aux-address {ip}"
            )));
        }
        aux.insert(name.clone(), addr);
    }
    Ok(super::records::IpamSettings {
        ip_range,
        aux,
        options: req.ipam_options.clone(),
        ipv6: None,
    })
}

/// `--ipv6` with its pool (a unique-local /64 of the network's own when none is
/// given); an IPv6 pool without `--ipv6` is refused rather than dropped.
fn ipv6_settings(
    req: &CreateRequest,
    id: &str,
) -> Result<Option<super::records::Ipv6Net>, NetworkError> {
    use super::ipam::Subnet6;
    let bad = |m: String| NetworkError::InvalidArgument(m);
    if !req.enable_ipv6 {
        return match &req.subnet6 {
            Some(s) => Err(bad(format!(
                "IPv6 subnet {s} given, but the network does not enable IPv6 (--ipv6)"
            ))),
            None => Ok(None),
        };
    }
    let subnet = match &req.subnet6 {
        Some(s) => Subnet6::parse(s).ok_or_else(|| bad(format!("invalid subnet {s}")))?,
        None => Subnet6::ula_for(id),
    };
    let gateway = match &req.gateway6 {
        Some(g) => {
            let ip: std::net::Ipv6Addr = g
                .parse()
                .map_err(|_| bad(format!("invalid gateway address {g}")))?;
            if !subnet.contains(ip) {
                return Err(bad(format!("no matching subnet for gateway {g}")));
            }
            ip
        }
        None => subnet.nth(1),
    };
    let ip_range = match &req.ip_range6 {
        Some(r) => {
            let range = Subnet6::parse(r).ok_or_else(|| bad(format!("invalid ip range {r}")))?;
            if !subnet.contains(range.addr) || range.prefix < subnet.prefix {
                return Err(bad(format!(
                    "invalid pool request: ip range {r} is not within subnet {subnet}"
                )));
            }
            Some(range)
        }
        None => None,
    };
    Ok(Some(super::records::Ipv6Net {
        subnet,
        gateway,
        ip_range,
    }))
}
