//! Removing containers: `docker rm [-f] [-v]` and `docker container prune`.

use std::time::Duration;

use bollard_stubs::models::ContainerPruneResponse;

use super::{io_err, ContainerError, ContainerRecord, ContainerService};
use crate::fsutil::remove_tree_via;
use crate::runtime::rootfs::RootfsDirs;

impl ContainerService {
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
        if rec.state.restarting && !force {
            return Err(ContainerError::Conflict(format!(
                "cannot remove container \"/{}\": container is restarting: stop the container before removing or force remove",
                rec.name
            )));
        }
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
            let _ = self.send_signal(rec.state.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                rx.wait_for(|l| l.exits > exits || l.removed),
            )
            .await;
        }
        self.health_halt(&id);
        let removed = self.lock().remove(&id);
        let Some(entry) = removed else {
            return Ok(()); // removed concurrently (e.g. --rm)
        };
        let dir = self.container_dir(&id);
        let _ = self.runtime.unmount_rootfs(&RootfsDirs::under(&dir));
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

    /// `docker container prune`: every stopped container that `prunable` lets go
    /// (the request's filters).
    pub async fn prune(
        &self,
        prunable: impl Fn(&ContainerRecord) -> bool,
    ) -> Result<ContainerPruneResponse, ContainerError> {
        let stopped: Vec<String> = self
            .lock()
            .values()
            .filter(|e| !e.rec.running() && prunable(&e.rec))
            .map(|e| e.rec.id.clone())
            .collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for id in stopped {
            // What the container's own layer held (dockerd's SpaceReclaimed).
            let upper = RootfsDirs::under(&self.container_dir(&id)).upper;
            let size = tokio::task::spawn_blocking(move || crate::fsutil::tree_size(&upper))
                .await
                .unwrap_or(0);
            if self.remove(&id, false, false).await.is_ok() {
                deleted.push(id);
                reclaimed += size;
            }
        }
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }
}
