//! A local, anonymous, plain-HTTP `docker-registry` (Debian's distribution 2.x) on a free
//! 127.0.0.1 port, with its config and storage in a scratch directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::scratch::Scratch;
use crate::ping;
use crate::proc::Daemon;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    // Fields drop in order: the daemon stops before its directory goes.
    _daemon: Daemon,
    _dir: Scratch,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Registry {
    pub fn start() -> anyhow::Result<Registry> {
        let dir = Scratch::new("registry")?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut daemon = Daemon::spawn(
            "docker-registry",
            Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
            Duration::from_secs(5),
        )?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ping::http(&addr, "/v2/") {
            let log = || std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            if let Some(status) = daemon.exited() {
                bail!("docker-registry exited with {status}:\n{}", log());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer on {addr}:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Registry {
            addr,
            _daemon: daemon,
            _dir: dir,
        })
    }
}
