//! `docker exec`: extra processes in a running container. Each runs under its own shim
//! (`shim --exec DIR`, libcontainer's tenant builder) with its log, exit record and
//! attach socket in `<container>/exec/<exec-id>/`. Exec instances live in memory only,
//! as in dockerd.

use std::path::PathBuf;
use std::sync::Arc;

use bollard_stubs::models::{ExecInspectResponse, ProcessConfig as ApiProcessConfig};
use tokio::sync::watch;

use super::bundle::runtime_configs;
pub use super::bundle::ExecRequest;
use super::{io_err, start_error_message_for, ContainerError, ContainerService, Life};
use crate::runtime::rootfs::RootfsDirs;
use crate::runtime::{spec, StartRequest};

pub struct ExecEntry {
    container_id: String,
    req: ExecRequest,
    dir: PathBuf,
    life: watch::Sender<Life>,
    pid: i64,
    started: bool,
}

/// Where an exec's output is and how to follow it.
pub struct ExecOutput {
    pub log: PathBuf,
    pub dir: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Option<String>,
    pub life: watch::Receiver<Life>,
}

impl ContainerService {
    fn exec_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, ExecEntry>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn exec_create(&self, container: &str, req: ExecRequest) -> Result<String, ContainerError> {
        let rec = self.record(container)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "container {} is not running",
                rec.id
            )));
        }
        if rec.state.paused {
            return Err(paused(container));
        }
        if req.cmd.is_empty() {
            return Err(ContainerError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        let dir = self.container_dir(&rec.id).join("exec").join(&id);
        // dockerd's exec events: `exec_create: CMD`, `exec_start: CMD`, `exec_die`.
        let cmdline = req.cmd.join(" ");
        self.emit(
            &rec,
            &format!("exec_create: {cmdline}"),
            &[("execID", id.clone())],
        );
        self.exec_lock().insert(
            id.clone(),
            ExecEntry {
                container_id: rec.id,
                req,
                dir,
                life: watch::Sender::new(Life::default()),
                pid: 0,
                started: false,
            },
        );
        Ok(id)
    }

    fn exec_entry<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ExecEntry) -> T,
    ) -> Result<T, ContainerError> {
        let mut map = self.exec_lock();
        let e = map
            .get_mut(id)
            .ok_or_else(|| ContainerError::ExecNotFound(id.to_string()))?;
        Ok(f(e))
    }

    /// Starts the exec's process and returns once it runs.
    pub async fn exec_start(self: &Arc<Self>, id: &str) -> Result<(), ContainerError> {
        self.exec_claim(id)?;
        self.exec_start_claimed(id).await
    }

    /// Marks the exec as started, so that no other start can run it: what an attached
    /// start does before it answers, ahead of starting the process.
    pub fn exec_claim(&self, id: &str) -> Result<(), ContainerError> {
        let claimed = self.exec_entry(id, |e| !std::mem::replace(&mut e.started, true))?;
        if !claimed {
            return Err(ContainerError::Conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        Ok(())
    }

    /// Starts the process of an exec [`ContainerService::exec_claim`] claimed.
    pub async fn exec_start_claimed(self: &Arc<Self>, id: &str) -> Result<(), ContainerError> {
        let (container_id, req, dir) = self.exec_entry(id, |e| {
            (e.container_id.clone(), e.req.clone(), e.dir.clone())
        })?;
        let rec = self.record(&container_id)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "container {container_id} is not running"
            )));
        }
        if rec.state.paused {
            return Err(paused(&container_id));
        }
        let cdir = self.container_dir(&container_id);
        let merged = RootfsDirs::under(&cdir).merged;
        let prepared = runtime_configs(&rec, &merged, Some(&req)).and_then(|(p, c)| {
            spec::process(&p, &c).map_err(|e| ContainerError::Start {
                message: e.to_string(),
                exit_code: 126,
            })
        });
        let process = match prepared {
            Ok(p) => p,
            // An exec that cannot start (an unknown user) still ends, with
            // dockerd's 126, so `docker exec` exits with it.
            Err(e) => {
                let code = match &e {
                    ContainerError::Start { exit_code, .. } => *exit_code,
                    _ => 126,
                };
                self.exec_failed(id, code, e.to_string())?;
                return Err(e);
            }
        };
        std::fs::create_dir_all(&dir).map_err(io_err("creating the exec directory"))?;
        let json = serde_json::to_vec(&process)
            .map_err(std::io::Error::other)
            .map_err(io_err("encoding process.json"))?;
        std::fs::write(dir.join("process.json"), json).map_err(io_err("writing process.json"))?;
        // An exec's own output is not rotated: it lives as long as the exec.
        let started = self
            .runtime
            .start(StartRequest {
                id: &container_id,
                bundle: &cdir,
                open_stdin: req.attach_stdin,
                exec_dir: Some(&dir),
                log_rotation: (u64::MAX, 1),
            })
            .await;
        match started {
            Ok(started) => {
                self.exec_entry(id, |e| {
                    e.pid = started.pid;
                    e.life.send_modify(|l| l.running = true);
                })?;
                let cmdline = req.cmd.join(" ");
                self.emit(
                    &rec,
                    &format!("exec_start: {cmdline}"),
                    &[("execID", id.to_string())],
                );
                let svc = self.clone();
                let id = id.to_string();
                let exited = started.exited;
                tokio::spawn(async move {
                    exited.await;
                    let (code, error) = match svc.runtime.exit_record(&dir) {
                        Some(x) => (x.exit_code as i64, x.error),
                        None => (255, "the exec's shim exited without a status".into()),
                    };
                    svc.emit(
                        &rec,
                        "exec_die",
                        &[("execID", id.clone()), ("exitCode", code.to_string())],
                    );
                    let _ = svc.exec_entry(&id, |e| {
                        e.pid = 0;
                        e.life.send_modify(|l| {
                            l.running = false;
                            l.exits += 1;
                            l.exit_code = code;
                            l.error = error.clone();
                        });
                    });
                });
                Ok(())
            }
            Err(failure) => {
                let (code, message) = (failure.code, failure.detail);
                self.exec_failed(id, code, message.clone())?;
                Err(ContainerError::Start {
                    message: start_error_message_for(
                        req.cmd.first().map(String::as_str).unwrap_or(""),
                        code,
                        &message,
                    ),
                    exit_code: code,
                })
            }
        }
    }

    /// Ends an exec that never ran, with the code `docker exec` exits with.
    fn exec_failed(&self, id: &str, code: i64, error: String) -> Result<(), ContainerError> {
        self.exec_entry(id, |e| {
            e.life.send_modify(|l| {
                l.exits += 1;
                l.exit_code = code;
                l.error = error;
            })
        })
    }

    /// The pid of an exec's process (0 once it has exited or before it runs).
    pub(super) fn exec_pid(&self, id: &str) -> i64 {
        self.exec_entry(id, |e| e.pid).unwrap_or(0)
    }

    /// Drops an exec that has run its course, with its directory (healthcheck
    /// probes, which dockerd does not list).
    pub(super) fn exec_forget(&self, id: &str) {
        if let Some(e) = self.exec_lock().remove(id) {
            if let Err(err) = std::fs::remove_dir_all(&e.dir) {
                if err.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(exec = id, error = %err, "removing an exec's directory");
                }
            }
        }
    }

    pub fn exec_output(&self, id: &str) -> Result<ExecOutput, ContainerError> {
        self.exec_entry(id, |e| ExecOutput {
            log: e.dir.join(crate::runtime::shim::LOG_FILE),
            dir: e.dir.clone(),
            tty: e.req.tty,
            stdin: e.req.attach_stdin,
            detach_keys: e.req.detach_keys.clone(),
            life: e.life.subscribe(),
        })
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, ContainerError> {
        self.exec_entry(id, |e| {
            let l = e.life.borrow();
            ExecInspectResponse {
                can_remove: Some(false),
                container_id: Some(e.container_id.clone()),
                detach_keys: Some(e.req.detach_keys.clone().unwrap_or_default()),
                exit_code: (!l.running && l.exits > 0).then_some(l.exit_code),
                id: Some(id.to_string()),
                open_stderr: Some(e.req.attach_stderr),
                open_stdin: Some(e.req.attach_stdin),
                open_stdout: Some(e.req.attach_stdout),
                process_config: Some(ApiProcessConfig {
                    privileged: Some(e.req.privileged),
                    user: e.req.user.clone(),
                    tty: Some(e.req.tty),
                    entrypoint: e.req.cmd.first().cloned(),
                    arguments: Some(e.req.cmd.iter().skip(1).cloned().collect()),
                }),
                running: Some(l.running),
                pid: Some(e.pid),
            }
        })
    }

    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<(), ContainerError> {
        let dir = self.exec_entry(id, |e| e.dir.clone())?;
        // A client resizes right after `start`, which can be before the exec's
        // shim listens: give it a moment rather than fail the first resize.
        let mut tries = 0;
        let mut sock = loop {
            match super::connect_attach(&dir).await {
                Ok(s) => break s,
                Err(e)
                    if tries < 40
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                        ) =>
                {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(io_err("connecting to the exec's shim")(e)),
            }
        };
        use tokio::io::AsyncWriteExt;
        sock.write_all(&crate::runtime::attach_proto::encode(
            &crate::runtime::attach_proto::Frame::Resize { rows, cols },
        ))
        .await
        .map_err(io_err("resizing the terminal"))
    }
}

/// dockerd's refusal to exec in a paused container (409).
fn paused(name: &str) -> ContainerError {
    ContainerError::Conflict(format!(
        "Container {name} is paused, unpause the container before exec"
    ))
}
