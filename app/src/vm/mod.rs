//! The VM manager: boots the guest under QEMU, supervises it (crash detection
//! and restart), and serves the host side of the engine — the docker socket and
//! the published ports — while it runs.
//!
//! `berth vm start` launches a detached supervisor (`berth vm run`) and returns
//! once the engine answers `_ping` through the host socket; `stop` signals the
//! supervisor, which shuts the guest down cleanly (agent RPC, then ACPI, then
//! QMP `quit`, then SIGKILL).

pub mod argv;
pub mod compact;
pub mod control;
pub mod idle;
pub mod image;
pub mod lifecycle;
mod link;
pub mod qmp;
pub mod reset;
pub mod shares;
pub(crate) mod supervisor;
pub mod usage;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

pub use supervisor::{supervise, SuperviseOptions};

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("no VM image found (build one with `cargo xtask vm-image`); looked in: {0}")]
    NoImage(String),
    #[error("a VM is already running (supervisor pid {0})")]
    AlreadyRunning(u32),
    #[error("the VM is not running")]
    NotRunning,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not installed; {fix}", fix = fix_for(.0))]
    MissingProgram(&'static str),
    #[error("qemu-img failed: {0}")]
    DiskCreate(String),
    #[error("the VM did not come up: {0}")]
    Boot(String),
    #[error(transparent)]
    Socket(#[from] crate::forward::SocketError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
}

/// How to get `program` on this host, for the error that says it is missing.
pub fn fix_for(program: &str) -> String {
    fix_on(crate::paths::HostOs::current(), program)
}

pub(crate) fn fix_on(os: crate::paths::HostOs, program: &str) -> String {
    use crate::paths::HostOs;
    let qemu_deb = if cfg!(target_arch = "aarch64") {
        "qemu-system-arm qemu-utils"
    } else {
        "qemu-system-x86 qemu-utils"
    };
    match (program, os) {
        ("qemu-system" | "qemu-img", HostOs::Linux) => {
            format!("install it: sudo apt-get install {qemu_deb}")
        }
        ("qemu-system" | "qemu-img", HostOs::MacOs) => "install it: brew install qemu".into(),
        ("qemu-system" | "qemu-img", HostOs::Windows) => {
            "install QEMU for Windows (qemu.org) and add it to PATH".into()
        }
        ("virtiofsd", _) => "install it (sudo apt-get install virtiofsd), or set \
             \"fileSharing\": \"9p\" in settings"
            .into(),
        ("vhost-device-vsock", _) => "cargo install vhost-device-vsock, or set \
             \"transport\": \"serial\" in settings"
            .into(),
        _ => "install it and add it to PATH".into(),
    }
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

/// The VM's files under `~/.berth/vm`.
#[derive(Debug, Clone)]
pub struct VmPaths {
    pub dir: PathBuf,
}

impl VmPaths {
    pub fn new(dir: PathBuf) -> VmPaths {
        VmPaths { dir }
    }
    pub fn data_disk(&self) -> PathBuf {
        self.dir.join("data.qcow2")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.dir.join("supervisor.log")
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    pub fn mux(&self) -> PathBuf {
        self.dir.join("mux.sock")
    }
    /// Where QEMU serves QMP on this host.
    pub fn qmp_endpoint(&self) -> argv::Endpoint {
        self.endpoint(crate::paths::HostOs::current(), "qmp")
    }
    /// Where QEMU serves the serial transport's chardev on this host.
    pub fn mux_endpoint(&self) -> argv::Endpoint {
        self.endpoint(crate::paths::HostOs::current(), "mux")
    }
    /// A socket in the VM's folder, or on Windows a named pipe (one namespace
    /// for the whole machine) named after the folder, so two users' or two
    /// homes' VMs never meet.
    fn endpoint(&self, os: crate::paths::HostOs, what: &str) -> argv::Endpoint {
        use sha2::Digest;
        match os {
            crate::paths::HostOs::Windows => {
                let id = sha2::Sha256::digest(self.dir.to_string_lossy().as_bytes());
                argv::Endpoint::Pipe(format!("berth-{what}-{}", hex::encode(&id[..6])))
            }
            _ => argv::Endpoint::Unix(self.dir.join(format!("{what}.sock"))),
        }
    }
    pub fn vhost_user(&self) -> PathBuf {
        self.dir.join("vhost-user.sock")
    }
    pub fn vsock_uds(&self) -> PathBuf {
        self.dir.join("vsock.sock")
    }
    pub fn qemu_pid(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.dir.join("supervisor.pid")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
}

/// Whether the VM is paused while idle ([`idle`]), for the supervisor's state
/// file and the control channel (which steps the guest's clock on every
/// resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sleep {
    Awake,
    /// Paused since this wall-clock time (unix seconds).
    Paused(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    Running,
    Restarting,
    Stopping,
}

/// What the supervisor publishes about the VM, for `status` and the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmState {
    pub phase: Phase,
    pub supervisor_pid: u32,
    pub qemu_pid: Option<u32>,
    pub accel: String,
    pub transport: String,
    pub docker_host: String,
    /// Boots after a crash since the supervisor started.
    pub restarts: u32,
    pub last_crash: Option<String>,
    /// The last boot's time from QEMU's start to the engine's first `_ping`.
    pub boot_ms: Option<u64>,
    /// Why this transport (and how to get a faster one).
    #[serde(default)]
    pub transport_why: String,
    /// The shared-folder device and why it was chosen.
    #[serde(default)]
    pub file_sharing: String,
    /// Guest paths of the shared folders.
    #[serde(default)]
    pub shared_folders: Vec<String>,
    /// Paused for being idle since this time (unix seconds); the next docker
    /// command or published-port connection resumes it.
    #[serde(default)]
    pub paused_since: Option<u64>,
}

impl VmState {
    pub fn read(paths: &VmPaths) -> Option<VmState> {
        let text = std::fs::read_to_string(paths.state()).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, paths: &VmPaths) -> Result<(), VmError> {
        let tmp = paths.state().with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| VmError::Io {
            what: "encoding the VM state".into(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&tmp, text).map_err(io_err("writing the VM state"))?;
        std::fs::rename(&tmp, paths.state()).map_err(io_err("writing the VM state"))
    }
}

pub fn pid_alive(pid: u32) -> bool {
    crate::os::pid_alive(pid)
}

/// The live supervisor's pid, if any.
pub fn running_supervisor(paths: &VmPaths) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(paths.supervisor_pid())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_alive(pid).then_some(pid)
}

/// Creates the data disk on first start: a qcow2 that grows on demand; the
/// guest formats it.
pub fn ensure_disk(path: &Path, gib: u32) -> Result<bool, VmError> {
    if path.exists() {
        return Ok(false);
    }
    qemu_img(&[
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        path.as_os_str(),
        format!("{gib}G").as_ref(),
    ])?;
    Ok(true)
}

/// Runs `qemu-img`; its stderr is the error.
pub(crate) fn qemu_img(args: &[&std::ffi::OsStr]) -> Result<(), VmError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VmError::MissingProgram("qemu-img"),
            _ => VmError::Io {
                what: "running qemu-img".into(),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(VmError::DiskCreate(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// A minimal `GET /_ping` over a unix socket (see [`ping`]).
pub fn ping_socket(path: &Path) -> bool {
    ping(&crate::paths::DockerEndpoint::Unix(path.to_path_buf()))
}

/// A minimal `GET /_ping`: the check `start` and `status` make through the
/// same socket or pipe the docker CLI uses.
pub fn ping(endpoint: &crate::paths::DockerEndpoint) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = endpoint.connect() else {
        return false;
    };
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_its_fix() {
        use crate::paths::HostOs;
        assert!(fix_on(HostOs::Linux, "qemu-img").contains("apt-get install qemu-system"));
        assert_eq!(
            fix_on(HostOs::MacOs, "qemu-system"),
            "install it: brew install qemu"
        );
        assert!(fix_on(HostOs::Linux, "virtiofsd").contains("\"fileSharing\": \"9p\""));
        let e = VmError::MissingProgram("vhost-device-vsock").to_string();
        assert!(
            e.starts_with("vhost-device-vsock is not installed; cargo install"),
            "{e}"
        );
    }

    #[test]
    fn disk_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.qcow2");
        match ensure_disk(&p, 1) {
            Err(VmError::MissingProgram(_)) => return, // qemu-utils absent
            r => assert!(r.unwrap()),
        }
        assert!(!ensure_disk(&p, 1).unwrap());
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = VmPaths::new(dir.path().to_path_buf());
        assert!(VmState::read(&paths).is_none());
        let s = VmState {
            phase: Phase::Running,
            supervisor_pid: 1,
            qemu_pid: Some(2),
            accel: "tcg".into(),
            transport: "hybrid-vsock".into(),
            transport_why: "vhost-device-vsock".into(),
            docker_host: "unix:///x".into(),
            restarts: 0,
            last_crash: None,
            boot_ms: Some(4000),
            file_sharing: "virtiofs".into(),
            shared_folders: vec!["/home/me".into()],
            paused_since: Some(1_700_000_000),
        };
        s.write(&paths).unwrap();
        assert_eq!(VmState::read(&paths), Some(s));
    }
}
