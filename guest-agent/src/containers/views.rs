//! Container records as the API shows them: `ps` rows (with dockerd's status strings and
//! filters) and `inspect` documents.

use std::collections::HashMap;
use std::path::Path;

use bollard_stubs::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerState,
    ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryStateEnum, DriverData, PortSummary,
};

use super::config::command;
use super::health::{filter_value, ps_suffix};
use super::record::{ContainerRecord, Status};
use crate::images::labels_match;

/// The container part of a create body.
pub fn create_config(b: &ContainerCreateBody) -> ContainerConfig {
    ContainerConfig {
        hostname: b.hostname.clone(),
        domainname: b.domainname.clone(),
        user: b.user.clone(),
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        exposed_ports: b.exposed_ports.clone(),
        tty: b.tty,
        open_stdin: b.open_stdin,
        stdin_once: b.stdin_once,
        env: b.env.clone(),
        cmd: b.cmd.clone(),
        healthcheck: b.healthcheck.clone(),
        args_escaped: b.args_escaped,
        image: b.image.clone(),
        volumes: b.volumes.clone(),
        working_dir: b.working_dir.clone(),
        entrypoint: b.entrypoint.clone(),
        network_disabled: b.network_disabled,
        on_build: b.on_build.clone(),
        labels: b.labels.clone(),
        stop_signal: b.stop_signal.clone(),
        stop_timeout: b.stop_timeout,
        shell: b.shell.clone(),
    }
}

/// Filters of `GET /containers/json`, parsed.
#[derive(Debug, Default, Clone)]
pub struct ListFilters {
    pub all: bool,
    pub limit: Option<usize>,
    pub status: Vec<String>,
    /// Regular expressions, as dockerd reads them, tried with and without the '/'.
    pub name: Vec<String>,
    pub id: Vec<String>,
    pub label: Vec<String>,
    /// Image references or IDs; the handler adds the IDs the references name.
    pub ancestor: Vec<String>,
    pub exited: Vec<i64>,
    /// `starting`, `healthy`, `unhealthy` or `none`.
    pub health: Vec<String>,
    /// Containers created before / after this one (an ID, a prefix or a name).
    pub before: Option<String>,
    pub since: Option<String>,
    /// Network names or ID prefixes.
    pub network: Vec<String>,
    /// Volume names, bind sources or mount destinations.
    pub volume: Vec<String>,
    /// `port/proto` keys: published (host) ports and container ports.
    pub publish: std::collections::HashSet<String>,
    pub expose: std::collections::HashSet<String>,
    /// Swarm tasks: Berth runs none.
    pub is_task: Option<bool>,
}

fn unix(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

/// Go's `units.HumanDuration`, which `docker ps` shows.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 2 * 3600 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        _ if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

fn status_text(r: &ContainerRecord) -> String {
    let now = chrono::Utc::now().timestamp();
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}{}",
            human_duration(now - unix(r.state.started_at.as_deref().unwrap_or(""))),
            if r.state.paused {
                " (Paused)"
            } else {
                ps_suffix(r.state.health.as_ref())
            }
        ),
        Status::Exited if r.state.restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_duration(now - unix(r.state.finished_at.as_deref().unwrap_or("")))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_duration(now - unix(r.state.finished_at.as_deref().unwrap_or("")))
        ),
        Status::Dead => "Dead".into(),
    }
}

/// dockerd's `filters.Match`: an exact value, or a regular expression found
/// anywhere (a value that is no valid expression matches only exactly).
struct Patterns(Vec<(String, Option<regex::Regex>)>);

impl Patterns {
    fn new(values: &[String]) -> Self {
        Self(
            values
                .iter()
                .map(|v| (v.clone(), regex::Regex::new(v).ok()))
                .collect(),
        )
    }

    fn is_match(&self, value: &str) -> bool {
        self.0
            .iter()
            .any(|(v, re)| v == value || re.as_ref().is_some_and(|re| re.is_match(value)))
    }
}

fn matches(
    r: &ContainerRecord,
    ports_of: &impl Fn(&ContainerRecord) -> Vec<PortSummary>,
    names: &Patterns,
    f: &ListFilters,
) -> bool {
    // A limit (`ps -n`) counts stopped containers too, as a status filter does.
    if !f.all && f.limit.unwrap_or(0) == 0 && !r.running() && f.status.is_empty() {
        return false;
    }
    let status = if r.state.paused {
        "paused"
    } else if r.state.restarting {
        "restarting"
    } else {
        r.state.status.as_str()
    };
    if !f.status.is_empty() && !f.status.iter().any(|s| s == status) {
        return false;
    }
    let exited_ok = r.state.status == Status::Exited
        && r.state.started_at.is_some()
        && f.exited.contains(&r.state.exit_code);
    if !f.exited.is_empty() && !exited_ok {
        return false;
    }
    if !f.health.is_empty()
        && !f
            .health
            .iter()
            .any(|h| h == filter_value(r.state.health.as_ref()))
    {
        return false;
    }
    if !f.name.is_empty() && !names.is_match(&r.name) && !names.is_match(&format!("/{}", r.name)) {
        return false;
    }
    if !f.id.is_empty() && !f.id.iter().any(|i| r.id.starts_with(i.as_str())) {
        return false;
    }
    if !f.ancestor.is_empty()
        && !f.ancestor.iter().any(|a| {
            *a == r.image || r.image_id.ends_with(a.as_str()) || r.image_id.starts_with(a.as_str())
        })
    {
        return false;
    }
    if f.is_task == Some(true) {
        return false;
    }
    if !f.network.is_empty()
        && !f.network.iter().any(|n| {
            // `host` and `none` are network modes with no endpoint on record.
            r.host_config.network_mode.as_deref() == Some(n.as_str())
                && matches!(n.as_str(), "host" | "none")
                || r.networks.iter().any(|(name, ep)| {
                    name == n
                        || ep
                            .network_id
                            .as_deref()
                            .is_some_and(|id| !id.is_empty() && id.starts_with(n.as_str()))
                })
        })
    {
        return false;
    }
    if !f.volume.is_empty()
        && !f.volume.iter().any(|v| {
            r.mounts.iter().any(|m| {
                let key = if m.name.is_empty() {
                    &m.source
                } else {
                    &m.name
                };
                v == key || *v == m.destination
            })
        })
    {
        return false;
    }
    if (!f.publish.is_empty() || !f.expose.is_empty())
        && !ports_of(r).iter().any(|p| {
            let proto = p.typ.map(|t| t.to_string()).unwrap_or_default();
            f.publish
                .contains(&format!("{}/{proto}", p.public_port.unwrap_or(0)))
                || f.expose.contains(&format!("{}/{proto}", p.private_port))
        })
    {
        return false;
    }
    labels_match(&f.label, &r.config.labels.clone().unwrap_or_default())
}

/// `ps` rows for `recs` (newest first), each with its ports from `ports_of`.
/// `before` and `since` are already resolved to container IDs.
pub fn list(
    recs: &[&ContainerRecord],
    ports_of: impl Fn(&ContainerRecord) -> Vec<PortSummary>,
    f: &ListFilters,
) -> Vec<ContainerSummary> {
    // Newest first: `since` keeps those above its container, `before` those below.
    let mut window = recs.to_vec();
    if let Some(i) = f
        .since
        .as_ref()
        .and_then(|id| window.iter().position(|r| r.id == *id))
    {
        window.truncate(i);
    }
    if let Some(i) = f
        .before
        .as_ref()
        .and_then(|id| window.iter().position(|r| r.id == *id))
    {
        window.drain(..=i);
    }
    let names = Patterns::new(&f.name);
    window
        .iter()
        .filter(|r| matches(r, &ports_of, &names, f))
        .take(f.limit.filter(|n| *n > 0).unwrap_or(usize::MAX))
        .map(|r| ContainerSummary {
            id: Some(r.id.clone()),
            names: Some(vec![format!("/{}", r.name)]),
            image: Some(r.image.clone()),
            image_id: Some(r.image_id.clone()),
            command: Some(command(&r.config).join(" ")),
            created: Some(unix(&r.created)),
            ports: Some(ports_of(r)),
            labels: Some(r.config.labels.clone().unwrap_or_default()),
            state: Some(match r.state.status {
                Status::Created => ContainerSummaryStateEnum::CREATED,
                Status::Running if r.state.paused => ContainerSummaryStateEnum::PAUSED,
                Status::Running => ContainerSummaryStateEnum::RUNNING,
                Status::Exited if r.state.restarting => ContainerSummaryStateEnum::RESTARTING,
                Status::Exited => ContainerSummaryStateEnum::EXITED,
                Status::Dead => ContainerSummaryStateEnum::DEAD,
            }),
            status: Some(status_text(r)),
            host_config: Some(ContainerSummaryHostConfig {
                network_mode: r.host_config.network_mode.clone(),
                annotations: None,
            }),
            mounts: Some(r.mounts.iter().map(|m| m.point()).collect()),
            ..Default::default()
        })
        .collect()
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn inspect(r: &ContainerRecord, dir: &Path) -> ContainerInspectResponse {
    let cmd = command(&r.config);
    let (path, args) = match cmd.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let mut graph = HashMap::new();
    for (k, sub) in [
        ("UpperDir", "upper"),
        ("WorkDir", "work"),
        ("MergedDir", "merged"),
    ] {
        graph.insert(k.to_string(), dir.join(sub).display().to_string());
    }
    ContainerInspectResponse {
        id: Some(r.id.clone()),
        created: Some(r.created.clone()),
        path: Some(path),
        args: Some(args),
        state: Some(ContainerState {
            status: Some(match r.state.status {
                Status::Created => ContainerStateStatusEnum::CREATED,
                Status::Running if r.state.paused => ContainerStateStatusEnum::PAUSED,
                Status::Running => ContainerStateStatusEnum::RUNNING,
                Status::Exited if r.state.restarting => ContainerStateStatusEnum::RESTARTING,
                Status::Exited => ContainerStateStatusEnum::EXITED,
                Status::Dead => ContainerStateStatusEnum::DEAD,
            }),
            running: Some(r.running()),
            paused: Some(r.state.paused),
            restarting: Some(r.state.restarting),
            oom_killed: Some(false),
            dead: Some(r.state.status == Status::Dead),
            pid: Some(r.state.pid),
            exit_code: Some(r.state.exit_code),
            error: Some(r.state.error.clone()),
            started_at: Some(
                r.state
                    .started_at
                    .clone()
                    .unwrap_or_else(|| ZERO_TIME.into()),
            ),
            finished_at: Some(
                r.state
                    .finished_at
                    .clone()
                    .unwrap_or_else(|| ZERO_TIME.into()),
            ),
            health: r.state.health.clone(),
        }),
        image: Some(r.image_id.clone()),
        log_path: Some(
            dir.join(crate::runtime::shim::LOG_FILE)
                .display()
                .to_string(),
        ),
        name: Some(format!("/{}", r.name)),
        restart_count: Some(r.restart_count),
        driver: Some("overlay2".into()),
        platform: Some("linux".into()),
        host_config: Some(r.host_config.clone()),
        graph_driver: Some(DriverData {
            name: "overlay2".into(),
            data: graph,
        }),
        mounts: Some(r.mounts.iter().map(|m| m.point()).collect()),
        config: Some(r.config.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(5400), "About an hour");
        assert_eq!(human_duration(10 * 3600), "10 hours");
    }
}
