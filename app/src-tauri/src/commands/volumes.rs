//! The Volumes page: volumes with the containers that use them, create, remove.

use bollard::query_parameters as q;
use tauri::State;

use super::{docker, msg, App, Res};
use crate::model::{self, VolumeRow};

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
