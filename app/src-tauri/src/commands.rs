//! The webview's commands: each parses its arguments, calls the engine
//! through bollard (or the `berth` library), and returns the engine's own
//! message on failure so the page can show it.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters as q;
use bollard::Docker;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::State;

use crate::engine::{self, EngineStatus};
use crate::model::{self, ContainerRow, ImageRow, NetworkRow, StatsPoint, VolumeRow};
use crate::streams::Streams;

pub struct App {
    pub docker: Result<Docker, String>,
    pub streams: Streams,
    /// The last CPU counters seen per container, for `list_usage`.
    pub usage: std::sync::Mutex<HashMap<String, model::CpuCounters>>,
}

type Res<T> = Result<T, String>;

fn docker<'a>(app: &'a State<'_, App>) -> Res<&'a Docker> {
    app.docker.as_ref().map_err(|e| e.clone())
}

fn msg(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

#[tauri::command]
pub async fn engine_status(app: State<'_, App>) -> Res<EngineStatus> {
    match &app.docker {
        Ok(d) => Ok(engine::status(d).await),
        Err(e) => Ok(EngineStatus {
            state: "stopped",
            detail: e.clone(),
            docker_host: String::new(),
        }),
    }
}

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

#[tauri::command]
pub async fn list_images(app: State<'_, App>) -> Res<Vec<ImageRow>> {
    let list = docker(&app)?
        .list_images(None::<q::ListImagesOptions>)
        .await
        .map_err(msg)?;
    Ok(list.iter().map(model::image_row).collect())
}

#[tauri::command]
pub async fn remove_image(app: State<'_, App>, id: String) -> Res<()> {
    docker(&app)?
        .remove_image(&id, None::<q::RemoveImageOptions>, None)
        .await
        .map(drop)
        .map_err(msg)
}

#[tauri::command]
pub async fn prune_images(app: State<'_, App>) -> Res<i64> {
    let r = docker(&app)?
        .prune_images(None::<q::PruneImagesOptions>)
        .await
        .map_err(msg)?;
    Ok(r.space_reclaimed.unwrap_or(0))
}

#[tauri::command]
pub async fn list_volumes(app: State<'_, App>) -> Res<Vec<VolumeRow>> {
    let d = docker(&app)?;
    let volumes = d
        .list_volumes(None::<q::ListVolumesOptions>)
        .await
        .map_err(msg)?
        .volumes
        .unwrap_or_default();
    let containers = d
        .list_containers(Some(q::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .map_err(msg)?;
    Ok(model::volume_rows(&volumes, &containers))
}

#[tauri::command]
pub async fn create_volume(app: State<'_, App>, name: String) -> Res<()> {
    docker(&app)?
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(name),
            ..Default::default()
        })
        .await
        .map(drop)
        .map_err(msg)
}

#[tauri::command]
pub async fn remove_volume(app: State<'_, App>, name: String) -> Res<()> {
    docker(&app)?
        .remove_volume(&name, None::<q::RemoveVolumeOptions>)
        .await
        .map_err(msg)
}

#[tauri::command]
pub async fn list_networks(app: State<'_, App>) -> Res<Vec<NetworkRow>> {
    let list = docker(&app)?
        .list_networks(None::<q::ListNetworksOptions>)
        .await
        .map_err(msg)?;
    let mut rows: Vec<NetworkRow> = list.iter().map(model::network_row).collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The engine's inspect document of a container or network, for detail views.
#[tauri::command]
pub async fn inspect(app: State<'_, App>, kind: String, id: String) -> Res<serde_json::Value> {
    let d = docker(&app)?;
    let v = match kind.as_str() {
        "container" => serde_json::to_value(
            d.inspect_container(&id, None::<q::InspectContainerOptions>)
                .await
                .map_err(msg)?,
        ),
        "network" => serde_json::to_value(
            d.inspect_network(&id, None::<q::InspectNetworkOptions>)
                .await
                .map_err(msg)?,
        ),
        other => return Err(format!("cannot inspect a {other:?}")),
    };
    v.map_err(|e| e.to_string())
}

/// Live usage of one container, a sample a second (`docker stats`).
#[tauri::command]
pub async fn watch_stats(
    app: State<'_, App>,
    id: String,
    on_sample: Channel<StatsPoint>,
) -> Res<u64> {
    let d = docker(&app)?.clone();
    let sid = app.streams.id();
    let task = tokio::spawn(async move {
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
    });
    app.streams.track(sid, task.abort_handle());
    Ok(sid)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub settings: berth::settings::Settings,
    pub path: String,
}

#[tauri::command]
pub fn get_settings() -> Res<SettingsView> {
    let path = berth::paths::Paths::for_user().settings_file();
    let settings = berth::settings::Settings::load(&path).map_err(|e| e.to_string())?;
    Ok(SettingsView {
        settings,
        path: path.display().to_string(),
    })
}

/// Saves the settings; `true` when the VM runs and must restart to use them.
#[tauri::command]
pub fn save_settings(settings: berth::settings::Settings) -> Res<bool> {
    let paths = berth::paths::Paths::for_user();
    let old = berth::settings::Settings::load(&paths.settings_file()).unwrap_or_default();
    settings
        .save(&paths.settings_file())
        .map_err(|e| e.to_string())?;
    let running = berth::vm::running_supervisor(&berth::vm::VmPaths::new(paths.vm_dir())).is_some();
    Ok(running && old != settings)
}

/// What the `docker` CLI in a new terminal talks to, and whether Berth set it up.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerCli {
    /// The CLI's current context (`default` when none is set).
    pub current: String,
    /// Where the `berth` context points, if there is one.
    pub berth_context: Option<String>,
    /// Whether Berth's integration (context, credential helper) is installed.
    pub installed: bool,
    /// The engine this app talks to: what "use Berth" points the CLI at.
    pub engine_host: String,
    /// The CLI's config file.
    pub config: String,
}

fn docker_cli_layout() -> Res<berth::integration::Layout> {
    let exe = std::env::current_exe().map_err(|e| format!("locating the app: {e}"))?;
    let dir = exe.parent().ok_or("the app's directory")?;
    Ok(berth::integration::Layout::for_user(
        &berth::paths::Paths::for_user(),
        dir,
        None,
    ))
}

#[tauri::command]
pub fn docker_cli() -> Res<DockerCli> {
    let layout = docker_cli_layout()?;
    let config = layout.docker_dir.join("config.json");
    let current = berth::creds::docker_config::current_context(&config)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "default".into());
    Ok(DockerCli {
        current,
        berth_context: berth::integration::context::host(
            &layout.docker_dir,
            berth::integration::context::NAME,
        ),
        installed: layout.installed(),
        engine_host: crate::engine::docker_host().map_err(|e| e.to_string())?,
        config: config.display().to_string(),
    })
}

/// Points the docker CLI at this app's engine (`berth install`: the `berth`
/// context, current if no other was, and the credential helper), or undoes
/// exactly that (`berth uninstall`). New `docker` commands see it at once.
#[tauri::command]
pub fn set_docker_cli(use_berth: bool) -> Res<DockerCli> {
    let layout = docker_cli_layout()?;
    if use_berth {
        let host = crate::engine::docker_host().map_err(|e| e.to_string())?;
        berth::integration::install(&layout, &host).map_err(|e| e.to_string())?;
    } else {
        berth::integration::uninstall(&layout).map_err(|e| e.to_string())?;
    }
    docker_cli()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Troubleshoot {
    /// The VM supervisor's published state, when it runs.
    pub vm: Option<berth::vm::VmState>,
    /// The last lines of the VM's console.
    pub console: String,
    /// What a reset to factory defaults deletes.
    pub reset_deletes: Vec<String>,
}

#[tauri::command]
pub fn troubleshoot() -> Res<Troubleshoot> {
    let paths = berth::paths::Paths::for_user();
    let vm = berth::vm::VmPaths::new(paths.vm_dir());
    let state = berth::vm::running_supervisor(&vm).and_then(|_| berth::vm::VmState::read(&vm));
    let console = std::fs::read_to_string(vm.console_log()).unwrap_or_default();
    let lines: Vec<&str> = console.lines().collect();
    Ok(Troubleshoot {
        vm: state,
        console: lines[lines.len().saturating_sub(200)..].join("\n"),
        reset_deletes: berth::vm::reset::plan(&paths)
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    })
}

/// The page has painted for the first time: logged with the time since the
/// process started (what `cargo xtask bench app` reads).
#[tauri::command]
pub fn app_ready() {
    let ms = crate::STARTED
        .get()
        .map(|t| t.elapsed().as_millis() as u64)
        .unwrap_or(0);
    tracing::info!(ms, "first paint");
}

/// Opens a published port's link in the user's browser.
#[tauri::command]
pub fn open_link(app: tauri::AppHandle, url: String) -> Res<()> {
    use tauri_plugin_opener::OpenerExt;
    if !model::is_port_link(&url) {
        return Err(format!("{url} is not a published port's link"));
    }
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| e.to_string())
}

/// The `berth` binary that runs the VM supervisor: beside the app, else on PATH.
fn berth_exe() -> Res<std::path::PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth")))
        .filter(|p| p.is_file())
        .or_else(|| berth::vm::image::find_program("berth"))
        .ok_or_else(|| "the berth command is not installed beside the app".to_string())
}

/// Boots the VM (returns once its engine answers), off the UI's threads.
#[tauri::command]
pub async fn vm_start() -> Res<String> {
    let exe = berth_exe()?;
    tokio::task::spawn_blocking(move || {
        berth::vm::lifecycle::start(
            &berth::paths::Paths::for_user(),
            &exe,
            std::time::Duration::from_secs(300),
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map(|s| {
        if s.already {
            "The VM was already running.".to_string()
        } else {
            format!(
                "The VM is up; its engine answered after {:.1} s.",
                s.took.as_secs_f64()
            )
        }
    })
    .map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn vm_stop() -> Res<String> {
    tokio::task::spawn_blocking(|| berth::vm::lifecycle::stop(&berth::paths::Paths::for_user()))
        .await
        .map_err(|e| e.to_string())?
        .map(|was| {
            if was {
                "The VM is stopped.".to_string()
            } else {
                "The VM was not running.".to_string()
            }
        })
        .map_err(|e| e.to_string())
}

/// Deletes what `troubleshoot` listed; refused while the VM runs.
#[tauri::command]
pub fn factory_reset() -> Res<Vec<String>> {
    berth::vm::reset::reset(&berth::paths::Paths::for_user())
        .map(|v| v.iter().map(|p| p.display().to_string()).collect())
        .map_err(|e| e.to_string())
}

/// A running container's CPU and memory, for the list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub id: String,
    /// `None` on the first look at a container: CPU needs two samples.
    pub cpu_percent: Option<f64>,
    pub memory: u64,
}

/// One sample of every running container (a few at a time); CPU from the
/// previous call's sample, as `docker stats` does between its frames.
#[tauri::command]
pub async fn list_usage(app: State<'_, App>) -> Res<Vec<Usage>> {
    let d = docker(&app)?.clone();
    let running = d
        .list_containers(None::<q::ListContainersOptions>)
        .await
        .map_err(msg)?;
    let ids: Vec<String> = running.into_iter().filter_map(|c| c.id).collect();
    let samples: Vec<(String, bollard::models::ContainerStatsResponse)> =
        futures_util::stream::iter(ids)
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

/// One line of pull progress, per layer.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullEvent {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<i64>,
    pub total: Option<i64>,
}

#[tauri::command]
pub async fn pull_image(
    app: State<'_, App>,
    reference: String,
    on_progress: Channel<PullEvent>,
) -> Res<()> {
    let (image, tag) = split_reference(&reference);
    let mut stream = docker(&app)?.create_image(
        Some(q::CreateImageOptions {
            from_image: Some(image),
            tag,
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = stream.next().await {
        let info = item.map_err(msg)?;
        let detail = info.progress_detail.unwrap_or_default();
        let _ = on_progress.send(PullEvent {
            id: info.id,
            status: info.status.unwrap_or_default(),
            current: detail.current,
            total: detail.total,
        });
    }
    Ok(())
}

/// `name[:tag]`, where a registry's `host:port/` is not a tag.
fn split_reference(r: &str) -> (String, Option<String>) {
    if r.contains('@') {
        return (r.to_string(), None);
    }
    match r.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), Some(tag.to_string())),
        _ => (r.to_string(), Some("latest".into())),
    }
}

#[derive(Deserialize)]
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

#[tauri::command]
pub async fn run_container(app: State<'_, App>, form: RunForm) -> Res<String> {
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
    let body = ContainerCreateBody {
        image: Some(form.image.clone()),
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
    };
    let d = docker(&app)?;
    let name = form.name.trim();
    let created = d
        .create_container(
            Some(q::CreateContainerOptions {
                name: (!name.is_empty()).then(|| name.to_string()),
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
        // Docker's `run` leaves the created container behind; the app does
        // too, so the user can see and fix it, but says why it did not start.
        return Err(msg(e));
    }
    Ok(created.id)
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub stream: &'static str,
    pub text: String,
}

/// Follows a container's logs (the last `tail` lines first); returns the
/// stream's id for `stop_stream`.
#[tauri::command]
pub async fn follow_logs(
    app: State<'_, App>,
    id: String,
    timestamps: bool,
    on_line: Channel<LogLine>,
) -> Res<u64> {
    let d = docker(&app)?.clone();
    let sid = app.streams.id();
    let task = tokio::spawn(async move {
        let mut s = d.logs(
            &id,
            Some(q::LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                timestamps,
                tail: "1000".into(),
                ..Default::default()
            }),
        );
        while let Some(Ok(out)) = s.next().await {
            use bollard::container::LogOutput;
            let (stream, bytes) = match out {
                LogOutput::StdErr { message } => ("stderr", message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    ("stdout", message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            let line = LogLine {
                stream,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            };
            if on_line.send(line).is_err() {
                break;
            }
        }
    });
    app.streams.track(sid, task.abort_handle());
    Ok(sid)
}

#[tauri::command]
pub async fn stop_stream(app: State<'_, App>, id: u64) -> Res<()> {
    app.streams.stop(id).await;
    Ok(())
}

/// Engine events, so lists refresh when something changes instead of polling.
#[tauri::command]
pub async fn watch_events(app: State<'_, App>, on_event: Channel<String>) -> Res<u64> {
    let d = docker(&app)?.clone();
    let sid = app.streams.id();
    let task = tokio::spawn(async move {
        let mut s = d.events(None::<q::EventsOptions>);
        while let Some(Ok(ev)) = s.next().await {
            let what = format!(
                "{} {}",
                ev.typ.map(|t| t.to_string()).unwrap_or_default(),
                ev.action.unwrap_or_default()
            );
            if on_event.send(what).is_err() {
                break;
            }
        }
    });
    app.streams.track(sid, task.abort_handle());
    Ok(sid)
}

/// A shell in the container on a TTY: output goes to `on_output`, keys come
/// back through `exec_input`.
#[tauri::command]
pub async fn exec_start(
    app: State<'_, App>,
    id: String,
    cols: u16,
    rows: u16,
    on_output: Channel<Vec<u8>>,
) -> Res<u64> {
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    let d = docker(&app)?.clone();
    let exec = d
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                cmd: Some(vec!["sh".to_string()]),
                ..Default::default()
            },
        )
        .await
        .map_err(msg)?;
    let started = d
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(msg)?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err("the engine did not attach the terminal".into());
    };
    let sid = app.streams.id();
    app.streams.add_terminal(sid, exec.id.clone(), input).await;
    let _ = d
        .resize_exec(
            &exec.id,
            bollard::exec::ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await;
    let task = tokio::spawn(async move {
        while let Some(Ok(out)) = output.next().await {
            if on_output.send(out.into_bytes().to_vec()).is_err() {
                break;
            }
        }
    });
    app.streams.track(sid, task.abort_handle());
    Ok(sid)
}

#[tauri::command]
pub async fn exec_input(app: State<'_, App>, id: u64, data: String) -> Res<()> {
    app.streams.write(id, data.as_bytes()).await
}

#[tauri::command]
pub async fn exec_resize(app: State<'_, App>, id: u64, cols: u16, rows: u16) -> Res<()> {
    let exec = app
        .streams
        .exec_id(id)
        .await
        .ok_or("the terminal has ended")?;
    docker(&app)?
        .resize_exec(
            &exec,
            bollard::exec::ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await
        .map_err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_the_cli() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/bb"),
            ("127.0.0.1:5000/bb".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/bb:v2"),
            ("127.0.0.1:5000/bb".into(), Some("v2".into()))
        );
        assert_eq!(split_reference("bb@sha256:ab").1, None);
    }
}

/// What the first-run flow shows once the tutorial runs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TutorialStarted {
    /// The `docker run` a user would type for it.
    pub command: String,
    pub url: String,
    /// It was running already (or only needed a start).
    pub already: bool,
}

/// The host port published for the tutorial's port 80, from an inspect.
fn tutorial_port(c: &bollard::models::ContainerInspectResponse) -> Option<u16> {
    let key = format!("{}/tcp", berth::tutorial::CONTAINER_PORT);
    c.network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(&key)?
        .as_ref()?
        .iter()
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

/// Runs the getting-started tutorial as `berth tutorial` does: the named container
/// from the preloaded image with its port published (started again if it exists).
#[tauri::command]
pub async fn start_tutorial(app: State<'_, App>) -> Res<TutorialStarted> {
    use berth::tutorial as t;
    let d = docker(&app)?;
    let existing = d
        .inspect_container(t::CONTAINER, None::<q::InspectContainerOptions>)
        .await
        .ok();
    if let Some(c) = existing {
        let running = c.state.as_ref().and_then(|s| s.running) == Some(true);
        if !running {
            d.start_container(t::CONTAINER, None::<q::StartContainerOptions>)
                .await
                .map_err(msg)?;
        }
        let c = d
            .inspect_container(t::CONTAINER, None::<q::InspectContainerOptions>)
            .await
            .map_err(msg)?;
        let port = tutorial_port(&c).ok_or("the tutorial container publishes no port")?;
        return Ok(TutorialStarted {
            command: t::command(port),
            url: t::url(port),
            already: true,
        });
    }
    if d.inspect_image(t::IMAGE).await.is_err() {
        return Err(format!(
            "{} is not in this engine: it is loaded on an engine's first start from \
             Berth's VM image or package",
            t::IMAGE
        ));
    }
    let port = t::pick_port();
    let container_port = format!("{}/tcp", t::CONTAINER_PORT);
    let body = ContainerCreateBody {
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
    };
    d.create_container(
        Some(q::CreateContainerOptions {
            name: Some(t::CONTAINER.to_string()),
            ..Default::default()
        }),
        body,
    )
    .await
    .map_err(msg)?;
    d.start_container(t::CONTAINER, None::<q::StartContainerOptions>)
        .await
        .map_err(msg)?;
    Ok(TutorialStarted {
        command: t::command(port),
        url: t::url(port),
        already: false,
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
