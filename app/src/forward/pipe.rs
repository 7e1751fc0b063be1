//! The host's docker endpoint on Windows: named pipes, owner-only, each
//! connection spliced to the engine ([`super::splice`]) like the unix socket.
//!
//! Two names: Berth's own `\\.\pipe\berth-docker-<user>` (its docker context),
//! and `\\.\pipe\docker_engine`, where the docker CLI and SDKs look when no
//! context or `DOCKER_HOST` says otherwise: served only while no other engine
//! (Docker Desktop) holds it, as Berth treats `/var/run/docker.sock`.

use std::io;
use std::sync::Arc;

use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};

use super::SocketError;
use crate::os::OwnerOnly;
use crate::paths::DockerEndpoint;
use crate::transport::Transport;

/// The docker CLI's default endpoint on Windows (`npipe:////./pipe/docker_engine`).
pub const DOCKER_ENGINE_PIPE: &str = r"\\.\pipe\docker_engine";

/// Windows' answer when a first instance's name is taken by someone else.
const ERROR_ACCESS_DENIED: i32 = 5;

fn create(path: &str, security: &OwnerOnly, first: bool) -> io::Result<NamedPipeServer> {
    let mut opts = ServerOptions::new();
    // Message mode, as dockerd's pipe: a client's zero-length message is its
    // half-close (see `super::Ends`).
    opts.first_pipe_instance(first)
        .reject_remote_clients(true)
        .pipe_mode(PipeMode::Message);
    // SAFETY: `security` outlives the call and describes a valid descriptor.
    unsafe { opts.create_with_security_attributes_raw(path, security.as_raw()) }
}

/// The docker endpoint, bound and ready to serve.
pub struct DockerListener {
    pipes: Vec<(String, NamedPipeServer)>,
    security: Arc<OwnerOnly>,
}

impl DockerListener {
    pub fn bind(endpoint: &DockerEndpoint) -> Result<DockerListener, SocketError> {
        let DockerEndpoint::NamedPipe(name) = endpoint else {
            return Err(SocketError::Unsupported(endpoint.docker_host()));
        };
        let path = crate::os::pipe_path(name);
        let io = |source| SocketError::Io {
            path: path.clone(),
            source,
        };
        let security = Arc::new(OwnerOnly::new().map_err(io)?);
        let own = create(&path, &security, true).map_err(|e| {
            if e.raw_os_error() == Some(ERROR_ACCESS_DENIED) {
                SocketError::InUse(path.clone())
            } else {
                io(e)
            }
        })?;
        Ok(DockerListener {
            pipes: vec![(path.clone(), own)],
            security,
        })
    }

    /// Also serves [`DOCKER_ENGINE_PIPE`], where the docker CLI looks by
    /// default, unless another engine holds it.
    pub fn with_default_endpoint(mut self) -> DockerListener {
        match create(DOCKER_ENGINE_PIPE, &self.security, true) {
            Ok(p) => self.pipes.push((DOCKER_ENGINE_PIPE.to_string(), p)),
            Err(e) => tracing::info!(
                pipe = DOCKER_ENGINE_PIPE,
                error = %e,
                "another engine serves the default pipe; Berth leaves it alone"
            ),
        }
        self
    }

    /// Serves until the task is dropped.
    pub async fn serve(self, transport: Arc<dyn Transport>) {
        let mut tasks = tokio::task::JoinSet::new();
        for (path, first) in self.pipes {
            tasks.spawn(serve_pipe(
                path,
                first,
                self.security.clone(),
                transport.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// One pipe name: a server instance waits for a client; once one connects, the
/// next instance is created before the connected one is handed off, so a
/// client never finds the name missing.
async fn serve_pipe(
    path: String,
    mut server: NamedPipeServer,
    security: Arc<OwnerOnly>,
    transport: Arc<dyn Transport>,
) {
    loop {
        let connected = server.connect().await;
        let next = match create(&path, &security, false) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(pipe = %path, error = %e, "creating the next pipe instance failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let client = std::mem::replace(&mut server, next);
        match connected {
            Ok(()) => {
                tokio::spawn(super::splice(
                    client,
                    transport.clone(),
                    super::Ends::WhenEngineCloses,
                ));
            }
            // The client left before it was served; its instance goes.
            Err(e) => tracing::debug!(pipe = %path, error = %e, "pipe connect failed"),
        }
    }
}
