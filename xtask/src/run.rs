//! `cargo xtask run`: Berth on this machine. On Linux the engine runs natively;
//! where there is a display the desktop app opens on it, else the engine runs
//! headless. Ctrl-C or SIGTERM reach the engine as one SIGTERM (a second one kills it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::deps;
use crate::ping;
use crate::proc::{cargo, is_root, run as run_cmd, step, target_dir, uid, workspace_root, Daemon};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the engine gets to stop when this command itself fails.
const STOP_GRACE: Duration = Duration::from_secs(30);

const RUN_USAGE: &str = "usage: cargo xtask run [--root DIR] [--socket PATH]";

/// The engine's API socket when none is given.
fn default_socket() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("berth/docker.sock");
    }
    if is_root() {
        return PathBuf::from("/run/berth/docker.sock");
    }
    private_tmp_dir().join("docker.sock")
}

/// `/tmp/berth-$UID`: the fallback socket directory, private to this user.
fn private_tmp_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/berth-{}", uid()))
}

/// The engine's data directory when none is given.
fn default_root() -> anyhow::Result<PathBuf> {
    if is_root() {
        return Ok(PathBuf::from("/var/lib/berth"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set; pass --root DIR")?;
    Ok(PathBuf::from(home).join(".local/share/berth"))
}

/// Creates the socket's directory. The shared-/tmp fallback must be ours and 0700.
fn prepare_socket_dir(socket: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    if dir != private_tmp_dir() {
        return std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()));
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != uid() {
        bail!(
            "{} exists but is not a directory owned by you; remove it or pass --socket PATH",
            dir.display()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

static CHILD: AtomicI32 = AtomicI32::new(0);
static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn forward(_sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    let n = SIGNALS.fetch_add(1, Ordering::SeqCst);
    if pid > 0 {
        let sig = if n == 0 { libc::SIGTERM } else { libc::SIGKILL };
        // SAFETY: kill(2) is async-signal-safe; pid is our own child.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn forward_signals_to(pid: u32) -> anyhow::Result<()> {
    CHILD.store(i32::try_from(pid)?, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler
        // only touches atomics and calls kill(2), both async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                bail!(
                    "installing a handler for signal {sig}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    Ok(())
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut root = None;
    let mut socket = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(it.next().context("--root needs a value")?)),
            "--socket" => {
                socket = Some(PathBuf::from(it.next().context("--socket needs a value")?))
            }
            "-h" | "--help" => {
                println!("{RUN_USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other:?}\n{RUN_USAGE}"),
        }
    }
    let root = match root {
        Some(r) => r,
        None => default_root()?,
    };
    let socket = socket.unwrap_or_else(default_socket);
    std::env::set_current_dir(workspace_root())?;

    step("tools");
    deps::ensure_packages(deps::PACKAGES)?;
    // An empty variable (`DISPLAY= cargo xtask run`) is no display.
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let display = set("DISPLAY") || set("WAYLAND_DISPLAY");
    if display {
        deps::ensure_packages(deps::DESKTOP_PACKAGES)?;
    }
    if !is_root() {
        println!(
            "note: not running as root. The engine needs root for containers (namespaces, \
             mounts, cgroups); image commands may still work."
        );
    }

    step("build berth-agent (release)");
    run_cmd(cargo().args(["build", "--release", "-p", "berth-agent"]))?;
    let bin = target_dir().join("release/berth-agent");
    // The build runs containers (its RUN steps), so it needs what the engine needs.
    let tutorial = crate::tutorial::archive(&bin)
        .map_err(|e| println!("note: no getting-started tutorial image this time ({e:#})"))
        .ok();

    step("engine");
    prepare_socket_dir(&socket)?;
    let mut cmd = Command::new(&bin);
    cmd.arg("daemon")
        .arg("--root")
        .arg(&root)
        .arg("--socket")
        .arg(&socket);
    if let Some(t) = &tutorial {
        // berth/getting-started, loaded into a fresh root (see `berth tutorial`).
        cmd.arg("--preload").arg(t);
    }
    let mut engine = Daemon::spawn("berth-agent", &mut cmd, STOP_GRACE)?;
    forward_signals_to(engine.pid())?;

    let deadline = Instant::now() + READY_TIMEOUT;
    while !ping::docker_api(&socket) {
        if let Some(status) = engine.exited() {
            if SIGNALS.load(Ordering::SeqCst) > 0 {
                println!("engine stopped before it was ready ({status})");
                return Ok(());
            }
            bail!(
                "the engine exited before it answered on {}: {status}",
                socket.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the engine did not answer on {} within {READY_TIMEOUT:?}",
                socket.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The window is the user's; closing it leaves the engine running, as
    // Docker Desktop's does, until Ctrl-C.
    let _app = if display {
        step("desktop app");
        let app = (|| {
            deps::build_frontend(false)?;
            run_cmd(cargo().args(["build", "--release", "-p", "berth-desktop"]))?;
            Command::new(target_dir().join("release/berth-desktop"))
                .env("DOCKER_HOST", format!("unix://{}", socket.display()))
                .spawn()
                .context("starting the desktop app")
        })();
        match app {
            Ok(child) => Some(child),
            Err(e) => {
                println!("the desktop app did not start ({e:#}); the engine runs headless");
                None
            }
        }
    } else {
        None
    };

    println!(
        "\nBerth engine is up (root {}). In another terminal:\n\n    \
         export DOCKER_HOST=unix://{}\n    \
         docker version    # the stock CLI now talks to Berth\n\n\
         Ctrl-C stops the engine.",
        root.display(),
        socket.display()
    );
    let status = engine.wait().context("waiting for the engine")?;
    let asked = SIGNALS.load(Ordering::SeqCst) > 0;
    if status.success() {
        println!("engine stopped cleanly");
        return Ok(());
    }
    if asked && status.code().is_none() {
        println!("engine stopped ({status})");
        return Ok(());
    }
    bail!("the engine exited with {status}")
}
