//! Acting on a running container's processes: pause/unpause, `docker update`'s live
//! limits, stats, top, and the terminal size through its shim's attach socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{io_err, stats, top, ContainerError, ContainerService};
use crate::runtime::spec;

impl ContainerService {
    /// `docker pause` / `docker unpause`: freezes or thaws every process (the freezer
    /// cgroup, through the runtime).
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
        let runtime = self.runtime.clone();
        let id = rec.id.clone();
        tokio::task::spawn_blocking(move || runtime.set_paused(&id, &state, pause))
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
        // A frozen container is not probed (its probe could not run anyway).
        if pause {
            self.health_halt(&rec.id);
        } else {
            self.health_resume(&rec.id);
        }
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
        let read_at = crate::clock::now;
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
            blkio_stats: Some(if running {
                cg.blkio()
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

    /// `docker update`: new limits (applied to the running cgroup through the runtime)
    /// and restart policy; persisted for the next start either way.
    pub async fn update_limits(
        &self,
        name: &str,
        body: bollard_stubs::models::ContainerUpdateBody,
    ) -> Result<(), ContainerError> {
        let rec = self.record(name)?;
        super::resources::check(&(&body).into(), super::resources::ncpu(), true)
            .map_err(ContainerError::InvalidArgument)?;
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
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.update(&id, &res))
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

    /// `docker top [ps OPTIONS]`: the host's `ps` with `ps_args` (dockerd's `-ef` by
    /// default), kept to the container's processes.
    pub async fn top(
        &self,
        name: &str,
        ps_args: Option<&str>,
    ) -> Result<bollard_stubs::models::ContainerTopResponse, ContainerError> {
        let args = ps_args
            .filter(|a| !a.is_empty())
            .unwrap_or(top::DEFAULT_ARGS)
            .to_string();
        top::check_args(&args).map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
        let rec = self.record(name)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if rec.state.restarting {
            return Err(ContainerError::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                rec.id
            )));
        }
        let pids = stats::CgroupFiles::new(format!("berth/{}", rec.id)).procs();
        let table = tokio::task::spawn_blocking(move || {
            top::ps(&args, &pids).unwrap_or_else(|| Ok(top::from_proc(&pids)))
        })
        .await
        .map_err(|e| ContainerError::Io {
            context: "ps".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let table = table.map_err(|e| match e {
            top::TopError::Ps(m) => ContainerError::Io {
                context: "ps".into(),
                source: std::io::Error::other(m),
            },
            e => ContainerError::Io {
                context: "parsing ps output".into(),
                source: std::io::Error::other(e.to_string()),
            },
        })?;
        self.emit(&rec, "top", &[]);
        Ok(table)
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
}

/// Connects to the shim's attach socket in `dir`.
pub async fn connect_attach(dir: &Path) -> std::io::Result<tokio::net::UnixStream> {
    let (_handle, path) =
        crate::runtime::attach_proto::short_path(dir, crate::runtime::attach_proto::SOCKET)?;
    tokio::net::UnixStream::connect(&path).await
}
