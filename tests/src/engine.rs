//! The engine harness: runs `berth-agent daemon` on a temp root and socket, and cleans up.
//!
//! Tests talk to it through the stock `docker` CLI (with a private DOCKER_CONFIG) or
//! with raw HTTP/1.1 on the unix socket.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the daemon may take to answer `/_ping` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent binary: `$BERTH_AGENT_BIN`, else `berth-agent` in the nearest ancestor
/// directory of the running executable (`target/debug/deps/<test>` →
/// `target/debug/berth-agent`).
pub fn agent_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_AGENT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("finding the test executable")?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join("berth-agent");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    bail!("berth-agent binary not found: run `cargo build -p berth-agent` or set BERTH_AGENT_BIN")
}

/// The getting-started tutorial's image archive that `cargo xtask tutorial-image` (and
/// the VM image build, which ships it) leaves in `target/tutorial`.
pub fn tutorial_archive() -> anyhow::Result<PathBuf> {
    let agent = agent_bin()?;
    let archive = agent
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("tutorial/getting-started.tar"))
        .context("the agent binary has no target directory")?;
    if !archive.is_file() {
        bail!(
            "{} is missing: run `cargo xtask tutorial-image`",
            archive.display()
        );
    }
    Ok(archive)
}

/// Status, headers and body of a raw HTTP response.
pub type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// A running engine (`berth-agent daemon`) on its own root and socket.
///
/// Drop SIGKILLs the daemon and, when the root is the engine's own ([`Engine::start`]),
/// also every process still running from it (shims and their containers), detaches
/// the mounts under it and removes it. The removal never crosses into a mount.
pub struct Engine {
    child: Option<Child>,
    root: PathBuf,
    socket: PathBuf,
    /// Socket, log, DOCKER_CONFIG and (for `start()`) the root. Removed by Drop.
    dir: PathBuf,
    owns_root: bool,
    extra: Vec<String>,
    /// The agent binary (`None`: [`agent_bin`]).
    bin: Option<PathBuf>,
    /// A named network namespace (`ip netns`) the daemon runs in.
    netns: Option<String>,
}

impl Engine {
    /// A fresh engine on a temp root and socket.
    pub fn start() -> anyhow::Result<Engine> {
        let dir = new_dir()?;
        let root = dir.join("root");
        Self::launch(dir, root, true, Vec::new(), None, None)
    }

    /// A fresh engine on a temp root and socket, with extra daemon arguments.
    pub fn start_args(extra_args: &[&str]) -> anyhow::Result<Engine> {
        let dir = new_dir()?;
        let root = dir.join("root");
        let extra = extra_args.iter().map(|s| s.to_string()).collect();
        Self::launch(dir, root, true, extra, None, None)
    }

    /// A fresh engine in the named network namespace (`ip netns add`), entered with
    /// `nsenter` alone: `ip netns exec` would remount /sys and hide the cgroup
    /// hierarchies. Its socket is on the shared filesystem, so the CLI reaches it from
    /// here; its bridges and firewall rules are the namespace's.
    pub fn start_in_netns(netns: &str) -> anyhow::Result<Engine> {
        let dir = new_dir()?;
        let root = dir.join("root");
        Self::launch(dir, root, true, Vec::new(), None, Some(netns.to_string()))
    }

    /// A fresh engine from another agent binary (an installed package's).
    pub fn start_bin(bin: PathBuf) -> anyhow::Result<Engine> {
        let dir = new_dir()?;
        let root = dir.join("root");
        Self::launch(dir, root, true, Vec::new(), Some(bin), None)
    }

    /// Starts an engine on an existing root (restart tests), with extra daemon
    /// arguments. The root is not cleaned up by this engine's drop; the caller owns it
    /// (typically it is the root of an earlier, killed engine that is still in scope).
    pub fn start_with(root: PathBuf, extra_args: &[&str]) -> anyhow::Result<Engine> {
        let dir = new_dir()?;
        Self::launch(
            dir,
            root,
            false,
            extra_args.iter().map(|s| s.to_string()).collect(),
            None,
            None,
        )
    }

    fn launch(
        dir: PathBuf,
        root: PathBuf,
        owns_root: bool,
        extra: Vec<String>,
        bin: Option<PathBuf>,
        netns: Option<String>,
    ) -> anyhow::Result<Engine> {
        let mut e = Engine {
            child: None,
            socket: dir.join("docker.sock"),
            root,
            dir,
            owns_root,
            extra,
            bin,
            netns,
        };
        std::fs::create_dir_all(e.dir.join("docker-config"))?;
        std::fs::write(e.dir.join("docker-config/config.json"), b"{}")?;
        e.spawn()?;
        Ok(e)
    }

    /// Starts the daemon again on the same root and socket (after [`Engine::kill9`] or
    /// [`Engine::stop`]); a no-op while it runs.
    pub fn respawn(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the engine log")?;
        let bin = match &self.bin {
            Some(b) => b.clone(),
            None => agent_bin()?,
        };
        let mut cmd = match &self.netns {
            Some(ns) => in_netns(ns, &bin),
            None => Command::new(&bin),
        };
        let child = cmd
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--bridge")
            .arg(bridge_name(&self.root))
            .args(&self.extra)
            .env("BERTH_LOG", "debug")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.child = None;
                    bail!("berth-agent exited with {status}:\n{}", self.log());
                }
            }
            if let Ok((200, _, body)) = self.try_request("GET", "/_ping", &[], None) {
                if body == b"OK" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        bail!(
            "berth-agent did not answer /_ping within {READY_TIMEOUT:?}:\n{}",
            self.log()
        )
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// `unix:///…/docker.sock`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The private `DOCKER_CONFIG` directory the `docker` CLI gets.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("docker-config")
    }

    /// Installs the buildx and Compose v2 CLI plugins in this engine's private
    /// `DOCKER_CONFIG`, as a user who has buildx has them: `docker build` then goes
    /// through buildx and BuildKit's API.
    pub fn with_cli_plugins(&self) {
        let cfg = serde_json::json!({ "cliPluginsExtraDirs": [cli_plugins_dir()] });
        std::fs::write(self.docker_config().join("config.json"), cfg.to_string())
            .expect("writing the docker config");
    }

    /// A `docker` command aimed at this engine with a private config (no user
    /// contexts, logins or TLS settings).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_DEFAULT_PLATFORM");
        c
    }

    /// Runs the `docker` CLI against this engine (stdin closed).
    pub fn docker(&self, args: &[&str]) -> Output {
        match self.docker_cmd(args).stdin(Stdio::null()).output() {
            Ok(o) => o,
            Err(e) => panic!("cannot run docker (is the docker CLI on PATH?): {e}"),
        }
    }

    /// Runs the `docker` CLI with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = match self
            .docker_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot run docker (is the docker CLI on PATH?): {e}"),
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => panic!("docker failed: {e}"),
        }
    }

    /// Runs the `docker` CLI, panics (with its stderr and the engine log) on failure,
    /// returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        if !out.status.success() {
            panic!(
                "docker {} failed ({}):\nstdout: {}\nstderr: {}\nengine log tail:\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.log(), 40)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A raw HTTP/1.1 request on the socket: (status, headers, body). Panics (with the
    /// engine log) if the request cannot be made or the answer cannot be read.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> RawResponse {
        self.request_with(method, path, &[], body)
    }

    /// Like [`Engine::request`] with extra headers (e.g. `X-Registry-Auth`, or a
    /// `Content-Type` other than the default `application/json`).
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> RawResponse {
        match self.try_request(method, path, headers, body) {
            Ok(r) => r,
            Err(e) => panic!("{method} {path}: {e:#}\n{}", tail(&self.log(), 40)),
        }
    }

    /// The fallible form of [`Engine::request_with`].
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<RawResponse> {
        let mut s = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting {}", self.socket.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(300)))?;
        let body = body.unwrap_or_default();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        crate::http::read_response(s, method == "HEAD")
    }

    /// SIGKILL the daemon, as a crash, and reap it. Shims and containers keep running.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the daemon and wait for it (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on our own, not yet reaped, child.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("engine.log")
    }

    /// The daemon's stdout and stderr so far (all runs on this engine).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// `program` run in the named network namespace (`ip netns add`) and nothing else of
/// it: `ip netns exec` would also remount /sys, hiding the cgroup hierarchies.
pub fn in_netns(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(program);
    c
}

fn new_dir() -> anyhow::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("berth-engine-")
        .tempdir()
        .context("making the engine's temp dir")?
        .keep())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A graceful stop, as a user's: the engine finishes deleting the bridges
        // of networks just removed (that happens after `network rm` answers, and
        // the store no longer names them for the cleanup below).
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- engine log ({}) ---\n{}",
                self.socket.display(),
                tail(&self.log(), 60)
            );
        }
        if self.owns_root {
            kill_processes_using(&self.root);
            remove_network_state(&self.root);
        }
        // The root of `start_with` belongs to the caller; only our own dir goes.
        cleanup_tree(&self.dir);
    }
}

/// SIGKILLs, best effort, every process whose command line mentions `root` (the
/// daemon's shims: `berth-agent shim --bundle <root>/…`) and all their descendants
/// (the containers). Only for a root this harness made: the path is a unique temp dir.
pub fn kill_processes_using(root: &Path) {
    let needle = root.as_os_str().as_encoded_bytes();
    if !root.is_absolute() || needle.len() < 8 {
        return;
    }
    let me = std::process::id();
    let mut parent_of = Vec::new();
    let mut doomed = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid …`: comm may hold spaces and parens.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0);
        parent_of.push((pid, ppid));
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline.windows(needle.len()).any(|w| w == needle) {
            doomed.push(pid);
        }
    }
    // Descendants, to a fixed point.
    loop {
        let before = doomed.len();
        for &(pid, ppid) in &parent_of {
            if doomed.contains(&ppid) && !doomed.contains(&pid) && pid != me {
                doomed.push(pid);
            }
        }
        if doomed.len() == before {
            break;
        }
    }
    for pid in doomed {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) with a plain pid; a stale pid at worst gets ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Lazily unmounts every mount at or under `dir` (deepest first), then removes `dir`
/// without ever descending into something that is still a mount. Errors are ignored.
pub fn cleanup_tree(dir: &Path) {
    for m in mounts_under(dir).into_iter().rev() {
        if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2(2) with a valid NUL-terminated path.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    let still_mounted = mounts_under(dir);
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        remove_tree(dir, meta.dev(), &still_mounted);
    }
}

/// Mount points at or under `dir`, shallowest first, from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| p.components().count());
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn remove_tree(path: &Path, dev: u64, mounts: &[PathBuf]) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if meta.dev() != dev || mounts.iter().any(|m| m == path) {
            return;
        }
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.filter_map(Result::ok) {
                remove_tree(&e.path(), dev, mounts);
            }
        }
        let _ = std::fs::remove_dir(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// The default bridge's name for an engine on `root`: unique per root, so engines
/// running side by side in the suite never share a bridge (at most 15 characters).
pub fn bridge_name(root: &Path) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(root.as_os_str().as_encoded_bytes()));
    format!("bt{}", &h[..10])
}

/// The bridges and the nftables table an engine on `root` made, from its store.
pub fn network_state(root: &Path) -> (Vec<String>, Option<String>) {
    let Ok(bytes) = std::fs::read(root.join("network/networks.json")) else {
        return (Vec::new(), None);
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return (Vec::new(), None);
    };
    let bridges = v["networks"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|n| n["bridge"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let table = v["table"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    (bridges, table)
}

/// Deletes the bridges and the nftables table of the (stopped) engine on `root`.
pub fn remove_network_state(root: &Path) {
    let (bridges, table) = network_state(root);
    for b in bridges {
        let _ = Command::new("ip")
            .args(["link", "del", &b])
            .stderr(Stdio::null())
            .status();
    }
    if let Some(t) = table {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &t])
            .stderr(Stdio::null())
            .status();
    }
}

/// What of the engine's network state still exists on the machine: bridges and the
/// nftables table (empty when everything is gone).
pub fn network_leftovers(state: &(Vec<String>, Option<String>)) -> Vec<String> {
    let (bridges, table) = state.clone();
    let mut left: Vec<String> = bridges
        .into_iter()
        .filter(|b| Path::new("/sys/class/net").join(b).exists())
        .map(|b| format!("bridge {b}"))
        .collect();
    if let Some(t) = table {
        let listed = Command::new("nft")
            .args(["list", "table", "ip", &t])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if listed.is_ok_and(|s| s.success()) {
            left.push(format!("nft table {t}"));
        }
    }
    left
}

/// A tool `cargo xtask test` prepared under `target/tools/<sub>` (beside the agent's
/// `target/debug`), or where `env` says; `marker` must exist in it.
fn tools_dir(env: &str, sub: &str, marker: &str) -> PathBuf {
    if let Some(d) = std::env::var_os(env) {
        return PathBuf::from(d);
    }
    let agent = agent_bin().expect("the agent binary");
    let dir = agent
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("tools").join(sub))
        .unwrap_or_default();
    assert!(
        dir.join(marker).exists(),
        "no {marker} in {}: `cargo xtask test` prepares it (or set {env})",
        dir.display()
    );
    dir
}

/// The buildx and Compose v2 plugins `cargo xtask test` fetched from Debian trixie
/// (`target/tools/cli-plugins`).
pub fn cli_plugins_dir() -> PathBuf {
    tools_dir("BERTH_CLI_PLUGINS", "cli-plugins", "docker-buildx")
}

/// The other architecture's tools `cargo xtask test` fetched
/// (`target/tools/foreign/<arch>`: its busybox).
pub fn foreign_dir(arch: &str) -> PathBuf {
    tools_dir("BERTH_FOREIGN", &format!("foreign/{arch}"), "busybox")
}

/// Berth's Windows build, as `cargo xtask cross` left it (`target/tools/windows`):
/// `berth.exe`, the pipe test client `pipe-e2e.exe`, and `wineprefix/`.
pub fn windows_dir() -> PathBuf {
    tools_dir("BERTH_WINDOWS", "windows", "pipe-e2e.exe")
}

/// docker-py's integration suite and its venv, as `cargo xtask test` prepared them
/// (`target/tools/docker-py`: `venv/` and `suite/`).
pub fn docker_py_dir() -> PathBuf {
    tools_dir("BERTH_DOCKER_PY", "docker-py", "suite/tests/integration")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_detaches_mounts_and_removes_the_tree() {
        let dir = new_dir().unwrap();
        let mnt = dir.join("root/overlay/merged");
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::write(dir.join("root/file"), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"keep").unwrap();
        let src = std::ffi::CString::new(outside.path().as_os_str().as_encoded_bytes()).unwrap();
        let dst = std::ffi::CString::new(mnt.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mount(2) with valid NUL-terminated strings; a bind mount.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            eprintln!("skipping: bind mount needs root");
            cleanup_tree(&dir);
            return;
        }
        assert!(mnt.join("keep").is_file());
        assert_eq!(mounts_under(&dir), vec![mnt.clone()]);
        cleanup_tree(&dir);
        assert!(!dir.exists());
        assert!(mounts_under(&dir).is_empty());
        // The bind-mounted directory's content was not removed through the mount.
        assert_eq!(std::fs::read(outside.path().join("keep")).unwrap(), b"keep");
    }

    #[test]
    fn kill_processes_using_kills_matches_and_descendants() {
        let dir = new_dir().unwrap();
        // `sh -c '…' <dir>`: the dir is in sh's cmdline, not in its child's.
        let mut sh = Command::new("/bin/busybox")
            .args(["sh", "-c", "/bin/busybox sleep 300 & wait", "shim"])
            .arg(&dir)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let children =
            std::fs::read_to_string(format!("/proc/{}/task/{}/children", sh.id(), sh.id()))
                .unwrap_or_default();
        let child: Option<i32> = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok());
        kill_processes_using(&dir);
        let status = sh.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        if let Some(pid) = child {
            let deadline = Instant::now() + Duration::from_secs(5);
            // The orphaned sleep is reaped by init (or a subreaper); wait until gone.
            while Instant::now() < deadline {
                let state =
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let gone = state
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .is_none_or(|s| s == "Z" || s == "X");
                if gone {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(
                !state.contains(") S ") && !state.contains(") R "),
                "sleep survived: {state}"
            );
        }
        cleanup_tree(&dir);
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
