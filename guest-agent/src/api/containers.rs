//! Container endpoints: create, start, wait, attach, logs, stop, kill, restart, remove,
//! rename, prune, list and inspect.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerWaitExitError, ContainerWaitResponse,
};

use super::{empty, json, ApiError, ApiResult, Body, Query};
use crate::containers::logs::{self, LogOptions};
use crate::containers::views::ListFilters;
use crate::containers::{ContainerError, Life, Status, WaitCondition};
use crate::engine::Engine;

const LIST_FILTERS: &[&str] = &["status", "name", "id", "label", "ancestor", "exited"];

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> Self {
        let e = match e {
            ContainerError::Image(inner) => return inner.into(),
            ContainerError::Volume(inner) => return inner.into(),
            other => other,
        };
        let status = match &e {
            ContainerError::NotFound(_) | ContainerError::PathNotFound(_) => StatusCode::NOT_FOUND,
            ContainerError::Conflict(_) => StatusCode::CONFLICT,
            ContainerError::InvalidArgument(_) | ContainerError::Start { .. } => {
                StatusCode::BAD_REQUEST
            }
            ContainerError::NotModified => StatusCode::NOT_MODIFIED,
            ContainerError::Image(_) | ContainerError::Volume(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ContainerError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "container request failed");
        }
        ApiError::new(status, e.to_string())
    }
}

pub async fn create(engine: &Engine, q: &Query, body: Bytes) -> ApiResult {
    let body: ContainerCreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let id = engine
        .containers
        .create(&engine.images, q.get("name"), body)?;
    json(
        StatusCode::CREATED,
        &ContainerCreateResponse {
            id,
            warnings: vec![],
        },
    )
}

/// 204, or dockerd's 304 when the container was already in that state.
fn done_or_not_modified(r: Result<(), ContainerError>) -> ApiResult {
    match r {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(ContainerError::NotModified) => empty(StatusCode::NOT_MODIFIED),
        Err(e) => Err(e.into()),
    }
}

pub async fn start(engine: &Engine, name: &str) -> ApiResult {
    done_or_not_modified(engine.containers.start(name).await)
}

pub async fn stop(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let timeout = q.get("t").and_then(|t| t.parse().ok());
    done_or_not_modified(engine.containers.stop(name, timeout, q.get("signal")).await)
}

pub async fn restart(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let timeout = q.get("t").and_then(|t| t.parse().ok());
    match engine.containers.stop(name, timeout, q.get("signal")).await {
        Ok(()) | Err(ContainerError::NotModified) => {}
        Err(e) => return Err(e.into()),
    }
    match engine.containers.start(name).await {
        Ok(()) | Err(ContainerError::NotModified) => empty(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

pub async fn pause(engine: &Engine, name: &str, pause: bool) -> ApiResult {
    engine.containers.set_paused(name, pause).await?;
    empty(StatusCode::NO_CONTENT)
}

/// `GET /containers/{id}/stats`: one sample (`stream=false`) or one per second.
pub async fn stats(engine: Arc<Engine>, name: &str, q: &Query) -> ApiResult {
    let first = engine.containers.stats(name).await?;
    let stream = q
        .get("stream")
        .is_none_or(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if !stream || q.flag("one-shot") {
        return json(StatusCode::OK, &first);
    }
    let name = name.to_string();
    let body = futures_util::stream::unfold(
        (Some(first), engine, name),
        |(first, engine, name)| async move {
            let sample = match first {
                Some(s) => s,
                None => {
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    engine.containers.stats(&name).await.ok()?
                }
            };
            let mut line = serde_json::to_vec(&sample).ok()?;
            line.push(b'\n');
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from(line))),
                (None, engine, name),
            ))
        },
    );
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

fn stat_header(stat: &crate::containers::archive::PathStat) -> Result<HeaderValue, ApiError> {
    use base64::Engine as _;
    let json = serde_json::to_vec(stat)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `HEAD`/`GET /containers/{id}/archive?path=`: stat, and a tar of the path.
pub async fn archive_get(engine: &Engine, name: &str, q: &Query, head: bool) -> ApiResult {
    use crate::containers::archive;
    let path = q
        .get("path")
        .ok_or_else(|| ApiError::bad_request("path must be specified"))?
        .to_string();
    let (stat, tar) = engine
        .containers
        .with_view(name, move |root| {
            let stat = archive::stat(root, &path)?;
            let mut tar = Vec::new();
            if !head {
                archive::write_tar(root, &path, &mut tar)?;
            }
            Ok((stat, tar))
        })
        .await?;
    let mut resp = Response::new(super::full(tar));
    let h = resp.headers_mut();
    h.insert("X-Docker-Container-Path-Stat", stat_header(&stat)?);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

/// `PUT /containers/{id}/archive?path=`: extracts the uploaded tar there.
pub async fn archive_put(engine: &Engine, name: &str, q: &Query, body: Bytes) -> ApiResult {
    use crate::containers::archive;
    let path = q
        .get("path")
        .ok_or_else(|| ApiError::bad_request("path must be specified"))?
        .to_string();
    engine
        .containers
        .with_view(name, move |root| archive::extract(root, &path, &body))
        .await?;
    empty(StatusCode::OK)
}

/// `GET /containers/{id}/export`.
pub async fn export(engine: Arc<Engine>, name: &str) -> ApiResult {
    // Unknown containers are a clean 404 before the stream starts.
    let id = engine.containers.resolve(name)?;
    let (rd, wr) = nix::unistd::pipe()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tokio::spawn(async move {
        let w = std::fs::File::from(wr);
        let result = engine
            .containers
            .with_rootfs(&id, move |root| {
                let out = std::io::BufWriter::with_capacity(256 * 1024, w);
                crate::containers::archive::export(root, out)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(container = %id, error = %e, "export failed mid-stream");
        }
    });
    let mut resp = Response::new(super::pipe_body(rd));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

/// `GET /containers/{id}/changes`.
pub fn changes(engine: &Engine, name: &str) -> ApiResult {
    let items: Vec<bollard_stubs::models::FilesystemChange> = engine
        .containers
        .diff(name)?
        .into_iter()
        .map(|(path, kind)| bollard_stubs::models::FilesystemChange {
            path,
            kind: match kind {
                0 => bollard_stubs::models::ChangeType::_0,
                1 => bollard_stubs::models::ChangeType::_1,
                _ => bollard_stubs::models::ChangeType::_2,
            },
        })
        .collect();
    json(StatusCode::OK, &items)
}

/// `POST /containers/{id}/update`.
pub async fn update(engine: &Engine, name: &str, body: Bytes) -> ApiResult {
    let body: bollard_stubs::models::ContainerUpdateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    engine.containers.update_limits(name, body).await?;
    json(
        StatusCode::OK,
        &bollard_stubs::models::ContainerUpdateResponse {
            warnings: Some(vec![]),
        },
    )
}

pub fn top(engine: &Engine, name: &str) -> ApiResult {
    json(StatusCode::OK, &engine.containers.top(name)?)
}

pub fn kill(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    engine.containers.kill(name, q.get("signal"))?;
    empty(StatusCode::NO_CONTENT)
}

pub async fn remove(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    engine
        .containers
        .remove(name, q.flag("force"), q.flag("v"))
        .await?;
    empty(StatusCode::NO_CONTENT)
}

pub fn rename(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let new_name = q
        .get("name")
        .ok_or_else(|| ApiError::bad_request("name must be specified"))?;
    engine.containers.rename(name, new_name)?;
    empty(StatusCode::NO_CONTENT)
}

pub async fn prune(engine: &Engine) -> ApiResult {
    json(StatusCode::OK, &engine.containers.prune().await?)
}

pub fn list(engine: &Engine, q: &Query) -> ApiResult {
    let filters = list_filters(q)?;
    let mut rows = engine.containers.list(&filters);
    if q.flag("size") {
        for row in &mut rows {
            let (rw, root) = sizes(engine, row.id.as_deref(), row.image_id.as_deref());
            row.size_rw = Some(rw);
            row.size_root_fs = Some(root);
        }
    }
    json(StatusCode::OK, &rows)
}

/// `GET /containers/json`'s query: `all`, `limit` and the filters.
pub fn list_filters(q: &Query) -> Result<ListFilters, ApiError> {
    let raw = q.filters(LIST_FILTERS)?;
    let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let exited = get("exited")
        .iter()
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid filter 'exited={v}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ListFilters {
        all: q.flag("all"),
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        status: get("status"),
        name: get("name"),
        id: get("id"),
        label: get("label"),
        ancestor: get("ancestor"),
        exited,
    })
}

/// `SizeRw` and `SizeRootFs` (the container's layer plus its image's).
pub(super) fn sizes(engine: &Engine, id: Option<&str>, image: Option<&str>) -> (i64, i64) {
    // Walking the upper directory is blocking file-system work.
    tokio::task::block_in_place(|| {
        let rw = id.map(|id| engine.containers.size_rw(id)).unwrap_or(0);
        let img = image.and_then(|i| engine.images.size_of(i)).unwrap_or(0);
        (rw as i64, (rw + img) as i64)
    })
}

pub fn inspect(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let mut doc = engine.containers.inspect(name)?;
    if q.flag("size") {
        let (rw, root) = sizes(engine, doc.id.as_deref(), doc.image.as_deref());
        doc.size_rw = Some(rw);
        doc.size_root_fs = Some(root);
    }
    json(StatusCode::OK, &doc)
}

/// `POST /containers/{id}/wait`: the 200 header goes out at once, the body when the
/// condition holds (the CLI calls this before `start`).
pub fn wait(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let condition = WaitCondition::parse(q.get("condition"))?;
    let fut = engine.containers.wait(name, condition)?;
    let body = futures_util::stream::once(async move {
        let (code, error) = fut.await;
        let resp = ContainerWaitResponse {
            status_code: code,
            error: (!error.is_empty()).then_some(ContainerWaitExitError {
                message: Some(error),
            }),
        };
        let mut bytes = serde_json::to_vec(&resp).unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(bytes)))
    });
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// When an output stream ends.
#[derive(Clone, Copy)]
pub(super) enum Until {
    /// Now: what the log holds is all there is.
    Drained,
    /// After the container exits more times than `exits` (or is removed).
    ExitAfter(u64),
}

pub(super) type ByteStream = Pin<Box<dyn Stream<Item = Bytes> + Send + Sync>>;

/// Frames from a container's log, from byte `offset`, until `until`.
pub(super) fn output_stream(
    path: std::path::PathBuf,
    offset: u64,
    opts: LogOptions,
    tty: bool,
    life: watch::Receiver<Life>,
    until: Until,
    first_tail: bool,
) -> ByteStream {
    struct St {
        path: std::path::PathBuf,
        /// The log, open from the start: a `--rm` container may exit and be removed
        /// (its directory with it) before a slow client's first read.
        file: Option<std::fs::File>,
        offset: u64,
        opts: LogOptions,
        tty: bool,
        life: watch::Receiver<Life>,
        until: Until,
        first: bool,
        with_rotated: bool,
        done: bool,
    }
    let st = St {
        file: std::fs::File::open(&path).ok(),
        path,
        offset,
        opts,
        tty,
        life,
        until,
        first: first_tail,
        with_rotated: first_tail && offset == 0,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            // Decide whether this is the last read *before* reading, so an exit that
            // happens after the read still gets its final output on the next turn.
            let finished = match st.until {
                Until::Drained => true,
                Until::ExitAfter(n) => {
                    let l = st.life.borrow();
                    l.exits > n || l.removed
                }
            };
            // The shim rotated the file under us (or it appeared only now): continue
            // from the new file's start. A name that is gone keeps the open file.
            if let Ok(named) = std::fs::metadata(&st.path) {
                use std::os::unix::fs::MetadataExt;
                let same = st
                    .file
                    .as_ref()
                    .and_then(|f| f.metadata().ok())
                    .is_some_and(|m| m.ino() == named.ino() && m.dev() == named.dev());
                if !same {
                    st.file = std::fs::File::open(&st.path).ok();
                    st.offset = 0;
                } else if named.len() < st.offset {
                    st.offset = 0;
                }
            }
            let read = match &st.file {
                Some(f) => logs::read_from_file(f, st.offset),
                None => Ok((Vec::new(), st.offset)),
            };
            let (entries, next) = read.unwrap_or((Vec::new(), st.offset));
            st.offset = next;
            let entries = if st.first {
                st.first = false;
                let mut all = if st.with_rotated {
                    logs::read_rotated(&st.path)
                } else {
                    Vec::new()
                };
                all.extend(entries);
                logs::select(all, &st.opts)
            } else {
                entries
                    .into_iter()
                    .filter(|e| logs::wants(&st.opts, e))
                    .collect()
            };
            let mut chunk = Vec::new();
            for e in &entries {
                chunk.extend(logs::frame(e, st.opts.timestamps, st.tty));
            }
            if finished {
                st.done = true;
            }
            if !chunk.is_empty() {
                return Some((Bytes::from(chunk), st));
            }
            if st.done {
                return None;
            }
            // The shim appends to the log; poll it briefly, or wake on a state change.
            let mut life = st.life.clone();
            let _ = tokio::time::timeout(Duration::from_millis(25), life.changed()).await;
        }
    }))
}

/// Copies what the attached client types into the container's stdin, through its
/// shim's attach socket once the container runs. With `StdinOnce`, the client's EOF
/// closes the container's stdin.
pub(super) async fn forward_input(
    mut client: impl tokio::io::AsyncRead + Unpin,
    dir: std::path::PathBuf,
    mut life: watch::Receiver<Life>,
    stdin_once: bool,
    detach_keys: Vec<u8>,
) -> bool {
    use crate::runtime::attach_proto::{encode, Frame};
    use tokio::io::AsyncReadExt;
    let exits = life.borrow().exits;
    // `docker run -i` attaches before the container starts: wait for it.
    let started = life
        .wait_for(|l| l.running || l.exits > exits || l.removed)
        .await
        .map(|l| l.running)
        .unwrap_or(false);
    if !started {
        return false;
    }
    let mut shim = None;
    for _ in 0..100 {
        match crate::containers::connect_attach(&dir).await {
            Ok(s) => {
                shim = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let Some(mut shim) = shim else {
        return false;
    };
    let mut scanner = DetachScanner::new(detach_keys);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let (data, detached) = scanner.feed(&buf[..n]);
                if !data.is_empty() && shim.write_all(&encode(&Frame::Stdin(data))).await.is_err() {
                    return false;
                }
                if detached {
                    // The client leaves; the container keeps running with stdin open.
                    return true;
                }
            }
        }
    }
    if stdin_once {
        let _ = shim.write_all(&encode(&Frame::CloseStdin)).await;
    }
    false
}

/// Finds the detach sequence (default ctrl-p ctrl-q) in what the client types, holding
/// back a partial match until it is confirmed or broken.
pub(super) struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub(super) fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }

    /// Returns the bytes to forward and whether the sequence completed.
    pub(super) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// `detachKeys=ctrl-p,ctrl-q` (also single characters like `a`) → bytes. Empty keeps
/// Docker's default.
pub fn parse_detach_keys(spec: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let spec = spec.unwrap_or("ctrl-p,ctrl-q");
    spec.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                match c.as_bytes() {
                    [b @ b'a'..=b'z'] => Ok(b - b'a' + 1),
                    [b'@'] => Ok(0),
                    [b'['] => Ok(27),
                    [b'\\'] => Ok(28),
                    [b']'] => Ok(29),
                    [b'^'] => Ok(30),
                    [b'_'] => Ok(31),
                    _ => Err(ApiError::bad_request(format!(
                        "Invalid detach keys ({spec}) provided"
                    ))),
                }
            } else if k.len() == 1 {
                Ok(k.as_bytes()[0])
            } else {
                Err(ApiError::bad_request(format!(
                    "Invalid detach keys ({spec}) provided"
                )))
            }
        })
        .collect()
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let dim = |k: &str| -> Result<u16, ApiError> {
        q.get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid value for {k}")))
    };
    let (rows, cols) = (dim("h")?, dim("w")?);
    engine.containers.resize(name, rows, cols).await?;
    empty(StatusCode::OK)
}

pub fn log_options(q: &Query) -> Result<LogOptions, ApiError> {
    let time = |k: &str| -> Result<Option<f64>, ApiError> {
        match q.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(Some)
                .or_else(|_| {
                    chrono::DateTime::parse_from_rfc3339(v).map(|d| Some(d.timestamp() as f64))
                })
                .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v}"))),
        }
    };
    let since = time("since")?.filter(|s| *s > 0.0);
    let until = time("until")?.filter(|s| *s > 0.0);
    let tail = match q.get("tail") {
        None | Some("all") => None,
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for tail: {t}")))?,
        ),
    };
    Ok(LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        timestamps: q.flag("timestamps"),
        tail,
        since,
        until,
    })
}

pub(super) fn content_type(tty: bool) -> HeaderValue {
    HeaderValue::from_static(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    })
}

pub(super) fn stream_response(stream: ByteStream, tty: bool) -> Response<Body> {
    let body = stream.map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(body)));
    resp.headers_mut().insert(CONTENT_TYPE, content_type(tty));
    resp
}

/// `GET /containers/{id}/logs`.
pub fn logs(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let opts = log_options(q)?;
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let (path, tty, life, status) = engine.containers.output(name)?;
    let until = if q.flag("follow") && status == Status::Running {
        Until::ExitAfter(life.borrow().exits)
    } else {
        Until::Drained
    };
    Ok(stream_response(
        output_stream(path, 0, opts, tty, life, until, true),
        tty,
    ))
}

/// `POST /containers/{id}/attach`: hijacks the connection (101 UPGRADED) and streams
/// the container's output until it exits. Input is not forwarded yet.
pub async fn attach(
    engine: Arc<Engine>,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> ApiResult {
    let (path, tty, life, status) = engine.containers.output(name)?;
    // Made now if the container never ran (the shim appends to it): the stream holds
    // it open from here on, so output is not lost if `--rm` removes it first.
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    let opts = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        ..Default::default()
    };
    let offset = if q.flag("logs") {
        0
    } else {
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
    };
    let until = if q.flag("stream") && status != Status::Exited {
        Until::ExitAfter(life.borrow().exits)
    } else {
        Until::Drained
    };
    let stdin_life = life.clone();
    let stream = output_stream(path, offset, opts, tty, life, until, false);
    if !req.headers().contains_key(UPGRADE) {
        return Ok(stream_response(stream, tty));
    }
    let (open_stdin, stdin_once) = engine.containers.stdin_mode(name)?;
    let forward_stdin = q.flag("stdin") && open_stdin;
    let detach_keys = parse_detach_keys(q.get("detachKeys"))?;
    let socket = engine.containers.attach_dir(name)?;
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let (reader, writer) = tokio::io::split(TokioIo::new(upgraded));
        if !forward_stdin {
            write_all_and_close(writer, stream).await;
            return;
        }
        let input = tokio::spawn(forward_input(
            reader,
            socket,
            stdin_life,
            stdin_once,
            detach_keys,
        ));
        let output = write_all_and_close(writer, stream);
        tokio::pin!(output);
        tokio::select! {
            _ = &mut output => {}
            detached = input => {
                // Detaching drops the output side too, which closes the connection;
                // otherwise keep streaming until the container exits.
                if !matches!(detached, Ok(true)) {
                    output.await;
                }
            }
        }
    });
    Ok(upgraded_response(tty))
}

/// Writes every chunk of `stream` to a hijacked connection, then closes our side.
pub(super) async fn write_all_and_close(
    mut writer: impl tokio::io::AsyncWrite + Unpin,
    mut stream: ByteStream,
) {
    while let Some(chunk) = stream.next().await {
        if writer.write_all(&chunk).await.is_err() {
            return;
        }
        let _ = writer.flush().await;
    }
    let _ = writer.shutdown().await;
}

/// `101 UPGRADED` with the stream's content type, as dockerd answers a hijack.
pub(super) fn upgraded_response(tty: bool) -> Response<Body> {
    let mut resp = Response::new(super::full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(CONTENT_TYPE, content_type(tty));
    resp
}

/// `POST /commit?container=…&repo=…&tag=…&comment=…&author=…&pause=…&changes=…`, with
/// an optional container config in the body whose fields override the container's.
pub async fn commit(engine: &Engine, q: &Query, body: Bytes) -> ApiResult {
    let name = q
        .get("container")
        .ok_or_else(|| ApiError::bad_request("no container given to commit"))?;
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<bollard_stubs::models::ContainerConfig>(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?,
        )
    };
    let opts = crate::containers::CommitOptions {
        repo: q.get("repo").map(str::to_string),
        tag: q.get("tag").map(str::to_string),
        comment: q.get("comment").map(str::to_string),
        author: q.get("author").map(str::to_string),
        // dockerd pauses unless told not to.
        pause: q.get("pause").is_none() || q.flag("pause"),
        changes: q
            .all("changes")
            .iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        config,
        exact_config: None,
        created_by: None,
    };
    let id = engine.containers.commit(&engine.images, name, opts).await?;
    super::created_id(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_found_across_chunks() {
        let keys = parse_detach_keys(None).unwrap();
        assert_eq!(keys, vec![0x10, 0x11]);
        let mut s = DetachScanner::new(keys.clone());
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut s = DetachScanner::new(keys);
        // A broken sequence is forwarded as typed.
        assert_eq!(s.feed(b"\x10x\x10\x10\x11"), (b"\x10x\x10".to_vec(), true));
        assert_eq!(parse_detach_keys(Some("ctrl-a,x")).unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys(Some("ctrl-99")).is_err());
    }
}
