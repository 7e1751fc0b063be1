//! The host's docker socket on Linux and macOS: owner-only, every connection
//! spliced to the engine ([`super::splice`]).

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;

use super::SocketError;
use crate::paths::DockerEndpoint;
use crate::transport::Transport;

/// Binds `path` owner-only (its directory 0700, the socket 0600); a stale
/// socket of a dead forwarder is replaced, a live one is refused.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let err = |source| SocketError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
        crate::os::set_mode(dir, 0o700).map_err(err)?;
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
    crate::os::set_mode(path, 0o600).map_err(err)?;
    Ok(listener)
}

/// The docker endpoint, bound and ready to serve.
pub struct DockerListener {
    listener: UnixListener,
    path: PathBuf,
}

impl DockerListener {
    pub fn bind(endpoint: &DockerEndpoint) -> Result<DockerListener, SocketError> {
        match endpoint {
            DockerEndpoint::Unix(path) => Ok(DockerListener {
                listener: bind(path)?,
                path: path.clone(),
            }),
            DockerEndpoint::NamedPipe(name) => Err(SocketError::Unsupported(name.clone())),
        }
    }

    /// On Windows this adds the `docker_engine` pipe; on unix the well-known
    /// `/var/run/docker.sock` is `berth install`'s opt-in link instead.
    pub fn with_default_endpoint(self) -> DockerListener {
        self
    }

    /// Serves until the task is dropped.
    pub async fn serve(self, transport: Arc<dyn Transport>) {
        serve(self.listener, transport, self.path).await
    }
}

/// Serves the socket until the task is dropped.
pub async fn serve(listener: UnixListener, transport: Arc<dyn Transport>, path: PathBuf) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(socket = %path.display(), error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(super::splice(
            client,
            transport.clone(),
            super::Ends::HalfClose,
        ));
    }
}
