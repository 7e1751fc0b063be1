//! Copy-up: a new, empty volume mounted over a directory the image fills starts with
//! the image's files, as with Docker. Ownership, modes, timestamps, xattrs, symlinks,
//! hardlinks and special files are kept. Nothing is ever followed: symlinks are copied
//! as links and files are opened with `O_NOFOLLOW`, so the copy cannot leave the
//! source tree (the caller resolves the source inside the container's rootfs).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies the directory `src` into `dst` when `dst` is empty; returns whether it
/// copied. The root's owner and mode are copied even when `src` is empty, so
/// `RUN mkdir /data && chown app /data` + `VOLUME /data` gives `app` its volume.
pub fn copy_if_empty(src: &Path, dst: &Path) -> io::Result<bool> {
    let Ok(meta) = fs::symlink_metadata(src) else {
        return Ok(false);
    };
    if !meta.is_dir() || fs::read_dir(dst)?.next().is_some() {
        return Ok(false);
    }
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    copy_meta(&meta, src, dst)?;
    Ok(true)
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &to)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_dir_contents(&from, &to, links)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            let mut r = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&from)?;
            let mut w = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&to)?;
            io::copy(&mut r, &mut w)?;
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_socket() {
                continue; // a socket is only meaningful to the process that bound it
            }
            let kind = if ft.is_fifo() {
                nix::sys::stat::SFlag::S_IFIFO
            } else if ft.is_char_device() {
                nix::sys::stat::SFlag::S_IFCHR
            } else {
                nix::sys::stat::SFlag::S_IFBLK
            };
            nix::sys::stat::mknod(
                &to,
                kind,
                nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        copy_meta(&meta, &from, &to)?;
    }
    Ok(())
}

/// Owner, mode (after the owner: chown clears setuid), xattrs and times; links get only
/// what applies to a link.
fn copy_meta(meta: &fs::Metadata, from: &Path, to: &Path) -> io::Result<()> {
    let link = meta.file_type().is_symlink();
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !link {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        if let Ok(names) = xattr::list(from) {
            for name in names {
                // overlayfs's own bookkeeping is not part of the image's content.
                if name.as_bytes().starts_with(b"trusted.overlay.") {
                    continue;
                }
                if let Ok(Some(v)) = xattr::get(from, &name) {
                    let _ = xattr::set(to, &name, &v);
                }
            }
        }
    }
    let times = [
        libc::timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        libc::timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    ];
    let c = CString::new(to.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `times` holds two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_into_an_empty_volume_only() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let dst = d.path().join("dst");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), b"hello").unwrap();
        fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("escape")).unwrap();
        fs::hard_link(src.join("sub/f"), src.join("h")).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o711)).unwrap();
        fs::create_dir(&dst).unwrap();
        assert!(copy_if_empty(&src, &dst).unwrap());
        assert_eq!(fs::read(dst.join("sub/f")).unwrap(), b"hello");
        let m = fs::metadata(dst.join("sub/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.nlink(), 2);
        // The symlink is copied as a link, never followed.
        assert_eq!(
            fs::read_link(dst.join("escape")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(
            fs::metadata(&dst).unwrap().mode() & 0o7777,
            0o711,
            "the root's mode follows the image's directory"
        );
        // A second copy into the now non-empty volume does nothing.
        fs::write(dst.join("sub/f"), b"changed").unwrap();
        assert!(!copy_if_empty(&src, &dst).unwrap());
        assert_eq!(fs::read(dst.join("sub/f")).unwrap(), b"changed");
    }

    #[test]
    fn missing_source_copies_nothing_empty_source_copies_the_mode() {
        let d = tempfile::tempdir().unwrap();
        let dst = d.path().join("dst");
        fs::create_dir(&dst).unwrap();
        assert!(!copy_if_empty(&d.path().join("nope"), &dst).unwrap());
        fs::create_dir(d.path().join("empty")).unwrap();
        fs::set_permissions(d.path().join("empty"), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(copy_if_empty(&d.path().join("empty"), &dst).unwrap());
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(fs::read_dir(&dst).unwrap().count(), 0);
    }
}
