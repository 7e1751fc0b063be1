//! Host integration (`berth install` / `berth uninstall`): a docker context
//! named `berth`, made current only when the user had no other context (as
//! Docker Desktop does), the credential helper as the CLI's `credsStore`, and
//! `berth` and `docker-credential-berth` linked onto PATH. Every change is
//! recorded in `~/.berth/install.json`, and uninstall reverses exactly those.

pub mod context;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::creds::docker_config;

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] docker_config::ConfigError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IntegrationError {
    let what = what.into();
    move |source| IntegrationError::Io { what, source }
}

/// What `install` changed, so `uninstall` undoes only that.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub config_created: bool,
    pub context_created: bool,
    /// Set when Berth's context was made current: what was current before.
    pub made_current: Option<Previous>,
    pub creds_store: bool,
    pub links: Vec<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// `None`: no `currentContext` was set.
    pub context: Option<String>,
}

/// Where things are: the CLI's config dir, Berth's record, the PATH dir for
/// links and the binaries to link.
pub struct Layout {
    pub docker_dir: PathBuf,
    pub record: PathBuf,
    pub bin_dir: PathBuf,
    pub binaries: Vec<PathBuf>,
}

impl Layout {
    fn config(&self) -> PathBuf {
        self.docker_dir.join("config.json")
    }
}

/// Installs; `host` is what the context points at. Installing twice keeps the
/// first record's view of what was there before.
pub fn install(l: &Layout, host: &str) -> Result<Record, IntegrationError> {
    let previous: Option<Record> = std::fs::read(&l.record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut r = previous.clone().unwrap_or_default();
    let fresh = previous.is_none();
    if fresh {
        r.config_created = !l.config().exists();
        r.context_created = !context::exists(&l.docker_dir, context::NAME);
    }
    context::write(&l.docker_dir, context::NAME, host).map_err(io("writing the docker context"))?;
    let current = docker_config::current_context(&l.config())?;
    if r.made_current.is_none() && matches!(current.as_deref(), None | Some("default")) {
        docker_config::set_current_context(&l.config(), Some(context::NAME))?;
        r.made_current = Some(Previous { context: current });
    }
    docker_config::install(&l.config())?;
    r.creds_store = true;
    for bin in &l.binaries {
        let Some(name) = bin.file_name() else {
            continue;
        };
        let link = l.bin_dir.join(name);
        match std::fs::read_link(&link) {
            Ok(t) if t == *bin => continue,
            // Something else of that name is the user's: leave it.
            Ok(_) => continue,
            Err(_) if link.exists() => continue,
            Err(_) => {}
        }
        std::fs::create_dir_all(&l.bin_dir).map_err(io("creating the PATH directory"))?;
        std::os::unix::fs::symlink(bin, &link)
            .map_err(io(format!("linking {}", link.display())))?;
        r.links.push(link);
    }
    if let Some(dir) = l.record.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating Berth's directory"))?;
    }
    let text = serde_json::to_vec_pretty(&r)
        .map_err(|e| io("encoding the record")(std::io::Error::other(e)))?;
    std::fs::write(&l.record, text).map_err(io("writing the install record"))?;
    Ok(r)
}

/// Undoes what the record says; without a record there is nothing to undo.
pub fn uninstall(l: &Layout) -> Result<Option<Record>, IntegrationError> {
    let Some(r): Option<Record> = std::fs::read(&l.record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    else {
        return Ok(None);
    };
    for link in &r.links {
        if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(link).map_err(io(format!("removing {}", link.display())))?;
        }
    }
    if r.creds_store {
        docker_config::uninstall(&l.config())?;
    }
    if let Some(previous) = &r.made_current {
        // Only if the user has not switched since.
        if docker_config::current_context(&l.config())?.as_deref() == Some(context::NAME) {
            docker_config::set_current_context(&l.config(), previous.context.as_deref())?;
        }
    }
    if r.context_created {
        context::remove(&l.docker_dir, context::NAME).map_err(io("removing the docker context"))?;
    }
    if r.config_created {
        docker_config::remove_if_empty(&l.config())?;
    }
    std::fs::remove_file(&l.record).map_err(io("removing the install record"))?;
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn layout(dir: &Path) -> Layout {
        std::fs::write(dir.join("berth"), b"bin").unwrap();
        Layout {
            docker_dir: dir.join("docker"),
            record: dir.join("berth-home/install.json"),
            bin_dir: dir.join("bin"),
            binaries: vec![dir.join("berth")],
        }
    }

    #[test]
    fn a_fresh_user_gets_everything_and_loses_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        let r = install(&l, "unix:///x.sock").unwrap();
        assert!(r.config_created && r.context_created && r.creds_store);
        assert_eq!(r.made_current, Some(Previous { context: None }));
        assert_eq!(
            docker_config::current_context(&l.config())
                .unwrap()
                .as_deref(),
            Some("berth")
        );
        assert!(l.bin_dir.join("berth").is_symlink());
        assert_eq!(install(&l, "unix:///x.sock").unwrap(), r, "idempotent");
        uninstall(&l).unwrap();
        assert!(!l.config().exists());
        assert!(!l.docker_dir.join("contexts").exists());
        assert!(!l.bin_dir.join("berth").exists());
        assert!(uninstall(&l).unwrap().is_none());
    }

    #[test]
    fn another_current_context_stays_current() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        std::fs::create_dir_all(&l.docker_dir).unwrap();
        let before = r#"{"currentContext":"work","psFormat":"table {{.Names}}"}"#;
        std::fs::write(l.config(), before).unwrap();
        std::fs::create_dir_all(&l.bin_dir).unwrap();
        std::fs::write(l.bin_dir.join("berth"), b"someone else's").unwrap();
        let r = install(&l, "unix:///x.sock").unwrap();
        assert_eq!(r.made_current, None);
        assert!(r.links.is_empty(), "an existing file is never replaced");
        assert_eq!(
            docker_config::current_context(&l.config())
                .unwrap()
                .as_deref(),
            Some("work")
        );
        uninstall(&l).unwrap();
        let after: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(l.config()).unwrap()).unwrap();
        assert_eq!(
            after,
            serde_json::from_str::<serde_json::Value>(before).unwrap()
        );
        assert_eq!(
            std::fs::read(l.bin_dir.join("berth")).unwrap(),
            b"someone else's"
        );
    }
}
