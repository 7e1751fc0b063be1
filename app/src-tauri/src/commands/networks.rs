//! The Networks page: the engine's networks, by name.

use bollard::query_parameters as q;
use tauri::State;

use super::{docker, msg, App, Res};
use crate::model::{self, NetworkRow};

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
