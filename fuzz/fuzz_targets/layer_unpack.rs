//! Layer tars as a registry or `docker load` delivers them, and plain tars as `docker
//! cp` and a build context deliver them: `unpack_layer` / `unpack_plain` into a fresh
//! directory per input. A crash is a panic, or anything changed outside that
//! directory: a sibling file, a sibling directory (what symlinks point at), the
//! parent itself.
//!
//! Input: `!` then raw tar bytes, or a small text script (easier to mutate into
//! `..`, `.wh.` names and link tricks than tar headers with checksums). One entry per
//! line, `KIND PATH [ARG]`:
//!   `f PATH DATA` file, `d PATH` dir, `s PATH TARGET` symlink, `h PATH TARGET`
//!   hardlink, `c`/`b PATH` char/block device, `p PATH` fifo,
//!   `x KEY VALUE` a PAX record for the next entry (e.g. `SCHILY.xattr.user.a`),
//!   `m MODE` octal mode for the next entry.
//! `@OUT` in a path or target becomes the absolute path of the sibling directory
//! that must stay untouched. A first line `plain` selects `unpack_plain`.

#![no_main]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_agent::images::unpack::{unpack_layer, unpack_plain};
use libfuzzer_sys::fuzz_target;

/// What must not change outside the layer: per path, kind, mode, owner, size, times,
/// link target, xattrs and content.
type Snapshot = BTreeMap<String, String>;

fn snapshot(base: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    walk(base, base, &mut out, true);
    out
}

fn walk(base: &Path, p: &Path, out: &mut Snapshot, top: bool) {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        out.insert(p.display().to_string(), "missing".into());
        return;
    };
    let rel = p.strip_prefix(base).unwrap_or(p).display().to_string();
    let link = std::fs::read_link(p).ok();
    let content = if m.is_file() {
        std::fs::read(p).ok()
    } else {
        None
    };
    let xattrs: Vec<_> = xattr::list(p).map(|l| l.collect()).unwrap_or_default();
    out.insert(
        rel,
        format!(
            "{:o} {}:{} {} {} {:?} {:?} {:?}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.len(),
            m.mtime(),
            link,
            xattrs,
            content
        ),
    );
    if m.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        names.sort();
        for n in names {
            // The layer itself may change freely, but must stay a directory.
            if top && n == "layer" {
                let layer = p.join("layer");
                let kind = std::fs::symlink_metadata(&layer)
                    .map(|m| format!("{:?}", m.file_type()))
                    .unwrap_or_else(|e| e.to_string());
                out.insert("layer".into(), kind);
                continue;
            }
            walk(base, &p.join(n), out, false);
        }
    }
}

fn header(kind: tar::EntryType, path: &[u8], link: &[u8], size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    // Raw bytes, as an attacker writes them: set_path/set_link_name refuse `..`.
    let name = &mut h.as_old_mut().name;
    let n = path.len().min(name.len());
    name[..n].copy_from_slice(&path[..n]);
    let linkname = &mut h.as_old_mut().linkname;
    let n = link.len().min(linkname.len());
    linkname[..n].copy_from_slice(&link[..n]);
    h.set_cksum();
    h
}

fn build_tar(script: &str, out_dir: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut mode = None;
    for line in script.lines() {
        let line = line.replace("@OUT", out_dir);
        let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let (path, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let (p, a) = (path.as_bytes(), arg.as_bytes());
        let m = mode.take();
        use tar::EntryType as T;
        let entry = match kind {
            "f" => Some((T::Regular, &b""[..], a, 0o644)),
            "d" => Some((T::Directory, &b""[..], &b""[..], 0o755)),
            "s" => Some((T::Symlink, a, &b""[..], 0o777)),
            "h" => Some((T::Link, a, &b""[..], 0o644)),
            "c" => Some((T::Char, &b""[..], &b""[..], 0o666)),
            "b" => Some((T::Block, &b""[..], &b""[..], 0o660)),
            "p" => Some((T::Fifo, &b""[..], &b""[..], 0o644)),
            "x" => {
                let _ = b.append_pax_extensions([(path, a)]);
                None
            }
            "m" => {
                mode = u32::from_str_radix(path, 8).ok();
                None
            }
            _ => None,
        };
        if let Some((t, link, data, default_mode)) = entry {
            let h = header(t, p, link, data.len() as u64, m.unwrap_or(default_mode));
            let _ = b.append(&h, data);
        }
    }
    b.into_inner().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let base = tempfile::tempdir().expect("tempdir");
    let layer = base.path().join("layer");
    let outside = base.path().join("outside");
    std::fs::create_dir(&layer).expect("layer dir");
    std::fs::create_dir(&outside).expect("outside dir");
    std::fs::write(outside.join("inner"), b"keep").expect("inner");
    std::fs::write(base.path().join("canary"), b"keep").expect("canary");
    let before = snapshot(base.path());

    let (plain, tar) = match data.strip_prefix(b"!") {
        Some(raw) => (false, raw.to_vec()),
        None => {
            let Ok(script) = std::str::from_utf8(data) else {
                return;
            };
            let (plain, script) = match script.strip_prefix("plain\n") {
                Some(rest) => (true, rest),
                None => (false, script),
            };
            (plain, build_tar(script, &outside.display().to_string()))
        }
    };
    let _ = if plain {
        unpack_plain(&tar[..], &layer)
    } else {
        unpack_layer(&tar[..], &layer)
    };

    let after = snapshot(base.path());
    assert_eq!(
        before, after,
        "unpacking changed something outside the layer"
    );
});
