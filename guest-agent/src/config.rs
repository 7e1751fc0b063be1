//! The engine's configuration, from its command line.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where images (and later containers and volumes) live.
    pub root: PathBuf,
    /// The Docker API unix socket.
    pub socket: PathBuf,
    /// Registries (`host[:port]`) that may be reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// The static init `--init` runs (tini); found at start when not given.
    pub init_binary: Option<PathBuf>,
    /// The Linux bridge behind the default `bridge` network.
    pub bridge: String,
    /// Inside Berth's VM: how the host reaches the engine (`--host-link`).
    pub host_link: Option<HostLink>,
    /// Inside Berth's VM: the host's shared folders (`--share`, see
    /// `berth_proto::shares`), mounted before the engine opens.
    pub shares: Vec<berth_proto::shares::ShareMount>,
    /// Inside Berth's VM: the host's OS (`--host-os`), which decides how bind
    /// sources are read. Set, it also turns on the shared-folder check.
    pub host_os: Option<crate::volumes::hostpaths::HostOs>,
    /// Image archives (files, or directories of `*.tar`) loaded once into a fresh
    /// store (`--preload`): the getting-started tutorial.
    pub preload: Vec<PathBuf>,
    /// Inside Berth's VM: QEMU user-mode emulators to register with binfmt_misc
    /// (`--emulators DIR`, see `emulators.rs`).
    pub emulators: Option<PathBuf>,
}

/// The guest end of the host↔guest transport (see `berth-proto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostLink {
    /// AF_VSOCK listeners on the protocol's ports (vhost-vsock or hybrid vsock).
    Vsock,
    /// A yamux session on the virtio-serial port with the protocol's name.
    Serial,
}

/// Where Debian and Docker packages put a static tini.
const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
];

pub fn find_init() -> Option<PathBuf> {
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing value for {0}")]
    MissingValue(String),
    #[error("unknown argument {0:?} (try --help)")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
}

pub const USAGE: &str =
    "usage: berth-agent daemon [--root DIR] [--socket PATH] [--insecure-registry HOST[:PORT]]... [--bridge IFNAME] [--host-link vsock|serial] [--share TAG,FS,ro|rw,PATH]... [--host-os linux|macos|windows] [--preload ARCHIVE|DIR]... [--emulators DIR]";

impl Config {
    /// Parses the arguments after `daemon`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, ConfigError> {
        let mut cfg = Config {
            root: PathBuf::from("/var/lib/berth"),
            socket: PathBuf::from("/run/berth/docker.sock"),
            insecure_registries: Vec::new(),
            init_binary: None,
            bridge: "berth0".into(),
            host_link: None,
            shares: Vec::new(),
            host_os: None,
            preload: Vec::new(),
            emulators: None,
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| ConfigError::MissingValue(key.clone()))
            };
            match key.as_str() {
                "--root" | "--data-root" => cfg.root = PathBuf::from(value()?),
                "--socket" => cfg.socket = PathBuf::from(value()?),
                "-H" | "--host" => {
                    let v = value()?;
                    cfg.socket = PathBuf::from(v.strip_prefix("unix://").unwrap_or(&v));
                }
                "--insecure-registry" => cfg.insecure_registries.push(value()?),
                "--preload" => cfg.preload.push(PathBuf::from(value()?)),
                "--emulators" => cfg.emulators = Some(PathBuf::from(value()?)),
                "--init-path" => cfg.init_binary = Some(PathBuf::from(value()?)),
                "--bridge" | "-b" => {
                    let b = value()?;
                    if b.is_empty() || b.len() > 15 {
                        return Err(ConfigError::Invalid(format!(
                            "--bridge: {b:?} is not a valid interface name"
                        )));
                    }
                    cfg.bridge = b;
                }
                "--host-link" => {
                    cfg.host_link = Some(match value()?.as_str() {
                        "vsock" => HostLink::Vsock,
                        "serial" => HostLink::Serial,
                        other => {
                            return Err(ConfigError::Invalid(format!(
                                "--host-link: {other:?} is neither vsock nor serial"
                            )))
                        }
                    })
                }
                "--share" => cfg.shares.push(
                    berth_proto::shares::ShareMount::decode(&value()?)
                        .map_err(|e| ConfigError::Invalid(format!("--share: {e}")))?,
                ),
                "--host-os" => {
                    let v = value()?;
                    cfg.host_os =
                        Some(crate::volumes::hostpaths::HostOs::parse(&v).ok_or_else(|| {
                            ConfigError::Invalid(format!(
                                "--host-os: {v:?} is not linux, macos or windows"
                            ))
                        })?)
                }
                _ => return Err(ConfigError::Unknown(a)),
            }
        }
        if cfg.init_binary.is_none() {
            cfg.init_binary = find_init();
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let c = Config::from_args(
            [
                "--root",
                "/r",
                "--socket=/s.sock",
                "--insecure-registry",
                "reg:5000",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(c.root, PathBuf::from("/r"));
        assert_eq!(c.socket, PathBuf::from("/s.sock"));
        assert_eq!(c.insecure_registries, vec!["reg:5000"]);
        assert!(Config::from_args(["--bogus".to_string()]).is_err());
        let v = Config::from_args(["--host-link=serial".to_string()]).unwrap();
        assert_eq!(v.host_link, Some(HostLink::Serial));
        assert!(Config::from_args(["--host-link=tcp".to_string()]).is_err());
        assert!(Config::from_args(["--root".to_string()]).is_err());
        let s = Config::from_args(
            [
                "--share",
                "berth0,9p,ro,/Users/Jane%20Doe",
                "--host-os",
                "macos",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(s.shares[0].guest_path, "/Users/Jane Doe");
        assert!(s.shares[0].read_only);
        assert!(Config::from_args(["--share=berth0,nfs,rw,/x".to_string()]).is_err());
        assert!(Config::from_args(["--host-os=beos".to_string()]).is_err());
    }
}
