//! Which host folders the VM mounts, through which device: the settings'
//! `sharedFolders` and `fileSharing`, resolved for this host. Pure data, so
//! every OS's answer is testable here; the supervisor starts the devices.

use std::path::{Path, PathBuf};

use berth_proto::shares::{windows_guest_path, ShareFs, ShareMount};

use crate::paths::HostOs;
use crate::settings::{FileSharing, SharedFolder};

/// One folder to share, and where and how the guest mounts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedShare {
    pub host_path: PathBuf,
    pub mount: ShareMount,
}

/// Picks the device for `wanted`. `Ok(None)`: nothing is shared (and why, for
/// `berth doctor`).
pub fn resolve_backend(
    wanted: FileSharing,
    os: HostOs,
    have_virtiofsd: bool,
) -> Result<(Option<ShareFs>, &'static str), String> {
    match (wanted, os) {
        (FileSharing::Off, _) => Ok((None, "turned off in settings")),
        (FileSharing::Auto, HostOs::Linux) if have_virtiofsd => {
            Ok((Some(ShareFs::Virtiofs), "virtiofsd is installed"))
        }
        (FileSharing::Auto, HostOs::Linux) => {
            Ok((Some(ShareFs::NineP), "virtiofsd is not installed; using 9p"))
        }
        (FileSharing::Auto, HostOs::MacOs) => Ok((
            Some(ShareFs::NineP),
            "virtiofsd runs only on Linux; QEMU's 9p on macOS",
        )),
        (FileSharing::Auto, HostOs::Windows) => Ok((
            None,
            "QEMU for Windows has neither virtiofsd nor 9p: bind mounts see only the VM's files",
        )),
        (FileSharing::Virtiofs, HostOs::Linux) if have_virtiofsd => {
            Ok((Some(ShareFs::Virtiofs), "chosen in settings"))
        }
        (FileSharing::Virtiofs, HostOs::Linux) => {
            Err("fileSharing is \"virtiofs\" but virtiofsd is not installed".into())
        }
        (FileSharing::Virtiofs, _) => {
            Err("fileSharing is \"virtiofs\", but virtiofsd runs only on Linux hosts".into())
        }
        (FileSharing::NineP, HostOs::Windows) => {
            Err("fileSharing is \"9p\", but QEMU for Windows is built without 9p".into())
        }
        (FileSharing::NineP, _) => Ok((Some(ShareFs::NineP), "chosen in settings")),
    }
}

/// Where the guest mounts a host folder: the same path, or for a Windows host
/// its `/run/desktop/mnt/host/<drive>/…` form.
pub fn guest_path(os: HostOs, host: &Path) -> Option<String> {
    let s = host.to_str()?;
    match os {
        HostOs::Windows => windows_guest_path(s),
        _ if s.starts_with('/') => Some(s.trim_end_matches('/').to_string()).map(|p| {
            if p.is_empty() {
                "/".to_string()
            } else {
                p
            }
        }),
        _ => None,
    }
}

/// The shares to mount, tagged `berth0`, `berth1`, …, and a warning for each
/// folder left out (missing, not absolute, or inside another shared folder).
pub fn plan(
    os: HostOs,
    folders: &[SharedFolder],
    fs: ShareFs,
    exists: impl Fn(&Path) -> bool,
) -> (Vec<PlannedShare>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut candidates: Vec<(String, &SharedFolder)> = Vec::new();
    for f in folders {
        let Some(g) = guest_path(os, &f.path) else {
            warnings.push(format!(
                "shared folder {} is not an absolute local path; skipped",
                f.path.display()
            ));
            continue;
        };
        if !exists(&f.path) {
            warnings.push(format!(
                "shared folder {} does not exist; skipped",
                f.path.display()
            ));
            continue;
        }
        candidates.push((g, f));
    }
    // Parents first, so a folder inside another is seen as covered.
    candidates.sort_by_key(|(g, _)| g.len());
    let mut out: Vec<PlannedShare> = Vec::new();
    for (g, f) in candidates {
        if let Some(parent) = out
            .iter()
            .find(|p| Path::new(&g).starts_with(&p.mount.guest_path))
        {
            // Covered by its parent; worth a word only when the two disagree
            // on read-only, since the parent's mount decides.
            if f.read_only != parent.mount.read_only {
                warnings.push(format!(
                    "shared folder {} is inside {}, which is shared already ({}); skipped",
                    f.path.display(),
                    parent.host_path.display(),
                    if parent.mount.read_only {
                        "read-only"
                    } else {
                        "writable"
                    }
                ));
            }
            continue;
        }
        out.push(PlannedShare {
            host_path: f.path.clone(),
            mount: ShareMount {
                tag: format!("berth{}", out.len()),
                fs,
                read_only: f.read_only,
                guest_path: g,
            },
        });
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(p: &str, ro: bool) -> SharedFolder {
        SharedFolder {
            path: p.into(),
            read_only: ro,
        }
    }

    #[test]
    fn backend_per_os() {
        let pick = |w, os, v| resolve_backend(w, os, v).map(|(fs, _)| fs);
        assert_eq!(
            pick(FileSharing::Auto, HostOs::Linux, true),
            Ok(Some(ShareFs::Virtiofs))
        );
        assert_eq!(
            pick(FileSharing::Auto, HostOs::Linux, false),
            Ok(Some(ShareFs::NineP))
        );
        assert_eq!(
            pick(FileSharing::Auto, HostOs::MacOs, true),
            Ok(Some(ShareFs::NineP))
        );
        assert_eq!(pick(FileSharing::Auto, HostOs::Windows, true), Ok(None));
        assert_eq!(
            pick(FileSharing::NineP, HostOs::Linux, true),
            Ok(Some(ShareFs::NineP))
        );
        assert_eq!(pick(FileSharing::Off, HostOs::Linux, true), Ok(None));
        assert!(pick(FileSharing::Virtiofs, HostOs::MacOs, true).is_err());
        assert!(pick(FileSharing::Virtiofs, HostOs::Linux, false).is_err());
        assert!(pick(FileSharing::NineP, HostOs::Windows, false).is_err());
    }

    #[test]
    fn folders_become_tagged_mounts_at_the_same_path() {
        let (s, w) = plan(
            HostOs::Linux,
            &[
                folder("/home/me/src", false),
                folder("/home/me/", true),
                folder("/srv/data", false),
                folder("/gone", false),
                folder("relative", false),
            ],
            ShareFs::Virtiofs,
            |p| p != Path::new("/gone"),
        );
        let got: Vec<_> = s
            .iter()
            .map(|p| {
                (
                    p.mount.tag.as_str(),
                    p.mount.guest_path.as_str(),
                    p.mount.read_only,
                )
            })
            .collect();
        assert_eq!(
            got,
            [("berth0", "/home/me", true), ("berth1", "/srv/data", false)]
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w
            .iter()
            .any(|w| w.contains("/home/me/src is inside /home/me/")));

        // The defaults with a home under /tmp: covered, nothing to say.
        let (s, w) = plan(
            HostOs::Linux,
            &[folder("/tmp/x/home", false), folder("/tmp", false)],
            ShareFs::Virtiofs,
            |_| true,
        );
        assert_eq!(s.len(), 1);
        assert!(w.is_empty(), "{w:?}");

        let (s, _) = plan(
            HostOs::Windows,
            &[folder(r"C:\Users", false)],
            ShareFs::NineP,
            |_| true,
        );
        assert_eq!(s[0].mount.guest_path, "/run/desktop/mnt/host/c/Users");
        assert_eq!(s[0].host_path, PathBuf::from(r"C:\Users"));
    }
}
