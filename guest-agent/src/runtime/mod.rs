//! Running containers: the OCI spec (`spec`), the overlay root filesystem (`rootfs`),
//! and the per-container shim (`shim`) that drives youki's `libcontainer`.
//!
//! libcontainer clones its caller and runs Rust in the child, so it must never run on
//! the daemon's tokio threads: the daemon re-executes its own binary as `shim`, a small
//! single-threaded process that creates and starts the container, owns its stdio,
//! writes its log, reaps it and records the exit.
//!
//! The container service reaches all of that through [`ContainerRuntime`], as youki's
//! own code reaches the kernel through its `Syscall` trait: [`linux::LinuxRuntime`] is
//! the real one, `fake::FakeRuntime` (tests) keeps processes in memory, so the
//! lifecycle is tested without root.

pub mod attach_proto;
#[cfg(test)]
pub mod fake;
pub mod linux;
pub mod logfile;
mod pump;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod spec;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use nix::sys::signal::Signal;

use rootfs::RootfsDirs;
use shim::ExitRecord;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A process to start: a container's own (`exec_dir` None) or an exec inside it.
pub struct StartRequest<'a> {
    pub id: &'a str,
    /// The container's bundle: `config.json`, the rootfs, the runtime state.
    pub bundle: &'a Path,
    pub open_stdin: bool,
    /// An exec's directory (its `process.json`, log and exit record).
    pub exec_dir: Option<&'a Path>,
    /// json-file rotation: bytes per file, files kept.
    pub log_rotation: (u64, u32),
}

/// A process that runs.
pub struct Started {
    pub pid: i64,
    /// The process that holds its stdio and records its exit (0 when none).
    pub shim_pid: i64,
    /// Completes once the process has exited and its exit record is written.
    pub exited: BoxFuture<'static, ()>,
}

/// Why a process did not start: an exit code in the way the CLI understands it (127
/// not found, 126 not executable, 255 anything else) and the runtime's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    pub code: i64,
    pub detail: String,
}

/// Everything the container service asks of the kernel to run containers.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Stacks the image's `layers` (lowest first) under the container's upper directory
    /// at `dirs.merged`.
    fn mount_rootfs(&self, layers: &[PathBuf], dirs: &RootfsDirs) -> io::Result<()>;
    /// Unmounts the root filesystem; nothing when it is not mounted.
    fn unmount_rootfs(&self, dirs: &RootfsDirs) -> io::Result<()>;
    /// Creates and starts the process from the bundle's `config.json` (or the exec's
    /// `process.json`) and returns once it runs.
    fn start<'a>(&'a self, req: StartRequest<'a>) -> BoxFuture<'a, Result<Started, StartFailure>>;
    /// The exit a process left in `dir` (the bundle, or an exec's directory).
    fn exit_record(&self, dir: &Path) -> Option<ExitRecord>;
    /// Sends `sig` to a process.
    fn signal(&self, pid: i64, sig: Signal) -> io::Result<()>;
    /// Whether a process is still there.
    fn alive(&self, pid: i64) -> bool;
    /// Whether `pid` still belongs to container `id` (a pid may have been reused).
    fn owns(&self, id: &str, pid: i64) -> bool;
    /// Freezes or thaws every process of the container (blocking).
    fn set_paused(&self, id: &str, state_dir: &Path, pause: bool) -> Result<(), String>;
    /// Applies new cgroup limits to a running container (blocking).
    fn update(&self, id: &str, resources: &spec::Resources) -> Result<(), String>;
}
