//! Volumes with the `local` driver: create, list, inspect, remove and prune; which
//! containers reference each volume (a referenced volume cannot be removed); and which
//! running containers have it mounted (a volume with `-o type=…,device=…` is mounted on
//! its `_data` while any container uses it). Each volume lives in
//! `<root>/volumes/<name>/` as dockerd lays it out: `_data` holds the content and
//! `volume.json` the metadata. Nothing here knows about HTTP or containers beyond
//! their IDs.

pub mod copyup;
pub mod hostpaths;
pub mod local;
pub mod mounts;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bollard_stubs::models::{
    EventMessageTypeEnum, Volume, VolumeCreateRequest, VolumePruneResponse, VolumeScopeEnum,
};
use serde::{Deserialize, Serialize};

use crate::fsutil::{atomic_write, remove_tree_via, reset_dir, sync_dir};

/// The label dockerd (23+) puts on volumes it creates for a container; `volume prune`
/// removes only these unless asked for `all`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

const DATA: &str = "_data";
const META: &str = "volume.json";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A driver other than `local`.
    #[error("{0}")]
    NoDriver(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let context = context.into();
    move |source| VolumeError::Io { context, source }
}

/// Docker's rule for local volume names, with its error text.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok_first || !ok_rest {
        return Err(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    if name.len() < 2 {
        return Err(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        ));
    }
    Ok(())
}

/// What `volume.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VolumeRecord {
    name: String,
    driver: String,
    created_at: String,
    #[serde(default)]
    labels: HashMap<String, String>,
    #[serde(default)]
    options: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    volumes: HashMap<String, VolumeRecord>,
    /// Containers (any state) whose config names the volume.
    refs: HashMap<String, BTreeSet<String>>,
    /// Running containers that have it mounted.
    users: HashMap<String, BTreeSet<String>>,
}

/// `volume ls` / `volume prune` filters, already split by the API layer.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub dangling: Option<bool>,
    pub names: Vec<String>,
    pub drivers: Vec<String>,
    pub labels: Vec<String>,
    pub not_labels: Vec<String>,
}

pub struct VolumeService {
    dir: PathBuf,
    trash: PathBuf,
    tmp: PathBuf,
    state: Mutex<State>,
    events: Arc<crate::events::Events>,
}

impl VolumeService {
    /// Loads every volume under `dir`; leftovers of an interrupted create or remove are
    /// cleared first (never through a mount).
    pub fn open(
        dir: PathBuf,
        events: Arc<crate::events::Events>,
    ) -> Result<VolumeService, VolumeError> {
        let trash = dir.join(".trash");
        let tmp = dir.join(".tmp");
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        for scratch in [&trash, &tmp] {
            for m in local::mounts_under(scratch) {
                let _ = local::unmount_device(&m);
            }
            if !local::mounts_under(scratch).is_empty() {
                return Err(VolumeError::Conflict(format!(
                    "{} still has mounts; not clearing it",
                    scratch.display()
                )));
            }
            reset_dir(scratch).map_err(io_err("clearing volume scratch space"))?;
        }
        let mut state = State::default();
        let rd = std::fs::read_dir(&dir).map_err(io_err("listing volumes"))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match std::fs::read(e.path().join(META))
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<VolumeRecord>(&b).map_err(|e| e.to_string()))
            {
                Ok(rec) if rec.name == name => {
                    state.volumes.insert(name, rec);
                }
                Ok(_) => {
                    tracing::warn!(volume = %name, "volume record names another volume; skipped")
                }
                Err(error) => {
                    tracing::warn!(volume = %name, %error, "unreadable volume record; skipped")
                }
            }
        }
        Ok(VolumeService {
            dir,
            trash,
            tmp,
            state: Mutex::new(state),
            events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the volume's content lives on the host.
    /// `docker system df`: each volume's bytes on disk and how many containers name it.
    pub fn usage(&self) -> Vec<(Volume, i64, i64)> {
        let vols = self.list(&Filters::default());
        let refs: HashMap<String, i64> = {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.refs
                .iter()
                .map(|(k, v)| (k.clone(), v.len() as i64))
                .collect()
        };
        vols.into_iter()
            .map(|v| {
                let size = crate::fsutil::tree_size(&self.data_dir(&v.name)) as i64;
                let n = refs.get(&v.name).copied().unwrap_or(0);
                (v, size, n)
            })
            .collect()
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    fn view(&self, rec: &VolumeRecord) -> Volume {
        Volume {
            name: rec.name.clone(),
            driver: rec.driver.clone(),
            mountpoint: self.data_dir(&rec.name).display().to_string(),
            created_at: Some(rec.created_at.clone()),
            labels: rec.labels.clone(),
            scope: Some(VolumeScopeEnum::LOCAL),
            options: rec.options.clone(),
            ..Default::default()
        }
    }

    fn emit(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut attrs = vec![("driver".to_string(), "local".to_string())];
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events
            .emit(EventMessageTypeEnum::VOLUME, action, name, attrs);
    }

    /// `docker volume create`: a new volume, or the existing one of that name.
    pub fn create(&self, req: VolumeCreateRequest) -> Result<Volume, VolumeError> {
        let mut st = self.lock();
        self.create_locked(&mut st, req)
    }

    fn create_locked(
        &self,
        st: &mut State,
        req: VolumeCreateRequest,
    ) -> Result<Volume, VolumeError> {
        let mut labels = req.labels.unwrap_or_default();
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(&n).map_err(VolumeError::InvalidArgument)?;
                n
            }
            // As dockerd: a volume created without a name is anonymous, which a
            // plain `docker volume prune` removes.
            None => {
                labels.insert(ANONYMOUS_LABEL.into(), String::new());
                hex::encode(rand::random::<[u8; 32]>())
            }
        };
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "local".into());
        if driver != "local" {
            return Err(VolumeError::NoDriver(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        if let Some(rec) = st.volumes.get(&name) {
            return Ok(self.view(rec));
        }
        let options = req.driver_opts.unwrap_or_default();
        local::validate(&options)
            .map_err(|e| VolumeError::InvalidArgument(format!("create {name}: {e}")))?;
        let rec = VolumeRecord {
            name: name.clone(),
            driver,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
        };
        // Built in scratch space and renamed into place: a crash leaves no half-made
        // volume under its name.
        let staging = self
            .tmp
            .join(format!("{name}-{:016x}", rand::random::<u64>()));
        let built = (|| {
            std::fs::create_dir_all(staging.join(DATA))?;
            let bytes = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
            atomic_write(&staging.join(META), &bytes)?;
            std::fs::rename(&staging, self.dir.join(&name))?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io_err(format!("creating volume {name}"))(e));
        }
        let view = self.view(&rec);
        st.volumes.insert(name.clone(), rec);
        self.emit("create", &name, &[]);
        Ok(view)
    }

    pub fn inspect(&self, name: &str) -> Result<Volume, VolumeError> {
        let st = self.lock();
        st.volumes
            .get(name)
            .map(|r| self.view(r))
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    pub fn list(&self, f: &Filters) -> Vec<Volume> {
        let st = self.lock();
        let mut out: Vec<Volume> = st
            .volumes
            .values()
            .filter(|r| matches(r, &st, f))
            .map(|r| self.view(r))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Names the volumes referenced by `container` and creates those that do not exist
    /// yet, all or nothing. Returns each volume's `_data`.
    pub fn acquire(
        &self,
        container: &str,
        wanted: &[(String, Option<VolumeCreateRequest>)],
    ) -> Result<Vec<PathBuf>, VolumeError> {
        let mut st = self.lock();
        let mut created = Vec::new();
        let mut out = Vec::new();
        for (name, create) in wanted {
            if !st.volumes.contains_key(name) {
                let req = create.clone().unwrap_or_else(|| VolumeCreateRequest {
                    name: Some(name.clone()),
                    ..Default::default()
                });
                match self.create_locked(&mut st, req) {
                    Ok(_) => created.push(name.clone()),
                    Err(e) => {
                        drop(st);
                        for n in created {
                            let _ = self.remove(&n, true);
                        }
                        return Err(e);
                    }
                }
            }
            out.push(self.data_dir(name));
        }
        for (name, _) in wanted {
            st.refs
                .entry(name.clone())
                .or_default()
                .insert(container.to_string());
        }
        Ok(out)
    }

    /// Records that `container` references `name` (on engine start).
    pub fn reference(&self, name: &str, container: &str) {
        let mut st = self.lock();
        if !st.volumes.contains_key(name) {
            tracing::warn!(
                volume = name,
                container,
                "container references a missing volume"
            );
        }
        st.refs
            .entry(name.to_string())
            .or_default()
            .insert(container.to_string());
    }

    /// Forgets every reference `container` held (it was removed).
    pub fn release(&self, container: &str) {
        let mut st = self.lock();
        for set in st.refs.values_mut() {
            set.remove(container);
        }
        st.refs.retain(|_, s| !s.is_empty());
    }

    /// Makes the volume ready for a starting container: mounts its device (tmpfs, bind,
    /// …) on `_data` when it is the first user. Returns `_data`.
    pub fn mount(
        &self,
        name: &str,
        container: &str,
        destination: &str,
        rw: bool,
    ) -> Result<PathBuf, VolumeError> {
        let mut st = self.lock();
        let rec = st
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let data = self.data_dir(name);
        let first = st.users.get(name).is_none_or(BTreeSet::is_empty);
        if first {
            if let Some(dev) = local::device_mount(&rec.options) {
                // Already mounted (a user that went away while the engine was down).
                if local::mounts_under(&data).is_empty() {
                    local::mount_device(&dev, &data)
                        .map_err(io_err(format!("mounting volume {name}")))?;
                }
            }
        }
        st.users
            .entry(name.to_string())
            .or_default()
            .insert(container.to_string());
        drop(st);
        self.emit(
            "mount",
            name,
            &[
                ("container", container.to_string()),
                ("destination", destination.to_string()),
                ("read/write", rw.to_string()),
                ("propagation", String::new()),
            ],
        );
        Ok(data)
    }

    /// A running container that survived an engine restart still uses these volumes.
    pub fn adopt_mount(&self, name: &str, container: &str) {
        self.lock()
            .users
            .entry(name.to_string())
            .or_default()
            .insert(container.to_string());
    }

    /// `container` stopped: it no longer uses any volume; devices without users are
    /// unmounted.
    pub fn unmount_container(&self, container: &str) {
        let mut st = self.lock();
        let mut released = Vec::new();
        for (name, set) in st.users.iter_mut() {
            if set.remove(container) {
                released.push((name.clone(), set.is_empty()));
            }
        }
        st.users.retain(|_, s| !s.is_empty());
        for (name, last) in &released {
            if *last {
                self.unmount_device(&st, name);
            }
        }
        drop(st);
        for (name, _) in released {
            self.emit("unmount", &name, &[("container", container.to_string())]);
        }
    }

    fn unmount_device(&self, st: &State, name: &str) {
        let has_device = st
            .volumes
            .get(name)
            .is_some_and(|r| local::device_mount(&r.options).is_some());
        if has_device {
            let data = self.data_dir(name);
            for m in local::mounts_under(&data) {
                if let Err(e) = local::unmount_device(&m) {
                    tracing::warn!(volume = name, error = %e, "unmounting volume");
                }
            }
        }
    }

    /// After an engine restart: devices no running container uses are unmounted.
    pub fn sweep(&self) {
        let st = self.lock();
        for name in st.volumes.keys() {
            if st.users.get(name).is_none_or(BTreeSet::is_empty) {
                self.unmount_device(&st, name);
            }
        }
    }

    /// `docker volume rm [-f]`: refused while any container references the volume.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let mut st = self.lock();
        self.remove_locked(&mut st, name, force)
    }

    fn remove_locked(&self, st: &mut State, name: &str, force: bool) -> Result<(), VolumeError> {
        if !st.volumes.contains_key(name) {
            return if force {
                Ok(())
            } else {
                Err(VolumeError::NotFound(name.to_string()))
            };
        }
        if let Some(users) = st.refs.get(name).filter(|s| !s.is_empty()) {
            let ids: Vec<&str> = users.iter().map(String::as_str).collect();
            return Err(VolumeError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        let vdir = self.dir.join(name);
        // Never delete through a mount: a bind-device volume's `_data` is someone's
        // host directory.
        for m in local::mounts_under(&vdir) {
            let _ = local::unmount_device(&m);
        }
        if !local::mounts_under(&vdir).is_empty() {
            return Err(VolumeError::Conflict(format!(
                "remove {name}: volume is still mounted"
            )));
        }
        remove_tree_via(&vdir, &self.trash).map_err(io_err(format!("removing volume {name}")))?;
        st.volumes.remove(name);
        st.users.remove(name);
        self.emit("destroy", name, &[]);
        Ok(())
    }

    /// `docker volume prune`: unreferenced volumes matching the filters; anonymous
    /// ones only unless `all` (API 1.42+ semantics; older clients pass `all`).
    pub fn prune(&self, f: &Filters, all: bool) -> VolumePruneResponse {
        let mut st = self.lock();
        let doomed: Vec<String> = st
            .volumes
            .values()
            .filter(|r| st.refs.get(&r.name).is_none_or(BTreeSet::is_empty))
            .filter(|r| all || r.labels.contains_key(ANONYMOUS_LABEL))
            .filter(|r| matches(r, &st, f))
            .map(|r| r.name.clone())
            .collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for name in doomed {
            let size = crate::fsutil::tree_size(&self.data_dir(&name));
            match self.remove_locked(&mut st, &name, false) {
                Ok(()) => {
                    reclaimed += size;
                    deleted.push(name);
                }
                Err(e) => tracing::warn!(volume = %name, error = %e, "prune: not removed"),
            }
        }
        VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        }
    }
}

fn label_matches(labels: &HashMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

fn matches(r: &VolumeRecord, st: &State, f: &Filters) -> bool {
    if let Some(d) = f.dangling {
        let referenced = st.refs.get(&r.name).is_some_and(|s| !s.is_empty());
        if d == referenced {
            return false;
        }
    }
    (f.names.is_empty() || f.names.iter().any(|n| r.name.contains(n.as_str())))
        && (f.drivers.is_empty() || f.drivers.contains(&r.driver))
        && f.labels.iter().all(|l| label_matches(&r.labels, l))
        && !f.not_labels.iter().any(|l| label_matches(&r.labels, l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn service(d: &Path) -> VolumeService {
        VolumeService::open(
            d.join("volumes"),
            Arc::new(crate::events::Events::default()),
        )
        .unwrap()
    }

    fn named(n: &str) -> VolumeCreateRequest {
        VolumeCreateRequest {
            name: Some(n.into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_like_docker() {
        assert!(validate_name("ab").is_ok());
        assert!(validate_name("a_b.c-d9").is_ok());
        assert!(validate_name("a").unwrap_err().contains("too short"));
        assert!(validate_name("-ab")
            .unwrap_err()
            .contains("invalid characters"));
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("..").is_err());
    }

    #[test]
    fn create_persist_reference_remove() {
        let d = tempfile::tempdir().unwrap();
        let svc = service(d.path());
        let mut req = named("data");
        req.labels = Some([("k".to_string(), "v".to_string())].into());
        let v = svc.create(req).unwrap();
        assert!(v.mountpoint.ends_with("/volumes/data/_data"));
        assert_eq!(v.scope, Some(VolumeScopeEnum::LOCAL));
        std::fs::write(svc.data_dir("data").join("f"), b"x").unwrap();
        // Idempotent create.
        svc.create(named("data")).unwrap();
        // A reopened service sees the same volume with its labels.
        let svc = service(d.path());
        assert_eq!(svc.inspect("data").unwrap().labels["k"], "v");
        svc.acquire("c1", &[("data".into(), None)]).unwrap();
        let err = svc.remove("data", false).unwrap_err().to_string();
        assert_eq!(err, "remove data: volume is in use - [c1]");
        let dangling = Filters {
            dangling: Some(true),
            ..Default::default()
        };
        assert!(svc.list(&dangling).is_empty());
        svc.release("c1");
        assert_eq!(svc.list(&dangling).len(), 1);
        svc.remove("data", false).unwrap();
        assert!(matches!(svc.inspect("data"), Err(VolumeError::NotFound(_))));
        assert!(svc.remove("data", true).is_ok());
        assert_eq!(
            std::fs::read_dir(d.path().join("volumes/.trash"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn prune_takes_anonymous_unless_all() {
        let d = tempfile::tempdir().unwrap();
        let svc = service(d.path());
        svc.create(named("keep")).unwrap();
        let mut anon = named("anon1");
        anon.labels = Some([(ANONYMOUS_LABEL.to_string(), String::new())].into());
        svc.create(anon).unwrap();
        let mut used = named("used");
        used.labels = Some([(ANONYMOUS_LABEL.to_string(), String::new())].into());
        svc.create(used).unwrap();
        svc.reference("used", "c1");
        let r = svc.prune(&Filters::default(), false);
        assert_eq!(r.volumes_deleted.unwrap(), ["anon1"]);
        let r = svc.prune(&Filters::default(), true);
        assert_eq!(r.volumes_deleted.unwrap(), ["keep"]);
    }

    #[test]
    fn bad_driver_and_options() {
        let d = tempfile::tempdir().unwrap();
        let svc = service(d.path());
        let mut r = named("x1");
        r.driver_opts = Some([("foo".to_string(), "bar".to_string())].into());
        assert_eq!(
            svc.create(r).unwrap_err().to_string(),
            "create x1: invalid option: \"foo\""
        );
        let mut r = named("x2");
        r.driver = Some("nfs".into());
        assert!(matches!(svc.create(r), Err(VolumeError::NoDriver(_))));
        assert!(matches!(
            svc.create(named("a!")),
            Err(VolumeError::InvalidArgument(_))
        ));
    }
}
