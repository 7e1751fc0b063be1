//! Files from elsewhere than the build context — another stage's or an image's
//! filesystem — copied out into scratch directories that go when dropped; what COPY
//! --from and `RUN --mount=from=` read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard_stubs::models::ContainerCreateBody;

use super::BuildError;
use crate::containers::{ContainerError, ContainerService};
use crate::images::ImageService;

/// The image a `--from=` names: an earlier stage by name or index, else an image.
pub(super) fn stage_or_image(
    images: &ImageService,
    stages: &[(Option<String>, String)],
    f: &str,
    line: usize,
) -> Result<String, BuildError> {
    stages
        .iter()
        .enumerate()
        .find(|(i, (n, _))| n.as_deref() == Some(f.to_lowercase().as_str()) || i.to_string() == f)
        .map(|(_, (_, id))| id.clone())
        .or_else(|| images.resolve(f).ok())
        .ok_or_else(|| {
            BuildError::Invalid(format!(
                "line {line}: invalid from flag value {f}: no such stage or image"
            ))
        })
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
