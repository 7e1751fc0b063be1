//! Today's docker CLI plugins for the suites: `docker-buildx` (0.13) and
//! `docker-compose` (v2.26) from Debian's next release (trixie), which bookworm does
//! not have. They are fetched with `apt-get download` against a trixie source that
//! lives only in `target/tools/trixie` (its own source list, package lists and
//! cache): the machine's apt configuration is not touched and nothing is installed
//! or upgraded. The two binaries are unpacked into `target/tools/cli-plugins`, which
//! a test's scratch `DOCKER_CONFIG` names in `cliPluginsExtraDirs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::proc::{run, workspace_root};

const PACKAGES: &[&str] = &["docker-buildx", "docker-compose"];
const BINARIES: &[&str] = &["docker-buildx", "docker-compose"];

/// Where the plugins are unpacked.
pub fn dir() -> PathBuf {
    workspace_root().join("target/tools/cli-plugins")
}

/// apt-get's options for a private trixie source under `state`.
fn apt_options(state: &Path) -> Vec<String> {
    [
        ("Dir::Etc::SourceList", state.join("sources.list")),
        ("Dir::Etc::SourceParts", state.join("sources.list.d")),
        ("Dir::Etc::Preferences", state.join("preferences")),
        ("Dir::Etc::PreferencesParts", state.join("preferences.d")),
        ("Dir::State::Lists", state.join("lists")),
        ("Dir::Cache", state.join("cache")),
    ]
    .iter()
    .flat_map(|(k, v)| ["-o".to_string(), format!("{k}={}", v.display())])
    .collect()
}

pub fn ensure() -> anyhow::Result<PathBuf> {
    let out = dir();
    if BINARIES.iter().all(|b| out.join(b).is_file()) {
        println!("docker CLI plugins present: {}", BINARIES.join(", "));
        return Ok(out);
    }
    let state = workspace_root().join("target/tools/trixie");
    for d in [
        "sources.list.d",
        "preferences.d",
        "lists/partial",
        "cache/archives/partial",
        "debs",
        "root",
    ] {
        std::fs::create_dir_all(state.join(d))?;
    }
    std::fs::write(
        state.join("sources.list"),
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n",
    )?;
    std::fs::write(state.join("preferences"), "")?;
    let opts = apt_options(&state);
    println!(
        "fetching {} from Debian trixie (apt state in {})",
        PACKAGES.join(", "),
        state.display()
    );
    run(Command::new("apt-get").args(&opts).args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(&opts)
        .arg("download")
        .args(PACKAGES)
        .current_dir(state.join("debs")))?;
    for entry in std::fs::read_dir(state.join("debs"))? {
        let deb = entry?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            run(Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(state.join("root")))?;
        }
    }
    std::fs::create_dir_all(&out)?;
    for b in BINARIES {
        let from = state.join("root/usr/libexec/docker/cli-plugins").join(b);
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

#[cfg(test)]
mod tests {
    #[test]
    fn apt_state_stays_in_its_folder() {
        let opts = super::apt_options(std::path::Path::new("/t"));
        assert!(opts.contains(&"Dir::State::Lists=/t/lists".to_string()));
        assert!(opts.contains(&"Dir::Etc::SourceList=/t/sources.list".to_string()));
        assert!(opts
            .iter()
            .filter(|o| *o != "-o")
            .all(|o| o.contains("=/t/")));
    }
}
