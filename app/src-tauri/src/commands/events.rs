//! Engine events over a channel, so lists refresh when something changes
//! instead of polling.

use bollard::query_parameters as q;
use futures_util::StreamExt;
use tauri::ipc::Channel;
use tauri::State;

use super::{docker, App, Res};

/// Each event as `TYPE ACTION` (`container start`); the page only needs to
/// know that something changed.
#[tauri::command]
pub async fn watch_events(app: State<'_, App>, on_event: Channel<String>) -> Res<u64> {
    let d = docker(&app)?.clone();
    Ok(app.streams.spawn(async move {
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
    }))
}
