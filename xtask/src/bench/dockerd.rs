//! Debian's dockerd as the reference engine: its own data root, exec root and socket,
//! no bridge or iptables changes, stopped and cleaned up on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Dockerd {
    pub fn start(insecure_registry: &str) -> anyhow::Result<Dockerd> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-dockerd-")
            .tempdir()?;
        let socket = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log"))?;
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ])
            .arg("--insecure-registry")
            .arg(insecure_registry)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting /usr/sbin/dockerd (apt-get install docker.io)")?;
        let mut d = Dockerd { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = d.child.try_wait()? {
                bail!("dockerd exited with {st}: {}", d.log());
            }
            let ok = Command::new("docker")
                .arg("-H")
                .arg(format!("unix://{}", d.socket.display()))
                .arg("version")
                .env("DOCKER_CONFIG", d.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(d);
            }
            if Instant::now() > deadline {
                bail!("dockerd did not come up: {}", d.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd may leave overlay mounts and its containerd's state mounted.
        for sub in ["exec", "data"] {
            let p = self.dir.path().join(sub);
            let _ = Command::new("umount")
                .arg("-R")
                .arg("-l")
                .arg(&p)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// VmRSS of `pid` plus all its descendants, in MB.
pub fn tree_rss_mb(pid: u32) -> f64 {
    let mut total_kb = 0u64;
    let mut stack = vec![pid];
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    let after = stat.rsplit_once(')')?.1;
                    let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
                    Some((p, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    while let Some(p) = stack.pop() {
        total_kb += rss_kb(p);
        stack.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
    }
    total_kb as f64 / 1024.0
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
