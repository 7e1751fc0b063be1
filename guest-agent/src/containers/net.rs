//! A container's side of networking: which networks it asked for, wiring it at start
//! (endpoints, `/etc` files, published ports), `network connect`/`disconnect` of
//! created and running containers, and how all of it shows in `inspect` and `ps`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard_stubs::models::{
    ContainerCreateBody, EndpointSettings, NetworkSettings, PortBinding, PortSummary,
    PortSummaryTypeEnum,
};

use super::record::ContainerRecord;
use super::{ContainerError, ContainerService};
use crate::network::ports::{self, Binding, Proto};
use crate::network::{etc, ipam, EndpointRequest, NetworkService, Wiring};
use crate::runtime::spec::{self, NetworkNamespace, UserMount};

/// The network mode, with Docker's spelling of the default.
pub fn mode(rec: &ContainerRecord) -> String {
    match rec.host_config.network_mode.as_deref() {
        None | Some("") | Some("default") => "bridge".into(),
        Some(m) => m.to_string(),
    }
}

/// Whether `mode` names a network (rather than host, none or another container).
pub fn is_network(mode: &str) -> bool {
    !matches!(mode, "host" | "none") && !mode.starts_with("container:")
}

/// The networks a create request asks for, checked against the networks that exist:
/// NetworkingConfig's endpoints, else the network mode's network.
pub fn requested(
    body: &ContainerCreateBody,
    mode: &str,
    networks: &NetworkService,
) -> Result<BTreeMap<String, EndpointSettings>, ContainerError> {
    let mut out = BTreeMap::new();
    let configs = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    for (name, cfg) in configs {
        // The CLI names the default network "default".
        let name = if name == "default" {
            "bridge".to_string()
        } else {
            name
        };
        let name = known_name(networks, name)?;
        if !is_network(mode) {
            return Err(ContainerError::InvalidArgument(format!(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes ({mode}, {name})"
            )));
        }
        out.insert(name, cfg);
    }
    if is_network(mode) {
        out.entry(known_name(networks, mode.to_string())?)
            .or_default();
    }
    Ok(out)
}

/// A network's name from a name or ID. One that does not exist (yet) keeps the
/// name given: as with dockerd, the container is created and its start fails.
fn known_name(networks: &NetworkService, name: String) -> Result<String, ContainerError> {
    match networks.get(&name) {
        Ok(n) => Ok(n.name),
        Err(crate::network::NetworkError::NotFound(_)) => Ok(name),
        Err(e) => Err(net_err(e)),
    }
}

/// The deprecated top-level `MacAddress` of a create body (API < 1.44, still sent by
/// docker-py), moved into the network mode's endpoint as dockerd's API layer does.
pub fn move_legacy_mac(body: &mut ContainerCreateBody, mac: &str) {
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "default".into());
    if mac.is_empty() || !is_network(&mode) {
        return;
    }
    let endpoints = body
        .networking_config
        .get_or_insert_with(Default::default)
        .endpoints_config
        .get_or_insert_with(Default::default);
    let ep = endpoints.entry(mode).or_default();
    if ep.mac_address.as_deref().is_none_or(str::is_empty) {
        ep.mac_address = Some(mac.to_string());
    }
}

/// What to ask the network service for at start.
pub fn endpoint_requests(rec: &ContainerRecord) -> Vec<EndpointRequest> {
    rec.networks
        .iter()
        .map(|(name, s)| EndpointRequest {
            network: name.clone(),
            aliases: s.aliases.clone().unwrap_or_default(),
            ipv4: s
                .ipam_config
                .as_ref()
                .and_then(|c| c.ipv4_address.as_deref())
                .and_then(|ip| ip.parse().ok()),
            mac: rec.macs.get(name).and_then(|m| ipam::parse_mac(m)),
            ipv6: requested_ipv6(s),
            links: {
                let mut l = endpoint_links(s);
                // `--link` with a user-defined network mode is that network's link
                // (dockerd makes it one); on the default bridge it is a legacy link.
                if *name == mode(rec) && name != "bridge" {
                    l.extend(rec.host_config.links.iter().flatten().map(|x| {
                        let (target, alias) = super::links::parse(x);
                        (alias, target)
                    }));
                }
                l
            },
        })
        .collect()
}

/// `--ip6`: the endpoint's `IPAMConfig.IPv6Address`.
fn requested_ipv6(s: &EndpointSettings) -> Option<std::net::Ipv6Addr> {
    s.ipam_config
        .as_ref()
        .and_then(|c| c.ipv6_address.as_deref())
        .and_then(|ip| ip.parse().ok())
}

/// An endpoint's `Links` (`target:alias`) as (alias, target) for its network's DNS.
fn endpoint_links(s: &EndpointSettings) -> Vec<(String, String)> {
    s.links
        .iter()
        .flatten()
        .map(|l| {
            let (target, alias) = super::links::parse(l);
            (alias, target)
        })
        .collect()
}

/// The MACs a create request asks for (each endpoint's `MacAddress`), by network.
pub fn requested_macs(
    networks: &BTreeMap<String, EndpointSettings>,
) -> Result<BTreeMap<String, String>, ContainerError> {
    let mut out = BTreeMap::new();
    for (name, s) in networks {
        if let Some(m) = s.mac_address.as_deref().filter(|m| !m.is_empty()) {
            out.insert(name.clone(), m.to_string());
        }
    }
    for m in out.values() {
        if ipam::parse_mac(m).is_none() {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid MAC address: {m}"
            )));
        }
    }
    Ok(out)
}

/// Copies what `attach` wired into the record's endpoint settings.
pub fn record_wiring(rec: &mut ContainerRecord, w: &Wiring) {
    for (name, ep) in &w.endpoints {
        let s = rec.networks.entry(name.clone()).or_default();
        s.network_id = Some(ep.network_id.clone());
        s.endpoint_id = Some(ep.endpoint_id.clone());
        s.ip_address = Some(ep.ip.to_string());
        s.ip_prefix_len = Some(ep.prefix as i64);
        s.gateway = Some(ep.gateway.to_string());
        s.mac_address = Some(ep.mac.clone());
        if let Some((ip, prefix, gateway)) = ep.ipv6 {
            s.global_ipv6_address = Some(ip.to_string());
            s.global_ipv6_prefix_len = Some(prefix as i64);
            s.ipv6_gateway = Some(gateway.to_string());
        }
        if ep.dns {
            let mut names = vec![rec.name.clone(), rec.id[..12].to_string()];
            names.extend(ep.aliases.iter().cloned());
            s.dns_names = Some(names);
        }
    }
}

/// A stopped container keeps its networks but not their addresses (as dockerd), save
/// a MAC address it asked for.
pub fn clear_wiring(rec: &mut ContainerRecord) {
    for (name, s) in rec.networks.iter_mut() {
        s.endpoint_id = Some(String::new());
        s.ip_address = Some(String::new());
        s.ip_prefix_len = Some(0);
        s.gateway = Some(String::new());
        s.mac_address = Some(rec.macs.get(name).cloned().unwrap_or_default());
        s.global_ipv6_address = Some(String::new());
        s.global_ipv6_prefix_len = Some(0);
        s.ipv6_gateway = Some(String::new());
        s.dns_names = None;
    }
}

/// Writes `hosts`, `hostname` and `resolv.conf` into the container's directory and
/// returns the mounts that put them at `/etc/…`.
pub fn write_etc(
    dir: &Path,
    rec: &ContainerRecord,
    w: &Wiring,
    links: &[super::links::Linked],
) -> Result<Vec<UserMount>, ContainerError> {
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    // dockerd names the container by its FQDN first, so `hostname -f` finds it.
    let names = match rec.config.domainname.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => format!("{hostname}.{d} {hostname}"),
        None => hostname.clone(),
    };
    let first = w.endpoints.values().next();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let hc = &rec.host_config;
    let (hosts, resolv) = if w.host {
        (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            host_resolv,
        )
    } else {
        let mut extra = etc::parse_extra_hosts(
            &hc.extra_hosts.clone().unwrap_or_default(),
            first.map(|e| e.gateway),
        )
        .map_err(ContainerError::InvalidArgument)?;
        extra.extend(links.iter().map(|l| (l.host_names.clone(), l.ip.clone())));
        let dns = etc::DnsSettings {
            servers: hc.dns.clone().unwrap_or_default(),
            search: hc.dns_search.clone().unwrap_or_default(),
            options: hc.dns_options.clone().unwrap_or_default(),
        };
        let embedded = w
            .endpoints
            .values()
            .any(|e| e.dns)
            .then_some(crate::network::dns::RESOLVER);
        (
            etc::hosts(&names, first.map(|e| e.ip), &extra),
            etc::resolv_conf(&host_resolv, embedded, &dns),
        )
    };
    let mut mounts = Vec::new();
    for (file, content, target) in [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, content).map_err(|e| ContainerError::Io {
            context: format!("writing {file}"),
            source: e,
        })?;
        mounts.push(UserMount::Bind {
            source: path,
            target: target.into(),
            readonly: false,
        });
    }
    Ok(mounts)
}

/// The namespace the spec should use.
pub fn namespace(w: &Wiring) -> NetworkNamespace {
    match (&w.netns, w.host) {
        (_, true) => NetworkNamespace::Host,
        (Some(p), false) => NetworkNamespace::Path(p.clone()),
        (None, false) => NetworkNamespace::New,
    }
}

/// The container's exposed ports (image + `--expose`), as `80/tcp` keys.
pub fn exposed(rec: &ContainerRecord) -> Vec<String> {
    let mut v: Vec<String> = rec
        .config
        .exposed_ports
        .as_ref()
        .cloned()
        .unwrap_or_default();
    v.sort();
    v
}

/// The ports to publish at start.
pub fn wanted_ports(rec: &ContainerRecord) -> Result<Vec<ports::Wanted>, ContainerError> {
    let hc = &rec.host_config;
    ports::wanted(
        &hc.port_bindings.clone().unwrap_or_default(),
        &exposed(rec),
        hc.publish_all_ports == Some(true),
    )
    .map_err(|e| ContainerError::InvalidArgument(e.to_string()))
}

/// `NetworkSettings` as inspect shows it.
pub fn settings(
    rec: &ContainerRecord,
    bindings: &[Binding],
    sandbox: Option<&Path>,
) -> NetworkSettings {
    let mut ports: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if rec.running() {
        for key in exposed(rec) {
            ports.entry(key).or_insert(None);
        }
        for b in bindings {
            let key = format!("{}/{}", b.container_port, b.proto.as_str());
            ports
                .entry(key)
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(b.host_ip.to_string()),
                    host_port: Some(b.host_port.to_string()),
                });
        }
    }
    NetworkSettings {
        sandbox_id: Some(String::new()),
        sandbox_key: Some(sandbox.map(|p| p.display().to_string()).unwrap_or_default()),
        ports: Some(ports),
        networks: Some(rec.networks.clone().into_iter().collect()),
    }
}

/// `ps`'s Ports column data.
pub fn summary_ports(rec: &ContainerRecord, bindings: &[Binding]) -> Vec<PortSummary> {
    let mut out: Vec<PortSummary> = bindings
        .iter()
        .map(|b| PortSummary {
            ip: Some(b.host_ip.to_string()),
            private_port: b.container_port,
            public_port: Some(b.host_port),
            typ: Some(match b.proto {
                Proto::Tcp => PortSummaryTypeEnum::TCP,
                Proto::Udp => PortSummaryTypeEnum::UDP,
            }),
        })
        .collect();
    if rec.running() {
        for key in exposed(rec) {
            if let Some((port, proto)) = ports::parse_port_key(&key) {
                if !bindings
                    .iter()
                    .any(|b| b.container_port == port && b.proto == proto)
                {
                    out.push(PortSummary {
                        ip: None,
                        private_port: port,
                        public_port: None,
                        typ: Some(match proto {
                            Proto::Tcp => PortSummaryTypeEnum::TCP,
                            Proto::Udp => PortSummaryTypeEnum::UDP,
                        }),
                    });
                }
            }
        }
    }
    out
}

/// The network half of a bundle: `/etc` file mounts and the namespace to join.
pub(super) struct BundleNet {
    pub(super) mounts: Vec<spec::UserMount>,
    pub(super) namespace: spec::NetworkNamespace,
    /// Legacy links' `ALIAS_*` variables (the container's own env wins).
    pub(super) env: Vec<String>,
}

/// Network failures at create/start, with dockerd's statuses.
pub(super) fn net_err(e: crate::network::NetworkError) -> ContainerError {
    use crate::network::NetworkError as N;
    match e {
        N::NotFound(n) => ContainerError::NetworkNotFound(n),
        N::InvalidArgument(m) => ContainerError::InvalidArgument(m),
        N::Conflict(m) | N::Forbidden(m) => ContainerError::Conflict(m),
        other => ContainerError::Start {
            message: other.to_string(),
            exit_code: 128,
        },
    }
}

impl ContainerService {
    /// dockerd's `network connect` / `disconnect` events (Actor: the network).
    pub(super) fn network_event(
        &self,
        action: &str,
        network_id: &str,
        network: &str,
        container: &str,
    ) {
        self.events.emit(
            bollard_stubs::models::EventMessageTypeEnum::NETWORK,
            action,
            network_id,
            vec![
                ("container".to_string(), container.to_string()),
                ("name".to_string(), network.to_string()),
                ("type".to_string(), "bridge".to_string()),
            ],
        );
    }

    /// Connects the container to its networks, writes its `/etc` files and publishes its
    /// ports; returns the updated record and what the bundle needs.
    pub(super) async fn wire_network(
        &self,
        rec: &ContainerRecord,
    ) -> Result<(ContainerRecord, BundleNet), ContainerError> {
        let mode = mode(rec);
        let requests = endpoint_requests(rec);
        let wiring = self
            .network
            .attach(&rec.id, &rec.name, &mode, &requests, |other| {
                let id = self.resolve(other).ok()?;
                let running = self.record(&id).ok()?.running();
                running.then(|| self.network.netns_of(&id)).flatten()
            })
            .await
            .map_err(net_err)?;
        let rec = self.update(&rec.id, |r| record_wiring(r, &wiring))?;
        for (name, ep) in &wiring.endpoints {
            self.network_event("connect", &ep.network_id, name, &rec.id);
        }
        let dir = self.container_dir(&rec.id);
        let links = match mode.as_str() {
            "bridge" => self.legacy_links(&rec)?,
            _ => Vec::new(),
        };
        let mounts = write_etc(&dir, &rec, &wiring, &links)?;
        self.publish_ports(&rec).await?;
        Ok((
            rec,
            BundleNet {
                mounts,
                namespace: namespace(&wiring),
                env: links.into_iter().flat_map(|l| l.env).collect(),
            },
        ))
    }

    /// `docker network connect`: a created container gets the network at its next
    /// start; a running one gets a new interface now.
    pub async fn connect(
        &self,
        name: &str,
        network: &str,
        settings: bollard_stubs::models::EndpointSettings,
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        let mode = mode(&rec);
        if !is_network(&mode) {
            return Err(ContainerError::InvalidArgument(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network ({mode})"
            )));
        }
        if rec.networks.contains_key(network) {
            return Err(ContainerError::Conflict(format!(
                "endpoint with name {} already exists in network {network}",
                rec.name
            )));
        }
        if rec.running() {
            let netns = self.network.netns_of(&rec.id).ok_or_else(|| {
                ContainerError::Conflict("the container's network namespace is gone".into())
            })?;
            let req = crate::network::EndpointRequest {
                network: network.to_string(),
                aliases: settings.aliases.clone().unwrap_or_default(),
                ipv4: settings
                    .ipam_config
                    .as_ref()
                    .and_then(|c| c.ipv4_address.as_deref())
                    .and_then(|ip| ip.parse().ok()),
                mac: settings.mac_address.as_deref().and_then(ipam::parse_mac),
                links: endpoint_links(&settings),
                ipv6: requested_ipv6(&settings),
            };
            let wiring = self
                .network
                .connect_running(&rec.id, &rec.name, &req, &netns, rec.networks.len())
                .await
                .map_err(net_err)?;
            self.update(&rec.id, |r| {
                r.networks.insert(network.to_string(), settings.clone());
                record_wiring(r, &wiring);
            })?;
        } else {
            self.update(&rec.id, |r| {
                r.networks.insert(network.to_string(), settings.clone());
            })?;
        }
        if let Some(m) = settings.mac_address.as_deref().filter(|m| !m.is_empty()) {
            self.update(&rec.id, |r| {
                r.macs.insert(network.to_string(), m.to_string());
            })?;
        }
        Ok(())
    }

    /// `docker network disconnect`: a running container loses the interface now.
    pub async fn disconnect(
        &self,
        name: &str,
        network: &str,
        _force: bool,
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        if !rec.networks.contains_key(network) {
            return Err(ContainerError::Conflict(format!(
                "container {} is not connected to network {network}",
                rec.id
            )));
        }
        if rec.running() {
            self.network
                .disconnect_running(&rec.id, network)
                .await
                .map_err(net_err)?;
        }
        self.update(&rec.id, |r| {
            // As dockerd, the network mode stays: Compose disconnects a created
            // container from its primary network and connects it again with aliases.
            r.networks.remove(network);
            r.macs.remove(network);
        })?;
        Ok(())
    }

    /// Binds the container's published ports to its first network address.
    pub(super) async fn publish_ports(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let wanted = wanted_ports(rec)?;
        if wanted.is_empty() || !is_network(&mode(rec)) {
            return Ok(());
        }
        let target = rec
            .networks
            .values()
            .filter_map(|s| s.ip_address.as_deref()?.parse().ok())
            .next();
        let Some(target) = target else {
            return Ok(());
        };
        self.network
            .ports
            .publish(&rec.id, &rec.name, target, &wanted)
            .await
            .map(|_| ())
            .map_err(net_err)
    }
}
