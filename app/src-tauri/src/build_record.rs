//! A build as the engine's history records it (Berth's `/berth/builds`
//! endpoints; the Docker API has none), and where buildx says its files came
//! from: what the Builds page shows and what running it again repeats.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BuildStep {
    pub name: String,
    /// Unix milliseconds.
    pub started: Option<i64>,
    pub completed: Option<i64>,
    pub cached: bool,
    #[serde(default)]
    pub error: Option<String>,
    /// The step's output (its last 64 KiB); empty in the list.
    #[serde(default)]
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BuildRequest {
    pub dockerfile: String,
    #[serde(default)]
    pub target: Option<String>,
    /// The arguments' names.
    #[serde(default)]
    pub build_args: Vec<String>,
    /// Their values (an older engine kept names only).
    #[serde(default)]
    pub build_arg_values: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub no_cache: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub id: String,
    pub name: String,
    #[cfg_attr(test, ts(type = r#""running" | "completed" | "failed""#))]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created: i64,
    pub completed: Option<i64>,
    #[serde(default)]
    pub request: BuildRequest,
    /// The image it made (`sha256:…`).
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub total_steps: u32,
    pub cached_steps: u32,
    pub steps: Vec<BuildStep>,
    /// Where its files came from, when buildx recorded it on this machine
    /// (the detail only).
    #[serde(default)]
    pub source: Option<BuildSource>,
}

/// Where a build's files came from, as buildx recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BuildSource {
    /// The context directory.
    pub context: String,
    /// The Dockerfile's path.
    pub dockerfile: String,
}
