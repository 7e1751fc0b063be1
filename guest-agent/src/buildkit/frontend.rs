//! The `dockerfile.v0` frontend on Berth's builder: the Dockerfile and the context
//! come from the client's session, the frontend's attributes become a
//! [`BuildRequest`], and the builder's steps become BuildKit vertexes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::filesync::{self, Want};
use super::progress::{Reporter, StepVertexes};
use super::BuildKitError;
use crate::build::{BuildError, BuildRequest, NamedContext, Output, RunOptions, Secrets};
use crate::engine::Engine;
use crate::images::reference::ImageRef;
use crate::images::RegistryCredentials;
use crate::sessions::client::Session;
use crate::sessions::jobs::{Built, Job};

/// The frontend attributes Berth's builder acts on.
#[derive(Debug, Default, PartialEq)]
pub struct Attrs {
    pub filename: String,
    pub target: Option<String>,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub no_cache: bool,
    pub context_key: String,
    pub dockerfile_key: String,
    /// `--add-host`, `--shm-size`, `--network` for every RUN.
    pub run: RunOptions,
    /// `--platform`, as given.
    pub platforms: Vec<String>,
    /// Named contexts (`--build-context`): name → how buildx gave it
    /// (`docker-image://…`, `local:NAME`).
    pub contexts: HashMap<String, String>,
}

impl Attrs {
    /// What the build history keeps of them: enough to run the build again.
    pub fn history_request(&self) -> crate::build_history::Request {
        let build_arg_values: std::collections::BTreeMap<String, String> = self
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        crate::build_history::Request {
            dockerfile: self.filename.clone(),
            target: self.target.clone(),
            build_args: build_arg_values.keys().cloned().collect(),
            build_arg_values,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            no_cache: self.no_cache,
        }
    }

    pub fn parse(opts: &HashMap<String, String>) -> Result<Attrs, BuildKitError> {
        let mut a = Attrs {
            filename: "Dockerfile".into(),
            context_key: "context".into(),
            dockerfile_key: "dockerfile".into(),
            ..Default::default()
        };
        for (k, v) in opts {
            if let Some(name) = k.strip_prefix("build-arg:") {
                a.build_args.insert(name.to_string(), v.clone());
            } else if let Some(name) = k.strip_prefix("label:") {
                a.labels.insert(name.to_string(), v.clone());
            } else if let Some(name) = k.strip_prefix("context:") {
                // `NAME::PLATFORM` keys name a context for one platform; Berth builds
                // for its own only.
                let name = name.split("::").next().unwrap_or(name);
                a.contexts.insert(name.to_string(), v.clone());
            } else {
                match k.as_str() {
                    "filename" if !v.is_empty() => a.filename = v.clone(),
                    "target" if !v.is_empty() => a.target = Some(v.to_lowercase()),
                    "no-cache" => a.no_cache = true,
                    "contextkey" if !v.is_empty() => a.context_key = v.clone(),
                    "dockerfilekey" if !v.is_empty() => a.dockerfile_key = v.clone(),
                    "add-hosts" => {
                        a.run.extra_hosts = v
                            .split(',')
                            .filter(|h| !h.is_empty())
                            .map(|h| h.replacen('=', ":", 1))
                            .collect()
                    }
                    "shm-size" => {
                        a.run.shm_size = Some(v.parse().map_err(|_| {
                            BuildKitError::Invalid(format!("invalid shm-size {v:?}"))
                        })?)
                        .filter(|n| *n > 0)
                    }
                    "force-network-mode" => match v.as_str() {
                        "none" | "host" => a.run.network = Some(v.clone()),
                        "" | "default" | "sandbox" => {}
                        other => {
                            return Err(BuildKitError::Invalid(format!(
                                "network mode {other:?} not supported by this builder"
                            )))
                        }
                    },
                    "ulimit" => a.run.ulimits = parse_ulimits(v).map_err(BuildKitError::Invalid)?,
                    "platform" => {
                        a.platforms = v
                            .split(',')
                            .filter(|p| !p.is_empty())
                            .map(str::to_string)
                            .collect()
                    }
                    _ => {}
                }
            }
        }
        // A Dockerfile given as a path: its directory is what the session exposes.
        if let Some(base) = Path::new(&a.filename).file_name() {
            a.filename = base.to_string_lossy().into_owned();
        }
        Ok(a)
    }
}

/// `--ulimit` values as BuildKit's `ulimit` attribute lists them:
/// `nofile=1024:2048,nproc=512` (a single number is both limits).
fn parse_ulimits(csv: &str) -> Result<Vec<bollard_stubs::models::ResourcesUlimits>, String> {
    let mut out = Vec::new();
    for item in csv.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || format!("invalid ulimit {item:?}");
        let (name, limits) = item.split_once('=').ok_or_else(bad)?;
        let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
        let soft: i64 = soft.parse().map_err(|_| bad())?;
        let hard: i64 = hard.parse().map_err(|_| bad())?;
        if crate::runtime::spec::rlimit_name(name).is_none() || soft > hard {
            return Err(bad());
        }
        out.push(bollard_stubs::models::ResourcesUlimits {
            name: Some(name.to_string()),
            soft: Some(soft),
            hard: Some(hard),
        });
    }
    Ok(out)
}

/// The `# syntax=` directive, if the Dockerfile starts with one. Berth's builder is
/// the frontend for Docker's own `docker/dockerfile` images; any other is refused.
pub fn check_syntax(text: &str) -> Result<(), BuildKitError> {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let Some(directive) = l.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        if !key.trim().eq_ignore_ascii_case("syntax") {
            continue;
        }
        let image = value.trim();
        let repo = image.split(['@', ':']).next().unwrap_or_default();
        let repo = repo.trim_start_matches("docker.io/");
        if repo == "docker/dockerfile" || repo == "docker/dockerfile-upstream" {
            return Ok(());
        }
        return Err(BuildKitError::Unsupported(format!(
            "frontend image {image:?} (# syntax=) is not supported by Berth: only docker/dockerfile, which Berth builds with its own frontend"
        )));
    }
    Ok(())
}

/// A scratch directory removed when the build is over, however it ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fetches one directory of the session, as one vertex.
async fn fetch(
    reporter: &mut Reporter<'_>,
    name: &str,
    session: &Session,
    want: &Want,
    dest: &Path,
) -> Result<filesync::Fetched, BuildKitError> {
    std::fs::create_dir_all(dest)
        .map_err(BuildKitError::io(format!("creating {}", dest.display())))?;
    let step = reporter.start(name);
    let t = std::time::Instant::now();
    let fetched = filesync::fetch(session, want, dest).await;
    tracing::debug!(dir = %want.dir_name, ms = crate::clock::ms(t.elapsed()), "session files fetched");
    match &fetched {
        Ok(f) => {
            reporter.status(
                &step,
                &format!("transferring {}: {}B", want.dir_name, f.bytes),
            );
            reporter.complete(step, None);
        }
        Err(e) => reporter.complete(step, Some(&e.to_string())),
    }
    fetched
}

/// Solves the `dockerfile.v0` frontend for a job: the image it builds.
pub async fn solve(
    engine: &Arc<Engine>,
    job: &Job,
    frontend: &str,
    opts: &HashMap<String, String>,
) -> Result<Built, BuildKitError> {
    if frontend != "dockerfile.v0" {
        return Err(BuildKitError::Unsupported(format!(
            "frontend {frontend:?} is not supported by Berth: it builds Dockerfiles (dockerfile.v0)"
        )));
    }
    // Keys only: build-arg values are the user's.
    let mut keys: Vec<&str> = opts.keys().map(String::as_str).collect();
    keys.sort_unstable();
    tracing::debug!(?keys, "dockerfile.v0 frontend attributes");
    let attrs = Attrs::parse(opts)?;
    engine
        .build_history
        .requested(&job.id, attrs.history_request());
    // The engine's own platform only: other architectures' images run through
    // the VM's emulators, but the builder does not target them yet.
    let own = engine.images.platform();
    for p in &attrs.platforms {
        if crate::images::Platform::parse(p)? != *own {
            return Err(BuildKitError::Unsupported(format!(
                "building for {p} is not supported by Berth yet: it builds for {own} \
                 (it can run {p} images with `docker run --platform {p}` where an emulator is registered)"
            )));
        }
    }
    let session_id = job.session().await?;
    let session = engine.buildkit.sessions.get(&session_id).await?;
    let root = engine
        .config
        .root
        .join("build-tmp")
        .join(format!("bk-{:016x}", rand::random::<u64>()));
    let scratch = Scratch(root.clone());
    let mut reporter = Reporter::new(job);

    // As BuildKit's Dockerfile frontend asks: the Dockerfile and its own ignore
    // file from the `dockerfile` directory, `.dockerignore` from the context only
    // when there is no such file, then the context without what it excludes.
    let df_dir = scratch.0.join("dockerfile");
    let ignore_file = format!("{}.dockerignore", attrs.filename);
    let want = Want {
        dir_name: attrs.dockerfile_key.clone(),
        follow: vec![attrs.filename.clone(), ignore_file.clone()],
        ..Default::default()
    };
    let name = format!("[internal] load build definition from {}", attrs.filename);
    fetch(&mut reporter, &name, &session, &want, &df_dir).await?;
    let df_path = df_dir.join(&attrs.filename);
    let text = std::fs::read_to_string(&df_path).map_err(|_| {
        BuildKitError::Invalid(format!(
            "failed to read dockerfile: open {}: no such file or directory",
            attrs.filename
        ))
    })?;
    check_syntax(&text)?;

    let ctx = scratch.0.join("context");
    let ignore = match std::fs::read_to_string(df_dir.join(&ignore_file)) {
        Ok(t) => t,
        Err(_) => {
            let want = Want {
                dir_name: attrs.context_key.clone(),
                follow: vec![".dockerignore".into()],
                ..Default::default()
            };
            let dir = scratch.0.join("dockerignore");
            fetch(
                &mut reporter,
                "[internal] load .dockerignore",
                &session,
                &want,
                &dir,
            )
            .await?;
            std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default()
        }
    };

    let instructions = crate::build::dockerfile::parse(&text).map_err(BuildError::from)?;
    let mut plan =
        crate::build::stages::plan(&instructions, &attrs.build_args, attrs.target.as_deref())
            .map_err(BuildError::from)?;
    plan.use_contexts(|n| attrs.contexts.contains_key(n));
    let mut bases: Vec<&str> = Vec::new();
    for i in plan.needed() {
        if let Some(base) = plan.stages[i].image().filter(|b| !bases.contains(b)) {
            bases.push(base);
            let r = ImageRef::parse(base)?;
            let shown = format!("{}:{}", r.full_name(), r.tag().unwrap_or("latest"));
            let name = format!("[internal] load metadata for {shown}");
            reporter
                .step(&name, ensure_base(engine, &session, &r))
                .await?;
        }
    }

    let want = Want {
        dir_name: attrs.context_key.clone(),
        exclude: crate::build::context::ignore_patterns(&ignore),
        ..Default::default()
    };
    fetch(
        &mut reporter,
        "[internal] load build context",
        &session,
        &want,
        &ctx,
    )
    .await?;

    let mut contexts = HashMap::new();
    for name in used_contexts(&plan) {
        let Some(spec) = attrs.contexts.get(&name) else {
            continue;
        };
        let dir = scratch
            .0
            .join("contexts")
            .join(format!("{}", contexts.len()));
        let c = named_context(engine, &mut reporter, &session, &name, spec, &dir).await?;
        contexts.insert(name, c);
    }

    let secrets = secrets(&session, &plan, &attrs.build_args).await?;
    let ssh_ids = crate::build::mounts::ssh_ids(needed_runs(&plan), &attrs.build_args);
    let ssh = super::ssh::agents(&session, ssh_ids).await;
    let req = BuildRequest {
        context: ctx,
        dockerfile: df_path.to_string_lossy().into_owned(),
        build_args: attrs.build_args,
        labels: attrs.labels,
        cache: engine.build_cache(),
        no_cache: attrs.no_cache,
        target: attrs.target,
        buildkit: true,
        secrets,
        run: attrs.run,
        contexts,
        ssh,
        removals: Default::default(),
        cache_from: None,
    };
    let image = run(engine, req, &mut reporter).await?;
    drop(scratch);
    let (_, cfg) = engine.images.config(&image)?;
    Ok(Built {
        image,
        config: serde_json::to_vec(&*cfg).unwrap_or_default(),
    })
}

/// The named contexts the needed stages read: as FROM, `COPY --from` or a RUN mount's
/// `from=`.
fn used_contexts(plan: &crate::build::stages::BuildPlan) -> Vec<String> {
    use crate::build::stages::Source;
    let mut out: Vec<String> = Vec::new();
    for i in plan.needed() {
        let stage = &plan.stages[i];
        for s in std::iter::once(&stage.base).chain(&stage.copy_from) {
            if let Source::Context(name) = s {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
    }
    out
}

/// Makes a named context readable by the build: an image (pulled if the store lacks
/// it, as a base would be) or a client directory fetched from the session into `dir`
/// without what its own `.dockerignore` excludes, as BuildKit's frontend does.
async fn named_context(
    engine: &Arc<Engine>,
    reporter: &mut Reporter<'_>,
    session: &Session,
    name: &str,
    spec: &str,
    dir: &Path,
) -> Result<NamedContext, BuildKitError> {
    if let Some(reference) = spec.strip_prefix("docker-image://") {
        let r = ImageRef::parse(reference)?;
        let label = format!("[context {name}] load metadata for {r}");
        reporter
            .step(&label, ensure_base(engine, session, &r))
            .await?;
        return Ok(NamedContext::Image(engine.images.resolve(&r.to_string())?));
    }
    let Some(local) = spec.strip_prefix("local:") else {
        return Err(BuildKitError::Unsupported(format!(
            "named context {name}={spec}: Berth takes local directories and docker-image:// references"
        )));
    };
    let want = Want {
        dir_name: local.to_string(),
        follow: vec![".dockerignore".into()],
        ..Default::default()
    };
    let ignore_dir = dir.with_extension("dockerignore");
    let label = format!("[context {name}] load .dockerignore");
    fetch(reporter, &label, session, &want, &ignore_dir).await?;
    let ignore = std::fs::read_to_string(ignore_dir.join(".dockerignore")).unwrap_or_default();
    let want = Want {
        dir_name: local.to_string(),
        exclude: crate::build::context::ignore_patterns(&ignore),
        ..Default::default()
    };
    let label = format!("[context {name}] load from client");
    fetch(reporter, &label, session, &want, dir).await?;
    Ok(NamedContext::Dir(dir.to_path_buf()))
}

/// A base image the store lacks is pulled, as dockerd's BuildKit does, with the
/// credentials the client's session has for its registry.
async fn ensure_base(
    engine: &Arc<Engine>,
    session: &Session,
    r: &ImageRef,
) -> Result<(), BuildKitError> {
    if engine.images.resolve(&r.to_string()).is_ok() {
        return Ok(());
    }
    let creds = credentials(session, r.registry()).await;
    Ok(engine.images.pull_quietly(r, &creds).await?)
}

/// The client's credentials for a registry, through its session's Auth service
/// (anonymous when it has none).
pub(super) async fn credentials(session: &Session, registry: &str) -> RegistryCredentials {
    use bollard_buildkit_proto::moby::filesync::v1::{auth_client::AuthClient, CredentialsRequest};
    if !session.serves("/moby.filesync.v1.Auth/Credentials") {
        return RegistryCredentials::default();
    }
    let host = if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    };
    let mut client = AuthClient::with_origin(session.clone(), Session::origin());
    match client
        .credentials(CredentialsRequest {
            host: host.to_string(),
        })
        .await
    {
        Ok(resp) => {
            let c = resp.into_inner();
            if c.username.is_empty() && c.secret.is_empty() {
                RegistryCredentials::default()
            } else if c.username.is_empty() {
                RegistryCredentials {
                    registry_token: Some(c.secret),
                    ..Default::default()
                }
            } else {
                RegistryCredentials {
                    username: Some(c.username),
                    password: Some(c.secret),
                    registry_token: None,
                }
            }
        }
        Err(_) => RegistryCredentials::default(),
    }
}

/// The RUN lines of the stages the build runs, after their keyword.
fn needed_runs(plan: &crate::build::stages::BuildPlan) -> impl Iterator<Item = &str> {
    plan.needed()
        .into_iter()
        .flat_map(|i| plan.stages[i].steps.iter())
        .filter(|s| s.keyword == "RUN")
        .map(|s| s.rest.as_str())
}

/// The values of the secrets the needed stages' RUN lines mount, from the client's
/// Secrets service; one it does not have is left out (an error later only for a
/// `required` mount, as in BuildKit).
async fn secrets(
    session: &Session,
    plan: &crate::build::stages::BuildPlan,
    build_args: &HashMap<String, String>,
) -> Result<Secrets, BuildKitError> {
    use bollard_buildkit_proto::moby::buildkit::secrets::v1::{
        secrets_client::SecretsClient, GetSecretRequest,
    };
    let mut out = Secrets::default();
    let wanted = crate::build::mounts::secret_ids(needed_runs(plan), build_args);
    if wanted.is_empty() || !session.serves("/moby.buildkit.secrets.v1.Secrets/GetSecret") {
        return Ok(out);
    }
    let mut client = SecretsClient::with_origin(session.clone(), Session::origin());
    for (id, _) in wanted {
        let asked = GetSecretRequest {
            id: id.clone(),
            annotations: Default::default(),
        };
        match client.get_secret(asked).await {
            Ok(resp) => out.insert(id, resp.into_inner().data),
            Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::Unimplemented) => {}
            Err(s) => return Err(BuildKitError::session("Secrets.GetSecret", &s)),
        }
    }
    Ok(out)
}

/// Runs the build, its steps reported as vertexes; a failure fails the step it
/// happened in.
pub async fn run(
    engine: &Arc<Engine>,
    req: BuildRequest,
    reporter: &mut Reporter<'_>,
) -> Result<String, BuildKitError> {
    let (tx, mut rx) = mpsc::channel::<Output>(256);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            crate::build::build(&engine.images, &engine.containers, req, &tx).await
        })
    };
    let mut steps = StepVertexes::default();
    while let Some(o) = rx.recv().await {
        if let Output::Step(e) = o {
            steps.on(reporter, e);
        }
    }
    let outcome = match worker.await {
        Ok(r) => r.map_err(|e| match e {
            BuildError::RunFailed { command, code } => BuildKitError::Invalid(format!(
                "process \"{command}\" did not complete successfully: exit code: {code}"
            )),
            other => BuildKitError::Build(other),
        }),
        Err(e) => Err(BuildKitError::Invalid(format!("the build stopped: {e}"))),
    };
    let err = outcome.as_ref().err().map(ToString::to_string);
    steps.end(reporter, err.as_deref());
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_map_to_the_build_request() {
        let opts: HashMap<String, String> = [
            ("filename", "sub/Dockerfile.dev"),
            ("target", "Build"),
            ("build-arg:V", "1"),
            ("label:org.x", "y"),
            ("no-cache", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let a = Attrs::parse(&opts).unwrap();
        assert_eq!(a.filename, "Dockerfile.dev");
        assert_eq!(a.target.as_deref(), Some("build"));
        assert_eq!(a.build_args.get("V").map(String::as_str), Some("1"));
        assert_eq!(a.labels.get("org.x").map(String::as_str), Some("y"));
        assert!(a.no_cache);
        assert_eq!(a.context_key, "context");
        // The history keeps enough to run it again.
        let r = a.history_request();
        assert_eq!(r.build_args, ["V"]);
        assert_eq!(r.build_arg_values["V"], "1");
        assert_eq!(r.labels["org.x"], "y");
        assert_eq!(
            (r.dockerfile.as_str(), r.target.as_deref(), r.no_cache),
            ("Dockerfile.dev", Some("build"), true)
        );
    }

    #[test]
    fn named_contexts_are_kept_by_name() {
        let opts = HashMap::from([
            ("context:base".to_string(), "docker-image://x".to_string()),
            (
                "context:src::linux/amd64".to_string(),
                "local:src".to_string(),
            ),
        ]);
        let a = Attrs::parse(&opts).unwrap();
        assert_eq!(a.contexts["base"], "docker-image://x");
        assert_eq!(a.contexts["src"], "local:src");
    }

    #[test]
    fn syntax_lines_accept_docker_dockerfile_only() {
        assert!(check_syntax("# syntax=docker/dockerfile:1\nFROM x\n").is_ok());
        assert!(check_syntax("# syntax=docker.io/docker/dockerfile:1.7@sha256:ab\nFROM x").is_ok());
        assert!(check_syntax("FROM x\n# syntax=other/frontend\n").is_ok());
        let e = check_syntax("# syntax = tonistiigi/hello\nFROM x").unwrap_err();
        assert!(e.to_string().contains("tonistiigi/hello"), "{e}");
    }

    #[test]
    fn dockerignore_lines_become_exclude_patterns() {
        let p = crate::build::context::ignore_patterns(
            "# comment\n\nnode_modules\n/build\n!build/keep\n  *.log  \n",
        );
        assert_eq!(p, ["node_modules", "build", "!build/keep", "*.log"]);
    }

    #[test]
    fn ulimits_as_buildkit_lists_them() {
        let u = parse_ulimits("nofile=1024:2048, nproc=512").unwrap();
        let got: Vec<_> = u
            .iter()
            .map(|l| (l.name.clone().unwrap(), l.soft.unwrap(), l.hard.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("nofile".to_string(), 1024, 2048),
                ("nproc".to_string(), 512, 512)
            ]
        );
        for bad in ["bogus=1", "nofile", "nofile=2:1", "nofile=x"] {
            assert!(parse_ulimits(bad).is_err(), "{bad}");
        }
        assert!(parse_ulimits("").unwrap().is_empty());
    }
}
