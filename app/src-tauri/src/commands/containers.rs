//! The Containers page: the list, the row's actions, and the run form.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, PortBinding};
use bollard::query_parameters as q;
use serde::Deserialize;
use tauri::State;

use super::{docker, msg, App, Res};
use crate::model::{self, ContainerRow};

#[tauri::command]
pub async fn list_containers(app: State<'_, App>) -> Res<Vec<ContainerRow>> {
    let list = docker(&app)?
        .list_containers(Some(q::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .map_err(msg)?;
    Ok(list.iter().map(model::container_row).collect())
}

#[tauri::command]
pub async fn container_action(app: State<'_, App>, id: String, action: String) -> Res<()> {
    let d = docker(&app)?;
    match action.as_str() {
        "start" => {
            d.start_container(&id, None::<q::StartContainerOptions>)
                .await
        }
        "stop" => d.stop_container(&id, None::<q::StopContainerOptions>).await,
        "restart" => {
            d.restart_container(&id, None::<q::RestartContainerOptions>)
                .await
        }
        "pause" => d.pause_container(&id).await,
        "unpause" => d.unpause_container(&id).await,
        "remove" => {
            d.remove_container(
                &id,
                Some(q::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
        }
        other => return Err(format!("unknown action {other:?}")),
    }
    .map_err(msg)
}

/// An action on a whole Compose project, as `docker compose -p P stop`,
/// `start`, `restart` and `rm -s -f` do: on every container labelled with
/// the project (running or not); `stop` leaves stopped ones and `start`
/// running ones alone.
#[tauri::command]
pub async fn project_action(app: State<'_, App>, project: String, action: String) -> Res<()> {
    let d = docker(&app)?;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={project}", model::COMPOSE_PROJECT)],
    )]);
    let members = d
        .list_containers(Some(q::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(msg)?;
    let mut chosen = Vec::new();
    for c in &members {
        let running = c.state == Some(ContainerSummaryStateEnum::RUNNING);
        let wanted = match action.as_str() {
            "stop" => running,
            "start" => !running,
            "restart" | "remove" => true,
            other => return Err(format!("unknown project action {other:?}")),
        };
        if wanted {
            chosen.push(c.id.clone().unwrap_or_default());
        }
    }
    // All at once, as Compose does: a stop waits out each container's grace
    // period, and one after another they would add up.
    let results = futures_util::future::join_all(
        chosen
            .iter()
            .map(|id| container_action(app.clone(), id.clone(), action.clone())),
    )
    .await;
    let failed: Vec<String> = chosen
        .iter()
        .zip(results)
        .filter_map(|(id, r)| r.err().map(|e| format!("{}: {e}", model::short_id(id))))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// The run form, as `docker run` takes it.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RunForm {
    pub image: String,
    #[serde(default)]
    pub name: String,
    /// `-p`-style specs.
    #[serde(default)]
    pub ports: Vec<String>,
    /// `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// `-v`-style specs.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// A command line, split as a POSIX shell would (quotes kept together);
    /// empty keeps the image's.
    #[serde(default)]
    pub command: String,
}

/// What `docker run` would send to create the container: blank rows of the
/// form are ignored, env entries without `=` dropped, bad ports refused.
pub fn create_body(form: RunForm) -> Res<ContainerCreateBody> {
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed: HashMap<String, HashMap<(), ()>> = HashMap::new();
    for spec in form.ports.iter().filter(|s| !s.trim().is_empty()) {
        let (ip, host, container) = model::parse_port(spec.trim())?;
        exposed.insert(container.clone(), HashMap::new());
        bindings
            .entry(container)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(ip),
                host_port: Some(host),
            });
    }
    let cmd = shell_words::split(&form.command)
        .map_err(|e| format!("the command cannot be split: {e}"))?;
    Ok(ContainerCreateBody {
        image: Some(form.image),
        env: Some(form.env.into_iter().filter(|e| e.contains('=')).collect()),
        cmd: (!cmd.is_empty()).then_some(cmd),
        exposed_ports: Some(exposed.into_keys().collect()),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            binds: Some(
                form.volumes
                    .into_iter()
                    .filter(|v| !v.trim().is_empty())
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[tauri::command]
pub async fn run_container(app: State<'_, App>, form: RunForm) -> Res<String> {
    let name = form.name.trim().to_string();
    let body = create_body(form)?;
    let d = docker(&app)?;
    let created = d
        .create_container(
            Some(q::CreateContainerOptions {
                name: (!name.is_empty()).then_some(name),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(msg)?;
    if let Err(e) = d
        .start_container(&created.id, None::<q::StartContainerOptions>)
        .await
    {
        // `docker run` leaves a container that never started behind; the
        // form is the app's way to fix and retry, so a leftover would only
        // take the name the next try wants.
        let _ = d
            .remove_container(
                &created.id,
                Some(q::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        return Err(model::start_failure(&msg(e)));
    }
    Ok(created.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(ports: &[&str], env: &[&str], command: &str) -> RunForm {
        RunForm {
            image: "nginx".into(),
            name: String::new(),
            ports: ports.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            volumes: vec!["data:/data".into(), "  ".into()],
            command: command.into(),
        }
    }

    #[test]
    fn the_run_form_becomes_docker_runs_create_body() {
        let body = create_body(form(
            &["8080:80", "", "127.0.0.1:8443:80"],
            &["A=1", "junk"],
            r#"sh -c "echo 'hi there'""#,
        ))
        .unwrap();
        assert_eq!(body.image.as_deref(), Some("nginx"));
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(
            body.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo 'hi there'".into()])
        );
        assert_eq!(body.exposed_ports, Some(vec!["80/tcp".to_string()]));
        let host = body.host_config.unwrap();
        assert_eq!(host.binds, Some(vec!["data:/data".to_string()]));
        let bound = &host.port_bindings.unwrap()["80/tcp"];
        let bound: Vec<(Option<String>, Option<String>)> = bound
            .iter()
            .flatten()
            .map(|b| (b.host_ip.clone(), b.host_port.clone()))
            .collect();
        assert_eq!(
            bound,
            [
                (Some(String::new()), Some("8080".into())),
                (Some("127.0.0.1".into()), Some("8443".into())),
            ]
        );
    }

    #[test]
    fn an_empty_command_keeps_the_images() {
        assert_eq!(create_body(form(&[], &[], "  ")).unwrap().cmd, None);
    }

    #[test]
    fn bad_ports_and_quotes_are_refused() {
        assert!(create_body(form(&["80:0"], &[], "")).is_err());
        assert!(create_body(form(&[], &[], "echo 'open")).is_err());
    }
}
