//! RUN steps: a container of the stage's current image runs the command with the
//! build's config and ARGs in its environment, its output streams back as it comes,
//! and a zero exit is committed as the next layer. Also the intermediate containers
//! and the commit every layer-writing step (RUN, COPY/ADD, config) goes through.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use tokio::sync::mpsc;

use super::dockerfile::{self, Instruction};
use super::history::Style;
use super::mounts::RunFlags;
use super::run_mounts;
use super::{short, BuildError, BuildRequest, Output, State, StepEvent};
use crate::containers::{CommitOptions, ContainerService, WaitCondition};
use crate::images::ImageService;

/// A container of the current image with the build's config in effect.
pub(super) fn create_container(
    images: &ImageService,
    containers: &ContainerService,
    st: &State,
    cmd: Option<Vec<String>>,
    host_config: Option<HostConfig>,
) -> Result<String, BuildError> {
    let c = &st.config;
    let body = ContainerCreateBody {
        image: Some(st.image.clone()),
        cmd: Some(cmd.unwrap_or_else(|| vec!["/bin/sh".into()])),
        entrypoint: Some(vec![]),
        env: c.env.clone(),
        working_dir: c.working_dir.clone(),
        user: c.user.clone(),
        labels: Some(HashMap::from([(
            crate::containers::BUILD_LABEL.to_string(),
            crate::containers::BUILD_STEP.to_string(),
        )])),
        host_config,
        ..Default::default()
    };
    Ok(containers.create(images, None, body)?)
}

/// Commits the container's changes as the step's layer, with the history of the
/// metadata-only instructions since the last commit before the step's own entry.
pub(super) async fn commit(
    images: &Arc<ImageService>,
    containers: &ContainerService,
    cid: &str,
    st: &mut State,
    style: Style,
    created_by: &str,
) -> Result<String, BuildError> {
    Ok(containers
        .commit(
            images,
            cid,
            CommitOptions {
                exact_config: Some(st.config.clone()),
                created_by: Some(created_by.to_string()),
                empty_before: std::mem::take(&mut st.pending),
                history_comment: style.comment(),
                save_later: true,
                ..Default::default()
            },
        )
        .await?)
}

/// Commits the stage's config with no layer, so no container is needed: the pending
/// metadata instructions' history, the last of them as the commit's own entry.
pub(super) async fn commit_config(
    images: &Arc<ImageService>,
    st: &mut State,
    style: Style,
) -> Result<String, BuildError> {
    let mut before = std::mem::take(&mut st.pending);
    // `--label` alone changes the config without an instruction of its own.
    let own = before.pop().unwrap_or_else(|| "LABEL".to_string());
    let req = crate::images::commit::CommitRequest {
        parent: st.image.clone(),
        upper: std::path::PathBuf::new(),
        config: st.config.clone(),
        author: None,
        comment: None,
        created_by: own,
        empty_before: before,
        new_layer: false,
        history_comment: style.comment(),
        save_later: true,
    };
    Ok(images.commit_blocking(req).await?)
}

/// Step containers being removed while the build goes on: the next step need not
/// wait for a removal, but the build waits for all of them before it answers, so no
/// container outlives the build that made it.
#[derive(Default)]
pub struct Removals(std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Removals {
    pub(super) fn remove(&self, containers: &Arc<ContainerService>, cid: String) {
        let containers = containers.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = containers.remove(&cid, true, true).await {
                tracing::warn!(container = %cid, error = %e, "removing a build step's container");
            }
        });
        if let Ok(mut pending) = self.0.lock() {
            pending.push(task);
        }
    }

    /// Waits for every removal started so far.
    pub(super) async fn finish(&self) {
        let pending = match self.0.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        for task in pending {
            let _ = task.await;
        }
    }
}

/// A RUN's output, to classic clients as a line (stderr in red, between the escape
/// codes dockerd's classic builder puts around it) and to BuildKit's as the step's log.
async fn pass(out: &mpsc::Sender<Output>, stage: usize, e: crate::containers::logs::Entry) {
    let text = String::from_utf8_lossy(&e.data).into_owned();
    let line = match e.stream {
        crate::containers::logs::Stream::Stderr => format!("\x1b[91m{text}\x1b[0m"),
        crate::containers::logs::Stream::Stdout => text,
    };
    let _ = out.send(Output::Stream(line)).await;
    let _ = out.send(Output::Step(StepEvent::Log(stage, e.data))).await;
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_step(
    images: &Arc<ImageService>,
    containers: &Arc<ContainerService>,
    st: &mut State,
    step: &Instruction,
    flags: &RunFlags,
    req: &BuildRequest,
    stages: &[(Option<String>, String)],
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    let cmd = match dockerfile::json_form(&flags.command) {
        Some(v) => v,
        None => {
            // SHELL changes what the shell form runs under.
            let mut v = st
                .config
                .shell
                .clone()
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            v.push(flags.command.clone());
            v
        }
    };
    let shown = cmd.join(" ");
    let env: Vec<(&str, &str)> = st
        .config
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.split_once('='))
        .collect();
    let created_by = req.style().run(&st.args, &env, &cmd);
    // Kept until the container is gone: scratch files behind its mounts.
    let prepared = run_mounts::prepare(images, containers, flags, req, stages, step.line).await?;
    // Build args are in the environment of RUN (not of the image).
    let mut st_for_run = State {
        stage: st.stage,
        image: st.image.clone(),
        config: st.config.clone(),
        vars: HashMap::new(),
        dirty: false,
        pending: Vec::new(),
        args: Vec::new(),
    };
    let env = st_for_run.config.env.get_or_insert_with(Vec::new);
    for (k, v) in &st.vars {
        if !env.iter().any(|e| e.split('=').next() == Some(k.as_str())) {
            env.push(format!("{k}={v}"));
        }
    }
    env.extend(prepared.env.iter().cloned());
    let opts = &req.run;
    let host_config = HostConfig {
        mounts: Some(prepared.mounts.clone()),
        network_mode: match flags.no_network {
            true => Some("none".to_string()),
            false => opts.network.clone(),
        },
        extra_hosts: Some(opts.extra_hosts.clone()).filter(|h| !h.is_empty()),
        shm_size: opts.shm_size,
        ulimits: Some(opts.ulimits.clone()).filter(|u| !u.is_empty()),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let cid = create_container(
        images,
        containers,
        &st_for_run,
        Some(cmd),
        Some(host_config),
    )?;
    let created = t0.elapsed();
    let mut started = created;
    // What the runtime will have to create for the mounts, so it can go again.
    let mountpoints = if flags.mounts.is_empty() {
        Ok(Vec::new())
    } else {
        let flags = flags.clone();
        containers
            .with_rootfs(&cid, move |root| {
                Ok(run_mounts::missing_mountpoints(root, &flags))
            })
            .await
    };
    let mountpoints = match mountpoints {
        Ok(m) => m,
        Err(e) => {
            let _ = containers.remove(&cid, true, true).await;
            return Err(e.into());
        }
    };
    let _ = out
        .send(Output::Stream(format!(
            " ---> Running in {}\n",
            short(&cid)
        )))
        .await;
    let result = async {
        let (log, _, _, _) = containers.output(&cid)?;
        let mut done = Box::pin(containers.wait(&cid, WaitCondition::NextExit)?);
        containers.start(&cid).await?;
        started = t0.elapsed();
        // The shim appends to the json log; pass it on as it grows.
        let mut offset = 0;
        let pass_on = |offset: &mut u64| {
            let (entries, next) =
                crate::containers::logs::read_from(&log, *offset).unwrap_or((Vec::new(), *offset));
            *offset = next;
            entries
        };
        loop {
            for e in pass_on(&mut offset) {
                pass(out, st.stage, e).await;
            }
            tokio::select! {
                (code, _) = &mut done => {
                    // The log is complete once the process has exited.
                    for e in pass_on(&mut offset) {
                        pass(out, st.stage, e).await;
                    }
                    break Ok::<_, BuildError>(code);
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                    // Nobody reads the build any more (a BuildKit client cancelled):
                    // stop, and the container goes with the error below.
                    if out.is_closed() {
                        break Err(BuildError::Cancelled);
                    }
                }
            }
        }
    }
    .await;
    let code = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = containers.remove(&cid, true, true).await;
            return Err(e);
        }
    };
    let exited = t0.elapsed();
    if code != 0 {
        let _ = containers.remove(&cid, true, true).await;
        return Err(BuildError::RunFailed {
            command: shown,
            code,
        });
    }
    let committed = match containers.drop_empty_from_layer(&cid, &mountpoints) {
        Ok(()) => commit(images, containers, &cid, st, req.style(), &created_by).await,
        Err(e) => Err(e.into()),
    };
    drop(prepared);
    let ms = crate::clock::ms;
    tracing::debug!(
        created = ms(created),
        started = ms(started),
        exited = ms(exited),
        committed = ms(t0.elapsed()),
        "run step phases"
    );
    let _ = out
        .send(Output::Stream(format!(
            "Removing intermediate container {}\n",
            short(&cid)
        )))
        .await;
    req.removals.remove(containers, cid);
    st.image = committed?;
    st.dirty = false;
    let _ = out
        .send(Output::Stream(format!(" ---> {}\n", short(&st.image))))
        .await;
    Ok(())
}
