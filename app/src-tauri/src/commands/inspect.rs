//! The detail views' raw document: `docker inspect` of a container or network.

use bollard::query_parameters as q;
use tauri::State;

use super::{docker, msg, App, Res};

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
