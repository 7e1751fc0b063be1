//! Child processes: foreground commands with a header line and inherited stdio, and
//! background daemons that are stopped (SIGTERM, then SIGKILL) when their guard drops.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Prints the header line of a step: `==> title`.
pub fn step(title: &str) {
    println!("\n==> {title}");
}

/// Runs `cmd` in the foreground with inherited stdio; fails with its exit status.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = show(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed: {status}");
    }
    Ok(())
}

/// Runs `cmd` with stdin closed; its stdout, or a failure with its stderr.
pub fn output(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cmd` as a shell-like line, for messages.
pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cargo that runs us (so toolchain overrides carry over).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => workspace_root().join(d),
        None => workspace_root().join("target"),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Sends `sig` to `pid`; errors (already gone) are ignored.
pub fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// "1m 02.3s" / "4.21s".
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m {:04.1}s", (secs / 60.0).floor(), secs % 60.0)
    } else {
        format!("{secs:.2}s")
    }
}

/// A background process owned by the caller: SIGTERM on drop, SIGKILL after `grace`.
pub struct Daemon {
    pub name: String,
    child: Child,
    grace: Duration,
}

impl Daemon {
    /// Spawns `cmd` in its own process group, so a Ctrl-C at the terminal reaches only
    /// us and we stop it in order.
    pub fn spawn(name: &str, cmd: &mut Command, grace: Duration) -> anyhow::Result<Daemon> {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name} (`{}`)", show(cmd)))?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            grace,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Blocks until it exits.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL. Returns whether it exited
    /// on its own terms.
    pub fn stop(&mut self) -> bool {
        if self.exited().is_some() {
            return true;
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} did not stop within {:?} of SIGTERM; killing it",
            self.name, self.grace
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
