//! What a RUN's `--mount`s become for the step's container — bind mounts of the
//! context, of a stage's files, of a cache directory kept between builds, of a secret
//! written to a private tmpfs file, and tmpfs mounts — and, once the step is done,
//! the mountpoints the runtime had to create taken back out of its layer, so that
//! nothing of a mount is committed (as BuildKit leaves no trace of one).

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard_stubs::models::{Mount, MountTmpfsOptions, MountType};

use super::agent_socket::{self, AgentSocket};
use super::mounts::{MountKind, Owner, RunFlags};
use super::sources::{copy_tree, extract_from_image, origin, NamedContext, ScratchDir};
use super::{cache, BuildError, BuildRequest};
use crate::containers::ContainerService;
use crate::images::ImageService;

/// Secret values by id for `RUN --mount=type=secret`; their values are never printed.
#[derive(Default, Clone)]
pub struct Secrets(HashMap<String, Vec<u8>>);

impl Secrets {
    pub fn insert(&mut self, id: String, value: Vec<u8>) {
        self.0.insert(id, value);
    }

    fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(Vec::as_slice)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A step's mounts, ready for its container; the scratch files go when it drops.
#[derive(Default)]
pub(super) struct Prepared {
    pub mounts: Vec<Mount>,
    /// `NAME=value` for secrets given as `env=`, and `SSH_AUTH_SOCK`.
    pub env: Vec<String>,
    _scratch: Vec<ScratchDir>,
    _agents: Vec<AgentSocket>,
}

/// What the mounts add to the step's cache key: the content bound from the context,
/// the image bound from a stage. Secrets' values are not part of it (as in BuildKit).
pub(super) fn key_inputs(
    images: &ImageService,
    flags: &RunFlags,
    req: &BuildRequest,
    stages: &[(Option<String>, String)],
    line: usize,
) -> Result<String, BuildError> {
    let mut parts = Vec::new();
    for m in &flags.mounts {
        if let MountKind::Bind { from, source, .. } = &m.kind {
            parts.push(match from {
                None => cache::hash_sources(&[context_path(req, source, line)?])
                    .map_err(|e| BuildError::Invalid(format!("line {line}: {source}: {e}")))?,
                Some(f) => match origin(images, req, stages, f, line)? {
                    NamedContext::Image(id) => id,
                    NamedContext::Dir(dir) => {
                        let path = source_in(&dir, source, line, &format!("context {f}"))?;
                        cache::hash_sources(&[path]).map_err(|e| {
                            BuildError::Invalid(format!("line {line}: {f}: {source}: {e}"))
                        })?
                    }
                },
            });
        }
    }
    Ok(parts.join("\n"))
}

fn context_path(req: &BuildRequest, source: &str, line: usize) -> Result<PathBuf, BuildError> {
    source_in(&req.context, source, line, "the build context")
}

/// A bind mount's `source` in `root` (the context, or a named context's directory,
/// `whence`), which must be there.
fn source_in(root: &Path, source: &str, line: usize, whence: &str) -> Result<PathBuf, BuildError> {
    let p = crate::containers::archive::resolve(root, source, true)
        .map_err(|e| BuildError::Invalid(format!("line {line}: {source}: {e}")))?;
    if !p.exists() {
        return Err(BuildError::Invalid(format!(
            "line {line}: failed to compute cache key: \"{source}\" not found in {whence}"
        )));
    }
    Ok(p)
}

pub(super) async fn prepare(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    flags: &RunFlags,
    req: &BuildRequest,
    stages: &[(Option<String>, String)],
    line: usize,
) -> Result<Prepared, BuildError> {
    let io =
        |what: &str, e: std::io::Error| BuildError::Invalid(format!("line {line}: {what}: {e}"));
    let mut out = Prepared::default();
    for m in &flags.mounts {
        let bind = |source: &Path, read_only: bool| Mount {
            target: Some(m.target.clone()),
            source: Some(source.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(read_only),
            ..Default::default()
        };
        match &m.kind {
            MountKind::Bind { from, source, rw } => {
                // Files bound where they are (the context, a named context's directory),
                // or copied out of a stage or an image into scratch first.
                let found = match from {
                    None => None,
                    Some(f) => Some((f, origin(images, req, stages, f, line)?)),
                };
                let (path, scratch) = match found {
                    None => (context_path(req, source, line)?, None),
                    Some((f, NamedContext::Dir(root))) => (
                        source_in(&root, source, line, &format!("context {f}"))?,
                        None,
                    ),
                    Some((f, NamedContext::Image(image))) => {
                        let dir = scratch_beside(req, "from");
                        let from = std::slice::from_ref(source);
                        extract_from_image(images, containers, &image, from, &dir.0).await?;
                        let path = dir.0.join(source.trim_start_matches('/'));
                        if !path.exists() {
                            return Err(BuildError::Invalid(format!(
                                "line {line}: --mount from={f}: \"{source}\" not found"
                            )));
                        }
                        (path, Some(dir))
                    }
                };
                // Writes are discarded: files bound where they are get a copy first.
                let (path, scratch) = match scratch {
                    None if *rw => {
                        let dir = scratch_beside(req, "bind");
                        let to = dir.0.join("src");
                        copy_tree(&path, &to).map_err(|e| io("copying the mount's source", e))?;
                        (to, Some(dir))
                    }
                    kept => (path, kept),
                };
                out.mounts.push(bind(&path, !rw));
                out._scratch.extend(scratch);
            }
            MountKind::Cache {
                id,
                readonly,
                owner,
            } => {
                let (dir, created) = req
                    .cache
                    .open_mount(id)
                    .map_err(|e| io("creating the cache mount", e))?;
                if created {
                    own(&dir, owner).map_err(|e| io("creating the cache mount", e))?;
                }
                out.mounts.push(bind(&dir, *readonly));
            }
            MountKind::Tmpfs { size } => out.mounts.push(Mount {
                target: Some(m.target.clone()),
                typ: Some(MountType::TMPFS),
                tmpfs_options: size.map(|s| MountTmpfsOptions {
                    size_bytes: i64::try_from(s).ok(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            MountKind::Secret {
                id,
                required,
                owner,
                env,
            } => {
                let Some(value) = req.secrets.get(id) else {
                    if *required {
                        return Err(BuildError::Invalid(format!(
                            "line {line}: secret {id}: not found"
                        )));
                    }
                    continue;
                };
                if let Some(name) = env {
                    out.env
                        .push(format!("{name}={}", String::from_utf8_lossy(value)));
                }
                if !m.target.is_empty() {
                    let dir = secret_dir().map_err(|e| io("storing the secret", e))?;
                    let file = dir.0.join("secret");
                    std::fs::write(&file, value).map_err(|e| io("storing the secret", e))?;
                    own(&file, owner).map_err(|e| io("storing the secret", e))?;
                    out.mounts.push(bind(&file, true));
                    out._scratch.push(dir);
                }
            }
            MountKind::Ssh {
                id,
                required,
                owner,
            } => {
                let Some(agents) = req.ssh.as_ref().filter(|a| a.has(id)) else {
                    if *required {
                        return Err(BuildError::Invalid(format!(
                            "line {line}: no SSH key {id:?} forwarded from the client (--ssh {id})"
                        )));
                    }
                    continue;
                };
                let socket = agent_socket::listen(agents.clone(), id, owner)
                    .map_err(|e| io("opening the SSH agent socket", e))?;
                out.mounts.push(bind(&socket.path, false));
                if out._agents.is_empty() {
                    out.env.push(format!("SSH_AUTH_SOCK={}", m.target));
                }
                out._agents.push(socket);
            }
        }
    }
    Ok(out)
}

fn scratch_beside(req: &BuildRequest, what: &str) -> ScratchDir {
    ScratchDir(
        req.context
            .with_extension(format!("{what}-{:08x}", rand::random::<u32>())),
    )
}

/// A private directory for one secret, in memory (`/dev/shm`) so that its value
/// never reaches a disk, where the system has one.
fn secret_dir() -> std::io::Result<ScratchDir> {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = ScratchDir(base.join(format!("berth-secret-{:016x}", rand::random::<u64>())));
    std::fs::create_dir(&dir.0)?;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

fn own(path: &Path, o: &Owner) -> std::io::Result<()> {
    chown(path, Some(o.uid), Some(o.gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(o.mode))
}

/// The parts of each mount's target that the step's image lacks (so the runtime will
/// create them as mountpoints), deepest first.
pub(super) fn missing_mountpoints(root: &Path, flags: &RunFlags) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in flags.mounts.iter().filter(|m| !m.target.is_empty()) {
        let mut prefix = String::new();
        for part in m.target.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            // Resolved inside the root: an image's symlink must not lead outside it.
            let present = crate::containers::archive::resolve(root, &prefix, false)
                .map(|p| p.symlink_metadata().is_ok())
                .unwrap_or(false);
            if !present && !out.contains(&prefix) {
                out.push(prefix.clone());
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    out
}
