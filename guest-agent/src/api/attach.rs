//! A container's output and input as streams: `logs` (followed or not), `attach`
//! (hijacked into a raw or multiplexed stream, with detach keys), the TTY size, and
//! the stream plumbing `exec` shares.

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

use super::{empty, ApiError, ApiResult, Body, Query};
use crate::containers::logs::{self, LogOptions};
use crate::containers::{Life, Status};
use crate::engine::Engine;

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
    // dockerd reads anything but a count (`all`, `-1`, a typo) as the whole log.
    let tail = q.get("tail").and_then(|t| t.parse::<usize>().ok());
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
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
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

/// `POST /containers/{id}/attach`: hijacks the connection (101 UPGRADED), streams the
/// container's output until it exits and forwards the client's input to its stdin
/// until the detach keys.
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
        let input = forward_input(reader, socket, stdin_life, stdin_once, detach_keys);
        stream_until_detached(writer, stream, input).await;
    });
    Ok(upgraded_response(tty))
}

/// Streams the output to a hijacked connection while `input` forwards what the client
/// types. The detach keys (`input` ends with `true`) close the connection at once —
/// the process keeps running —; otherwise the output goes on until it ends.
pub(super) async fn stream_until_detached(
    writer: impl tokio::io::AsyncWrite + Unpin,
    stream: ByteStream,
    input: impl std::future::Future<Output = bool> + Send + 'static,
) {
    let input = tokio::spawn(input);
    let output = write_all_and_close(writer, stream);
    tokio::pin!(output);
    tokio::select! {
        _ = &mut output => {}
        detached = input => {
            if !matches!(detached, Ok(true)) {
                output.await;
            }
        }
    }
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
