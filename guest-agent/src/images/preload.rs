//! Images Berth ships (the `berth/getting-started` tutorial): OCI archives given with
//! `--preload`, loaded into the store once, so a first run needs no registry. Each
//! archive's digest is remembered in `<root>/preloaded.json` once it loaded: an image
//! the user removes stays removed, and a newer archive (a new Berth) loads again.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ImageService;

/// What one archive did at start.
#[derive(Debug, PartialEq, Eq)]
pub enum Preloaded {
    /// Loaded now; the lines `docker load` would print.
    Loaded(Vec<String>),
    /// This archive was loaded by an earlier start.
    AlreadyDone,
}

/// The archives `paths` name: files as given, and the `*.tar` files of directories
/// (sorted). A path that does not exist names nothing.
pub fn archives(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "tar") && f.is_file())
                .collect();
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        }
    }
    out
}

fn digest_of(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Loads every archive not loaded before into `images`; each archive's outcome (or
/// why it failed: a bad archive is reported and skipped, never fatal to the engine).
pub fn run(
    images: &ImageService,
    root: &Path,
    paths: &[PathBuf],
) -> Vec<(PathBuf, Result<Preloaded, String>)> {
    let record = root.join("preloaded.json");
    let mut done: BTreeSet<String> = fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for archive in archives(paths) {
        let result = (|| {
            let digest = digest_of(&archive).map_err(|e| format!("reading it: {e}"))?;
            if done.contains(&digest) {
                return Ok(Preloaded::AlreadyDone);
            }
            let f = fs::File::open(&archive).map_err(|e| format!("opening it: {e}"))?;
            let loaded = images
                .load(std::io::BufReader::new(f))
                .map_err(|e| e.to_string())?;
            done.insert(digest);
            // Written after the load: a crash in between loads it again next time,
            // which is harmless; the reverse would lose the image.
            let bytes = serde_json::to_vec(&done).map_err(|e| e.to_string())?;
            crate::fsutil::atomic_write(&record, &bytes)
                .map_err(|e| format!("recording it in {}: {e}", record.display()))?;
            Ok(Preloaded::Loaded(loaded))
        })();
        out.push((archive, result));
    }
    out
}
