//! The VM harness: `berth vm start` on a private `BERTH_HOME`, with the guest
//! image `cargo xtask vm-image` built, and the stock `docker` CLI pointed at
//! the host socket it serves. Drop stops the VM (and kills whatever the
//! supervisor left) and removes the directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A binary of this workspace beside the test executable's target dir.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the test executable")?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    bail!("{name} not found: run `cargo build -p berth`")
}

/// The image directory (`target/vm-image/x86_64`), if built.
pub fn image_dir() -> Option<PathBuf> {
    let berth = workspace_bin("berth").ok()?;
    let dir = berth.parent()?.parent()?.join("vm-image/x86_64");
    let kernel = dir.join("vmlinux.zst").is_file() || dir.join("vmlinuz").is_file();
    (kernel && dir.join("initramfs.img").is_file()).then_some(dir)
}

/// How long one client command may take against a TCG guest before the test
/// gives up on it (a hung guest must fail the test, not stall the suite).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(180);

/// Waits for `child` (stdout and stderr piped, or not) at most `limit`; kills
/// it and returns `None` when it is still running then.
pub fn finish_within(mut child: Child, limit: Duration) -> Option<Output> {
    use std::io::Read;
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let t = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if t.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => break None,
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    Some(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

pub struct Vm {
    dir: tempfile::TempDir,
    berth: PathBuf,
}

/// Gives a directory tree to `uid` (the VM then runs as that user).
pub fn chown_tree(path: &Path, uid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .with_context(|| format!("chown {}", path.display()))?;
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid)?;
        }
    }
    Ok(())
}

impl Vm {
    /// Boots a VM with these `vm` settings (merged over TCG, 2 CPUs, 1 GiB).
    pub fn start(settings: serde_json::Value) -> anyhow::Result<Vm> {
        Vm::start_as(settings, None)
    }

    /// Boots a VM as user `uid` (a desktop user, not root): QEMU and its
    /// helpers run as that user, as they do on a developer's machine.
    pub fn start_as(settings: serde_json::Value, uid: Option<u32>) -> anyhow::Result<Vm> {
        let berth = workspace_bin("berth")?;
        let image = image_dir().context("no VM image: run `cargo xtask vm-image`")?;
        let dir = tempfile::Builder::new().prefix("berth-vm-").tempdir()?;
        let mut vm = serde_json::json!({
            "accel": "tcg", "cpus": 2, "memoryMib": 1024, "diskGib": 8,
            "imageDir": image, "restartOnCrash": true,
        });
        if let (Some(base), Some(extra)) = (vm.as_object_mut(), settings.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        std::fs::create_dir_all(dir.path().join("config"))?;
        std::fs::write(
            dir.path().join("config/settings.json"),
            serde_json::to_vec(&serde_json::json!({ "vm": vm }))?,
        )?;
        let vm = Vm { dir, berth };
        let out = match uid {
            None => vm.berth(&["vm", "start", "--timeout", "240"]),
            Some(uid) => {
                std::fs::create_dir_all(vm.home())?;
                chown_tree(vm.dir.path(), uid)?;
                let inner = vm.berth_cmd(&["vm", "start", "--timeout", "240"]);
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".to_string(),
                ])
                .arg(inner.get_program())
                .args(inner.get_args());
                for (k, v) in inner.get_envs() {
                    if let Some(v) = v {
                        c.env(k, v);
                    }
                }
                c.output().context("running setpriv")?
            }
        };
        if !out.status.success() {
            bail!(
                "berth vm start failed: {}{}\n--- console ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                vm.console()
            );
        }
        Ok(vm)
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.berth);
        c.args(args)
            .env("BERTH_HOME", self.home())
            .env("BERTH_CONFIG_DIR", self.dir.path().join("config"))
            .env("BERTH_LOG", "info");
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd(args).output().expect("running berth")
    }

    pub fn socket(&self) -> PathBuf {
        self.home().join("run/docker.sock")
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    /// Runs docker; a command that outlives [`COMMAND_LIMIT`] fails the test
    /// with the guest's console tail (a wedged guest shows there).
    pub fn docker(&self, args: &[&str]) -> Output {
        let child = self
            .docker_cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running docker");
        self.finish(child, &format!("docker {args:?}"))
    }

    /// [`finish_within`] with [`COMMAND_LIMIT`], failing the test on a hang.
    pub fn finish(&self, child: Child, what: &str) -> Output {
        finish_within(child, COMMAND_LIMIT).unwrap_or_else(|| {
            panic!(
                "{what} did not finish within {}s\n--- console tail ---\n{}",
                COMMAND_LIMIT.as_secs(),
                tail(&self.console(), 40)
            )
        })
    }

    /// Runs docker and insists on success; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n--- console tail ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.console(), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn console(&self) -> String {
        std::fs::read_to_string(self.home().join("vm/console.log")).unwrap_or_default()
    }

    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.home().join("vm/supervisor.log")).unwrap_or_default()
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.berth(&["vm", "status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    pub fn qemu_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.home().join("vm/qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn stop(&self) -> Output {
        self.berth(&["vm", "stop"])
    }

    /// Waits until `f` holds or `within` passes.
    pub fn wait_for(&self, within: Duration, mut f: impl FnMut() -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < within {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.stop();
        // Whatever is left (a supervisor that hung): kill by pid files.
        for f in ["vm/supervisor.pid", "vm/qemu.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.home().join(f)) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: kill(2) on a pid this VM recorded.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

/// The busybox test image in a fresh local registry, named as the guest sees
/// it (QEMU's user network puts the host's loopback at 10.0.2.2): the registry
/// (keep it alive), its address for `insecureRegistries`, and the image.
pub fn guest_busybox() -> anyhow::Result<(crate::registry::Registry, String, String)> {
    use crate::images::{busybox_image, Compression};
    let registry = crate::registry::Registry::start(crate::registry::RegistryAuth::None)?;
    busybox_image(Compression::Gzip, "amd64")?.push(&registry, "bb:latest")?;
    let reg = registry.addr().replace("127.0.0.1", "10.0.2.2");
    let image = format!("{reg}/bb:latest");
    Ok((registry, reg, image))
}
