//! Image endpoints: list, pull (`/images/create`), inspect, history, tag, remove, prune.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use tokio::sync::mpsc;

use super::request::registry_auth;
use super::{empty, json, progress, ApiError, ApiResult, Query};
use crate::engine::Engine;
use crate::images::reference::ImageRef;
use crate::images::{ImageFilters, Platform, Progress};

const LIST_FILTERS: &[&str] = &["dangling", "reference", "label", "before", "since", "until"];
const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

pub fn parse_filters(q: &Query, allowed: &[&str]) -> Result<ImageFilters, ApiError> {
    let raw: HashMap<String, Vec<String>> = q.filters(allowed)?;
    let mut f = ImageFilters::default();
    for (k, vals) in raw {
        match k.as_str() {
            "dangling" => {
                let v = vals.first().map(String::as_str).unwrap_or("true");
                f.dangling = Some(match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'dangling={v}'"
                        )))
                    }
                });
            }
            "reference" => f.reference = vals,
            "label" => f.label = vals,
            "label!" => f.not_label = vals,
            "before" => f.before = vals.into_iter().next(),
            "since" => f.since = vals.into_iter().next(),
            "until" => {
                let v = vals.into_iter().next().unwrap_or_default();
                f.until = Some(parse_until(&v)?);
            }
            _ => {}
        }
    }
    Ok(f)
}

/// `until` takes a Unix timestamp, an RFC 3339 time or a Go duration like `24h`.
pub(super) fn parse_until(v: &str) -> Result<i64, ApiError> {
    let now = chrono::Utc::now().timestamp();
    if let Ok(n) = v.parse::<f64>() {
        return Ok(n as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    let (num, unit) = v.split_at(v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid filter 'until={v}'")))?;
    let bad = || ApiError::bad_request(format!("invalid filter 'until={v}'"));
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => return Err(bad()),
    };
    secs.and_then(|s| now.checked_sub(s)).ok_or_else(bad)
}

pub fn list(engine: &Engine, q: &Query) -> ApiResult {
    let filters = parse_filters(q, LIST_FILTERS)?;
    let mut images = engine.images.list(&filters)?;
    if !q.flag("all") {
        // A build's intermediate images (its cached steps) show only with `-a`, as
        // dockerd shows its classic builder's; BuildKit's are not images there at all.
        let steps = engine.build_cache().step_images();
        images.retain(|i| !(i.repo_tags.is_empty() && steps.contains(&i.id)));
    }
    json(StatusCode::OK, &images)
}

pub fn inspect(engine: &Engine, name: &str) -> ApiResult {
    let doc = engine.images.inspect(name)?;
    let mut doc = serde_json::to_value(&doc).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the inspect document: {e}"),
        )
    })?;
    // API 1.52 dropped `Parent`; older clients (docker-py's suite, scripts) read it.
    if let Some(obj) = doc.as_object_mut() {
        let parent = engine.images.parent_of(name).unwrap_or_default();
        obj.entry("Parent")
            .or_insert(serde_json::Value::String(parent));
    }
    json(StatusCode::OK, &doc)
}

pub fn history(engine: &Engine, name: &str) -> ApiResult {
    json(StatusCode::OK, &engine.images.history(name)?)
}

pub fn tag(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let repo = q
        .get("repo")
        .ok_or_else(|| ApiError::bad_request("repository name must be specified"))?;
    engine.images.tag(name, repo, q.get("tag"))?;
    empty(StatusCode::CREATED)
}

pub fn remove(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let items = engine
        .images
        .remove(name, q.flag("force"), &|id| engine.image_in_use(id))?;
    json(StatusCode::OK, &items)
}

pub fn prune(engine: &Engine, q: &Query) -> ApiResult {
    let filters = parse_filters(q, PRUNE_FILTERS)?;
    // The build cache's images are the builder's to prune (`docker builder prune`,
    // which `docker system prune` runs too), as with dockerd's BuildKit cache.
    let steps = engine.build_cache().step_images();
    json(
        StatusCode::OK,
        &engine.images.prune(&filters, &|id| {
            engine.image_in_use(id) || steps.contains(id)
        })?,
    )
}

/// `POST /images/create?fromImage=…&tag=…&platform=…`: a pull, streamed as JSON
/// progress. Errors found before the first byte (bad name, unknown manifest, denied)
/// get a plain status; later ones go into the stream, as dockerd does.
pub async fn create(
    engine: Arc<Engine>,
    q: &Query,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> ApiResult {
    let Some(from) = q.get("fromImage") else {
        if let Some(src) = q.get("fromSrc") {
            return import(engine, q, src, body).await;
        }
        return Err(ApiError::bad_request("fromImage must be specified"));
    };
    let name = match q.get("tag") {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let reference = ImageRef::parse(&name)?;
    let platform = q.get("platform").map(Platform::parse).transpose()?;
    let auth_header = headers.get("X-Registry-Auth").and_then(|h| h.to_str().ok());
    let creds = registry_auth(auth_header)?;
    let resolved = engine
        .images
        .resolve_remote(&reference, platform.as_ref(), &creds)
        .await?;

    let (tx, rx) = mpsc::channel::<Progress>(64);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.images.pull_resolved(resolved, &tx).await })
    };
    Ok(progress_response(rx, worker, "pull"))
}

/// Streams progress lines until the worker ends; its error becomes the last line.
fn progress_response(
    rx: mpsc::Receiver<Progress>,
    worker: tokio::task::JoinHandle<Result<(), crate::images::ImageError>>,
    what: &'static str,
) -> Response<super::Body> {
    enum State {
        Streaming(
            mpsc::Receiver<Progress>,
            tokio::task::JoinHandle<Result<(), crate::images::ImageError>>,
        ),
        Done,
    }
    let stream =
        futures_util::stream::unfold(State::Streaming(rx, worker), move |state| async move {
            match state {
                State::Done => None,
                State::Streaming(mut rx, worker) => match rx.recv().await {
                    Some(p) => Some((progress::encode(&p), State::Streaming(rx, worker))),
                    None => {
                        let outcome = worker.await;
                        crate::memory::release();
                        let line = match outcome {
                            Ok(Ok(())) => return None,
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "{what} failed");
                                progress::encode_error(&e.to_string())
                            }
                            Err(e) => progress::encode_error(&format!("{what} aborted: {e}")),
                        };
                        Some((line, State::Done))
                    }
                },
            }
        })
        .map(|chunk| Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk))));
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `POST /images/{name}/push?tag=…` with `X-Registry-Auth`.
pub async fn push(engine: Arc<Engine>, name: &str, q: &Query, headers: &HeaderMap) -> ApiResult {
    let full = match q.get("tag") {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let reference = ImageRef::parse(&full)?;
    // An unknown image is a plain 404 before any progress, as dockerd answers.
    engine.images.resolve(&reference.to_string())?;
    let auth_header = headers.get("X-Registry-Auth").and_then(|h| h.to_str().ok());
    let creds = registry_auth(auth_header)?;
    let (tx, rx) = mpsc::channel::<Progress>(64);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.images.push(&reference, &creds, &tx).await })
    };
    Ok(progress_response(rx, worker, "push"))
}

/// A blocking reader over body chunks sent on `rx`.
pub(super) fn channel_reader(rx: std::sync::mpsc::Receiver<Bytes>) -> impl std::io::Read {
    ChannelReader {
        rx,
        cur: Bytes::new(),
    }
}

/// Bytes handed from the async side to a blocking reader (a `docker load` body).
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// `POST /images/load`: the archive is streamed into the loader as it arrives.
pub async fn load(engine: Arc<Engine>, q: &Query, body: hyper::body::Incoming) -> ApiResult {
    // `quiet` only silences progress bars, which this loader does not draw.
    let _ = q.flag("quiet");
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(32);
    let loader = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || {
            engine.images.load(ChannelReader {
                rx,
                cur: Bytes::new(),
            })
        })
    };
    feed(body, tx.clone()).await?;
    drop(tx);
    let loaded = loader
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut out = Vec::new();
    let lines = match loaded {
        Ok(lines) => lines,
        // As dockerd: an archive that is not one is reported in the 200 stream (the
        // CLI prints it and fails; docker-py raises ImageLoadError). Nothing was
        // stored.
        Err(crate::images::ImageError::InvalidArchive(m)) => {
            let msg = serde_json::json!({"errorDetail": {"message": m}, "error": m});
            out.extend(serde_json::to_vec(&msg).unwrap_or_default());
            out.push(b'\n');
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    for l in lines {
        let msg = serde_json::json!({"stream": format!("{l}\n")});
        out.extend(serde_json::to_vec(&msg).unwrap_or_default());
        out.push(b'\n');
    }
    let mut resp = Response::new(super::full(out));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// `GET /images/get?names=…` and `GET /images/{name}/get`: the archive is written on a
/// blocking thread into a pipe and streamed out as it is produced.
pub async fn save(engine: Arc<Engine>, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    // Resolve first so an unknown name is a clean 404, not a broken stream.
    for n in &names {
        engine.images.resolve(n)?;
    }
    let (rd, wr) = nix::unistd::pipe()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let w = std::fs::File::from(wr);
        if let Err(e) = engine
            .images
            .save(&names, std::io::BufWriter::with_capacity(256 * 1024, w))
        {
            tracing::warn!(error = %e, "docker save failed mid-stream");
        }
    });
    let mut resp = Response::new(super::pipe_body(rd));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

/// `POST /images/create?fromSrc=-&repo=…&tag=…&changes=…&message=…`: `docker import`
/// of the request body.
async fn import(
    engine: Arc<Engine>,
    q: &Query,
    src: &str,
    body: hyper::body::Incoming,
) -> ApiResult {
    if src != "-" {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "importing from a URL is not supported yet; pipe the file: docker import - < file",
        ));
    }
    let mut config = bollard_stubs::models::ImageConfig::default();
    for change in q.all("changes") {
        for line in change.lines().filter(|l| !l.trim().is_empty()) {
            crate::containers::apply_change(&mut config, line).map_err(ApiError::bad_request)?;
        }
    }
    let message = q.get("message").map(str::to_string);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(32);
    let importer = {
        let engine = engine.clone();
        let source = message.unwrap_or_else(|| "-".to_string());
        tokio::task::spawn_blocking(move || {
            engine.images.import(
                ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
                config,
                &source,
            )
        })
    };
    feed(body, tx).await?;
    let id = importer
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    if let Some(repo) = q.get("repo") {
        match q.get("tag") {
            Some(t) => engine.images.tag(&id, repo, Some(t))?,
            // The CLI sends `name:tag` whole in `repo`.
            None => {
                let r = ImageRef::parse(repo)?;
                engine.images.tag(&id, &r.full_name(), r.tag())?;
            }
        }
    }
    let mut out = serde_json::to_vec(&serde_json::json!({"status": id})).unwrap_or_default();
    out.push(b'\n');
    let mut resp = Response::new(super::full(out));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Hands a request body to a blocking consumer, frame by frame.
pub(super) async fn feed(
    mut body: hyper::body::Incoming,
    tx: std::sync::mpsc::SyncSender<Bytes>,
) -> Result<(), ApiError> {
    let mut consumer_done = false;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        // Once the consumer has stopped (the tar's end marker, or bad input that
        // its error explains), the rest is read and dropped: a body left unread
        // makes the connection close under a client still writing it, which then
        // sees a broken pipe instead of the answer.
        if consumer_done {
            continue;
        }
        if let Ok(data) = frame.into_data() {
            let tx = tx.clone();
            let sent = tokio::task::spawn_blocking(move || tx.send(data)).await;
            consumer_done = !matches!(sent, Ok(Ok(())));
        }
    }
    Ok(())
}

/// `GET /distribution/{name}/json`: the registry's descriptor of the image and its
/// platforms, as `docker buildx build --push` asks after pushing. A single manifest
/// lists the engine's platform (the one images here are built for).
pub async fn distribution(engine: &Engine, name: &str, headers: &HeaderMap) -> ApiResult {
    let r = ImageRef::parse(name)?;
    let auth_header = headers.get("X-Registry-Auth").and_then(|h| h.to_str().ok());
    let creds = registry_auth(auth_header)?;
    let resolved = engine.images.resolve_remote(&r, None, &creds).await?;
    let (media_type, digest, size) = resolved.descriptor();
    let mut platforms = resolved.index_platforms();
    if platforms.is_empty() {
        platforms.push(engine.images.platform().clone());
    }
    let platforms: Vec<serde_json::Value> = platforms
        .iter()
        .map(|p| {
            let mut v = serde_json::json!({"architecture": p.architecture, "os": p.os});
            if let Some(variant) = &p.variant {
                v["variant"] = serde_json::json!(variant);
            }
            v
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "Descriptor": {"mediaType": media_type, "digest": digest, "size": size},
            "Platforms": platforms,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found while writing the `api_request` fuzz target (by reading: its inputs
    /// rarely grow numbers this large): `until=` durations overflowed i64, a panic in
    /// debug builds.
    #[test]
    fn until_durations_out_of_range_are_refused() {
        assert!(parse_until("9223372036854775807h").is_err());
        assert!(parse_until("-9223372036854775807m").is_err());
        assert!(parse_until("-9223372036854775807s").is_err());
        let now = chrono::Utc::now().timestamp();
        let day_ago = parse_until("24h").unwrap();
        assert!((now - 86_400 - day_ago).abs() <= 2, "{day_ago}");
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
    }
}
