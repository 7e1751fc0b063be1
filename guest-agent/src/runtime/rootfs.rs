//! A container's root filesystem: the image's layers stacked read-only by overlayfs
//! under the container's own writable upper directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Where a container's filesystem pieces live, under its directory.
pub struct RootfsDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl RootfsDirs {
    pub fn under(dir: &Path) -> RootfsDirs {
        RootfsDirs {
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
        }
    }
}

/// The overlay mount options; `lower` is lowest layer first, as images list them.
///
/// A layer may appear more than once in an image (the same empty or identical diff
/// committed twice); overlayfs refuses a lower directory listed twice (ELOOP), so
/// only its topmost occurrence is kept. That gives the same merged tree: the top
/// copy re-applies every file, whiteout and opaque directory the lower copy has, over
/// everything beneath it.
pub fn overlay_options(lower: &[PathBuf], d: &RootfsDirs) -> String {
    let mut seen = std::collections::HashSet::new();
    let lowerdir: Vec<String> = lower
        .iter()
        .rev()
        .filter(|p| seen.insert(*p))
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        d.upper.display(),
        d.work.display()
    )
}

/// Mounts the overlay at `d.merged`.
pub fn mount_overlay(lower: &[PathBuf], d: &RootfsDirs) -> io::Result<()> {
    for p in [&d.upper, &d.work, &d.merged] {
        fs::create_dir_all(p)?;
    }
    // An image with no layers (built `FROM scratch`): overlayfs needs a lower
    // directory, so an empty one beside the container's stands in.
    let empty;
    let lower = if lower.is_empty() {
        empty = [d.work.with_file_name("empty-lower")];
        fs::create_dir_all(&empty[0])?;
        &empty[..]
    } else {
        lower
    };
    let opts = overlay_options(lower, d);
    mount(
        Some("overlay"),
        &d.merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// Detaches the overlay; "not mounted" is fine.
pub fn unmount(d: &RootfsDirs) -> io::Result<()> {
    match umount2(&d.merged, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_top_layer_first() {
        let d = RootfsDirs::under(Path::new("/c"));
        let o = overlay_options(&["/l/0".into(), "/l/1".into()], &d);
        assert_eq!(o, "lowerdir=/l/1:/l/0,upperdir=/c/upper,workdir=/c/work");
    }

    #[test]
    fn a_layer_listed_twice_is_mounted_once_at_its_top_position() {
        let d = RootfsDirs::under(Path::new("/c"));
        let layers: Vec<PathBuf> = ["/l/e", "/l/a", "/l/e", "/l/b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let o = overlay_options(&layers, &d);
        assert_eq!(
            o,
            "lowerdir=/l/b:/l/e:/l/a,upperdir=/c/upper,workdir=/c/work"
        );
    }
}
