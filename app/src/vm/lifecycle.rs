//! Starting and stopping the VM, for the `berth` CLI and the desktop app
//! alike: `start` launches the detached supervisor (`berth vm run`) and
//! returns once the engine answers on the host socket; `stop` signals the
//! supervisor and waits for it to finish its clean shutdown.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{io_err, pid_alive, ping, running_supervisor, VmError, VmPaths, VmState};
use crate::paths::Paths;
use crate::settings::Settings;

/// How long a stop may take: the guest's clean shutdown, then escalation.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Started {
    /// It was running already.
    pub already: bool,
    pub state: Option<VmState>,
    pub took: Duration,
    pub docker_host: String,
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Boots the VM through `berth_exe vm run` (the `berth` binary: the CLI passes
/// itself, the app the one installed beside it).
pub fn start(paths: &Paths, berth_exe: &Path, timeout: Duration) -> Result<Started, VmError> {
    let vmp = VmPaths::new(paths.vm_dir());
    let sock = paths.user_docker_endpoint();
    let docker_host = sock.docker_host();
    let t = Instant::now();
    if let Some(pid) = running_supervisor(&vmp) {
        if ping(&sock) {
            return Ok(Started {
                already: true,
                state: VmState::read(&vmp),
                took: t.elapsed(),
                docker_host,
            });
        }
        return Err(VmError::Boot(format!(
            "a VM supervisor (pid {pid}) is still starting or stopping; try again shortly"
        )));
    }
    // Validate settings here, where the user sees the error.
    Settings::load(&paths.settings_file())?;
    std::fs::create_dir_all(&vmp.dir).map_err(io_err(format!("creating {}", vmp.dir.display())))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(vmp.supervisor_log())
        .map_err(io_err("opening the supervisor log"))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = std::process::Command::new(berth_exe);
    cmd.args(["vm", "run"])
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(io_err("opening the supervisor log"))?,
        )
        .stderr(log);
    // The supervisor outlives the command (or app) that started it.
    crate::os::detach(&mut cmd);
    let mut child = cmd.spawn().map_err(io_err("starting the VM supervisor"))?;
    loop {
        // The supervisor marks the VM running right after its own first
        // `_ping`; waiting for both means callers (the CLI's summary, the app's
        // status) read a settled state, not "starting".
        if ping(&sock) && VmState::read(&vmp).is_some_and(|s| s.phase == super::Phase::Running) {
            break;
        }
        if let Some(status) = child
            .try_wait()
            .map_err(io_err("waiting for the supervisor"))?
        {
            return Err(VmError::Boot(format!(
                "the VM supervisor stopped ({status}):\n{}",
                log_tail(&vmp.supervisor_log(), log_start)
            )));
        }
        if t.elapsed() > timeout {
            return Err(VmError::Boot(format!(
                "the engine did not answer within {}s; the VM is still starting (see `berth vm logs`)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Started {
        already: false,
        state: VmState::read(&vmp),
        took: t.elapsed(),
        docker_host,
    })
}

/// Asks the supervisor to shut the VM down and waits; `false` if it was not running.
pub fn stop(paths: &Paths) -> Result<bool, VmError> {
    let vmp = VmPaths::new(paths.vm_dir());
    let Some(pid) = running_supervisor(&vmp) else {
        return Ok(false);
    };
    crate::os::request_stop(pid).map_err(io_err("asking the VM supervisor to stop"))?;
    let t = Instant::now();
    while pid_alive(pid) {
        if t.elapsed() > STOP_TIMEOUT {
            return Err(VmError::Boot(format!(
                "the VM supervisor (pid {pid}) did not stop within {}s",
                STOP_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(true)
}
