//! Legacy links (`--link name:alias`) on the default bridge, as dockerd still makes
//! them: the linked container's address in `/etc/hosts` under the alias, its name and
//! hostname, and the `ALIAS_*` environment (`_NAME`, `_PORT…`, `_ENV_…`); and
//! `DELETE /containers/{name}/{alias}?link=1`. On user-defined networks a link is an
//! endpoint's DNS alias instead, which the network service serves.

use super::record::ContainerRecord;
use super::{ContainerError, ContainerService};

/// `name:alias`, `/name:/parent/alias` or `name` → (name, alias).
pub fn parse(link: &str) -> (String, String) {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    (name.to_string(), alias.to_string())
}

/// One link as the linking container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The `/etc/hosts` line's names: alias, the linked container's hostname and name.
    pub host_names: String,
    pub ip: String,
    pub env: Vec<String>,
}

/// dockerd's link environment for `child` linked as `alias` into `parent`.
pub fn env(alias: &str, parent: &str, child: &ContainerRecord, ip: &str) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut out = vec![format!("{prefix}_NAME=/{parent}/{alias}")];
    let mut ports: Vec<(u16, String)> = child
        .config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((port.parse().ok()?, proto.to_string()))
        })
        .collect();
    ports.sort();
    if let Some((port, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let key = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
        out.push(format!("{key}={proto}://{ip}:{port}"));
        out.push(format!("{key}_ADDR={ip}"));
        out.push(format!("{key}_PORT={port}"));
        out.push(format!("{key}_PROTO={proto}"));
    }
    for e in child.config.env.iter().flatten() {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        // As dockerd: the two a build sets everywhere are left out.
        if k != "HOME" && k != "PATH" {
            out.push(format!("{prefix}_ENV_{k}={v}"));
        }
    }
    out
}

impl ContainerService {
    /// The default bridge's links of `rec`, resolved against the running containers.
    pub(super) fn legacy_links(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Vec<Linked>, ContainerError> {
        let mut out = Vec::new();
        for link in rec.host_config.links.iter().flatten() {
            let (name, alias) = parse(link);
            let child = self
                .record(&name)
                .ok()
                .filter(|c| c.running())
                .ok_or_else(|| {
                    ContainerError::Conflict(format!(
                        "Cannot link to a non running container: /{name} AS /{}/{alias}",
                        rec.name
                    ))
                })?;
            let ip = child
                .networks
                .get("bridge")
                .and_then(|s| s.ip_address.clone())
                .filter(|ip| !ip.is_empty())
                .ok_or_else(|| {
                    ContainerError::Conflict(format!(
                        "Cannot link to /{name}, as it is not on the default bridge network"
                    ))
                })?;
            let hostname = child.config.hostname.clone().unwrap_or_default();
            out.push(Linked {
                host_names: format!("{alias} {hostname} {}", child.name),
                env: env(&alias, &rec.name, &child, &ip),
                ip,
            });
        }
        Ok(out)
    }

    /// `DELETE /containers/{parent}/{alias}?link=1`: the parent forgets the link (it
    /// takes effect at its next start, as dockerd's does for `/etc/hosts`).
    pub fn remove_link(&self, parent: &str, alias: &str) -> Result<(), ContainerError> {
        let rec = self.record(parent)?;
        let links = rec.host_config.links.clone().unwrap_or_default();
        if !links.iter().any(|l| parse(l).1 == alias) {
            return Err(ContainerError::NotFound(format!(
                "Could not find entity for /{}/{alias}",
                rec.name
            )));
        }
        self.update(&rec.id, |r| {
            if let Some(l) = r.host_config.links.as_mut() {
                l.retain(|l| parse(l).1 != alias);
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs_parse_as_dockerd_writes_them() {
        assert_eq!(parse("db:mydb"), ("db".into(), "mydb".into()));
        assert_eq!(parse("/db:/web/mydb"), ("db".into(), "mydb".into()));
        assert_eq!(parse("db"), ("db".into(), "db".into()));
    }
}
