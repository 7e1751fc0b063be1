//! New images from a container's changes (`docker commit`, and later each step of a
//! build): the changes are packed into a gzip layer blob while both digests are
//! computed, the same tar is unpacked into the layer store (so the new layer is exactly
//! what a pull of it would give), then config, manifest and catalog entry follow; the
//! catalog entry is the commit point, as for pulls.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bollard_stubs::models::ImageConfig;
use sha2::{Digest, Sha256};

use super::catalog::ImageRecord;
use super::config::{ConfigFile, History};
use super::layers::BlobRef;
use super::{ImageError, ImageService};

const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What `docker commit` asks for.
pub struct CommitRequest {
    /// The container's image.
    pub parent: String,
    /// The container's overlay upper directory (unused without `new_layer`).
    pub upper: PathBuf,
    pub config: ImageConfig,
    pub author: Option<String>,
    pub comment: Option<String>,
    /// The history line (dockerd puts the container's command there).
    pub created_by: String,
    /// Metadata-only instructions since the last layer (a build's), recorded as
    /// `empty_layer` entries before this commit's own.
    pub empty_before: Vec<String>,
    /// False: no layer is added (the changes are config only) and this commit's own
    /// entry is `empty_layer` too.
    pub new_layer: bool,
    /// The comment on the history entries (BuildKit's builds have one), when it is
    /// not the image's `comment`.
    pub history_comment: Option<String>,
    /// A build's intermediate step: the catalog entry is kept in memory until the
    /// build's end saves it ([`ImageService::flush`]), instead of a catalog write
    /// (two fsyncs) on every step's critical path.
    pub save_later: bool,
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn digest_of(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl ImageService {
    /// Packs `upper` into a new layer on top of `parent`; returns the new image id.
    pub fn commit(&self, req: CommitRequest) -> Result<String, ImageError> {
        let (parent_id, parent_cfg) = self.config(&req.parent)?;
        let parent_layers = self
            .catalog()
            .data
            .images
            .get(&parent_id)
            .map(|r| r.diff_ids.clone())
            .ok_or_else(|| ImageError::NotFound(req.parent.clone()))?;
        let upper = req.upper.as_path();
        let layer = if req.new_layer {
            Some(self.pack_layer(
                |w| super::difftar::write(upper, w),
                "packing the container's changes",
            )?)
        } else {
            None
        };

        let mut cfg: ConfigFile = (*parent_cfg).clone();
        let created = crate::clock::now();
        cfg.created = Some(created.clone());
        cfg.author = req.author.clone().filter(|a| !a.is_empty());
        cfg.comment = req.comment.clone().filter(|c| !c.is_empty());
        cfg.config = Some(req.config);
        cfg.docker_version = Some(crate::VERSION.to_string());
        cfg.rootfs.typ = "layers".into();
        cfg.rootfs.diff_ids = parent_layers.clone();
        if let Some((diff_id, _, _)) = &layer {
            cfg.rootfs.diff_ids.push(diff_id.clone());
        }
        let comment = req.history_comment.clone().or_else(|| cfg.comment.clone());
        let entry = |created_by: String, empty_layer: bool| History {
            created: Some(created.clone()),
            created_by: Some(created_by),
            author: cfg.author.clone(),
            comment: comment.clone(),
            empty_layer,
        };
        let mut entries: Vec<History> = req
            .empty_before
            .iter()
            .map(|c| entry(c.clone(), true))
            .collect();
        entries.push(entry(req.created_by, layer.is_none()));
        cfg.history.extend(entries);
        let cfg_bytes = serde_json::to_vec(&cfg)
            .map_err(|e| ImageError::Corrupt(format!("encoding the image config: {e}")))?;
        let id = super::digest::sha256(&cfg_bytes);

        // A manifest only when every layer has its blob (layers pulled before blobs
        // were kept have none; such images can still run, not be pushed or saved).
        let layer_blobs: Option<Vec<BlobRef>> = cfg
            .rootfs
            .diff_ids
            .iter()
            .map(|d| match &layer {
                Some((new, blob, _)) if new == d => Some(blob.clone()),
                _ => self.layers.blob_of(d),
            })
            .collect();
        let manifest = layer_blobs.map(|layers| {
            let bytes = super::archive::manifest_for(&cfg_bytes, &layers);
            (super::digest::sha256(&bytes), bytes)
        });
        let mut blobs: Vec<(&str, &[u8])> = vec![(&id, &cfg_bytes)];
        if let Some((digest, bytes)) = &manifest {
            blobs.push((digest, bytes));
        }
        self.blobs.put_all(&blobs)?;
        let manifest_digest = manifest.map(|(digest, _)| digest);
        let total = cfg
            .rootfs
            .diff_ids
            .iter()
            .map(|d| match &layer {
                Some((new, _, size)) if new == d => *size,
                _ => self.layers.size(d),
            })
            .sum();
        let mut cat = self.catalog();
        cat.data.images.insert(
            id.clone(),
            ImageRecord {
                id: id.clone(),
                diff_ids: cfg.rootfs.diff_ids.clone(),
                size: total,
                manifest_digest,
                last_tag_time: None,
                // The build's scratch base is no parent (dockerd has no such image).
                parent: (!parent_layers.is_empty()).then(|| parent_id.clone()),
            },
        );
        match req.save_later {
            true => cat.save_later(),
            false => cat.save()?,
        }
        Ok(id)
    }

    /// `commit` on the blocking pool, so the task that asks (a build's stages share
    /// one) goes on meanwhile.
    pub async fn commit_blocking(
        self: &Arc<Self>,
        req: CommitRequest,
    ) -> Result<String, ImageError> {
        let images = self.clone();
        tokio::task::spawn_blocking(move || images.commit(req))
            .await
            .map_err(|e| ImageError::Io {
                context: "committing a layer".into(),
                source: io::Error::other(e.to_string()),
            })?
    }

    /// The empty base of `FROM scratch`: a config with no layers, registered untagged
    /// (and left out of `docker images`, as dockerd has no such image), so the build's
    /// first step has a parent to commit on.
    pub fn scratch(&self) -> Result<String, ImageError> {
        let p = self.platform();
        let cfg = ConfigFile {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
            config: Some(ImageConfig::default()),
            rootfs: super::config::RootFs {
                typ: "layers".into(),
                diff_ids: Vec::new(),
            },
            ..Default::default()
        };
        let cfg_bytes = serde_json::to_vec(&cfg)
            .map_err(|e| ImageError::Corrupt(format!("encoding the image config: {e}")))?;
        let id = super::digest::sha256(&cfg_bytes);
        self.blobs.put(&id, &cfg_bytes)?;
        let mut cat = self.catalog();
        if !cat.data.images.contains_key(&id) {
            cat.data.images.insert(
                id.clone(),
                ImageRecord {
                    id: id.clone(),
                    diff_ids: Vec::new(),
                    size: 0,
                    manifest_digest: None,
                    last_tag_time: None,
                    parent: None,
                },
            );
            cat.save()?;
        }
        Ok(id)
    }

    /// `docker import`: a new single-layer image from a root filesystem tar (plain,
    /// gzip or zstd), with `config` as its config (from `--change`).
    pub fn import(
        &self,
        tar: impl Read,
        config: ImageConfig,
        source: &str,
    ) -> Result<String, ImageError> {
        let mut reader = io::BufReader::with_capacity(256 * 1024, tar);
        let magic = {
            use io::BufRead;
            reader
                .fill_buf()
                .map_err(ImageError::io("reading the imported tar"))?
                .get(..4)
                .map(|m| m.to_vec())
                .unwrap_or_default()
        };
        let mut decoded: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(reader)
                    .map_err(ImageError::io("reading the imported tar"))?,
            )
        } else {
            Box::new(reader)
        };
        let (diff_id, blob, size) = self.pack_layer(
            |w| io::copy(&mut decoded, w).map(|_| ()),
            "reading the imported tar",
        )?;
        let created = crate::clock::now();
        let cfg = ConfigFile {
            architecture: self.platform.architecture.clone(),
            os: "linux".into(),
            variant: self.platform.variant.clone(),
            created: Some(created.clone()),
            comment: Some(format!("Imported from {source}")),
            docker_version: Some(crate::VERSION.to_string()),
            config: Some(config),
            rootfs: super::config::RootFs {
                typ: "layers".into(),
                diff_ids: vec![diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(format!("Imported from {source}")),
                ..Default::default()
            }],
            ..Default::default()
        };
        let cfg_bytes = serde_json::to_vec(&cfg)
            .map_err(|e| ImageError::Corrupt(format!("encoding the image config: {e}")))?;
        let id = super::digest::sha256(&cfg_bytes);
        let manifest = super::archive::manifest_for(&cfg_bytes, std::slice::from_ref(&blob));
        let manifest_digest = super::digest::sha256(&manifest);
        self.blobs
            .put_all(&[(&id, &cfg_bytes), (&manifest_digest, &manifest)])?;
        let mut cat = self.catalog();
        cat.data.images.insert(
            id.clone(),
            ImageRecord {
                id: id.clone(),
                diff_ids: vec![diff_id],
                size,
                manifest_digest: Some(manifest_digest),
                last_tag_time: None,
                parent: None,
            },
        );
        cat.save()?;
        drop(cat);
        self.emit("import", &id, None);
        Ok(id)
    }

    /// Packs what `write_tar` writes (a layer tar) into a gzip blob and a committed
    /// layer; returns (diff_id, blob, unpacked size).
    fn pack_layer(
        &self,
        write_tar: impl FnOnce(&mut dyn Write) -> io::Result<()>,
        what: &str,
    ) -> Result<(String, BlobRef, u64), ImageError> {
        let tmp = self.layers.scratch("commit");
        let io_err = |c: &str| ImageError::io(c.to_string());
        let file = fs::File::create(&tmp).map_err(io_err("creating the layer blob"))?;
        let compressed = Hashing {
            inner: io::BufWriter::new(file),
            hash: Sha256::new(),
            count: 0,
        };
        let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
        let mut plain = Hashing {
            inner: gz,
            hash: Sha256::new(),
            count: 0,
        };
        let packed = write_tar(&mut plain).map_err(io_err(what)).and_then(|()| {
            let Hashing {
                inner: gz, hash, ..
            } = plain;
            let mut compressed = gz.finish().map_err(io_err("compressing the layer"))?;
            compressed
                .flush()
                .map_err(io_err("writing the layer blob"))?;
            compressed
                .inner
                .get_ref()
                .sync_all()
                .map_err(io_err("syncing the layer blob"))?;
            Ok((
                digest_of(hash),
                digest_of(compressed.hash),
                compressed.count,
            ))
        });
        let (diff_id, digest, blob_size) = match packed {
            Ok(x) => x,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // The blob is stored first: a layer's record of its blob never names a file
        // that is not there. `put_all` of the image's config syncs the rename.
        let fresh = self.blobs.adopt_unsynced(&digest, &tmp)?;
        let blob = BlobRef {
            digest,
            media_type: LAYER_GZIP.into(),
            size: blob_size,
        };
        let size = if self.layers.exists(&diff_id) {
            // A rebuild of the same files packs the same blob: nothing to record.
            if self.layers.blob_of(&diff_id).as_ref() != Some(&blob) {
                self.layers.set_blob(&diff_id, &blob)?;
            }
            self.layers.size(&diff_id)
        } else {
            let unpacked = self.unpack_own_blob(&blob, &diff_id);
            if unpacked.is_err() && fresh {
                let _ = self.blobs.remove(&blob.digest);
            }
            unpacked?
        };
        Ok((diff_id, blob, size))
    }

    /// The layer store's copy of a layer this engine just packed into `blob`.
    fn unpack_own_blob(&self, blob: &BlobRef, diff_id: &str) -> Result<u64, ImageError> {
        let io_err = |c: &str| ImageError::io(c.to_string());
        let pending = self.layers.begin()?;
        let reader = fs::File::open(self.blobs.file(&blob.digest)?)
            .map_err(io_err("reading the layer blob"))?;
        let mut gz = flate2::read::GzDecoder::new(io::BufReader::new(reader));
        let stats = super::unpack::unpack_layer(&mut gz, &pending.diff_dir())?;
        io::copy(&mut gz, &mut io::sink()).map_err(io_err("reading the layer blob"))?;
        let _ = gz.read(&mut [0u8; 1]);
        self.layers
            .commit_with_blob(pending, diff_id, stats.size, Some(blob))?;
        Ok(stats.size)
    }
}
