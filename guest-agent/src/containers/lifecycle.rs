//! A container's life after create: start (through the runtime, with one rollback for
//! a start that fails at any step), the exit the runtime reports, restart policies
//! and their backoff, adoption of containers that outlived an engine restart, kill,
//! stop and wait.

use std::sync::Arc;
use std::time::Duration;

use super::bundle::{log_rotation, prepare_bundle};
use super::net;
use super::{
    io_err, start_error_message, ContainerError, ContainerRecord, ContainerService, Life, Status,
    WaitCondition,
};
use crate::clock::now;
use crate::runtime::rootfs::RootfsDirs;
use crate::runtime::StartRequest;

impl ContainerService {
    /// Starts the container through the runtime and returns once its process runs.
    /// Whatever a failed start set up is undone by one rollback, whichever step failed.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
        let _ = self.restored.subscribe().wait_for(|done| *done).await;
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
        let _ = std::fs::remove_file(dir.join(crate::runtime::shim::EXIT_FILE));
        let mut undo = StartRollback::new(&rec);

        let t0 = std::time::Instant::now();
        undo.reached(StartStep::Network);
        let (rec, setup) = match self.wire_network(&rec).await {
            Ok(x) => x,
            Err(e) => return Err(self.roll_back_start(undo, e).await),
        };

        let wired = t0.elapsed();
        undo.reached(StartStep::Bundle);
        let prepared = {
            let dir = dir.clone();
            let rec = rec.clone();
            let init = self.init_binary.clone();
            let volumes = self.volumes.clone();
            let runtime = self.runtime.clone();
            tokio::task::spawn_blocking(move || {
                prepare_bundle(&*runtime, &dir, &rec, &layers, init, setup, &volumes)
            })
            .await
            .unwrap_or_else(|e| {
                Err(ContainerError::Io {
                    context: "preparing the container".into(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
        };
        if let Err(e) = prepared {
            return Err(self.roll_back_start(undo, e).await);
        }
        let bundled = t0.elapsed();

        let started = self
            .runtime
            .start(StartRequest {
                id: &id,
                bundle: &dir,
                open_stdin: rec.config.open_stdin == Some(true),
                exec_dir: None,
                log_rotation: log_rotation(&rec.host_config),
            })
            .await;
        let ms = crate::clock::ms;
        tracing::debug!(
            wired = ms(wired),
            bundled = ms(bundled),
            started = ms(t0.elapsed()),
            "container start phases"
        );
        let started = match started {
            Ok(s) => s,
            Err(failure) => {
                // As dockerd: the status stays what it was (a never-started container
                // stays `created`); the exit code and the API's message are recorded.
                let code = failure.code;
                let message = start_error_message(&rec, code, &failure.detail);
                if let Err(e) = self.update(&id, |r| {
                    r.state.exit_code = code;
                    r.state.error = message.clone();
                }) {
                    tracing::warn!(container = %id, error = %e, "recording a failed start");
                }
                self.notify(&id, |l| {
                    l.exit_code = code;
                    l.error = message.clone();
                });
                let e = ContainerError::Start {
                    message,
                    exit_code: code,
                };
                return Err(self.roll_back_start(undo, e).await);
            }
        };
        self.update(&id, |r| {
            r.state.status = Status::Running;
            r.state.pid = started.pid;
            r.state.shim_pid = started.shim_pid;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.restarting = false;
            r.state.started_at = Some(now());
            r.state.finished_at = None;
        })?;
        self.notify(&id, |l| l.running = true);
        if let Ok(r) = self.record(&id) {
            self.emit(&r, "start", &[]);
        }
        self.health_started(&id);
        let svc = self.clone();
        let exited = started.exited;
        tokio::spawn(async move {
            exited.await;
            svc.on_exit(&id).await;
        });
        Ok(())
    }

    /// Undoes what a failed start had set up, newest first, past any failure, then
    /// removes a `--rm` container; returns the error that stopped the start.
    async fn roll_back_start(
        self: &Arc<Self>,
        undo: StartRollback,
        error: ContainerError,
    ) -> ContainerError {
        let id = undo.rec.id.as_str();
        for step in undo.steps.iter().rev() {
            match step {
                StartStep::Bundle => {
                    let dirs = RootfsDirs::under(&self.container_dir(id));
                    if let Err(e) = self.runtime.unmount_rootfs(&dirs) {
                        tracing::warn!(container = id, error = %e, "unmounting after a failed start");
                    }
                    self.volumes.unmount_container(id);
                }
                StartStep::Network => {
                    self.network.detach(id).await;
                    let _ = self.update(id, net::clear_wiring);
                }
            }
        }
        self.remove_if_auto(&undo.rec, id).await;
        error
    }

    /// dockerd removes a `--rm` container whose start failed, at whichever step: the
    /// CLI waits for that removal before it exits.
    pub(super) async fn remove_if_auto(self: &Arc<Self>, rec: &ContainerRecord, id: &str) {
        if rec.host_config.auto_remove == Some(true) {
            if let Err(e) = self.remove(id, true, true).await {
                tracing::warn!(container = id, error = %e, "auto-remove after a failed start");
            }
        }
    }

    /// Records the exit the shim left, releases the rootfs, wakes waiters, and removes
    /// the container when it was created with `--rm`.
    pub(super) async fn on_exit(self: &Arc<Self>, id: &str) {
        self.health_halt(id);
        let dir = self.container_dir(id);
        let exit = self.runtime.exit_record(&dir);
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
        let _ = self.runtime.unmount_rootfs(&RootfsDirs::under(&dir));
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
            r.state.restarting =
                r.host_config.auto_remove != Some(true) && restart_delay(r, code).is_some();
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

    /// The shim died without recording an exit (killed or crashed), so nothing holds
    /// the container's stdio or writes its log any more: kill what it left running, as
    /// containerd does with a dead shim's task. Its init is in its own PID namespace, so
    /// killing it ends every process in the container; the reaper reaps it.
    pub(super) async fn kill_orphaned(&self, id: &str) {
        let Ok(rec) = self.record(id) else { return };
        let pid = rec.state.pid;
        // Only a process still in this container's cgroup: the pid may have been reused.
        if pid <= 0 || !self.runtime.owns(&rec.id, pid) {
            return;
        }
        tracing::warn!(
            container = id,
            pid,
            "the shim died; killing the container it left running"
        );
        let _ = self.send_signal(pid, nix::sys::signal::Signal::SIGKILL);
        for _ in 0..100 {
            if !self.runtime.alive(pid) {
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
    pub(super) async fn restarter(
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
                    let _ = svc.update(&id, |r| r.state.restarting = false);
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
    pub(super) async fn watch_adopted(self: Arc<Self>, id: String) {
        let dir = self.container_dir(&id);
        loop {
            let shim = self
                .lock()
                .get(&id)
                .map(|e| e.rec.state.shim_pid)
                .unwrap_or(0);
            if self.runtime.exit_record(&dir).is_some() || shim <= 0 || !self.runtime.alive(shim) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.on_exit(&id).await;
    }

    /// Sends `signal` to the container's process. As dockerd, a SIGKILL returns only
    /// once the container is seen exited, so `kill` then `rm` or `inspect` never races
    /// its exit.
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), ContainerError> {
        // A bad signal is the request's fault whatever the container, as with dockerd.
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        let rec = self.record(name)?;
        if !rec.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if matches!(
            sig,
            nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGTERM
        ) {
            self.update(&rec.id, |r| r.manually_stopped = true)?;
        }
        let mut rx = self.life(&rec.id)?;
        let exits = rx.borrow().exits;
        self.signal_with_event(&rec, sig)?;
        if sig == nix::sys::signal::Signal::SIGKILL {
            let exited = |l: &Life| l.exits > exits || l.removed;
            let _ = tokio::time::timeout(KILL_WAIT, rx.wait_for(exited)).await;
        }
        Ok(())
    }

    /// Sends `sig` to the container's process with the `kill` event dockerd emits
    /// for every signal it sends (`docker kill`, and `docker stop`'s own).
    fn signal_with_event(
        &self,
        rec: &ContainerRecord,
        sig: nix::sys::signal::Signal,
    ) -> Result<(), ContainerError> {
        self.emit(rec, "kill", &[("signal", (sig as i32).to_string())]);
        self.send_signal(rec.state.pid, sig)
    }

    /// `docker restart`: stop (if running), start, and the `restart` event.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ContainerError> {
        match self.stop(name, timeout, signal).await {
            Ok(()) | Err(ContainerError::NotModified) => {}
            Err(e) => return Err(e),
        }
        match self.start(name).await {
            Ok(()) | Err(ContainerError::NotModified) => {}
            Err(e) => return Err(e),
        }
        let rec = self.record(name)?;
        self.emit(&rec, "restart", &[]);
        Ok(())
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
        self.update(&rec.id, |r| {
            r.manually_stopped = true;
            r.state.restarting = false;
        })?;
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
        self.signal_with_event(&rec, sig)?;
        let exited = |l: &Life| l.exits > exits || l.removed;
        let graceful = if secs < 0 {
            rx.wait_for(exited).await.is_ok()
        } else {
            tokio::time::timeout(Duration::from_secs(secs as u64), rx.wait_for(exited))
                .await
                .is_ok()
        };
        if !graceful {
            let _ = self.signal_with_event(&rec, nix::sys::signal::Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(exited)).await;
        }
        self.emit(&rec, "stop", &[]);
        Ok(())
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

    /// Sends `sig` to a container's process, with dockerd's errors.
    pub(super) fn send_signal(
        &self,
        pid: i64,
        sig: nix::sys::signal::Signal,
    ) -> Result<(), ContainerError> {
        if pid <= 0 {
            return Err(ContainerError::Conflict("container has no process".into()));
        }
        self.runtime
            .signal(pid, sig)
            .map_err(io_err(format!("sending {sig} to the container")))
    }
}

/// How long `kill` waits to see a killed container exit (dockerd waits too, and its
/// SIGKILL cannot be ignored: only a process stuck in the kernel takes longer).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Whether (and after how long) a container that exited with `code` is restarted by
/// its policy. The delay doubles from 100 ms per restart, capped at 10 s, as dockerd's
/// backoff does.
pub(super) fn restart_delay(rec: &ContainerRecord, code: i64) -> Option<Duration> {
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

pub(super) fn apply_exit(r: &mut ContainerRecord, code: i64, error: &str, finished: &str) {
    r.state.status = Status::Exited;
    r.state.paused = false;
    r.state.pid = 0;
    r.state.shim_pid = 0;
    r.state.exit_code = code;
    r.state.error = error.to_string();
    r.state.finished_at = Some(finished.to_string());
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

/// The steps of a start that leave something to undo if a later one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartStep {
    /// Endpoints, addresses, `/etc` files and published ports.
    Network,
    /// The mounted root filesystem and the volumes mounted for it.
    Bundle,
}

/// What a start has begun so far (a step counts as soon as it begins: a step that
/// fails half-way is undone too).
struct StartRollback {
    rec: ContainerRecord,
    steps: Vec<StartStep>,
}

impl StartRollback {
    fn new(rec: &ContainerRecord) -> StartRollback {
        StartRollback {
            rec: rec.clone(),
            steps: Vec::new(),
        }
    }

    fn reached(&mut self, step: StartStep) {
        self.steps.push(step);
    }
}
