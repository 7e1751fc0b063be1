//! A real registry (`docker-registry`, distribution 2.8) on a free loopback port, with
//! anonymous, htpasswd (Basic) or token (Bearer, JWT signed by a key whose certificate
//! is the registry's `rootcertbundle`) authentication.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;

#[derive(Debug, Clone)]
pub enum RegistryAuth {
    None,
    Basic { user: String, password: String },
    Token { user: String, password: String },
}

pub struct Registry {
    child: Child,
    addr: String,
    auth: RegistryAuth,
    token_server: Option<TokenServer>,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: RegistryAuth) -> anyhow::Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let port = crate::free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut auth_yaml = String::new();
        let mut token_server = None;
        match &auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { user, password } => {
                let hash = bcrypt::hash(password, 4).context("hashing password")?;
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    htpasswd.display()
                );
            }
            RegistryAuth::Token { user, password } => {
                let ts = TokenServer::start(dir.path(), user, password)?;
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                    ts.addr,
                    ts.cert.display()
                );
                token_server = Some(ts);
            }
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
                dir.path().join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let mut reg = Registry {
            child,
            addr,
            auth,
            token_server,
            _dir: dir,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited with {status}: {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = write!(s, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok()
                    && (line.contains(" 200 ") || line.contains(" 401 "))
                {
                    return Ok(());
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!("docker-registry did not become ready: {}", self.log())
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// `user:password` when the registry needs credentials.
    pub fn creds(&self) -> Option<String> {
        match &self.auth {
            RegistryAuth::None => None,
            RegistryAuth::Basic { user, password } | RegistryAuth::Token { user, password } => {
                Some(format!("{user}:{password}"))
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(ts) = self.token_server.take() {
            ts.stop();
        }
    }
}

/// A minimal token server (the Docker token auth spec): checks HTTP Basic credentials
/// and issues an RS256 JWT granting exactly the requested scopes. Signing uses the
/// `openssl` CLI so the fixture needs no crypto crate.
struct TokenServer {
    addr: String,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> anyhow::Result<TokenServer> {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running openssl")?;
        if !status.success() {
            bail!("openssl could not make a key pair");
        }
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()?
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = serve_token(s, &expected, &key, &x5c);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(TokenServer {
            addr,
            cert,
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn serve_token(
    stream: TcpStream,
    expected_auth: &str,
    key: &Path,
    x5c: &str,
) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorized = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") && v.trim() == expected_auth {
                authorized = true;
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut access = Vec::new();
    let mut service = String::new();
    let mut account = String::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "scope" => {
                for scope in v.split(' ') {
                    let parts: Vec<&str> = scope.splitn(3, ':').collect();
                    if let [typ, name, actions] = parts.as_slice() {
                        access.push(serde_json::json!({
                            "type": typ, "name": name,
                            "actions": actions.split(',').collect::<Vec<_>>(),
                        }));
                    }
                }
            }
            "service" => service = v,
            "account" => account = v,
            _ => {}
        }
    }
    let mut out = stream;
    if !authorized {
        let body =
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#;
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": account, "aud": service,
        "exp": now + 600, "nbf": now - 10, "iat": now,
        "jti": crate::unique("jti"), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("openssl stdin")?
        .write_all(signing_input.as_bytes())?;
    let mut sig = Vec::new();
    child
        .stdout
        .take()
        .context("openssl stdout")?
        .read_to_end(&mut sig)?;
    child.wait()?;
    let token = format!("{signing_input}.{}", b64url(&sig));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 600}).to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&b[i..i + 3]),
                }
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
