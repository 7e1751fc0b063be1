//! The health monitor of a running container: one task per container that waits the
//! interval, runs the probe as an exec (through the same exec path as `docker exec`,
//! so through the runtime), kills it at its timeout, records the result in the
//! container's record and publishes `health_status: …` when the status changes.
//! Started with the container (and for containers adopted after an engine restart),
//! halted when it exits, is paused or is removed. A probe's exec is forgotten once it
//! has exited, as dockerd does not list probes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{record, reset, stopped, timeout_message, ProbeResult, Settings};
use crate::clock::now;
use crate::containers::bundle::ExecRequest;
use crate::containers::{logs, ContainerRecord, ContainerService, Life};

/// How long a killed probe may take to go away before it is given up on.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The running monitors, each with the switch that stops it.
#[derive(Default)]
pub struct Monitors(Mutex<HashMap<String, watch::Sender<bool>>>);

impl Monitors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<bool>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn settings(rec: &ContainerRecord) -> Option<Settings> {
    Settings::of(rec.config.healthcheck.as_ref(), rec.config.shell.as_deref())
}

/// Time since the container started (zero when unknown).
fn since_start(rec: &ContainerRecord) -> Duration {
    rec.state
        .started_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

enum Ended {
    Exited,
    TimedOut,
    Halted,
}

impl ContainerService {
    /// The container has just started: its health starts over (dockerd keeps the log)
    /// and its monitor runs. Nothing for a container without a healthcheck.
    pub(in crate::containers) fn health_started(&self, id: &str) {
        let Ok(rec) = self.record(id) else { return };
        if settings(&rec).is_none() {
            return;
        }
        self.health_halt(id);
        if let Err(e) = self.update(id, |r| r.state.health = Some(reset(r.state.health.take()))) {
            tracing::warn!(container = id, error = %e, "recording the health state");
        }
        self.health_resume(id);
    }

    /// Runs the monitor if the container runs, is not paused, has a healthcheck and
    /// is not monitored yet (unpause, adoption after an engine restart).
    pub(in crate::containers) fn health_resume(&self, id: &str) {
        let Ok(rec) = self.record(id) else { return };
        let Some(settings) = settings(&rec) else {
            return;
        };
        if !rec.running() || rec.state.paused {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let stop = {
            let mut map = self.health.lock();
            if map.contains_key(id) {
                return;
            }
            let (tx, rx) = watch::channel(false);
            map.insert(id.to_string(), tx);
            rx
        };
        let id = id.to_string();
        tokio::spawn(async move { me.monitor(id, settings, stop).await });
    }

    /// Stops the container's monitor (exit, pause, removal); a probe under way is
    /// killed. As dockerd, a container whose monitor stops is reported unhealthy.
    pub(in crate::containers) fn health_halt(&self, id: &str) {
        let Some(stop) = self.health.lock().remove(id) else {
            return;
        };
        // Sent before the record is updated: a probe finishing now sees it under the
        // record's lock and drops its result instead of overwriting this one.
        stop.send_replace(true);
        let _ = self.update(id, |r| {
            if let Some(h) = r.state.health.as_mut() {
                stopped(h);
            }
        });
    }

    async fn monitor(
        self: Arc<Self>,
        id: String,
        settings: Settings,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let Ok(rec) = self.record(&id) else { return };
            let status = rec.state.health.as_ref().and_then(|h| h.status);
            let delay = settings.next_delay(since_start(&rec), status);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let in_start_period = self
                .record(&id)
                .is_ok_and(|r| since_start(&r) < settings.start_period);
            let Some(result) = self.probe(&id, &settings, &mut stop).await else {
                return;
            };
            let mut changed = None;
            let updated = self.update(&id, |r| {
                if *stop.borrow() {
                    return;
                }
                // A container adopted from an engine that did not keep health yet
                // starts from `starting` here.
                let h = r.state.health.get_or_insert_with(|| reset(None));
                changed = record(h, result, settings.retries, in_start_period);
            });
            if *stop.borrow() {
                return;
            }
            if let (Ok(rec), Some(status)) = (updated, changed) {
                self.emit(&rec, &format!("health_status: {status}"), &[]);
            }
        }
    }

    /// Runs one probe; `None` when the monitor was halted meanwhile.
    async fn probe(
        self: &Arc<Self>,
        id: &str,
        settings: &Settings,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<ProbeResult> {
        let start = now();
        let failed = |start: &str, output: String| ProbeResult {
            start: start.to_string(),
            end: now(),
            exit_code: -1,
            output,
        };
        let rec = self.record(id).ok()?;
        let req = ExecRequest {
            cmd: settings.cmd.clone(),
            user: rec.config.user.clone(),
            working_dir: rec.config.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let exec_id = match self.exec_create(id, req) {
            Ok(x) => x,
            Err(e) => return Some(failed(&start, e.to_string())),
        };
        let out = match self.exec_output(&exec_id) {
            Ok(o) => o,
            Err(e) => {
                self.exec_forget(&exec_id);
                return Some(failed(&start, e.to_string()));
            }
        };
        if let Err(e) = self.exec_start(&exec_id).await {
            self.exec_forget(&exec_id);
            return Some(failed(&start, e.to_string()));
        }
        let mut life = out.life;
        let exited = |l: &Life| !l.running && l.exits > 0;
        let ended = tokio::select! {
            r = tokio::time::timeout(settings.timeout, life.wait_for(exited)) => match r {
                Ok(_) => Ended::Exited,
                Err(_) => Ended::TimedOut,
            },
            _ = stop.wait_for(|s| *s) => Ended::Halted,
        };
        if !matches!(ended, Ended::Exited) {
            let pid = self.exec_pid(&exec_id);
            if pid > 0 {
                let _ = self.runtime.signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
            // Dying probes must not pile up: wait (bounded) for this one to go.
            let _ = tokio::time::timeout(KILL_GRACE, life.wait_for(exited)).await;
        }
        let code = life.borrow().exit_code;
        let output = logs::read_from(&out.log, 0)
            .map(|(entries, _)| {
                entries
                    .into_iter()
                    .flat_map(|e| e.data)
                    .collect::<Vec<u8>>()
            })
            .unwrap_or_default();
        let output = super::limit_output(&output);
        self.exec_forget(&exec_id);
        match ended {
            Ended::Halted => None,
            Ended::TimedOut => Some(ProbeResult {
                start,
                end: now(),
                exit_code: -1,
                output: timeout_message(settings.timeout, &output),
            }),
            Ended::Exited => Some(ProbeResult {
                start,
                end: now(),
                exit_code: code,
                output,
            }),
        }
    }
}
