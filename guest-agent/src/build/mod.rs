//! `docker build` with the classic builder, first slice: one stage; RUN in a
//! container of the current image whose output streams as it comes; COPY/ADD of local
//! files into a created container; both committed as new layers through the same path
//! as `docker commit`. Config-only instructions (ENV, WORKDIR, USER, CMD, ENTRYPOINT,
//! LABEL, EXPOSE, VOLUME, STOPSIGNAL, ONBUILD) update the config the next commit
//! writes. No layer cache, multi-stage, `.dockerignore` or remote ADD yet.

pub mod args;
pub mod cache;
pub mod dockerfile;
pub mod stages;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard_stubs::models::{ContainerCreateBody, ImageConfig};
use tokio::sync::mpsc;

use crate::containers::{CommitOptions, ContainerError, ContainerService, WaitCondition};
use crate::images::ImageService;
use dockerfile::Instruction;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    #[error("{0}")]
    Invalid(String),
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
}

/// A line of build output.
pub enum Output {
    Stream(String),
    Aux(String),
}

struct State {
    /// `FROM … AS name`.
    stage: Option<String>,
    image: String,
    config: ImageConfig,
    vars: HashMap<String, String>,
    /// Config changes not yet written into an image.
    dirty: bool,
}

fn short(id: &str) -> &str {
    let h = id.trim_start_matches("sha256:");
    &h[..h.len().min(12)]
}

/// Runs a build; returns the final image id.
pub async fn build(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    req: BuildRequest,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    let say = |s: String| async move {
        let _ = out.send(Output::Stream(s)).await;
    };
    let path = req.context.join(&req.dockerfile);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        BuildError::Invalid(format!(
            "Cannot locate specified Dockerfile: {}",
            req.dockerfile
        ))
    })?;
    let steps = dockerfile::parse(&text)?;
    let mut args: HashMap<String, String> = HashMap::new();
    // ARGs before FROM are visible to FROM only.
    let mut state: Option<State> = None;
    // Finished stages: (name, image).
    let mut stages: Vec<(Option<String>, String)> = Vec::new();
    if let Some(t) = &req.target {
        let known = steps.iter().any(|s| {
            s.keyword == "FROM"
                && s.rest
                    .split_whitespace()
                    .nth(2)
                    .is_some_and(|a| a.eq_ignore_ascii_case(t))
        });
        if !known {
            return Err(BuildError::Invalid(format!(
                "failed to reach build target {t} in Dockerfile"
            )));
        }
    }
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        say(format!(
            "Step {}/{} : {} {}\n",
            i + 1,
            total,
            step.keyword,
            step.rest
        ))
        .await;
        if step.keyword == "ARG" {
            let (name, default) = match step.rest.split_once('=') {
                Some((n, d)) => (
                    n.trim().to_string(),
                    Some(d.trim().trim_matches('"').to_string()),
                ),
                None => (step.rest.trim().to_string(), None),
            };
            let value = req
                .build_args
                .get(&name)
                .cloned()
                .or(default)
                .unwrap_or_default();
            match &mut state {
                Some(s) => {
                    s.vars.insert(name, value);
                }
                None => {
                    args.insert(name, value);
                }
            }
            continue;
        }
        if step.keyword == "FROM" {
            if let Some(prev) = state.take() {
                let name = prev.stage.clone();
                let id = finish_stage(images, containers, prev, &req, out).await?;
                let done = req.target.is_some() && name == req.target;
                stages.push((name, id.clone()));
                if done {
                    return finished(out, id).await;
                }
            }
            let words: Vec<&str> = step.rest.split_whitespace().collect();
            let name = dockerfile::expand(words.first().copied().unwrap_or(""), &args);
            let alias = match words.as_slice() {
                [_, kw, alias] if kw.eq_ignore_ascii_case("as") => Some(alias.to_lowercase()),
                [_] => None,
                _ => {
                    return Err(BuildError::Invalid(format!(
                        "line {}: FROM requires either one or three arguments",
                        step.line
                    )))
                }
            };
            // An earlier stage's name, else an image (`scratch`: the empty base).
            let stage = stages
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name.to_lowercase().as_str()))
                .map(|(_, id)| id.clone());
            let source = match stage {
                Some(id) => id,
                None if name == "scratch" => images.scratch().map_err(|e| {
                    BuildError::Invalid(format!("line {}: FROM scratch: {e}", step.line))
                })?,
                None => name.clone(),
            };
            let (id, cfg) = images.config(&source).map_err(|e| {
                BuildError::Invalid(format!("line {}: FROM {name}: {e}", step.line))
            })?;
            let config = cfg.config.clone().unwrap_or_default();
            let mut vars = args.clone();
            for e in config.env.clone().unwrap_or_default() {
                if let Some((k, v)) = e.split_once('=') {
                    vars.insert(k.to_string(), v.to_string());
                }
            }
            say(format!(" ---> {}\n", short(&id))).await;
            state = Some(State {
                stage: alias,
                image: id,
                config,
                vars,
                dirty: false,
            });
            continue;
        }
        let Some(st) = state.as_mut() else {
            return Err(BuildError::Invalid(format!(
                "line {}: no build stage in current context",
                step.line
            )));
        };
        match step.keyword.as_str() {
            "RUN" => {
                let mut vars: Vec<String> =
                    st.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
                vars.sort();
                let key = cache::key(&[
                    &st.image,
                    "RUN",
                    &step.rest,
                    &config_json(&st.config),
                    &vars.join("\n"),
                ]);
                if let Some(id) = cached(images, &req, &key) {
                    say(" ---> Using cache\n".to_string()).await;
                    say(format!(" ---> {}\n", short(&id))).await;
                    st.image = id;
                    st.dirty = false;
                } else {
                    run_step(images, containers, st, step, out).await?;
                    req.cache.put(&key, &st.image);
                }
            }
            "COPY" | "ADD" => copy_step(images, containers, st, step, &req, &stages, out).await?,
            "SHELL" => {
                let shell = dockerfile::json_form(&step.rest).ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "line {}: SHELL requires the arguments to be in JSON form",
                        step.line
                    ))
                })?;
                st.config.shell = Some(shell);
                st.dirty = true;
            }
            "HEALTHCHECK" => {
                st.config.healthcheck = Some(healthcheck(&step.rest).map_err(|e| {
                    BuildError::Invalid(format!("line {}: HEALTHCHECK: {e}", step.line))
                })?);
                st.dirty = true;
            }
            "MAINTAINER" => {
                say(" ---> MAINTAINER is deprecated; use a LABEL\n".to_string()).await;
            }
            _ => {
                let expanded = if matches!(step.keyword.as_str(), "CMD" | "ENTRYPOINT" | "ONBUILD")
                {
                    step.rest.clone()
                } else {
                    dockerfile::expand(&step.rest, &st.vars)
                };
                let line = format!("{} {}", step.keyword, expanded);
                crate::containers::apply_change(&mut st.config, &line)
                    .map_err(|e| BuildError::Invalid(format!("line {}: {e}", step.line)))?;
                if step.keyword == "ENV" {
                    for e in st.config.env.clone().unwrap_or_default() {
                        if let Some((k, v)) = e.split_once('=') {
                            st.vars.insert(k.to_string(), v.to_string());
                        }
                    }
                }
                st.dirty = true;
                say(format!(" ---> Recorded {}\n", step.keyword)).await;
            }
        }
    }
    let Some(mut st) = state else {
        return Err(BuildError::Invalid(
            "no build stage in current context".into(),
        ));
    };
    if !req.labels.is_empty() {
        st.config
            .labels
            .get_or_insert_with(Default::default)
            .extend(req.labels.clone());
        st.dirty = true;
    }
    let id = finish_stage(images, containers, st, &req, out).await?;
    finished(out, id).await
}

async fn finished(out: &mpsc::Sender<Output>, id: String) -> Result<String, BuildError> {
    let _ = out
        .send(Output::Stream(format!(
            "Successfully built {}\n",
            short(&id)
        )))
        .await;
    let _ = out.send(Output::Aux(id.clone())).await;
    Ok(id)
}

/// Writes a stage's pending config changes (an image of their own, over an empty
/// layer) and returns the stage's image.
async fn finish_stage(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    mut st: State,
    req: &BuildRequest,
    out: &mpsc::Sender<Output>,
) -> Result<String, BuildError> {
    if st.dirty {
        let key = cache::key(&[&st.image, "CONFIG", &config_json(&st.config)]);
        if let Some(id) = cached(images, req, &key) {
            let _ = out.send(Output::Stream(" ---> Using cache\n".into())).await;
            st.image = id;
        } else {
            let cid = create_container(images, containers, &st, None)?;
            let result = commit(images, containers, &cid, &st, "#(nop) config").await;
            let _ = containers.remove(&cid, true, true).await;
            st.image = result?;
            req.cache.put(&key, &st.image);
        }
    }
    Ok(st.image)
}

/// The image a cached step produced, if the cache has it and the image still exists.
fn cached(images: &ImageService, req: &BuildRequest, key: &str) -> Option<String> {
    if req.no_cache {
        return None;
    }
    let id = req.cache.get(key)?;
    images.resolve(&id).ok()
}

fn config_json(c: &ImageConfig) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// A container of the current image with the build's config in effect.
fn create_container(
    images: &ImageService,
    containers: &ContainerService,
    st: &State,
    cmd: Option<Vec<String>>,
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
            "io.berth.build".to_string(),
            "intermediate".to_string(),
        )])),
        ..Default::default()
    };
    Ok(containers.create(images, None, body)?)
}

async fn commit(
    images: &ImageService,
    containers: &ContainerService,
    cid: &str,
    st: &State,
    created_by: &str,
) -> Result<String, BuildError> {
    Ok(containers
        .commit(
            images,
            cid,
            CommitOptions {
                exact_config: Some(st.config.clone()),
                created_by: Some(created_by.to_string()),
                ..Default::default()
            },
        )
        .await?)
}

async fn run_step(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    st: &mut State,
    step: &Instruction,
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    let cmd = match dockerfile::json_form(&step.rest) {
        Some(v) => v,
        None => {
            // SHELL changes what the shell form runs under.
            let mut v = st
                .config
                .shell
                .clone()
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            v.push(step.rest.clone());
            v
        }
    };
    let shown = cmd.join(" ");
    // Build args are in the environment of RUN (not of the image).
    let mut st_for_run = State {
        stage: None,
        image: st.image.clone(),
        config: st.config.clone(),
        vars: HashMap::new(),
        dirty: false,
    };
    let env = st_for_run.config.env.get_or_insert_with(Vec::new);
    for (k, v) in &st.vars {
        if !env.iter().any(|e| e.split('=').next() == Some(k.as_str())) {
            env.push(format!("{k}={v}"));
        }
    }
    let cid = create_container(images, containers, &st_for_run, Some(cmd))?;
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
                let _ = out
                    .send(Output::Stream(
                        String::from_utf8_lossy(&e.data).into_owned(),
                    ))
                    .await;
            }
            tokio::select! {
                (code, _) = &mut done => {
                    // The log is complete once the process has exited.
                    for e in pass_on(&mut offset) {
                        let _ = out
                            .send(Output::Stream(String::from_utf8_lossy(&e.data).into_owned()))
                            .await;
                    }
                    break Ok::<_, BuildError>(code);
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
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
    if code != 0 {
        let _ = containers.remove(&cid, true, true).await;
        return Err(BuildError::RunFailed {
            command: shown,
            code,
        });
    }
    let committed = commit(
        images,
        containers,
        &cid,
        st,
        &format!("/bin/sh -c {}", step.rest),
    )
    .await;
    let _ = out
        .send(Output::Stream(format!(
            "Removing intermediate container {}\n",
            short(&cid)
        )))
        .await;
    let _ = containers.remove(&cid, true, true).await;
    st.image = committed?;
    st.dirty = false;
    let _ = out
        .send(Output::Stream(format!(" ---> {}\n", short(&st.image))))
        .await;
    Ok(())
}

async fn copy_step(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    st: &mut State,
    step: &Instruction,
    req: &BuildRequest,
    stages: &[(Option<String>, String)],
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    let rest = dockerfile::expand(&step.rest, &st.vars);
    let mut parts: Vec<String> = match dockerfile::json_form(&rest) {
        Some(v) => v,
        None => rest.split_whitespace().map(str::to_string).collect(),
    };
    let from = parts
        .iter()
        .find_map(|p| p.strip_prefix("--from="))
        .map(str::to_string);
    let chown = parts
        .iter()
        .find_map(|p| p.strip_prefix("--chown="))
        .map(str::to_string);
    let add = step.keyword == "ADD";
    parts.retain(|p| !p.starts_with("--"));
    if parts.len() < 2 {
        return Err(BuildError::Invalid(format!(
            "line {}: {} requires at least two arguments",
            step.line, step.keyword
        )));
    }
    let dest = parts.pop().unwrap_or_default();
    let workdir = st.config.working_dir.clone().unwrap_or_else(|| "/".into());
    let dest_abs = if dest.starts_with('/') {
        dest.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest)
    };
    // COPY --from: the files come out of another stage's (or image's) filesystem into a
    // scratch directory, which then plays the build context's part.
    let _from_dir;
    let context: &Path = match &from {
        None => &req.context,
        Some(f) => {
            let image = stages
                .iter()
                .enumerate()
                .find(|(i, (n, _))| {
                    n.as_deref() == Some(f.to_lowercase().as_str()) || i.to_string() == *f
                })
                .map(|(_, (_, id))| id.clone())
                .or_else(|| images.resolve(f).ok())
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "line {}: invalid from flag value {f}: no such stage or image",
                        step.line
                    ))
                })?;
            let dir = req
                .context
                .with_extension(format!("from-{:08x}", rand::random::<u32>()));
            extract_from_image(images, containers, &image, &parts, &dir).await?;
            _from_dir = ScratchDir(dir);
            &_from_dir.0
        }
    };
    let mut sources = Vec::new();
    // ADD of a URL: fetched into a scratch dir, named after the URL's last segment.
    let _downloads;
    if add
        && parts
            .iter()
            .any(|p| p.starts_with("http://") || p.starts_with("https://"))
    {
        let dir = req
            .context
            .with_extension(format!("url-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            BuildError::Invalid(format!("line {}: preparing the download: {e}", step.line))
        })?;
        _downloads = ScratchDir(dir.clone());
        for url in parts.iter().filter(|p| p.starts_with("http")) {
            sources.push(
                fetch(url, &dir).await.map_err(|e| {
                    BuildError::Invalid(format!("line {}: ADD {url}: {e}", step.line))
                })?,
            );
        }
        parts.retain(|p| !p.starts_with("http://") && !p.starts_with("https://"));
    }
    for s in &parts {
        if s.contains(['*', '?', '[']) {
            let matched = glob(context, s);
            if matched.is_empty() {
                return Err(BuildError::Invalid(format!(
                    "COPY failed: no source files were specified (no match for {s})"
                )));
            }
            sources.extend(matched);
            continue;
        }
        let p = crate::containers::archive::resolve(context, s, true)
            .map_err(|e| BuildError::Invalid(format!("line {}: {e}", step.line)))?;
        if !p.exists() {
            return Err(BuildError::Invalid(format!(
                "COPY failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
            )));
        }
        sources.push(p);
    }
    let inputs = cache::hash_sources(&sources).map_err(|e| {
        BuildError::Invalid(format!(
            "line {}: reading the build context: {e}",
            step.line
        ))
    })?;
    let key = cache::key(&[
        &st.image,
        &step.keyword,
        &rest,
        &config_json(&st.config),
        &inputs,
    ]);
    if let Some(id) = cached(images, req, &key) {
        let _ = out.send(Output::Stream(" ---> Using cache\n".into())).await;
        let _ = out
            .send(Output::Stream(format!(" ---> {}\n", short(&id))))
            .await;
        st.image = id;
        st.dirty = false;
        return Ok(());
    }
    let cid = create_container(images, containers, st, None)?;
    let many = sources.len() > 1 || dest.ends_with('/');
    let copied = containers
        .with_rootfs(&cid, move |root| {
            let target = crate::containers::archive::resolve(root, &dest_abs, true)?;
            let owner = match &chown {
                Some(spec) => {
                    let u = crate::containers::config::resolve_user(spec, root).map_err(|e| {
                        ContainerError::InvalidArgument(format!("--chown={spec}: {e}"))
                    })?;
                    Some((u.uid, u.gid))
                }
                None => None,
            };
            for src in &sources {
                // ADD unpacks a local tar archive (plain or gzip) into the destination.
                if add && src.is_file() && is_tar(src) {
                    std::fs::create_dir_all(&target).map_err(|e| ContainerError::Io {
                        context: "creating the ADD destination".into(),
                        source: e,
                    })?;
                    let f = std::fs::File::open(src).map_err(|e| ContainerError::Io {
                        context: format!("reading {}", src.display()),
                        source: e,
                    })?;
                    let mut r = std::io::BufReader::new(f);
                    let gz = {
                        use std::io::BufRead;
                        r.fill_buf()
                            .map(|b| b.starts_with(&[0x1f, 0x8b]))
                            .unwrap_or(false)
                    };
                    let unpacked = if gz {
                        crate::images::unpack::unpack_plain(
                            flate2::read::GzDecoder::new(r),
                            &target,
                        )
                    } else {
                        crate::images::unpack::unpack_plain(r, &target)
                    };
                    unpacked.map_err(|e| ContainerError::InvalidArgument(format!("ADD: {e}")))?;
                    continue;
                }
                let into_dir = many || target.is_dir();
                let to = if src.is_dir() {
                    target.clone()
                } else if into_dir {
                    target.join(src.file_name().unwrap_or_default())
                } else {
                    target.clone()
                };
                copy_tree(src, &to).map_err(|e| ContainerError::Io {
                    context: format!("copying {}", src.display()),
                    source: e,
                })?;
                if let Some((uid, gid)) = owner {
                    chown_tree(&to, uid, gid).map_err(|e| ContainerError::Io {
                        context: "applying --chown".into(),
                        source: e,
                    })?;
                }
            }
            Ok(())
        })
        .await;
    if let Err(e) = copied {
        let _ = containers.remove(&cid, true, true).await;
        return Err(e.into());
    }
    let committed = commit(
        images,
        containers,
        &cid,
        st,
        &format!("#(nop) {} {}", step.keyword, step.rest),
    )
    .await;
    let _ = containers.remove(&cid, true, true).await;
    st.image = committed?;
    st.dirty = false;
    req.cache.put(&key, &st.image);
    let _ = out
        .send(Output::Stream(format!(" ---> {}\n", short(&st.image))))
        .await;
    Ok(())
}

/// Copies a file or a directory's contents, owned by root as Docker's COPY does.
fn copy_tree(src: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        return Ok(());
    }
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p)?;
    }
    if meta.file_type().is_symlink() {
        let t = std::fs::read_link(src)?;
        let _ = std::fs::remove_file(to);
        return std::os::unix::fs::symlink(t, to);
    }
    std::fs::copy(src, to)?;
    std::os::unix::fs::chown(to, Some(0), Some(0))
}

/// A directory removed on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `paths` out of `image`'s filesystem into `dir`, keeping their layout.
async fn extract_from_image(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    image: &str,
    paths: &[String],
    dir: &Path,
) -> Result<(), BuildError> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["/bin/sh".into()]),
        ..Default::default()
    };
    let cid = containers.create(images, None, body)?;
    let (paths, dir) = (paths.to_vec(), dir.to_path_buf());
    let result = containers
        .with_rootfs(&cid, move |root| {
            for p in &paths {
                let src = crate::containers::archive::resolve(root, p, true)?;
                if !src.exists() {
                    continue; // reported as missing by the copy that follows
                }
                let to = dir.join(p.trim_start_matches('/'));
                copy_tree(&src, &to).map_err(|e| ContainerError::Io {
                    context: format!("copying {p} out of the stage"),
                    source: e,
                })?;
            }
            Ok(())
        })
        .await;
    let _ = containers.remove(&cid, true, true).await;
    Ok(result?)
}

/// Whether a file is a tar archive ADD unpacks: gzip-compressed, or a plain tar (the
/// `ustar` magic at offset 257).
fn is_tar(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 263];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n.min(2)] == [0x1f, 0x8b] || (n >= 262 && &head[257..262] == b"ustar")
}

/// `--chown`: the copied tree, links themselves included.
fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Go's duration syntax as Docker's flags take it (`30s`, `1m30s`, `500ms`), in ns.
fn duration_ns(s: &str) -> Result<i64, String> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) {
            unit.push(chars.next().unwrap_or_default());
        }
        let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        total += v * match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("invalid duration {s:?}")),
        };
    }
    if !num.is_empty() {
        return Err(format!("invalid duration {s:?}: missing unit"));
    }
    Ok(total as i64)
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=… --timeout=… --start-period=…
/// --retries=…] CMD command`.
fn healthcheck(rest: &str) -> Result<bollard_stubs::models::HealthConfig, String> {
    let mut h = bollard_stubs::models::HealthConfig::default();
    let mut words = rest.trim();
    if words.eq_ignore_ascii_case("NONE") {
        h.test = Some(vec!["NONE".into()]);
        return Ok(h);
    }
    while let Some(flag) = words.strip_prefix("--") {
        let (f, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (k, v) = f.split_once('=').ok_or_else(|| format!("bad flag --{f}"))?;
        match k {
            "interval" => h.interval = Some(duration_ns(v)?),
            "timeout" => h.timeout = Some(duration_ns(v)?),
            "start-period" => h.start_period = Some(duration_ns(v)?),
            "start-interval" => h.start_interval = Some(duration_ns(v)?),
            "retries" => h.retries = Some(v.parse().map_err(|_| format!("bad retries {v}"))?),
            _ => return Err(format!("unknown flag: --{k}")),
        }
        words = tail.trim_start();
    }
    let cmd = words
        .strip_prefix("CMD")
        .or_else(|| words.strip_prefix("cmd"))
        .ok_or("missing CMD")?
        .trim();
    h.test = Some(match dockerfile::json_form(cmd) {
        Some(mut v) => {
            v.insert(0, "CMD".into());
            v
        }
        None => vec!["CMD-SHELL".into(), cmd.to_string()],
    });
    Ok(h)
}

/// Downloads `url` into `dir`; the file is named after the URL's last path segment.
async fn fetch(url: &str, dir: &Path) -> Result<PathBuf, String> {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty() && *n != ".." && *n != ".")
        .unwrap_or("download")
        .to_string();
    let resp = reqwest::get(url).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("got HTTP status code >= 400: {}", resp.status()));
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let path = dir.join(name);
    std::fs::write(&path, &bytes).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Paths under `root` matching `pattern` segment by segment, with Go's
/// `filepath.Match` rules for each (`*`, `?`, `[…]`), as Docker matches COPY sources.
fn glob(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for seg in pattern.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let mut next = Vec::new();
        for dir in &current {
            if !seg.contains(['*', '?', '[']) {
                let p = dir.join(seg);
                if std::fs::symlink_metadata(&p).is_ok() {
                    next.push(p);
                }
                continue;
            }
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for n in names {
                if segment_matches(seg, &n.to_string_lossy()) {
                    next.push(dir.join(n));
                }
            }
        }
        current = next;
    }
    current.retain(|p| p != root);
    current
}

/// One element of a COPY source segment pattern.
enum Tok {
    Star,
    Any,
    Lit(char),
    /// `[…]`: negated, then single chars and inclusive ranges.
    Class(bool, Vec<(char, char)>),
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Star => false,
            Tok::Any => true,
            Tok::Lit(l) => *l == c,
            Tok::Class(negate, ranges) => {
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
            }
        }
    }
}

/// `None` for a pattern Go would reject as malformed (an unclosed `[`): it matches nothing.
fn tokens(pattern: &str) -> Option<Vec<Tok>> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '[' => {
                let end = i + p[i..].iter().position(|&c| c == ']')?;
                let mut class = &p[i + 1..end];
                let negate = matches!(class.first(), Some('^') | Some('!'));
                if negate {
                    class = &class[1..];
                }
                let mut ranges = Vec::new();
                let mut j = 0;
                while j < class.len() {
                    if j + 2 < class.len() && class[j + 1] == '-' {
                        ranges.push((class[j], class[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((class[j], class[j]));
                        j += 1;
                    }
                }
                out.push(Tok::Class(negate, ranges));
                i = end;
            }
            c => out.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Some(out)
}

/// Matches one path segment. Backtracks only to the last `*` seen, so the work is at
/// most pattern × name steps: a Dockerfile's `COPY *a*a*a*a*b` against long names
/// cannot stall the build (a recursive matcher is exponential in the number of `*`).
fn segment_matches(pattern: &str, name: &str) -> bool {
    let Some(p) = tokens(pattern) else {
        return false;
    };
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` is in the pattern and how much of the name it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(t) if t.matches(n[ni]) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| matches!(t, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(segment_matches("*.txt", "a.txt"));
        assert!(!segment_matches("*.txt", "a.md"));
        assert!(segment_matches("f?[0-9]", "fa7"));
        assert!(!segment_matches("f[!a]", "fa"));
        assert!(segment_matches("f[^a]", "fb"));
        assert!(segment_matches("*", ""));
        assert!(segment_matches("a*b*c", "aXbYbZc"));
        assert!(!segment_matches("a*b*c", "aXbYbZ"));
        assert!(segment_matches("*.tar.*", "x.tar.gz"));
        assert!(!segment_matches("[a", "a"));
        // Many stars against a long name that almost matches: instant, not exponential.
        let name = "a".repeat(255);
        assert!(!segment_matches(&format!("{}b", "*a".repeat(30)), &name));
        assert!(segment_matches(&format!("{}a", "*a".repeat(30)), &name));
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/x")).unwrap();
        for f in ["src/a.rs", "src/b.rs", "src/c.md", "src/x/d.rs"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let got: Vec<String> = glob(d.path(), "src/*.rs")
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(got, vec!["src/a.rs", "src/b.rs"]);
    }

    #[test]
    fn healthchecks_and_durations() {
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert!(duration_ns("5").is_err());
        let h = healthcheck("--interval=5s --retries=2 CMD wget -q localhost").unwrap();
        assert_eq!(h.interval, Some(5_000_000_000));
        assert_eq!(h.retries, Some(2));
        assert_eq!(
            h.test,
            Some(vec!["CMD-SHELL".into(), "wget -q localhost".into()])
        );
        let j = healthcheck(r#"CMD ["true"]"#).unwrap();
        assert_eq!(j.test, Some(vec!["CMD".into(), "true".into()]));
        assert_eq!(healthcheck("NONE").unwrap().test, Some(vec!["NONE".into()]));
    }
}
