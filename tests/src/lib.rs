//! Shared end-to-end fixtures: local registry, test images, engine harness, small HTTP client.
//!
//! A real `docker-registry` on loopback (anonymous, Basic or token auth), small OCI
//! images built locally from busybox-static and pushed with skopeo, and a harness that
//! runs the engine binary on a temp root. Nothing here touches the internet: all
//! traffic goes to 127.0.0.1 or a unix socket.

pub mod engine;
pub mod images;
pub mod netns;
pub mod registry;
pub mod sdk;
pub mod vm;

use std::net::TcpListener;

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A command's stdout then stderr, as one text for assertions and failure messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A name no other test process uses at the same time.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A parsed HTTP response from [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One plain-HTTP/1.1 request to `addr` (`127.0.0.1:PORT`) with `Connection: close`.
/// Bodies with `Content-Length`, chunked bodies and bodies ended by close are read.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<HttpResponse> {
    use anyhow::Context;
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).with_context(|| format!("connecting {addr}"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let body = body.unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let (status, headers, body) = http::read_response(s, method == "HEAD")
        .with_context(|| format!("{method} http://{addr}{path}"))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

pub(crate) mod http {
    //! Reading an HTTP/1.1 response by hand (status line, headers, body).

    use std::io::{BufRead, BufReader, Read};

    use anyhow::Context;

    pub type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

    pub fn read_response(stream: impl Read, head_only: bool) -> anyhow::Result<Parsed> {
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        let (status, headers) = loop {
            line.clear();
            r.read_line(&mut line)?;
            let status: u16 = line
                .split_whitespace()
                .nth(1)
                .context("no status line")?
                .parse()
                .with_context(|| format!("bad status line {line:?}"))?;
            let mut headers = Vec::new();
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            // Interim responses (100 Continue) precede the real one; 101 is final.
            if !(100..200).contains(&status) || status == 101 {
                break (status, headers);
            }
        };
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        let mut out = Vec::new();
        if head_only || status == 204 || status == 304 || status == 101 {
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    anyhow::bail!("connection closed inside a chunked body");
                }
                let size = line.trim().split(';').next().unwrap_or("").trim();
                let n = usize::from_str_radix(size, 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                if n == 0 {
                    // Trailers, up to the empty line (or close).
                    loop {
                        line.clear();
                        if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                            break;
                        }
                    }
                    break;
                }
                let start = out.len();
                out.resize(start + n, 0);
                r.read_exact(&mut out[start..])?;
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
}

/// The usual end-to-end starting point: a registry with the busybox-static test image
/// pushed as `bb:latest`, and a fresh engine that has pulled it. Returns the image's
/// name; keep the registry alive as long as the engine may pull from it.
pub fn busybox_engine() -> (registry::Registry, engine::Engine, String) {
    let registry = registry::Registry::start(registry::RegistryAuth::None).unwrap();
    let engine = engine::Engine::start().unwrap();
    let img = images::busybox_image(images::Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "bb:latest").unwrap();
    let name = format!("{}/bb:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &name]);
    (registry, engine, name)
}

/// A static UDP echo server, built with the machine's gcc (busybox has no UDP server).
pub fn udp_echo_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("udpecho.c");
    std::fs::write(
        &src,
        r#"#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[1]));
  if (bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
  char buf[2048];
  for (;;) {
    struct sockaddr_in from; socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n > 0) sendto(s, buf, n, 0, (struct sockaddr *)&from, fl);
  }
}
"#,
    )
    .unwrap();
    let out = dir.join("udpecho");
    let st = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(st.success());
    out
}

#[cfg(test)]
mod tests {
    use super::http::read_response;

    #[test]
    fn reads_chunked_and_sized_bodies() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: 1\r\n\r\n";
        let (status, headers, body) = read_response(&raw[..], false).unwrap();
        assert_eq!(status, 200);
        assert_eq!(headers[0].0, "Transfer-Encoding");
        assert_eq!(body, b"hello world");
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef";
        let (status, _, body) = read_response(&raw[..], false).unwrap();
        assert_eq!((status, &body[..]), (404, &b"abc"[..]));
        let raw = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert_eq!(read_response(&raw[..], false).unwrap().2, b"until close");
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert!(read_response(&raw[..], true).unwrap().2.is_empty());
    }
}
