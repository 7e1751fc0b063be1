//! The engine as the app sees it: a Docker API client on the socket (or, on
//! Windows, the named pipe) the `docker` CLI would use (`DOCKER_HOST`, else
//! Berth's own endpoint), and whether it answers.

use berth::paths::DockerEndpoint;
use bollard::Docker;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("DOCKER_HOST={0} is not a local endpoint; Berth's app talks to unix sockets and named pipes only")]
    NotLocal(String),
    #[error("{0}")]
    Docker(#[from] bollard::errors::Error),
}

/// Where the engine listens: `DOCKER_HOST` (`unix://…`, `npipe://…`), else
/// Berth's own endpoint.
pub fn endpoint() -> Result<DockerEndpoint, EngineError> {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.is_empty() {
            return DockerEndpoint::from_docker_host(&host).ok_or(EngineError::NotLocal(host));
        }
    }
    Ok(berth::paths::Paths::for_user().user_docker_endpoint())
}

/// The same as a docker endpoint: `unix://…` or `npipe://…`.
pub fn docker_host() -> Result<String, EngineError> {
    endpoint().map(|e| e.docker_host())
}

pub fn connect() -> Result<Docker, EngineError> {
    // bollard's local connection is a unix socket on unix and a named pipe on
    // Windows, which is exactly what each OS's build serves.
    let addr = match endpoint()? {
        DockerEndpoint::Unix(p) => p.display().to_string(),
        DockerEndpoint::NamedPipe(name) => name,
    };
    Ok(Docker::connect_with_local(
        &addr,
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
    /// Which engine answers: Berth's VM, an engine on this machine, or
    /// nothing yet.
    #[cfg_attr(test, ts(type = r#""vm" | "native" | """#))]
    pub kind: &'static str,
}

/// What `/info`'s `OperatingSystem` says inside Berth's VM (its os-release).
const VM_OS: &str = "Berth VM";

pub async fn status(docker: &Docker) -> EngineStatus {
    let docker_host = docker_host().unwrap_or_default();
    match docker.version().await {
        Ok(v) => EngineStatus {
            kind: match docker.info().await {
                Ok(i) if i.operating_system.as_deref() == Some(VM_OS) => "vm",
                _ => "native",
            },
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
            kind: "",
        },
    }
}

/// A request bollard has no call for (Berth's own `/berth/…` endpoints), over
/// the same local endpoint: the status and body, or the engine's message for
/// an error status.
pub async fn request(method: &str, path: &str) -> Result<Vec<u8>, String> {
    use http_body_util::BodyExt;
    let stream = match endpoint().map_err(|e| e.to_string())? {
        DockerEndpoint::Unix(p) => berth::os::connect_unix_async(&p).await,
        DockerEndpoint::NamedPipe(n) => berth::os::connect_pipe_async(&n).await,
    }
    .map_err(|e| format!("cannot reach the engine: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("talking to the engine: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "berth")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("talking to the engine: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the engine's answer: {e}"))?
        .to_bytes()
        .to_vec();
    if status.is_success() {
        return Ok(body);
    }
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    Err(serde_json::from_slice::<Message>(&body)
        .map(|m| m.message)
        .unwrap_or_else(|_| format!("the engine answered {status}")))
}
