//! One API connection: HTTP/1.1 with upgrades (attach, exec and other hijacked
//! streams continue on the same stream), whoever accepted it — the daemon's unix
//! socket or the host link inside the VM.

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::engine::Engine;

/// Serves the Docker API on one connection until the client closes it.
pub async fn serve<S>(engine: Arc<Engine>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| super::handle(engine.clone(), req));
    if let Err(e) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
