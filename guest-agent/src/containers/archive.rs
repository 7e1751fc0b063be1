//! `docker cp` and `docker diff`: stat, read and write paths inside a container's root
//! filesystem (its own mount namespace while it runs, its rootfs mounted for the
//! occasion while it does not), and the changes in its own layer.
//! Paths are resolved the way the container sees them: symlinks are followed inside
//! the rootfs (an absolute link target means the container's `/`), never out of it.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::{io_err, ContainerError, ContainerService};
use crate::runtime::rootfs::RootfsDirs;

/// `X-Docker-Container-Path-Stat`, base64 JSON of this.
#[derive(Debug, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits, which the CLI decodes.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

fn not_found(path: &str) -> ContainerError {
    ContainerError::PathNotFound(format!("Could not find the file {path} in container"))
}

/// Resolves `path` (as the container sees it) to a host path under `root`, following
/// symlinks within the root. The last component is not followed when `follow_last` is
/// false (stat of a symlink itself).
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, ContainerError> {
    let mut stack: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            stack.pop();
            continue;
        }
        let candidate: PathBuf = root.join(stack.iter().collect::<PathBuf>()).join(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(ContainerError::InvalidArgument(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate).map_err(|_| not_found(path))?;
                if target.is_absolute() {
                    stack.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => stack.push(part),
        }
    }
    Ok(root.join(stack.iter().collect::<PathBuf>()))
}

/// Go's FileMode for a host file.
fn go_mode(m: &std::fs::Metadata) -> u32 {
    let ft = m.file_type();
    use std::os::unix::fs::FileTypeExt;
    let mut mode = m.mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    }
    if ft.is_symlink() {
        mode |= 1 << 27;
    }
    if ft.is_block_device() {
        mode |= 1 << 26;
    }
    if ft.is_char_device() {
        mode |= (1 << 26) | (1 << 21);
    }
    if ft.is_fifo() {
        mode |= 1 << 25;
    }
    if ft.is_socket() {
        mode |= 1 << 24;
    }
    if m.mode() & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if m.mode() & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if m.mode() & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

pub fn stat(root: &Path, path: &str) -> Result<PathStat, ContainerError> {
    let host = resolve(root, path, false)?;
    let m = std::fs::symlink_metadata(&host).map_err(|_| not_found(path))?;
    let link_target = if m.file_type().is_symlink() {
        std::fs::read_link(&host)
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    Ok(PathStat {
        name,
        size: m.len() as i64,
        mode: go_mode(&m),
        mtime: crate::clock::rfc3339(
            chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32).unwrap_or_default(),
        ),
        link_target,
    })
}

/// Writes a tar of `path` (named by its base name, as `docker cp` expects) to `out`.
pub fn write_tar(root: &Path, path: &str, out: impl Write) -> Result<(), ContainerError> {
    // A symlink is copied as a link, as docker cp does without -L (with -L the CLI asks
    // for the link's target itself).
    let host = resolve(root, path, false)?;
    let m = std::fs::symlink_metadata(&host).map_err(|_| not_found(path))?;
    let base = Path::new(path)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let io = |e: std::io::Error| ContainerError::Io {
        context: format!("archiving {path}"),
        source: e,
    };
    if m.is_dir() {
        b.append_dir_all(&base, &host).map_err(io)?;
    } else {
        b.append_path_with_name(&host, &base).map_err(io)?;
    }
    b.finish().map_err(io)
}

/// `docker export`: the whole filesystem as one tar, paths relative to `/`.
pub fn export(root: &Path, out: impl Write) -> Result<(), ContainerError> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let io = |e: std::io::Error| ContainerError::Io {
        context: "exporting the container".into(),
        source: e,
    };
    for entry in std::fs::read_dir(root).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let path = entry.path();
        // Kernel filesystems are empty mount points in the image; keep them empty.
        let m = std::fs::symlink_metadata(&path).map_err(io)?;
        if m.is_dir() {
            b.append_dir_all(&name, &path).map_err(io)?;
        } else {
            b.append_path_with_name(&path, &name).map_err(io)?;
        }
    }
    b.finish().map_err(io)
}

/// `docker diff`: what the container changed relative to its image, from its upper
/// directory: whiteouts (0:0 char devices) are deletions, paths that exist in a lower
/// layer are changes, the rest additions. Kind 0 = changed, 1 = added, 2 = deleted.
pub fn diff(upper: &Path, layers: &[PathBuf]) -> Vec<(String, u8)> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(upper.join(&rel)) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = rel.join(e.file_name());
            let shown = format!("/{}", child.display());
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.file_type().is_char_device() && m.rdev() == 0 {
                out.push((shown, 2));
                continue;
            }
            if crate::images::difftar::is_stub(&child, &m, upper) {
                continue;
            }
            let in_lower = layers
                .iter()
                .any(|l| l.join(&child).symlink_metadata().is_ok());
            out.push((shown, if in_lower { 0 } else { 1 }));
            if m.is_dir() {
                stack.push(child);
            }
        }
    }
    // Mount points the runtime creates are not the user's changes (dockerd hides its
    // init layer the same way).
    out.retain(|(p, kind)| !(*kind == 1 && matches!(p.as_str(), "/dev" | "/proc" | "/sys")));
    // A directory copied up only to hold those mount points is not a change either.
    let hidden_parent = |p: &str| p == "/etc" && !out.iter().any(|(q, _)| q.starts_with("/etc/"));
    let drop: Vec<String> = out
        .iter()
        .filter(|(p, kind)| *kind == 0 && hidden_parent(p))
        .map(|(p, _)| p.clone())
        .collect();
    out.retain(|(p, _)| !drop.contains(p));
    out.sort();
    out
}

/// Unpacks `tar` into the directory `path` of the container.
pub fn extract(root: &Path, path: &str, tar: &[u8]) -> Result<(), ContainerError> {
    let host = resolve(root, path, true)?;
    let m = std::fs::metadata(&host).map_err(|_| not_found(path))?;
    if !m.is_dir() {
        return Err(ContainerError::InvalidArgument(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    crate::images::unpack::unpack_plain(tar, &host)
        .map_err(|e| ContainerError::InvalidArgument(format!("copying into the container: {e}")))?;
    Ok(())
}

/// Binds each volume and bind mount of a stopped container at its destination under
/// `root` (mount points made as the runtime would make them); returns what was
/// mounted, for unmounting. tmpfs mounts hold nothing while the container is stopped.
fn bind_mounts(
    root: &Path,
    mounts: &[crate::volumes::mounts::ContainerMount],
) -> Result<Vec<PathBuf>, ContainerError> {
    use crate::volumes::mounts::Kind;
    let mut done = Vec::new();
    let mut sorted: Vec<_> = mounts
        .iter()
        .filter(|m| m.kind != Kind::Tmpfs && !m.source.is_empty())
        .collect();
    // Parents before children, as the runtime mounts them.
    sorted.sort_by_key(|m| m.destination.matches('/').count());
    for m in sorted {
        let source = Path::new(&m.source);
        let Ok(meta) = std::fs::metadata(source) else {
            continue; // a bind source that is gone: the path shows the rootfs's
        };
        let target = resolve(root, &m.destination, true)?;
        let made = if meta.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&target)
                        .map(drop)
                })
        };
        use nix::mount::MsFlags;
        let bind = |flags: MsFlags| {
            nix::mount::mount(Some(source), &target, None::<&str>, flags, None::<&str>)
                .map_err(std::io::Error::from)
        };
        let mounted = made.and_then(|()| bind(MsFlags::MS_BIND | MsFlags::MS_REC));
        // A read-only mount stays read-only for `docker cp` too.
        let mounted = match (mounted, m.rw) {
            (Ok(()), false) => {
                let ro = bind(MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY);
                if ro.is_err() {
                    let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
                }
                ro
            }
            (r, _) => r,
        };
        if let Err(e) = mounted {
            for b in done.iter().rev() {
                let _ = nix::mount::umount2(b, nix::mount::MntFlags::MNT_DETACH);
            }
            return Err(ContainerError::Io {
                context: format!("mounting {} for the copy", m.destination),
                source: e,
            });
        }
        done.push(target);
    }
    Ok(done)
}

impl ContainerService {
    /// Runs `f` with the container's root filesystem mounted (temporarily, if the
    /// container is not running), on the blocking pool.
    pub async fn with_rootfs<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, ContainerError> {
        self.with_stopped_root(name, false, f).await
    }

    /// `with_rootfs`, and with `volumes` the container's volumes and bind mounts at
    /// their destinations too while it is not running (as dockerd mounts them for
    /// `docker cp`), so a copy into a created container's volume lands in the volume.
    async fn with_stopped_root<T: Send + 'static>(
        &self,
        name: &str,
        volumes: bool,
        f: impl FnOnce(&Path) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, ContainerError> {
        let rec = self.record(name)?;
        let dir = self.container_dir(&rec.id);
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            let dirs = RootfsDirs::under(&dir);
            let temporary = !rec.running();
            if temporary {
                runtime
                    .mount_rootfs(&rec.layers, &dirs)
                    .map_err(io_err("mounting the container's root filesystem"))?;
            }
            let binds = match temporary && volumes {
                true => bind_mounts(&dirs.merged, &rec.mounts),
                false => Ok(Vec::new()),
            };
            let result = binds.and_then(|binds| {
                let r = f(&dirs.merged);
                for b in binds.iter().rev() {
                    let _ = nix::mount::umount2(b, nix::mount::MntFlags::MNT_DETACH);
                }
                r
            });
            if temporary {
                let _ = runtime.unmount_rootfs(&dirs);
            }
            result
        })
        .await
        .map_err(|e| ContainerError::Io {
            context: "container filesystem access".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// An image's filesystem with no container made for it: its layers overlaid under
    /// `scratch` for as long as `f` runs, then unmounted and removed (writes go with
    /// it). What a build reads another stage's files through (`COPY --from`), without
    /// the records a container would write only to be removed again.
    pub async fn with_layers<T: Send + 'static>(
        &self,
        layers: Vec<PathBuf>,
        scratch: PathBuf,
        f: impl FnOnce(&Path) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, ContainerError> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            let dirs = RootfsDirs::under(&scratch);
            let mounted = runtime
                .mount_rootfs(&layers, &dirs)
                .map_err(io_err("mounting the image's root filesystem"));
            let result = mounted.and_then(|()| f(&dirs.merged));
            let _ = runtime.unmount_rootfs(&dirs);
            let _ = std::fs::remove_dir_all(&scratch);
            result
        })
        .await
        .map_err(|e| ContainerError::Io {
            context: "image filesystem access".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// `docker cp`'s view of the container: a running container is seen through its own
    /// mount namespace (`/proc/<pid>/root`), so copies into volumes, bind mounts and
    /// tmpfs mounts land in them, as with dockerd; a stopped one through its rootfs.
    pub async fn with_view<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<T, ContainerError> + Send + 'static,
    ) -> Result<T, ContainerError> {
        let rec = self.record(name)?;
        let viewed = if rec.running() && rec.state.pid > 0 {
            let root = PathBuf::from(format!("/proc/{}/root", rec.state.pid));
            tokio::task::spawn_blocking(move || f(&root))
                .await
                .map_err(|e| ContainerError::Io {
                    context: "container filesystem access".into(),
                    source: std::io::Error::other(e.to_string()),
                })?
        } else {
            self.with_stopped_root(name, true, f).await
        };
        // dockerd's "Could not find the file PATH in container NAME".
        viewed.map_err(|e| match e {
            ContainerError::PathNotFound(m) => ContainerError::PathNotFound(format!("{m} {name}")),
            other => other,
        })
    }

    /// `docker diff`.
    pub fn diff(&self, name: &str) -> Result<Vec<(String, u8)>, ContainerError> {
        let rec = self.record(name)?;
        let upper = RootfsDirs::under(&self.container_dir(&rec.id)).upper;
        Ok(diff(&upper, &rec.layers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("escape")).unwrap();
        assert_eq!(
            resolve(root, "/link/passwd", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve(root, "/escape", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve(root, "/../../etc", true).unwrap(), root.join("etc"));
        assert_eq!(resolve(root, "/link", false).unwrap(), root.join("link"));
        let s = stat(root, "/link").unwrap();
        assert_eq!(s.link_target, "/etc");
        assert!(s.mode & (1 << 27) != 0);
        assert!(stat(root, "/etc").unwrap().mode & (1 << 31) != 0);
    }
}
