//! `cargo xtask test`: every suite, exactly as CI runs it (`.ci/run`). Tools first; then
//! fmt, clippy, the agent build and the tests each run even if an earlier one failed,
//! so one run shows every problem; a summary and the total time close the output.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::deps;
use crate::proc::{cargo, human, run, step, workspace_root};

struct Outcome {
    name: &'static str,
    took: Duration,
    error: Option<String>,
}

pub fn test(extra: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    std::env::set_current_dir(workspace_root())?;

    step("tools");
    let tools = (|| {
        deps::ensure_packages(deps::PACKAGES)?;
        deps::ensure_packages(crate::vm_image::VM_PACKAGES)?;
        deps::ensure_docker_cli()?;
        // The beside-dockerd suite runs Debian's dockerd next to Berth.
        deps::ensure_packages(deps::REFERENCE_PACKAGES)?;
        deps::ensure_vhost_device_vsock()?;
        deps::ensure_virtiofsd()?;
        deps::ensure_packages(deps::DESKTOP_PACKAGES)?;
        deps::ensure_tauri_driver()?;
        let plugins = crate::plugins::ensure()?;
        let docker_py = crate::docker_py::ensure()?;
        let foreign = crate::foreign::ensure()?;
        Ok::<_, anyhow::Error>((deps::ensure_nextest(), plugins, docker_py, foreign))
    })();
    let (nextest, plugins, docker_py, foreign) = match tools {
        Ok(n) => n,
        Err(e) => {
            println!("\n==> total {} (tools missing)", human(started.elapsed()));
            return Err(e);
        }
    };

    let mut tests = cargo();
    if nextest {
        tests.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--workspace", "--no-fail-fast"]);
    }
    tests.args(extra);
    // The buildx and Compose v2 plugins the BuildKit suite points the CLI at.
    tests.env("BERTH_CLI_PLUGINS", &plugins);
    // docker-py's own integration suite and its venv (docker_py.rs says from where).
    tests.env("BERTH_DOCKER_PY", &docker_py);
    // The other architecture's busybox, for the VM's emulated-platform test.
    if let Some(dir) = foreign.parent() {
        tests.env("BERTH_FOREIGN", dir);
    }
    let steps: Vec<(&'static str, Command)> = vec![
        (
            "fmt",
            with_args(cargo(), &["fmt", "--all", "--", "--check"]),
        ),
        // No file over 800 lines, no import loop between modules.
        (
            "layout",
            with_args(
                Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into())),
                &["layout"],
            ),
        ),
        // vitest, then the build the desktop crate embeds (clippy needs it too).
        (
            "frontend",
            with_args(
                Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into())),
                &["frontend", "--test"],
            ),
        ),
        (
            "clippy",
            with_args(
                cargo(),
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
        ),
        (
            "build binaries",
            with_args(
                cargo(),
                &[
                    "build",
                    "-p",
                    "berth-agent",
                    "-p",
                    "berth",
                    "-p",
                    "berth-desktop",
                ],
            ),
        ),
        // Windows and macOS: clippy for each, berth.exe and its unit tests under
        // Wine, and the Windows client the windows_pipe suite runs.
        (
            "cross",
            with_args(
                Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into())),
                &["cross"],
            ),
        ),
        // bollard's BuildKit client for the BuildKit suite: a workspace of its own
        // (tests/src/sdk.rs says why), built here so that no test waits for it.
        (
            "bollard client",
            with_args(
                cargo(),
                &[
                    "build",
                    "--manifest-path",
                    "tests/bollard-client/Cargo.toml",
                    "--target-dir",
                    "target/sdk-clients",
                ],
            ),
        ),
        // The VM suite boots this image (built only when its inputs changed).
        (
            "vm image",
            with_args(
                Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into())),
                &["vm-image"],
            ),
        ),
        // The package suite installs this .deb (the debug app, as built above).
        (
            "bundle (.deb)",
            with_args(
                Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into())),
                &["bundle", "--debug", "--formats", "deb"],
            ),
        ),
        // Every fuzz target for a few seconds; its build lives in target/fuzz.
        (
            "fuzz (bounded)",
            with_args(
                Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into())),
                &["fuzz", "--bounded"],
            ),
        ),
        (if nextest { "nextest" } else { "cargo test" }, tests),
    ];

    let mut outcomes = Vec::new();
    for (name, mut cmd) in steps {
        step(name);
        let t = Instant::now();
        let error = run(&mut cmd).err().map(|e| format!("{e:#}"));
        outcomes.push(Outcome {
            name,
            took: t.elapsed(),
            error,
        });
    }

    step("summary");
    for o in &outcomes {
        let verdict = if o.error.is_some() { "FAILED" } else { "ok" };
        println!("  {:<18} {verdict:<6} {:>10}", o.name, human(o.took));
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.error.is_some())
        .map(|o| o.name)
        .collect();
    println!("total {}", human(started.elapsed()));
    disk_report();
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    println!("all suites passed");
    Ok(())
}

/// What the run left on disk and what is still free: a CI run once failed by filling
/// its disk, and this line shows how close the next one comes.
fn disk_report() {
    let target = crate::proc::target_dir();
    let size = Command::new("du").arg("-sh").arg(&target).output();
    let free = Command::new("df")
        .args(["-h", "--output=avail"])
        .arg(&target)
        .output();
    if let (Ok(size), Ok(free)) = (size, free) {
        let size = String::from_utf8_lossy(&size.stdout);
        let free = String::from_utf8_lossy(&free.stdout);
        println!(
            "disk: target {}, {} free",
            size.split_whitespace().next().unwrap_or("?"),
            free.split_whitespace().last().unwrap_or("?")
        );
    }
}

fn with_args(mut cmd: Command, args: &[&str]) -> Command {
    cmd.args(args);
    cmd
}
