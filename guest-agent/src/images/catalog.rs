//! The image catalog: which images exist, their layers, and which names point at them.
//! One JSON document replaced atomically on every change, so a crash leaves either the
//! state before the change or after it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ImageError;
use crate::fsutil::atomic_write;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:` + config digest.
    pub id: String,
    pub diff_ids: Vec<String>,
    /// Sum of the layers' sizes.
    pub size: u64,
    /// Manifest digest of the platform image we unpacked (for inspect's Descriptor).
    #[serde(default)]
    pub manifest_digest: Option<String>,
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// The local image it was committed on (`Parent`, as dockerd keeps it for
    /// `docker commit` and classic builds); none for pulled and loaded images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CatalogData {
    pub images: BTreeMap<String, ImageRecord>,
    /// Full tagged name (`docker.io/library/busybox:latest`) → image id.
    pub tags: BTreeMap<String, String>,
    /// Full digested name (`127.0.0.1:5000/app@sha256:…`) → image id.
    pub digests: BTreeMap<String, String>,
}

pub struct Catalog {
    path: PathBuf,
    pub data: CatalogData,
    /// Changes made in memory only (a build's steps), not yet saved.
    unsaved: bool,
}

impl Catalog {
    pub fn open(path: PathBuf) -> Result<Self, ImageError> {
        let data = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ImageError::Corrupt(format!(
                    "image catalog {} is unreadable: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => CatalogData::default(),
            Err(e) => return Err(ImageError::io(format!("reading {}", path.display()))(e)),
        };
        Ok(Catalog {
            path,
            data,
            unsaved: false,
        })
    }

    pub fn save(&mut self) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec(&self.data)
            .map_err(|e| ImageError::Corrupt(format!("serialising catalog: {e}")))?;
        atomic_write(&self.path, &bytes).map_err(ImageError::io("saving image catalog"))?;
        self.unsaved = false;
        Ok(())
    }

    /// Keeps a change in memory only, for the next save (or [`Catalog::flush`]) to
    /// write. What a build's intermediate steps use: their layers and blobs are on
    /// disk already, so a crash before the save loses only those cache entries (their
    /// layers stay behind unreferenced, as after a crash in any commit), never a
    /// saved image.
    pub fn save_later(&mut self) {
        self.unsaved = true;
    }

    /// Saves what [`Catalog::save_later`] kept in memory, if anything.
    pub fn flush(&mut self) -> Result<(), ImageError> {
        match self.unsaved {
            true => self.save(),
            false => Ok(()),
        }
    }

    /// Names (tags and digests) pointing at `id`.
    pub fn names_of(&self, id: &str) -> (Vec<String>, Vec<String>) {
        let tags = self
            .data
            .tags
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        let digests = self
            .data
            .digests
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        (tags, digests)
    }

    /// Whether any image other than `except` uses the layer.
    pub fn layer_in_use(&self, diff_id: &str, except: &str) -> bool {
        self.data
            .images
            .values()
            .any(|img| img.id != except && img.diff_ids.iter().any(|d| d == diff_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            diff_ids: Vec::new(),
            size: 0,
            manifest_digest: None,
            last_tag_time: None,
            parent: None,
        }
    }

    #[test]
    fn changes_kept_for_later_are_written_by_the_next_save_or_a_flush() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("catalog.json");
        let mut cat = Catalog::open(path.clone()).unwrap();
        cat.data
            .images
            .insert("sha256:a".into(), record("sha256:a"));
        cat.save_later();
        // Nothing on disk yet: a crash now loses only this entry.
        assert!(Catalog::open(path.clone()).unwrap().data.images.is_empty());
        cat.flush().unwrap();
        assert!(Catalog::open(path.clone())
            .unwrap()
            .data
            .images
            .contains_key("sha256:a"));

        // A save of another change carries the kept one along, and leaves nothing
        // for a flush to write.
        cat.data
            .images
            .insert("sha256:b".into(), record("sha256:b"));
        cat.save_later();
        cat.data.tags.insert("x:latest".into(), "sha256:b".into());
        cat.save().unwrap();
        std::fs::remove_file(&path).unwrap();
        cat.flush().unwrap();
        assert!(!path.exists(), "a flush with nothing kept writes nothing");
    }
}
