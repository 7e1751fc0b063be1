//! `docker push`: the layers as the blobs they were pulled or committed as (so their
//! digests are the manifest's), skipped when the registry already has them, mounted
//! from another repository of the same registry when the image came from there, and
//! streamed from disk; then the config and the manifest. Progress uses dockerd's words.

use bytes::Bytes;
use oci_client::RegistryOperation;
use tokio::sync::mpsc;

use super::digest::short;
use super::pull::{registry_error, Progress, RegistryCredentials};
use super::reference::ImageRef;
use super::{ImageError, ImageService};

const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Streams a file in chunks, for the client's streaming upload.
fn file_stream(
    path: std::path::PathBuf,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(None::<tokio::fs::File>, move |f| {
        let path = path.clone();
        async move {
            use tokio::io::AsyncReadExt;
            let mut f = match f {
                Some(f) => f,
                None => match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => {
                        return Some((
                            Err(oci_client::errors::OciDistributionError::IoError(e)),
                            None,
                        ))
                    }
                },
            };
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((
                    Err(oci_client::errors::OciDistributionError::IoError(e)),
                    None,
                )),
            }
        }
    })
}

impl ImageService {
    /// [`ImageService::push`] with nobody reading the progress (a build's exporter), as
    /// `pull_quietly` pulls.
    pub async fn push_quietly(
        &self,
        reference: &ImageRef,
        creds: &RegistryCredentials,
    ) -> Result<(), ImageError> {
        let (tx, mut rx) = mpsc::channel(64);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let pushed = self.push(reference, creds, &tx).await;
        drop(tx);
        let _ = drain.await;
        pushed
    }

    /// Pushes `reference` (a local tag); reports progress on `tx`. Errors before any
    /// upload (unknown image, missing blobs) come back without progress.
    pub async fn push(
        &self,
        reference: &ImageRef,
        creds: &RegistryCredentials,
        tx: &mpsc::Sender<Progress>,
    ) -> Result<(), ImageError> {
        let send = |p: Progress| async {
            let _ = tx.send(p).await;
        };
        let id = self.resolve(&reference.to_string())?;
        let rec = self
            .catalog()
            .data
            .images
            .get(&id)
            .cloned()
            .ok_or_else(|| ImageError::NotFound(reference.to_string()))?;
        let config = self.blobs.get(&id)?;
        let layers = self.layer_blobs(&rec.diff_ids, &reference.to_string(), "push")?;
        let manifest = super::archive::manifest_for(&config, &layers);

        send(Progress::line(
            None,
            format!(
                "The push refers to repository [{}]",
                reference.familiar_name()
            ),
        ))
        .await;
        for l in layers.iter().rev() {
            send(Progress::line(Some(short(&l.digest)), "Preparing")).await;
        }
        let client = self.registry_client(reference);
        let wire = reference.wire();
        let oci = &*wire;
        client
            .auth(oci, &creds.to_auth(), RegistryOperation::Push)
            .await
            .map_err(|e| registry_error(reference, e))?;
        for (l, diff_id) in layers.iter().zip(&rec.diff_ids).rev() {
            let sid = short(&l.digest).to_string();
            if client.blob_exists(oci, &l.digest).await.unwrap_or(false) {
                send(Progress::line(Some(&sid), "Layer already exists")).await;
                continue;
            }
            // Another repository of the same registry with an image holding this layer:
            // mount the blob from there instead of uploading it.
            if let Some(from) = self.sibling_repo(diff_id, reference) {
                if client
                    .mount_blob(oci, &from.wire(), &l.digest)
                    .await
                    .is_ok()
                    && client.blob_exists(oci, &l.digest).await.unwrap_or(false)
                {
                    send(Progress::line(
                        Some(&sid),
                        format!("Mounted from {}", from.repository()),
                    ))
                    .await;
                    continue;
                }
            }
            send(Progress {
                id: Some(sid.clone()),
                status: "Pushing".into(),
                current: Some(0),
                total: Some(l.size),
            })
            .await;
            let path = self.blobs.file(&l.digest)?;
            client
                .push_blob_stream(oci, file_stream(path), &l.digest, Some(l.size))
                .await
                .map_err(|e| registry_error(reference, e))?;
            send(Progress::line(Some(&sid), "Pushed")).await;
        }
        if !client.blob_exists(oci, &id).await.unwrap_or(false) {
            client
                .push_blob(oci, config.clone(), &id)
                .await
                .map_err(|e| registry_error(reference, e))?;
        }
        let size = manifest.len();
        let digest = super::digest::sha256(&manifest);
        client
            .push_manifest_raw(
                oci,
                manifest.clone(),
                hyper::header::HeaderValue::from_static(MANIFEST_V2),
            )
            .await
            .map_err(|e| registry_error(reference, e))?;
        self.blobs.put(&digest, &manifest)?;
        self.add_repo_digest(&id, reference, &digest)?;
        send(Progress::line(
            None,
            format!(
                "{}: digest: {digest} size: {size}",
                reference.tag().unwrap_or("latest")
            ),
        ))
        .await;
        Ok(())
    }

    /// A repository on the same registry known to hold layer `diff_id` (an image with
    /// it was pulled from or pushed there).
    fn sibling_repo(&self, diff_id: &str, target: &ImageRef) -> Option<ImageRef> {
        let cat = self.catalog();
        cat.data
            .digests
            .iter()
            .chain(cat.data.tags.iter())
            .filter(|(_, id)| {
                cat.data
                    .images
                    .get(id.as_str())
                    .is_some_and(|r| r.diff_ids.iter().any(|d| d == diff_id))
            })
            .filter_map(|(k, _)| ImageRef::parse(k).ok())
            .find(|r| r.registry() == target.registry() && r.repository() != target.repository())
    }

    fn add_repo_digest(&self, id: &str, r: &ImageRef, digest: &str) -> Result<(), ImageError> {
        let mut cat = self.catalog();
        cat.data
            .digests
            .insert(super::full_digested(&r.with_digest(digest)), id.to_string());
        cat.save()
    }
}
