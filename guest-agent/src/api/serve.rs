//! One API connection, whoever accepted it — the daemon's unix socket or the host
//! link inside the VM: HTTP/1.1 with upgrades (attach, exec, `/grpc` and other
//! hijacked streams continue on the same stream), or HTTP/2 from the first byte
//! (told apart by its preface), where gRPC requests reach BuildKit's services and
//! anything else the Docker API.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::engine::Engine;

/// Serves the Docker API (and gRPC) on one connection until the client closes it.
pub async fn serve<S>(engine: Arc<Engine>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let engine = engine.clone();
        async move {
            if super::grpc::is_grpc(&req) {
                Ok::<_, Infallible>(super::grpc::serve(engine, req).await)
            } else {
                super::handle(engine, req).await
            }
        }
    });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
