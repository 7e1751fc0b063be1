//! The build cache through the Docker API: `POST /build/prune` (`docker builder
//! prune` without buildx, `docker system prune`) and the `BuildCache` part of
//! `GET /system/df`. BuildKit's `DiskUsage`/`Prune` (`api/buildkit.rs`) report the
//! same records (`build::records`).

use hyper::StatusCode;

use super::{json, ApiError, ApiResult, Query};
use crate::build::records::{self, PruneFilter, Record};
use crate::engine::Engine;

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A record as the Engine API's `BuildCache` object.
pub fn record_json(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "ID": r.id,
        "Parent": "",
        "Parents": [],
        "Type": r.kind.name(),
        "Description": r.description,
        "InUse": false,
        "Shared": r.shared,
        "Size": r.size,
        "CreatedAt": rfc3339(r.created),
        "LastUsedAt": rfc3339(r.created),
        "UsageCount": 1,
    })
}

pub fn records(engine: &Engine) -> Vec<Record> {
    tokio::task::block_in_place(|| {
        records::list(&engine.images, &engine.build_cache(), &|id| {
            engine.image_in_use(id)
        })
    })
}

/// Removes the records `filter` selects; returns them.
pub fn prune_records(engine: &Engine, filter: &PruneFilter) -> Vec<Record> {
    tokio::task::block_in_place(|| {
        records::prune(
            &engine.images,
            &engine.build_cache(),
            &|id| engine.image_in_use(id),
            filter,
        )
    })
}

/// `POST /build/prune?all=&filters=&keep-storage=`.
pub fn prune(engine: &Engine, q: &Query) -> ApiResult {
    let f = q.filters(&[
        "until",
        "id",
        "parent",
        "type",
        "description",
        "inuse",
        "shared",
        "private",
        // `docker system prune --filter` sends its container and image filters
        // here too, as dockerd accepts them.
        "label",
        "label!",
    ])?;
    let mut filter = PruneFilter::default();
    if let Some(v) = f.get("until").and_then(|v| v.first()) {
        filter.before = Some(super::images::parse_until(v)?);
    }
    for key in ["reserved-space", "keep-storage"] {
        if let Some(v) = q.get(key) {
            filter.keep_bytes = v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid {key}: {v}")))?;
        }
    }
    // Cache records carry no labels: a `label` filter matches none of them,
    // and `label!` spares none.
    let removed = match f.get("label") {
        Some(wanted) if !wanted.is_empty() => Vec::new(),
        _ => prune_records(engine, &filter),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "CachesDeleted": removed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            "SpaceReclaimed": removed.iter().map(|r| r.size).sum::<u64>(),
        }),
    )
}
