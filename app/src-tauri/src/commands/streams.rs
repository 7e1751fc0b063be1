//! Ending a stream a page opened (logs, stats, events, a terminal) by the id
//! its command returned.

use tauri::State;

use super::{App, Res};

#[tauri::command]
pub async fn stop_stream(app: State<'_, App>, id: u64) -> Res<()> {
    app.streams.stop(id).await;
    Ok(())
}
