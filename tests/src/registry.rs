//! The test registry: `docker-registry` (distribution 2.8) on loopback, plus its token server.
//!
//! Anonymous, htpasswd (Basic) or token (Bearer JWT) authentication, on a free
//! 127.0.0.1 port with filesystem storage in a temp dir.
//!
//! Notes on distribution 2.8.2 (Debian's `docker-registry`), checked by the smoke test:
//! - htpasswd auth works over plain HTTP: the registry does not insist on TLS (it only
//!   answers 401 with `WWW-Authenticate: Basic realm=…` until credentials come).
//!   Entries must be bcrypt (`$2y$`/`$2b$`), which the `bcrypt` crate writes.
//! - token auth: the JWT's header carries `x5c` (the signing certificate, base64 DER);
//!   distribution verifies that chain against `rootcertbundle`, so a self-signed
//!   certificate in the bundle is enough. `kid` would also do, but 2.8 derives it from
//!   the libtrust key fingerprint, which `x5c` avoids. `aud` must be a string equal to
//!   `service`, `iss` equal to `issuer`, and `access` must list the requested actions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;

use crate::HttpResponse;

/// The `service` the registry announces and the token's `aud`.
pub const SERVICE: &str = "berth-test-registry";
/// The token's `iss`.
pub const ISSUER: &str = "berth-test-issuer";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// Anonymous pull and push.
    None,
    /// htpasswd (bcrypt); the registry answers `WWW-Authenticate: Basic`.
    Basic { user: String, password: String },
    /// Bearer tokens from a token server in this process, which checks these
    /// credentials (HTTP Basic on `GET /token`).
    Token { user: String, password: String },
}

impl RegistryAuth {
    pub fn basic(user: &str, password: &str) -> Self {
        RegistryAuth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn token(user: &str, password: &str) -> Self {
        RegistryAuth::Token {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// A running `docker-registry serve` with filesystem storage in a temp dir. Drop kills
/// it (and the token server) and removes the dir.
pub struct Registry {
    child: Child,
    addr: String,
    auth: RegistryAuth,
    token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free `127.0.0.1` port and waits until `GET /v2/` answers
    /// (200, or 401 with auth).
    pub fn start(auth: RegistryAuth) -> anyhow::Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .context("making the registry's temp dir")?;
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
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    ts.addr,
                    ts.cert.display()
                );
                token_server = Some(ts);
            }
        }
        let log_path = dir.path().join("registry.log");
        // The port is free when picked but another test may take it before the registry
        // binds it: retry a few times on a fresh port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr = format!("127.0.0.1:{}", crate::free_port()?);
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
                    dir.path().join("data").display()
                ),
            )?;
            let log = std::fs::File::create(&log_path)?;
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting docker-registry (apt-get install docker-registry)")?;
            match wait_ready(&mut child, &addr) {
                Ok(()) => {
                    return Ok(Registry {
                        child,
                        addr,
                        auth,
                        token_server,
                        dir,
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if attempt < 5 && log.contains("address already in use") {
                        continue;
                    }
                    return Err(e.context(format!("docker-registry log:\n{log}")));
                }
            }
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
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

    /// The token endpoint (`http://127.0.0.1:PORT/token`) of a token-auth registry.
    pub fn token_realm(&self) -> Option<String> {
        self.token_server
            .as_ref()
            .map(|t| format!("http://{}/token", t.addr))
    }

    /// How many `/token` requests the token server has answered (any status).
    pub fn token_requests(&self) -> usize {
        self.token_server
            .as_ref()
            .map_or(0, |t| t.requests.load(Ordering::Relaxed))
    }

    /// Asks the token server for a token for `scope` (e.g. `repository:app:pull`) with
    /// the registry's credentials, or with `creds` (`user:password`) when given.
    pub fn token(&self, scope: &str, creds: Option<&str>) -> anyhow::Result<String> {
        let ts = self
            .token_server
            .as_ref()
            .context("registry does not use token auth")?;
        let creds = match creds {
            Some(c) => c.to_string(),
            None => self.creds().context("no credentials")?,
        };
        let basic = format!("Basic {}", B64.encode(creds));
        let path = format!(
            "/token?service={SERVICE}&scope={}",
            scope.replace(':', "%3A").replace('/', "%2F")
        );
        let r = crate::http_request(&ts.addr, "GET", &path, &[("Authorization", &basic)], None)?;
        if r.status != 200 {
            bail!("token server answered {}: {}", r.status, r.text());
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .context("no token in the token server's answer")
    }

    /// `GET` (or `HEAD`) on the registry API with `Accept: accept`, authenticated with
    /// the registry's credentials: Basic, or a Bearer token for the repository's (or the
    /// catalog's) pull scope. For checking what a push stored.
    pub fn get(&self, method: &str, path: &str, accept: &str) -> anyhow::Result<HttpResponse> {
        let mut headers = vec![("Accept".to_string(), accept.to_string())];
        match &self.auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { user, password } => headers.push((
                "Authorization".into(),
                format!("Basic {}", B64.encode(format!("{user}:{password}"))),
            )),
            RegistryAuth::Token { .. } => {
                let scope = scope_for(path);
                headers.push((
                    "Authorization".into(),
                    format!("Bearer {}", self.token(&scope, None)?),
                ));
            }
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::http_request(&self.addr, method, path, &headers, None)
    }

    /// The registry's temp dir (config, storage under `data/`, log, auth files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's own log (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

/// Polls `GET /v2/` until it answers 200 or 401 (20 s at most).
fn wait_ready(child: &mut Child, addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("docker-registry exited with {status}");
        }
        if let Ok(r) = crate::http_request(addr, "GET", "/v2/", &[], None) {
            if r.status == 200 || r.status == 401 {
                return Ok(());
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("docker-registry did not answer GET /v2/ on {addr} within 20 s")
}

/// The pull scope a registry API path needs.
fn scope_for(path: &str) -> String {
    let p = path.split('?').next().unwrap_or(path);
    let p = p.strip_prefix("/v2/").unwrap_or(p);
    if p.starts_with("_catalog") {
        return "registry:catalog:*".to_string();
    }
    let name = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| p.find(m))
        .min()
        .map_or(p, |i| &p[..i]);
    format!("repository:{name}:pull")
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The token server stops in its own Drop; the temp dir goes after that.
        self.token_server.take();
    }
}

/// A minimal token server (the Docker token auth spec): `GET /token?service=&scope=`
/// with HTTP Basic credentials (or the OAuth2 `POST /token` password grant) answers
/// `{"token", "access_token"}`: an RS256 JWT granting exactly the requested scopes.
/// Wrong or missing credentials get 401 (there are no anonymous tokens). Signing uses
/// the `openssl` CLI so the fixture needs no crypto crate.
struct TokenServer {
    addr: String,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

struct TokenConfig {
    user: String,
    password: String,
    key: PathBuf,
    x5c: String,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> anyhow::Result<TokenServer> {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let out = Command::new("openssl")
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
            .stdin(Stdio::null())
            .output()
            .context("running openssl (apt-get install openssl)")?;
        if !out.status.success() {
            bail!(
                "openssl could not make a key pair: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .context("running openssl x509")?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "openssl could not convert the certificate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let config = Arc::new(TokenConfig {
            user: user.to_string(),
            password: password.to_string(),
            key,
            x5c: B64.encode(&out.stdout),
        });
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the token server")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = stop.clone();
            let requests = requests.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let config = config.clone();
                            let requests = requests.clone();
                            thread::spawn(move || {
                                if serve_token(s, &config).is_ok() {
                                    requests.fetch_add(1, Ordering::Relaxed);
                                }
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(TokenServer {
            addr,
            cert,
            stop,
            requests,
            thread: Some(thread),
        })
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses `a=b&c=d` (percent and `+` decoded).
fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn serve_token(stream: TcpStream, config: &TokenConfig) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut basic: Option<(String, String)> = None;
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("authorization") {
                if let Some(enc) = v.strip_prefix("Basic ") {
                    let dec = B64.decode(enc.trim()).unwrap_or_default();
                    let dec = String::from_utf8_lossy(&dec).into_owned();
                    if let Some((u, p)) = dec.split_once(':') {
                        basic = Some((u.to_string(), p.to_string()));
                    }
                }
            } else if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().unwrap_or(0);
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut params = parse_form(query);
    if method == "POST" {
        let mut body = vec![0; content_length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let param = |name: &str| {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    // OAuth2 password grant sends the credentials in the form, not the header.
    if method == "POST" && basic.is_none() {
        if let (Some(u), Some(p)) = (param("username").pop(), param("password").pop()) {
            basic = Some((u, p));
        }
    }
    let mut out = stream;
    if path != "/token" || !(method == "GET" || method == "POST") {
        return respond(
            &mut out,
            "404 Not Found",
            r#"{"errors":[{"code":"NOT_FOUND"}]}"#,
        );
    }
    let authorized = basic
        .as_ref()
        .is_some_and(|(u, p)| *u == config.user && *p == config.password);
    if !authorized {
        return respond(
            &mut out,
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#,
        );
    }
    let mut access = Vec::new();
    for scopes in param("scope") {
        for scope in scopes.split(' ').filter(|s| !s.is_empty()) {
            // type:name:actions, where name may hold a registry host with a port.
            let Some((typ, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            access.push(serde_json::json!({
                "type": typ, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }));
        }
    }
    let service = param("service")
        .pop()
        .unwrap_or_else(|| SERVICE.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [config.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": config.user, "aud": service,
        "exp": now + 3600, "nbf": now - 60, "iat": now,
        "jti": crate::unique("jti"), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig = openssl_sign(&config.key, signing_input.as_bytes())?;
    let token = format!("{signing_input}.{}", B64URL.encode(sig));
    let body = serde_json::json!({
        "token": token, "access_token": token, "expires_in": 3600,
        "issued_at": rfc3339(now),
    })
    .to_string();
    respond(&mut out, "200 OK", &body)
}

fn respond(out: &mut TcpStream, status: &str, body: &str) -> anyhow::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()?;
    Ok(())
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `data`, by `openssl dgst -sign`.
fn openssl_sign(key: &Path, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl dgst")?;
    {
        let mut stdin = child.stdin.take().context("openssl stdin")?;
        stdin.write_all(data)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!(
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// RFC 3339 UTC for a Unix time (civil-from-days, no date crate needed).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
