//! The first-run welcome: running the getting-started tutorial (the flow is
//! `berth::tutorial::start`, shared with `berth tutorial`; this is its engine
//! over the Docker API), and remembering that the welcome was done.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters as q;
use bollard::Docker;
use serde::Serialize;
use tauri::State;

use super::{docker, msg, App, Res};
use berth::tutorial as t;

/// What the first-run flow shows once the tutorial runs.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TutorialStarted {
    /// The `docker run` a user would type for it.
    pub command: String,
    pub url: String,
    /// It was running already (or only needed a start).
    pub already: bool,
}

/// Runs the getting-started tutorial as `berth tutorial` does: the named container
/// from the preloaded image with its port published (started again if it exists).
#[tauri::command]
pub async fn start_tutorial(app: State<'_, App>) -> Res<TutorialStarted> {
    let started = t::start(&mut ApiEngine(docker(&app)?))
        .await
        .map_err(|e| e.to_string())?;
    Ok(TutorialStarted {
        command: started.command(),
        url: started.url(),
        already: started.already,
    })
}

/// Records that the first-run welcome was done (or skipped), so it opens only
/// from Help from now on.
#[tauri::command]
pub fn finish_welcome() -> Res<()> {
    let path = berth::paths::Paths::for_user().settings_file();
    let mut settings = berth::settings::Settings::load(&path).map_err(|e| e.to_string())?;
    settings.app.welcome_done = true;
    settings.save(&path).map_err(|e| e.to_string())
}

/// The tutorial's engine as the Docker API sees it.
struct ApiEngine<'a>(&'a Docker);

impl t::Engine for ApiEngine<'_> {
    type Error = String;

    async fn container_running(&mut self) -> Option<bool> {
        let c = self
            .0
            .inspect_container(t::CONTAINER, None::<q::InspectContainerOptions>)
            .await
            .ok()?;
        Some(c.state.as_ref().and_then(|s| s.running) == Some(true))
    }

    async fn has_image(&mut self) -> bool {
        self.0.inspect_image(t::IMAGE).await.is_ok()
    }

    async fn start(&mut self) -> Res<()> {
        self.0
            .start_container(t::CONTAINER, None::<q::StartContainerOptions>)
            .await
            .map_err(msg)
    }

    async fn run(&mut self, port: u16) -> Res<()> {
        self.0
            .create_container(
                Some(q::CreateContainerOptions {
                    name: Some(t::CONTAINER.to_string()),
                    ..Default::default()
                }),
                create_body(port),
            )
            .await
            .map_err(msg)?;
        self.start().await
    }

    async fn published_port(&mut self) -> Res<Option<u16>> {
        let c = self
            .0
            .inspect_container(t::CONTAINER, None::<q::InspectContainerOptions>)
            .await
            .map_err(msg)?;
        Ok(tutorial_port(&c))
    }
}

/// `docker run -d -p PORT:80 berth/getting-started` as the API's create body.
fn create_body(port: u16) -> ContainerCreateBody {
    let container_port = format!("{}/tcp", t::CONTAINER_PORT);
    ContainerCreateBody {
        image: Some(t::IMAGE.to_string()),
        exposed_ports: Some(vec![container_port.clone()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                container_port,
                Some(vec![PortBinding {
                    host_ip: Some(String::new()),
                    host_port: Some(port.to_string()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The host port published for the tutorial's port 80, from an inspect.
fn tutorial_port(c: &bollard::models::ContainerInspectResponse) -> Option<u16> {
    let key = format!("{}/tcp", t::CONTAINER_PORT);
    c.network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(&key)?
        .as_ref()?
        .iter()
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerInspectResponse, NetworkSettings};

    #[test]
    fn the_create_body_publishes_the_port_as_run_args_do() {
        let body = create_body(8081);
        assert_eq!(body.image.as_deref(), Some("berth/getting-started"));
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let b = &bindings["80/tcp"].as_ref().unwrap()[0];
        assert_eq!(b.host_port.as_deref(), Some("8081"));
        assert!(t::run_args(8081).contains(&"8081:80".to_string()));
    }

    #[test]
    fn the_published_port_is_read_from_an_inspect() {
        let inspect = |ports| ContainerInspectResponse {
            network_settings: Some(NetworkSettings {
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bound = |p: &str| {
            Some(vec![PortBinding {
                host_ip: Some("0.0.0.0".into()),
                host_port: Some(p.into()),
            }])
        };
        let c = inspect(HashMap::from([("80/tcp".to_string(), bound("8082"))]));
        assert_eq!(tutorial_port(&c), Some(8082));
        let c = inspect(HashMap::from([("443/tcp".to_string(), bound("8443"))]));
        assert_eq!(tutorial_port(&c), None);
        assert_eq!(tutorial_port(&ContainerInspectResponse::default()), None);
    }
}
