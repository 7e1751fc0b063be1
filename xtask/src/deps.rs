//! System packages the suites and `run` need, installed idempotently from Debian.

use std::process::{Command, Stdio};

use anyhow::bail;

use crate::proc::{is_root, run, step};

/// Debian packages for the engine and its tests. Later issues append here.
pub const PACKAGES: &[&str] = &[
    "docker-registry", // a real registry for pull tests
    "skopeo",          // pushes locally built OCI layouts to it
    "busybox-static",  // the static binary test images are made of
    "openssl",         // the token-auth fixture signs JWTs with it
    "ca-certificates",
    "libseccomp-dev", // libcontainer links libseccomp
    "pkg-config",
];

/// Packages only `cargo xtask bench` needs: Debian's dockerd as the reference.
pub const BENCH_PACKAGES: &[&str] = &["docker.io"];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

pub fn ensure_packages(pkgs: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    if !is_root() {
        bail!(
            "missing packages {}; run as root or install them: apt-get install {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

/// The stock `docker` CLI the suites drive; Debian's docker.io provides one if absent.
pub fn ensure_docker_cli() -> anyhow::Result<()> {
    let ok = Command::new("docker")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    ensure_packages(&["docker.io"])
}

/// Whether `cargo nextest` can run; installs it once if not.
pub fn ensure_nextest() -> bool {
    let has = || {
        crate::proc::cargo()
            .args(["nextest", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if has() {
        return true;
    }
    step("installing cargo-nextest");
    run(crate::proc::cargo().args(["install", "cargo-nextest", "--locked"])).is_ok() && has()
}
