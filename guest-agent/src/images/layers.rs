//! Unpacked layer snapshots, one directory per diff_id, ready to be stacked by overlayfs.
//!
//! A layer is unpacked into `tmp/<random>/diff` and committed by renaming the whole
//! directory to `sha256/<hex>`; a committed name therefore always holds a complete,
//! verified layer. Anything left in `tmp/` after a crash is deleted on start.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::digest::hex_of;
use super::ImageError;
use crate::fsutil::{remove_tree_via, reset_dir, sync_dir};

const SIZE_FILE: &str = "size";
/// The compressed blob this layer came from (or was packed into), for push and save.
const BLOB_FILE: &str = "blob.json";

/// A layer's compressed form in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobRef {
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
}

pub struct LayerStore {
    committed: PathBuf,
    tmp: PathBuf,
}

/// A layer being unpacked; removed on drop unless committed.
pub struct PendingLayer {
    dir: PathBuf,
    committed: bool,
}

impl PendingLayer {
    /// Where the layer's files go.
    pub fn diff_dir(&self) -> PathBuf {
        self.dir.join("diff")
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl LayerStore {
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let committed = dir.join("sha256");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&committed)
            .map_err(ImageError::io(format!("creating {}", committed.display())))?;
        reset_dir(&tmp).map_err(ImageError::io(format!("cleaning {}", tmp.display())))?;
        Ok(LayerStore { committed, tmp })
    }

    fn dir_of(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.committed.join(hex_of(diff_id)?))
    }

    pub fn exists(&self, diff_id: &str) -> bool {
        self.dir_of(diff_id).map(|d| d.is_dir()).unwrap_or(false)
    }

    /// The directory overlayfs stacks for this layer.
    pub fn diff_path(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir_of(diff_id)?.join("diff"))
    }

    /// Size in bytes of the layer's regular files, as recorded at unpack time.
    pub fn size(&self, diff_id: &str) -> u64 {
        self.dir_of(diff_id)
            .ok()
            .and_then(|d| fs::read_to_string(d.join(SIZE_FILE)).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn begin(&self) -> Result<PendingLayer, ImageError> {
        let dir = self
            .tmp
            .join(format!("layer-{:016x}", rand::random::<u64>()));
        fs::create_dir_all(dir.join("diff"))
            .map_err(ImageError::io(format!("creating {}", dir.display())))?;
        Ok(PendingLayer {
            dir,
            committed: false,
        })
    }

    /// Makes `pending` the layer `diff_id`. If another pull committed the same layer
    /// meanwhile, ours is discarded.
    pub fn commit(
        &self,
        pending: PendingLayer,
        diff_id: &str,
        size: u64,
    ) -> Result<(), ImageError> {
        self.commit_with_blob(pending, diff_id, size, None)
    }

    /// `commit`, with the blob that holds the layer compressed recorded in the same
    /// step (as `set_blob` would, without its own two fsyncs).
    pub fn commit_with_blob(
        &self,
        mut pending: PendingLayer,
        diff_id: &str,
        size: u64,
        blob: Option<&BlobRef>,
    ) -> Result<(), ImageError> {
        let target = self.dir_of(diff_id)?;
        fs::write(pending.dir.join(SIZE_FILE), size.to_string())
            .map_err(ImageError::io("writing layer size"))?;
        if let Some(blob) = blob {
            let bytes = serde_json::to_vec(blob)
                .map_err(|e| ImageError::Corrupt(format!("encoding blob ref: {e}")))?;
            fs::write(pending.dir.join(BLOB_FILE), bytes)
                .map_err(ImageError::io("recording the layer's blob"))?;
        }
        match fs::rename(&pending.dir, &target) {
            Ok(()) => {
                pending.committed = true;
                sync_dir(&self.committed).map_err(ImageError::io("syncing layer store"))
            }
            Err(_) if target.is_dir() => Ok(()), // dropped → removed
            Err(e) => Err(ImageError::Io {
                context: format!("committing layer {diff_id}"),
                source: e,
            }),
        }
    }

    /// Records which blob holds this layer compressed.
    pub fn set_blob(&self, diff_id: &str, blob: &BlobRef) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec(blob)
            .map_err(|e| ImageError::Corrupt(format!("encoding blob ref: {e}")))?;
        crate::fsutil::atomic_write(&self.dir_of(diff_id)?.join(BLOB_FILE), &bytes)
            .map_err(ImageError::io("recording the layer's blob"))
    }

    /// The compressed blob of this layer, when the store has one.
    pub fn blob_of(&self, diff_id: &str) -> Option<BlobRef> {
        let bytes = fs::read(self.dir_of(diff_id).ok()?.join(BLOB_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// A scratch path on the store's filesystem (emptied at every start).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.tmp
            .join(format!("{name}-{:016x}", rand::random::<u64>()))
    }

    /// Removes the layer; returns its blob reference so the caller can drop the blob.
    pub fn remove(&self, diff_id: &str) -> Result<Option<BlobRef>, ImageError> {
        let blob = self.blob_of(diff_id);
        let dir = self.dir_of(diff_id)?;
        remove_tree_via(&dir, &self.tmp)
            .map_err(ImageError::io(format!("removing layer {diff_id}")))?;
        Ok(blob)
    }

    /// Every committed layer's diff_id.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.committed) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(ImageError::io("listing layers")(e)),
        };
        for e in rd.flatten() {
            out.push(format!("sha256:{}", e.file_name().to_string_lossy()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_committed_with_its_blob_names_it() {
        let d = tempfile::tempdir().unwrap();
        let store = LayerStore::open(d.path()).unwrap();
        let blob = BlobRef {
            digest: format!("sha256:{}", "b".repeat(64)),
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            size: 3,
        };
        let with = format!("sha256:{}", "1".repeat(64));
        let pending = store.begin().unwrap();
        fs::write(pending.diff_dir().join("f"), b"x").unwrap();
        store
            .commit_with_blob(pending, &with, 1, Some(&blob))
            .unwrap();
        assert_eq!(store.blob_of(&with), Some(blob));
        assert_eq!(store.size(&with), 1);
        assert!(store.diff_path(&with).unwrap().join("f").is_file());

        let without = format!("sha256:{}", "2".repeat(64));
        store.commit(store.begin().unwrap(), &without, 0).unwrap();
        assert_eq!(store.blob_of(&without), None);
    }
}
