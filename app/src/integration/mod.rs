//! Host integration (`berth install` / `berth uninstall`): a docker context
//! named `berth`, made current only when the user had no other context (as
//! Docker Desktop does), the credential helper as the CLI's `credsStore`, and
//! `berth` and `docker-credential-berth` linked onto PATH, and where asked the
//! `/var/run/docker.sock` link and start at login. Every change is recorded in
//! `~/.berth/install.json`, and uninstall reverses exactly those.

pub mod context;
pub mod docker_sock;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::autostart;
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
    #[error(transparent)]
    DockerSock(#[from] docker_sock::LinkError),
    #[error(transparent)]
    Autostart(#[from] autostart::AutostartError),
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
    /// The docker.sock link install made.
    #[serde(default)]
    pub docker_sock: Option<docker_sock::Link>,
    /// The start-at-login entry install made (a file).
    #[serde(default)]
    pub autostart: Option<PathBuf>,
    /// Or, on Windows, the `Run` registry value it made.
    #[serde(default)]
    pub autostart_value: Option<String>,
    /// The folder install put on the user's `Path` (Windows).
    #[serde(default)]
    pub path_entry: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// `None`: no `currentContext` was set.
    pub context: Option<String>,
}

/// Where things are: the CLI's config dir, Berth's record, the PATH dir for
/// links and the binaries to link; and the optional pieces the user asked for.
pub struct Layout {
    pub docker_dir: PathBuf,
    pub record: PathBuf,
    pub bin_dir: PathBuf,
    pub binaries: Vec<PathBuf>,
    /// Where links cannot be made (Windows): the folder to put on the user's
    /// `Path` instead.
    pub path_entry: Option<PathBuf>,
    /// Link this path (`/var/run/docker.sock`) to Berth's socket.
    pub docker_sock: Option<docker_sock::Link>,
    /// Start the desktop app at login.
    pub autostart: Option<autostart::Entry>,
}

/// What install did: its record, and what became of the docker.sock link.
#[derive(Debug)]
pub struct Installed {
    pub record: Record,
    pub docker_sock: Option<docker_sock::Outcome>,
}

impl Layout {
    /// This user's layout for the binaries in `exe_dir` (where `berth`, the
    /// app and `docker-credential-berth` are installed together): the docker
    /// CLI's config dir (`DOCKER_CONFIG`, else `~/.docker`), the record in
    /// Berth's home, and links into `bin_dir` (default `~/.local/bin`) unless
    /// `exe_dir` is on PATH already (a package's `/usr/bin`).
    pub fn for_user(
        paths: &crate::paths::Paths,
        exe_dir: &std::path::Path,
        bin_dir: Option<PathBuf>,
    ) -> Layout {
        let config = docker_config::config_path();
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
        let on_path = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d == exe_dir));
        Layout {
            docker_dir: config
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(|| home.join(".docker")),
            record: paths.home.join("install.json"),
            bin_dir: bin_dir.unwrap_or_else(|| home.join(".local/bin")),
            binaries: if on_path || !crate::os::LINKS_ON_PATH {
                Vec::new()
            } else {
                ["berth", "docker-credential-berth"]
                    .iter()
                    .map(|b| exe_dir.join(b))
                    .filter(|p| p.is_file())
                    .collect()
            },
            path_entry: (!on_path && !crate::os::LINKS_ON_PATH).then(|| exe_dir.to_path_buf()),
            docker_sock: None,
            autostart: None,
        }
    }

    fn config(&self) -> PathBuf {
        self.docker_dir.join("config.json")
    }

    /// Whether `berth install` has run for this user (and not been undone).
    pub fn installed(&self) -> bool {
        self.record.is_file()
    }
}

/// Installs; `host` is what the context points at. Installing twice keeps the
/// first record's view of what was there before.
pub fn install(l: &Layout, host: &str) -> Result<Installed, IntegrationError> {
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
    let binaries = if crate::os::LINKS_ON_PATH {
        &l.binaries[..]
    } else {
        &[]
    };
    for bin in binaries {
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
        crate::os::symlink(bin, &link).map_err(io(format!("linking {}", link.display())))?;
        r.links.push(link);
    }
    if let Some(dir) = &l.path_entry {
        // One the user (or the installer, for every user) put there stays.
        if crate::os::add_path_entry(crate::os::PathScope::User, dir)
            .map_err(io(format!("putting {} on PATH", dir.display())))?
        {
            r.path_entry = Some(dir.clone());
        }
    }
    let mut sock_outcome = None;
    if let Some(want) = &l.docker_sock {
        let outcome = docker_sock::link(&want.link, &want.target)?;
        if outcome == docker_sock::Outcome::Created {
            r.docker_sock = Some(want.clone());
        }
        sock_outcome = Some(outcome);
    }
    match &l.autostart {
        // One the user already had stays theirs: not recorded, never removed.
        Some(entry @ autostart::Entry::File { path, .. }) if !path.exists() => {
            autostart::apply(entry, true)?;
            r.autostart = Some(path.clone());
        }
        Some(entry @ autostart::Entry::Registry { name, .. }) => {
            autostart::apply(entry, true)?;
            r.autostart_value = Some(name.clone());
        }
        _ => {}
    }
    if let Some(dir) = l.record.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating Berth's directory"))?;
    }
    let text = serde_json::to_vec_pretty(&r)
        .map_err(|e| io("encoding the record")(std::io::Error::other(e)))?;
    std::fs::write(&l.record, text).map_err(io("writing the install record"))?;
    Ok(Installed {
        record: r,
        docker_sock: sock_outcome,
    })
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
    if let Some(dir) = &r.path_entry {
        crate::os::remove_path_entry(crate::os::PathScope::User, dir)
            .map_err(io(format!("taking {} off PATH", dir.display())))?;
    }
    if let Some(s) = &r.docker_sock {
        docker_sock::unlink(&s.link, &s.target)
            .map_err(io(format!("removing {}", s.link.display())))?;
    }
    if let Some(path) = &r.autostart {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("removing {}", path.display()))(e))
            }
            _ => {}
        }
    }
    if let Some(name) = &r.autostart_value {
        let entry = autostart::Entry::Registry {
            name: name.clone(),
            command: String::new(),
        };
        autostart::apply(&entry, false)?;
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
            path_entry: None,
            docker_sock: None,
            autostart: None,
        }
    }

    #[test]
    fn a_fresh_user_gets_everything_and_loses_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        let r = install(&l, "unix:///x.sock").unwrap().record;
        assert!(r.config_created && r.context_created && r.creds_store);
        assert_eq!(r.made_current, Some(Previous { context: None }));
        assert_eq!(
            docker_config::current_context(&l.config())
                .unwrap()
                .as_deref(),
            Some("berth")
        );
        assert_eq!(
            l.bin_dir.join("berth").is_symlink(),
            crate::os::LINKS_ON_PATH
        );
        assert_eq!(
            install(&l, "unix:///x.sock").unwrap().record,
            r,
            "idempotent"
        );
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
        let r = install(&l, "unix:///x.sock").unwrap().record;
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

    #[test]
    fn the_socket_link_and_login_entry_are_undone_only_when_install_made_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = layout(dir.path());
        let sock = docker_sock::Link {
            link: dir.path().join("docker.sock"),
            target: dir.path().join("berth.sock"),
        };
        let entry_path = dir.path().join("autostart/berth.desktop");
        l.docker_sock = Some(sock.clone());
        l.autostart = Some(autostart::Entry::File {
            path: entry_path.clone(),
            contents: "[Desktop Entry]\n".into(),
        });
        let done = install(&l, "unix:///x.sock").unwrap();
        assert_eq!(done.docker_sock, Some(docker_sock::Outcome::Created));
        assert_eq!(done.record.docker_sock, Some(sock.clone()));
        assert!(entry_path.is_file());
        uninstall(&l).unwrap();
        assert!(std::fs::symlink_metadata(&sock.link).is_err());
        assert!(!entry_path.exists());

        // Both already there (the user's own): kept through install and uninstall.
        std::fs::write(&sock.link, b"theirs").unwrap();
        std::fs::write(&entry_path, b"theirs").unwrap();
        let done = install(&l, "unix:///x.sock").unwrap();
        assert!(matches!(
            done.docker_sock,
            Some(docker_sock::Outcome::LeftAlone(_))
        ));
        assert_eq!(done.record.docker_sock, None);
        assert_eq!(done.record.autostart, None);
        uninstall(&l).unwrap();
        assert_eq!(std::fs::read(&sock.link).unwrap(), b"theirs");
        assert_eq!(std::fs::read(&entry_path).unwrap(), b"theirs");
    }

    #[cfg(windows)]
    #[test]
    fn the_run_value_comes_with_install_and_goes_with_uninstall() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = layout(dir.path());
        let name = format!("berth-test-install-{}", std::process::id());
        l.autostart = Some(autostart::Entry::Registry {
            name: name.clone(),
            command: r#""C:\Berth\berth-desktop.exe""#.into(),
        });
        let r = install(&l, "npipe:////./pipe/x").unwrap().record;
        assert_eq!(r.autostart_value.as_deref(), Some(name.as_str()));
        assert!(crate::os::run_at_login(&name).unwrap().is_some());
        uninstall(&l).unwrap();
        assert_eq!(crate::os::run_at_login(&name).unwrap(), None);
    }

    #[cfg(windows)]
    #[test]
    fn the_folder_comes_onto_path_with_install_and_goes_with_uninstall() {
        use crate::os::{path_list, path_var, PathScope};
        let dir = tempfile::tempdir().unwrap();
        let mut l = layout(dir.path());
        let folder = dir.path().join("Berth");
        l.path_entry = Some(folder.clone());
        let on = |f: &Path| {
            path_var::contains(&path_list(PathScope::User).unwrap(), &f.to_string_lossy())
        };
        let r = install(&l, "npipe:////./pipe/x").unwrap().record;
        assert_eq!(r.path_entry.as_ref(), Some(&folder));
        assert!(on(&folder));
        uninstall(&l).unwrap();
        assert!(!on(&folder));

        // A folder the user had put there is theirs: install records nothing.
        crate::os::add_path_entry(PathScope::User, &folder).unwrap();
        assert_eq!(
            install(&l, "npipe:////./pipe/x").unwrap().record.path_entry,
            None
        );
        uninstall(&l).unwrap();
        assert!(on(&folder));
        crate::os::remove_path_entry(PathScope::User, &folder).unwrap();
    }
}
