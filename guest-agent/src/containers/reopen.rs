//! Opening the container store when the engine starts: records loaded, containers
//! whose process ended meanwhile marked exited, live ones adopted and watched again,
//! their networks, DNS and ports restored, and `always`/`unless-stopped` ones revived.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::lifecycle::apply_exit;
use super::{io_err, ContainerError, ContainerRecord, ContainerService, Entry, Life};
use crate::clock::now;
use crate::runtime::rootfs::RootfsDirs;
use crate::runtime::ContainerRuntime;
use crate::volumes::mounts::Kind;
use crate::volumes::VolumeService;

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
        runtime: Arc<dyn ContainerRuntime>,
    ) -> Result<Arc<ContainerService>, ContainerError> {
        let trash = dir.join(".trash");
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        crate::fsutil::reset_dir(&trash).map_err(io_err("cleaning container trash"))?;
        let (restarts, restart_rx) = tokio::sync::mpsc::unbounded_channel();
        let svc = Arc::new_cyclic(|me| ContainerService {
            me: me.clone(),
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
            runtime,
            restored: watch::Sender::new(false),
            health: Default::default(),
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
                if let Some(exit) = svc.runtime.exit_record(&path) {
                    apply_exit(
                        &mut rec,
                        exit.exit_code as i64,
                        &exit.error,
                        &exit.finished_at,
                    );
                    let _ = svc.runtime.unmount_rootfs(&RootfsDirs::under(&path));
                    let _ = rec.save(&path);
                } else if rec.state.shim_pid > 0 && svc.runtime.alive(rec.state.shim_pid) {
                    adopt.push(rec.id.clone());
                } else {
                    apply_exit(&mut rec, 255, "the container's shim disappeared", &now());
                    let _ = svc.runtime.unmount_rootfs(&RootfsDirs::under(&path));
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
                s.restored.send_replace(true);
            });
        }
        // Devices of volumes whose users died with the old engine.
        svc.volumes.sweep();
        for id in adopt {
            // Health as the record kept it; probing goes on where it stopped.
            svc.health_resume(&id);
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
}
