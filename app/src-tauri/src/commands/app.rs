//! The window itself: whether the engine answers (the status bar), the first
//! paint, and handing a published port's link to the browser.

use tauri::State;

use super::{App, Res};
use crate::engine::EngineStatus;
use crate::model;

#[tauri::command]
pub async fn engine_status(app: State<'_, App>) -> Res<EngineStatus> {
    // The watcher's view: asking costs the engine nothing.
    Ok(app.engine.status())
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
    // The opener's own error names the launcher and its exit status
    // (`Launcher "gio" "open" … ExitStatus(…)`), which says nothing to a user
    // whose machine has no browser set up.
    app.opener().open_url(&url, None::<&str>).map_err(|e| {
        tracing::debug!(error = %e, "opening a port link");
        format!(
            "No web browser could be opened for {url}. Open that address in a browser yourself."
        )
    })
}
