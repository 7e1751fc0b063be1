//! macOS: no parent-death signal exists, so each child gets a guardian.

use std::io;

/// Ends the supervisor's children when it dies, even by SIGKILL: a VM nobody
/// manages would hold the data disk and the ports. macOS has no
/// `PR_SET_PDEATHSIG`; each child gets a guardian process that waits on a pipe
/// only the supervisor writes to, and kills the child when the pipe closes
/// (see [`super::unix::spawn_guardian`]). The children lead their own process
/// groups, so QEMU's and a backend's workers go with them.
pub struct Reaper;

/// A child's guardian; dropping it (the child was reaped normally) ends the
/// guardian without touching the child.
pub struct Guard {
    _guardian: tokio::process::Child,
}

impl Reaper {
    pub fn new() -> io::Result<Reaper> {
        Ok(Reaper)
    }

    /// Before `cmd` is spawned.
    pub fn prepare(&self, cmd: &mut tokio::process::Command) {
        cmd.process_group(0);
    }

    /// After the child is spawned; keep the guard as long as the child.
    pub fn adopt(&self, child: &tokio::process::Child) -> io::Result<Guard> {
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the child has already exited"))?;
        Ok(Guard {
            _guardian: super::unix::spawn_guardian(pid)?,
        })
    }
}

/// `keyring`'s default store here is the Keychain: nothing to choose.
pub fn prepare_keychain(_service: &str, _probe_key: &str) {}
