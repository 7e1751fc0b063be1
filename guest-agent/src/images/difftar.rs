//! The tar of a container's changes, as an image layer: its overlayfs upper directory
//! with overlay's whiteouts (0:0 character devices, `trusted.overlay.opaque` dirs)
//! turned back into OCI's (`.wh.<name>`, `.wh..wh..opq`), hardlinks kept as links, and
//! the mount points the runtime creates left out (dockerd keeps those in a separate
//! init layer that is never committed).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Paths the runtime may create in the upper directory as mount points; left out when
/// empty (a file) or when they are directories that hold nothing else.
const RUNTIME_STUBS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "dev",
    "proc",
    "sys",
    ".dockerenv",
];

/// Whether `rel` in `upper` is a mount point the runtime made, not a user change.
pub fn is_stub(rel: &Path, meta: &fs::Metadata, upper: &Path) -> bool {
    let Some(s) = rel.to_str() else { return false };
    if RUNTIME_STUBS.contains(&s) {
        return if meta.is_dir() {
            fs::read_dir(upper.join(rel))
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        } else {
            meta.len() == 0
        };
    }
    // `/etc` itself when it only holds stubs.
    if s == "etc" && meta.is_dir() {
        return fs::read_dir(upper.join(rel))
            .map(|d| {
                d.flatten().all(|e| {
                    let r = rel.join(e.file_name());
                    e.metadata()
                        .map(|m| is_stub(&r, &m, upper))
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false);
    }
    false
}

fn header_for(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// Writes the layer tar of `upper` to `out`, entries in a stable (sorted) order.
pub fn write(upper: &Path, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(upper.join(&dir))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        // Directories are visited after their siblings, depth first, in order.
        let mut subdirs = Vec::new();
        for e in entries {
            let rel = dir.join(e.file_name());
            let path = upper.join(&rel);
            let meta = fs::symlink_metadata(&path)?;
            if is_stub(&rel, &meta, upper) {
                continue;
            }
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                let name = rel.with_file_name(format!(".wh.{}", e.file_name().to_string_lossy()));
                let mut h = header_for(&meta, tar::EntryType::Regular);
                h.set_mode(0o644);
                b.append_data(&mut h, &name, io::empty())?;
            } else if ft.is_dir() {
                let mut h = header_for(&meta, tar::EntryType::Directory);
                b.append_data(&mut h, &rel, io::empty())?;
                let opaque = xattr::get(&path, "trusted.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some_and(|v| v == b"y");
                if opaque {
                    let mut wh = header_for(&meta, tar::EntryType::Regular);
                    wh.set_mode(0o644);
                    b.append_data(&mut wh, rel.join(".wh..wh..opq"), io::empty())?;
                }
                subdirs.push(rel);
            } else if ft.is_symlink() {
                let target = fs::read_link(&path)?;
                let mut h = header_for(&meta, tar::EntryType::Symlink);
                b.append_link(&mut h, &rel, &target)?;
            } else if ft.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1 {
                    if let Some(first) = links.get(&key) {
                        let mut h = header_for(&meta, tar::EntryType::Link);
                        b.append_link(&mut h, &rel, first)?;
                        continue;
                    }
                    links.insert(key, rel.clone());
                }
                let mut h = header_for(&meta, tar::EntryType::Regular);
                h.set_size(meta.len());
                b.append_data(&mut h, &rel, fs::File::open(&path)?)?;
            } else {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    continue; // sockets do not go into layers
                };
                let mut h = header_for(&meta, kind);
                let rdev = meta.rdev();
                h.set_device_major(nix::sys::stat::major(rdev) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
                b.append_data(&mut h, &rel, io::empty())?;
            }
        }
        subdirs.reverse();
        stack.extend(subdirs);
    }
    b.into_inner()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_links_and_stubs() {
        let d = tempfile::tempdir().unwrap();
        let u = d.path();
        fs::create_dir_all(u.join("app/sub")).unwrap();
        fs::write(u.join("app/a.txt"), b"hello").unwrap();
        fs::hard_link(u.join("app/a.txt"), u.join("app/sub/b.txt")).unwrap();
        std::os::unix::fs::symlink("a.txt", u.join("app/l")).unwrap();
        nix::sys::stat::mknod(
            &u.join("app/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir_all(u.join("etc")).unwrap();
        fs::write(u.join("etc/hosts"), b"").unwrap();
        fs::create_dir(u.join("proc")).unwrap();
        let mut buf = Vec::new();
        write(u, &mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let names: Vec<(String, tar::EntryType)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        let find = |n: &str| {
            names
                .iter()
                .find(|(p, _)| p.trim_end_matches('/') == n)
                .map(|x| x.1)
        };
        assert_eq!(find("app/a.txt"), Some(tar::EntryType::Regular));
        assert_eq!(find("app/sub/b.txt"), Some(tar::EntryType::Link));
        assert_eq!(find("app/l"), Some(tar::EntryType::Symlink));
        assert_eq!(find("app/.wh.gone"), Some(tar::EntryType::Regular));
        assert_eq!(
            find("etc"),
            None,
            "runtime stubs are not the user's changes"
        );
        assert_eq!(find("proc"), None);
        // Parents come before children.
        let pos = |n: &str| {
            names
                .iter()
                .position(|(p, _)| p.trim_end_matches('/') == n)
                .unwrap()
        };
        assert!(pos("app") < pos("app/sub") && pos("app/sub") < pos("app/sub/b.txt"));
    }
}
