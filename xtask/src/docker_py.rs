//! docker-py's own integration suite for `tests/tests/docker_py_suite.rs`: a venv with
//! docker-py 7.2.0, pytest and the suite's other needs (pinned), and the suite's
//! `tests/` tree, both under `target/tools/docker-py`.
//!
//! Where the suite comes from: docker-py's sources live on GitHub, which CI cannot
//! reach, and the 7.x releases on PyPI ship no tests. So the suite is taken from
//! `BERTH_DOCKER_PY_SRC` when that names a docker-py checkout (the 7.2.0 tag), and
//! otherwise from PyPI's sdist of docker 6.1.3 — the newest release that ships
//! `tests/` — checked against its sha256. Only its `tests/` is used: the client under
//! test is always the venv's docker-py 7.2.0. `selection.txt` marks the few
//! assertions 7.2.0's suite changed (`deselect-6.1.3` lines).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::proc::{run, workspace_root};

const REQUIREMENTS: &[&str] = &[
    "docker==7.2.0",
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    "paramiko==5.1.0",
    "websocket-client==1.9.2",
];
const SDIST_URL: &str = "https://files.pythonhosted.org/packages/f0/73/f7c9a14e88e769f38cb7fb45aa88dfd795faa8e18aea11bababf6e068d5e/docker-6.1.3.tar.gz";
const SDIST_SHA256: &str = "aa6d17830045ba5ef0168d5eaa34d37beeb113948c413affe1d5991fc11f9a20";
const SDIST_VERSION: &str = "6.1.3";

/// `target/tools/docker-py`: `venv/`, and `suite/` with `tests/` and `VERSION`.
pub fn dir() -> PathBuf {
    workspace_root().join("target/tools/docker-py")
}

pub fn ensure() -> anyhow::Result<PathBuf> {
    let out = dir();
    ensure_venv(&out.join("venv"))?;
    ensure_suite(&out.join("suite"))?;
    Ok(out)
}

fn ensure_venv(venv: &Path) -> anyhow::Result<()> {
    let stamp = venv.join("berth-requirements");
    let want = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        println!("docker-py venv present: {}", venv.display());
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(venv);
    if run(Command::new("python3").args(["-m", "venv"]).arg(venv)).is_err() {
        // Debian's python3 needs python3-venv (ensurepip) for this.
        crate::deps::ensure_packages(&["python3-venv"])?;
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(REQUIREMENTS))?;
    std::fs::write(stamp, want)?;
    Ok(())
}

fn ensure_suite(suite: &Path) -> anyhow::Result<()> {
    if let Some(src) = std::env::var_os("BERTH_DOCKER_PY_SRC") {
        let src = PathBuf::from(src);
        if !src.join("tests/integration").is_dir() {
            bail!(
                "BERTH_DOCKER_PY_SRC={} has no tests/integration",
                src.display()
            );
        }
        return install_tests(&src.join("tests"), suite, "7.2.0");
    }
    let version = std::fs::read_to_string(suite.join("VERSION")).unwrap_or_default();
    if version.trim() == SDIST_VERSION && suite.join("tests/integration").is_dir() {
        println!("docker-py suite present: {} ({version})", suite.display());
        return Ok(());
    }
    let cache = dir().join("download");
    std::fs::create_dir_all(&cache)?;
    let tarball = cache.join(format!("docker-{SDIST_VERSION}.tar.gz"));
    if !sha256_matches(&tarball)? {
        run(Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(&tarball)
            .arg(SDIST_URL))?;
        if !sha256_matches(&tarball)? {
            bail!("{} does not have sha256 {SDIST_SHA256}", tarball.display());
        }
    }
    let unpacked = cache.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked)?;
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked))?;
    let tests = unpacked.join(format!("docker-{SDIST_VERSION}/tests"));
    install_tests(&tests, suite, SDIST_VERSION)
}

/// Copies a suite's `tests/` into `suite` (without the docker package next to it, so
/// that the venv's docker-py is the one imported) and records its version.
fn install_tests(tests: &Path, suite: &Path, version: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(suite);
    std::fs::create_dir_all(suite)?;
    run(Command::new("cp").arg("-a").arg(tests).arg(suite))
        .with_context(|| format!("copying {}", tests.display()))?;
    std::fs::write(suite.join("VERSION"), format!("{version}\n"))?;
    println!("docker-py suite {version} in {}", suite.display());
    Ok(())
}

fn sha256_matches(file: &Path) -> anyhow::Result<bool> {
    if !file.is_file() {
        return Ok(false);
    }
    let out = Command::new("sha256sum").arg(file).output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        == Some(SDIST_SHA256))
}
