//! The real [`ContainerRuntime`]: overlayfs for root filesystems, this binary
//! re-executed as a per-container shim for processes, signals through `kill(2)`, and
//! youki's libcontainer/libcgroups for pause and live limits.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use tokio::io::AsyncBufReadExt;

use super::rootfs::{mount_overlay, unmount, RootfsDirs};
use super::shim::{read_exit, ExitRecord};
use super::{spec, BoxFuture, ContainerRuntime, StartFailure, StartRequest, Started};

/// Containers as processes of this host (or VM).
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxRuntime;

impl ContainerRuntime for LinuxRuntime {
    fn mount_rootfs(&self, layers: &[PathBuf], dirs: &RootfsDirs) -> io::Result<()> {
        mount_overlay(layers, dirs)
    }

    fn unmount_rootfs(&self, dirs: &RootfsDirs) -> io::Result<()> {
        unmount(dirs)
    }

    fn start<'a>(&'a self, req: StartRequest<'a>) -> BoxFuture<'a, Result<Started, StartFailure>> {
        Box::pin(async move {
            let (child, pid) = spawn_shim(&req).await?;
            let shim_pid = child.id().unwrap_or(0) as i64;
            Ok(Started {
                pid,
                shim_pid,
                exited: Box::pin(async move {
                    let mut child = child;
                    let _ = child.wait().await;
                }),
            })
        })
    }

    fn exit_record(&self, dir: &Path) -> Option<ExitRecord> {
        read_exit(dir)
    }

    fn signal(&self, pid: i64, sig: Signal) -> io::Result<()> {
        if pid <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "container has no process",
            ));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
            .map_err(|e| io::Error::from_raw_os_error(e as i32))
    }

    fn alive(&self, pid: i64) -> bool {
        pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
    }

    fn owns(&self, id: &str, pid: i64) -> bool {
        pid > 0
            && std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(id))
    }

    /// libcontainer's pause does not clone, so it may run in the daemon.
    fn set_paused(&self, _id: &str, state_dir: &Path, pause: bool) -> Result<(), String> {
        let mut c = libcontainer::container::Container::load(state_dir.to_path_buf())
            .map_err(|e| e.to_string())?;
        if pause {
            c.pause().map_err(|e| e.to_string())
        } else {
            c.resume().map_err(|e| e.to_string())
        }
    }

    fn update(&self, id: &str, resources: &spec::Resources) -> Result<(), String> {
        use libcgroups::common::{
            create_cgroup_manager, CgroupConfig, CgroupManager, ControllerOpt,
        };
        let linux = spec::linux_resources(resources, Vec::new()).map_err(|e| e.to_string())?;
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: PathBuf::from(format!("/berth/{id}")),
            systemd_cgroup: false,
            container_name: id.to_string(),
        })
        .map_err(|e| e.to_string())?;
        manager
            .apply(&ControllerOpt {
                resources: &linux,
                disable_oom_killer: false,
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| e.to_string())
    }
}

/// Re-executes this binary as the container's shim in its own session, and waits for
/// its first word on the sync pipe: `ok <pid>` or `err <code> <message>`.
async fn spawn_shim(req: &StartRequest<'_>) -> Result<(crate::reaper::Child, i64), StartFailure> {
    let fail = |code: i64, detail: String| StartFailure { code, detail };
    let (rd, wr): (OwnedFd, OwnedFd) =
        nix::unistd::pipe().map_err(|e| fail(255, format!("creating the sync pipe: {e}")))?;
    let wr_raw = wr.as_raw_fd();
    let dir = req.bundle;
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg("shim")
        .arg("--id")
        .arg(req.id)
        .arg("--bundle")
        .arg(dir)
        .arg("--state")
        .arg(dir.join("runtime"))
        .arg("--sync-fd")
        .arg("3")
        .args(req.open_stdin.then_some("--stdin"))
        .arg("--log-max-size")
        .arg(req.log_rotation.0.to_string())
        .arg("--log-max-files")
        .arg(req.log_rotation.1.to_string())
        .args(
            req.exec_dir
                .map(|d| ["--exec".as_ref(), d.as_os_str()])
                .into_iter()
                .flatten(),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wr_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child =
        crate::reaper::spawn(&mut cmd).map_err(|e| fail(255, format!("starting the shim: {e}")))?;
    drop(wr);
    let file = tokio::fs::File::from_std(std::fs::File::from(rd));
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(file);
    let _ = reader.read_line(&mut line).await;
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ok ") {
        let pid = pid.parse().unwrap_or(0);
        return Ok((child, pid));
    }
    let mut child = child;
    let _ = child.wait().await;
    match line.strip_prefix("err ") {
        Some(rest) => {
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            Err(fail(code.parse().unwrap_or(255), msg.to_string()))
        }
        None => Err(fail(
            255,
            "the shim exited before starting the container".into(),
        )),
    }
}
