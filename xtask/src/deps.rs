//! The tools `test`, `run` and `bench` need, installed idempotently and loudly: Debian
//! packages through apt-get, `cargo-nextest` through cargo, and a `docker` CLI.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};

use crate::proc::{cargo, is_root, run, show};

/// Debian packages every command needs. Later issues append here.
pub const PACKAGES: &[&str] = &[
    "docker-registry", // a real registry for the pull tests and the pull bench
    "skopeo",          // pushes locally built OCI layouts to it
    "busybox-static",  // the static binary test images are made of
    "zstd",            // zstd-compressed test layers
    "iproute2",        // `ip`, for container networking
    "nftables",        // `nft`: the NAT and forwarding rules of bridge networks
    "openssl",         // the token-auth registry fixture signs JWTs with it
    "ca-certificates", // TLS to real registries
    "libseccomp-dev",  // libcontainer links libseccomp
    "pkg-config",      // … and finds it with pkg-config
    "tini",            // its static build is what `docker run --init` runs
    "docker-compose",  // Compose 1.29 as an Engine API client in the suite
    "libc6-dev",       // libc.a: the UDP test builds a static echo server with gcc
    "libdbus-1-dev",   // the credential helper's Secret Service backend links libdbus
    "curl",            // the VM suite checks published ports the way a user would
    "util-linux",      // `script`: interactive `docker run -it` under a pty
    "openssh-client",  // a real ssh-agent (and ssh-add) for `docker build --ssh`
];

/// What the desktop app builds against and its end-to-end test drives it with.
pub const DESKTOP_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",        // Tauri's webview on Linux
    "libayatana-appindicator3-dev", // the tray icon
    "librsvg2-dev",                 // icons
    "webkit2gtk-driver",            // WebKitWebDriver, behind tauri-driver
    "xvfb",                         // a display for the app under test
    "nodejs",                       // the frontend's build (Vite) and unit tests (vitest)
];

/// `tauri-driver`: the WebDriver front the desktop suite talks to.
pub fn ensure_tauri_driver() -> anyhow::Result<()> {
    ensure_tool("tauri-driver", "2.1.0")
}

/// The frontend's packages (from its lockfile), its unit tests and its build
/// into `frontend/dist`, which the desktop crate embeds.
pub fn build_frontend(test: bool) -> anyhow::Result<()> {
    let dir = crate::proc::workspace_root().join("frontend");
    // NodeSource's nodejs carries npm; Debian's needs its own package.
    let has_npm = Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_npm {
        ensure_packages(&["npm"])?;
    }
    let npm = |args: &[&str]| {
        let mut c = Command::new("npm");
        c.args(args).current_dir(&dir);
        c
    };
    if !installed_from(&dir) {
        run(&mut npm(&["ci", "--no-audit", "--no-fund"]))?;
    }
    if test {
        run(&mut npm(&["test"]))?;
        // Vite strips types without checking them; this is what holds the
        // pages to the types generated from the Rust model (lib/model.ts).
        run(&mut npm(&["run", "check"]))?;
    }
    run(&mut npm(&["run", "build"]))
}

/// Whether `node_modules` was installed from the current lockfile: npm
/// writes its own copy there, so a lockfile changed since (a pull, a merge)
/// is newer than it.
fn installed_from(frontend: &std::path::Path) -> bool {
    let modified = |p: &str| std::fs::metadata(frontend.join(p)).and_then(|m| m.modified());
    match (
        modified("node_modules/.package-lock.json"),
        modified("package-lock.json"),
    ) {
        (Ok(installed), Ok(lock)) => installed >= lock,
        _ => false,
    }
}

/// Debian's dockerd (+ containerd, runc, iptables): the reference engine the bench
/// measures Berth against and the suite runs beside Berth (not needed to run Berth).
pub const REFERENCE_PACKAGES: &[&str] = &["docker.io"];

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

fn installed(pkg: &str) -> anyhow::Result<bool> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .context("cannot run dpkg-query: these commands expect Debian or Ubuntu")?;
    Ok(out.status.success() && String::from_utf8_lossy(&out.stdout) == "install ok installed")
}

/// Installs whichever of `pkgs` are missing (one `apt-get update` per run at most).
pub fn ensure_packages(pkgs: &[&str]) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for p in pkgs {
        if !installed(p)? {
            missing.push(*p);
        }
    }
    if missing.is_empty() {
        println!("Debian packages present: {}", pkgs.join(" "));
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {list}. Run this as root, or install them first:\n    \
             sudo apt-get install --no-install-recommends {list}",
            list = missing.join(" ")
        );
    }
    println!("installing missing Debian packages: {}", missing.join(" "));
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run(Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null()))?;
    Ok(())
}

fn quietly(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The stock `docker` CLI the suites drive; Debian's `docker.io` provides one if absent.
pub fn ensure_docker_cli() -> anyhow::Result<()> {
    if let Some(v) = quietly(Command::new("docker").arg("--version")) {
        println!("docker CLI present: {v}");
        return Ok(());
    }
    println!("no `docker` CLI on PATH; Debian's docker.io provides one");
    ensure_packages(&["docker.io"])?;
    match quietly(Command::new("docker").arg("--version")) {
        Some(v) => {
            println!("docker CLI installed: {v}");
            Ok(())
        }
        None => bail!("docker.io is installed but `docker --version` still fails"),
    }
}

/// Whether `cargo nextest` can run, installing it once if not. `false` means the caller
/// falls back to `cargo test`.
/// `vhost-device-vsock` (rust-vmm), the hybrid-vsock backend the VM tests boot
/// through where the host has no kernel vhost-vsock; built from crates.io into
/// `target/tools`, where `berth` looks for it.
pub fn ensure_vhost_device_vsock() -> anyhow::Result<()> {
    ensure_tool("vhost-device-vsock", "0.3.0")
}

/// The Rust virtiofsd (crates.io), for virtio-fs shared folders. It links
/// libcap-ng and libseccomp.
pub fn ensure_virtiofsd() -> anyhow::Result<()> {
    ensure_packages(&["libcap-ng-dev", "libseccomp-dev", "pkg-config"])?;
    ensure_tool("virtiofsd", "1.13.3")
}

/// A helper program from crates.io, installed under `target/tools/bin`, where
/// `berth` looks for it.
fn ensure_tool(name: &str, version: &str) -> anyhow::Result<()> {
    let root = crate::proc::workspace_root().join("target/tools");
    if root.join("bin").join(name).is_file() {
        println!("{name} present");
        return Ok(());
    }
    let mut install = cargo();
    install
        .args([
            "install",
            "--locked",
            &format!("{name}@{version}"),
            "--root",
        ])
        .arg(&root);
    println!("{name} missing; running `{}`", show(&install));
    run(&mut install)
}

pub fn ensure_nextest() -> bool {
    let version = || quietly(cargo().args(["nextest", "--version"]));
    if let Some(v) = version() {
        println!("{}", v.lines().next().unwrap_or("cargo-nextest present"));
        return true;
    }
    let mut install = cargo();
    install.args(["install", "cargo-nextest", "--locked"]);
    println!("cargo-nextest missing; running `{}`", show(&install));
    if let Err(e) = run(&mut install) {
        println!("could not install cargo-nextest ({e:#}); falling back to `cargo test`");
        return false;
    }
    match version() {
        Some(v) => {
            println!("{}", v.lines().next().unwrap_or("cargo-nextest installed"));
            true
        }
        None => {
            println!("cargo-nextest installed but does not run; falling back to `cargo test`");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    /// A frontend folder in the system's temp dir with the two lockfiles
    /// written at the given times (seconds after the epoch); `None`: absent.
    fn frontend(name: &str, installed: Option<u64>, lock: Option<u64>) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-deps-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("node_modules")).unwrap();
        for (path, at) in [
            ("node_modules/.package-lock.json", installed),
            ("package-lock.json", lock),
        ] {
            if let Some(at) = at {
                let f = std::fs::File::create(dir.join(path)).unwrap();
                f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(at))
                    .unwrap();
            }
        }
        dir
    }

    #[test]
    fn a_lockfile_newer_than_the_install_reinstalls() {
        for (name, installed, lock, fresh) in [
            ("current", Some(2_000), Some(1_000), true),
            ("changed", Some(1_000), Some(2_000), false),
            ("never", None, Some(1_000), false),
        ] {
            let dir = frontend(name, installed, lock);
            assert_eq!(super::installed_from(&dir), fresh, "{name}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
