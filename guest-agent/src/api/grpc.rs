//! gRPC on the API socket: BuildKit's clients (buildx's `docker` driver, Compose,
//! bollard) reach the builder either by upgrading an HTTP/1.1 request
//! (`POST /grpc`, `Upgrade: h2c`) into an HTTP/2 connection, or by speaking HTTP/2
//! from the first byte, which the connection server tells apart by the preface (as
//! dockerd does). Either way the requests land on the same tonic routes.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioExecutor;
use tonic::codegen::Service;

use super::{full, ApiError, ApiResult, Body};
use crate::engine::Engine;

/// Whether a request is gRPC (HTTP/2 with a gRPC content type): those go to the
/// BuildKit services, everything else to the Docker API.
pub fn is_grpc<B>(req: &Request<B>) -> bool {
    req.version() == hyper::Version::HTTP_2
        && req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// The gRPC services an engine serves.
fn routes(engine: Arc<Engine>) -> tonic::service::Routes {
    tonic::service::Routes::new(super::buildkit::control(engine.clone()))
        .add_service(super::llbbridge::bridge(engine))
        .prepare()
}

/// Serves one gRPC request.
pub async fn serve(engine: Arc<Engine>, req: Request<Incoming>) -> Response<Body> {
    let mut routes = routes(engine);
    match routes.call(req).await {
        Ok(resp) => resp.map(|b| b.map_err(std::io::Error::other).boxed_unsync()),
        Err(never) => match never {},
    }
}

fn wants_h2c(req: &Request<Incoming>, path: &str) -> Result<(), ApiError> {
    let h2c = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("h2c"));
    if h2c {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{path} needs an upgrade to h2c (Upgrade: h2c)"
        )))
    }
}

/// `101 Switching Protocols` to h2c.
fn switching() -> ApiResult {
    let mut resp = Response::new(full(bytes::Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("h2c"));
    Ok(resp)
}

/// `POST /session`: the client's session (its FileSync, Secrets, Auth… services).
/// After the upgrade the engine is the HTTP/2 client on the connection; the session
/// is registered under the id the client sent until the connection ends.
pub fn session(engine: Arc<Engine>, mut req: Request<Incoming>) -> ApiResult {
    wants_h2c(&req, "/session")?;
    let header = |name: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
    };
    let id = header("X-Docker-Expose-Session-Uuid")
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("/session needs X-Docker-Expose-Session-Uuid"))?;
    let methods = header("X-Docker-Expose-Session-Grpc-Method");
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "the /session upgrade did not complete");
                return;
            }
        };
        engine
            .buildkit
            .sessions
            .clone()
            .attach(id, methods, upgraded)
            .await;
    });
    switching()
}

/// `POST /grpc`: answers `101 Switching Protocols` and serves HTTP/2 (prior
/// knowledge: the client sends the preface) on the upgraded connection.
pub fn upgrade(engine: Arc<Engine>, mut req: Request<Incoming>) -> ApiResult {
    wants_h2c(&req, "/grpc")?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "the /grpc upgrade did not complete");
                return;
            }
        };
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let engine = engine.clone();
            async move { Ok::<_, Infallible>(serve(engine, req).await) }
        });
        if let Err(e) = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(upgraded, service)
            .await
        {
            tracing::debug!(error = %e, "gRPC connection ended with an error");
        }
    });
    switching()
}
