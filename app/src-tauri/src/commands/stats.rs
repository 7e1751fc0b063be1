//! Usage: one container's live samples (the Stats tab) and a sample of every
//! running container (the CPU and memory columns of the list).

use bollard::query_parameters as q;
use futures_util::StreamExt;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use super::{docker, App, Res};
use crate::model::{self, StatsPoint};

/// Live usage of one container, a sample a second (`docker stats`).
#[tauri::command]
pub async fn watch_stats(
    app: State<'_, App>,
    id: String,
    on_sample: Channel<StatsPoint>,
) -> Res<u64> {
    let d = docker(&app)?.clone();
    Ok(app.streams.spawn(async move {
        let mut s = d.stats(
            &id,
            Some(q::StatsOptions {
                stream: true,
                one_shot: false,
            }),
        );
        while let Some(Ok(sample)) = s.next().await {
            if on_sample.send(model::stats_point(&sample)).is_err() {
                break;
            }
        }
    }))
}

/// A running container's CPU and memory, for the list.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub id: String,
    /// `None` on the first look at a container: CPU needs two samples.
    pub cpu_percent: Option<f64>,
    pub memory: u64,
}

/// A screenful and then some: more ids than this are a caller's mistake.
const MAX_SAMPLED: usize = 200;

/// One sample of each of `ids` (the running containers the list shows; a few
/// at a time): a list of 1,000 asks about the 20 on screen, not all. CPU from
/// the previous call's sample, as `docker stats` does between its frames.
#[tauri::command]
pub async fn list_usage(app: State<'_, App>, ids: Vec<String>) -> Res<Vec<Usage>> {
    let d = docker(&app)?.clone();
    let samples: Vec<(String, bollard::models::ContainerStatsResponse)> =
        futures_util::stream::iter(ids.into_iter().take(MAX_SAMPLED))
            .map(|id| {
                let d = d.clone();
                async move {
                    let mut s = d.stats(
                        &id,
                        Some(q::StatsOptions {
                            stream: false,
                            one_shot: true,
                        }),
                    );
                    s.next().await.and_then(|r| r.ok()).map(|v| (id, v))
                }
            })
            .buffer_unordered(8)
            .filter_map(|x| async move { x })
            .collect()
            .await;
    let mut prev = app.usage.lock().map_err(|e| e.to_string())?;
    let mut next = std::collections::HashMap::new();
    let out = samples
        .into_iter()
        .map(|(id, s)| {
            let now = model::cpu_counters(&s);
            let cpu_percent = prev.get(&id).and_then(|p| model::cpu_between(*p, now));
            next.insert(id.clone(), now);
            Usage {
                id,
                cpu_percent,
                memory: model::stats_point(&s).memory,
            }
        })
        .collect();
    *prev = next;
    Ok(out)
}
