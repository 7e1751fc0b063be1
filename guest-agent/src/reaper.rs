//! The engine is a child subreaper, as containerd is: when a shim dies, the container
//! processes it started are re-parented to the engine rather than to init, so the
//! engine can kill them and reap them instead of leaving strays or zombies behind.
//!
//! Shims are spawned with `tokio::process`, which reaps them itself (by pid). A
//! `waitpid(-1)` loop would steal their statuses, so the reaper only waits on children
//! it does not own: everything spawned through [`spawn`] is registered before the
//! reaper can look at it.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

static OWNED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn owned() -> MutexGuard<'static, BTreeSet<i32>> {
    OWNED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks this process as a child subreaper.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A child spawned through [`spawn`]: tokio reaps it; the reaper leaves it alone.
pub struct Child {
    inner: tokio::process::Child,
    pid: Option<i32>,
}

impl Child {
    pub fn id(&self) -> Option<u32> {
        self.inner.id()
    }

    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.inner.wait().await;
        if let Some(pid) = self.pid.take() {
            owned().remove(&pid);
        }
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Unwaited: tokio's orphan queue reaps it; whichever reaper wins, the other
        // gets ECHILD, which both ignore.
        if let Some(pid) = self.pid.take() {
            owned().remove(&pid);
        }
    }
}

/// Spawns `cmd`, registering its pid before the reaper can see it exit.
pub fn spawn(cmd: &mut tokio::process::Command) -> std::io::Result<Child> {
    let mut set = owned();
    let inner = cmd.spawn()?;
    let pid = inner.id().map(|p| p as i32);
    if let Some(p) = pid {
        set.insert(p);
    }
    Ok(Child { inner, pid })
}

/// Runs a short-lived helper program (e.g. `nft`) to completion, registered like
/// [`spawn`] so the reaper does not take its exit status from `wait`.
pub fn output(
    cmd: &mut std::process::Command,
    input: &[u8],
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    let mut child = {
        let mut set = owned();
        let child = cmd.spawn()?;
        set.insert(child.id() as i32);
        child
    };
    let pid = child.id() as i32;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output();
    owned().remove(&pid);
    out
}

/// Reaps re-parented children whenever SIGCHLD arrives. Runs for the daemon's life.
pub async fn run() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sig = match signal(SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGCHLD; strays will not be reaped");
            return;
        }
    };
    loop {
        reap_strays();
        if sig.recv().await.is_none() {
            return;
        }
    }
}

/// Waits (without blocking) on every child that tokio does not own.
pub fn reap_strays() -> usize {
    let set = owned();
    let mut reaped = 0;
    for pid in children() {
        if set.contains(&pid) {
            continue;
        }
        match waitpid(
            Pid::from_raw(pid),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::Exited(_, code)) => {
                tracing::debug!(pid, code, "reaped a re-parented process");
                reaped += 1;
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                tracing::debug!(pid, signal = %sig, "reaped a re-parented process");
                reaped += 1;
            }
            _ => {}
        }
    }
    reaped
}

/// This process's children: `/proc/self/task/*/children` lists them per thread.
fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_lists_a_live_child() {
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let pid = c.id() as i32;
        assert!(children().contains(&pid));
        let _ = c.kill();
        let _ = c.wait();
    }
}
