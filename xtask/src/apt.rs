//! apt-get against a source of our own: its source list, package lists and cache
//! live in one folder under `target/tools`, so the machine's apt configuration is
//! never touched and nothing is installed or upgraded. Used to fetch packages the
//! machine's sources do not give (trixie's CLI plugins) or for another
//! architecture (arm64 busybox for the other-arch tests).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proc::run;

/// A private apt state folder with one source line.
pub struct PrivateApt {
    state: PathBuf,
    extra: Vec<String>,
}

impl PrivateApt {
    /// `source` is one `deb …` line; `extra` are more `-o` options
    /// (e.g. `APT::Architectures=arm64`).
    pub fn new(state: &Path, source: &str, extra: &[&str]) -> anyhow::Result<PrivateApt> {
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
        std::fs::write(state.join("sources.list"), format!("{source}\n"))?;
        std::fs::write(state.join("preferences"), "")?;
        Ok(PrivateApt {
            state: state.to_path_buf(),
            extra: extra
                .iter()
                .flat_map(|o| ["-o".to_string(), o.to_string()])
                .collect(),
        })
    }

    /// The folder packages are unpacked into.
    pub fn root(&self) -> PathBuf {
        self.state.join("root")
    }

    fn apt(&self) -> Command {
        let mut c = Command::new("apt-get");
        c.args(options(&self.state)).args(&self.extra);
        c
    }

    /// `apt-get update`, then `apt-get download` of `packages` and `dpkg-deb -x`
    /// of each into [`PrivateApt::root`].
    pub fn fetch(&self, packages: &[&str]) -> anyhow::Result<()> {
        run(self.apt().args(["update", "-q"]))?;
        let debs = self.state.join("debs");
        run(self.apt().arg("download").args(packages).current_dir(&debs))?;
        for entry in std::fs::read_dir(&debs)? {
            let deb = entry?.path();
            if deb.extension().is_some_and(|e| e == "deb") {
                run(Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(&deb)
                    .arg(self.root()))?;
            }
        }
        Ok(())
    }
}

/// apt-get's options for a state folder: every path it reads or writes.
fn options(state: &Path) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn apt_state_stays_in_its_folder() {
        let opts = super::options(std::path::Path::new("/t"));
        assert!(opts.contains(&"Dir::State::Lists=/t/lists".to_string()));
        assert!(opts.contains(&"Dir::Etc::SourceList=/t/sources.list".to_string()));
        assert!(opts
            .iter()
            .filter(|o| *o != "-o")
            .all(|o| o.contains("=/t/")));
    }
}
