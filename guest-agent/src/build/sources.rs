//! Files from elsewhere than the build context — another stage's or an image's
//! filesystem, or a named build context — what COPY --from, `RUN --mount=from=` and a
//! FROM of a named context read. Image files are copied out into scratch directories
//! that go when dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{BuildError, BuildRequest};
use crate::containers::{ContainerError, ContainerService};
use crate::images::ImageService;

/// A named build context (`--build-context NAME=…`) as the build reads it; also what a
/// `--from=` resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// An image in the store, by id (`docker-image://…`, a stage, an image name).
    Image(String),
    /// A directory: a client's local directory, fetched from its session.
    Dir(PathBuf),
}

/// What a `--from=` names: a named context replacing a stage of that name, an earlier
/// stage by name or index, a named context standing for an image, else an image.
pub(super) fn origin(
    images: &ImageService,
    req: &BuildRequest,
    stages: &[(Option<String>, String)],
    f: &str,
    line: usize,
) -> Result<NamedContext, BuildError> {
    let lower = f.to_lowercase();
    let stage = stages
        .iter()
        .enumerate()
        .find(|(i, (n, _))| n.as_deref() == Some(lower.as_str()) || i.to_string() == f);
    if let Some((_, (Some(name), _))) = stage {
        if let Some(c) = req.contexts.get(name) {
            return Ok(c.clone());
        }
    }
    if let Some((_, (_, id))) = stage {
        return Ok(NamedContext::Image(id.clone()));
    }
    if let Some(c) = req.contexts.get(&super::stages::context_key(f)) {
        return Ok(c.clone());
    }
    images.resolve(f).map(NamedContext::Image).map_err(|_| {
        BuildError::Invalid(format!(
            "line {line}: invalid from flag value {f}: no such stage or image"
        ))
    })
}

/// The image a FROM of a named context starts from. A directory becomes a one-layer
/// image on scratch, kept in the cache under its content so a rebuild reuses it.
pub(super) fn context_image(
    images: &ImageService,
    req: &BuildRequest,
    name: &str,
    line: usize,
) -> Result<String, BuildError> {
    let dir = match req.contexts.get(name) {
        Some(NamedContext::Image(id)) => return Ok(id.clone()),
        Some(NamedContext::Dir(dir)) => dir,
        None => {
            return Err(BuildError::Invalid(format!(
                "line {line}: named context {name:?} was not given"
            )))
        }
    };
    let content = super::cache::hash_sources(std::slice::from_ref(dir))
        .map_err(|e| BuildError::Invalid(format!("line {line}: reading context {name}: {e}")))?;
    let key = req.key(&["CONTEXT", &content]);
    if let Some(id) = req.cache.get(&key).filter(|id| images.resolve(id).is_ok()) {
        return Ok(id);
    }
    let scratch = images.scratch()?;
    let commit = crate::images::commit::CommitRequest {
        parent: scratch,
        upper: dir.to_path_buf(),
        config: Default::default(),
        author: None,
        comment: None,
        created_by: format!("context {name}"),
        empty_before: Vec::new(),
        new_layer: true,
        history_comment: req.style().comment(),
        save_later: true,
    };
    let id = tokio::task::block_in_place(|| images.commit(commit))?;
    req.cache.put(&key, &id);
    Ok(id)
}

/// Copies a file or a directory's contents, owned by root as Docker's COPY does.
pub(super) fn copy_tree(src: &Path, to: &Path) -> std::io::Result<()> {
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
pub(super) struct ScratchDir(pub(super) PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `paths` out of `image`'s filesystem into `dir`, keeping their layout.
pub(super) async fn extract_from_image(
    images: &ImageService,
    containers: &Arc<ContainerService>,
    image: &str,
    paths: &[String],
    dir: &Path,
) -> Result<(), BuildError> {
    let layers = images.layer_paths(image)?;
    let view = PathBuf::from(format!("{}-view", dir.display()));
    let (paths, dir) = (paths.to_vec(), dir.to_path_buf());
    let copied = containers
        .with_layers(layers, view, move |root| {
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
    Ok(copied?)
}
