//! Wiring containers to networks: attaching a container being created (its own
//! namespace, one veth per network, addresses from IPAM, the embedded DNS),
//! connecting and disconnecting a running one, detaching one that stopped, and
//! releasing what containers that died with the engine held.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::datapath::{netns, Endpoint};
use super::records::new_id;
use super::{
    ipam, Attachment, EndpointRequest, NetworkError, NetworkService, WiredEndpoint, Wiring,
};

impl NetworkService {
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
        // Left over from a container the engine lost track of.
        self.datapath.remove_netns(&path).await;
        self.datapath.create_netns(&path).await?;
        let mut wiring = Wiring {
            netns: Some(path.clone()),
            host: false,
            endpoints: BTreeMap::new(),
        };
        let result = async {
            if mode == "none" {
                return self.datapath.loopback_only(&path).await;
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
            self.datapath.unplug(&a.host_if).await?;
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
            taken.extend(rec.ipam.aux.values().copied());
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
                // `--ip-range` narrows what is handed out, never what may be asked.
                None => ipam::next_free(rec.ipam.ip_range.as_ref().unwrap_or(&subnet), &taken)
                    .ok_or_else(|| {
                        NetworkError::Forbidden(format!(
                            "no available IPv4 addresses on network {}",
                            n.name
                        ))
                    })?,
            };
            let ipv6 = match rec.ipam.ipv6 {
                Some(v6) => Some(pick_ipv6(&v6, rec, id, req.ipv6)?),
                None if req.ipv6.is_some() => {
                    return Err(NetworkError::InvalidArgument(format!(
                        "network {} is not IPv6-enabled (--ipv6)",
                        n.name
                    )))
                }
                None => None,
            };
            let mac = ipam::mac_string(&req.mac.unwrap_or_else(|| ipam::mac_for(ip)));
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
                    links: req.links.clone(),
                    ipv6,
                },
            );
            self.save(&s)?;
            (ip, ipv6)
        };
        let (ip, ipv6) = ip;
        let v6 = n.ipam.ipv6;
        let ep = Endpoint {
            ip,
            subnet,
            gateway,
            mac: req.mac.unwrap_or_else(|| ipam::mac_for(ip)),
            ifname: format!("eth{index}"),
            ipv6: ipv6
                .zip(v6)
                .map(|(addr, net)| (addr, net.subnet.prefix, net.gateway)),
        };
        self.settle().await;
        self.datapath
            .ensure_bridge(&bridge, gateway, &subnet)
            .await?;
        if let Some(net) = v6 {
            self.datapath
                .bridge_ipv6(&bridge, net.gateway, net.subnet.prefix)
                .await?;
        }
        self.datapath
            .plug(&bridge, &host_if, netns, &ep, index == 0 && !n.internal)
            .await?;
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
                ipv6: ep.ipv6,
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
        self.datapath.remove_netns(&path).await;
    }

    /// The namespace file of a container this service wired, if it is still there.
    pub fn netns_of(&self, id: &str) -> Option<PathBuf> {
        let p = netns::path_for(&self.netns_dir, id);
        self.datapath.netns_exists(&p).then_some(p)
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
}

/// Container `id`'s IPv6 address on a network with `v6`: the one asked for (inside
/// the subnet, not taken) or the first free one of the range.
fn pick_ipv6(
    v6: &super::records::Ipv6Net,
    rec: &super::NetworkRecord,
    id: &str,
    wanted: Option<std::net::Ipv6Addr>,
) -> Result<std::net::Ipv6Addr, NetworkError> {
    let mut taken: BTreeSet<std::net::Ipv6Addr> = rec
        .attachments
        .values()
        .filter(|a| a.container != id)
        .filter_map(|a| a.ipv6)
        .collect();
    taken.insert(v6.gateway);
    match wanted {
        Some(ip) if !v6.subnet.contains(ip) => Err(NetworkError::InvalidArgument(format!(
            "no configured subnet contains IP address {ip}"
        ))),
        Some(ip) if taken.contains(&ip) => Err(NetworkError::Conflict(format!(
            "Address already in use: {ip}"
        ))),
        Some(ip) => Ok(ip),
        None => {
            ipam::next_free6(v6.ip_range.as_ref().unwrap_or(&v6.subnet), &taken).ok_or_else(|| {
                NetworkError::Forbidden(format!(
                    "no available IPv6 addresses on network {}",
                    rec.name
                ))
            })
        }
    }
}
