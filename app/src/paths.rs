//! Where Berth keeps its files on each OS, as data: the functions take the OS and
//! the user's directories as arguments so every OS's answer is testable here.

use std::path::{Path, PathBuf};

pub use berth_proto::HostOs;

/// Berth's per-user directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `~/.berth` (Windows: `%LOCALAPPDATA%\Berth`): runtime sockets and the
    /// VM's disk and logs.
    pub home: PathBuf,
    /// Settings (`settings.json`) under the OS config dir.
    pub config: PathBuf,
}

impl Paths {
    /// The current user's paths; `BERTH_HOME` and `BERTH_CONFIG_DIR` override
    /// them (tests and side-by-side installs).
    pub fn for_user() -> Paths {
        let home_dir = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
        let config_dir = dirs::config_dir().unwrap_or_else(|| home_dir.join(".config"));
        let mut p = match HostOs::current() {
            HostOs::Windows => Paths::windows(
                &dirs::data_local_dir().unwrap_or_else(|| home_dir.join("AppData/Local")),
                &config_dir,
            ),
            HostOs::Linux | HostOs::MacOs => Paths::new(&home_dir, &config_dir),
        };
        if let Some(h) = std::env::var_os("BERTH_HOME") {
            p.home = PathBuf::from(h);
        }
        if let Some(c) = std::env::var_os("BERTH_CONFIG_DIR") {
            p.config = PathBuf::from(c);
        }
        p
    }

    pub fn new(home_dir: &Path, config_dir: &Path) -> Paths {
        Paths {
            home: home_dir.join(".berth"),
            config: config_dir.join("berth"),
        }
    }

    /// Windows' places, as Docker Desktop uses them: the VM's disk, logs and
    /// run files under `%LOCALAPPDATA%\Berth` (large, not roamed), settings under
    /// `%APPDATA%\Berth`.
    pub fn windows(local_data_dir: &Path, config_dir: &Path) -> Paths {
        Paths {
            home: local_data_dir.join("Berth"),
            config: config_dir.join("Berth"),
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }

    pub fn vm_dir(&self) -> PathBuf {
        self.home.join("vm")
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config.join("settings.json")
    }

    /// This host's endpoint for the current user (`USERNAME`, Windows' `USER`,
    /// names the Windows pipe).
    pub fn user_docker_endpoint(&self) -> DockerEndpoint {
        let user = std::env::var("USERNAME")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_default();
        self.docker_endpoint(HostOs::current(), &user)
    }

    /// Where the docker CLI finds the engine on `os`: a unix socket, or on
    /// Windows a named pipe (per user, like Docker Desktop's `dockerDesktopLinuxEngine`).
    pub fn docker_endpoint(&self, os: HostOs, user: &str) -> DockerEndpoint {
        match os {
            HostOs::Windows => DockerEndpoint::NamedPipe(format!(r"\\.\pipe\berth-docker-{user}")),
            HostOs::Linux | HostOs::MacOs => {
                DockerEndpoint::Unix(self.run_dir().join("docker.sock"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    Unix(PathBuf),
    NamedPipe(String),
}

impl DockerEndpoint {
    /// Parses a `DOCKER_HOST` value Berth can serve or reach locally.
    pub fn from_docker_host(host: &str) -> Option<DockerEndpoint> {
        if let Some(p) = host.strip_prefix("unix://") {
            return Some(DockerEndpoint::Unix(PathBuf::from(p)));
        }
        // npipe:////./pipe/NAME (the CLI's spelling) or npipe://./pipe/NAME.
        let rest = host.strip_prefix("npipe://")?.trim_start_matches('/');
        let name = rest.strip_prefix("./pipe/")?;
        Some(DockerEndpoint::NamedPipe(format!(r"\\.\pipe\{name}")))
    }

    /// A synchronous connection, for short requests (`_ping`, `/auth`).
    pub fn connect(&self) -> std::io::Result<crate::os::LocalStream> {
        match self {
            DockerEndpoint::Unix(p) => crate::os::connect_unix(p),
            DockerEndpoint::NamedPipe(name) => crate::os::connect_pipe(name),
        }
    }

    /// The value for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        match self {
            DockerEndpoint::Unix(p) => format!("unix://{}", p.display()),
            DockerEndpoint::NamedPipe(name) => {
                format!("npipe://{}", name.replace('\\', "/"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_per_os() {
        let p = Paths::new(Path::new("/home/ann"), Path::new("/home/ann/.config"));
        assert_eq!(
            p.docker_endpoint(HostOs::Linux, "ann"),
            DockerEndpoint::Unix("/home/ann/.berth/run/docker.sock".into())
        );
        if cfg!(unix) {
            assert_eq!(
                p.docker_endpoint(HostOs::Linux, "ann").docker_host(),
                "unix:///home/ann/.berth/run/docker.sock"
            );
        }
        assert_eq!(
            p.docker_endpoint(HostOs::MacOs, "ann"),
            DockerEndpoint::Unix("/home/ann/.berth/run/docker.sock".into())
        );
        let pipe = p.docker_endpoint(HostOs::Windows, "ann");
        assert_eq!(
            pipe,
            DockerEndpoint::NamedPipe(r"\\.\pipe\berth-docker-ann".into())
        );
        // The docker CLI's own spelling: npipe:////./pipe/NAME.
        assert_eq!(pipe.docker_host(), "npipe:////./pipe/berth-docker-ann");
        for host in [
            "npipe:////./pipe/berth-docker-ann",
            "npipe://./pipe/berth-docker-ann",
        ] {
            assert_eq!(DockerEndpoint::from_docker_host(host).as_ref(), Some(&pipe));
        }
        assert_eq!(
            DockerEndpoint::from_docker_host("unix:///run/x.sock"),
            Some(DockerEndpoint::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            DockerEndpoint::from_docker_host("tcp://127.0.0.1:2375"),
            None
        );
        assert_eq!(
            p.settings_file(),
            Path::new("/home/ann/.config/berth/settings.json")
        );
        let w = Paths::windows(
            Path::new(r"C:\Users\ann\AppData\Local"),
            Path::new(r"C:\Users\ann\AppData\Roaming"),
        );
        assert_eq!(
            w.vm_dir(),
            Path::new(r"C:\Users\ann\AppData\Local")
                .join("Berth")
                .join("vm")
        );
        assert_eq!(
            w.settings_file(),
            Path::new(r"C:\Users\ann\AppData\Roaming")
                .join("Berth")
                .join("settings.json")
        );
    }
}
