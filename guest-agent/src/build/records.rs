//! The build cache as BuildKit's clients and `docker system df` see it: one record per
//! cached step (the image the step made; its size is the layer it added) and one per
//! `RUN --mount=type=cache` directory; and pruning them (`docker buildx prune`,
//! `docker builder prune`). A step's image that is also a named image or a
//! container's is `shared`: pruning forgets the step but leaves the image.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::cache::Cache;
use crate::images::ImageService;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A step's result.
    Regular,
    /// A `RUN --mount=type=cache` directory.
    CacheMount,
}

impl Kind {
    /// The record type BuildKit reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Regular => "regular",
            Kind::CacheMount => "exec.cachemount",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The step's image id, or the cache mount's directory name.
    pub id: String,
    pub kind: Kind,
    pub description: String,
    /// Bytes only this record holds.
    pub size: u64,
    /// Unix seconds.
    pub created: i64,
    pub shared: bool,
}

/// Which records a prune removes.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// Only records created before this (Unix seconds): `until=…`, `--keep-duration`.
    pub before: Option<i64>,
    /// Stop once the cache is at most this many bytes (`--keep-storage`; 0: no floor).
    pub keep_bytes: u64,
}

/// Every record, oldest first.
pub fn list(images: &ImageService, cache: &Cache, in_use: &dyn Fn(&str) -> bool) -> Vec<Record> {
    // Oldest first (by id where the times are equal); a step whose image is gone
    // is no record.
    let mut steps: Vec<_> = cache
        .step_images()
        .into_iter()
        .filter_map(|id| {
            let (_, cfg) = images.config(&id).ok()?;
            Some((cfg.created_unix(), id, cfg))
        })
        .collect();
    steps.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut out = Vec::new();
    let mut counted: HashSet<String> = HashSet::new();
    for (created, id, cfg) in steps {
        // A layer several steps' images end with (a config-only step's image keeps
        // its parent's) counts once, for the first of them.
        let size = match images.top_layer(&id) {
            Some((layer, size)) if counted.insert(layer.clone()) => size,
            _ => 0,
        };
        let description = cfg
            .history
            .iter()
            .rev()
            .find_map(|h| h.created_by.clone())
            .unwrap_or_default();
        let named = images
            .inspect(&id)
            .map(|i| {
                !i.repo_tags.unwrap_or_default().is_empty()
                    || !i.repo_digests.unwrap_or_default().is_empty()
            })
            .unwrap_or(false);
        let shared = named || in_use(&id);
        out.push(Record {
            id,
            kind: Kind::Regular,
            description,
            size,
            created,
            shared,
        });
    }
    for (id, dir) in cache.mounts() {
        out.push(Record {
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind: Kind::CacheMount,
            description: format!("cached mount {id}"),
            size: dir_size(&dir),
            created: modified(&dir),
            shared: false,
        });
    }
    out
}

/// Removes the records `filter` selects, oldest first; returns those removed (a shared
/// one is forgotten by the cache, its image kept).
pub fn prune(
    images: &ImageService,
    cache: &Cache,
    in_use: &dyn Fn(&str) -> bool,
    filter: &PruneFilter,
) -> Vec<Record> {
    let all = list(images, cache, in_use);
    let mut total: u64 = all.iter().map(|r| r.size).sum();
    let mounts: HashMap<String, PathBuf> = cache
        .mounts()
        .into_iter()
        .filter_map(|(_, d)| Some((d.file_name()?.to_string_lossy().into_owned(), d)))
        .collect();
    // The steps to drop from the index, written once at the end (an entry whose
    // image is gone meanwhile is ignored by lookups).
    let mut forgotten = Vec::new();
    let mut removed = Vec::new();
    for r in all {
        if filter.keep_bytes > 0 && total <= filter.keep_bytes {
            break;
        }
        if filter.before.is_some_and(|b| r.created >= b) {
            continue;
        }
        match r.kind {
            Kind::Regular => {
                forgotten.push(r.id.clone());
                if !r.shared {
                    if let Err(e) = images.remove(&r.id, false, in_use) {
                        tracing::debug!(image = %r.id, error = %e, "build cache image kept");
                        continue;
                    }
                }
            }
            Kind::CacheMount => {
                let Some(dir) = mounts.get(&r.id) else {
                    continue;
                };
                if let Err(e) = cache.remove_mount(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove a cache mount");
                    continue;
                }
            }
        }
        total = total.saturating_sub(r.size);
        removed.push(r);
    }
    if !forgotten.is_empty() {
        cache.forget(&forgotten);
    }
    removed
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

fn modified(p: &Path) -> i64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
