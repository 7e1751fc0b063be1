//! Networks: the predefined `bridge`, `host` and `none`, user-defined bridge networks,
//! addresses for containers (persisted), the per-container network namespace and its
//! veth pairs, the `/etc` files a container sees, published ports and the embedded DNS.
//! Nothing here knows about HTTP.

pub mod dns;
pub mod etc;
pub mod ipam;
pub mod link;
pub mod nat;
pub mod netns;
pub mod ports;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::fsutil::atomic_write;
use ipam::Subnet;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Removing a predefined network or one with endpoints: dockerd answers 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nftables: {0}")]
    Nft(String),
    /// A published port that cannot be bound: dockerd's wording, a 500.
    #[error("{0}")]
    Port(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let context = context.into();
    move |source| NetworkError::Io { context, source }
}

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
struct Store {
    networks: BTreeMap<String, NetworkRecord>,
    /// The nftables table this engine owns (for tooling that cleans up after it).
    #[serde(default)]
    table: String,
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
}

/// Where a container is asked to connect, from its create request.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
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
}

pub struct NetworkService {
    dir: PathBuf,
    netns_dir: PathBuf,
    store: Mutex<Store>,
    /// The nftables table this engine owns (all its rules live there).
    nat: nat::Nat,
    /// The names every embedded resolver answers from.
    names: dns::Table,
    /// Each container's resolver at 127.0.0.11, by container id.
    resolvers: Mutex<HashMap<String, dns::Server>>,
    pub ports: ports::Ports,
}

/// Serialises subnet choice across engines on one machine: each picks a subnet no
/// route uses, then creates its bridge, before the next one looks.
fn host_lock() -> Result<std::fs::File, NetworkError> {
    let dir = Path::new("/run/berth");
    std::fs::create_dir_all(dir).map_err(io_err("creating /run/berth"))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("ipam.lock"))
        .map_err(io_err("opening the ipam lock"))?;
    // Held until the file is dropped.
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
        return Err(io_err("locking ipam")(std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// IPv4 subnets the machine already routes (so a new network never shadows them).
fn host_subnets() -> Vec<Subnet> {
    let Ok(s) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None; // the default route covers everything; ignore it
            }
            // The kernel prints the in-memory (network order) word as a native integer.
            let addr = Ipv4Addr::from(dest.to_ne_bytes());
            Some(Subnet {
                addr,
                prefix: u32::from_be_bytes(mask.to_ne_bytes()).leading_ones() as u8,
            })
        })
        .collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl NetworkService {
    /// Loads the networks, creating the predefined ones (and the default bridge's Linux
    /// bridge, named `bridge_name`) on first start.
    pub async fn open(root: &Path, bridge_name: &str) -> Result<Arc<NetworkService>, NetworkError> {
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
                        attachments: BTreeMap::new(),
                    },
                );
            }
        }
        let table = format!("berth_{}", &sha_hex(root.to_string_lossy().as_bytes())[..8]);
        store.table = table.clone();
        let svc = Arc::new(NetworkService {
            dir,
            netns_dir,
            store: Mutex::new(store),
            nat: nat::Nat::new(table),
            names: Arc::default(),
            resolvers: Mutex::new(HashMap::new()),
            ports: ports::Ports::default(),
        });
        svc.bring_up_all().await?;
        Ok(svc)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, store: &Store) -> Result<(), NetworkError> {
        let bytes = serde_json::to_vec_pretty(store)
            .map_err(|e| io_err("encoding networks")(std::io::Error::other(e.to_string())))?;
        atomic_write(&self.dir.join("networks.json"), &bytes).map_err(io_err("saving networks"))
    }

    /// Bridges and their addresses, the NAT table and the DNS servers, for every bridge
    /// network (subnets are chosen here on first start).
    async fn bring_up_all(&self) -> Result<(), NetworkError> {
        let _guard = host_lock()?;
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
                link::ensure_bridge(br, gw, &sn).await?;
            }
        }
        self.apply_nat()?;
        self.publish_names();
        let s = self.lock();
        self.save(&s)
    }

    /// Gives a bridge network without a subnet the first free default pool.
    fn ensure_subnet(&self, id: &str) -> Result<(), NetworkError> {
        let mut used = host_subnets();
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

    fn apply_nat(&self) -> Result<(), NetworkError> {
        let rules: Vec<nat::BridgeRule> = self
            .lock()
            .networks
            .values()
            .filter_map(|n| {
                Some(nat::BridgeRule {
                    bridge: n.bridge.clone()?,
                    subnet: n.subnet?,
                    internal: n.internal,
                })
            })
            .collect();
        self.nat.apply(&rules)
    }

    fn resolvers(&self) -> MutexGuard<'_, HashMap<String, dns::Server>> {
        self.resolvers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the name tables from the attachments (after every change).
    fn publish_names(&self) {
        let s = self.lock();
        let mut t = self.names.lock().unwrap_or_else(|p| p.into_inner());
        t.clear();
        for n in s.networks.values().filter(|n| n.has_dns()) {
            let names = n
                .attachments
                .values()
                .flat_map(|a| a.names.iter().map(move |name| (name.to_lowercase(), a.ip)))
                .collect();
            let members = n.attachments.keys().cloned().collect();
            t.insert(n.id.clone(), dns::NetNames { names, members });
        }
    }

    /// Opens container `id`'s resolver at 127.0.0.11:53 inside its namespace.
    pub async fn start_resolver(&self, id: &str) -> Result<(), NetworkError> {
        let Some(path) = self.netns_of(id) else {
            return Ok(());
        };
        let sock = tokio::task::spawn_blocking(move || {
            netns::run_in(&path, || std::net::UdpSocket::bind((dns::RESOLVER, 53)))
        })
        .await
        .map_err(|e| NetworkError::Netlink(e.to_string()))?
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
        let _guard = host_lock()?;
        let id = new_id();
        {
            let mut s = self.lock();
            if s.networks.values().any(|n| n.name == req.name) {
                return Err(NetworkError::Conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            if let Some(sn) = subnet {
                let mut used = host_subnets();
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
                    attachments: BTreeMap::new(),
                },
            );
        }
        let result = async {
            self.ensure_subnet(&id)?;
            let n = self.get(&id)?;
            if let (Some(br), Some(gw), Some(sn)) = (&n.bridge, n.gateway, n.subnet) {
                link::ensure_bridge(br, gw, &sn).await?;
            }
            self.apply_nat()?;
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
                    let _ = link::delete(&br).await;
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
        if let Some(br) = &n.bridge {
            link::delete(br).await?;
        }
        self.apply_nat()
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

    /// Sets up container `id`'s networking for `mode` (HostConfig.NetworkMode) plus
    /// the extra networks of its create request. Undone by [`Self::detach`].
    pub async fn attach(
        &self,
        id: &str,
        name: &str,
        mode: &str,
        extra: &[EndpointRequest],
        container_netns: impl Fn(&str) -> Option<PathBuf>,
    ) -> Result<Wiring, NetworkError> {
        match mode {
            "host" => {
                return Ok(Wiring {
                    netns: None,
                    host: true,
                    endpoints: BTreeMap::new(),
                })
            }
            m if m.starts_with("container:") => {
                let other = &m["container:".len()..];
                let path = container_netns(other).ok_or_else(|| {
                    NetworkError::Conflict(format!(
                        "cannot join network of a non running container: {other}"
                    ))
                })?;
                return Ok(Wiring {
                    netns: Some(path),
                    host: false,
                    endpoints: BTreeMap::new(),
                });
            }
            _ => {}
        }
        let path = netns::path_for(&self.netns_dir, id);
        netns::remove(&path);
        {
            let p = path.clone();
            tokio::task::spawn_blocking(move || netns::create(&p))
                .await
                .map_err(|e| NetworkError::Netlink(e.to_string()))?
                .map_err(io_err("creating the network namespace"))?;
        }
        let mut wiring = Wiring {
            netns: Some(path.clone()),
            host: false,
            endpoints: BTreeMap::new(),
        };
        let result = async {
            if mode == "none" {
                return link::loopback_only(&path).await;
            }
            let primary = if mode == "default" { "bridge" } else { mode };
            let mut wanted: Vec<EndpointRequest> = Vec::new();
            let first = extra
                .iter()
                .find(|e| {
                    self.get(&e.network).ok().map(|n| n.id) == self.get(primary).ok().map(|n| n.id)
                })
                .cloned()
                .unwrap_or(EndpointRequest {
                    network: primary.to_string(),
                    ..Default::default()
                });
            wanted.push(first);
            for e in extra {
                if !wanted.iter().any(|w| self.same(&w.network, &e.network)) {
                    wanted.push(e.clone());
                }
            }
            for (i, req) in wanted.iter().enumerate() {
                let ep = self.connect_one(id, name, req, &path, i).await?;
                wiring.endpoints.insert(ep.0, ep.1);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            self.detach(id).await;
            return Err(e);
        }
        self.publish_names();
        if wiring.endpoints.values().any(|e| e.dns) {
            if let Err(e) = self.start_resolver(id).await {
                self.detach(id).await;
                return Err(e);
            }
        }
        Ok(wiring)
    }

    /// Connects a running container (namespace at `netns`) to one more network, as
    /// interface `eth<index>`.
    pub async fn connect_running(
        &self,
        id: &str,
        name: &str,
        req: &EndpointRequest,
        netns: &Path,
        index: usize,
    ) -> Result<Wiring, NetworkError> {
        let had_resolver = self.resolvers().contains_key(id);
        let (net, ep) = self.connect_one(id, name, req, netns, index).await?;
        self.publish_names();
        if ep.dns && !had_resolver {
            self.start_resolver(id).await?;
        }
        let mut endpoints = BTreeMap::new();
        endpoints.insert(net, ep);
        Ok(Wiring {
            netns: Some(netns.to_path_buf()),
            host: false,
            endpoints,
        })
    }

    /// Takes a running container off one network: its veth goes (the container's end
    /// with it) and its address is released.
    pub async fn disconnect_running(&self, id: &str, network: &str) -> Result<(), NetworkError> {
        let n = self.get(network)?;
        let att = {
            let mut s = self.lock();
            let rec = s
                .networks
                .get_mut(&n.id)
                .ok_or_else(|| NetworkError::NotFound(network.into()))?;
            let att = rec.attachments.remove(id);
            self.save(&s)?;
            att
        };
        if let Some(a) = att.filter(|a| !a.host_if.is_empty()) {
            link::delete(&a.host_if).await?;
        }
        self.publish_names();
        if !self.wants_resolver(id) {
            self.resolvers().remove(id);
        }
        Ok(())
    }

    fn same(&self, a: &str, b: &str) -> bool {
        match (self.get(a), self.get(b)) {
            (Ok(x), Ok(y)) => x.id == y.id,
            _ => false,
        }
    }

    async fn connect_one(
        &self,
        id: &str,
        name: &str,
        req: &EndpointRequest,
        netns: &Path,
        index: usize,
    ) -> Result<(String, WiredEndpoint), NetworkError> {
        let n = self.get(&req.network)?;
        if n.driver != "bridge" {
            return Err(NetworkError::InvalidArgument(format!(
                "container cannot be connected to network {} ({} driver) together with others",
                n.name, n.driver
            )));
        }
        let (subnet, gateway, bridge) = match (n.subnet, n.gateway, n.bridge.clone()) {
            (Some(s), Some(g), Some(b)) => (s, g, b),
            _ => return Err(NetworkError::NotFound(n.name.clone())),
        };
        let host_if = format!("veth{}", &new_id()[..7]);
        let mut names = vec![name.to_string(), id[..12].to_string()];
        names.extend(req.aliases.iter().cloned());
        let ip = {
            let mut s = self.lock();
            let rec = s
                .networks
                .get_mut(&n.id)
                .ok_or_else(|| NetworkError::NotFound(n.name.clone()))?;
            let mut taken: BTreeSet<Ipv4Addr> = rec
                .attachments
                .values()
                .filter(|a| a.container != id)
                .map(|a| a.ip)
                .collect();
            taken.insert(gateway);
            let ip = match req.ipv4 {
                Some(ip) if !subnet.contains(ip) => {
                    return Err(NetworkError::InvalidArgument(format!(
                        "no configured subnet contains IP address {ip}"
                    )))
                }
                Some(ip) if taken.contains(&ip) => {
                    return Err(NetworkError::Conflict(format!(
                        "Address already in use: {ip}"
                    )))
                }
                Some(ip) => ip,
                None => ipam::next_free(&subnet, &taken).ok_or_else(|| {
                    NetworkError::Forbidden(format!(
                        "no available IPv4 addresses on network {}",
                        n.name
                    ))
                })?,
            };
            let mac = ipam::mac_string(&ipam::mac_for(ip));
            rec.attachments.insert(
                id.to_string(),
                Attachment {
                    container: id.to_string(),
                    endpoint_id: new_id(),
                    ip,
                    mac,
                    names: if n.has_dns() {
                        names.clone()
                    } else {
                        Vec::new()
                    },
                    host_if: host_if.clone(),
                },
            );
            self.save(&s)?;
            ip
        };
        let ep = link::Endpoint {
            ip,
            subnet,
            gateway,
            mac: ipam::mac_for(ip),
            ifname: format!("eth{index}"),
        };
        link::ensure_bridge(&bridge, gateway, &subnet).await?;
        link::plug(&bridge, &host_if, netns, &ep, index == 0 && !n.internal).await?;
        let att = self.get(&n.id)?.attachments.get(id).cloned();
        let endpoint_id = att.map(|a| a.endpoint_id).unwrap_or_default();
        Ok((
            n.name.clone(),
            WiredEndpoint {
                network_id: n.id.clone(),
                endpoint_id,
                ip,
                prefix: subnet.prefix,
                gateway,
                mac: ipam::mac_string(&ep.mac),
                aliases: req.aliases.clone(),
                dns: n.has_dns(),
            },
        ))
    }

    /// Releases container `id`'s addresses and its namespace (its veths go with it).
    pub async fn detach(&self, id: &str) {
        self.ports.release(id);
        self.resolvers().remove(id);
        {
            let mut s = self.lock();
            let mut changed = false;
            for n in s.networks.values_mut() {
                changed |= n.attachments.remove(id).is_some();
            }
            if changed {
                let _ = self.save(&s);
            }
        }
        self.publish_names();
        let path = netns::path_for(&self.netns_dir, id);
        if path.exists() {
            let _ = tokio::task::spawn_blocking(move || netns::remove(&path)).await;
        }
    }

    /// The namespace file of a container this service wired, if it is still there.
    pub fn netns_of(&self, id: &str) -> Option<PathBuf> {
        let p = netns::path_for(&self.netns_dir, id);
        p.exists().then_some(p)
    }

    /// Drops addresses held by containers that no longer run (after an engine crash).
    pub async fn reconcile(&self, running: &BTreeSet<String>) {
        let stale: BTreeSet<String> = self
            .lock()
            .networks
            .values()
            .flat_map(|n| n.attachments.keys().cloned())
            .filter(|c| !running.contains(c))
            .collect();
        for id in stale {
            self.detach(&id).await;
        }
    }

    /// The host's nameservers, for the embedded DNS to forward to and for the default
    /// bridge's resolv.conf.
    pub fn gateway_of(&self, network: &str) -> Option<Ipv4Addr> {
        self.get(network).ok().and_then(|n| n.gateway)
    }
}

fn find<'a>(s: &'a Store, name_or_id: &str) -> Result<&'a NetworkRecord, NetworkError> {
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

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

fn sha_hex(b: &[u8]) -> String {
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
        assert!(!valid_name("a b"));
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

    #[test]
    fn host_subnets_reads_proc() {
        // Whatever the machine routes, each entry is a normalised subnet.
        for s in host_subnets() {
            assert_eq!(Subnet::parse(&s.to_string()), Some(s));
        }
    }
}
