//! Start at login, per OS, as data: where the entry goes and what it says, so
//! every OS's answer is testable here. Linux (XDG autostart) and macOS
//! (LaunchAgents) are files; Windows' is a value under the `Run` registry key
//! ([`crate::os::set_run_at_login`]).

use std::path::{Path, PathBuf};

use crate::paths::HostOs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file whose presence means "start at login".
    File { path: PathBuf, contents: String },
    /// `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, value `name`.
    Registry { name: String, command: String },
}

/// The entry that starts `exe` at login. `config_dir` is the OS config dir
/// (`~/.config`), `home` the user's home.
pub fn entry(os: HostOs, home: &Path, config_dir: &Path, exe: &Path) -> Entry {
    let exe_s = exe.display().to_string();
    match os {
        HostOs::Linux => Entry::File {
            path: config_dir.join("autostart/berth.desktop"),
            contents: format!(
                "[Desktop Entry]\nType=Application\nName=Berth\nComment=Containers on your desktop\n\
                 Exec=\"{}\"\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
                exe_s.replace('"', "\\\"")
            ),
        },
        HostOs::MacOs => Entry::File {
            path: home.join("Library/LaunchAgents/dev.berth.desktop.plist"),
            contents: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
                 <plist version=\"1.0\"><dict>\n\
                 <key>Label</key><string>dev.berth.desktop</string>\n\
                 <key>ProgramArguments</key><array><string>{}</string></array>\n\
                 <key>RunAtLoad</key><true/>\n\
                 </dict></plist>\n",
                xml_escape(&exe_s)
            ),
        },
        HostOs::Windows => Entry::Registry {
            name: "Berth".into(),
            command: format!("\"{exe_s}\""),
        },
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the registry's Run key exists only on Windows")]
    Unsupported,
}

/// Makes the entry exist (`on`) or not; removing one that is not there is fine.
pub fn apply(entry: &Entry, on: bool) -> Result<(), AutostartError> {
    let (path, contents) = match entry {
        Entry::File { path, contents } => (path, contents),
        Entry::Registry { name, command } => {
            return crate::os::set_run_at_login(name, on.then_some(command.as_str())).map_err(
                |source| match source.kind() {
                    std::io::ErrorKind::Unsupported => AutostartError::Unsupported,
                    _ => AutostartError::Io {
                        path: format!(r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\{name}"),
                        source,
                    },
                },
            );
        }
    };
    let io = |source| AutostartError::Io {
        path: path.display().to_string(),
        source,
    };
    if on {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, contents).map_err(io)
    } else {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}

/// The current user's entry for `exe`.
pub fn for_user(exe: &Path) -> Entry {
    let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
    let config = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
    entry(HostOs::current(), &home, &config, exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_per_os() {
        let (home, cfg, exe) = (
            Path::new("/home/me"),
            Path::new("/home/me/.config"),
            Path::new("/opt/Berth/berth-desktop"),
        );
        let Entry::File { path, contents } = entry(HostOs::Linux, home, cfg, exe) else {
            panic!("a file on Linux")
        };
        assert_eq!(path, Path::new("/home/me/.config/autostart/berth.desktop"));
        assert!(contents.contains("Exec=\"/opt/Berth/berth-desktop\""));
        let Entry::File { path, contents } = entry(
            HostOs::MacOs,
            Path::new("/Users/me"),
            cfg,
            Path::new("/Applications/Berth & Co.app/Contents/MacOS/Berth"),
        ) else {
            panic!("a file on macOS")
        };
        assert_eq!(
            path,
            Path::new("/Users/me/Library/LaunchAgents/dev.berth.desktop.plist")
        );
        assert!(
            contents.contains("Berth &amp; Co.app")
                && contents.contains("<key>RunAtLoad</key><true/>")
        );
        assert_eq!(
            entry(HostOs::Windows, home, cfg, Path::new(r"C:\Berth\berth.exe")),
            Entry::Registry {
                name: "Berth".into(),
                command: r#""C:\Berth\berth.exe""#.into()
            }
        );
    }

    #[test]
    fn on_and_off() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry(
            HostOs::Linux,
            dir.path(),
            dir.path(),
            Path::new("/bin/berth"),
        );
        apply(&e, false).unwrap();
        apply(&e, true).unwrap();
        assert!(dir.path().join("autostart/berth.desktop").is_file());
        apply(&e, false).unwrap();
        assert!(!dir.path().join("autostart/berth.desktop").exists());
    }
}
