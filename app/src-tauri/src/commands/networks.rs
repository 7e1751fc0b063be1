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

/// `docker network create [--subnet S] [--internal] NAME` (bridge driver).
#[tauri::command]
pub async fn create_network(
    app: State<'_, App>,
    name: String,
    subnet: String,
    internal: bool,
) -> Res<()> {
    let subnet = subnet.trim();
    let ipam = (!subnet.is_empty()).then(|| bollard::models::Ipam {
        config: Some(vec![bollard::models::IpamConfig {
            subnet: Some(subnet.to_string()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    docker(&app)?
        .create_network(bollard::models::NetworkCreateRequest {
            name: name.trim().to_string(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            ipam,
            ..Default::default()
        })
        .await
        .map_err(msg)?;
    Ok(())
}

/// `docker network rm`: the engine refuses a network containers still use,
/// and its built-in ones, with its own message.
#[tauri::command]
pub async fn remove_network(app: State<'_, App>, id: String) -> Res<()> {
    docker(&app)?.remove_network(&id).await.map_err(msg)
}
