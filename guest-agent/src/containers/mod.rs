//! Containers: create, start (through a per-container shim), stop, kill, wait, remove,
//! list, inspect, rename, prune, and re-adoption after an engine restart. Nothing here
//! knows about HTTP; views are the API's JSON models from `bollard-stubs`.

pub mod archive;
mod changes;
pub use changes::apply as apply_change;
pub mod config;
pub mod exec;
pub mod logs;
pub mod names;
mod net;
mod record;
pub mod stats;
pub mod views;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard_stubs::models::{ContainerCreateBody, ContainerPruneResponse, HostConfig};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use crate::fsutil::remove_tree_via;
use crate::images::{ImageError, ImageService};
use crate::runtime::rootfs::{mount_overlay, unmount, RootfsDirs};
use crate::runtime::shim::{read_exit, LOG_FILE};
use crate::runtime::spec;
use crate::volumes::mounts::{ContainerMount, Kind};
use crate::volumes::{VolumeError, VolumeService};
pub use record::{ContainerRecord, Status};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
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

/// What `POST /commit` asks for.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub pause: bool,
    pub changes: Vec<String>,
    /// Config fields that override the container's.
    pub config: Option<bollard_stubs::models::ContainerConfig>,
    /// The new image's config exactly (a build step), instead of the container's.
    pub exact_config: Option<bollard_stubs::models::ImageConfig>,
    /// The history line, instead of the container's command.
    pub created_by: Option<String>,
}

/// The image-config part of a container's config.
fn image_config(c: &bollard_stubs::models::ContainerConfig) -> bollard_stubs::models::ImageConfig {
    bollard_stubs::models::ImageConfig {
        user: c.user.clone(),
        exposed_ports: c.exposed_ports.clone(),
        env: c.env.clone(),
        cmd: c.cmd.clone(),
        healthcheck: c.healthcheck.clone(),
        args_escaped: c.args_escaped,
        volumes: c.volumes.clone(),
        working_dir: c.working_dir.clone(),
        entrypoint: c.entrypoint.clone(),
        on_build: c.on_build.clone(),
        labels: c.labels.clone(),
        stop_signal: c.stop_signal.clone(),
        shell: c.shell.clone(),
    }
}

/// Network failures at create/start, with dockerd's statuses.
fn net_err(e: crate::network::NetworkError) -> ContainerError {
    use crate::network::NetworkError as N;
    match e {
        N::NotFound(n) => ContainerError::NotFound(format!("network {n} not found")),
        N::InvalidArgument(m) => ContainerError::InvalidArgument(m),
        N::Conflict(m) | N::Forbidden(m) => ContainerError::Conflict(m),
        other => ContainerError::Start {
            message: other.to_string(),
            exit_code: 128,
        },
    }
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
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ContainerService {
    /// Loads every container record under `dir`; containers whose shim is gone are
    /// marked exited, live ones are watched again.
    pub fn open(
        dir: PathBuf,
        init_binary: Option<PathBuf>,
        events: Arc<crate::events::Events>,
        network: Arc<crate::network::NetworkService>,
        volumes: Arc<VolumeService>,
        host_paths: Option<crate::volumes::hostpaths::HostPaths>,
    ) -> Result<Arc<ContainerService>, ContainerError> {
        let trash = dir.join(".trash");
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        crate::fsutil::reset_dir(&trash).map_err(io_err("cleaning container trash"))?;
        let (restarts, restart_rx) = tokio::sync::mpsc::unbounded_channel();
        let svc = Arc::new(ContainerService {
            dir,
            trash,
            entries: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            restarts,
            init_binary,
            events,
            network,
            volumes,
            host_paths,
        });
        tokio::spawn(svc.clone().restarter(restart_rx));
        let mut adopt = Vec::new();
        let rd = std::fs::read_dir(&svc.dir).map_err(io_err("listing containers"))?;
        for e in rd.flatten() {
            let path = e.path();
            if path == svc.trash {
                continue;
            }
            let Ok(mut rec) = ContainerRecord::load(&path) else {
                tracing::warn!(dir = %path.display(), "skipping unreadable container record");
                continue;
            };
            if rec.running() {
                if let Some(exit) = read_exit(&path) {
                    apply_exit(
                        &mut rec,
                        exit.exit_code as i64,
                        &exit.error,
                        &exit.finished_at,
                    );
                    let _ = unmount(&RootfsDirs::under(&path));
                    let _ = rec.save(&path);
                } else if rec.state.shim_pid > 0 && process_alive(rec.state.shim_pid) {
                    adopt.push(rec.id.clone());
                } else {
                    apply_exit(&mut rec, 255, "the container's shim disappeared", &now());
                    let _ = unmount(&RootfsDirs::under(&path));
                    let _ = rec.save(&path);
                }
            }
            for m in rec.mounts.iter().filter(|m| m.kind == Kind::Volume) {
                svc.volumes.reference(&m.name, &rec.id);
                if rec.running() {
                    svc.volumes.adopt_mount(&m.name, &rec.id);
                }
            }
            let life = Life {
                running: rec.running(),
                exit_code: rec.state.exit_code,
                ..Default::default()
            };
            svc.lock().insert(
                rec.id.clone(),
                Entry {
                    rec,
                    life: watch::Sender::new(life),
                },
            );
        }
        let running: std::collections::BTreeSet<String> = svc
            .lock()
            .values()
            .filter(|e| e.rec.running())
            .map(|e| e.rec.id.clone())
            .collect();
        {
            let s = svc.clone();
            tokio::spawn(async move {
                s.network.reconcile(&running).await;
                // The port proxies lived in the engine that died: bind them again.
                for id in running {
                    if s.network.wants_resolver(&id) {
                        if let Err(e) = s.network.start_resolver(&id).await {
                            tracing::warn!(container = %id, error = %e, "restarting the embedded DNS failed");
                        }
                    }
                    if let Ok(rec) = s.record(&id) {
                        if let Err(e) = s.publish_ports(&rec).await {
                            tracing::warn!(container = %id, error = %e, "re-publishing ports failed");
                        }
                    }
                }
            });
        }
        // Devices of volumes whose users died with the old engine.
        svc.volumes.sweep();
        for id in adopt {
            let s = svc.clone();
            tokio::spawn(async move { s.watch_adopted(id).await });
        }
        // `always` and `unless-stopped` containers come back with the engine.
        let revive: Vec<String> = svc
            .lock()
            .values()
            .filter(|e| {
                !e.rec.running() && !e.rec.manually_stopped && e.rec.state.started_at.is_some()
            })
            .filter(|e| {
                use bollard_stubs::models::RestartPolicyNameEnum as P;
                matches!(
                    e.rec
                        .host_config
                        .restart_policy
                        .as_ref()
                        .and_then(|p| p.name.as_ref()),
                    Some(P::ALWAYS) | Some(P::UNLESS_STOPPED)
                )
            })
            .map(|e| e.rec.id.clone())
            .collect();
        for id in revive {
            let _ = svc.restarts.send((id, Duration::from_millis(0)));
        }
        Ok(svc)
    }

    /// dockerd's `network connect` / `disconnect` events (Actor: the network).
    fn network_event(&self, action: &str, network_id: &str, network: &str, container: &str) {
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

    pub fn create(
        &self,
        images: &ImageService,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<String, ContainerError> {
        let image = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ContainerError::InvalidArgument(
                    "config cannot be empty in order to create a container".into(),
                )
            })?;
        let (image_id, image_cfg) = images.config(&image)?;
        let layers = images.layer_paths(&image_id)?;
        let req = views::create_config(&body);
        let merged = config::merge(&req, &image_cfg);
        if config::command(&merged).is_empty() {
            return Err(ContainerError::InvalidArgument(
                "no command specified".into(),
            ));
        }
        let mut host_config: HostConfig = body.host_config.clone().unwrap_or_default();
        if host_config
            .network_mode
            .as_deref()
            .is_none_or(|m| m.is_empty() || m == "default")
        {
            host_config.network_mode = Some("bridge".into());
        }
        let mode = host_config.network_mode.clone().unwrap_or_default();
        let networks = net::requested(&body, &mode, &self.network)?;
        // dockerd fills the log driver in; clients (docker-py's run) read it back.
        let log = host_config.log_config.get_or_insert_with(Default::default);
        if log.typ.as_deref().is_none_or(str::is_empty) {
            log.typ = Some("json-file".into());
        }
        if log.config.is_none() {
            log.config = Some(Default::default());
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        let mut map = self.lock();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => names::validate(n)
                .map_err(ContainerError::InvalidArgument)?
                .to_string(),
            None => loop {
                let n = names::generate();
                if !map.values().any(|e| e.rec.name == n) {
                    break n;
                }
            },
        };
        if let Some(other) = map.values().find(|e| e.rec.name == name) {
            return Err(ContainerError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.rec.id
            )));
        }
        let mut merged = merged;
        if merged.hostname.as_deref().is_none_or(str::is_empty) {
            // With the host's network the container also shows the host's name.
            merged.hostname = Some(if mode == "host" {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| id[..12].to_string())
            } else {
                id[..12].to_string()
            });
        }
        let mounts = self.plan_mounts(&map, &id, &merged, &host_config)?;
        merged.image = Some(image.clone());
        let rec = ContainerRecord {
            id: id.clone(),
            name,
            created: now(),
            image,
            image_id,
            config: merged,
            host_config,
            state: record::RunState {
                status: Status::Created,
                pid: 0,
                shim_pid: 0,
                exit_code: 0,
                error: String::new(),
                started_at: None,
                finished_at: None,
                paused: false,
            },
            restart_count: 0,
            layers,
            manually_stopped: false,
            networks,
            mounts,
        };
        let dir = self.container_dir(&id);
        let saved = std::fs::create_dir_all(&dir)
            .map_err(io_err("creating container directory"))
            .and_then(|()| rec.save(&dir).map_err(io_err("saving container")));
        if let Err(e) = saved {
            self.volumes.release(&id);
            for m in rec.mounts.iter().filter(|m| m.anonymous) {
                let _ = self.volumes.remove(&m.name, true);
            }
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.emit(&rec, "create", &[]);
        map.insert(
            id.clone(),
            Entry {
                rec,
                life: watch::Sender::new(Life::default()),
            },
        );
        Ok(id)
    }

    /// Resolves what the container mounts (dockerd's precedence), creating the named
    /// and anonymous volumes it needs and recording its references to them.
    fn plan_mounts(
        &self,
        map: &HashMap<String, Entry>,
        id: &str,
        cfg: &bollard_stubs::models::ContainerConfig,
        hc: &HostConfig,
    ) -> Result<Vec<ContainerMount>, ContainerError> {
        let mut from = Vec::new();
        for spec in hc.volumes_from.clone().unwrap_or_default() {
            let (name, mode) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
            let other = resolve_in(map, name)?;
            from.push((map[&other].rec.mounts.clone(), mode.to_string()));
        }
        let mut binds = hc.binds.clone().unwrap_or_default();
        let mut mounts = hc.mounts.clone().unwrap_or_default();
        if let Some(hp) = &self.host_paths {
            for b in binds.iter_mut() {
                *b = hp.translate_bind(b);
            }
            for m in mounts.iter_mut() {
                if m.typ == Some(bollard_stubs::models::MountType::BIND) {
                    m.source = m.source.as_deref().map(|s| hp.translate(s));
                }
            }
        }
        let anonymous = cfg.volumes.clone().unwrap_or_default();
        let planned = crate::volumes::mounts::plan(
            &crate::volumes::mounts::Request {
                binds: &binds,
                mounts: &mounts,
                anonymous: &anonymous,
                volumes_from: &from,
            },
            &|p| p.exists(),
        )
        .map_err(ContainerError::InvalidArgument)?;
        if let Some(hp) = &self.host_paths {
            for p in planned.iter().filter(|p| p.mount.kind == Kind::Bind) {
                hp.check(&p.mount.source, |p| p.exists())
                    .map_err(ContainerError::InvalidArgument)?;
            }
        }
        let wanted: Vec<_> = planned
            .iter()
            .filter(|p| p.mount.kind == Kind::Volume)
            .map(|p| (p.mount.name.clone(), p.create.clone()))
            .collect();
        let mut data = self.volumes.acquire(id, &wanted)?.into_iter();
        Ok(planned
            .into_iter()
            .map(|p| {
                let mut m = p.mount;
                if m.kind == Kind::Volume {
                    if let Some(d) = data.next() {
                        m.source = d.display().to_string();
                    }
                }
                m
            })
            .collect())
    }

    /// Starts the container through a new shim and returns once its process runs.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        if rec.running() {
            return Err(ContainerError::NotModified);
        }
        let id = rec.id.clone();
        let dir = self.container_dir(&id);
        let layers = rec.layers.clone();
        if layers.is_empty() {
            return Err(ContainerError::Conflict(format!(
                "container {} has no image layers recorded",
                rec.id
            )));
        }
        self.update(&id, |r| r.manually_stopped = false)?;
        let dirs = RootfsDirs::under(&dir);
        let _ = std::fs::remove_file(dir.join(crate::runtime::shim::EXIT_FILE));
        let (rec, setup) = match self.wire_network(&rec).await {
            Ok(x) => x,
            Err(e) => {
                self.network.detach(&id).await;
                self.remove_if_auto(&rec, &id).await;
                return Err(e);
            }
        };
        let prepared = {
            let dir = dir.clone();
            let rec = rec.clone();
            let init = self.init_binary.clone();
            let volumes = self.volumes.clone();
            tokio::task::spawn_blocking(move || {
                prepare_bundle(&dir, &rec, &layers, init, setup, &volumes)
            })
            .await
            .map_err(|e| ContainerError::Io {
                context: "preparing the container".into(),
                source: std::io::Error::other(e.to_string()),
            })?
        };
        if let Err(e) = prepared {
            let _ = unmount(&dirs);
            self.network.detach(&id).await;
            let _ = self.update(&id, net::clear_wiring);
            self.volumes.unmount_container(&id);
            self.remove_if_auto(&rec, &id).await;
            return Err(e);
        }
        match spawn_shim(
            &id,
            &dir,
            rec.config.open_stdin == Some(true),
            None,
            log_rotation(&rec.host_config),
        )
        .await
        {
            Ok((child, pid)) => {
                let shim_pid = child.id().unwrap_or(0) as i64;
                self.update(&id, |r| {
                    r.state.status = Status::Running;
                    r.state.pid = pid;
                    r.state.shim_pid = shim_pid;
                    r.state.exit_code = 0;
                    r.state.error.clear();
                    r.state.started_at = Some(now());
                    r.state.finished_at = None;
                })?;
                self.notify(&id, |l| l.running = true);
                if let Ok(r) = self.record(&id) {
                    self.emit(&r, "start", &[]);
                }
                let svc = self.clone();
                tokio::spawn(async move {
                    let mut child = child;
                    let _ = child.wait().await;
                    svc.on_exit(&id).await;
                });
                Ok(())
            }
            Err((code, detail)) => {
                let _ = unmount(&dirs);
                self.network.detach(&id).await;
                let _ = self.update(&id, net::clear_wiring);
                self.volumes.unmount_container(&id);
                // As dockerd: the status stays what it was (a never-started container
                // stays `created`); the exit code and the API's message are recorded.
                let message = start_error_message(&rec, code, &detail);
                self.update(&id, |r| {
                    r.state.exit_code = code;
                    r.state.error = message.clone();
                })?;
                self.notify(&id, |l| {
                    l.exit_code = code;
                    l.error = message.clone();
                });
                self.remove_if_auto(&rec, &id).await;
                Err(ContainerError::Start {
                    message,
                    exit_code: code,
                })
            }
        }
    }

    /// dockerd removes a `--rm` container whose start failed, at whichever step: the
    /// CLI waits for that removal before it exits.
    async fn remove_if_auto(self: &Arc<Self>, rec: &ContainerRecord, id: &str) {
        if rec.host_config.auto_remove == Some(true) {
            if let Err(e) = self.remove(id, true, true).await {
                tracing::warn!(container = id, error = %e, "auto-remove after a failed start");
            }
        }
    }

    /// Records the exit the shim left, releases the rootfs, wakes waiters, and removes
    /// the container when it was created with `--rm`.
    async fn on_exit(self: &Arc<Self>, id: &str) {
        let dir = self.container_dir(id);
        let exit = read_exit(&dir);
        let (code, error, finished) = match exit {
            Some(e) => (e.exit_code as i64, e.error, e.finished_at),
            None => {
                self.kill_orphaned(id).await;
                (
                    255,
                    "the container's shim exited without a status".to_string(),
                    now(),
                )
            }
        };
        let _ = unmount(&RootfsDirs::under(&dir));
        if let Ok(r) = self.record(id) {
            for (name, ep) in &r.networks {
                if let Some(nid) = ep.network_id.as_deref().filter(|n| !n.is_empty()) {
                    self.network_event("disconnect", nid, name, id);
                }
            }
        }
        self.network.detach(id).await;
        self.volumes.unmount_container(id);
        let rec = self.update(id, |r| {
            apply_exit(r, code, &error, &finished);
            net::clear_wiring(r);
        });
        self.notify(id, |l| {
            l.running = false;
            l.exits += 1;
            l.exit_code = code;
            l.error = error.clone();
        });
        if let Ok(rec) = &rec {
            self.emit(rec, "die", &[("exitCode", code.to_string())]);
        }
        if let Ok(rec) = rec {
            if rec.host_config.auto_remove == Some(true) {
                // As dockerd, `--rm` takes the container's anonymous volumes with it.
                if let Err(e) = self.remove(id, true, true).await {
                    tracing::warn!(container = id, error = %e, "auto-remove failed");
                }
            } else if let Some(delay) = restart_delay(&rec, code) {
                let _ = self.restarts.send((id.to_string(), delay));
            }
        }
    }

    /// Connects the container to its networks, writes its `/etc` files and publishes its
    /// ports; returns the updated record and what the bundle needs.
    async fn wire_network(
        &self,
        rec: &ContainerRecord,
    ) -> Result<(ContainerRecord, BundleNet), ContainerError> {
        let mode = net::mode(rec);
        let requests = net::endpoint_requests(rec);
        let wiring = self
            .network
            .attach(&rec.id, &rec.name, &mode, &requests, |other| {
                let id = self.resolve(other).ok()?;
                let running = self.record(&id).ok()?.running();
                running.then(|| self.network.netns_of(&id)).flatten()
            })
            .await
            .map_err(net_err)?;
        let rec = self.update(&rec.id, |r| net::record_wiring(r, &wiring))?;
        for (name, ep) in &wiring.endpoints {
            self.network_event("connect", &ep.network_id, name, &rec.id);
        }
        let dir = self.container_dir(&rec.id);
        let mounts = net::write_etc(&dir, &rec, &wiring)?;
        self.publish_ports(&rec).await?;
        Ok((
            rec,
            BundleNet {
                mounts,
                namespace: net::namespace(&wiring),
            },
        ))
    }

    /// `docker commit`: a new image from the container's changes. A running container
    /// is frozen meanwhile (unless `pause` is false), as dockerd does.
    pub async fn commit(
        &self,
        images: &crate::images::ImageService,
        name: &str,
        opts: CommitOptions,
    ) -> Result<String, ContainerError> {
        let rec = self.record(name)?;
        let mut cfg = opts
            .exact_config
            .clone()
            .unwrap_or_else(|| image_config(&rec.config));
        if let Some(over) = &opts.config {
            let o = image_config(over);
            macro_rules! take {
                ($($f:ident),*) => { $( if o.$f.is_some() { cfg.$f = o.$f.clone(); } )* };
            }
            take!(
                user,
                exposed_ports,
                env,
                cmd,
                healthcheck,
                volumes,
                working_dir,
                entrypoint,
                on_build,
                labels,
                stop_signal,
                shell
            );
        }
        for c in &opts.changes {
            changes::apply(&mut cfg, c).map_err(ContainerError::InvalidArgument)?;
        }
        let freeze = opts.pause && rec.running() && !rec.state.paused;
        if freeze {
            self.set_paused(&rec.id, true).await?;
        }
        let upper = RootfsDirs::under(&self.container_dir(&rec.id)).upper;
        if !upper.is_dir() {
            std::fs::create_dir_all(&upper).map_err(io_err("creating the container's layer"))?;
        }
        let created_by = opts
            .created_by
            .clone()
            .unwrap_or_else(|| config::command(&rec.config).join(" "));
        let result = tokio::task::block_in_place(|| {
            images.commit(crate::images::commit::CommitRequest {
                parent: &rec.image_id,
                upper: &upper,
                config: cfg,
                author: opts.author.clone(),
                comment: opts.comment.clone(),
                created_by,
            })
        });
        if freeze {
            let _ = self.set_paused(&rec.id, false).await;
        }
        let id = result?;
        if let Some(repo) = opts.repo.as_deref().filter(|r| !r.is_empty()) {
            images.tag(&id, repo, opts.tag.as_deref().filter(|t| !t.is_empty()))?;
        }
        self.emit(
            &rec,
            "commit",
            &[("comment", opts.comment.unwrap_or_default())],
        );
        Ok(id)
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
        let mode = net::mode(&rec);
        if !net::is_network(&mode) {
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
            };
            let wiring = self
                .network
                .connect_running(&rec.id, &rec.name, &req, &netns, rec.networks.len())
                .await
                .map_err(net_err)?;
            self.update(&rec.id, |r| {
                r.networks.insert(network.to_string(), settings.clone());
                net::record_wiring(r, &wiring);
            })?;
        } else {
            self.update(&rec.id, |r| {
                r.networks.insert(network.to_string(), settings.clone());
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
        })?;
        Ok(())
    }

    /// Binds the container's published ports to its first network address.
    async fn publish_ports(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        let wanted = net::wanted_ports(rec)?;
        if wanted.is_empty() || !net::is_network(&net::mode(rec)) {
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

    /// The shim died without recording an exit (killed or crashed), so nothing holds
    /// the container's stdio or writes its log any more: kill what it left running, as
    /// containerd does with a dead shim's task. Its init is in its own PID namespace, so
    /// killing it ends every process in the container; the reaper reaps it.
    async fn kill_orphaned(&self, id: &str) {
        let Ok(rec) = self.record(id) else { return };
        let pid = rec.state.pid;
        // Only a process still in this container's cgroup: the pid may have been reused.
        let ours = |pid: i64| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains(&rec.id))
        };
        if pid <= 0 || !ours(pid) {
            return;
        }
        tracing::warn!(
            container = id,
            pid,
            "the shim died; killing the container it left running"
        );
        let _ = send_signal(pid, nix::sys::signal::Signal::SIGKILL);
        for _ in 0..100 {
            if !process_alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(
            container = id,
            pid,
            "the orphaned container process did not go away"
        );
    }

    /// Carries out restart-policy restarts. A channel rather than a direct call keeps
    /// `start` → exit watcher → `start` from being one recursive future.
    async fn restarter(
        self: Arc<Self>,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<(String, Duration)>,
    ) {
        while let Some((id, delay)) = rx.recv().await {
            let svc = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // The user may have stopped or removed it meanwhile.
                let Ok(rec) = svc.record(&id) else { return };
                if rec.manually_stopped || rec.running() {
                    return;
                }
                let _ = svc.update(&id, |r| r.restart_count += 1);
                if let Err(e) = svc.start(&id).await {
                    tracing::warn!(container = %id, error = %e, "restart failed");
                }
            });
        }
    }

    /// Watches a container whose shim survived an engine restart (it is no longer our
    /// child, so we poll for its exit record).
    async fn watch_adopted(self: Arc<Self>, id: String) {
        let dir = self.container_dir(&id);
        loop {
            let shim = self
                .lock()
                .get(&id)
                .map(|e| e.rec.state.shim_pid)
                .unwrap_or(0);
            if read_exit(&dir).is_some() || shim <= 0 || !process_alive(shim) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.on_exit(&id).await;
    }

    /// Sends `signal` to the container's process.
    pub fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        if matches!(
            sig,
            nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGTERM
        ) {
            self.update(&rec.id, |r| r.manually_stopped = true)?;
        }
        send_signal(rec.state.pid, sig)
    }

    /// `docker stop`: the stop signal, then SIGKILL after the timeout.
    pub async fn stop(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        // Even when it is not running right now: a restart may be pending.
        self.update(&rec.id, |r| r.manually_stopped = true)?;
        if !rec.running() {
            return Err(ContainerError::NotModified);
        }
        let sig = parse_signal(
            signal
                .or(rec.config.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        if rec.state.paused {
            self.set_paused(&rec.id, false).await?;
        }
        let mut rx = self.life(&rec.id)?;
        let exits = rx.borrow().exits;
        send_signal(rec.state.pid, sig)?;
        let exited = |l: &Life| l.exits > exits || l.removed;
        let graceful = if secs < 0 {
            rx.wait_for(exited).await.is_ok()
        } else {
            tokio::time::timeout(Duration::from_secs(secs as u64), rx.wait_for(exited))
                .await
                .is_ok()
        };
        if !graceful {
            let _ = send_signal(rec.state.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(exited)).await;
        }
        self.emit(&rec, "stop", &[]);
        Ok(())
    }

    fn life(&self, id: &str) -> Result<watch::Receiver<Life>, ContainerError> {
        self.lock()
            .get(id)
            .map(|e| e.life.subscribe())
            .ok_or_else(|| ContainerError::NotFound(id.to_string()))
    }

    /// Resolves `name` and returns a future that completes when `condition` holds,
    /// with the exit code and error. Resolution errors are returned at once.
    pub fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<impl std::future::Future<Output = (i64, String)>, ContainerError> {
        let id = self.resolve(name)?;
        let mut rx = self.life(&id)?;
        let start = rx.borrow().clone();
        let created = self.record(&id)?.state.status == Status::Created;
        Ok(async move {
            let done = |l: &Life| match condition {
                WaitCondition::NotRunning => {
                    !l.running && (!created || l.exits > start.exits || l.removed)
                }
                WaitCondition::NextExit => l.exits > start.exits || l.removed,
                WaitCondition::Removed => l.removed,
            };
            // A created container counts as not running.
            if condition == WaitCondition::NotRunning && !start.running {
                return (start.exit_code, start.error.clone());
            }
            let result = match rx.wait_for(done).await {
                Ok(l) => Some((l.exit_code, l.error.clone())),
                Err(_) => None,
            };
            let (code, error) = result.unwrap_or_else(|| {
                let l = rx.borrow();
                (l.exit_code, l.error.clone())
            });
            // dockerd reports a removal without the error (the CLI would log it as
            // "Error waiting for container" after a failed `run --rm`).
            match condition {
                WaitCondition::Removed => (code, String::new()),
                _ => (code, error),
            }
        })
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

    /// `docker pause` / `docker unpause`: freezes or thaws every process through the
    /// freezer cgroup (libcontainer's pause does not clone, so it may run here).
    pub async fn set_paused(&self, name: &str, pause: bool) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if rec.state.paused == pause {
            return Err(ContainerError::Conflict(format!(
                "Container {} is {}paused",
                rec.id,
                if pause { "already " } else { "not " }
            )));
        }
        let state = self.container_dir(&rec.id).join("runtime").join(&rec.id);
        tokio::task::spawn_blocking(move || {
            let mut c =
                libcontainer::container::Container::load(state).map_err(|e| e.to_string())?;
            if pause {
                c.pause().map_err(|e| e.to_string())
            } else {
                c.resume().map_err(|e| e.to_string())
            }
        })
        .await
        .map_err(|e| ContainerError::Io {
            context: "pausing".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|e| ContainerError::Io {
            context: if pause {
                "pausing the container".into()
            } else {
                "unpausing the container".into()
            },
            source: std::io::Error::other(e),
        })?;
        self.update(&rec.id, |r| r.state.paused = pause)?;
        self.emit(&rec, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// One `docker stats` sample: CPU now and 100 ms earlier, memory, pids.
    pub async fn stats(
        &self,
        name: &str,
    ) -> Result<bollard_stubs::models::ContainerStatsResponse, ContainerError> {
        let rec = self.record(name)?;
        let cg = stats::CgroupFiles::new(format!("berth/{}", rec.id));
        let read_at = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let (pre, preread) = if rec.running() {
            let p = stats::cpu_stats(&cg);
            let t = read_at();
            tokio::time::sleep(Duration::from_millis(100)).await;
            (Some(p), Some(t))
        } else {
            (None, None)
        };
        let running = rec.running();
        Ok(bollard_stubs::models::ContainerStatsResponse {
            id: Some(rec.id.clone()),
            name: Some(format!("/{}", rec.name)),
            os_type: Some("linux".into()),
            read: Some(read_at()),
            preread,
            cpu_stats: Some(if running {
                stats::cpu_stats(&cg)
            } else {
                Default::default()
            }),
            precpu_stats: Some(pre.unwrap_or_default()),
            memory_stats: Some(if running {
                cg.memory()
            } else {
                Default::default()
            }),
            pids_stats: Some(if running {
                cg.pids()
            } else {
                Default::default()
            }),
            num_procs: Some(0),
            networks: Some(if running {
                stats::network(rec.state.pid)
            } else {
                Default::default()
            }),
            ..Default::default()
        })
    }

    /// Runs `f` with the container's root filesystem mounted (temporarily, if the
    /// container is not running), on the blocking pool.
    pub async fn with_rootfs<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, ContainerError> {
        let rec = self.record(name)?;
        let dir = self.container_dir(&rec.id);
        tokio::task::spawn_blocking(move || {
            let dirs = RootfsDirs::under(&dir);
            let temporary = !rec.running();
            if temporary {
                mount_overlay(&rec.layers, &dirs)
                    .map_err(io_err("mounting the container's root filesystem"))?;
            }
            let result = f(&dirs.merged);
            if temporary {
                let _ = unmount(&dirs);
            }
            result
        })
        .await
        .map_err(|e| ContainerError::Io {
            context: "container filesystem access".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// `docker cp`'s view of the container: a running container is seen through its own
    /// mount namespace (`/proc/<pid>/root`), so copies into volumes, bind mounts and
    /// tmpfs mounts land in them, as with dockerd; a stopped one through its rootfs.
    pub async fn with_view<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, ContainerError> {
        let rec = self.record(name)?;
        if rec.running() && rec.state.pid > 0 {
            let root = PathBuf::from(format!("/proc/{}/root", rec.state.pid));
            return tokio::task::spawn_blocking(move || f(&root))
                .await
                .map_err(|e| ContainerError::Io {
                    context: "container filesystem access".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        self.with_rootfs(name, f).await
    }

    /// `docker diff`.
    pub fn diff(&self, name: &str) -> Result<Vec<(String, u8)>, ContainerError> {
        let rec = self.record(name)?;
        let upper = RootfsDirs::under(&self.container_dir(&rec.id)).upper;
        Ok(archive::diff(&upper, &rec.layers))
    }

    /// `docker update`: new limits (applied to the running cgroup through libcgroups)
    /// and restart policy; persisted for the next start either way.
    pub async fn update_limits(
        &self,
        name: &str,
        body: bollard_stubs::models::ContainerUpdateBody,
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        let rec = self.update(&rec.id, |r| {
            let hc = &mut r.host_config;
            macro_rules! take {
                ($($f:ident),*) => { $( if body.$f.is_some() { hc.$f = body.$f.clone(); } )* };
            }
            take!(
                memory,
                memory_swap,
                cpu_shares,
                nano_cpus,
                cpu_quota,
                cpu_period,
                cpuset_cpus,
                cpuset_mems,
                pids_limit,
                restart_policy
            );
        })?;
        if !rec.running() {
            return Ok(());
        }
        let res = spec::Resources::from_host_config(&rec.host_config);
        let id = rec.id.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            use libcgroups::common::{
                create_cgroup_manager, CgroupConfig, CgroupManager, ControllerOpt,
            };
            let linux = spec::linux_resources(&res, Vec::new()).map_err(|e| e.to_string())?;
            let manager = create_cgroup_manager(CgroupConfig {
                cgroup_path: PathBuf::from(format!("/berth/{id}")),
                systemd_cgroup: false,
                container_name: id.clone(),
            })
            .map_err(|e| e.to_string())?;
            manager
                .apply(&ControllerOpt {
                    resources: &linux,
                    disable_oom_killer: false,
                    oom_score_adj: None,
                    freezer_state: None,
                })
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ContainerError::Io {
            context: "updating limits".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|e| {
            ContainerError::InvalidArgument(format!("Cannot update container {}: {e}", rec.id))
        })?;
        Ok(())
    }

    /// `docker top`.
    pub fn top(
        &self,
        name: &str,
    ) -> Result<bollard_stubs::models::ContainerTopResponse, ContainerError> {
        let rec = self.record(name)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        Ok(stats::top(&stats::CgroupFiles::new(format!(
            "berth/{}",
            rec.id
        ))))
    }

    /// The container's directory, where its shim's attach socket lives.
    pub fn attach_dir(&self, name: &str) -> Result<PathBuf, ContainerError> {
        Ok(self.container_dir(&self.resolve(name)?))
    }

    /// Whether the container keeps stdin open, and closes it when the first client
    /// detaches (`docker run -i` sets both).
    pub fn stdin_mode(&self, name: &str) -> Result<(bool, bool), ContainerError> {
        let rec = self.record(name)?;
        Ok((
            rec.config.open_stdin == Some(true),
            rec.config.stdin_once == Some(true),
        ))
    }

    /// Tells the shim the client's terminal size.
    pub async fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let mut sock = connect_attach(&self.container_dir(&rec.id))
            .await
            .map_err(io_err("connecting to the container's shim"))?;
        use tokio::io::AsyncWriteExt;
        sock.write_all(&crate::runtime::attach_proto::encode(
            &crate::runtime::attach_proto::Frame::Resize { rows, cols },
        ))
        .await
        .map_err(io_err("resizing the terminal"))?;
        Ok(())
    }

    /// `docker rm [-f] [-v]`: `-v` also removes the container's anonymous volumes
    /// that no other container references.
    pub async fn remove(
        &self,
        name: &str,
        force: bool,
        remove_volumes: bool,
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        let id = rec.id.clone();
        if rec.running() {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            if rec.state.paused {
                let _ = self.set_paused(&id, false).await;
            }
            let mut rx = self.life(&id)?;
            let exits = rx.borrow().exits;
            let _ = send_signal(rec.state.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                rx.wait_for(|l| l.exits > exits || l.removed),
            )
            .await;
        }
        let removed = self.lock().remove(&id);
        let Some(entry) = removed else {
            return Ok(()); // removed concurrently (e.g. --rm)
        };
        let dir = self.container_dir(&id);
        let _ = unmount(&RootfsDirs::under(&dir));
        self.volumes.unmount_container(&id);
        self.volumes.release(&id);
        if remove_volumes {
            for m in entry.rec.mounts.iter().filter(|m| m.anonymous) {
                if let Err(e) = self.volumes.remove(&m.name, true) {
                    tracing::warn!(container = %id, volume = %m.name, error = %e, "keeping volume");
                }
            }
        }
        let trash = self.trash.clone();
        let result = tokio::task::spawn_blocking(move || remove_tree_via(&dir, &trash))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        entry.life.send_modify(|l| l.removed = true);
        self.emit(&entry.rec, "destroy", &[]);
        result.map_err(io_err(format!("removing container {id}")))
    }

    pub fn rename(&self, name: &str, new_name: &str) -> Result<(), ContainerError> {
        let new_name = names::validate(new_name)
            .map_err(ContainerError::InvalidArgument)?
            .to_string();
        let id = self.resolve(name)?;
        {
            let map = self.lock();
            if let Some(other) = map
                .values()
                .find(|e| e.rec.name == new_name && e.rec.id != id)
            {
                return Err(ContainerError::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.rec.id
                )));
            }
        }
        let old = self.record(&id)?.name;
        let rec = self.update(&id, |r| r.name = new_name)?;
        self.emit(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `docker container prune`: every stopped container.
    pub async fn prune(&self) -> Result<ContainerPruneResponse, ContainerError> {
        let stopped: Vec<String> = self
            .lock()
            .values()
            .filter(|e| !e.rec.running())
            .map(|e| e.rec.id.clone())
            .collect();
        let mut deleted = Vec::new();
        for id in stopped {
            if self.remove(&id, false, false).await.is_ok() {
                deleted.push(id);
            }
        }
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(0),
        })
    }

    pub fn list(
        &self,
        filters: &views::ListFilters,
    ) -> Vec<bollard_stubs::models::ContainerSummary> {
        let map = self.lock();
        let mut recs: Vec<&ContainerRecord> = map.values().map(|e| &e.rec).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut rows = views::list(&recs, filters);
        for row in &mut rows {
            let Some(rec) = row.id.as_ref().and_then(|id| map.get(id)).map(|e| &e.rec) else {
                continue;
            };
            row.ports = Some(net::summary_ports(rec, &self.network.ports.of(&rec.id)));
            row.network_settings = Some(bollard_stubs::models::ContainerSummaryNetworkSettings {
                networks: Some(rec.networks.clone().into_iter().collect()),
            });
        }
        rows
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

/// Whether (and after how long) a container that exited with `code` is restarted by
/// its policy. The delay doubles from 100 ms per restart, capped at 10 s, as dockerd's
/// backoff does.
fn restart_delay(rec: &ContainerRecord, code: i64) -> Option<Duration> {
    use bollard_stubs::models::RestartPolicyNameEnum as P;
    if rec.manually_stopped {
        return None;
    }
    let policy = rec.host_config.restart_policy.as_ref()?;
    let restart = match policy.name.as_ref()? {
        P::ALWAYS | P::UNLESS_STOPPED => true,
        P::ON_FAILURE => {
            let max = policy.maximum_retry_count.unwrap_or(0);
            code != 0 && (max <= 0 || rec.restart_count < max)
        }
        P::NO | P::EMPTY => false,
    };
    restart.then(|| {
        let shift = rec.restart_count.clamp(0, 7) as u32;
        Duration::from_millis((100u64 << shift).min(10_000))
    })
}

/// Berth caps every json-file log unless told otherwise (dockerd's default is
/// unbounded, which fills a VM's disk): 100 MiB in up to 3 files.
const DEFAULT_LOG_MAX_SIZE: u64 = 100 << 20;
const DEFAULT_LOG_MAX_FILES: u32 = 3;

/// `--log-opt max-size=…,max-file=…` → (bytes per file, files kept).
pub fn log_rotation(hc: &HostConfig) -> (u64, u32) {
    let opts = hc
        .log_config
        .as_ref()
        .and_then(|l| l.config.clone())
        .unwrap_or_default();
    let size = opts
        .get("max-size")
        .and_then(|s| crate::runtime::logfile::parse_size(s))
        .unwrap_or(DEFAULT_LOG_MAX_SIZE);
    let files = opts
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LOG_MAX_FILES);
    (size, files)
}

/// Connects to the shim's attach socket in `dir`.
pub async fn connect_attach(dir: &Path) -> std::io::Result<tokio::net::UnixStream> {
    let (_handle, path) =
        crate::runtime::attach_proto::short_path(dir, crate::runtime::attach_proto::SOCKET)?;
    tokio::net::UnixStream::connect(&path).await
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

fn apply_exit(r: &mut ContainerRecord, code: i64, error: &str, finished: &str) {
    r.state.status = Status::Exited;
    r.state.paused = false;
    r.state.pid = 0;
    r.state.shim_pid = 0;
    r.state.exit_code = code;
    r.state.error = error.to_string();
    r.state.finished_at = Some(finished.to_string());
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

fn process_alive(pid: i64) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, ContainerError> {
    use std::str::FromStr;
    let bad = || ContainerError::InvalidArgument(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| bad())
}

fn send_signal(pid: i64, sig: nix::sys::signal::Signal) -> Result<(), ContainerError> {
    if pid <= 0 {
        return Err(ContainerError::Conflict("container has no process".into()));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).map_err(|e| {
        ContainerError::Io {
            context: format!("sending {sig} to the container"),
            source: std::io::Error::from_raw_os_error(e as i32),
        }
    })
}

/// Mounts the rootfs and writes `config.json` for the shim (blocking work).
/// The network half of a bundle: `/etc` file mounts and the namespace to join.
struct BundleNet {
    mounts: Vec<spec::UserMount>,
    namespace: spec::NetworkNamespace,
}

fn prepare_bundle(
    dir: &Path,
    rec: &ContainerRecord,
    layers: &[PathBuf],
    init_binary: Option<PathBuf>,
    net: BundleNet,
    volumes: &VolumeService,
) -> Result<(), ContainerError> {
    let dirs = RootfsDirs::under(dir);
    let _ = unmount(&dirs);
    mount_overlay(layers, &dirs).map_err(io_err("mounting the container's root filesystem"))?;
    let (p, mut c) = runtime_configs(rec, &dirs.merged, None)?;
    // The /etc files first: a user's bind on the same path replaces them.
    c.mounts = net.mounts;
    c.mounts.extend(user_mounts(rec, &dirs.merged, volumes)?);
    c.network = net.namespace;
    if rec.host_config.init == Some(true) {
        c.init = Some(init_binary.ok_or_else(|| ContainerError::Start {
            message: "--init needs a static tini (apt-get install tini, or --init-path)".into(),
            exit_code: 126,
        })?);
    }
    if !c.rootfs.join(p.cwd.trim_start_matches('/')).exists() {
        let _ = std::fs::create_dir_all(c.rootfs.join(p.cwd.trim_start_matches('/')));
    }
    let spec = spec::build(&p, &c).map_err(|e| ContainerError::Start {
        message: e.to_string(),
        exit_code: 126,
    })?;
    spec.save(dir.join("config.json"))
        .map_err(|e| ContainerError::Io {
            context: "writing config.json".into(),
            source: std::io::Error::other(e.to_string()),
        })
}

/// Readies each of the container's mounts for the runtime: volumes are mounted (their
/// device, if any) and filled from the image on first use, missing `-v` bind sources
/// are created as dockerd does.
fn user_mounts(
    rec: &ContainerRecord,
    rootfs: &Path,
    volumes: &VolumeService,
) -> Result<Vec<spec::UserMount>, ContainerError> {
    let mut out = Vec::new();
    for m in &rec.mounts {
        let target = m.destination.clone();
        match m.kind {
            Kind::Volume => {
                let data = volumes.mount(&m.name, &rec.id, &m.destination, m.rw)?;
                if m.copy_data {
                    // Resolved inside the rootfs: an image symlink cannot point the copy
                    // at the host.
                    let src = archive::resolve(rootfs, &m.destination, true)?;
                    crate::volumes::copyup::copy_if_empty(&src, &data).map_err(io_err(format!(
                        "copying image content into volume {}",
                        m.name
                    )))?;
                }
                let source = if m.subpath.is_empty() {
                    data
                } else {
                    let p = archive::resolve(&data, &m.subpath, true)?;
                    if !p.exists() {
                        return Err(ContainerError::InvalidArgument(format!(
                            "cannot access path {}: no such file or directory",
                            p.display()
                        )));
                    }
                    p
                };
                out.push(spec::UserMount::Bind {
                    source,
                    target,
                    readonly: !m.rw,
                });
            }
            Kind::Bind => {
                let source = PathBuf::from(&m.source);
                if !source.exists() {
                    if !m.create_source {
                        return Err(ContainerError::InvalidArgument(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    std::fs::create_dir_all(&source).map_err(io_err(format!(
                        "error while creating mount source path '{}'",
                        m.source
                    )))?;
                }
                out.push(spec::UserMount::Bind {
                    source,
                    target,
                    readonly: !m.rw,
                });
            }
            Kind::Tmpfs => out.push(spec::UserMount::Tmpfs {
                target,
                options: m.tmpfs_options.clone(),
            }),
        }
    }
    Ok(out)
}

/// The process and container settings for the container's own process, or for an
/// `exec` in it (which overrides command, env, user, working dir and TTY).
fn runtime_configs(
    rec: &ContainerRecord,
    rootfs: &Path,
    exec: Option<&exec::ExecRequest>,
) -> Result<(spec::ProcessConfig, spec::ContainerConfig), ContainerError> {
    let user_spec = exec
        .and_then(|e| e.user.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| rec.config.user.clone())
        .unwrap_or_default();
    let user = config::resolve_user(&user_spec, rootfs).map_err(|e| ContainerError::Start {
        message: e.to_string(),
        exit_code: 126,
    })?;
    let mut env = rec.config.env.clone().unwrap_or_default();
    if let Some(e) = exec {
        env = config::merge_env(&env, &e.env);
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!(
            "HOSTNAME={}",
            rec.config.hostname.clone().unwrap_or_default()
        ));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = if user.home.is_empty() {
            "/"
        } else {
            &user.home
        };
        env.push(format!("HOME={home}"));
    }
    let hc = &rec.host_config;
    let caps = |v: &Option<Vec<String>>| -> Vec<oci_spec::runtime::Capability> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| spec::parse_capability(c))
            .collect()
    };
    let drop_all = hc
        .cap_drop
        .as_ref()
        .is_some_and(|d| d.iter().any(|c| c.eq_ignore_ascii_case("all")));
    let mut cap_drop = caps(&hc.cap_drop);
    if drop_all {
        cap_drop = spec::DEFAULT_CAPS.to_vec();
    }
    let cwd = exec
        .and_then(|e| e.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| rec.config.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    let p = spec::ProcessConfig {
        args: match exec {
            Some(e) => e.cmd.clone(),
            None => config::command(&rec.config),
        },
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        terminal: match exec {
            Some(e) => e.tty,
            None => rec.config.tty == Some(true),
        },
    };
    let c = spec::ContainerConfig {
        hostname: rec.config.hostname.clone().unwrap_or_default(),
        rootfs: rootfs.to_path_buf(),
        readonly_rootfs: hc.readonly_rootfs == Some(true),
        privileged: hc.privileged == Some(true) || exec.is_some_and(|e| e.privileged),
        cap_add: caps(&hc.cap_add),
        cap_drop,
        no_new_privileges: hc.security_opt.as_ref().is_some_and(|o| {
            o.iter()
                .any(|s| s.starts_with("no-new-privileges") && !s.ends_with("false"))
        }),
        cgroups_path: PathBuf::from(format!("/berth/{}", rec.id)),
        seccomp_unconfined: hc.security_opt.as_ref().is_some_and(|o| {
            o.iter()
                .any(|s| s == "seccomp=unconfined" || s == "seccomp:unconfined")
        }),
        resources: spec::Resources::from_host_config(hc),
        tmpfs: hc.tmpfs.clone().unwrap_or_default().into_iter().collect(),
        init: None,
        mounts: vec![],
        network: spec::NetworkNamespace::New,
    };
    Ok((p, c))
}

/// Re-executes this binary as the container's shim in its own session, and waits for
/// its first word on the sync pipe: `ok <pid>` or `err <code> <message>`.
async fn spawn_shim(
    id: &str,
    dir: &Path,
    open_stdin: bool,
    exec_dir: Option<&Path>,
    rotation: (u64, u32),
) -> Result<(crate::reaper::Child, i64), (i64, String)> {
    let (rd, wr): (OwnedFd, OwnedFd) =
        nix::unistd::pipe().map_err(|e| (255, format!("creating the sync pipe: {e}")))?;
    let wr_raw = wr.as_raw_fd();
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg("shim")
        .arg("--id")
        .arg(id)
        .arg("--bundle")
        .arg(dir)
        .arg("--state")
        .arg(dir.join("runtime"))
        .arg("--sync-fd")
        .arg("3")
        .args(open_stdin.then_some("--stdin"))
        .arg("--log-max-size")
        .arg(rotation.0.to_string())
        .arg("--log-max-files")
        .arg(rotation.1.to_string())
        .args(
            exec_dir
                .map(|d| ["--exec".as_ref(), d.as_os_str()])
                .into_iter()
                .flatten(),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wr_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child =
        crate::reaper::spawn(&mut cmd).map_err(|e| (255, format!("starting the shim: {e}")))?;
    drop(wr);
    let file = tokio::fs::File::from_std(std::fs::File::from(rd));
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(file);
    let _ = reader.read_line(&mut line).await;
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ok ") {
        let pid = pid.parse().unwrap_or(0);
        return Ok((child, pid));
    }
    let mut child = child;
    let _ = child.wait().await;
    match line.strip_prefix("err ") {
        Some(rest) => {
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            Err((code.parse().unwrap_or(255), msg.to_string()))
        }
        None => Err((255, "the shim exited before starting the container".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(
            parse_signal("TERM").unwrap(),
            nix::sys::signal::Signal::SIGTERM
        );
        assert_eq!(
            parse_signal("sigkill").unwrap(),
            nix::sys::signal::Signal::SIGKILL
        );
        assert_eq!(parse_signal("1").unwrap(), nix::sys::signal::Signal::SIGHUP);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn wait_conditions() {
        assert_eq!(
            WaitCondition::parse(None).unwrap(),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse(Some("removed")).unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse(Some("x")).is_err());
    }
}
