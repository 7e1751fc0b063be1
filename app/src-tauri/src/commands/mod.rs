//! The webview's commands, one module per page or stream: each parses its
//! arguments, calls the engine through bollard (or the `berth` library), and
//! returns the engine's own message on failure so the page can show it. The
//! list the webview may call is declared once, in `command_list.rs`.

use std::collections::HashMap;

use bollard::Docker;
use tauri::State;

use crate::model;
use crate::streams::Streams;

pub mod app;
pub mod builds;
pub mod containers;
pub mod disk;
pub mod events;
pub mod images;
pub mod inspect;
pub mod logs;
pub mod networks;
pub mod settings;
pub mod stats;
pub mod streams;
pub mod terminal;
pub mod troubleshoot;
pub mod vm;
pub mod volumes;
pub mod welcome;

/// What every command shares: the engine client, its watcher and the open
/// streams.
pub struct App {
    pub docker: Result<Docker, String>,
    pub engine: std::sync::Arc<crate::watch::EngineWatch>,
    pub streams: Streams,
    /// The last CPU counters seen per container, for `list_usage`.
    pub usage: std::sync::Mutex<HashMap<String, model::CpuCounters>>,
}

/// The webview shows the error text as it is, so commands fail with a string.
pub type Res<T> = Result<T, String>;

/// The engine client, or why there is none (the app still opens without one).
fn docker<'a>(app: &'a State<'_, App>) -> Res<&'a Docker> {
    app.docker.as_ref().map_err(|e| e.clone())
}

/// The engine's own message when it gave one, not bollard's wrapping of it.
fn msg(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}
