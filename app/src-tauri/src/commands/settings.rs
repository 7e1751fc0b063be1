//! The Settings page: Berth's settings file, and whether the `docker` CLI in a
//! new terminal talks to this app's engine (`berth install` / `uninstall`).

use serde::Serialize;

use super::Res;

#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    #[cfg_attr(test, ts(type = "Settings"))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
