//! Linux: the kernel ends the VM's helpers with the supervisor.

use std::io;

/// Ends the supervisor's children when it dies, even by SIGKILL: a VM nobody
/// manages would hold the data disk and the ports. Linux asks the kernel
/// (`PR_SET_PDEATHSIG`), so nothing needs holding.
pub struct Reaper;

/// What keeps one child tied to the supervisor (nothing, on Linux).
pub struct Guard;

impl Reaper {
    pub fn new() -> io::Result<Reaper> {
        Ok(Reaper)
    }

    /// Before `cmd` is spawned.
    pub fn prepare(&self, cmd: &mut tokio::process::Command) {
        // SAFETY: prctl is async-signal-safe and touches only this child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }

    /// After the child is spawned; keep the guard as long as the child.
    pub fn adopt(&self, _child: &tokio::process::Child) -> io::Result<Guard> {
        Ok(Guard)
    }
}
