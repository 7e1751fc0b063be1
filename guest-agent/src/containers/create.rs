//! Creating containers: the merged config, the name, the network requests and the
//! mounts (volumes created and referenced as dockerd does), persisted as a record;
//! and renaming one.

use std::collections::HashMap;

use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use tokio::sync::watch;

use super::{
    config, io_err, names, net, record, resolve_in, views, ContainerError, ContainerRecord,
    ContainerService, Entry, Life,
};
use crate::clock::now;
use crate::images::ImageService;
use crate::volumes::mounts::{ContainerMount, Kind};

/// The log drivers a dockerd build registers: any other name is refused at create,
/// as dockerd does. Berth keeps every container's log in its own json-file store
/// whichever of these is named (`docker logs` keeps working, as with Docker Desktop's
/// dual logging); shipping to syslog, journald or a remote service is not done.
const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "local",
    "none",
    "journald",
    "syslog",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "gcplogs",
    "logentries",
    "etwlogs",
];

/// `--ulimit`s as dockerd checks them: a known name, soft ≤ hard.
fn check_ulimits(hc: &HostConfig) -> Result<(), ContainerError> {
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.as_deref().unwrap_or_default();
        if crate::runtime::spec::rlimit_name(name).is_none() {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid ulimit type: {name}"
            )));
        }
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        if soft < 0 || hard < 0 || soft > hard {
            return Err(ContainerError::InvalidArgument(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
    }
    Ok(())
}

impl ContainerService {
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
        check_ulimits(&host_config)?;
        super::resources::check(&(&host_config).into(), super::resources::ncpu(), false)
            .map_err(ContainerError::InvalidArgument)?;
        let mode = host_config.network_mode.clone().unwrap_or_default();
        let networks = net::requested(&body, &mode, &self.network)?;
        let macs = net::requested_macs(&networks)?;
        host_config.cgroupns_mode = Some(super::bundle::cgroupns_mode(&host_config));
        // dockerd fills the log driver and runtime in; clients (docker-py's run) read
        // them back.
        let log = host_config.log_config.get_or_insert_with(Default::default);
        match log.typ.as_deref() {
            None | Some("") => log.typ = Some("json-file".into()),
            Some(d) if !LOG_DRIVERS.contains(&d) => {
                return Err(ContainerError::InvalidArgument(format!(
                    "logger: no log driver named '{d}' is registered"
                )))
            }
            Some(_) => {}
        }
        match host_config.runtime.as_deref() {
            None | Some("") => host_config.runtime = Some("runc".into()),
            Some("runc") => {}
            Some(r) => {
                return Err(ContainerError::InvalidArgument(format!(
                    "unknown or invalid runtime name: {r}"
                )))
            }
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
            state: record::RunState::created(),
            restart_count: 0,
            layers,
            manually_stopped: false,
            networks,
            macs,
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
    pub(super) fn plan_mounts(
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

    pub fn rename(&self, name: &str, new_name: &str) -> Result<(), ContainerError> {
        let new_name = names::validate(new_name)
            .map_err(ContainerError::InvalidArgument)?
            .to_string();
        let id = self.resolve(name)?;
        if self.record(&id)?.name == new_name {
            return Err(ContainerError::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
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
}
