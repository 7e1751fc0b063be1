//! `docker build` with the classic builder: the Dockerfile is parsed ([`dockerfile`])
//! and planned ([`stages`]: stages, ARG scoping, `--target`; [`args`]: the word rules
//! of ARG values), then each stage up to the target runs in order — RUN in a container
//! ([`exec`]), COPY/ADD ([`copy`]), config-only instructions ([`config`]) — every
//! layer committed through the same path as `docker commit` and looked up in the layer
//! [`cache`] first. This file holds the orchestration: stages in order, the steps of a
//! stage, the final image.

mod agent_socket;
pub mod args;
pub mod cache;
mod config;
pub mod context;
mod copy;
pub mod dockerfile;
mod error;
mod exec;
mod history;
pub mod mounts;
pub mod records;
mod run_mounts;
mod schedule;
mod sources;
pub mod stages;
mod steps;

pub use agent_socket::SshAgents;
pub use run_mounts::Secrets;
pub use sources::NamedContext;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bollard_stubs::models::ImageConfig;
use tokio::sync::mpsc;

use crate::containers::{ContainerError, ContainerService};
use crate::images::ImageService;
use exec::commit_config;
use stages::{BuildPlan, Source, Stage};
use steps::Steps;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    #[error(transparent)]
    Plan(#[from] stages::PlanError),
    #[error("{0}")]
    Invalid(String),
    #[error("the build was cancelled")]
    Cancelled,
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
}

/// What the client asked for.
pub struct BuildRequest {
    pub context: PathBuf,
    pub dockerfile: String,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// The cache index; `no_cache` skips lookups (results are still recorded).
    pub cache: cache::Cache,
    pub no_cache: bool,
    /// `--target`: the stage to stop after.
    pub target: Option<String>,
    /// BuildKit's ways: build only the stages the target needs (the classic builder
    /// builds every stage up to the target) and write BuildKit's history.
    pub buildkit: bool,
    /// Values for `RUN --mount=type=secret` (from a BuildKit client's session).
    pub secrets: Secrets,
    /// What every RUN's container gets: `--add-host`, `--shm-size`, `--network`.
    pub run: RunOptions,
    /// Named build contexts (`--build-context`), by name.
    pub contexts: HashMap<String, NamedContext>,
    /// The client's SSH agents for `RUN --mount=type=ssh` (`--ssh`), if it forwards any.
    pub ssh: Option<Arc<dyn SshAgents>>,
    /// Step containers still being removed (empty when the build returns).
    pub removals: exec::Removals,
    /// `--cache-from` on the classic builder: a cached step counts only when its
    /// image is one of these images or their ancestors (dockerd's rule); `None`
    /// when not given (any cached step counts).
    pub cache_from: Option<std::collections::HashSet<String>>,
}

/// Options of the build for its RUN steps' containers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// `host:ip` entries for `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    /// Bytes of `/dev/shm`.
    pub shm_size: Option<i64>,
    /// `none` or `host`; the default network otherwise.
    pub network: Option<String>,
    /// `--ulimit`s.
    pub ulimits: Vec<bollard_stubs::models::ResourcesUlimits>,
}

/// What a build reports as it goes.
pub enum Output {
    /// A line of the classic builder's output.
    Stream(String),
    /// The image built.
    Aux(String),
    /// A step as BuildKit shows it; classic clients ignore these.
    Step(StepEvent),
}

/// BuildKit's view of a stage's step. Stages may run at once; the steps of one stage
/// run in order, so a step is known by its stage's index.
pub enum StepEvent {
    /// A step of the stage starts, under the name BuildKit gives it.
    Begin(usize, String),
    /// Its result came from the cache.
    Cached(usize),
    /// Output of its command.
    Log(usize, Vec<u8>),
    /// It finished.
    End(usize),
    /// It stopped because another stage failed.
    Cancelled(usize),
}

/// A stage as it is being built.
struct State {
    /// The stage's index in the plan.
    stage: usize,
    image: String,
    config: ImageConfig,
    vars: HashMap<String, String>,
    /// Config changes not yet written into an image.
    dirty: bool,
    /// History entries of the metadata-only instructions since the last commit.
    pending: Vec<String>,
    /// The stage's ARGs in declaration order, with the value each took (what RUN
    /// history entries list as `|N NAME=value …`).
    args: Vec<(String, Option<String>)>,
}

impl BuildRequest {
    /// A step's cache key. BuildKit's builds key apart from classic ones, since the
    /// history they write differs (a classic key is what it always was).
    fn key(&self, parts: &[&str]) -> String {
        match self.buildkit {
            true => cache::key(&[parts, &["buildkit"]].concat()),
            false => cache::key(parts),
        }
    }

    fn style(&self) -> history::Style {
        match self.buildkit {
            true => history::Style::BuildKit,
            false => history::Style::Classic,
        }
    }
}

fn short(id: &str) -> &str {
    let h = id.trim_start_matches("sha256:");
    &h[..h.len().min(12)]
}

/// Runs a build; returns the final image id. The images of its steps are not saved
/// yet: the caller flushes the catalog once it is done with them.
pub async fn build(
    images: &Arc<ImageService>,
    containers: &Arc<ContainerService>,
    req: BuildRequest,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    let path = req.context.join(&req.dockerfile);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        BuildError::Invalid(format!(
            "Cannot locate specified Dockerfile: {}",
            req.dockerfile
        ))
    })?;
    let instructions = dockerfile::parse(&text)?;
    let mut plan = stages::plan(&instructions, &req.build_args, req.target.as_deref())?;
    plan.use_contexts(|n| req.contexts.contains_key(n));
    let mut steps = Steps::new(instructions.len(), plan.stages.len(), out);
    for ins in &plan.preamble {
        steps.show(ins, None).await;
    }
    let shared = StageRun {
        images,
        containers,
        plan: &plan,
        req: &req,
    };
    let last = build_stages(shared, &mut steps, instructions.len(), out).await;
    let t = std::time::Instant::now();
    req.removals.finish().await;
    tracing::debug!(
        ms = crate::clock::ms(t.elapsed()),
        "build steps' containers removed"
    );
    // The steps' images are in the catalog in memory only: the caller saves them
    // (`ImageService::flush`) once it has tagged or exported the result.
    finished(out, last?).await
}

/// Builds the stages the target needs, at once where BuildKit's way allows; returns
/// the target's image.
async fn build_stages(
    shared: StageRun<'_>,
    steps: &mut Steps<'_>,
    instructions: usize,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    let (plan, req) = (shared.plan, shared.req);
    Ok(if req.buildkit {
        schedule::needed_stages(shared, instructions, out).await?
    } else {
        // Finished stages: (name, image), by index.
        let mut done: Vec<(Option<String>, String)> = Vec::new();
        let mut last = String::new();
        for stage in plan.classic_stages() {
            last = build_stage(shared, stage, &done, steps, out).await?;
            done.push((stage.name.clone(), last.clone()));
        }
        last
    })
}

/// What building every stage of a build reads: the stores, the plan, the request.
#[derive(Clone, Copy)]
struct StageRun<'a> {
    images: &'a Arc<ImageService>,
    containers: &'a Arc<ContainerService>,
    plan: &'a BuildPlan,
    req: &'a BuildRequest,
}

/// Builds one stage, its steps shown through `steps`; returns its image. `done` is
/// the stages before it (name and image by index; a stage not built has no image).
async fn build_stage(
    shared: StageRun<'_>,
    stage: &Stage,
    done: &[(Option<String>, String)],
    steps: &mut Steps<'_>,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    let StageRun {
        images,
        containers,
        plan,
        req,
    } = shared;
    steps.stage(stage);
    let from = match &stage.base {
        Source::Image(r) => crate::images::reference::ImageRef::parse(r)
            .map(|r| {
                let tag = r.tag().map(|t| format!(":{t}")).unwrap_or_default();
                let digest = r.digest().map(|d| format!("@{d}")).unwrap_or_default();
                format!("FROM {}{tag}{digest}", r.full_name())
            })
            .ok(),
        _ => None,
    };
    steps.show(&stage.from, from.as_deref()).await;
    let mut st = start_stage(images, req, stage, done, out).await?;
    for step in &stage.steps {
        if out.is_closed() {
            return Err(BuildError::Cancelled);
        }
        steps.show(step, None).await;
        let t = std::time::Instant::now();
        run(images, containers, plan, &mut st, step, req, done, out).await?;
        tracing::debug!(
            stage = stage.index,
            line = step.line,
            step = %step.keyword,
            ms = crate::clock::ms(t.elapsed()),
            "build step done"
        );
    }
    steps.end().await;
    if stage.index == plan.target && !req.labels.is_empty() {
        st.config
            .labels
            .get_or_insert_with(Default::default)
            .extend(req.labels.clone());
        st.dirty = true;
    }
    finish_stage(images, st, req, out).await
}

/// The stage's base image and config; its variables start as the base's ENV (global
/// ARGs are not among them until the stage declares them again).
async fn start_stage(
    images: &ImageService,
    req: &BuildRequest,
    stage: &Stage,
    done: &[(Option<String>, String)],
    out: &mpsc::Sender<Output>,
) -> Result<State, BuildError> {
    let line = stage.from.line;
    let name = &stage.reference;
    let source = match &stage.base {
        Source::Stage(i) => done
            .get(*i)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| BuildError::Invalid(format!("line {line}: FROM {name}: not built")))?,
        Source::Scratch => images
            .scratch()
            .map_err(|e| BuildError::Invalid(format!("line {line}: FROM scratch: {e}")))?,
        Source::Image(r) => r.clone(),
        Source::Context(c) => sources::context_image(images, req, c, line)?,
    };
    let (id, cfg) = images
        .config(&source)
        .map_err(|e| BuildError::Invalid(format!("line {line}: FROM {name}: {e}")))?;
    let config = cfg.config.clone().unwrap_or_default();
    let mut vars = HashMap::new();
    for e in config.env.clone().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    let _ = out
        .send(Output::Stream(format!(" ---> {}\n", short(&id))))
        .await;
    Ok(State {
        stage: stage.index,
        image: id,
        config,
        vars,
        dirty: false,
        pending: Vec::new(),
        args: Vec::new(),
    })
}

/// One instruction after FROM.
#[allow(clippy::too_many_arguments)]
async fn run(
    images: &Arc<ImageService>,
    containers: &Arc<ContainerService>,
    plan: &BuildPlan,
    st: &mut State,
    step: &dockerfile::Instruction,
    req: &BuildRequest,
    done: &[(Option<String>, String)],
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    match step.keyword.as_str() {
        "ARG" => {
            st.pending
                .push(req.style().metadata("ARG", &step.rest, &st.config));
            for d in args::arg_decls(step)? {
                let value = plan.arg_value(&d, &st.vars);
                st.args.push((d.name.clone(), value.clone()));
                // ENV wins over an ARG of the same name, as in Docker.
                if env_has(&st.config, &d.name) {
                    continue;
                }
                match value {
                    Some(v) => st.vars.insert(d.name, v),
                    None => st.vars.remove(&d.name),
                };
            }
        }
        "RUN" => {
            let flags = mounts::parse(&step.rest, |v| dockerfile::expand(v, &st.vars)).map_err(
                |e| match e {
                    BuildError::Invalid(m) => {
                        BuildError::Invalid(format!("line {}: {m}", step.line))
                    }
                    e => e,
                },
            )?;
            let mut vars: Vec<String> = st.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vars.sort();
            let (config, vars) = (config_json(&st.config), vars.join("\n"));
            let mut parts = vec![st.image.as_str(), "RUN", &step.rest, &config, &vars];
            // What the mounts bind in; a plain RUN's key is what it always was.
            let inputs = run_mounts::key_inputs(images, &flags, req, done, step.line)?;
            if !inputs.is_empty() {
                parts.push(&inputs);
            }
            let key = req.key(&parts);
            if !hit(images, req, &key, st, out).await {
                exec::run_step(images, containers, st, step, &flags, req, done, out).await?;
                req.cache.put(&key, &st.image);
            }
        }
        "COPY" | "ADD" => copy::copy_step(images, containers, st, step, req, done, out).await?,
        _ => {
            // Config steps are folded into the next commit; whether this one was made
            // here before is kept only to say so, as dockerd's cached steps do. Only
            // the classic output says it: BuildKit's clients never see the line, so
            // their builds skip the index read and write.
            let key = (!req.buildkit).then(|| {
                req.key(&[
                    &st.image,
                    "SEEN",
                    &config_json(&st.config),
                    &st.pending.join("\n"),
                    &step.keyword,
                    &step.rest,
                ])
            });
            let seen = key
                .as_deref()
                .is_some_and(|k| cached(images, req, k).is_some());
            config::apply(st, step, req.style(), seen, out).await?;
            if let Some(key) = key.filter(|_| !seen) {
                req.cache.put(&key, &st.image);
            }
        }
    }
    Ok(())
}

fn env_has(config: &ImageConfig, name: &str) -> bool {
    config
        .env
        .iter()
        .flatten()
        .any(|e| e.split('=').next() == Some(name))
}

/// The image id (`aux`), then "Successfully built", in dockerd's order: clients take
/// the last `stream` line for the result.
async fn finished(out: &mpsc::Sender<Output>, id: String) -> Result<String, BuildError> {
    let _ = out.send(Output::Aux(id.clone())).await;
    let _ = out
        .send(Output::Stream(format!(
            "Successfully built {}\n",
            short(&id)
        )))
        .await;
    Ok(id)
}

/// Writes a stage's pending config changes and their history (an image of their own,
/// with no layer of its own) and returns the stage's image.
async fn finish_stage(
    images: &Arc<ImageService>,
    mut st: State,
    req: &BuildRequest,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    if st.dirty || !st.pending.is_empty() {
        // The history the commit writes is part of what the cache must match.
        let history = st.pending.join("\n");
        let key = req.key(&[&st.image, "CONFIG", &config_json(&st.config), &history]);
        // Each config step already said whether it was made before ("Using cache"),
        // as dockerd's steps do; the image they make together is shown once.
        if let Some(id) = cached(images, req, &key) {
            st.image = id;
        } else {
            st.image = commit_config(images, &mut st, req.style()).await?;
            req.cache.put(&key, &st.image);
        }
        let _ = out
            .send(Output::Stream(format!(" ---> {}\n", short(&st.image))))
            .await;
    }
    Ok(st.image)
}

/// Whether the cache has the step; on a hit its image becomes the stage's, as dockerd
/// reports it.
async fn hit(
    images: &ImageService,
    req: &BuildRequest,
    key: &str,
    st: &mut State,
    out: &mpsc::Sender<Output>,
) -> bool {
    let Some(id) = cached(images, req, key) else {
        return false;
    };
    let _ = out.send(Output::Stream(" ---> Using cache\n".into())).await;
    let _ = out.send(Output::Step(StepEvent::Cached(st.stage))).await;
    let _ = out
        .send(Output::Stream(format!(" ---> {}\n", short(&id))))
        .await;
    st.image = id;
    st.dirty = false;
    st.pending.clear();
    true
}

/// The image a cached step produced, if the cache has it and the image still exists.
fn cached(images: &ImageService, req: &BuildRequest, key: &str) -> Option<String> {
    if req.no_cache {
        return None;
    }
    let id = req.cache.get(key)?;
    let id = images.resolve(&id).ok()?;
    match &req.cache_from {
        Some(allowed) if !allowed.contains(&id) => None,
        _ => Some(id),
    }
}

/// The config as a cache key part. Through `serde_json::Value`, whose objects are
/// sorted maps, so labels (a `HashMap`) give the same key in every build.
fn config_json(c: &ImageConfig) -> String {
    serde_json::to_value(c)
        .map(|v| v.to_string())
        .unwrap_or_default()
}
