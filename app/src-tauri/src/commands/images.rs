//! The Images page: the list, pulls with their progress, removal and prune.

use bollard::query_parameters as q;
use futures_util::StreamExt;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use super::{docker, msg, App, Res};
use crate::model::{self, ImageRow};

#[tauri::command]
pub async fn list_images(app: State<'_, App>) -> Res<Vec<ImageRow>> {
    let d = docker(&app)?;
    let all = q::ListContainersOptions {
        all: true,
        ..Default::default()
    };
    let (images, containers) = tokio::try_join!(
        d.list_images(None::<q::ListImagesOptions>),
        d.list_containers(Some(all)),
    )
    .map_err(msg)?;
    Ok(model::image_rows(&images, &containers))
}

#[tauri::command]
pub async fn remove_image(app: State<'_, App>, id: String) -> Res<()> {
    docker(&app)?
        .remove_image(&id, None::<q::RemoveImageOptions>, None)
        .await
        .map(drop)
        .map_err(msg)
}

#[tauri::command]
pub async fn prune_images(app: State<'_, App>) -> Res<i64> {
    let r = docker(&app)?
        .prune_images(None::<q::PruneImagesOptions>)
        .await
        .map_err(msg)?;
    Ok(r.space_reclaimed.unwrap_or(0))
}

/// One line of pull progress, per layer.
#[derive(Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PullEvent {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<i64>,
    pub total: Option<i64>,
}

#[tauri::command]
pub async fn pull_image(
    app: State<'_, App>,
    reference: String,
    on_progress: Channel<PullEvent>,
) -> Res<()> {
    let (image, tag) = split_reference(&reference);
    let mut stream = docker(&app)?.create_image(
        Some(q::CreateImageOptions {
            from_image: Some(image),
            tag,
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = stream.next().await {
        let info = item.map_err(msg)?;
        let detail = info.progress_detail.unwrap_or_default();
        let _ = on_progress.send(PullEvent {
            id: info.id,
            status: info.status.unwrap_or_default(),
            current: detail.current,
            total: detail.total,
        });
    }
    Ok(())
}

/// `name[:tag]`, where a registry's `host:port/` is not a tag.
fn split_reference(r: &str) -> (String, Option<String>) {
    if r.contains('@') {
        return (r.to_string(), None);
    }
    match r.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), Some(tag.to_string())),
        _ => (r.to_string(), Some("latest".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_the_cli() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/bb"),
            ("127.0.0.1:5000/bb".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/bb:v2"),
            ("127.0.0.1:5000/bb".into(), Some("v2".into()))
        );
        assert_eq!(split_reference("bb@sha256:ab").1, None);
    }
}
