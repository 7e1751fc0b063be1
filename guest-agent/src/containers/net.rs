//! A container's side of networking: which networks it asked for, the `/etc` files it
//! gets, its published ports, and how both show in `inspect` and `ps`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard_stubs::models::{
    ContainerCreateBody, EndpointSettings, NetworkSettings, PortBinding, PortSummary,
    PortSummaryTypeEnum,
};

use super::record::ContainerRecord;
use super::ContainerError;
use crate::network::ports::{self, Binding, Proto};
use crate::network::{etc, EndpointRequest, NetworkService, Wiring};
use crate::runtime::spec::{NetworkNamespace, UserMount};

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
        let n = networks
            .get(&name)
            .map_err(|e| ContainerError::NotFound(e.to_string()))?;
        if !is_network(mode) {
            return Err(ContainerError::InvalidArgument(format!(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes ({mode}, {name})"
            )));
        }
        out.insert(n.name, cfg);
    }
    if is_network(mode) {
        let n = networks
            .get(mode)
            .map_err(|_| ContainerError::NotFound(format!("network {mode} not found")))?;
        out.entry(n.name).or_default();
    }
    Ok(out)
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
        })
        .collect()
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
        if ep.dns {
            let mut names = vec![rec.name.clone(), rec.id[..12].to_string()];
            names.extend(ep.aliases.iter().cloned());
            s.dns_names = Some(names);
        }
    }
}

/// A stopped container keeps its networks but not their addresses (as dockerd).
pub fn clear_wiring(rec: &mut ContainerRecord) {
    for s in rec.networks.values_mut() {
        s.endpoint_id = Some(String::new());
        s.ip_address = Some(String::new());
        s.ip_prefix_len = Some(0);
        s.gateway = Some(String::new());
        s.mac_address = Some(String::new());
        s.dns_names = None;
    }
}

/// Writes `hosts`, `hostname` and `resolv.conf` into the container's directory and
/// returns the mounts that put them at `/etc/…`.
pub fn write_etc(
    dir: &Path,
    rec: &ContainerRecord,
    w: &Wiring,
) -> Result<Vec<UserMount>, ContainerError> {
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    let first = w.endpoints.values().next();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let hc = &rec.host_config;
    let (hosts, resolv) = if w.host {
        (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            host_resolv,
        )
    } else {
        let extra = etc::parse_extra_hosts(
            &hc.extra_hosts.clone().unwrap_or_default(),
            first.map(|e| e.gateway),
        )
        .map_err(ContainerError::InvalidArgument)?;
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
            etc::hosts(&hostname, first.map(|e| e.ip), &extra),
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
