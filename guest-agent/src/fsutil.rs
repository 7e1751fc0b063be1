//! Crash-safe file primitives shared by every store: atomic replace and directory sync.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `data` to `path` so that a crash at any point leaves either the old file or
/// the new one, never a torn mix: temp file in the same directory → fsync → rename →
/// fsync of the directory.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    write_via_temp(path, data, true)
}

/// `atomic_write` without the fsyncs: a crashed engine still leaves the old file or
/// the new one, but a power cut may lose the change. For files nothing needs after a
/// crash, written often on a latency-bound path.
pub fn replace(path: &Path, data: &[u8]) -> io::Result<()> {
    write_via_temp(path, data, false)
}

/// `atomic_write` less the directory sync, for a caller that writes several files into
/// one directory and syncs it once afterwards: the file's bytes are on disk before its
/// name is, so a crash leaves no torn file under the name.
pub fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    write_via_temp_then(path, data, true, false)
}

fn write_via_temp(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    write_via_temp_then(path, data, durable, durable)
}

fn write_via_temp_then(
    path: &Path,
    data: &[u8],
    sync_file: bool,
    sync_parent: bool,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        if sync_file {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)?;
        match sync_parent {
            true => sync_dir(dir),
            false => Ok(()),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or create inside `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Removes a directory tree by first renaming it under `trash` (same filesystem), so a
/// crash mid-delete never leaves a half-deleted tree under its committed name.
pub fn remove_tree_via(path: &Path, trash: &Path) -> io::Result<()> {
    let doomed = trash.join(format!("rm-{:016x}", rand::random::<u64>()));
    match fs::rename(path, &doomed) {
        Ok(()) => fs::remove_dir_all(&doomed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Empties `dir` (leftovers of interrupted work) and makes sure it exists.
pub fn reset_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)
}

/// Bytes held by the files under `root`, as dockerd's `directory.Size` counts them:
/// `lstat` sizes of everything but directories, each hardlinked inode once.
pub fn tree_size(root: &Path) -> u64 {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn tree_size_counts_files_and_links_once() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        fs::write(d.path().join("a"), b"12345").unwrap();
        fs::write(d.path().join("sub/b"), b"123").unwrap();
        fs::hard_link(d.path().join("a"), d.path().join("sub/a2")).unwrap();
        std::os::unix::fs::symlink("a", d.path().join("l")).unwrap();
        assert_eq!(tree_size(d.path()), 5 + 3 + 1);
        assert_eq!(tree_size(&d.path().join("missing")), 0);
    }
}
