//! Exec endpoints: create (`POST /containers/{id}/exec`), start (hijacked stream),
//! inspect and resize.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::UPGRADE;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use bollard_stubs::models::{ExecConfig, ExecStartConfig};

use super::attach::{
    forward_input, output_stream, parse_detach_keys, stream_response, stream_until_detached,
    upgraded_response, write_all_and_close, Until,
};
use super::{empty, json, ApiError, ApiResult, Query};
use crate::containers::exec::ExecRequest;
use crate::containers::logs::LogOptions;
use crate::engine::Engine;

/// dockerd decodes JSON keys case-insensitively; docker-py sends `detachKeys`.
#[derive(serde::Deserialize)]
struct LowerCamelKeys {
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

pub fn create(engine: &Engine, container: &str, body: Bytes) -> ApiResult {
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("invalid JSON body: {e}"));
    let mut cfg: ExecConfig = serde_json::from_slice(&body).map_err(bad)?;
    if cfg.detach_keys.is_none() {
        cfg.detach_keys = serde_json::from_slice::<LowerCamelKeys>(&body)
            .map_err(bad)?
            .detach_keys;
    }
    let req = ExecRequest {
        cmd: cfg.cmd.unwrap_or_default(),
        env: cfg.env.unwrap_or_default(),
        user: cfg.user,
        working_dir: cfg.working_dir,
        tty: cfg.tty == Some(true),
        privileged: cfg.privileged == Some(true),
        attach_stdin: cfg.attach_stdin == Some(true),
        attach_stdout: cfg.attach_stdout.unwrap_or(true),
        attach_stderr: cfg.attach_stderr.unwrap_or(true),
        detach_keys: cfg.detach_keys.filter(|k| !k.is_empty()),
    };
    super::attach::parse_detach_keys(req.detach_keys.as_deref())?;
    let id = engine.containers.exec_create(container, req)?;
    super::created_id(&id)
}

pub fn inspect(engine: &Engine, id: &str) -> ApiResult {
    json(StatusCode::OK, &engine.containers.exec_inspect(id)?)
}

pub async fn resize(engine: &Engine, id: &str, q: &Query) -> ApiResult {
    let dim = |k: &str| -> Result<u16, ApiError> {
        q.get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid value for {k}")))
    };
    engine
        .containers
        .exec_resize(id, dim("h")?, dim("w")?)
        .await?;
    empty(StatusCode::OK)
}

/// `POST /exec/{id}/start`: starts the process; unless detached, hijacks the connection
/// and streams its output (and forwards stdin) until it exits.
pub async fn start(engine: Arc<Engine>, id: &str, req: Request<Incoming>) -> ApiResult {
    let wants_upgrade = req.headers().contains_key(UPGRADE);
    let (parts, body) = req.into_parts();
    let body = super::collect_limited(body).await?;
    let cfg: ExecStartConfig = if body.is_empty() {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let out = engine.containers.exec_output(id)?;
    // As dockerd: the start's `Tty`, not the exec's, says whether the stream is raw or
    // multiplexed (docker-py starts a TTY exec with `Tty: false` and demultiplexes).
    let raw = cfg.tty.unwrap_or(out.tty);
    if cfg.detach == Some(true) {
        engine.containers.exec_start(id).await?;
        return empty(StatusCode::OK);
    }
    // As dockerd: a start that is not detached answers with the stream, and a process
    // that cannot start (already running: Compose attaches first, then starts)
    // reports the error in the stream, never as an HTTP error.
    let failed = |e: crate::containers::ContainerError, tty: bool| {
        let entry = crate::containers::logs::Entry {
            stream: crate::containers::logs::Stream::Stdout,
            time: String::new(),
            data: format!("{e}\r\n").into_bytes(),
        };
        bytes::Bytes::from(crate::containers::logs::frame(&entry, false, tty))
    };
    let opts = LogOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let stdin_life = out.life.clone();
    let stream = output_stream(out.log, 0, opts, raw, out.life, Until::ExitAfter(0), false);
    if !wants_upgrade {
        // The stream is set up first: it reads the whole output of however short a life.
        return Ok(match engine.containers.exec_start(id).await {
            Ok(()) => stream_response(stream, raw),
            Err(e) => {
                let once = futures_util::stream::once(std::future::ready(failed(e, raw)));
                stream_response(Box::pin(once), raw)
            }
        });
    }
    // Claimed before answering, so a plain start that follows (Compose's) finds it
    // taken and the process's output comes here.
    let claimed = engine.containers.exec_claim(id);
    let req = Request::from_parts(parts, ());
    let on_upgrade = hyper::upgrade::on(req);
    let (dir, stdin, tty, detach_keys) = (out.dir, out.stdin, raw, out.detach_keys);
    let id = id.to_string();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        // As dockerd: the connection is hijacked first, then the process starts (its
        // output is read from the log the shim writes once it is attached).
        let started = match claimed {
            Ok(()) => engine.containers.exec_start_claimed(&id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            let _ = writer.write_all(&failed(e, tty)).await;
            let _ = writer.shutdown().await;
            return;
        }
        if !stdin {
            write_all_and_close(writer, stream).await;
            return;
        }
        // As dockerd: the detach keys end the client's stream, not the process.
        let keys = parse_detach_keys(detach_keys.as_deref()).unwrap_or_default();
        let input = forward_input(reader, dir, stdin_life, true, keys);
        stream_until_detached(writer, stream, input).await;
    });
    Ok(upgraded_response(raw))
}
