//! The engine as the app sees it: a Docker API client on the socket the
//! `docker` CLI would use (`DOCKER_HOST`, else Berth's own socket), and
//! whether it answers.

use bollard::Docker;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("DOCKER_HOST={0} is not a unix socket; Berth's app talks to unix sockets only")]
    NotUnix(String),
    #[error("{0}")]
    Docker(#[from] bollard::errors::Error),
}

/// Where the engine listens: `unix://…` from `DOCKER_HOST`, else Berth's socket.
pub fn socket_path() -> Result<String, EngineError> {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.is_empty() {
            return host
                .strip_prefix("unix://")
                .map(str::to_string)
                .ok_or(EngineError::NotUnix(host));
        }
    }
    match berth::paths::Paths::for_user().user_docker_endpoint() {
        berth::paths::DockerEndpoint::Unix(p) => Ok(p.display().to_string()),
        other => Err(EngineError::NotUnix(other.docker_host())),
    }
}

/// The same as a docker endpoint: `unix://…`.
pub fn docker_host() -> Result<String, EngineError> {
    socket_path().map(|p| format!("unix://{p}"))
}

pub fn connect() -> Result<Docker, EngineError> {
    let path = socket_path()?;
    Ok(Docker::connect_with_unix(
        &path,
        120,
        bollard::API_DEFAULT_VERSION,
    )?)
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// `running` or `stopped`.
    #[cfg_attr(test, ts(type = r#""running" | "stopped""#))]
    pub state: &'static str,
    /// The engine's version, or why it cannot be reached.
    pub detail: String,
    pub docker_host: String,
}

pub async fn status(docker: &Docker) -> EngineStatus {
    let docker_host = docker_host().unwrap_or_default();
    match docker.version().await {
        Ok(v) => EngineStatus {
            state: "running",
            detail: format!(
                "{} {} (API {})",
                v.platform.map(|p| p.name).unwrap_or_default(),
                v.version.unwrap_or_default(),
                v.api_version.unwrap_or_default()
            )
            .trim()
            .to_string(),
            docker_host,
        },
        Err(e) => EngineStatus {
            state: "stopped",
            detail: e.to_string(),
            docker_host,
        },
    }
}
