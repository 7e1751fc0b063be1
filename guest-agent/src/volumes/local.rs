//! The `local` driver's options (`-o type=… -o device=… -o o=…`): which keys it takes,
//! and how they become one mount(2) call on the volume's `_data`. Deciding is pure;
//! only `mount_device` / `unmount_device` touch the system.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The keys dockerd's local driver accepts.
const KEYS: &[&str] = &["type", "device", "o"];

/// Refuses keys the local driver does not know, with dockerd's wording.
pub fn validate(opts: &HashMap<String, String>) -> Result<(), String> {
    let mut keys: Vec<&String> = opts.keys().collect();
    keys.sort();
    for k in keys {
        if !KEYS.contains(&k.as_str()) {
            return Err(format!("invalid option: \"{k}\""));
        }
    }
    // Without a device there is nothing to mount; a type alone is meaningless.
    if opts.contains_key("type") != opts.contains_key("device") && opts.contains_key("type") {
        return Err("missing required option: \"device\"".into());
    }
    Ok(())
}

/// One mount(2) call: what the options ask to mount on `_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMount {
    pub device: String,
    pub fstype: String,
    pub flags: MsFlags,
    pub data: String,
}

/// The mount the options describe, or `None` for a plain directory volume.
pub fn device_mount(opts: &HashMap<String, String>) -> Option<DeviceMount> {
    let device = opts.get("device").filter(|d| !d.is_empty())?;
    let (flags, data) = parse_options(opts.get("o").map(String::as_str).unwrap_or(""));
    Some(DeviceMount {
        device: device.clone(),
        fstype: opts.get("type").cloned().unwrap_or_else(|| "none".into()),
        flags,
        data,
    })
}

/// Splits `o=` into the flags mount(2) takes and the filesystem-specific rest, as
/// mount(8) would.
pub fn parse_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// Mounts the device on `target`. A bind source must exist, as with dockerd.
pub fn mount_device(m: &DeviceMount, target: &Path) -> io::Result<()> {
    let source = PathBuf::from(&m.device);
    if m.flags.contains(MsFlags::MS_BIND) && !source.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("bind source {} does not exist", m.device),
        ));
    }
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    nix::mount::mount(
        Some(source.as_path()),
        target,
        Some(m.fstype.as_str()),
        m.flags,
        data,
    )
    .map_err(io::Error::from)?;
    // A read-only bind needs a second call: the first ignores MS_RDONLY.
    if m.flags.contains(MsFlags::MS_BIND) && m.flags.contains(MsFlags::MS_RDONLY) {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            m.flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(io::Error::from)?;
    }
    Ok(())
}

/// Detaches whatever is mounted on `target` (nothing mounted is fine).
pub fn unmount_device(target: &Path) -> io::Result<()> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Mount points at or under `dir`, from `/proc/self/mountinfo` (deepest first), so a
/// removal never walks into a mounted filesystem.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validates_keys_like_dockerd() {
        assert!(validate(&opts(&[])).is_ok());
        assert!(validate(&opts(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        assert_eq!(
            validate(&opts(&[("foo", "bar")])).unwrap_err(),
            "invalid option: \"foo\""
        );
    }

    #[test]
    fn tmpfs_and_bind_mounts() {
        let m = device_mount(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m,uid=1000,noexec"),
        ]))
        .unwrap();
        assert_eq!(m.fstype, "tmpfs");
        assert_eq!(m.flags, MsFlags::MS_NOEXEC);
        assert_eq!(m.data, "size=1m,uid=1000");
        let b = device_mount(&opts(&[
            ("type", "none"),
            ("device", "/srv/x"),
            ("o", "bind,ro"),
        ]))
        .unwrap();
        assert_eq!(b.flags, MsFlags::MS_BIND | MsFlags::MS_RDONLY);
        assert_eq!(b.data, "");
        assert!(device_mount(&opts(&[("o", "size=1m")])).is_none());
    }

    #[test]
    fn mountinfo_unescaping() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
