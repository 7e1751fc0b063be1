//! The per-container shim: `berth-agent shim --id ID --bundle DIR --state DIR`.
//!
//! Runs single-threaded (it is dispatched before any async runtime exists), creates and
//! starts the container with libcontainer, copies the container's stdout and stderr into
//! `<bundle>/container.log` in Docker's json-file format, reaps the container and writes
//! `<bundle>/exit.json` atomically. The daemon reads those files; the shim outlives a
//! daemon restart.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use serde::{Deserialize, Serialize};

use super::pump::Pump;
use crate::fsutil::replace;

pub const LOG_FILE: &str = "container.log";
pub const EXIT_FILE: &str = "exit.json";

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("usage: berth-agent shim --id ID --bundle DIR --state DIR")]
    Usage,
    #[error("creating the container: {0}")]
    Create(String),
    #[error("starting the container: {0}")]
    Start(String),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ShimError {
    /// The exit status the shim process ends with for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShimError::Create(m) | ShimError::Start(m) => exec_failure_code(m),
            ShimError::Usage => 2,
            ShimError::Io { .. } => 1,
        }
    }
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> ShimError {
    move |source| ShimError::Io { context, source }
}

fn nix_err(context: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
    move |e| ShimError::Io {
        context,
        source: io::Error::from_raw_os_error(e as i32),
    }
}

/// How the container ended, as the daemon reads it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: String,
    #[serde(default)]
    pub error: String,
}

pub struct ShimArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub state: PathBuf,
    /// A pipe to the daemon: the shim writes `ok <pid>` once the container runs, or
    /// `err <code> <message>` if it could not start it, then closes it.
    pub sync_fd: Option<i32>,
    /// Keep the container's stdin open for attach clients (`docker run -i`).
    pub open_stdin: bool,
    /// Run an extra process in the running container (`docker exec`) described by
    /// `<dir>/process.json`, with its log, exit record and attach socket in `<dir>`.
    pub exec_dir: Option<PathBuf>,
    /// json-file rotation (`--log-opt max-size`, `max-file`).
    pub log_max_size: Option<u64>,
    pub log_max_files: u32,
}

impl ShimArgs {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<ShimArgs, ShimError> {
        let (mut id, mut bundle, mut state, mut sync_fd) = (None, None, None, None);
        let mut open_stdin = false;
        let mut exec_dir = None;
        let mut log_max_size = None;
        let mut log_max_files = 1;
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if a == "--stdin" {
                open_stdin = true;
                continue;
            }
            let v = it.next().ok_or(ShimError::Usage)?;
            match a.as_str() {
                "--id" => id = Some(v),
                "--bundle" => bundle = Some(PathBuf::from(v)),
                "--state" => state = Some(PathBuf::from(v)),
                "--sync-fd" => sync_fd = Some(v.parse().map_err(|_| ShimError::Usage)?),
                "--exec" => exec_dir = Some(PathBuf::from(v)),
                "--log-max-size" => log_max_size = Some(v.parse().map_err(|_| ShimError::Usage)?),
                "--log-max-files" => log_max_files = v.parse().map_err(|_| ShimError::Usage)?,
                _ => return Err(ShimError::Usage),
            }
        }
        Ok(ShimArgs {
            id: id.ok_or(ShimError::Usage)?,
            bundle: bundle.ok_or(ShimError::Usage)?,
            state: state.ok_or(ShimError::Usage)?,
            sync_fd,
            open_stdin,
            exec_dir,
            log_max_size,
            log_max_files,
        })
    }
}

/// Runs the shim to completion; returns the container's exit code.
pub fn run(args: ShimArgs) -> Result<i32, ShimError> {
    // SAFETY: the daemon passed this descriptor to us for exactly this purpose and
    // nothing else in this process owns it.
    let mut sync: Option<File> = args
        .sync_fd
        .map(|fd| unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    if let Some(s) = &sync {
        // Never leak the daemon's pipe into the container's process.
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(s),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    let result = run_container(&args, &mut sync);
    if let (Err(e), Some(s)) = (&result, sync.as_mut()) {
        let _ = writeln!(
            s,
            "err {} {}",
            e.exit_code(),
            e.to_string().replace('\n', " ")
        );
    }
    result
}

fn run_container(args: &ShimArgs, sync: &mut Option<File>) -> Result<i32, ShimError> {
    std::fs::create_dir_all(&args.state).map_err(io_err("creating state dir"))?;
    // The directory holding this process's log, exit record and sockets.
    let io_dir = args.exec_dir.clone().unwrap_or_else(|| args.bundle.clone());
    let terminal = match &args.exec_dir {
        Some(dir) => {
            let bytes =
                std::fs::read(dir.join("process.json")).map_err(io_err("reading process.json"))?;
            let p: oci_spec::runtime::Process = serde_json::from_slice(&bytes)
                .map_err(|e| ShimError::Create(format!("reading process.json: {e}")))?;
            p.terminal().unwrap_or(false)
        }
        None => {
            let spec = oci_spec::runtime::Spec::load(args.bundle.join("config.json"))
                .map_err(|e| ShimError::Create(format!("reading config.json: {e}")))?;
            spec.process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false)
        }
    };
    // Attach clients connect here once the container runs.
    let _ = std::fs::remove_file(io_dir.join(super::attach_proto::SOCKET));
    let (_dir, attach_path) = super::attach_proto::short_path(&io_dir, super::attach_proto::SOCKET)
        .map_err(io_err("opening the bundle"))?;
    let attach = UnixListener::bind(&attach_path).map_err(io_err("binding the attach socket"))?;

    let builder = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(&args.state)
        .map_err(|e| ShimError::Create(e.to_string()))?;
    let (builder, io) = if terminal {
        // libcontainer's init creates the PTY and sends us its master over this socket.
        let console_path = io_dir.join("console.sock");
        let _ = std::fs::remove_file(&console_path);
        let (_dir, short) = super::attach_proto::short_path(&io_dir, "console.sock")
            .map_err(io_err("opening the bundle"))?;
        let console = UnixListener::bind(&short).map_err(io_err("binding the console socket"))?;
        (
            builder.with_console_socket(Some(&console_path)),
            Stdio::Tty(console),
        )
    } else {
        let (out_r, out_w) = nix::unistd::pipe().map_err(nix_err("creating stdout pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe().map_err(nix_err("creating stderr pipe"))?;
        let (stdin_for_container, stdin_writer): (OwnedFd, Option<File>) = if args.open_stdin {
            let (r, w) = nix::unistd::pipe().map_err(nix_err("creating stdin pipe"))?;
            (r, Some(File::from(w)))
        } else {
            (
                File::open("/dev/null")
                    .map_err(io_err("opening /dev/null"))?
                    .into(),
                None,
            )
        };
        (
            builder
                .with_stdin(stdin_for_container)
                .with_stdout(out_w)
                .with_stderr(err_w),
            Stdio::Pipes {
                out: out_r,
                err: err_r,
                stdin: stdin_writer,
            },
        )
    };
    let builder = builder
        .validate_id()
        .map_err(|e| ShimError::Create(e.to_string()))?;
    if let Some(dir) = &args.exec_dir {
        let pid = with_default_signals(|| {
            builder
                .as_tenant()
                .with_process(Some(dir.join("process.json")))
                .with_detach(true)
                .build()
        });
        let pid = match pid {
            Ok(pid) => pid,
            Err(e) => {
                let msg = e.to_string();
                record_exit(&io_dir, exec_failure_code(&msg), &msg)?;
                return Err(ShimError::Create(msg));
            }
        };
        return supervise(pid, None, &io_dir, io, attach, sync, (None, 1));
    }
    // A shim that was SIGKILLed could not delete its container's state; the engine
    // starts a shim only for a container that is not running, so any state here is
    // stale and would make the create fail with "container already exists".
    let stale = args.state.join(&args.id);
    if stale.exists() {
        if let Ok(mut c) = libcontainer::container::Container::load(stale.clone()) {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_dir_all(&stale);
    }
    let container = with_default_signals(|| {
        builder
            .as_init(&args.bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
    });
    let mut container = match container {
        Ok(c) => c,
        Err(e) => {
            // A failed create may have left state and cgroups behind: remove them.
            if let Ok(mut c) = libcontainer::container::Container::load(args.state.join(&args.id)) {
                let _ = c.delete(true);
            }
            let msg = e.to_string();
            record_exit(&args.bundle, exec_failure_code(&msg), &msg)?;
            return Err(ShimError::Create(msg));
        }
    };
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        let msg = e.to_string();
        record_exit(&args.bundle, exec_failure_code(&msg), &msg)?;
        return Err(ShimError::Start(msg));
    }
    let pid = container
        .pid()
        .ok_or_else(|| ShimError::Start("container has no pid".into()))?;
    supervise(
        pid,
        Some(container),
        &io_dir,
        io,
        attach,
        sync,
        (args.log_max_size, args.log_max_files),
    )
}

/// Reports the process started, pumps its I/O until its output closes, reaps it,
/// deletes the container (init only) and records the exit.
/// Runs `f` (libcontainer's `build()`, which forks the container's process) with
/// every ignored signal set back to its default action. Rust ignores SIGPIPE in every
/// program, the shim included, and an ignored signal stays ignored across fork and
/// exec: containers would start with SIGPIPE (and whatever else the engine's own
/// starter ignored, like a shell's SIGQUIT) ignored, where Docker's start with none,
/// and a writer to a closed pipe would spin on EPIPE instead of dying. The shim's own
/// dispositions are put back afterwards.
fn with_default_signals<T>(f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    let mut restore = Vec::new();
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL (or putting back the action just read) runs no
        // code of ours in a signal context.
        if let Ok(old) = unsafe { sigaction(sig, &default) } {
            if old.handler() == SigHandler::SigIgn {
                restore.push((sig, old));
            } else {
                // SAFETY: as above.
                let _ = unsafe { sigaction(sig, &old) };
            }
        }
    }
    let result = f();
    for (sig, old) in restore {
        // SAFETY: as above.
        let _ = unsafe { sigaction(sig, &old) };
    }
    result
}

fn supervise(
    pid: nix::unistd::Pid,
    container: Option<libcontainer::container::Container>,
    io_dir: &Path,
    io: Stdio,
    attach: UnixListener,
    sync: &mut Option<File>,
    rotation: (Option<u64>, u32),
) -> Result<i32, ShimError> {
    if let Some(mut s) = sync.take() {
        let _ = writeln!(s, "ok {pid}");
    }
    let log = super::logfile::RotatingLog::open(&io_dir.join(LOG_FILE), rotation.0, rotation.1)
        .map_err(io_err("opening the container log"))?;
    let pump = match io {
        Stdio::Pipes { out, err, stdin } => Pump::pipes(out, err, stdin, attach, log),
        Stdio::Tty(console) => {
            let master = receive_pty_master(&console)?;
            Pump::pty(master, attach, log).map_err(io_err("setting up the terminal"))?
        }
    };
    pump.run().map_err(io_err("copying container output"))?;

    // The process is our sibling-cloned child with no exit signal: __WALL.
    let code = loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(nix_err("waiting for the container")(e)),
        }
    };
    if let Some(mut c) = container {
        let _ = c.delete(true);
    }
    record_exit(io_dir, code, "")?;
    Ok(code)
}

/// Docker's exit codes for a process that could not be executed: 127 when the
/// executable does not exist, 126 when it exists but cannot be run.
pub fn exec_failure_code(message: &str) -> i32 {
    if message.contains("not found") || message.contains("No such file") {
        127
    } else {
        126
    }
}

fn record_exit(bundle: &Path, code: i32, error: &str) -> Result<(), ShimError> {
    let record = ExitRecord {
        exit_code: code,
        finished_at: crate::clock::now(),
        error: error.to_string(),
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    // Replaced atomically but not synced: a killed engine finds it (the page cache
    // outlives the process), and after a power cut no container is running anyway
    // and a missing record reads as the unknown exit it then is. Two fsyncs would
    // sit between every RUN step's exit and its commit.
    replace(&bundle.join(EXIT_FILE), &bytes).map_err(io_err("writing exit record"))
}

/// How the container's stdio is wired.
enum Stdio {
    Pipes {
        out: OwnedFd,
        err: OwnedFd,
        stdin: Option<File>,
    },
    Tty(UnixListener),
}

/// Accepts libcontainer's connection on the console socket and takes the PTY master
/// it sends with SCM_RIGHTS.
fn receive_pty_master(console: &UnixListener) -> Result<OwnedFd, ShimError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let (conn, _) = console
        .accept()
        .map_err(io_err("accepting the console socket"))?;
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(nix_err("receiving the PTY master"))?;
    for c in msg.cmsgs().map_err(nix_err("reading control messages"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; we own it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(ShimError::Start("no PTY master received".into()))
}

/// Reads the exit record a shim left, if the container has exited.
pub fn read_exit(bundle: &Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(bundle.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args() {
        let a = ShimArgs::parse(["--id", "x", "--bundle", "/b", "--state", "/s"].map(String::from))
            .unwrap();
        assert_eq!(a.id, "x");
        assert!(ShimArgs::parse(["--id".to_string()]).is_err());
    }
}
