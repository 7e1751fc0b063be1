//! `/volumes`: create, list, inspect, remove, prune. Parsing only; the rules live in
//! `crate::volumes`.

use bollard_stubs::models::{VolumeCreateRequest, VolumeListResponse};
use bytes::Bytes;
use hyper::StatusCode;

use super::version::ApiVersion;
use super::{empty, json, ApiError, ApiResult, Query};
use crate::engine::Engine;
use crate::volumes::Filters;

fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ApiError::bad_request(format!("invalid filter '{key}={v}'"))),
    }
}

pub fn filters(q: &Query, allowed: &[&str]) -> Result<(Filters, bool), ApiError> {
    let raw = q.filters(allowed)?;
    let mut f = Filters::default();
    let mut all = false;
    for (k, vals) in raw {
        match k.as_str() {
            "dangling" => {
                for v in &vals {
                    f.dangling = Some(parse_bool("dangling", v)?);
                }
            }
            "all" => {
                for v in &vals {
                    all = parse_bool("all", v)?;
                }
            }
            "name" => f.names = vals,
            "driver" => f.drivers = vals,
            "label" => f.labels = vals,
            "label!" => f.not_labels = vals,
            _ => {}
        }
    }
    Ok((f, all))
}

pub fn list(engine: &Engine, q: &Query) -> ApiResult {
    let (f, _) = filters(q, &["dangling", "name", "driver", "label"])?;
    json(
        StatusCode::OK,
        &VolumeListResponse {
            volumes: Some(engine.volumes.list(&f)),
            warnings: Some(vec![]),
        },
    )
}

pub fn create(engine: &Engine, body: Bytes) -> ApiResult {
    let req: VolumeCreateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VolumeCreateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    json(StatusCode::CREATED, &engine.volumes.create(req)?)
}

pub fn inspect(engine: &Engine, name: &str) -> ApiResult {
    json(StatusCode::OK, &engine.volumes.inspect(name)?)
}

pub fn remove(engine: &Engine, name: &str, q: &Query) -> ApiResult {
    engine.volumes.remove(name, q.flag("force"))?;
    empty(StatusCode::NO_CONTENT)
}

/// Before API 1.42 `prune` removed every unused volume; since then only anonymous
/// ones unless the `all` filter is set.
pub fn prune(engine: &Engine, q: &Query, version: ApiVersion) -> ApiResult {
    let (f, all) = filters(q, &["label", "label!", "all"])?;
    let all = all || version < ApiVersion(1, 42);
    json(StatusCode::OK, &engine.volumes.prune(&f, all))
}
