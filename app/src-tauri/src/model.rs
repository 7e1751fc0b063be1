//! What the dashboard shows, computed from the Docker API's answers: pure
//! functions, tested without a window or an engine.

use bollard::models::{ContainerSummary, ImageSummary, PortSummary};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortLink {
    pub label: String,
    /// `http://localhost:PORT` for TCP ports published on the host.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `running`, `exited`, `paused`, `created`, …
    pub state: String,
    /// Docker's words: `Up 3 minutes`, `Exited (0) 2 seconds ago`.
    pub status: String,
    pub ports: Vec<PortLink>,
    /// The Compose project (`com.docker.compose.project`), for grouping.
    pub project: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRow {
    pub id: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub created: i64,
    pub containers: i64,
}

fn port_link(p: &PortSummary) -> PortLink {
    let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
    match p.public_port {
        Some(public) => {
            let ip = p.ip.as_deref().unwrap_or("0.0.0.0");
            let host = match ip {
                "" | "0.0.0.0" | "::" | "127.0.0.1" | "::1" => "localhost".to_string(),
                other if other.contains(':') => format!("[{other}]"),
                other => other.to_string(),
            };
            PortLink {
                label: format!("{host}:{public} → {}/{proto}", p.private_port),
                url: (proto == "tcp").then(|| format!("http://{host}:{public}")),
            }
        }
        None => PortLink {
            label: format!("{}/{proto}", p.private_port),
            url: None,
        },
    }
}

pub fn container_row(c: &ContainerSummary) -> ContainerRow {
    let name = c
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let mut ports: Vec<PortLink> = c.ports.iter().flatten().map(port_link).collect();
    // IPv4 and IPv6 bindings of one port read the same; show it once.
    ports.dedup_by(|a, b| a.label == b.label);
    ContainerRow {
        id: c.id.clone().unwrap_or_default(),
        name,
        image: c.image.clone().unwrap_or_default(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        status: c.status.clone().unwrap_or_default(),
        ports,
        project: c
            .labels
            .as_ref()
            .and_then(|l| l.get("com.docker.compose.project"))
            .cloned(),
    }
}

pub fn image_row(i: &ImageSummary) -> ImageRow {
    let tags = i
        .repo_tags
        .iter()
        .filter(|t| t.as_str() != "<none>:<none>")
        .cloned()
        .collect();
    ImageRow {
        id: i.id.clone(),
        tags,
        size: i.size,
        created: i.created,
        containers: i.containers,
    }
}

/// Splits `-p`-style text (`8080:80`, `127.0.0.1:8080:80/udp`, `80`) into
/// (host ip, host port, container port/proto).
pub fn parse_port(spec: &str) -> Result<(String, String, String), String> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) if p == "tcp" || p == "udp" => (b, p),
        Some(_) => return Err(format!("{spec}: the protocol must be tcp or udp")),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = body.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => return Err(format!("{spec}: use HOST:CONTAINER or IP:HOST:CONTAINER")),
    };
    let port = |p: &str| p.is_empty() || p.parse::<u16>().is_ok_and(|n| n > 0);
    if container.is_empty() || !port(container) || !port(host) {
        return Err(format!("{spec}: ports are numbers from 1 to 65535"));
    }
    Ok((
        ip.to_string(),
        host.to_string(),
        format!("{container}/{proto}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummaryStateEnum, PortSummaryTypeEnum};

    #[test]
    fn rows_show_names_ports_and_projects() {
        let c = ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/web".into()]),
            image: Some("nginx".into()),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            status: Some("Up 2 seconds".into()),
            ports: Some(vec![
                PortSummary {
                    ip: Some("0.0.0.0".into()),
                    private_port: 80,
                    public_port: Some(8080),
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
                PortSummary {
                    ip: Some("::".into()),
                    private_port: 80,
                    public_port: Some(8080),
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
                PortSummary {
                    ip: None,
                    private_port: 53,
                    public_port: None,
                    typ: Some(PortSummaryTypeEnum::UDP),
                },
            ]),
            labels: Some([("com.docker.compose.project".to_string(), "shop".to_string())].into()),
            ..Default::default()
        };
        let r = container_row(&c);
        assert_eq!(r.name, "web");
        assert_eq!(r.state, "running");
        assert_eq!(r.project.as_deref(), Some("shop"));
        assert_eq!(r.ports.len(), 2);
        assert_eq!(r.ports[0].url.as_deref(), Some("http://localhost:8080"));
        assert_eq!(r.ports[0].label, "localhost:8080 → 80/tcp");
        assert_eq!(r.ports[1].url, None);
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port("8080:80").unwrap(),
            ("".into(), "8080".into(), "80/tcp".into())
        );
        assert_eq!(
            parse_port("127.0.0.1:53:53/udp").unwrap(),
            ("127.0.0.1".into(), "53".into(), "53/udp".into())
        );
        assert_eq!(parse_port("80").unwrap().2, "80/tcp");
        for bad in ["", "x:80", "80:0", "1:2:3:4", "80/sctp", "70000:80"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }
}
