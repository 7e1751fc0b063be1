//! Hybrid vsock: the guest's AF_VSOCK ports reached through a unix socket that a
//! vhost-user device (`vhost-device-vsock`) or Firecracker serves. The host
//! writes `CONNECT <port>\n`; the backend answers `OK <n>\n` (n differs by
//! backend, so it is ignored) or closes the socket when nothing listens.

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{BoxStream, ConnectFuture, Transport};

pub struct HybridVsock {
    /// The backend's `--uds-path`.
    pub uds: PathBuf,
}

impl HybridVsock {
    /// Where the backend delivers guest connections to host port `port`
    /// (Firecracker's convention, which vhost-device-vsock follows).
    pub fn host_listener_path(&self, port: u32) -> PathBuf {
        let mut p = self.uds.clone().into_os_string();
        p.push(format!("_{port}"));
        PathBuf::from(p)
    }
}

impl Transport for HybridVsock {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = UnixStream::connect(&self.uds).await?;
            let mut stream = BufReader::new(stream);
            // The backend hangs up (EOF, reset or a broken pipe, depending on
            // timing) when nothing listens on the port.
            let refused = |e: &dyn std::fmt::Display| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("guest vsock port {port}: {e}"),
                )
            };
            stream
                .get_mut()
                .write_all(format!("CONNECT {port}\n").as_bytes())
                .await
                .map_err(|e| refused(&e))?;
            // A backend that never answers (its guest side wedged) must not
            // hang the caller: treat silence as refusal and let it retry.
            let line = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                berth_proto::lines::read_line(&mut stream),
            )
            .await
            .map_err(|e| refused(&e))?
            .map_err(|e| refused(&e))?;
            match line {
                Some(l) if l.starts_with("OK ") => {
                    // Nothing but the reply line can be buffered yet: the guest
                    // speaks only after the host (API, control) or after the
                    // forward header the host has not sent.
                    if !stream.buffer().is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "unexpected bytes after the CONNECT reply",
                        ));
                    }
                    Ok(Box::new(stream.into_inner()) as BoxStream)
                }
                Some(other) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected CONNECT reply {other:?}"),
                )),
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("nothing listens on guest vsock port {port}"),
                )),
            }
        })
    }

    fn name(&self) -> &'static str {
        "hybrid-vsock"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    /// A stand-in for the backend's side of the handshake (what the real
    /// `vhost-device-vsock` does is covered by the VM tests).
    #[tokio::test]
    async fn handshake_ok_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let uds = dir.path().join("v.sock");
        let l = UnixListener::bind(&uds).unwrap();
        tokio::spawn(async move {
            // First: accept port 1024 and echo; second: refuse by closing.
            let (s, _) = l.accept().await.unwrap();
            let mut s = BufReader::new(s);
            let line = berth_proto::lines::read_line(&mut s)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(line, "CONNECT 1024");
            s.get_mut().write_all(b"OK 1024\n").await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.get_mut().write_all(&buf).await.unwrap();
            let (s, _) = l.accept().await.unwrap();
            drop(s);
        });
        let t = HybridVsock { uds };
        let mut s = t.connect(1024).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        let err = t.connect(1025).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
