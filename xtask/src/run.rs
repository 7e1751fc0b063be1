//! `cargo xtask run`: Berth on this machine. Linux runs the engine natively (as root);
//! the desktop app arrives with its own issue, so this is headless everywhere for now.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::deps;
use crate::proc::{cargo, is_root, run as run_cmd, step, workspace_root};

fn default_socket() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("berth/docker.sock");
    }
    if is_root() {
        return PathBuf::from("/run/berth/docker.sock");
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/berth-{uid}/docker.sock"))
}

fn default_root() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/berth");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".local/share/berth")
}

static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our child.
        unsafe {
            libc::kill(
                pid,
                if sig == libc::SIGINT {
                    libc::SIGTERM
                } else {
                    sig
                },
            );
        }
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut root = default_root();
    let mut socket = default_socket();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = it.next().context("--root needs a value")?.into(),
            "--socket" => socket = it.next().context("--socket needs a value")?.into(),
            other => bail!("unknown option {other:?} (run takes --root DIR and --socket PATH)"),
        }
    }
    if !is_root() {
        bail!("the native engine needs root (namespaces, mounts, cgroups): run `sudo cargo xtask run`");
    }
    std::env::set_current_dir(workspace_root())?;
    deps::ensure_packages(&["ca-certificates"])?;
    if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        println!(
            "note: the desktop app is not part of this build yet; starting the engine headless."
        );
    }
    step("building berth-agent (release)");
    run_cmd(cargo().args(["build", "--release", "-p", "berth-agent"]))?;
    let bin = workspace_root().join("target/release/berth-agent");
    let mut child = Command::new(&bin)
        .arg("daemon")
        .arg("--root")
        .arg(&root)
        .arg("--socket")
        .arg(&socket)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    CHILD.store(child.id() as i32, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: installing a handler that only calls async-signal-safe kill(2).
    unsafe {
        libc::signal(libc::SIGINT, forward as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, forward as *const () as libc::sighandler_t);
    }
    println!("\nBerth engine starting (root {}).", root.display());
    println!(
        "In another terminal:\n\n    export DOCKER_HOST=unix://{}\n    docker version\n",
        socket.display()
    );
    println!("Ctrl-C stops the engine.");
    let status = child.wait()?;
    if !status.success() && status.code().is_some() {
        bail!("engine exited with {status}");
    }
    println!("engine stopped");
    Ok(())
}
