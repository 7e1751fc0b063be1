//! Container endpoints: create, start, wait, stop, kill, restart, pause, remove,
//! rename, prune, list, inspect, stats, top, update, commit, changes, export and the
//! archive (`docker cp`) endpoints. Streams (logs, attach) are in `attach`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerWaitExitError, ContainerWaitResponse,
};

use super::prune_filter::PruneFilter;
use super::{empty, json, ApiError, ApiResult, Query};
use crate::containers::views::ListFilters;
use crate::containers::{ContainerError, WaitCondition};
use crate::engine::Engine;
use crate::images::Platform;

const LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "is-task",
    "isolation",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
const STATES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];
const HEALTHS: &[&str] = &["none", "starting", "healthy", "unhealthy"];

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> Self {
        let e = match e {
            ContainerError::Image(inner) => return inner.into(),
            ContainerError::Volume(inner) => return inner.into(),
            other => other,
        };
        let status = match &e {
            ContainerError::NotFound(_)
            | ContainerError::ExecNotFound(_)
            | ContainerError::NetworkNotFound(_)
            | ContainerError::PathNotFound(_) => StatusCode::NOT_FOUND,
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

/// Create-body fields API 1.53 dropped that older clients still send.
#[derive(serde::Deserialize)]
struct LegacyCreateFields {
    #[serde(rename = "MacAddress")]
    mac_address: Option<String>,
}

pub async fn create(engine: &Engine, q: &Query, body: Bytes) -> ApiResult {
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("invalid JSON body: {e}"));
    let mut create: ContainerCreateBody = serde_json::from_slice(&body).map_err(bad)?;
    let legacy: LegacyCreateFields = serde_json::from_slice(&body).map_err(bad)?;
    if let Some(mac) = legacy.mac_address {
        crate::containers::net::move_legacy_mac(&mut create, &mac);
    }
    let body = create;
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(Platform::parse)
        .transpose()?;
    let warnings = match body.image.as_deref().filter(|i| !i.is_empty()) {
        Some(image) => engine.images.check_platform(image, platform.as_ref())?,
        None => None,
    };
    let id = engine
        .containers
        .create(&engine.images, q.get("name"), body)?;
    json(
        StatusCode::CREATED,
        &ContainerCreateResponse {
            id,
            warnings: warnings.into_iter().collect(),
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
    engine
        .containers
        .restart(name, timeout, q.get("signal"))
        .await?;
    empty(StatusCode::NO_CONTENT)
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
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
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

pub async fn top(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    let table = engine.containers.top(name, q.get("ps_args")).await?;
    json(StatusCode::OK, &table)
}

pub async fn kill(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    engine.containers.kill(name, q.get("signal")).await?;
    empty(StatusCode::NO_CONTENT)
}

pub fn remove_link(engine: &Engine, parent: &str, alias: &str) -> ApiResult {
    engine.containers.remove_link(parent, alias)?;
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

/// `POST /containers/prune?filters=…` (`until`, `label`, `label!`).
pub async fn prune(engine: &Engine, q: &Query) -> ApiResult {
    let filter = PruneFilter::parse(q)?;
    let pruned = engine
        .containers
        .prune(|c| {
            let none = std::collections::HashMap::new();
            filter.lets_go(&c.created, c.config.labels.as_ref().unwrap_or(&none))
        })
        .await?;
    json(StatusCode::OK, &pruned)
}

pub fn list(engine: &Engine, q: &Query) -> ApiResult {
    let mut filters = list_filters(q)?;
    // An ancestor named by reference also matches containers created from the
    // same image under another name, as dockerd resolves it to the image ID.
    let ids: Vec<String> = filters
        .ancestor
        .iter()
        .filter_map(|a| engine.images.resolve(a).ok())
        .collect();
    filters.ancestor.extend(ids);
    let mut rows = engine.containers.list(&filters)?;
    if q.flag("size") {
        for row in &mut rows {
            let (rw, root) = sizes(engine, row.id.as_deref(), row.image_id.as_deref());
            row.size_rw = Some(rw);
            row.size_root_fs = Some(root);
        }
    }
    json(StatusCode::OK, &rows)
}

/// `GET /containers/json`'s query: `all`, `limit` and the filters, checked as
/// dockerd checks them.
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
    let one_of = |key: &str, what: &str, valid: &[&str]| -> Result<Vec<String>, ApiError> {
        let vals = get(key);
        match vals.iter().find(|v| !valid.contains(&v.as_str())) {
            Some(bad) => Err(ApiError::bad_request(format!(
                "invalid filter '{key}={bad}': invalid value for {what} ({bad}): must be one of {}",
                valid.join(", ")
            ))),
            None => Ok(vals),
        }
    };
    let status = one_of("status", "state", STATES)?;
    let health = one_of("health", "health", HEALTHS)?;
    let is_task = match raw.get("is-task") {
        None => None,
        Some(v) => {
            let t = v.iter().any(|x| x == "1" || x == "true");
            let f = v.iter().any(|x| x == "0" || x == "false");
            if t == f {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'is-task={}'",
                    v.join(",")
                )));
            }
            Some(t)
        }
    };
    let last = |k: &str| get(k).last().cloned();
    Ok(ListFilters {
        all: q.flag("all"),
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        status,
        name: get("name"),
        id: get("id"),
        label: get("label"),
        ancestor: get("ancestor"),
        exited,
        health,
        before: last("before"),
        since: last("since"),
        network: get("network"),
        volume: get("volume"),
        publish: port_keys("publish", &get("publish"))?,
        expose: port_keys("expose", &get("expose"))?,
        is_task,
    })
}

/// `publish`/`expose` values (`80`, `80/udp`, `8000-8010/tcp`) as `port/proto` keys.
fn port_keys(key: &str, vals: &[String]) -> Result<std::collections::HashSet<String>, ApiError> {
    let mut out = std::collections::HashSet::new();
    for v in vals {
        if v.contains(':') {
            return Err(ApiError::bad_request(format!(
                "filter for '{key}' should not contain ':': {v}"
            )));
        }
        let bad = || {
            ApiError::bad_request(format!(
                "error while looking up for {key} {v}: invalid port"
            ))
        };
        let (range, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        let (lo, hi) = crate::network::ports::parse_port_range(range).ok_or_else(bad)?;
        if !["tcp", "udp", "sctp"].contains(&proto) {
            return Err(bad());
        }
        for p in lo..=hi {
            out.insert(format!("{p}/{proto}"));
        }
    }
    Ok(out)
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
    let mut doc = serde_json::to_value(&doc).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the inspect document: {e}"),
        )
    })?;
    if let Some(ns) = doc.get_mut("NetworkSettings") {
        network_settings_as_dockerd(ns);
    }
    json(StatusCode::OK, &doc)
}

/// Every endpoint key dockerd writes (null when unset: clients index them), and the
/// top-level fields dockerd still fills from the default bridge's endpoint for the
/// many scripts that read `{{.NetworkSettings.IPAddress}}` (API 1.52 dropped them;
/// a client of 1.53 ignores them).
fn network_settings_as_dockerd(ns: &mut serde_json::Value) {
    use serde_json::{json, Value};
    // On every endpoint, and copied from the default bridge's to the top level.
    const TEXT: [&str; 6] = [
        "EndpointID",
        "Gateway",
        "GlobalIPv6Address",
        "IPAddress",
        "IPv6Gateway",
        "MacAddress",
    ];
    const NUMBERS: [&str; 2] = ["GlobalIPv6PrefixLen", "IPPrefixLen"];
    const NULLS: [&str; 5] = ["IPAMConfig", "Links", "Aliases", "DriverOpts", "DNSNames"];
    let Some(obj) = ns.as_object_mut() else {
        return;
    };
    let mut bridge = None;
    if let Some(Value::Object(nets)) = obj.get_mut("Networks") {
        for (name, ep) in nets.iter_mut() {
            let Some(ep) = ep.as_object_mut() else {
                continue;
            };
            for k in NULLS {
                ep.entry(k).or_insert(Value::Null);
            }
            for k in TEXT.iter().chain(&["NetworkID"]) {
                ep.entry(*k).or_insert_with(|| json!(""));
            }
            for k in NUMBERS {
                ep.entry(k).or_insert_with(|| json!(0));
            }
            if name == "bridge" {
                bridge = Some(ep.clone());
            }
        }
    }
    let from = |k: &str, dflt: Value| {
        bridge
            .as_ref()
            .and_then(|b| b.get(k).cloned())
            .unwrap_or(dflt)
    };
    for k in TEXT {
        let v = from(k, json!(""));
        obj.entry(k).or_insert(v);
    }
    for k in NUMBERS {
        let v = from(k, json!(0));
        obj.entry(k).or_insert(v);
    }
    obj.entry("Bridge").or_insert_with(|| json!(""));
    obj.entry("HairpinMode").or_insert_with(|| json!(false));
    obj.entry("LinkLocalIPv6Address")
        .or_insert_with(|| json!(""));
    obj.entry("LinkLocalIPv6PrefixLen")
        .or_insert_with(|| json!(0));
    obj.entry("SecondaryIPAddresses").or_insert(Value::Null);
    obj.entry("SecondaryIPv6Addresses").or_insert(Value::Null);
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
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
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
        ..Default::default()
    };
    let id = engine.containers.commit(&engine.images, name, opts).await?;
    super::created_id(&id)
}
