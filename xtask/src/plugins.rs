//! Today's docker CLI plugins for the suites: `docker-buildx` (0.13) and
//! `docker-compose` (v2.26) from Debian's next release (trixie), which bookworm does
//! not have. They are fetched with `apt-get download` against a trixie source that
//! lives only in `target/tools/trixie` (its own source list, package lists and
//! cache): the machine's apt configuration is not touched and nothing is installed
//! or upgraded. The two binaries are unpacked into `target/tools/cli-plugins`, which
//! a test's scratch `DOCKER_CONFIG` names in `cliPluginsExtraDirs`.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::apt::PrivateApt;
use crate::proc::workspace_root;

const PACKAGES: &[&str] = &["docker-buildx", "docker-compose"];
const BINARIES: &[&str] = &["docker-buildx", "docker-compose"];

/// Where the plugins are unpacked.
pub fn dir() -> PathBuf {
    workspace_root().join("target/tools/cli-plugins")
}

pub fn ensure() -> anyhow::Result<PathBuf> {
    let out = dir();
    if BINARIES.iter().all(|b| out.join(b).is_file()) {
        println!("docker CLI plugins present: {}", BINARIES.join(", "));
        return Ok(out);
    }
    let state = workspace_root().join("target/tools/trixie");
    let apt = PrivateApt::new(
        &state,
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main",
        &[],
    )?;
    println!(
        "fetching {} from Debian trixie (apt state in {})",
        PACKAGES.join(", "),
        state.display()
    );
    apt.fetch(PACKAGES)?;
    std::fs::create_dir_all(&out)?;
    for b in BINARIES {
        let from = apt.root().join("usr/libexec/docker/cli-plugins").join(b);
        std::fs::copy(&from, out.join(b)).with_context(|| format!("copying {}", from.display()))?;
    }
    if !BINARIES.iter().all(|b| out.join(b).is_file()) {
        bail!(
            "the trixie packages did not contain {}",
            BINARIES.join(", ")
        );
    }
    println!("docker CLI plugins in {}", out.display());
    Ok(out)
}
