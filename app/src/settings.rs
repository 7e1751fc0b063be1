//! The user's VM settings: `settings.json` under the OS config dir. Every field
//! has a default, so a missing or partial file is fine; an unreadable one is an
//! error rather than silently replaced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// The host OS's hypervisor when it works, else TCG.
    #[default]
    Auto,
    Hvf,
    Whpx,
    Kvm,
    Tcg,
}

/// Which host↔guest transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// Kernel vhost-vsock if the host has it, else hybrid vsock if
    /// `vhost-device-vsock` is installed, else the serial multiplexer.
    #[default]
    Auto,
    VhostVsock,
    Hybrid,
    Serial,
}

/// How host folders reach the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FileSharing {
    /// virtio-fs where the host can run `virtiofsd` (Linux), else 9p (QEMU's
    /// own; macOS), else none (QEMU for Windows has neither).
    #[default]
    Auto,
    Virtiofs,
    #[serde(rename = "9p")]
    NineP,
    /// Share nothing: bind mounts see only the VM's own files.
    Off,
}

/// One host folder shared into the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedFolder {
    pub path: PathBuf,
    #[serde(default)]
    pub read_only: bool,
}

/// Docker Desktop's defaults: the user's home and `/tmp` (and on macOS
/// `/var/folders`, where `$TMPDIR` points), and `C:\Users` on Windows, which
/// holds both there. The guest keeps its own temporary files elsewhere, so the
/// host's `/tmp` can be mounted over its `/tmp`.
pub fn default_shared_folders(os: crate::paths::HostOs, home: Option<&Path>) -> Vec<SharedFolder> {
    use crate::paths::HostOs;
    let paths: Vec<PathBuf> = match os {
        HostOs::Windows => vec![PathBuf::from(r"C:\Users")],
        HostOs::Linux => home
            .map(Path::to_path_buf)
            .into_iter()
            .chain([PathBuf::from("/tmp")])
            .collect(),
        HostOs::MacOs => home
            .map(Path::to_path_buf)
            .into_iter()
            .chain(["/tmp", "/var/folders"].map(PathBuf::from))
            .collect(),
    };
    paths
        .into_iter()
        .map(|path| SharedFolder {
            path,
            read_only: false,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct VmSettings {
    pub cpus: u32,
    pub memory_mib: u32,
    /// The data disk's virtual size; it grows on demand up to this.
    pub disk_gib: u32,
    pub accel: Accel,
    pub transport: TransportKind,
    /// Registries the engine may reach over plain HTTP (`host:port`).
    pub insecure_registries: Vec<String>,
    /// Where `vmlinuz` and `initramfs.img` are; found automatically when unset.
    pub image_dir: Option<PathBuf>,
    /// Boot the VM again when it dies without being asked to.
    pub restart_on_crash: bool,
    /// Verbose engine logs on the VM console (`berth vm logs`).
    pub debug: bool,
    /// Host folders mounted in the VM at the same path, so `-v "$PWD":/app` works.
    pub shared_folders: Vec<SharedFolder>,
    pub file_sharing: FileSharing,
    /// Pause the VM after this long with no client connected and the
    /// containers idle (see `vm::idle`; 0: never); the next docker command or
    /// published-port connection resumes it.
    pub idle_pause_seconds: u32,
}

impl Default for VmSettings {
    fn default() -> Self {
        VmSettings {
            cpus: 2,
            memory_mib: 2048,
            disk_gib: 64,
            accel: Accel::Auto,
            transport: TransportKind::Auto,
            insecure_registries: Vec::new(),
            image_dir: None,
            restart_on_crash: true,
            debug: false,
            shared_folders: default_shared_folders(
                crate::paths::HostOs::current(),
                dirs::home_dir().as_deref(),
            ),
            file_sharing: FileSharing::Auto,
            idle_pause_seconds: 300,
        }
    }
}

/// The desktop app's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSettings {
    /// Open the app (and so the engine) when the user logs in.
    pub start_at_login: bool,
    /// The first-run welcome was finished or skipped (Help → Getting started
    /// opens it again).
    pub welcome_done: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub vm: VmSettings,
    pub app: AppSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid settings: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A known key in the wrong object, the commonest slip in a hand-edited file.
    #[error(
        "{path}: \"{key}\" belongs inside \"{section}\", as in {{\"{section}\": {{\"{key}\": …}}}}"
    )]
    Misplaced {
        path: String,
        key: String,
        section: &'static str,
    },
}

impl Settings {
    /// Writes through a temp file and a rename, so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write_err = |source| SettingsError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let mut text =
            serde_json::to_string_pretty(self).map_err(|source| SettingsError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        text.push('\n');
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let parse_err = |source| SettingsError::Parse {
            path: path.display().to_string(),
            source,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(parse_err)?;
        if let Some((key, section)) = misplaced(&value) {
            return Err(SettingsError::Misplaced {
                path: path.display().to_string(),
                key,
                section,
            });
        }
        // Anything else unknown (a typo) is refused by serde, naming the keys
        // that place takes.
        serde_json::from_value(value).map_err(parse_err)
    }
}

/// The first key that is not where it belongs: a VM or app setting at the top
/// level, or one section's key inside the other; with the section it goes in.
fn misplaced(v: &serde_json::Value) -> Option<(String, &'static str)> {
    let keys = |v: serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let vm = keys(serde_json::to_value(VmSettings::default()).ok()?);
    let app = keys(serde_json::to_value(AppSettings::default()).ok()?);
    let home = |k: &String| {
        if vm.contains(k) {
            Some("vm")
        } else if app.contains(k) {
            Some("app")
        } else {
            None
        }
    };
    let top = v.as_object()?;
    for (k, inner) in top {
        match k.as_str() {
            "vm" | "app" => {
                for ik in inner.as_object().into_iter().flat_map(|o| o.keys()) {
                    match home(ik) {
                        Some(section) if section != k => return Some((ik.clone(), section)),
                        _ => {}
                    }
                }
            }
            _ => {
                if let Some(section) = home(k) {
                    return Some((k.clone(), section));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_keep_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.json");
        assert_eq!(Settings::load(&p).unwrap(), Settings::default());
        std::fs::write(
            &p,
            r#"{"vm":{"cpus":4,"accel":"tcg","transport":"serial"}}"#,
        )
        .unwrap();
        let s = Settings::load(&p).unwrap();
        assert_eq!(s.vm.cpus, 4);
        assert_eq!(s.vm.accel, Accel::Tcg);
        assert_eq!(s.vm.transport, TransportKind::Serial);
        assert_eq!(s.vm.memory_mib, 2048);
        assert_eq!(s.vm.file_sharing, FileSharing::Auto);
        std::fs::write(
            &p,
            r#"{"vm":{"fileSharing":"9p","sharedFolders":[{"path":"/src","readOnly":true}]}}"#,
        )
        .unwrap();
        let s = Settings::load(&p).unwrap();
        assert_eq!(s.vm.file_sharing, FileSharing::NineP);
        assert_eq!(
            s.vm.shared_folders,
            vec![SharedFolder {
                path: "/src".into(),
                read_only: true
            }]
        );
        std::fs::write(&p, r#"{"vm":{"cpus":"many"}}"#).unwrap();
        assert!(matches!(
            Settings::load(&p),
            Err(SettingsError::Parse { .. })
        ));
    }

    #[test]
    fn unknown_and_misplaced_keys_are_refused_with_where_they_go() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.json");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            Settings::load(&p).unwrap_err().to_string()
        };
        let e = load(r#"{"memoryMib": 4096}"#);
        assert!(
            e.ends_with(r#""memoryMib" belongs inside "vm", as in {"vm": {"memoryMib": …}}"#),
            "{e}"
        );
        let e = load(r#"{"vm": {"startAtLogin": true}}"#);
        assert!(e.contains(r#""startAtLogin" belongs inside "app""#), "{e}");
        let e = load(r#"{"vm": {"memoryMB": 4096}}"#);
        assert!(
            e.contains("unknown field `memoryMB`, expected one of"),
            "{e}"
        );
        assert!(e.contains("`memoryMib`"), "{e}");
        let e = load(r#"{"vm": {"sharedFolders": [{"path": "/x", "ro": true}]}}"#);
        assert!(e.contains("unknown field `ro`"), "{e}");
    }

    #[test]
    fn saved_settings_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("berth/settings.json");
        let mut s = Settings::default();
        s.vm.cpus = 6;
        s.vm.insecure_registries = vec!["reg:5000".into()];
        s.save(&p).unwrap();
        assert_eq!(Settings::load(&p).unwrap(), s);
        assert!(!p.with_extension("json.tmp").exists());
    }

    #[test]
    fn shares_default_like_docker_desktop() {
        use crate::paths::HostOs;
        let home = Path::new("/Users/me");
        assert_eq!(
            default_shared_folders(HostOs::MacOs, Some(home))[0].path,
            home
        );
        assert_eq!(
            default_shared_folders(HostOs::Windows, None)[0].path,
            PathBuf::from(r"C:\Users")
        );
        let linux = default_shared_folders(HostOs::Linux, Some(Path::new("/home/me")));
        let paths: Vec<_> = linux.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, [PathBuf::from("/home/me"), PathBuf::from("/tmp")]);
        assert_eq!(default_shared_folders(HostOs::Linux, None).len(), 1);
        assert!(default_shared_folders(HostOs::MacOs, Some(home))
            .iter()
            .any(|f| f.path == Path::new("/var/folders")));
    }
}
