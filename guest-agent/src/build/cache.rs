//! The build cache: a step whose parent image, instruction and inputs (the config in
//! effect, file contents for COPY/ADD) match an earlier build's reuses that step's
//! image. Keys are sha256 digests of those; the index is one JSON file replaced
//! atomically, and an entry whose image is gone is ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// One index file per engine, shared by concurrent builds.
static LOCK: Mutex<()> = Mutex::new(());

pub struct Cache {
    path: PathBuf,
}

impl Cache {
    pub fn new(path: PathBuf) -> Cache {
        Cache { path }
    }

    fn load(&self) -> HashMap<String, String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn mounts_root(&self) -> PathBuf {
        self.path.with_file_name("build-cache-mounts")
    }

    /// The directory of the cache mount `id` (`RUN --mount=type=cache`), beside the
    /// index, and whether it was just created. Its id is kept beside it, for `du`.
    pub fn open_mount(&self, id: &str) -> std::io::Result<(PathBuf, bool)> {
        let name = key(&[id]);
        let dir = self.mounts_root().join(&name[..32]);
        if dir.is_dir() {
            return Ok((dir, false));
        }
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.with_extension("id"), id)?;
        Ok((dir, true))
    }

    /// Every cache mount: (id, directory).
    pub fn mounts(&self) -> Vec<(String, PathBuf)> {
        let Ok(rd) = std::fs::read_dir(self.mounts_root()) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .map(|p| {
                let id = std::fs::read_to_string(p.with_extension("id")).unwrap_or_default();
                (id, p)
            })
            .collect()
    }

    /// Removes a cache mount's directory and its id.
    pub fn remove_mount(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::remove_dir_all(dir)?;
        let _ = std::fs::remove_file(dir.with_extension("id"));
        Ok(())
    }

    /// Every step recorded: (key, image).
    pub fn entries(&self) -> HashMap<String, String> {
        let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.load()
    }

    /// The images the recorded steps made.
    pub fn step_images(&self) -> std::collections::HashSet<String> {
        self.entries().into_values().collect()
    }

    /// Drops the steps whose image is one of `images`.
    pub fn forget(&self, images: &[String]) {
        let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = self.load();
        m.retain(|_, v| !images.contains(v));
        self.save(&m);
    }

    fn save(&self, m: &HashMap<String, String>) {
        if let Ok(bytes) = serde_json::to_vec(m) {
            // Written after every step. An index that a power cut rolls back only
            // costs cache misses (a hit is used only if its image still exists), so
            // it skips the fsyncs.
            if let Err(e) = crate::fsutil::replace(&self.path, &bytes) {
                tracing::warn!(error = %e, "could not save the build cache index");
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.load().get(key).cloned()
    }

    pub fn put(&self, key: &str, image: &str) {
        let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = self.load();
        m.insert(key.to_string(), image.to_string());
        self.save(&m);
    }
}

/// The key of a step: the parent image and every input, in order.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A digest of files as COPY sees them: names, modes, link targets and contents.
pub fn hash_sources(sources: &[PathBuf]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    for s in sources {
        hash_tree(s, Path::new(""), &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_tree(path: &Path, rel: &Path, h: &mut Sha256) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    h.update(rel.to_string_lossy().as_bytes());
    h.update(meta.permissions().mode().to_le_bytes());
    if meta.file_type().is_symlink() {
        h.update(std::fs::read_link(path)?.to_string_lossy().as_bytes());
    } else if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            hash_tree(&e.path(), &rel.join(e.file_name()), h)?;
        }
    } else {
        let mut f = std::fs::File::open(path)?;
        std::io::copy(&mut f, h)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_source_hashes() {
        assert_ne!(key(&["a", "bc"]), key(&["ab", "c"]));
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "1").unwrap();
        let a = hash_sources(&[d.path().to_path_buf()]).unwrap();
        std::fs::write(d.path().join("f"), "2").unwrap();
        let b = hash_sources(&[d.path().to_path_buf()]).unwrap();
        assert_ne!(a, b);
        let c = Cache::new(d.path().join("cache.json"));
        assert_eq!(c.get("k"), None);
        c.put("k", "sha256:x");
        assert_eq!(c.get("k").as_deref(), Some("sha256:x"));
    }
}
