//! What the dashboard shows, computed from the Docker API's answers: pure
//! functions, tested without a window or an engine.

use bollard::models::{
    ContainerStatsResponse, ContainerSummary, ImageSummary, Network, PortSummary, Volume,
};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PortLink {
    pub label: String,
    /// `http://localhost:PORT` for TCP ports published on the host.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
    /// Its service in that project (`com.docker.compose.service`).
    pub service: Option<String>,
    /// `starting`, `healthy` or `unhealthy` for a container with a health
    /// check; none otherwise.
    #[cfg_attr(test, ts(type = r#""starting" | "healthy" | "unhealthy" | null"#))]
    pub health: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ImageRow {
    pub id: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub created: i64,
    /// Names of the containers (running or not) created from it, as
    /// `docker ps -a --filter ancestor=ID` lists them.
    pub used_by: Vec<String>,
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

/// The label Compose marks a project's containers with.
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";

/// An ID as `docker ps` shortens it.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// A container's name as `docker ps` shows it (the API's has a leading `/`).
fn container_name(c: &ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

pub fn container_row(c: &ContainerSummary) -> ContainerRow {
    let name = container_name(c);
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
            .and_then(|l| l.get(COMPOSE_PROJECT))
            .cloned(),
        service: c
            .labels
            .as_ref()
            .and_then(|l| l.get("com.docker.compose.service"))
            .cloned(),
        health: health_of(c),
    }
}

/// A container's health: the list's `Health` where the engine gives it (API
/// 1.52 and later), else the suffix `docker ps` shows in its status, which
/// every engine writes ("Up 2 minutes (healthy)").
fn health_of(c: &ContainerSummary) -> Option<&'static str> {
    use bollard::models::ContainerSummaryHealthStatusEnum as H;
    match c.health.as_ref().and_then(|h| h.status) {
        Some(H::STARTING) => return Some("starting"),
        Some(H::HEALTHY) => return Some("healthy"),
        Some(H::UNHEALTHY) => return Some("unhealthy"),
        _ => {}
    }
    let status = c.status.as_deref().unwrap_or_default();
    [
        ("(health: starting)", "starting"),
        ("(unhealthy)", "unhealthy"),
        ("(healthy)", "healthy"),
    ]
    .into_iter()
    .find_map(|(suffix, h)| status.ends_with(suffix).then_some(h))
}

/// A failed start as a user reads it: the runtime's chain of wrappers
/// (`failed to create task …: OCI runtime create failed: … exec: "x":
/// executable file not found in $PATH: unknown`) cut to its cause.
pub fn start_failure(message: &str) -> String {
    let m = message.trim().trim_end_matches(": unknown");
    let cause = ["exec: ", "unable to start container process: "]
        .iter()
        .find_map(|marker| m.rfind(marker).map(|i| &m[i + marker.len()..]))
        .unwrap_or(m);
    format!("The container could not start: {cause}")
}

/// The Images page's rows. "Used by" comes from the containers list by image
/// ID: the API's own `Containers` is -1 ("not computed") unless asked for.
pub fn image_rows(images: &[ImageSummary], containers: &[ContainerSummary]) -> Vec<ImageRow> {
    let mut by_image: std::collections::HashMap<&str, Vec<String>> = Default::default();
    for c in containers {
        if let Some(id) = c.image_id.as_deref() {
            by_image.entry(id).or_default().push(container_name(c));
        }
    }
    images
        .iter()
        .map(|i| {
            let mut row = image_row(i);
            if let Some(names) = by_image.get_mut(i.id.as_str()) {
                names.sort();
                row.used_by = std::mem::take(names);
            }
            row
        })
        .collect()
}

fn image_row(i: &ImageSummary) -> ImageRow {
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
        used_by: Vec::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    /// Names of the containers (running or not) that mount it.
    pub used_by: Vec<String>,
}

/// Volumes with the containers that use them (from the containers' mounts).
pub fn volume_rows(volumes: &[Volume], containers: &[ContainerSummary]) -> Vec<VolumeRow> {
    let mut rows: Vec<VolumeRow> = volumes
        .iter()
        .map(|v| {
            let mut used_by: Vec<String> = containers
                .iter()
                .filter(|c| {
                    c.mounts.iter().flatten().any(|m| {
                        m.typ.as_deref() == Some("volume")
                            && m.name.as_deref() == Some(v.name.as_str())
                    })
                })
                .map(|c| container_row(c).name)
                .collect();
            used_by.sort();
            VolumeRow {
                name: v.name.clone(),
                driver: v.driver.clone(),
                mountpoint: v.mountpoint.clone(),
                used_by,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct NetworkRow {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnets: Vec<String>,
    /// `bridge`, `host`, `none`: the engine's own, never removed.
    pub builtin: bool,
    pub internal: bool,
}

pub fn network_row(n: &Network) -> NetworkRow {
    NetworkRow {
        id: n.id.clone().unwrap_or_default(),
        name: n.name.clone().unwrap_or_default(),
        driver: n.driver.clone().unwrap_or_default(),
        subnets: n
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|c| c.subnet.clone())
            .collect(),
        builtin: matches!(n.name.as_deref(), Some("bridge" | "host" | "none")),
        internal: n.internal.unwrap_or(false),
    }
}

/// One sample of a container's usage, as `docker stats` computes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StatsPoint {
    /// Percent of one CPU (200 = two CPUs busy), from the delta to the previous sample.
    pub cpu_percent: f64,
    /// Used memory without the page cache (`usage - inactive_file`), bytes.
    pub memory: u64,
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    /// Bytes read from and written to block devices since the start, as
    /// `docker stats`' BLOCK I/O (cgroup v2 says `read`, v1 `Read`).
    pub block_read: u64,
    pub block_write: u64,
}

pub fn stats_point(s: &ContainerStatsResponse) -> StatsPoint {
    let total = |c: &Option<bollard::models::ContainerCpuStats>| {
        c.as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |c: &Option<bollard::models::ContainerCpuStats>| {
        c.as_ref().and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let cpu_delta = total(&s.cpu_stats).saturating_sub(total(&s.precpu_stats)) as f64;
    let sys_delta = system(&s.cpu_stats).saturating_sub(system(&s.precpu_stats)) as f64;
    let cpus = s
        .cpu_stats
        .as_ref()
        .and_then(|c| c.online_cpus)
        .unwrap_or(1)
        .max(1) as f64;
    let cpu_percent = if sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let cache = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    let (rx, tx) = s
        .networks
        .iter()
        .flatten()
        .fold((0, 0), |(rx, tx), (_, n)| {
            (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
        });
    let block = |op: &str| -> u64 {
        s.blkio_stats
            .as_ref()
            .and_then(|b| b.io_service_bytes_recursive.as_ref())
            .into_iter()
            .flatten()
            .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
            .filter_map(|e| e.value)
            .sum()
    };
    StatsPoint {
        cpu_percent,
        memory: usage.saturating_sub(cache),
        memory_limit: mem.and_then(|m| m.limit).unwrap_or(0),
        net_rx: rx,
        net_tx: tx,
        block_read: block("read"),
        block_write: block("write"),
    }
}

/// A container's cumulative CPU time and the host's, with its CPU count.
pub type CpuCounters = (u64, u64, u32);

pub fn cpu_counters(s: &ContainerStatsResponse) -> CpuCounters {
    let c = s.cpu_stats.as_ref();
    (
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0),
        c.and_then(|c| c.system_cpu_usage).unwrap_or(0),
        c.and_then(|c| c.online_cpus).unwrap_or(1).max(1),
    )
}

/// CPU percent (of one CPU) between two samples; `None` without progress.
pub fn cpu_between(prev: CpuCounters, now: CpuCounters) -> Option<f64> {
    let sys = now.1.checked_sub(prev.1).filter(|d| *d > 0)? as f64;
    let cpu = now.0.saturating_sub(prev.0) as f64;
    Some(cpu / sys * now.2 as f64 * 100.0)
}

/// Whether the app may hand `url` to the system browser: only the `http://`
/// links it made for published ports (a host and a port, nothing else).
pub fn is_port_link(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return false;
    };
    let host_ok = host == "localhost"
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || (host.starts_with('[')
            && host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok());
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
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
    fn health_from_the_field_or_the_status_words() {
        let with_status = |s: &str| ContainerSummary {
            status: Some(s.into()),
            ..Default::default()
        };
        assert_eq!(
            health_of(&with_status("Up 2 minutes (healthy)")),
            Some("healthy")
        );
        assert_eq!(
            health_of(&with_status("Up 1 second (health: starting)")),
            Some("starting")
        );
        assert_eq!(
            health_of(&with_status("Up 5 minutes (unhealthy)")),
            Some("unhealthy")
        );
        assert_eq!(health_of(&with_status("Up 5 minutes")), None);
        let mut c = with_status("Up 5 minutes");
        c.health = Some(bollard::models::ContainerSummaryHealth {
            status: Some(bollard::models::ContainerSummaryHealthStatusEnum::UNHEALTHY),
            failing_streak: Some(3),
        });
        assert_eq!(health_of(&c), Some("unhealthy"));
    }

    #[test]
    fn a_failed_start_says_its_cause() {
        assert_eq!(
            start_failure(
                "failed to create task for container: failed to create shim task: OCI runtime \
                 create failed: runc create failed: unable to start container process: exec: \
                 \"nope\": executable file not found in $PATH: unknown"
            ),
            "The container could not start: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(
            start_failure("port is already allocated"),
            "The container could not start: port is already allocated"
        );
    }

    #[test]
    fn used_by_comes_from_the_containers_by_image_id() {
        let image = |id: &str| ImageSummary {
            id: id.into(),
            repo_tags: vec!["<none>:<none>".into()],
            containers: -1,
            ..Default::default()
        };
        let container = |name: &str, image_id: &str| ContainerSummary {
            names: Some(vec![format!("/{name}")]),
            image_id: Some(image_id.into()),
            image: Some("something-else:latest".into()),
            ..Default::default()
        };
        let rows = image_rows(
            &[image("sha256:a"), image("sha256:b")],
            &[container("web2", "sha256:a"), container("web1", "sha256:a")],
        );
        assert_eq!(rows[0].used_by, ["web1", "web2"]);
        assert!(rows[0].tags.is_empty());
        assert!(rows[1].used_by.is_empty());
    }

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
    fn volumes_know_their_containers() {
        use bollard::models::MountPoint;
        let vol = |n: &str| Volume {
            name: n.into(),
            driver: "local".into(),
            ..Default::default()
        };
        let c = ContainerSummary {
            names: Some(vec!["/db".into()]),
            mounts: Some(vec![MountPoint {
                typ: Some("volume".into()),
                name: Some("data".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let rows = volume_rows(&[vol("spare"), vol("data")], &[c]);
        assert_eq!(rows[0].name, "data");
        assert_eq!(rows[0].used_by, ["db"]);
        assert!(rows[1].used_by.is_empty());
    }

    #[test]
    fn stats_like_docker_stats() {
        use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};
        let cpu = |total, system| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..Default::default()
        };
        let s = ContainerStatsResponse {
            cpu_stats: Some(cpu(1_500, 10_000)),
            precpu_stats: Some(cpu(1_000, 9_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(10_000),
                limit: Some(1 << 30),
                stats: Some([("inactive_file".to_string(), 4_000u64)].into()),
                ..Default::default()
            }),
            blkio_stats: Some(bollard::models::ContainerBlkioStats {
                io_service_bytes_recursive: Some(
                    [
                        ("read", 7, 1),
                        ("Read", 3, 2),
                        ("write", 5, 1),
                        ("discard", 9, 1),
                    ]
                    .map(
                        |(op, value, minor)| bollard::models::ContainerBlkioStatEntry {
                            op: Some(op.into()),
                            value: Some(value),
                            major: Some(8),
                            minor: Some(minor),
                        },
                    )
                    .to_vec(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = stats_point(&s);
        assert_eq!((p.block_read, p.block_write), (10, 5));
        assert!((p.cpu_percent - 100.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.memory, 6_000);
        assert_eq!(p.memory_limit, 1 << 30);
    }

    #[test]
    fn cpu_from_two_samples() {
        assert_eq!(cpu_between((100, 1000, 2), (150, 1100, 2)), Some(100.0));
        assert_eq!(cpu_between((100, 1000, 2), (150, 1000, 2)), None);
    }

    #[test]
    fn only_port_links_open() {
        for ok in [
            "http://localhost:8080",
            "http://10.0.0.5:80",
            "http://[::1]:3000",
        ] {
            assert!(is_port_link(ok), "{ok}");
        }
        for bad in [
            "https://localhost:8080",
            "http://localhost:8080/x",
            "http://evil.example:80",
            "file:///etc/passwd",
            "http://localhost:0",
            "javascript:alert(1)",
        ] {
            assert!(!is_port_link(bad), "{bad}");
        }
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
