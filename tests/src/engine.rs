//! Runs the `berth-agent` binary on a temp root and socket, and talks to it: through the
//! stock `docker` CLI (with a private DOCKER_CONFIG) or with raw HTTP on the socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The agent binary: `$BERTH_AGENT_BIN`, else `target/debug/berth-agent` next to the
/// test executable (`target/debug/deps/…`).
pub fn agent_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_AGENT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
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

/// Status, headers and body of a raw HTTP response.
pub type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

pub struct Engine {
    child: Option<Child>,
    root: PathBuf,
    socket: PathBuf,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Engine {
    pub fn start() -> anyhow::Result<Engine> {
        let dir = tempfile::Builder::new().prefix("berth-engine-").tempdir()?;
        let root = dir.path().join("root");
        Self::launch(dir, root, Vec::new())
    }

    /// Starts an engine on an existing root (restart tests). The root is not removed
    /// by this engine's drop; the caller owns it.
    pub fn start_with(root: PathBuf, extra_args: &[&str]) -> anyhow::Result<Engine> {
        let dir = tempfile::Builder::new().prefix("berth-engine-").tempdir()?;
        Self::launch(
            dir,
            root,
            extra_args.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn launch(dir: tempfile::TempDir, root: PathBuf, extra: Vec<String>) -> anyhow::Result<Engine> {
        let socket = dir.path().join("docker.sock");
        std::fs::create_dir_all(dir.path().join("docker-config"))?;
        let mut e = Engine {
            child: None,
            root,
            socket,
            dir,
            extra,
        };
        e.spawn()?;
        Ok(e)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("engine.log"))?;
        let child = Command::new(agent_bin()?)
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("--socket")
            .arg(&self.socket)
            .args(&self.extra)
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting berth-agent")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("berth-agent exited with {status}: {}", self.log());
                }
            }
            if let Ok((200, _, body)) = self.try_request("GET", "/_ping", None) {
                if body == b"OK" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("berth-agent did not answer /_ping: {}", self.log())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        c
    }

    /// Runs the `docker` CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        match self.docker_cmd(args).stdin(Stdio::null()).output() {
            Ok(o) => o,
            Err(e) => panic!("cannot run docker: {e}"),
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
            Err(e) => panic!("cannot run docker: {e}"),
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

    /// A raw HTTP/1.1 request on the socket: (status, headers, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        match self.try_request(method, path, body) {
            Ok(r) => r,
            Err(e) => panic!("{method} {path}: {e}\n{}", tail(&self.log(), 40)),
        }
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<RawResponse> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        s.write_all(body)?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.trim_end().split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut out = Vec::new();
        if method == "HEAD" {
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16)?;
                if n == 0 {
                    break;
                }
                let mut chunk = vec![0; n];
                r.read_exact(&mut chunk)?;
                out.extend_from_slice(&chunk);
                line.clear();
                r.read_line(&mut line)?;
            }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            out.resize(n, 0);
            r.read_exact(&mut out)?;
        } else {
            r.read_to_end(&mut out)?;
        }
        Ok((status, headers, out))
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default()
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- engine log ({}) ---\n{}",
                self.socket.display(),
                tail(&self.log(), 60)
            );
        }
        // Roots made by `start()` live inside `dir` and go with it. Roots passed to
        // `start_with` belong to the caller, except when they are inside a temp dir of
        // ours (the restart tests pass the first engine's root).
    }
}
