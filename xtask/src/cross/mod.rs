//! `cargo xtask cross`: Berth's host crates for Windows and macOS, from this Linux
//! machine. With the toolchain of [`toolchain`]:
//! 1. clippy (`-D warnings`, all targets) of `berth` and `berth-desktop` for
//!    `x86_64-pc-windows-gnu`, `aarch64-apple-darwin` and `x86_64-apple-darwin`:
//!    any `#[cfg(windows)]` or `#[cfg(target_os = "macos")]` code that does not
//!    compile, or warns, fails here;
//! 2. a real Windows build of `berth.exe` and `docker-credential-berth.exe`, and
//!    `berth --version` under Wine;
//! 3. `berth`'s unit tests and the credential helper's protocol suite (against
//!    Wine's Credential Manager), built for Windows and run under Wine;
//! 4. the NSIS installer's hooks (`installer/windows/hooks.nsh`) in a small
//!    installer around that `berth.exe`, installed and uninstalled under Wine
//!    ([`installer`]): the install folder comes onto the machine's Path and goes;
//! 5. the Windows pipe client (`app/tests/pipe_e2e.rs`), which the `windows_pipe`
//!    suite runs against `berth.exe serve` under Wine.
//!
//! Its products go to `target/tools/windows` (`berth.exe`, `pipe-e2e.exe`, and a
//! link to the Wine prefix), where the `windows_pipe` suite finds them.

mod installer;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::proc::{human, run, step, target_dir, workspace_root};

pub const TARGETS: &[&str] = &[
    "x86_64-pc-windows-gnu",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
];
const WINDOWS: &str = "x86_64-pc-windows-gnu";
const BUILD_STD: &str = "build-std=std,panic_abort";

/// Where the `windows_pipe` suite looks for the Windows build.
pub fn windows_dir() -> PathBuf {
    target_dir().join("tools/windows")
}

pub fn cross(_args: &[String]) -> anyhow::Result<()> {
    std::env::set_current_dir(workspace_root())?;
    let started = Instant::now();
    let mut times = Vec::new();
    let mut timed = |name: String, f: &mut dyn FnMut() -> anyhow::Result<()>| {
        step(&name);
        let t = Instant::now();
        let r = f();
        times.push((name, t.elapsed()));
        r
    };

    let mut tc = None;
    timed("cross: toolchain".into(), &mut || {
        tc = Some(toolchain::ensure()?);
        Ok(())
    })?;
    let tc = tc.context("the cross toolchain")?;
    // tauri's generate_context! embeds the built web UI.
    if !workspace_root().join("frontend/dist/index.html").is_file() {
        crate::deps::ensure_packages(&["nodejs"])?;
        crate::deps::build_frontend(false)?;
    }

    for target in TARGETS {
        timed(format!("cross: clippy {target}"), &mut || {
            run(tc.cargo().args([
                "clippy",
                "--locked",
                "-Z",
                BUILD_STD,
                "--target",
                target,
                "-p",
                "berth",
                "-p",
                "berth-desktop",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }

    let out = windows_dir();
    timed("cross: berth.exe".into(), &mut || {
        run(tc.cargo().args([
            "build", "--locked", "-Z", BUILD_STD, "--target", WINDOWS, "-p", "berth", "--bins",
        ]))?;
        std::fs::create_dir_all(&out)?;
        let built = tc.target_dir().join(WINDOWS).join("debug");
        for exe in ["berth.exe", "docker-credential-berth.exe"] {
            std::fs::copy(built.join(exe), out.join(exe))
                .with_context(|| format!("copying {exe}"))?;
        }
        let mut version = Command::new("wine");
        tc.wine_env(&mut version);
        let v = version
            .arg(out.join("berth.exe"))
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .context("running berth.exe under Wine")?;
        let text = String::from_utf8_lossy(&v.stdout);
        if !v.status.success() || !text.starts_with("berth ") {
            bail!(
                "berth.exe --version under Wine: {} {text}{}",
                v.status,
                String::from_utf8_lossy(&v.stderr)
            );
        }
        println!("under Wine: {}", text.trim());
        Ok(())
    })?;

    timed("cross: berth's tests under Wine".into(), &mut || {
        run(&mut windows_tests(
            &tc,
            &["--lib", "--bins", "--test", "helper_protocol"],
        ))
    })?;

    timed("cross: the NSIS hooks under Wine".into(), &mut || {
        installer::check(&tc, &out, &tc.target_dir().join("nsis-check"))
    })?;

    timed("cross: the Windows pipe client".into(), &mut || {
        let exe = test_executable(&tc, "pipe_e2e")?;
        std::fs::copy(&exe, out.join("pipe-e2e.exe")).context("copying the pipe client")?;
        let link = out.join("wineprefix");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(tc.wineprefix(), &link).context("linking the Wine prefix")?;
        println!("{} is ready for the windows_pipe suite", out.display());
        Ok(())
    })?;

    step("cross: times");
    for (name, took) in &times {
        println!("  {name:<42} {:>8}", human(*took));
    }
    println!("  {:<42} {:>8}", "total", human(started.elapsed()));
    Ok(())
}

/// `cargo test` of `berth` for Windows (run under Wine), with `which`.
fn windows_tests(tc: &toolchain::Toolchain, which: &[&str]) -> Command {
    let mut c = tc.cargo();
    c.args([
        "test", "--locked", "-Z", BUILD_STD, "--target", WINDOWS, "-p", "berth",
    ])
    .args(which);
    c
}

/// Builds `berth`'s integration test `name` for Windows; its executable.
fn test_executable(tc: &toolchain::Toolchain, name: &str) -> anyhow::Result<PathBuf> {
    let out = windows_tests(
        tc,
        &["--test", name, "--no-run", "--message-format", "json"],
    )
    .stderr(Stdio::inherit())
    .output()
    .context("building the Windows test")?;
    if !out.status.success() {
        bail!("building {name} for Windows failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == name)
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .filter(|p| Path::new(p).is_file())
        .with_context(|| format!("cargo named no executable for {name}"))
}
