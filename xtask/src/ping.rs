//! Readiness probes: a Docker API answering `GET /_ping` on a unix socket, and an HTTP
//! server answering on a TCP address, each by one raw HTTP/1.0 request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

fn status_line(mut s: impl Read + Write, request: &str) -> Option<String> {
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = Vec::new();
    // A ping reply is tiny; read to EOF (HTTP/1.0 closes) or the timeout.
    let _ = s.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines().next().map(str::to_string)
}

fn is_200(line: Option<String>) -> bool {
    line.is_some_and(|l| l.split_whitespace().nth(1) == Some("200"))
}

/// Whether a Docker Engine API answers `GET /_ping` with 200 on `socket`.
pub fn docker_api(socket: &Path) -> bool {
    let Ok(s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let _ = s.set_write_timeout(Some(TIMEOUT));
    is_200(status_line(
        s,
        "GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n",
    ))
}

/// Whether `GET path` on `addr` (host:port) answers 200.
pub fn http(addr: &str, path: &str) -> bool {
    let Ok(sock) = addr.parse() else {
        return false;
    };
    let Ok(s) = TcpStream::connect_timeout(&sock, TIMEOUT) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let _ = s.set_write_timeout(Some(TIMEOUT));
    is_200(status_line(
        s,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    ))
}
