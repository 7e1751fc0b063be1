//! `POST /build`: the classic builder's endpoint. The context tar is streamed into a
//! scratch directory (through the same unpacker as `docker cp`, which refuses escapes),
//! the build runs, and its output streams back as Docker's JSON lines.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::{ApiError, ApiResult, Query};
use crate::build::{BuildRequest, Output};
use crate::engine::Engine;
use crate::images::reference::ImageRef;

pub fn json_map(q: &Query, key: &str) -> Result<HashMap<String, String>, ApiError> {
    match q.get(key) {
        None => Ok(HashMap::new()),
        Some(raw) => {
            // buildargs values may be null (an ARG named without a value).
            let m: HashMap<String, Option<String>> = serde_json::from_str(raw)
                .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
            Ok(m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
        }
    }
}

fn line(v: serde_json::Value) -> Bytes {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// `--pull`: every image a FROM of the build names (not earlier stages, not
/// `scratch`) is pulled again first, with the credentials the CLI sent for its
/// registry in `X-Registry-Config`.
async fn pull_bases(
    engine: &Arc<Engine>,
    dir: &std::path::Path,
    dockerfile: &str,
    build_args: &HashMap<String, String>,
    target: Option<&str>,
    registry_config: Option<&str>,
) -> Result<(), ApiError> {
    use base64::Engine as _;
    let configs: HashMap<String, serde_json::Value> = registry_config
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h.trim().trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h.trim()))
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let text = std::fs::read_to_string(dir.join(dockerfile)).unwrap_or_default();
    let instructions =
        crate::build::dockerfile::parse(&text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // A Dockerfile that cannot be planned fails in the build's own output, as it does
    // without --pull.
    let Ok(plan) = crate::build::stages::plan(&instructions, build_args, target) else {
        return Ok(());
    };
    for base in plan.bases() {
        let r = ImageRef::parse(base)?;
        let key = if r.registry() == "docker.io" {
            "https://index.docker.io/v1/".to_string()
        } else {
            r.registry().to_string()
        };
        let header = configs
            .get(&key)
            .map(|v| base64::engine::general_purpose::URL_SAFE.encode(v.to_string()));
        let creds = super::request::registry_auth(header.as_deref())?;
        engine.images.pull_quietly(&r, &creds).await?;
    }
    Ok(())
}

pub async fn build(
    engine: Arc<Engine>,
    q: &Query,
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> ApiResult {
    let tags = q.all("t");
    for t in &tags {
        ImageRef::parse(t)?;
    }
    let build_args = json_map(q, "buildargs")?;
    let labels = json_map(q, "labels")?;
    let dockerfile = q.get("dockerfile").unwrap_or("Dockerfile").to_string();
    let quiet = q.flag("q");
    let no_cache = q.flag("nocache");
    // `cachefrom`: a JSON list of images; the ones that do not exist count for nothing.
    let cache_from = match q.get("cachefrom").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            let refs: Vec<String> = serde_json::from_str(v)
                .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?;
            Some(
                refs.iter()
                    .flat_map(|r| engine.images.ancestry(r))
                    .collect::<std::collections::HashSet<String>>(),
            )
        }
    };
    let target = q.get("target").map(|t| t.to_lowercase());
    let run = crate::build::RunOptions {
        extra_hosts: q
            .all("extrahosts")
            .iter()
            .flat_map(|h| h.split(','))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect(),
        shm_size: q
            .get("shmsize")
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0),
        // `none`, `host` or a user-defined network (the RUN containers join it, as
        // with dockerd's classic builder); the default bridge otherwise.
        network: match q.get("networkmode") {
            None | Some("" | "default" | "bridge") => None,
            Some(m @ ("none" | "host")) => Some(m.to_string()),
            Some(m) => {
                let n = engine
                    .network
                    .get(m)
                    .map_err(|_| ApiError::not_found(format!("network {m} not found")))?;
                Some(n.name)
            }
        },
        ulimits: match q.get("ulimits").filter(|v| !v.is_empty()) {
            Some(v) => serde_json::from_str(v)
                .map_err(|e| ApiError::bad_request(format!("invalid ulimits: {e}")))?,
            None => Vec::new(),
        },
    };
    // `version=2`: BuildKit's progress (what SDKs such as bollard ask for).
    let buildkit = q.get("version") == Some("2");
    let dir = engine
        .config
        .root
        .join("build-tmp")
        .join(format!("ctx-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(32);
    let unpacker = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let reader = super::images::channel_reader(rx);
            let mut buffered = std::io::BufReader::new(reader);
            let magic = {
                use std::io::BufRead;
                buffered
                    .fill_buf()
                    .map(|b| b.get(..2).map(<[u8]>::to_vec))
                    .ok()
                    .flatten()
            };
            let result = if magic.as_deref() == Some(&[0x1f, 0x8b]) {
                crate::images::unpack::unpack_plain(flate2::read::GzDecoder::new(buffered), &dir)
            } else {
                crate::images::unpack::unpack_plain(buffered, &dir)
            };
            result.map(|_| ())
        })
    };
    super::images::feed(body, tx).await?;
    let unpacked = unpacker
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Err(e) = unpacked {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(ApiError::bad_request(format!("invalid build context: {e}")));
    }
    if q.flag("pull") {
        let config = headers
            .get("X-Registry-Config")
            .and_then(|h| h.to_str().ok());
        let pulled = pull_bases(
            &engine,
            &dir,
            &dockerfile,
            &build_args,
            target.as_deref(),
            config,
        )
        .await;
        if let Err(e) = pulled {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    }
    let aside = crate::build::context::aside(&dir);
    let dockerfile = match crate::build::context::drop_ignored(&dir, &dockerfile, &aside) {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("preparing the build context: {e}"),
            ));
        }
    };
    let (line_tx, line_rx) = mpsc::channel::<Bytes>(256);
    let req = BuildRequest {
        context: dir.clone(),
        dockerfile,
        build_args,
        labels,
        cache: engine.build_cache(),
        no_cache,
        target,
        buildkit,
        secrets: Default::default(),
        run,
        // The classic builder has no named contexts (dockerd's has none either).
        contexts: Default::default(),
        ssh: None,
        removals: Default::default(),
        cache_from,
    };
    tokio::spawn(async move {
        let outcome = if buildkit {
            run_buildkit(&engine, req, &line_tx)
                .await
                .map_err(|m| (m, None))
        } else {
            run_classic(&engine, req, quiet, &line_tx).await
        };
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(&aside);
            std::fs::remove_dir_all(&dir)
        })
        .await;
        let mut lines = match outcome {
            Ok(id) if buildkit => {
                let mut lines = tag(&engine, &id, &tags, true);
                lines.push(line(
                    serde_json::json!({"id": "moby.image.id", "aux": {"ID": id}}),
                ));
                lines
            }
            Ok(id) => {
                let mut lines = tag(&engine, &id, &tags, quiet);
                if quiet {
                    lines.push(line(serde_json::json!({"stream": format!("{id}\n")})));
                }
                lines
            }
            // dockerd's `code` is the failed RUN's exit status.
            Err((m, Some(code))) => vec![line(
                serde_json::json!({"errorDetail": {"code": code, "message": m}, "error": m}),
            )],
            Err((m, None)) => vec![line(
                serde_json::json!({"errorDetail": {"message": m}, "error": m}),
            )],
        };
        // The steps' images were kept in memory as they were committed; a tag above
        // saved them, else this does, before the client hears of them.
        if let Err(e) = tokio::task::block_in_place(|| engine.images.flush()) {
            let m = format!("saving the built images: {e}");
            lines.push(line(
                serde_json::json!({"errorDetail": {"message": m}, "error": m}),
            ));
        }
        for l in lines {
            let _ = line_tx.send(l).await;
        }
    });
    let stream = tokio_stream_from(line_rx).map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The classic builder's output: `stream` lines and the image id as `aux`.
async fn run_classic(
    engine: &Arc<Engine>,
    req: BuildRequest,
    quiet: bool,
    line_tx: &mpsc::Sender<Bytes>,
) -> Result<String, (String, Option<i64>)> {
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(256);
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            crate::build::build(&engine.images, &engine.containers, req, &out_tx).await
        })
    };
    while let Some(o) = out_rx.recv().await {
        let l = match o {
            Output::Stream(s) if !quiet => line(serde_json::json!({ "stream": s })),
            Output::Stream(_) => continue,
            Output::Aux(id) => line(serde_json::json!({"aux": {"ID": id}})),
            Output::Step(_) => continue,
        };
        let _ = line_tx.send(l).await;
    }
    match worker.await {
        Ok(r) => r.map_err(|e| {
            let code = match &e {
                crate::build::BuildError::RunFailed { code, .. } => Some(*code),
                _ => None,
            };
            (e.to_string(), code)
        }),
        Err(e) => Err((format!("build aborted: {e}"), None)),
    }
}

/// BuildKit's progress as dockerd sends it for `version=2`: each status update a
/// `moby.buildkit.trace` line whose `aux` is the protobuf `StatusResponse`, base64
/// encoded (Go's JSON encoding of bytes).
async fn run_buildkit(
    engine: &Arc<Engine>,
    req: BuildRequest,
    line_tx: &mpsc::Sender<Bytes>,
) -> Result<String, String> {
    use base64::Engine as _;
    use tonic_prost::prost::Message as _;
    let (st_tx, mut st_rx) = mpsc::unbounded_channel();
    let forward = {
        let line_tx = line_tx.clone();
        tokio::spawn(async move {
            while let Some(r) = st_rx.recv().await {
                let r: bollard_buildkit_proto::moby::buildkit::v1::StatusResponse = r;
                let aux = base64::engine::general_purpose::STANDARD.encode(r.encode_to_vec());
                let _ = line_tx
                    .send(line(
                        serde_json::json!({"id": "moby.buildkit.trace", "aux": aux}),
                    ))
                    .await;
            }
        })
    };
    let id = format!("{:016x}", rand::random::<u64>());
    let outcome = {
        let mut reporter = crate::buildkit::progress::Reporter::to(&id, move |r| {
            let _ = st_tx.send(r);
        });
        crate::buildkit::frontend::run(engine, req, &mut reporter).await
    };
    let _ = forward.await;
    outcome.map_err(|e| e.to_string())
}

/// Tags the built image with each `t`; the lines to send (none when `quiet`, but
/// errors).
fn tag(engine: &Engine, id: &str, tags: &[String], quiet: bool) -> Vec<Bytes> {
    let mut out = Vec::new();
    for t in tags {
        let tagged = ImageRef::parse(t).map_err(|e| e.to_string()).and_then(|r| {
            engine
                .images
                .tag(id, &r.full_name(), r.tag())
                .map_err(|e| e.to_string())
                .map(|()| r)
        });
        match tagged {
            Ok(r) if !quiet => out.push(line(
                serde_json::json!({"stream": format!("Successfully tagged {r}\n")}),
            )),
            Ok(_) => {}
            Err(m) => out.push(line(
                serde_json::json!({"errorDetail": {"message": m}, "error": m}),
            )),
        }
    }
    out
}

fn tokio_stream_from(rx: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
}
