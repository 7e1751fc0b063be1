//! The Disk page: what the engine's data takes (`GET /system/df`, read in the
//! classic shape, which `docker system df` shows), what each kind could free,
//! the VM's disk file on the host, and the reclaim actions, each the prune
//! `docker system df`'s RECLAIMABLE column counts.

use std::collections::HashMap;

use bollard::query_parameters as q;
use serde::Serialize;
use serde_json::Value;
use tauri::State;

use super::{docker, msg, App, Res};
use crate::engine;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DiskRow {
    #[cfg_attr(
        test,
        ts(type = r#""images" | "containers" | "volumes" | "buildCache""#)
    )]
    pub kind: &'static str,
    pub total: u64,
    /// In use: images with containers, running containers, volumes mounted,
    /// cache records in use.
    pub active: u64,
    pub size: u64,
    /// What its reclaim action frees.
    pub reclaimable: u64,
    /// How many things that action removes.
    pub removable: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DiskUsage {
    pub rows: Vec<DiskRow>,
    /// The VM's data disk file on the host (its real blocks) and the most it
    /// can grow to, when the app's engine is the VM.
    pub vm_disk_bytes: Option<u64>,
    pub vm_disk_limit_bytes: Option<u64>,
}

fn n(v: &Value) -> u64 {
    v.as_i64().filter(|x| *x > 0).unwrap_or(0) as u64
}

fn items<'a>(df: &'a Value, key: &str) -> &'a [Value] {
    df[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The rows `docker system df` prints, computed as the docker CLI computes
/// them from the same document.
pub fn disk_rows(df: &Value) -> Vec<DiskRow> {
    let images = items(df, "Images");
    let used: u64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .map(|i| n(&i["Size"]).saturating_sub(n(&i["SharedSize"])))
        .sum();
    let layers = n(&df["LayersSize"]);
    let unused: Vec<&Value> = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) <= 0)
        .collect();

    let containers = items(df, "Containers");
    let stopped: Vec<&Value> = containers
        .iter()
        .filter(|c| {
            !matches!(
                c["State"].as_str(),
                Some("running" | "paused" | "restarting")
            )
        })
        .collect();

    let volumes = items(df, "Volumes");
    let idle: Vec<&Value> = volumes
        .iter()
        .filter(|v| v["UsageData"]["RefCount"].as_i64() == Some(0))
        .collect();

    let cache = items(df, "BuildCache");
    let own = |c: &&Value| !c["Shared"].as_bool().unwrap_or(false);
    let free = |c: &&Value| own(c) && !c["InUse"].as_bool().unwrap_or(false);

    vec![
        DiskRow {
            kind: "images",
            total: images.len() as u64,
            active: (images.len() - unused.len()) as u64,
            size: layers,
            reclaimable: layers.saturating_sub(used),
            removable: unused.len() as u64,
        },
        DiskRow {
            kind: "containers",
            total: containers.len() as u64,
            active: (containers.len() - stopped.len()) as u64,
            size: containers.iter().map(|c| n(&c["SizeRw"])).sum(),
            reclaimable: stopped.iter().map(|c| n(&c["SizeRw"])).sum(),
            removable: stopped.len() as u64,
        },
        DiskRow {
            kind: "volumes",
            total: volumes.len() as u64,
            active: volumes
                .iter()
                .filter(|v| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
                .count() as u64,
            size: volumes.iter().map(|v| n(&v["UsageData"]["Size"])).sum(),
            reclaimable: idle.iter().map(|v| n(&v["UsageData"]["Size"])).sum(),
            removable: idle.len() as u64,
        },
        DiskRow {
            kind: "buildCache",
            total: cache.len() as u64,
            active: cache
                .iter()
                .filter(|c| c["InUse"].as_bool().unwrap_or(false))
                .count() as u64,
            size: cache.iter().filter(own).map(|c| n(&c["Size"])).sum(),
            reclaimable: cache.iter().filter(free).map(|c| n(&c["Size"])).sum(),
            removable: cache.iter().filter(free).count() as u64,
        },
    ]
}

/// The engine's usage, and the VM's disk file when the VM is what runs.
#[tauri::command]
pub async fn disk_usage(app: State<'_, App>) -> Res<DiskUsage> {
    // The classic document (API 1.51) is what every engine, dockerd 29
    // included, still answers at that version.
    let df: Value = serde_json::from_slice(&engine::request("GET", "/v1.51/system/df").await?)
        .map_err(|e| format!("the engine's disk usage: {e}"))?;
    let vm = if app.engine.status().kind == "vm" {
        tauri::async_runtime::spawn_blocking(|| {
            let paths = berth::paths::Paths::for_user();
            let vm = berth::vm::VmPaths::new(paths.vm_dir());
            berth::vm::usage::usage(&vm, None)
        })
        .await
        .ok()
    } else {
        None
    };
    Ok(DiskUsage {
        rows: disk_rows(&df),
        vm_disk_bytes: vm.as_ref().and_then(|u| u.disk_bytes),
        vm_disk_limit_bytes: vm.as_ref().and_then(|u| u.disk_limit_bytes),
    })
}

/// Frees what the row's RECLAIMABLE counts: stopped containers, images no
/// container uses (`image prune -a`), volumes no container uses (named ones
/// too), build cache not in use. The bytes freed.
#[tauri::command]
pub async fn reclaim(app: State<'_, App>, kind: String) -> Res<u64> {
    let d = docker(&app)?;
    let filter = |k: &str, v: &str| Some(HashMap::from([(k.to_string(), vec![v.to_string()])]));
    let freed = match kind.as_str() {
        "containers" => {
            d.prune_containers(None::<q::PruneContainersOptions>)
                .await
                .map_err(msg)?
                .space_reclaimed
        }
        "images" => {
            d.prune_images(Some(q::PruneImagesOptions {
                filters: filter("dangling", "false"),
            }))
            .await
            .map_err(msg)?
            .space_reclaimed
        }
        "volumes" => {
            d.prune_volumes(Some(q::PruneVolumesOptions {
                filters: filter("all", "true"),
            }))
            .await
            .map_err(msg)?
            .space_reclaimed
        }
        "buildCache" => {
            d.prune_build(Some(q::PruneBuildOptions {
                all: Some(true),
                ..Default::default()
            }))
            .await
            .map_err(msg)?
            .space_reclaimed
        }
        other => return Err(format!("nothing to reclaim called {other:?}")),
    };
    Ok(freed.filter(|x| *x > 0).unwrap_or(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_what_docker_system_df_prints() {
        let df = serde_json::json!({
            "LayersSize": 1000,
            "Images": [
                {"Id": "a", "Size": 600, "SharedSize": 100, "Containers": 2},
                {"Id": "b", "Size": 500, "SharedSize": 100, "Containers": 0},
            ],
            "Containers": [
                {"State": "running", "SizeRw": 10},
                {"State": "exited", "SizeRw": 7},
                {"State": "created", "SizeRw": 0},
            ],
            "Volumes": [
                {"UsageData": {"Size": 40, "RefCount": 1}},
                {"UsageData": {"Size": 30, "RefCount": 0}},
                {"UsageData": {"Size": -1, "RefCount": -1}},
            ],
            "BuildCache": [
                {"Size": 5, "InUse": false, "Shared": false},
                {"Size": 9, "InUse": true, "Shared": false},
                {"Size": 50, "InUse": false, "Shared": true},
            ],
        });
        let rows = disk_rows(&df);
        let get = |k| rows.iter().find(|r| r.kind == k).unwrap();
        let images = get("images");
        assert_eq!((images.total, images.active, images.size), (2, 1, 1000));
        // The used image's own bytes (600 - 100) stay.
        assert_eq!((images.reclaimable, images.removable), (500, 1));
        let containers = get("containers");
        assert_eq!(
            (containers.total, containers.active, containers.size),
            (3, 1, 17)
        );
        assert_eq!((containers.reclaimable, containers.removable), (7, 2));
        let volumes = get("volumes");
        assert_eq!((volumes.total, volumes.active, volumes.size), (3, 1, 70));
        assert_eq!((volumes.reclaimable, volumes.removable), (30, 1));
        let cache = get("buildCache");
        assert_eq!((cache.total, cache.active, cache.size), (3, 1, 14));
        assert_eq!((cache.reclaimable, cache.removable), (5, 1));
        // An engine that answered nothing useful is all zeros, not an error.
        assert!(disk_rows(&serde_json::json!({}))
            .iter()
            .all(|r| r.total == 0 && r.size == 0));
    }
}
