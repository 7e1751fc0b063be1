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
    let (conn, client_done) = super::read_ahead::split(stream);
    let service = service_fn(move |req: Request<Incoming>| {
        let engine = engine.clone();
        let client_done = client_done.clone();
        async move {
            if super::grpc::is_grpc(&req) {
                Ok::<_, Infallible>(super::grpc::serve(engine, req).await)
            } else {
                let resp = super::handle(engine, req).await?;
                Ok(resp.map(|body| super::read_ahead::until_done(body, &client_done)))
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A request the client finished sending is answered even if it then shuts
    // down its side, as dockerd does; `read_ahead` ends streams instead.
    builder.http1().half_close(true);
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(conn), service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
