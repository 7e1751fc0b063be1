//! Unpacking one layer tar into a directory that overlayfs can use as a lower layer.
//!
//! The `tar` crate's own `unpack` turns device nodes and FIFOs into regular files, knows
//! nothing of whiteouts and follows symlinks it created earlier in the same archive, so we
//! iterate entries ourselves and create each one with the exact syscall it needs.
//!
//! Safety rules, checked for every entry before anything is written:
//! - paths are cleaned lexically; `..` that climbs above the layer root is refused;
//!   absolute paths are taken relative to the layer root (as dockerd does);
//! - no entry is ever written *through* a symlink: if any parent component of the target
//!   is a symlink the layer is refused, so `evil -> /etc` followed by `evil/passwd` cannot
//!   escape;
//! - hardlink targets obey the same two rules and must already exist inside the layer.
//!
//! Whiteouts become what overlayfs expects: `.wh.NAME` → a 0:0 character device `NAME`,
//! `.wh..wh..opq` → the xattr `trusted.overlay.opaque=y` on the directory.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("invalid layer: path {path:?} escapes the layer root")]
    PathEscape { path: String },
    #[error("invalid layer: {path:?} would be written through the symlink {via:?}")]
    ThroughSymlink { path: String, via: String },
    #[error("invalid layer: hardlink {path:?} points to {target:?}, which is outside the layer or missing")]
    BadHardlink { path: String, target: String },
    #[error("invalid layer: whiteout {path:?} names no file of its directory")]
    BadWhiteout { path: String },
    #[error("invalid layer: unsupported entry type for {path:?}")]
    Unsupported { path: String },
    #[error("reading layer: {0}")]
    Read(#[source] io::Error),
    #[error("writing {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What an unpack produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    /// Sum of regular file and symlink sizes: what dockerd reports as the layer's size.
    pub size: u64,
    pub entries: u64,
}

fn wr<T>(path: &Path, r: io::Result<T>) -> Result<T, UnpackError> {
    r.map_err(|source| UnpackError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Cleans `raw` lexically into a path relative to the layer root.
/// Returns `None` for the root itself.
pub fn clean_entry_path(raw: &Path) -> Result<Option<PathBuf>, UnpackError> {
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in raw.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(UnpackError::PathEscape {
                        path: raw.to_string_lossy().into_owned(),
                    });
                }
            }
            Component::Normal(p) => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.iter().collect()))
}

/// Refuses when any existing parent of `rel` (inside `root`) is a symlink, and creates
/// missing parents as 0755 directories.
fn prepare_parents(root: &Path, rel: &Path) -> Result<(), UnpackError> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink {
                    path: rel.to_string_lossy().into_owned(),
                    via: cur
                        .strip_prefix(root)
                        .unwrap_or(&cur)
                        .to_string_lossy()
                        .into_owned(),
                });
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                // A non-directory where a directory is needed: a later entry replaces it.
                wr(&cur, fs::remove_file(&cur))?;
                wr(&cur, fs::create_dir(&cur))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                wr(&cur, fs::create_dir(&cur))?;
                wr(
                    &cur,
                    fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)),
                )?;
            }
            Err(e) => return Err(wr::<()>(&cur, Err(e)).unwrap_err()),
        }
    }
    Ok(())
}

/// Removes whatever is at `path` so a new entry can take its place; a directory that is
/// about to be replaced by a directory is kept (tar semantics: metadata is updated).
fn clear_target(path: &Path, keep_dir: bool) -> Result<(), UnpackError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if !keep_dir {
                wr(path, fs::remove_dir_all(path))?;
            }
        }
        Ok(_) => wr(path, fs::remove_file(path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(wr::<()>(path, Err(e)).unwrap_err()),
    }
    Ok(())
}

/// Unpacks the tar stream `reader` into `dest` (an existing, empty directory).
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    unpack(reader, dest, true)
}

/// Unpacks an ordinary tar (e.g. `docker cp` into a container): the same escape rules,
/// but `.wh.` names are just files.
pub fn unpack_plain<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    unpack(reader, dest, false)
}

fn unpack<R: Read>(reader: R, dest: &Path, whiteouts: bool) -> Result<UnpackStats, UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    // Directory times are set last: creating children changes them.
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let entries = archive.entries().map_err(UnpackError::Read)?;
    for entry in entries {
        let mut entry = entry.map_err(UnpackError::Read)?;
        stats.entries += 1;
        let raw_path = entry.path().map_err(UnpackError::Read)?.into_owned();
        let Some(rel) = clean_entry_path(&raw_path)? else {
            continue; // "./" itself
        };
        prepare_parents(dest, &rel)?;
        let target = dest.join(&rel);
        let name = rel.file_name().map(OsStrExt::as_bytes).unwrap_or_default();

        if whiteouts && name == OPAQUE_WHITEOUT.as_bytes() {
            let dir = target.parent().unwrap_or(dest);
            wr(dir, xattr::set(dir, "trusted.overlay.opaque", b"y"))?;
            continue;
        }
        if let Some(hidden) = name
            .strip_prefix(WHITEOUT_PREFIX.as_bytes())
            .filter(|_| whiteouts)
        {
            // `.wh.`, `.wh..` and `.wh...` would name the directory itself or its
            // parent: removing that deletes the layer root or what lies above it.
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(UnpackError::BadWhiteout {
                    path: raw_path.to_string_lossy().into_owned(),
                });
            }
            let victim = target.with_file_name(OsStr::from_bytes(hidden));
            clear_target(&victim, false)?;
            wr(
                &victim,
                mknod(&victim, SFlag::S_IFCHR, Mode::empty(), 0).map_err(nix_io),
            )?;
            continue;
        }

        let header = entry.header().clone();
        let kind = header.entry_type();
        // Writers disagree on empty numeric fields; treat them as zero like GNU tar.
        let default_mode = if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        };
        let mode = header.mode().unwrap_or(default_mode) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let xattrs = pax_xattrs(&mut entry)?;

        match kind {
            tar::EntryType::Directory => {
                clear_target(&target, true)?;
                if !target.is_dir() {
                    wr(&target, fs::create_dir(&target))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                clear_target(&target, false)?;
                let mut f = wr(&target, fs::File::create(&target))?;
                let n = wr(&target, io::copy(&mut entry, &mut f))?;
                stats.size += n;
            }
            tar::EntryType::Symlink => {
                let link = link_name(&entry, &rel)?;
                clear_target(&target, false)?;
                wr(&target, symlink(&link, &target))?;
                // dockerd's layer size counts a symlink's length, as lstat reports it.
                stats.size += link.as_os_str().len() as u64;
            }
            tar::EntryType::Link => {
                let link = link_name(&entry, &rel)?;
                let bad = || UnpackError::BadHardlink {
                    path: rel.to_string_lossy().into_owned(),
                    target: link.to_string_lossy().into_owned(),
                };
                let link_rel = clean_entry_path(&link)
                    .map_err(|_| bad())?
                    .ok_or_else(bad)?;
                prepare_parents(dest, &link_rel).map_err(|_| bad())?;
                let source = dest.join(&link_rel);
                let meta = fs::symlink_metadata(&source).map_err(|_| bad())?;
                if meta.is_dir() {
                    return Err(bad());
                }
                clear_target(&target, false)?;
                wr(&target, fs::hard_link(&source, &target))?;
                continue; // a hardlink shares the inode: no metadata of its own
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0) as u64;
                let minor = header.device_minor().ok().flatten().unwrap_or(0) as u64;
                let flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                clear_target(&target, false)?;
                let dev = nix::sys::stat::makedev(major, minor);
                wr(
                    &target,
                    mknod(&target, flag, Mode::from_bits_truncate(mode), dev).map_err(nix_io),
                )?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => {
                return Err(UnpackError::Unsupported {
                    path: rel.to_string_lossy().into_owned(),
                })
            }
        }

        let is_symlink = kind == tar::EntryType::Symlink;
        wr(
            &target,
            nix::unistd::fchownat(
                None,
                &target,
                Some(Uid::from_raw(uid as u32)),
                Some(Gid::from_raw(gid as u32)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(nix_io),
        )?;
        for (key, value) in &xattrs {
            // Symlinks cannot carry user xattrs; anything else the kernel refuses is fatal.
            wr(&target, xattr::set(&target, key, value))?;
        }
        if !is_symlink {
            // After chown: chown clears setuid/setgid bits.
            wr(
                &target,
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)),
            )?;
        }
        if kind == tar::EntryType::Directory {
            dir_times.push((target, mtime));
        } else {
            set_mtime(&target, mtime)?;
        }
    }
    for (dir, mtime) in dir_times.iter().rev() {
        set_mtime(dir, *mtime)?;
    }
    Ok(stats)
}

fn pax_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Read)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Read)?;
            if let Ok(key) = ext.key() {
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn set_mtime(path: &Path, secs: i64) -> Result<(), UnpackError> {
    let t = TimeSpec::new(secs, 0);
    wr(
        path,
        nix::sys::stat::utimensat(
            None,
            path,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(nix_io),
    )
}

/// A link entry's target; a link without one is not a layer we can apply.
fn link_name<R: io::Read>(
    entry: &tar::Entry<'_, R>,
    rel: &Path,
) -> Result<std::path::PathBuf, UnpackError> {
    entry
        .link_name()
        .map_err(UnpackError::Read)?
        .map(|l| l.into_owned())
        .ok_or_else(|| UnpackError::Unsupported {
            path: rel.to_string_lossy().into_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths_lexically() {
        assert_eq!(
            clean_entry_path(Path::new("/etc/passwd")).unwrap(),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(
            clean_entry_path(Path::new("./a/../b/./c")).unwrap(),
            Some(PathBuf::from("b/c"))
        );
        assert_eq!(clean_entry_path(Path::new("./")).unwrap(), None);
        assert!(matches!(
            clean_entry_path(Path::new("a/../../x")),
            Err(UnpackError::PathEscape { .. })
        ));
        assert!(matches!(
            clean_entry_path(Path::new("../etc/passwd")),
            Err(UnpackError::PathEscape { .. })
        ));
    }

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file_header(path: &str, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        h
    }

    #[test]
    fn refuses_writing_through_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let data = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "evil", outside.path()).unwrap();
            let h = file_header("evil/pwned", 3);
            b.append(&h, &b"abc"[..]).unwrap();
        });
        let err = unpack_layer(&data[..], dir.path()).unwrap_err();
        assert!(matches!(err, UnpackError::ThroughSymlink { .. }), "{err}");
        assert!(!outside.path().join("pwned").exists());
    }

    #[test]
    fn refuses_hardlink_outside() {
        let dir = tempfile::tempdir().unwrap();
        let data = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            // set_link_name refuses `..`; write the raw bytes the way an attacker would.
            let name = b"../../../etc/shadow";
            h.as_old_mut().linkname[..name.len()].copy_from_slice(name);
            h.set_path("hl").unwrap();
            h.set_cksum();
            b.append(&h, io::empty()).unwrap();
        });
        let err = unpack_layer(&data[..], dir.path()).unwrap_err();
        assert!(matches!(err, UnpackError::BadHardlink { .. }), "{err}");
    }

    /// Found by the `layer_unpack` fuzz target: `.wh.` removed the layer root, and
    /// `.wh...` at the top removed everything beside the layer.
    #[test]
    fn refuses_whiteouts_of_the_directory_itself() {
        for name in [".wh.", "sub/.wh..", ".wh...", "sub/.wh..."] {
            let base = tempfile::tempdir().unwrap();
            let dir = base.path().join("layer");
            fs::create_dir(&dir).unwrap();
            fs::write(base.path().join("sibling"), b"keep").unwrap();
            let data = tar_with(|b| {
                let h = file_header("sub/file", 1);
                b.append(&h, &b"x"[..]).unwrap();
                let h = file_header(name, 0);
                b.append(&h, io::empty()).unwrap();
            });
            let err = unpack_layer(&data[..], &dir).unwrap_err();
            assert!(
                matches!(err, UnpackError::BadWhiteout { .. }),
                "{name}: {err}"
            );
            assert!(dir.join("sub/file").is_file(), "{name}");
            assert_eq!(fs::read(base.path().join("sibling")).unwrap(), b"keep");
        }
        // In a plain tar (`docker cp`) such names are ordinary files.
        let dir = tempfile::tempdir().unwrap();
        let data = tar_with(|b| {
            let h = file_header(".wh.", 1);
            b.append(&h, &b"x"[..]).unwrap();
        });
        unpack_plain(&data[..], dir.path()).unwrap();
        assert!(dir.path().join(".wh.").is_file());
    }

    #[test]
    fn unpacks_files_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let data = tar_with(|b| {
            let h = file_header("bin/tool", 5);
            b.append(&h, &b"hello"[..]).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "bin/sh", "/bin/tool").unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            b.append_link(&mut h, "bin/tool2", "bin/tool").unwrap();
        });
        let stats = unpack_layer(&data[..], dir.path()).unwrap();
        assert_eq!(stats.size, 5 + "/bin/tool".len() as u64);
        assert_eq!(fs::read(dir.path().join("bin/tool2")).unwrap(), b"hello");
        assert_eq!(
            fs::read_link(dir.path().join("bin/sh")).unwrap(),
            PathBuf::from("/bin/tool")
        );
    }
}
