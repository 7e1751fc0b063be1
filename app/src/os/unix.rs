//! Linux and macOS: unix sockets, signals, `kill(2)`, modes and symlinks.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitStatus;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::AsyncLocalStream;

/// A connected local endpoint (the docker socket, QMP), for short synchronous talks.
pub type LocalStream = std::os::unix::net::UnixStream;

pub fn connect_unix(path: &Path) -> io::Result<LocalStream> {
    let s = LocalStream::connect(path)?;
    // A wedged peer must not hang `berth vm status` or a ping.
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    Ok(s)
}

/// Read and write timeouts on a local stream.
pub fn set_timeouts(s: &LocalStream, d: std::time::Duration) -> io::Result<()> {
    s.set_read_timeout(Some(d))?;
    s.set_write_timeout(Some(d))
}

fn no_pipes(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{name}: named pipes exist only on Windows"),
    )
}

pub fn connect_pipe(name: &str) -> io::Result<LocalStream> {
    Err(no_pipes(name))
}

pub async fn connect_unix_async(path: &Path) -> io::Result<AsyncLocalStream> {
    Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
}

pub async fn connect_pipe_async(name: &str) -> io::Result<AsyncLocalStream> {
    Err(no_pipes(name))
}

/// Whether `pid` runs; a zombie counts as gone.
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    if !alive {
        return false;
    }
    // Linux only; macOS has no /proc and reaps through launchd quickly enough.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'))
}

/// Asks the supervisor `pid` to shut the VM down cleanly (it handles SIGTERM).
pub fn request_stop(pid: u32) -> io::Result<()> {
    // SAFETY: plain kill(2).
    match unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Starts `cmd` in its own session: it outlives the command (or app) that started it.
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and affects only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Makes `cmd` lead its own process group, so [`kill_tree`] reaches its workers.
pub fn own_group(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
}

/// Kills the process group `pid` leads (see [`own_group`]).
pub fn kill_tree(pid: u32) {
    // SAFETY: killpg on a group we created; an error means it is gone already.
    unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
}

/// Sets a file's or directory's mode (owner-only files are 0600, folders 0700).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A file's mode bits, to keep them when a file is rewritten.
pub fn mode(meta: &std::fs::Metadata) -> Option<u32> {
    Some(meta.permissions().mode() & 0o7777)
}

/// Whether `berth install` links its commands into a PATH folder (not on
/// Windows, where symlinks need a privilege).
pub const LINKS_ON_PATH: bool = true;

/// The registry's `Path` is Windows' own; here commands are linked instead.
pub fn add_path_entry(_scope: super::PathScope, _dir: &Path) -> io::Result<bool> {
    Err(no_path_var())
}

pub fn remove_path_entry(_scope: super::PathScope, _dir: &Path) -> io::Result<bool> {
    Err(no_path_var())
}

fn no_path_var() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "only Windows keeps folders on PATH in the registry; here `berth install` links the commands",
    )
}

pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Free bytes on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// What a file really takes on disk (a sparse qcow2 is much less than its length).
pub fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

/// How a process ended, for logs: its exit code, or the signal that killed it.
pub fn describe_exit(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// The registry's `Run` key is Windows'; start at login is a file here.
pub fn set_run_at_login(_name: &str, _command: Option<&str>) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the Run registry key exists only on Windows",
    ))
}

/// A process's resident memory in bytes (Linux's `/proc`; None elsewhere).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Whether the current user is root (virtiofsd needs no uid mapping then).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The supervisor's stop requests: SIGTERM (`berth vm stop`) and SIGINT (Ctrl-C).
pub struct StopRequests {
    term: Signal,
    int: Signal,
}

impl StopRequests {
    pub fn install() -> io::Result<StopRequests> {
        Ok(StopRequests {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Returns at the next request.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// A stand-in for an exited child's guardian (see the macOS [`Reaper`]): a
/// shell that waits for EOF on its stdin, then kills `pid`. The supervisor
/// holds the only write end, so the kernel closes it when the supervisor dies,
/// however it dies. Built for every unix so Linux's tests cover it.
#[cfg(any(target_os = "macos", test))]
pub(crate) fn spawn_guardian(pid: u32) -> io::Result<tokio::process::Child> {
    tokio::process::Command::new("/bin/sh")
        .arg("-c")
        // `cat` returns at EOF; kill the child's group if it leads one, else it.
        .arg(r#"cat >/dev/null; kill -KILL -"$0" 2>/dev/null || kill -KILL "$0" 2>/dev/null"#)
        .arg(pid.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // Dropped with its child's Guard: the child ended normally, nothing to kill.
        .kill_on_drop(true)
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guardian_kills_its_child_when_the_write_end_closes() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut guardian = spawn_guardian(pid).unwrap();
        assert!(pid_alive(pid));
        // What the kernel does when the supervisor dies: the write end closes.
        drop(guardian.stdin.take());
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
            .await
            .expect("the guardian killed the child")
            .unwrap();
        assert_eq!(describe_exit(status), "killed by signal 9");
        let _ = guardian.wait().await;
    }

    #[test]
    fn pipes_are_not_a_unix_thing() {
        assert_eq!(
            connect_pipe("x").unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
    }
}
