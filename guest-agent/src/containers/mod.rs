//! Containers: the service, its store of records and the lookups every verb shares
//! (resolve by id, name or prefix; list; inspect; events). Each verb lives in the
//! module named for it: `create`, `lifecycle` (start, exit, restart policy, kill,
//! stop, wait), `remove`, `reopen` (adoption after an engine restart), `bundle`,
//! `net`, `commit`, `control` (pause, update, stats, top, resize), `exec`, `health`
//! (healthchecks and their monitors), `archive` (cp, diff). Processes run through a
//! [`ContainerRuntime`], networks through the network service. Nothing here knows
//! about HTTP; views are the API's JSON models from `bollard-stubs`.

pub mod archive;
mod bundle;
mod changes;
pub use changes::apply as apply_change;
mod commit;
pub mod config;
mod control;
mod create;
pub mod exec;
mod health;
mod lifecycle;
mod links;
pub mod logs;
pub mod names;
pub(crate) mod net;
mod record;
mod remove;
mod reopen;
mod resources;
pub mod stats;
mod sysctl;
#[cfg(test)]
mod tests;
mod top;
pub mod views;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::images::ImageError;
use crate::runtime::rootfs::RootfsDirs;
use crate::runtime::shim::LOG_FILE;
use crate::runtime::ContainerRuntime;
use crate::volumes::{VolumeError, VolumeService};
pub use bundle::log_rotation;
pub use commit::CommitOptions;
pub use control::connect_attach;
pub use lifecycle::parse_signal;
pub use record::{ContainerRecord, Status, BUILD_LABEL, BUILD_STEP};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("No such exec instance: {0}")]
    ExecNotFound(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// A path inside a container (`docker cp`).
    #[error("{0}")]
    PathNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// Nothing to do (already started, already stopped): HTTP 304.
    #[error("container already in the requested state")]
    NotModified,
    #[error("{message}")]
    Start { message: String, exit_code: i64 },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let context = context.into();
    move |source| ContainerError::Io { context, source }
}

/// What waiters watch: changes whenever the container starts, exits or is removed.
#[derive(Debug, Clone, Default)]
pub struct Life {
    pub running: bool,
    pub exits: u64,
    pub exit_code: i64,
    pub error: String,
    pub removed: bool,
}

struct Entry {
    rec: ContainerRecord,
    life: watch::Sender<Life>,
}

/// `docker wait` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: Option<&str>) -> Result<WaitCondition, ContainerError> {
        match s.unwrap_or("not-running") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ContainerError::InvalidArgument(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

pub struct ContainerService {
    /// Itself, for the tasks it spawns from methods that only borrow it (the health
    /// monitors started on unpause).
    me: Weak<ContainerService>,
    dir: PathBuf,
    trash: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    execs: Mutex<HashMap<String, exec::ExecEntry>>,
    restarts: tokio::sync::mpsc::UnboundedSender<(String, Duration)>,
    init_binary: Option<PathBuf>,
    events: Arc<crate::events::Events>,
    network: Arc<crate::network::NetworkService>,
    volumes: Arc<VolumeService>,
    /// In Berth's VM: which host paths bind mounts may use.
    host_paths: Option<crate::volumes::hostpaths::HostPaths>,
    runtime: Arc<dyn ContainerRuntime>,
    /// Becomes true once networks left by the previous engine are reconciled and the
    /// running containers' DNS and ports are restored: a start waits for it, so a
    /// reconcile never removes what a new start (or a revived container) just wired.
    restored: watch::Sender<bool>,
    /// The health monitors of running containers with a healthcheck.
    health: health::monitor::Monitors,
}

impl ContainerService {
    /// Publishes a container event with dockerd's attributes (name, image, labels).
    fn emit(&self, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs: Vec<(String, String)> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.push(("name".into(), rec.name.clone()));
        attrs.push(("image".into(), rec.image.clone()));
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events.emit(
            bollard_stubs::models::EventMessageTypeEnum::CONTAINER,
            action,
            &rec.id,
            attrs,
        );
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Finds a container by full ID, name (with or without '/') or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<String, ContainerError> {
        resolve_in(&self.lock(), name)
    }

    pub fn record(&self, name: &str) -> Result<ContainerRecord, ContainerError> {
        let map = self.lock();
        let id = resolve_in(&map, name)?;
        Ok(map[&id].rec.clone())
    }

    fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, ContainerError> {
        let mut map = self.lock();
        let e = map
            .get_mut(id)
            .ok_or_else(|| ContainerError::NotFound(id.to_string()))?;
        f(&mut e.rec);
        e.rec
            .save(&self.dir.join(id))
            .map_err(io_err("saving container state"))?;
        Ok(e.rec.clone())
    }

    fn notify(&self, id: &str, f: impl FnOnce(&mut Life)) {
        if let Some(e) = self.lock().get(id) {
            e.life.send_modify(f);
        }
    }

    fn life(&self, id: &str) -> Result<watch::Receiver<Life>, ContainerError> {
        self.lock()
            .get(id)
            .map(|e| e.life.subscribe())
            .ok_or_else(|| ContainerError::NotFound(id.to_string()))
    }

    /// Counts (running, paused, stopped) for `/info`.
    pub fn counts(&self) -> (i64, i64, i64) {
        let map = self.lock();
        let running = map.values().filter(|e| e.rec.running()).count() as i64;
        let paused = map.values().filter(|e| e.rec.state.paused).count() as i64;
        (running - paused, paused, map.len() as i64 - running)
    }

    pub fn image_in_use(&self, image_id: &str) -> bool {
        self.lock().values().any(|e| e.rec.image_id == image_id)
    }

    /// Where to follow a container's output from: its log, whether it uses a TTY, and
    /// its lifecycle.
    pub fn output(
        &self,
        name: &str,
    ) -> Result<(PathBuf, bool, watch::Receiver<Life>, Status), ContainerError> {
        let rec = self.record(name)?;
        let rx = self.life(&rec.id)?;
        Ok((
            self.container_dir(&rec.id).join(LOG_FILE),
            rec.config.tty == Some(true),
            rx,
            rec.state.status,
        ))
    }

    pub fn list(
        &self,
        filters: &views::ListFilters,
    ) -> Result<Vec<bollard_stubs::models::ContainerSummary>, ContainerError> {
        let map = self.lock();
        let mut filters = filters.clone();
        for anchor in [&mut filters.before, &mut filters.since] {
            if let Some(name) = anchor.as_mut() {
                *name = resolve_in(&map, name)?;
            }
        }
        if !filters.network.is_empty() {
            // A network may be named by an ID prefix, which never-started
            // containers' endpoints do not carry yet.
            let by_id: Vec<String> = self
                .network
                .list()
                .into_iter()
                .filter(|n| filters.network.iter().any(|v| n.id.starts_with(v.as_str())))
                .map(|n| n.name)
                .collect();
            filters.network.extend(by_id);
        }
        let mut recs: Vec<&ContainerRecord> = map.values().map(|e| &e.rec).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let ports =
            |rec: &ContainerRecord| net::summary_ports(rec, &self.network.ports.of(&rec.id));
        let mut rows = views::list(&recs, ports, &filters);
        for row in &mut rows {
            let Some(rec) = row.id.as_ref().and_then(|id| map.get(id)).map(|e| &e.rec) else {
                continue;
            };
            row.network_settings = Some(bollard_stubs::models::ContainerSummaryNetworkSettings {
                networks: Some(rec.networks.clone().into_iter().collect()),
            });
        }
        Ok(rows)
    }

    /// Bytes the container wrote into its own layer (`SizeRw`).
    pub fn size_rw(&self, id: &str) -> u64 {
        crate::fsutil::tree_size(&RootfsDirs::under(&self.container_dir(id)).upper)
    }

    pub fn inspect(
        &self,
        name: &str,
    ) -> Result<bollard_stubs::models::ContainerInspectResponse, ContainerError> {
        let rec = self.record(name)?;
        let mut doc = views::inspect(&rec, &self.container_dir(&rec.id));
        let sandbox = if rec.running() {
            self.network.netns_of(&rec.id)
        } else {
            None
        };
        doc.network_settings = Some(net::settings(
            &rec,
            &self.network.ports.of(&rec.id),
            sandbox.as_deref(),
        ));
        Ok(doc)
    }
}

/// dockerd's wording, which the CLI turns into exit status 127/126.
fn start_error_message(rec: &ContainerRecord, code: i64, detail: &str) -> String {
    let cmd = config::command(&rec.config)
        .into_iter()
        .next()
        .unwrap_or_default();
    start_error_message_for(&cmd, code, detail)
}

fn start_error_message_for(cmd: &str, code: i64, detail: &str) -> String {
    match code {
        127 => format!(
            "failed to create task for container: failed to create shim task: OCI runtime create failed: exec: \"{cmd}\": executable file not found in $PATH: unknown"
        ),
        126 => format!(
            "failed to create task for container: failed to create shim task: OCI runtime create failed: exec: \"{cmd}\": permission denied: unknown ({detail})"
        ),
        _ => format!("failed to start container: {detail}"),
    }
}

fn resolve_in(map: &HashMap<String, Entry>, name: &str) -> Result<String, ContainerError> {
    let not_found = || ContainerError::NotFound(name.to_string());
    if name.is_empty() {
        return Err(not_found());
    }
    if map.contains_key(name) {
        return Ok(name.to_string());
    }
    let bare = name.strip_prefix('/').unwrap_or(name);
    if let Some(e) = map.values().find(|e| e.rec.name == bare) {
        return Ok(e.rec.id.clone());
    }
    let mut hits = map.keys().filter(|id| id.starts_with(name));
    match (hits.next(), hits.next()) {
        (Some(id), None) => Ok(id.clone()),
        (Some(_), Some(_)) => Err(ContainerError::InvalidArgument(format!(
            "multiple IDs found with provided prefix: {name}"
        ))),
        _ => Err(not_found()),
    }
}
