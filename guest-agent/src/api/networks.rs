//! Network endpoints: list, inspect, create, remove, prune, connect and disconnect.

use std::collections::HashMap;

use bytes::Bytes;
use hyper::StatusCode;

use bollard_stubs::models::{
    EndpointResource, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkDisconnectRequest, NetworkInspect, NetworkPruneResponse,
    NetworkSummary,
};

use super::prune_filter::PruneFilter;
use super::{empty, json, ApiError, ApiResult, Query};
use crate::engine::Engine;
use crate::images::labels_match;
use crate::network::{CreateRequest, NetworkError, NetworkRecord};

const LIST_FILTERS: &[&str] = &["name", "id", "driver", "label", "type", "dangling", "scope"];

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        let status = match &e {
            NetworkError::NotFound(_) => StatusCode::NOT_FOUND,
            NetworkError::Conflict(_) => StatusCode::CONFLICT,
            NetworkError::Forbidden(_) => StatusCode::FORBIDDEN,
            NetworkError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "network request failed");
        }
        ApiError::new(status, e.to_string())
    }
}

fn ipam(n: &NetworkRecord) -> Ipam {
    Ipam {
        driver: Some("default".into()),
        config: Some(
            n.subnet
                .map(|s| {
                    vec![IpamConfig {
                        subnet: Some(s.to_string()),
                        ip_range: n.ipam.ip_range.map(|r| r.to_string()),
                        gateway: n.gateway.map(|g| g.to_string()),
                        auxiliary_addresses: (!n.ipam.aux.is_empty()).then(|| {
                            n.ipam
                                .aux
                                .iter()
                                .map(|(k, v)| (k.clone(), v.to_string()))
                                .collect()
                        }),
                    }]
                })
                .unwrap_or_default()
                .into_iter()
                .chain(n.ipam.ipv6.map(|v6| IpamConfig {
                    subnet: Some(v6.subnet.to_string()),
                    ip_range: v6.ip_range.map(|r| r.to_string()),
                    gateway: Some(v6.gateway.to_string()),
                    auxiliary_addresses: None,
                }))
                .collect(),
        ),
        // As dockerd: the options as given, null when none were.
        options: n.ipam.options.clone(),
    }
}

/// The options the network was created with. As dockerd, the bridge's name shows
/// only on the default `bridge` network (set by the daemon there); on a user network
/// it would read as an option the user set, and Compose 1.29 then demands the
/// network be recreated ("option … has changed").
fn options(n: &NetworkRecord) -> HashMap<String, String> {
    let mut o = n.options.clone();
    if let Some(br) = n.bridge.as_ref().filter(|_| n.name == "bridge") {
        o.entry("com.docker.network.bridge.name".into())
            .or_insert_with(|| br.clone());
    }
    o
}

/// The fields `GET /networks` and `GET /networks/{id}` share, written once for
/// both models (bollard-stubs has a type for each).
macro_rules! network_doc {
    ($ty:ident, $n:expr, { $($extra:tt)* }) => {{
        let n: &NetworkRecord = $n;
        $ty {
            name: Some(n.name.clone()),
            id: Some(n.id.clone()),
            created: Some(n.created.clone()),
            scope: Some("local".into()),
            driver: Some(n.driver.clone()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(n.ipam.ipv6.is_some()),
            ipam: Some(ipam(n)),
            internal: Some(n.internal),
            attachable: Some(n.attachable),
            ingress: Some(false),
            config_only: Some(false),
            options: Some(options(n)),
            labels: Some(n.labels.clone()),
            $($extra)*
            ..Default::default()
        }
    }};
}

fn summary(n: &NetworkRecord) -> NetworkSummary {
    network_doc!(NetworkSummary, n, {})
}

fn inspect_doc(engine: &Engine, n: &NetworkRecord) -> NetworkInspect {
    let containers = n
        .attachments
        .values()
        .map(|a| {
            let name = engine
                .containers
                .inspect(&a.container)
                .ok()
                .and_then(|d| d.name)
                .map(|s| s.trim_start_matches('/').to_string())
                .unwrap_or_default();
            (
                a.container.clone(),
                EndpointResource {
                    name: Some(name),
                    endpoint_id: Some(a.endpoint_id.clone()),
                    mac_address: Some(a.mac.clone()),
                    ipv4_address: Some(format!(
                        "{}/{}",
                        a.ip,
                        n.subnet.map(|s| s.prefix).unwrap_or(32)
                    )),
                    ipv6_address: Some(String::new()),
                },
            )
        })
        .collect();
    network_doc!(NetworkInspect, n, { containers: Some(containers), })
}

pub fn list(engine: &Engine, q: &Query) -> ApiResult {
    let f = q.filters(LIST_FILTERS)?;
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (names, ids, drivers, labels, types) = (
        get("name"),
        get("id"),
        get("driver"),
        get("label"),
        get("type"),
    );
    let dangling = get("dangling");
    let rows: Vec<NetworkSummary> = engine
        .network
        .list()
        .iter()
        .filter(|n| names.is_empty() || names.iter().any(|x| n.name.contains(x.as_str())))
        .filter(|n| ids.is_empty() || ids.iter().any(|x| n.id.starts_with(x.as_str())))
        .filter(|n| drivers.is_empty() || drivers.contains(&n.driver))
        .filter(|n| labels_match(&labels, &n.labels))
        .filter(|n| {
            types.is_empty()
                || types
                    .iter()
                    .any(|t| (t == "builtin" && n.predefined) || (t == "custom" && !n.predefined))
        })
        .filter(|n| {
            dangling.is_empty()
                || dangling.iter().any(|d| {
                    let unused = !n.predefined && n.attachments.is_empty();
                    (d == "true" || d == "1") == unused
                })
        })
        .map(summary)
        .collect();
    json(StatusCode::OK, &rows)
}

pub fn inspect(engine: &Engine, name: &str) -> ApiResult {
    let n = engine.network.get(name)?;
    json(StatusCode::OK, &inspect_doc(engine, &n))
}

pub async fn create(engine: &Engine, body: Bytes) -> ApiResult {
    let req: NetworkCreateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    // One IPv4 pool and one IPv6 pool (told apart by the subnet's `:`).
    let pools = req
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    let is_v6 = |c: &IpamConfig| c.subnet.as_deref().is_some_and(|s| s.contains(':'));
    let cfg = pools
        .iter()
        .find(|c| !is_v6(c))
        .cloned()
        .unwrap_or_default();
    let cfg6 = pools.iter().find(|c| is_v6(c)).cloned().unwrap_or_default();
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let n = engine
        .network
        .create(CreateRequest {
            name: req.name.clone(),
            driver: req.driver.clone().filter(|d| !d.is_empty()),
            subnet: cfg.subnet.clone().filter(|s| !s.is_empty()),
            gateway: cfg.gateway.clone().filter(|s| !s.is_empty()),
            internal: req.internal == Some(true),
            attachable: req.attachable == Some(true),
            labels: req.labels.clone().unwrap_or_default(),
            options: req.options.clone().unwrap_or_default(),
            check_duplicate: true,
            ip_range: cfg.ip_range.clone().filter(|s| !s.is_empty()),
            aux: cfg.auxiliary_addresses.clone().unwrap_or_default(),
            ipam_options: req.ipam.as_ref().and_then(|i| i.options.clone()),
            enable_ipv6: req.enable_ipv6 == Some(true),
            subnet6: given(&cfg6.subnet),
            gateway6: given(&cfg6.gateway),
            ip_range6: given(&cfg6.ip_range),
        })
        .await?;
    engine.events.emit(
        bollard_stubs::models::EventMessageTypeEnum::NETWORK,
        "create",
        &n.id,
        vec![
            ("name".into(), n.name.clone()),
            ("type".into(), n.driver.clone()),
        ],
    );
    json(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id: n.id,
            warning: String::new(),
        },
    )
}

pub async fn remove(engine: &Engine, name: &str) -> ApiResult {
    let n = engine.network.get(name)?;
    engine.network.remove(&n.id).await?;
    engine.events.emit(
        bollard_stubs::models::EventMessageTypeEnum::NETWORK,
        "destroy",
        &n.id,
        vec![
            ("name".into(), n.name.clone()),
            ("type".into(), n.driver.clone()),
        ],
    );
    empty(StatusCode::NO_CONTENT)
}

/// `POST /networks/prune?filters=…` (`until`, `label`, `label!`).
pub async fn prune(engine: &Engine, q: &Query) -> ApiResult {
    let filter = PruneFilter::parse(q)?;
    let gone = engine
        .network
        .prune(|n| !filter.lets_go(&n.created, &n.labels))
        .await;
    json(
        StatusCode::OK,
        &NetworkPruneResponse {
            networks_deleted: Some(gone),
        },
    )
}

pub async fn connect(engine: &Engine, name: &str, body: Bytes) -> ApiResult {
    let req: NetworkConnectRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let n = engine.network.get(name)?;
    engine
        .containers
        .connect(
            &req.container,
            &n.name,
            req.endpoint_config.unwrap_or_default(),
        )
        .await?;
    empty(StatusCode::OK)
}

pub async fn disconnect(engine: &Engine, name: &str, body: Bytes) -> ApiResult {
    let req: NetworkDisconnectRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let n = engine.network.get(name)?;
    engine
        .containers
        .disconnect(&req.container, &n.name, req.force == Some(true))
        .await?;
    empty(StatusCode::OK)
}
