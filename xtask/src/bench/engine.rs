//! The engines under test, each on its own scratch root and API socket: Berth's
//! `berth-agent daemon`, and Debian's dockerd with the containerd it supervises. Both are
//! driven through the stock `docker` CLI and stopped and cleaned up on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::scratch::Scratch;
use crate::ping;
use crate::proc::Daemon;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DOCKERD: &str = "/usr/sbin/dockerd";
const CONTAINERD: &str = "/usr/bin/containerd";
/// dockerd attaches to a system containerd found here instead of starting its own.
const SYSTEM_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

pub struct Engine {
    pub name: &'static str,
    pub socket: PathBuf,
    cli_config: PathBuf,
    log: PathBuf,
    /// The engine first, then anything it depends on: dropped (stopped) in this order.
    daemons: Vec<Daemon>,
    /// Bridges and an nftables table to delete once the engine has stopped.
    net_cleanup: NetCleanup,
    /// Dropped last: unmounts what the engine left and removes the tree.
    _dir: Scratch,
}

/// What an engine's networking leaves on the machine, removed when it is dropped.
#[derive(Default)]
struct NetCleanup {
    bridges: Vec<String>,
    /// Berth's store names the nftables table it owns.
    berth_store: Option<PathBuf>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Stop the daemons first; then nothing recreates what we delete.
        self.daemons.clear();
        let mut bridges = self.net_cleanup.bridges.clone();
        if let Some(store) = &self.net_cleanup.berth_store {
            if let Ok(v) = std::fs::read(store)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<serde_json::Value>(&b)?))
            {
                if let Some(t) = v["table"].as_str() {
                    let _ = Command::new("nft")
                        .args(["delete", "table", "ip", t])
                        .stderr(Stdio::null())
                        .status();
                }
                if let Some(nets) = v["networks"].as_object() {
                    bridges.extend(
                        nets.values()
                            .filter_map(|n| n["bridge"].as_str().map(str::to_string)),
                    );
                }
            }
        }
        for b in bridges {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The bridge Berth's default network gets in the bench (never the user's `berth0`).
pub const BERTH_BRIDGE: &str = "berthbench1";

impl Engine {
    /// Berth: `berth-agent daemon --root <tmp>/root --socket <tmp>/docker.sock`, its
    /// default bridge named [`BERTH_BRIDGE`] and removed afterwards.
    pub fn berth(bin: &Path) -> anyhow::Result<Engine> {
        Engine::berth_on(bin, BERTH_BRIDGE)
    }

    /// Berth with its default network on `bridge` (deleted afterwards).
    pub fn berth_on(bin: &Path, bridge: &str) -> anyhow::Result<Engine> {
        let dir = Scratch::new("berth")?;
        let socket = dir.join("docker.sock");
        let log_path = dir.join("berth-agent.log");
        let log = std::fs::File::create(&log_path)?;
        let daemon = Daemon::spawn(
            "berth-agent",
            Command::new(bin)
                .arg("daemon")
                .arg("--root")
                .arg(dir.join("root"))
                .arg("--socket")
                .arg(&socket)
                .arg("--bridge")
                .arg(bridge)
                .env("BERTH_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
            Duration::from_secs(15),
        )?;
        let cleanup = NetCleanup {
            bridges: vec![bridge.to_string()],
            berth_store: Some(dir.join("root/network/networks.json")),
        };
        Engine::ready("Berth", socket, log_path, vec![daemon], dir, cleanup)
    }

    /// Debian's dockerd on its own data root, exec root, pidfile, config file and socket;
    /// no bridge, no iptables or forwarding changes. It starts and supervises its own
    /// containerd, unless a system containerd would capture it: then we start a private
    /// containerd and point dockerd at it.
    pub fn dockerd(insecure_registry: &str) -> anyhow::Result<Engine> {
        Engine::dockerd_with(insecure_registry, None)
    }

    /// dockerd on a bridge the caller created (`-b`), still without iptables or
    /// forwarding changes: published ports then go through its `docker-proxy`.
    pub fn dockerd_with(insecure_registry: &str, bridge: Option<&str>) -> anyhow::Result<Engine> {
        let dir = Scratch::new("dockerd")?;
        let socket = dir.join("docker.sock");
        let log_path = dir.join("dockerd.log");
        std::fs::write(dir.join("daemon.json"), "{}\n")?;
        let mut daemons = Vec::new();
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg(format!("--bridge={}", bridge.unwrap_or("none")))
            .args(["--iptables=false", "--ip-masq=false", "--ip-forward=false"])
            .arg("--insecure-registry")
            .arg(insecure_registry);
        if Path::new(SYSTEM_CONTAINERD_SOCKET)
            .symlink_metadata()
            .is_ok()
        {
            let (containerd, address) = private_containerd(&dir)?;
            cmd.arg("--containerd").arg(address);
            daemons.push(containerd);
        }
        let log = std::fs::File::create(&log_path)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // dockerd goes first so it stops before the containerd it uses.
        daemons.insert(
            0,
            Daemon::spawn("dockerd", &mut cmd, Duration::from_secs(30))?,
        );
        Engine::ready(
            "dockerd",
            socket,
            log_path,
            daemons,
            dir,
            NetCleanup::default(),
        )
    }

    fn ready(
        name: &'static str,
        socket: PathBuf,
        log: PathBuf,
        mut daemons: Vec<Daemon>,
        dir: Scratch,
        net_cleanup: NetCleanup,
    ) -> anyhow::Result<Engine> {
        let cli_config = dir.join("docker-cli");
        std::fs::create_dir_all(&cli_config)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ping::docker_api(&socket) {
            for d in &mut daemons {
                if let Some(status) = d.exited() {
                    bail!("{} exited with {status}{}", d.name, tail(&log));
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not answer on {} within {READY_TIMEOUT:?}{}",
                    socket.display(),
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Engine {
            name,
            socket,
            cli_config,
            log,
            daemons,
            net_cleanup,
            _dir: dir,
        })
    }

    /// Resident memory of the engine's processes and all their descendants, in MB.
    pub fn rss_mb(&self) -> f64 {
        let roots: Vec<u32> = self.daemons.iter().map(Daemon::pid).collect();
        tree_rss_kb(&roots) as f64 / 1024.0
    }

    /// `docker -H unix://<socket> ARGS…` with a private CLI config; stderr on failure.
    pub fn docker(&self, args: &[&str]) -> Result<(), String> {
        self.docker_stdout(args).map(drop)
    }

    /// Like [`Engine::docker`], with extra environment variables for the CLI.
    pub fn docker_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
        self.run_docker(args, env).map(drop)
    }

    /// Like [`Engine::docker`], returning what the CLI printed on stdout.
    pub fn docker_stdout(&self, args: &[&str]) -> Result<String, String> {
        self.run_docker(args, &[])
    }

    /// Like [`Engine::docker_env`], run in directory `cwd`.
    pub fn docker_env_in(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: &Path,
    ) -> Result<(), String> {
        self.run_docker_in(args, env, Some(cwd)).map(drop)
    }

    fn run_docker(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
        self.run_docker_in(args, env, None)
    }

    fn run_docker_in(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> Result<String, String> {
        let mut cmd = Command::new("docker");
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        let out = cmd
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .envs(env.iter().copied())
            .env("DOCKER_CONFIG", &self.cli_config)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`docker {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Points this engine's private CLI config at the CLI plugins in `dir` (buildx):
    /// `docker build` then goes through buildx, unless `DOCKER_BUILDKIT=0`.
    pub fn use_cli_plugins(&self, dir: &Path) -> anyhow::Result<()> {
        let config = serde_json::json!({ "cliPluginsExtraDirs": [dir] });
        std::fs::write(self.cli_config.join("config.json"), config.to_string())?;
        Ok(())
    }

    /// An engine that started, holds `image` and has the CLI plugins in `plugins`;
    /// or, for the report, why not.
    pub fn prepared(
        engine: anyhow::Result<Engine>,
        image: &str,
        plugins: &Path,
    ) -> anyhow::Result<Result<Engine, String>> {
        let engine = match engine {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("could not start: {e:#}"))),
        };
        if let Err(e) = engine.docker(&["pull", "-q", image]) {
            return Ok(Err(e));
        }
        engine.use_cli_plugins(plugins)?;
        Ok(Ok(engine))
    }

    /// The last lines of the engine's log, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

/// Starts `containerd` with its own root, state and sockets under `dir`.
fn private_containerd(dir: &Scratch) -> anyhow::Result<(Daemon, PathBuf)> {
    let base = dir.join("containerd");
    std::fs::create_dir_all(&base)?;
    let address = base.join("containerd.sock");
    let config = base.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{addr}\"\n\
             [ttrpc]\n  address = \"{addr}.ttrpc\"\n\
             [debug]\n  address = \"{base}/debug.sock\"\n",
            root = base.join("root").display(),
            state = base.join("state").display(),
            addr = address.display(),
            base = base.display(),
        ),
    )?;
    let log = std::fs::File::create(base.join("containerd.log"))?;
    let mut daemon = Daemon::spawn(
        "containerd",
        Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log),
        Duration::from_secs(15),
    )
    .context("starting a private containerd (apt-get install containerd)")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while std::os::unix::net::UnixStream::connect(&address).is_err() {
        if let Some(status) = daemon.exited() {
            bail!(
                "containerd exited with {status}{}",
                tail(&base.join("containerd.log"))
            );
        }
        if Instant::now() > deadline {
            bail!("containerd did not listen on {}", address.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((daemon, address))
}

/// The last lines of a log, introduced by a newline; empty if the log is.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\n{} says:\n{}",
        log.display(),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

/// VmRSS of `roots` and all their descendants (each process counted once), in kB.
fn tree_rss_kb(roots: &[u32]) -> u64 {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| Some((pid, ppid(pid)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = Vec::new();
    let mut stack = roots.to_vec();
    while let Some(p) = stack.pop() {
        if seen.contains(&p) {
            continue;
        }
        seen.push(p);
        stack.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
    }
    seen.iter().map(|p| rss_kb(*p)).sum()
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields follow the last ')'.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
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
