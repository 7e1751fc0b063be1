//! The Docker Engine API over HTTP/1.1: version prefix, routing, and the headers dockerd
//! puts on every answer. Handlers live in one module per resource and stay thin: they
//! parse the request, call the domain, and map its typed error to a status.

mod attach;
mod auth;
mod build;
mod build_cache;
mod buildkit;
mod builds;
mod containers;
mod error;
mod events;
mod exec;
mod grpc;
mod images;
mod llbbridge;
mod networks;
mod progress;
mod prune_filter;
mod read_ahead;
mod request;
mod serve;
mod swarm;
mod system;
pub mod version;
mod volumes;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

pub use error::ApiError;
pub use request::Query;
pub use serve::serve;

/// The handlers' parsing steps that need no engine: what the fuzz targets in `fuzz/`
/// feed. Not an API of the crate.
#[doc(hidden)]
pub mod parsing {
    pub use super::attach::{log_options, parse_detach_keys};
    pub use super::build::json_map;
    pub use super::containers::list_filters;
    pub use super::events::parse_time;
    pub use super::images::parse_filters as image_filters;
    pub use super::request::registry_auth;
    pub use super::volumes::filters as volume_filters;
}

use crate::engine::Engine;

/// Not `Sync`: gRPC bodies (tonic) are not, and hyper needs only `Send`.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;
pub type ApiResult = Result<Response<Body>, ApiError>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> ApiResult {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// `201 {"Id": …}`, as dockerd writes it (exec create, commit). bollard-stubs'
/// `IdResponse` serializes its field as `id`: Go clients read that
/// case-insensitively, but docker-py (`exec_id['Id']`) and bollard do not.
pub fn created_id(id: &str) -> ApiResult {
    #[derive(serde::Serialize)]
    struct Created<'a> {
        #[serde(rename = "Id")]
        id: &'a str,
    }
    json(StatusCode::CREATED, &Created { id })
}

/// A response body read from a pipe that a blocking writer fills (save, export), so
/// large archives stream instead of being held in memory.
pub fn pipe_body(rd: std::os::fd::OwnedFd) -> Body {
    use futures_util::StreamExt;
    let file = tokio::fs::File::from_std(std::fs::File::from(rd));
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Bytes::from(buf), f))
            }
        }
    })
    .map(|b| Ok::<_, std::io::Error>(hyper::body::Frame::data(b)));
    http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream))
}

pub fn empty(status: StatusCode) -> ApiResult {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    Ok(resp)
}

fn error_response(e: ApiError) -> Response<Body> {
    let body = serde_json::to_vec(&bollard_stubs::models::ErrorResponse { message: e.message })
        .unwrap_or_else(|_| b"{\"message\":\"internal error\"}".to_vec());
    let mut resp = Response::new(full(body));
    *resp.status_mut() = e.status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Entry point for every request.
pub async fn handle(
    engine: Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut resp = match route(engine, req).await {
        Ok(r) => r,
        Err(e) => error_response(e),
    };
    tracing::debug!(%method, path = %raw_path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION_HEADER));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    Ok(resp)
}

const API_VERSION_HEADER: &str = "1.53";

async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> ApiResult {
    let (path, version) =
        version::split_version(req.uri().path()).map_err(ApiError::bad_request)?;
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("invalid path encoding"))?
        .into_owned();
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => system::ping(&method),
        (&Method::GET, ["version"]) => system::version(&engine),
        (&Method::GET, ["info"]) => system::info(&engine),
        (&Method::GET, ["system", "df"]) => system::df(&engine),
        (&Method::POST, ["build"]) => {
            let headers = req.headers().clone();
            build::build(engine.clone(), &query, &headers, req.into_body()).await
        }
        (&Method::POST, ["build", "prune"]) => build_cache::prune(&engine, &query),
        (&Method::GET, ["berth", "builds"]) => builds::list(&engine),
        (&Method::GET, ["berth", "builds", id]) => builds::get(&engine, id),
        (&Method::DELETE, ["berth", "builds", id]) => builds::remove(&engine, id),
        (&Method::POST, ["grpc"]) => grpc::upgrade(engine.clone(), req),
        (&Method::POST, ["session"]) => grpc::session(engine.clone(), req),
        (&Method::GET, ["events"]) => events::events(&engine, &query),
        (&Method::POST, ["auth"]) => auth::login(&engine, read_body(req).await?).await,
        (&Method::GET, ["images", "json"]) => images::list(&engine, &query),
        (&Method::POST, ["commit"]) => {
            containers::commit(&engine, &query, read_body(req).await?).await
        }
        (&Method::GET, ["networks"]) => networks::list(&engine, &query),
        (&Method::POST, ["networks", "create"]) => {
            networks::create(&engine, read_body(req).await?).await
        }
        (&Method::POST, ["networks", "prune"]) => networks::prune(&engine, &query).await,
        (&Method::GET, ["networks", id]) => networks::inspect(&engine, id),
        (&Method::DELETE, ["networks", id]) => networks::remove(&engine, id).await,
        (&Method::POST, ["networks", id, "connect"]) => {
            let id = id.to_string();
            networks::connect(&engine, &id, read_body(req).await?).await
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            let id = id.to_string();
            networks::disconnect(&engine, &id, read_body(req).await?).await
        }
        (&Method::POST, ["containers", "create"]) => {
            containers::create(&engine, &query, read_body(req).await?).await
        }
        (&Method::GET, ["containers", "json"]) => containers::list(&engine, &query),
        (&Method::POST, ["containers", "prune"]) => containers::prune(&engine, &query).await,
        (&Method::GET, ["containers", id, "json"]) => containers::inspect(&engine, id, &query),
        (&Method::POST, ["containers", id, "start"]) => containers::start(&engine, id).await,
        (&Method::POST, ["containers", id, "stop"]) => containers::stop(&engine, id, &query).await,
        (&Method::POST, ["containers", id, "restart"]) => {
            containers::restart(&engine, id, &query).await
        }
        (&Method::POST, ["containers", id, "kill"]) => containers::kill(&engine, id, &query).await,
        (&Method::POST, ["containers", id, "pause"]) => containers::pause(&engine, id, true).await,
        (&Method::POST, ["containers", id, "unpause"]) => {
            containers::pause(&engine, id, false).await
        }
        (&Method::POST, ["containers", id, "wait"]) => containers::wait(&engine, id, &query),
        (&Method::POST, ["containers", id, "rename"]) => containers::rename(&engine, id, &query),
        (&Method::POST, ["containers", id, "resize"]) => attach::resize(&engine, id, &query).await,
        (&Method::GET, ["containers", id, "logs"]) => attach::logs(&engine, id, &query),
        (&Method::GET, ["containers", id, "stats"]) => {
            let id = id.to_string();
            containers::stats(engine.clone(), &id, &query).await
        }
        (&Method::GET, ["containers", id, "top"]) => containers::top(&engine, id, &query).await,
        (&Method::GET, ["containers", id, "export"]) => {
            let id = id.to_string();
            containers::export(engine.clone(), &id).await
        }
        (&Method::GET, ["containers", id, "changes"]) => containers::changes(&engine, id),
        (&Method::POST, ["containers", id, "update"]) => {
            let id = id.to_string();
            containers::update(&engine, &id, read_body(req).await?).await
        }
        (&Method::HEAD, ["containers", id, "archive"]) => {
            containers::archive_get(&engine, id, &query, true).await
        }
        (&Method::GET, ["containers", id, "archive"]) => {
            containers::archive_get(&engine, id, &query, false).await
        }
        (&Method::PUT, ["containers", id, "archive"]) => {
            let id = id.to_string();
            let body = collect_upload(req.into_body()).await?;
            containers::archive_put(&engine, &id, &query, body).await
        }
        (&Method::POST, ["containers", id, "attach"]) => {
            let id = id.to_string();
            attach::attach(engine.clone(), &id, &query, req).await
        }
        (&Method::DELETE, ["containers", id]) => containers::remove(&engine, id, &query).await,
        // `docker rm --link parent/alias`: the name's slash splits the path.
        (&Method::DELETE, ["containers", parent, alias]) if query.flag("link") => {
            containers::remove_link(&engine, parent, alias)
        }
        (&Method::POST, ["containers", id, "exec"]) => {
            let id = id.to_string();
            exec::create(&engine, &id, read_body(req).await?)
        }
        (&Method::POST, ["exec", id, "start"]) => {
            let id = id.to_string();
            exec::start(engine.clone(), &id, req).await
        }
        (&Method::GET, ["exec", id, "json"]) => exec::inspect(&engine, id),
        (&Method::POST, ["exec", id, "resize"]) => exec::resize(&engine, id, &query).await,
        (&Method::POST, ["images", "create"]) => {
            let headers = req.headers().clone();
            images::create(engine, &query, &headers, req.into_body()).await
        }
        (&Method::POST, ["images", "prune"]) => images::prune(&engine, &query),
        (&Method::POST, ["images", "load"]) => {
            images::load(engine.clone(), &query, req.into_body()).await
        }
        (&Method::GET, ["images", "get"]) => images::save(engine.clone(), query.all("names")).await,
        (&Method::GET, ["volumes"]) => volumes::list(&engine, &query),
        (&Method::POST, ["volumes", "create"]) => volumes::create(&engine, read_body(req).await?),
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(&engine, &query, version),
        (&Method::GET, ["volumes", name]) => volumes::inspect(&engine, name),
        (&Method::DELETE, ["volumes", name]) => volumes::remove(&engine, name, &query),
        (&Method::GET, ["distribution", rest @ ..])
            if rest.len() > 1 && rest.last() == Some(&"json") =>
        {
            let joined = rest.join("/");
            images::distribution(&engine, strip_suffix(&joined, "/json"), req.headers()).await
        }
        (_, ["images", rest @ ..]) if !rest.is_empty() => {
            // Image names contain '/', so the action is the last segment.
            let joined = rest.join("/");
            match (&method, rest.last().copied()) {
                (&Method::GET, Some("json")) if rest.len() > 1 => {
                    images::inspect(&engine, strip_suffix(&joined, "/json"))
                }
                (&Method::GET, Some("history")) if rest.len() > 1 => {
                    images::history(&engine, strip_suffix(&joined, "/history"))
                }
                (&Method::POST, Some("push")) if rest.len() > 1 => {
                    let name = strip_suffix(&joined, "/push").to_string();
                    images::push(engine.clone(), &name, &query, req.headers()).await
                }
                (&Method::GET, Some("get")) if rest.len() > 1 => {
                    let name = strip_suffix(&joined, "/get").to_string();
                    images::save(engine.clone(), vec![name]).await
                }
                (&Method::POST, Some("tag")) if rest.len() > 1 => {
                    images::tag(&engine, strip_suffix(&joined, "/tag"), &query)
                }
                (&Method::DELETE, _) => images::remove(&engine, &joined, &query),
                _ => Err(ApiError::not_found("page not found")),
            }
        }
        (_, [first, ..]) if swarm::owns(first) => Err(swarm::unavailable(&method, &segs)),
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// Request bodies the engine parses as JSON are small; anything larger is refused.
const MAX_JSON_BODY: usize = 4 << 20;

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    collect_limited(req.into_body()).await
}

/// Uploads (`docker cp` into a container) may be large; they still have a ceiling.
const MAX_UPLOAD: usize = 4 << 30;

async fn collect_upload(body: Incoming) -> Result<Bytes, ApiError> {
    http_body_util::Limited::new(body, MAX_UPLOAD)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))
}

async fn collect_limited(body: Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_JSON_BODY);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))
}

fn strip_suffix<'a>(s: &'a str, suffix: &str) -> &'a str {
    s.strip_suffix(suffix).unwrap_or(s)
}
