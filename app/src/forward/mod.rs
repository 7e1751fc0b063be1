//! Moving bytes between the host and the engine: the docker endpoint (a unix
//! socket, [`socket`], or on Windows named pipes, [`pipe`]) and published
//! ports mirrored onto the host ([`ports`]).

#[cfg(windows)]
pub mod pipe;
pub mod ports;
#[cfg(unix)]
pub mod socket;

#[cfg(windows)]
pub use pipe::DockerListener;
#[cfg(unix)]
pub use socket::DockerListener;

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

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
    #[error("{0}: this OS's build does not serve that kind of endpoint")]
    Unsupported(String),
}

/// How a client connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// Unix sockets: each direction closes on its own (half-close), as the
    /// docker CLI's `attach` relies on.
    HalfClose,
    /// Named pipes: the client half-closes as the docker CLI does on Windows
    /// (go-winio's `CloseWrite`, a zero-length message on a message-mode pipe),
    /// which reads as EOF and is passed on; the engine's end cannot be passed
    /// back (a pipe has no half-close toward the client), so when the engine is
    /// done the whole connection is, and the client sees the pipe close.
    WhenEngineCloses,
}

/// One docker client connection: a fresh stream to the engine's API port,
/// spliced byte for byte, so HTTP upgrades (attach, exec, build sessions) pass
/// through untouched.
pub async fn splice<C>(mut client: C, transport: Arc<dyn Transport>, ends: Ends)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut engine = match transport.connect(berth_proto::API_PORT).await {
        Ok(s) => s,
        Err(e) => {
            // Expected while the VM boots (`berth vm start` polls through here).
            tracing::debug!(error = %e, "cannot reach the engine");
            let _ = reply_unavailable(&mut client, &e).await;
            return;
        }
    };
    let result = match ends {
        Ends::HalfClose => tokio::io::copy_bidirectional(&mut client, &mut engine)
            .await
            .map(drop),
        Ends::WhenEngineCloses => {
            let (mut client_r, mut client_w) = tokio::io::split(client);
            let (mut engine_r, mut engine_w) = tokio::io::split(engine);
            let up = async {
                let _ = tokio::io::copy(&mut client_r, &mut engine_w).await;
                let _ = engine_w.shutdown().await;
                // The engine's answer may still be on its way.
                std::future::pending::<()>().await
            };
            // `copy` flushes what it wrote when its reader ends.
            tokio::select! {
                r = tokio::io::copy(&mut engine_r, &mut client_w) => r.map(drop),
                _ = up => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "docker connection ended");
    }
}

/// The client asked over HTTP: tell it in Docker's error shape rather than
/// hanging up mid-request.
async fn reply_unavailable<C: AsyncWrite + Unpin>(client: &mut C, e: &io::Error) -> io::Result<()> {
    let body =
        serde_json::json!({ "message": format!("the Berth VM is not reachable: {e}") }).to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(resp.as_bytes()).await?;
    client.shutdown().await
}
