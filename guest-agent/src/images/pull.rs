//! Pulling an image from a registry (OCI distribution spec) into the store.
//!
//! `oci-client` does the protocol: auth challenges (anonymous, Bearer token, Basic),
//! manifest negotiation, digest-verified blob streams. Its convenience `pull()` holds every
//! layer in memory, so we drive it step by step instead: manifests and the config are
//! small and fetched whole; each layer is streamed straight into a decompressor and the
//! tar unpacker on a blocking thread, hashed on the way (compressed digest by the
//! client's verifying stream, diff_id by us), and committed only when both match.

use std::io::{self, Read};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    OciDescriptor, OciImageIndex, OciImageManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::catalog::ImageRecord;
use super::config::ConfigFile;
use super::digest::{hex_of, short};
use super::layers::{LayerStore, PendingLayer};
use super::reference::ImageRef;
use super::unpack::{unpack_layer, UnpackStats};
use super::{ImageError, ImageService, Platform};

/// Layers fetched at once, as dockerd's default `max-concurrent-downloads`.
const CONCURRENT_LAYERS: usize = 3;
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
const ACCEPT: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// One line of pull progress, as `docker pull` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

impl Progress {
    pub(super) fn line(id: Option<&str>, status: impl Into<String>) -> Self {
        Progress {
            id: id.map(str::to_string),
            status: status.into(),
            current: None,
            total: None,
        }
    }
}

/// Credentials for one registry, as the client sent them (`X-Registry-Auth`).
#[derive(Debug, Clone, Default)]
pub struct RegistryCredentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub registry_token: Option<String>,
}

impl RegistryCredentials {
    pub(super) fn to_auth(&self) -> RegistryAuth {
        if let Some(t) = self.registry_token.as_ref().filter(|t| !t.is_empty()) {
            return RegistryAuth::Bearer(t.clone());
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => RegistryAuth::Basic(u.clone(), p.clone()),
            _ => RegistryAuth::Anonymous,
        }
    }
}

/// Feeds the blocking unpacker from the async download, chunk by chunk.
struct ChannelReader {
    rx: std_mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Hashes everything read through it: the diff_id is the sha256 of the uncompressed tar.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Decompresses (by magic number: gzip, zstd or plain tar), unpacks, and returns the
/// diff_id. Trailing bytes after the tar's end marker are read too: they are part of
/// the diff_id and of the compressed digest.
fn unpack_stream(
    reader: ChannelReader,
    dest: &std::path::Path,
) -> Result<(String, UnpackStats), ImageError> {
    unpack_file(reader, dest)
}

/// The same for any reader (a layer file of a `docker load` archive).
pub(super) fn unpack_file(
    reader: impl Read,
    dest: &std::path::Path,
) -> Result<(String, UnpackStats), ImageError> {
    let mut reader = io::BufReader::with_capacity(256 * 1024, reader);
    let magic = {
        use io::BufRead;
        let buf = reader
            .fill_buf()
            .map_err(super::unpack::UnpackError::Read)?;
        buf.get(..4).map(|m| m.to_vec()).unwrap_or_default()
    };
    let decoded: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(super::unpack::UnpackError::Read)?,
        )
    } else {
        Box::new(reader)
    };
    let mut hashing = HashingReader {
        inner: decoded,
        hash: Sha256::new(),
    };
    let stats = unpack_layer(&mut hashing, dest)?;
    io::copy(&mut hashing, &mut io::sink()).map_err(super::unpack::UnpackError::Read)?;
    Ok((
        format!("sha256:{}", hex::encode(hashing.hash.finalize())),
        stats,
    ))
}

pub(super) fn registry_error(r: &ImageRef, e: OciDistributionError) -> ImageError {
    let repo = r.familiar_name();
    let denied = || {
        ImageError::Unauthorized(format!(
            "pull access denied for {repo}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        ))
    };
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let first = envelope.errors.first();
            let msg = first.map(|e| e.message.clone()).unwrap_or_default();
            match first.map(|e| &e.code) {
                Some(OciErrorCode::ManifestUnknown) | Some(OciErrorCode::NotFound) => {
                    ImageError::RegistryNotFound(format!(
                        "manifest for {r} not found: manifest unknown: {msg}"
                    ))
                }
                Some(OciErrorCode::NameUnknown) => ImageError::RegistryNotFound(format!(
                    "repository {repo} not found: name unknown: {msg}"
                )),
                // moby turns DENIED into "pull access denied" and shows any other
                // registry error as its code and message, as distribution prints
                // it: "unauthorized: authentication required".
                Some(OciErrorCode::Denied) => denied(),
                Some(OciErrorCode::Unauthorized) => ImageError::Unauthorized(format!(
                    "unauthorized: {}",
                    if msg.is_empty() {
                        "authentication required"
                    } else {
                        msg.trim()
                    }
                )),
                _ => ImageError::Registry(format!("error from registry: {msg}")),
            }
        }
        OciDistributionError::UnauthorizedError { .. } => {
            ImageError::Unauthorized("unauthorized: authentication required".into())
        }
        OciDistributionError::AuthenticationFailure(m) => {
            ImageError::Unauthorized(format!("unauthorized: {}", m.trim()))
        }
        OciDistributionError::ImageManifestNotFoundError(m) => {
            ImageError::RegistryNotFound(format!("manifest for {r} not found: {m}"))
        }
        OciDistributionError::ServerError { code: 404, .. } => {
            ImageError::RegistryNotFound(format!("manifest for {r} not found: manifest unknown"))
        }
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => denied(),
        OciDistributionError::DigestError(d) => {
            ImageError::Corrupt(format!("filesystem layer verification failed: {d}"))
        }
        OciDistributionError::RequestError(e) => ImageError::Registry(request_error(&e)),
        other => ImageError::Registry(other.to_string()),
    }
}

/// dockerd's shape for transport failures: `Get "URL": <root cause>` (reqwest's own
/// Display hides the cause behind "error sending request").
pub(super) fn request_error(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = match root.downcast_ref::<io::Error>().map(io::Error::kind) {
        Some(io::ErrorKind::ConnectionRefused) => "connect: connection refused".to_string(),
        Some(io::ErrorKind::TimedOut) => "i/o timeout".to_string(),
        _ => root.to_string(),
    };
    match e.url() {
        Some(url) => format!("Get \"{url}\": {cause}"),
        None => cause,
    }
}

/// What the first registry round trip found; after this point the pull streams progress.
pub struct Resolved {
    client: Client,
    reference: ImageRef,
    top_digest: String,
    top_bytes: Bytes,
    /// The platform manifest when the top level is an index.
    manifest_bytes: Option<(String, Bytes)>,
    /// `--platform`, when the client gave one.
    requested: Option<Platform>,
}

impl Resolved {
    /// The top-level manifest (or index) as a descriptor: media type, digest, size.
    pub fn descriptor(&self) -> (String, String, u64) {
        let media_type = serde_json::from_slice::<serde_json::Value>(&self.top_bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| "application/vnd.docker.distribution.manifest.v2+json".into());
        (
            media_type,
            self.top_digest.clone(),
            self.top_bytes.len() as u64,
        )
    }

    /// The platforms an index lists (none for a single manifest).
    pub fn index_platforms(&self) -> Vec<Platform> {
        let v: serde_json::Value = serde_json::from_slice(&self.top_bytes).unwrap_or_default();
        v["manifests"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let p = &m["platform"];
                        Some(Platform {
                            os: p["os"].as_str()?.to_string(),
                            architecture: p["architecture"].as_str()?.to_string(),
                            variant: p["variant"].as_str().map(str::to_string),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl ImageService {
    /// Pulls an image for a build's base, with no one reading the progress.
    pub async fn pull_quietly(
        &self,
        reference: &ImageRef,
        creds: &RegistryCredentials,
    ) -> Result<(), ImageError> {
        let resolved = self.resolve_remote(reference, None, creds).await?;
        let (tx, mut rx) = mpsc::channel(64);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let pulled = self.pull_resolved(resolved, &tx).await;
        drop(tx);
        let _ = drain.await;
        pulled
    }

    /// A registry client for `reference`'s registry: plain HTTP only where allowed.
    pub(super) fn registry_client(&self, reference: &ImageRef) -> Client {
        let protocol = if self.allows_plain_http(reference.registry()) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        Client::new(ClientConfig {
            protocol,
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(15)),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }

    /// Contacts the registry and resolves `reference` to one platform manifest. Errors
    /// here (bad name, unknown tag, no access) are returned before any progress is sent,
    /// so the API can answer them with a plain status code as dockerd does.
    pub async fn resolve_remote(
        &self,
        reference: &ImageRef,
        platform: Option<&Platform>,
        creds: &RegistryCredentials,
    ) -> Result<Resolved, ImageError> {
        let client = self.registry_client(reference);
        let auth = creds.to_auth();
        let wire = reference.wire();
        let oci = &*wire;
        let (top_bytes, top_digest) = client
            .pull_manifest_raw(oci, &auth, ACCEPT)
            .await
            .map_err(|e| registry_error(reference, e))?;
        let want = platform.cloned().unwrap_or_else(|| self.platform.clone());
        let manifest_bytes = if is_index(&top_bytes) {
            let index: OciImageIndex = serde_json::from_slice(&top_bytes)
                .map_err(|e| ImageError::Registry(format!("invalid image index: {e}")))?;
            let entry = want.select(&index.manifests).ok_or_else(|| {
                ImageError::RegistryNotFound(format!(
                    "no matching manifest for {want} in the manifest list entries"
                ))
            })?;
            let child = oci.clone_with_digest(entry.digest.clone());
            let (bytes, digest) = client
                .pull_manifest_raw(&child, &auth, ACCEPT)
                .await
                .map_err(|e| registry_error(reference, e))?;
            Some((digest, bytes))
        } else {
            None
        };
        Ok(Resolved {
            client,
            reference: reference.clone(),
            top_digest,
            top_bytes,
            manifest_bytes,
            requested: platform.cloned(),
        })
    }

    /// Downloads and unpacks what `resolve_remote` found, reporting progress on `tx`.
    pub async fn pull_resolved(
        &self,
        resolved: Resolved,
        tx: &mpsc::Sender<Progress>,
    ) -> Result<(), ImageError> {
        let r = &resolved.reference;
        let send = |p: Progress| {
            let tx = tx.clone();
            async move {
                // A client that hung up does not cancel the pull: the image still lands.
                let _ = tx.send(p).await;
            }
        };
        send(Progress::line(
            Some(r.tag_or_digest()),
            format!("Pulling from {}", r.repository()),
        ))
        .await;

        let (manifest_digest, manifest_bytes) = match &resolved.manifest_bytes {
            Some((d, b)) => (d.clone(), b.clone()),
            None => (resolved.top_digest.clone(), resolved.top_bytes.clone()),
        };
        let manifest = parse_manifest(&manifest_bytes)?;
        hex_of(&manifest.config.digest)?;
        let mut config_bytes = Vec::new();
        resolved
            .client
            .pull_blob(&r.wire(), &manifest.config, &mut config_bytes)
            .await
            .map_err(|e| registry_error(r, e))?;
        let config: ConfigFile = serde_json::from_slice(&config_bytes)
            .map_err(|e| ImageError::Registry(format!("invalid image config: {e}")))?;
        if let Some(want) = resolved
            .requested
            .as_ref()
            .filter(|w| resolved.manifest_bytes.is_none() && !platform_ok(w, &config))
        {
            return Err(ImageError::Platform(format!(
                "image with reference {r} was found but its platform ({}/{}) does not match the specified platform ({want})",
                config.os, config.architecture
            )));
        }
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Corrupt(format!(
                "invalid image: the manifest has {} layers but the config lists {}",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        for d in &diff_ids {
            hex_of(d)?;
        }
        let image_id = manifest.config.digest.clone();

        let mut todo = Vec::new();
        for (desc, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            let id = short(&desc.digest).to_string();
            if self.layers.exists(diff_id) {
                send(Progress::line(Some(&id), "Already exists")).await;
            } else {
                send(Progress::line(Some(&id), "Pulling fs layer")).await;
                todo.push((desc.clone(), diff_id.clone()));
            }
        }
        let layers = &self.layers;
        let blobs = &self.blobs;
        let client = &resolved.client;
        futures_util::stream::iter(todo.into_iter().map(|(desc, diff_id)| {
            let tx = tx.clone();
            async move { fetch_layer(client, r, &desc, &diff_id, layers, blobs, &tx).await }
        }))
        .buffer_unordered(CONCURRENT_LAYERS)
        .try_collect::<Vec<()>>()
        .await?;

        // Blobs first, catalog last: the catalog entry is the commit point.
        let mut blobs: Vec<(&str, &[u8])> = vec![
            (&image_id, &config_bytes),
            (&manifest_digest, &manifest_bytes),
        ];
        if resolved.manifest_bytes.is_some() {
            blobs.push((&resolved.top_digest, &resolved.top_bytes));
        }
        self.blobs.put_all(&blobs)?;
        let size = diff_ids.iter().map(|d| self.layers.size(d)).sum();
        let record = ImageRecord {
            id: image_id,
            diff_ids,
            size,
            manifest_digest: Some(manifest_digest),
            last_tag_time: None,
            parent: None,
        };
        let changed = self.register(record, r, &resolved.top_digest)?;
        send(Progress::line(
            None,
            format!("Digest: {}", resolved.top_digest),
        ))
        .await;
        let status = if changed {
            format!("Status: Downloaded newer image for {r}")
        } else {
            format!("Status: Image is up to date for {r}")
        };
        send(Progress::line(None, status)).await;
        Ok(())
    }
}

/// Whether an image with `config` runs as `want` (no OS: an old image, taken as any).
fn platform_ok(want: &Platform, config: &ConfigFile) -> bool {
    config.os.is_empty()
        || want.matches(&config.os, &config.architecture, config.variant.as_deref())
}

fn is_index(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => match p.media_type.as_deref() {
            Some(OCI_IMAGE_INDEX_MEDIA_TYPE) | Some(IMAGE_MANIFEST_LIST_MEDIA_TYPE) => true,
            Some(_) => false,
            None => p.manifests.is_some(),
        },
        Err(_) => false,
    }
}

fn parse_manifest(bytes: &[u8]) -> Result<OciImageManifest, ImageError> {
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u8>,
    }
    let v: Version = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Registry(format!("invalid manifest: {e}")))?;
    if v.schema_version != Some(2) {
        return Err(ImageError::Registry(
            "unsupported manifest schema version: Docker image format v1 and Docker image manifest version 2, schema 1 support has been removed".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Registry(format!("invalid manifest: {e}")))
}

async fn fetch_layer(
    client: &Client,
    r: &ImageRef,
    desc: &OciDescriptor,
    diff_id: &str,
    layers: &LayerStore,
    blobs: &super::blobs::BlobStore,
    tx: &mpsc::Sender<Progress>,
) -> Result<(), ImageError> {
    let id = short(&desc.digest).to_string();
    hex_of(&desc.digest)?;
    let mut blob = client
        .pull_blob_stream(&r.wire(), desc)
        .await
        .map_err(|e| registry_error(r, e))?;
    let total = blob
        .content_length
        .or_else(|| u64::try_from(desc.size).ok());
    let pending: PendingLayer = layers.begin()?;
    let dest = pending.diff_dir();
    let (chunk_tx, chunk_rx) = std_mpsc::sync_channel::<io::Result<Bytes>>(64);
    let unpacker = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: chunk_rx,
            cur: Bytes::new(),
        };
        let result = unpack_stream(reader, &dest);
        (pending, result)
    });

    // The compressed bytes are kept too (push and save send them as they came); the
    // client's stream checks their digest, so a finished download is the blob.
    let kept = layers.scratch("blob");
    // Removes the kept copy on every early return (after adoption it is gone anyway).
    struct Discard(std::path::PathBuf);
    impl Drop for Discard {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _discard = Discard(kept.clone());
    let mut keep = tokio::fs::File::create(&kept)
        .await
        .map(|f| tokio::io::BufWriter::with_capacity(256 * 1024, f))
        .map_err(ImageError::io("keeping the layer blob"))?;
    let mut current = 0u64;
    let mut last = Instant::now() - PROGRESS_EVERY;
    let mut download_error = None;
    let mut keep_error = None;
    while let Some(chunk) = blob.stream.next().await {
        match chunk {
            Ok(bytes) => {
                current += bytes.len() as u64;
                if keep_error.is_none() {
                    use tokio::io::AsyncWriteExt;
                    if let Err(e) = keep.write_all(&bytes).await {
                        keep_error = Some(e);
                    }
                }
                if chunk_tx.send(Ok(bytes)).is_err() {
                    break; // the unpacker stopped; its error explains why
                }
                if last.elapsed() >= PROGRESS_EVERY {
                    last = Instant::now();
                    let _ = tx
                        .send(Progress {
                            id: Some(id.clone()),
                            status: "Downloading".into(),
                            current: Some(current),
                            total,
                        })
                        .await;
                }
            }
            Err(e) => {
                let _ = chunk_tx.send(Err(io::Error::other(e.to_string())));
                download_error = Some(e);
                break;
            }
        }
    }
    drop(chunk_tx);
    let (pending, result) = unpacker
        .await
        .map_err(|e| ImageError::Corrupt(format!("layer unpacker failed: {e}")))?;
    if let Some(e) = download_error {
        // The verifying stream ends with an error when the digest does not match.
        let msg = e.to_string();
        return Err(if msg.contains("digest") || msg.contains("Digest") {
            ImageError::Corrupt(format!(
                "filesystem layer verification failed for digest {}: {msg}",
                desc.digest
            ))
        } else {
            ImageError::Registry(format!("error pulling layer {}: {msg}", desc.digest))
        });
    }
    let (actual_diff_id, stats) = result?;
    let _ = tx
        .send(Progress::line(Some(&id), "Verifying Checksum"))
        .await;
    let _ = tx
        .send(Progress::line(Some(&id), "Download complete"))
        .await;
    if actual_diff_id != diff_id {
        return Err(ImageError::Corrupt(format!(
            "layer {} has diff_id {actual_diff_id}, but the image config says {diff_id}",
            desc.digest
        )));
    }
    layers.commit(pending, diff_id, stats.size)?;
    let kept_ok = match keep_error {
        None => {
            use tokio::io::AsyncWriteExt;
            keep.flush().await.is_ok() && keep.get_ref().sync_all().await.is_ok()
        }
        Some(_) => false,
    };
    drop(keep);
    if kept_ok && blobs.adopt(&desc.digest, &kept).is_ok() {
        layers.set_blob(
            diff_id,
            &super::layers::BlobRef {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                size: current,
            },
        )?;
    } else {
        let _ = std::fs::remove_file(&kept);
    }
    let _ = tx.send(Progress::line(Some(&id), "Pull complete")).await;
    Ok(())
}
