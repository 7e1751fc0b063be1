//! The content-addressed blob store: manifests, indexes and configs by digest.
//! A blob is written atomically and only under the digest of its actual bytes.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::digest::{hex_of, sha256};
use super::ImageError;
use crate::fsutil::atomic_write;

pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub fn open(dir: PathBuf) -> Result<Self, ImageError> {
        fs::create_dir_all(&dir).map_err(ImageError::io(format!("creating {}", dir.display())))?;
        Ok(BlobStore { dir })
    }

    fn path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir.join(hex_of(digest)?))
    }

    /// Where `data` goes when it really hashes to `digest`; None when the store has it.
    fn new_path(&self, digest: &str, data: &[u8]) -> Result<Option<PathBuf>, ImageError> {
        let actual = sha256(data);
        if actual != digest {
            return Err(ImageError::Corrupt(format!(
                "digest mismatch: expected {digest}, got {actual}"
            )));
        }
        let path = self.path(digest)?;
        Ok((!path.exists()).then_some(path))
    }

    /// Stores `data` under `digest` after checking that the bytes really hash to it.
    pub fn put(&self, digest: &str, data: &[u8]) -> Result<(), ImageError> {
        match self.new_path(digest, data)? {
            Some(path) => {
                atomic_write(&path, data).map_err(ImageError::io(format!("writing blob {digest}")))
            }
            None => Ok(()),
        }
    }

    /// Stores several blobs (an image's config and manifest), each checked as by
    /// `put`, with one sync of the store's directory for all of them; that sync also
    /// makes earlier `adopt_unsynced` renames durable. An image commit writes its blobs
    /// this way: every fsync is a disk round trip on a build step's critical path.
    pub fn put_all(&self, blobs: &[(&str, &[u8])]) -> Result<(), ImageError> {
        for (digest, data) in blobs {
            if let Some(path) = self.new_path(digest, data)? {
                crate::fsutil::write_synced(&path, data)
                    .map_err(ImageError::io(format!("writing blob {digest}")))?;
            }
        }
        self.sync()
    }

    /// Moves a file whose digest the caller computed while writing it into the store.
    pub fn adopt(&self, digest: &str, file: &std::path::Path) -> Result<(), ImageError> {
        if self.adopt_unsynced(digest, file)? {
            self.sync()?;
        }
        Ok(())
    }

    /// `adopt` for a caller that calls `put_all` (or `sync`) next: the file must be
    /// synced already; only its rename waits for that directory sync. True when the
    /// store did not have the blob before.
    pub fn adopt_unsynced(&self, digest: &str, file: &std::path::Path) -> Result<bool, ImageError> {
        let path = self.path(digest)?;
        if path.exists() {
            let _ = fs::remove_file(file);
            return Ok(false);
        }
        fs::rename(file, &path).map_err(ImageError::io(format!("storing blob {digest}")))?;
        Ok(true)
    }

    /// Makes the renames into the store durable.
    fn sync(&self) -> Result<(), ImageError> {
        crate::fsutil::sync_dir(&self.dir).map_err(ImageError::io("syncing the blob store"))
    }

    /// Where blob `digest` lives (for streaming it out).
    pub fn file(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let p = self.path(digest)?;
        if !p.is_file() {
            return Err(ImageError::Corrupt(format!("blob {digest} is missing")));
        }
        Ok(p)
    }

    /// Reads a blob and re-verifies it, so on-disk corruption is reported, not served.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest)?;
        let data = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::Corrupt(format!("blob {digest} is missing")),
            _ => ImageError::Io {
                context: format!("reading blob {digest}"),
                source: e,
            },
        })?;
        if sha256(&data) != digest {
            return Err(ImageError::Corrupt(format!("blob {digest} is corrupt")));
        }
        Ok(data)
    }

    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        match fs::remove_file(self.path(digest)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::Io {
                context: format!("removing blob {digest}"),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_wrong_digest_and_roundtrips() {
        let d = tempfile::tempdir().unwrap();
        let s = BlobStore::open(d.path().join("b")).unwrap();
        let good = sha256(b"hello");
        assert!(s.put(&sha256(b"other"), b"hello").is_err());
        s.put(&good, b"hello").unwrap();
        assert_eq!(s.get(&good).unwrap(), b"hello");
        fs::write(s.path(&good).unwrap(), b"tampered").unwrap();
        assert!(s.get(&good).is_err());
    }

    #[test]
    fn put_all_checks_every_blob_and_adopt_reports_what_is_new() {
        let d = tempfile::tempdir().unwrap();
        let s = BlobStore::open(d.path().join("b")).unwrap();
        let (a, b) = (sha256(b"config"), sha256(b"manifest"));
        assert!(s.put_all(&[(&a, b"config"), (&b, b"other")]).is_err());
        s.put_all(&[(&a, b"config"), (&b, b"manifest")]).unwrap();
        assert_eq!(s.get(&a).unwrap(), b"config");
        assert_eq!(s.get(&b).unwrap(), b"manifest");
        let file = d.path().join("layer");
        fs::write(&file, b"layer").unwrap();
        assert!(s.adopt_unsynced(&sha256(b"layer"), &file).unwrap());
        fs::write(&file, b"layer").unwrap();
        assert!(!s.adopt_unsynced(&sha256(b"layer"), &file).unwrap());
        assert!(!file.exists(), "a duplicate is dropped, not left behind");
        assert_eq!(s.get(&sha256(b"layer")).unwrap(), b"layer");
    }
}
