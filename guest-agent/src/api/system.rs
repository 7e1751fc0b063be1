//! `/_ping`, `/version` and `/info`.

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use hyper::{Method, Response, StatusCode};

use bollard_stubs::models::{SystemVersion, SystemVersionComponents, SystemVersionPlatform};

use super::version::{MAX_API, MIN_API};
use super::{full, json, ApiResult};
use crate::engine::Engine;

pub fn ping(method: &Method) -> ApiResult {
    let body = if method == Method::HEAD { "" } else { "OK" };
    let mut resp = Response::new(full(body));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    // BuildKit (`/grpc`, `/session`): the CLI builds through buildx when it is
    // installed; without buildx it falls back to `POST /build` with a warning.
    h.insert("Builder-Version", HeaderValue::from_static("2"));
    Ok(resp)
}

pub fn version(engine: &Engine) -> ApiResult {
    let host = engine.host();
    let details = [
        ("ApiVersion", MAX_API.to_string()),
        ("MinAPIVersion", MIN_API.to_string()),
        ("Os", "linux".to_string()),
        ("Arch", host.arch.clone()),
        ("KernelVersion", host.kernel.clone()),
        ("Experimental", "false".to_string()),
        ("GitCommit", crate::GIT_COMMIT.to_string()),
        ("GoVersion", "n/a (Rust)".to_string()),
        ("BuildTime", String::new()),
    ];
    let v = SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: "Berth Engine".into(),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: crate::VERSION.into(),
            details: Some(
                details
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
        }]),
        version: Some(crate::VERSION.into()),
        api_version: Some(MAX_API.to_string()),
        min_api_version: Some(MIN_API.to_string()),
        git_commit: Some(crate::GIT_COMMIT.into()),
        go_version: Some("n/a (Rust)".into()),
        os: Some("linux".into()),
        arch: Some(host.arch.clone()),
        kernel_version: Some(host.kernel.clone()),
        experimental: Some(false),
        build_time: None,
    };
    json(StatusCode::OK, &v)
}

pub fn info(engine: &Engine) -> ApiResult {
    json(StatusCode::OK, &engine.info())
}

/// `GET /system/df`. Written as JSON by hand: bollard-stubs 1.53 only has API 1.52's
/// reshaped usage document, while the CLI (API 1.50) and SDKs read the classic one
/// (`LayersSize`, `Images`, `Containers`, `Volumes`, `BuildCache`).
pub fn df(engine: &Engine) -> ApiResult {
    use crate::containers::views::ListFilters;
    let containers = engine.containers.list(&ListFilters {
        all: true,
        ..Default::default()
    })?;
    let mut images = engine
        .images
        .list(&crate::images::ImageFilters::default())
        .unwrap_or_default();
    for img in &mut images {
        img.containers = containers
            .iter()
            .filter(|c| c.image_id.as_deref() == Some(img.id.as_str()))
            .count() as i64;
    }
    let containers: Vec<_> = containers
        .into_iter()
        .map(|mut c| {
            let (rw, root) =
                super::containers::sizes(engine, c.id.as_deref(), c.image_id.as_deref());
            c.size_rw = Some(rw);
            c.size_root_fs = Some(root);
            c
        })
        .collect();
    let volumes: Vec<serde_json::Value> = tokio::task::block_in_place(|| engine.volumes.usage())
        .into_iter()
        .map(|(v, size, refs)| {
            let mut j = serde_json::to_value(&v).unwrap_or_default();
            j["UsageData"] = serde_json::json!({"Size": size, "RefCount": refs});
            j
        })
        .collect();
    let doc = serde_json::json!({
        "LayersSize": engine.images.layers_size(),
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": super::build_cache::records(engine)
            .iter()
            .map(super::build_cache::record_json)
            .collect::<Vec<_>>(),
    });
    json(StatusCode::OK, &doc)
}
