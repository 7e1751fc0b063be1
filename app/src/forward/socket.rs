//! The host's docker socket: every client connection becomes a fresh stream to
//! the engine's API port, spliced byte for byte, so HTTP upgrades (attach,
//! exec, build sessions) pass through untouched and half-closes carry over.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;

use crate::transport::Transport;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{0} is in use by another engine")]
    InUse(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Binds `path` owner-only (its directory 0700, the socket 0600); a stale
/// socket of a dead forwarder is replaced, a live one is refused.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let err = |source| SocketError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Serves the socket until the task is dropped.
pub async fn serve(listener: UnixListener, transport: Arc<dyn Transport>, path: PathBuf) {
    loop {
        let (mut client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(socket = %path.display(), error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let transport = transport.clone();
        tokio::spawn(async move {
            let mut engine = match transport.connect(berth_proto::API_PORT).await {
                Ok(s) => s,
                Err(e) => {
                    // Expected while the VM boots (`berth vm start` polls through here).
                    tracing::debug!(error = %e, "cannot reach the engine");
                    let _ = reply_unavailable(&mut client, &e).await;
                    return;
                }
            };
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut engine).await {
                tracing::debug!(error = %e, "docker socket connection ended");
            }
        });
    }
}

/// The client asked over HTTP: tell it in Docker's error shape rather than
/// hanging up mid-request.
async fn reply_unavailable(client: &mut tokio::net::UnixStream, e: &io::Error) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let body =
        serde_json::json!({ "message": format!("the Berth VM is not reachable: {e}") }).to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(resp.as_bytes()).await?;
    client.shutdown().await
}
