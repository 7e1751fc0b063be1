//! What the engine remembers about a container, persisted atomically as one JSON file in
//! the container's directory.

use std::path::Path;

use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

use crate::fsutil::{atomic_write, replace};

/// The label the builder puts on its containers, and its value on a step's.
pub const BUILD_LABEL: &str = "io.berth.build";
pub const BUILD_STEP: &str = "intermediate";

pub const RECORD_FILE: &str = "container.json";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub shim_pid: i64,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Frozen by `docker pause` (still counted as running).
    #[serde(default)]
    pub paused: bool,
    /// Exited, with its restart policy's restart pending (`State.Restarting`).
    #[serde(default)]
    pub restarting: bool,
    /// `State.Health`: set once a container with a healthcheck has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<bollard_stubs::models::Health>,
}

impl RunState {
    /// A container that was created and has never run.
    pub fn created() -> RunState {
        RunState {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: None,
            finished_at: None,
            paused: false,
            restarting: false,
            health: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: RunState,
    #[serde(default)]
    pub restart_count: i64,
    /// The image's layer directories, lowest first (the image cannot be removed while
    /// the container exists, so these stay valid).
    #[serde(default)]
    pub layers: Vec<std::path::PathBuf>,
    /// Set by `docker stop`/`kill`: restart policies leave the container alone.
    #[serde(default)]
    pub manually_stopped: bool,
    /// The networks it is connected to, by name, with their addresses while it runs.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, bollard_stubs::models::EndpointSettings>,
    /// MAC addresses asked for (`--mac-address`, an endpoint's `MacAddress`), by
    /// network name: the endpoint settings show the live address, these persist.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub macs: std::collections::BTreeMap<String, String>,
    /// Volumes, bind mounts and tmpfs mounts, resolved at create time.
    #[serde(default)]
    pub mounts: Vec<crate::volumes::mounts::ContainerMount>,
}

impl ContainerRecord {
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        // A build's step container lives for one RUN and is of no use after a crash;
        // its half-dozen state changes would cost a build two fsyncs each.
        match self.build_intermediate() {
            true => replace(&dir.join(RECORD_FILE), &bytes),
            false => atomic_write(&dir.join(RECORD_FILE), &bytes),
        }
    }

    pub fn load(dir: &Path) -> std::io::Result<ContainerRecord> {
        let bytes = std::fs::read(dir.join(RECORD_FILE))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// A container the builder made for one step (`io.berth.build=intermediate`).
    pub fn build_intermediate(&self) -> bool {
        self.config
            .labels
            .as_ref()
            .and_then(|l| l.get(BUILD_LABEL))
            .is_some_and(|v| v == BUILD_STEP)
    }

    pub fn running(&self) -> bool {
        self.state.status == Status::Running
    }
}
