//! Engine events over a channel, so lists refresh when something changes
//! instead of polling. Every page shares the app's one events stream
//! (`crate::watch`).

use tauri::ipc::Channel;
use tauri::State;
use tokio::sync::broadcast::error::RecvError;

use super::{App, Res};

/// Each event as `TYPE ACTION` (`container start`); the page only needs to
/// know that something changed.
#[tauri::command]
pub async fn watch_events(app: State<'_, App>, on_event: Channel<String>) -> Res<u64> {
    let mut events = app.engine.follow_events();
    Ok(app.streams.spawn(async move {
        loop {
            let what = match events.recv().await {
                Ok(what) => what,
                // Missed some: any event makes the page reload its list.
                Err(RecvError::Lagged(_)) => "resync".to_string(),
                Err(RecvError::Closed) => break,
            };
            if on_event.send(what).is_err() {
                break;
            }
        }
    }))
}
