//! Images: the store (blobs, unpacked layers, catalog), pulling from registries, and the
//! queries and edits the Docker API exposes (list, inspect, history, tag, remove, prune).
//! Nothing here knows about HTTP; results are the API's JSON models from `bollard-stubs`.

pub mod archive;
mod blobs;
mod catalog;
pub mod commit;
pub mod config;
pub mod difftar;
pub mod digest;
mod error;
mod layers;
mod login;
mod platform;
pub mod preload;
mod pull;
mod push;
pub mod reference;
pub mod unpack;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bollard_stubs::models::{
    DriverData, ImageDeleteResponseItem, ImageHistoryResponseItem, ImageInspect,
    ImageInspectMetadata, ImageInspectRootFs, ImagePruneResponse, ImageSummary,
};

use blobs::BlobStore;
use catalog::{Catalog, ImageRecord};
pub use config::ConfigFile;
pub use error::ImageError;
use layers::LayerStore;
pub use platform::Platform;
pub use pull::{Progress, RegistryCredentials};
use reference::{pattern_matches, ImageRef};

/// Filters accepted by `GET /images/json` and `POST /images/prune`, already parsed.
#[derive(Debug, Default, Clone)]
pub struct ImageFilters {
    pub dangling: Option<bool>,
    pub reference: Vec<String>,
    pub label: Vec<String>,
    /// `label!`: not what has every one of these.
    pub not_label: Vec<String>,
    pub before: Option<String>,
    pub since: Option<String>,
    pub until: Option<i64>,
}

pub struct ImageService {
    blobs: BlobStore,
    layers: LayerStore,
    catalog: Mutex<Catalog>,
    configs: Mutex<HashMap<String, Arc<ConfigFile>>>,
    insecure_registries: Vec<String>,
    platform: Platform,
    events: std::sync::OnceLock<Arc<crate::events::Events>>,
}

impl ImageService {
    /// Opens (or creates) the image store under `root`, discarding leftovers of work a
    /// crash interrupted.
    pub fn open(root: &Path, insecure_registries: Vec<String>) -> Result<Self, ImageError> {
        let blobs = BlobStore::open(root.join("blobs").join("sha256"))?;
        let layers = LayerStore::open(&root.join("layers"))?;
        let catalog = Catalog::open(root.join("catalog.json"))?;
        Ok(ImageService {
            blobs,
            layers,
            catalog: Mutex::new(catalog),
            configs: Mutex::new(HashMap::new()),
            insecure_registries,
            platform: Platform::host(),
            events: std::sync::OnceLock::new(),
        })
    }

    /// Saves the catalog changes kept in memory by commits made with `save_later` (the
    /// build endpoints call this once they have tagged or exported a build's result;
    /// the daemon as it stops).
    pub fn flush(&self) -> Result<(), ImageError> {
        self.catalog().flush()
    }

    /// Where image events (pull, tag, untag, delete) go.
    pub fn set_events(&self, events: Arc<crate::events::Events>) {
        let _ = self.events.set(events);
    }

    fn emit(&self, action: &str, id: &str, name: Option<&str>) {
        if let Some(ev) = self.events.get() {
            let attrs = name.map(|n| ("name".to_string(), n.to_string()));
            ev.emit(
                bollard_stubs::models::EventMessageTypeEnum::IMAGE,
                action,
                id,
                attrs,
            );
        }
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        // A panic while holding the lock cannot leave the on-disk catalog torn (every
        // change is saved atomically), so the in-memory copy is still usable.
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn config_of(&self, id: &str) -> Result<Arc<ConfigFile>, ImageError> {
        if let Some(c) = self
            .configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(c.clone());
        }
        let bytes = self.blobs.get(id)?;
        let cfg: ConfigFile = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Corrupt(format!("image config {id}: {e}")))?;
        let cfg = Arc::new(cfg);
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), cfg.clone());
        Ok(cfg)
    }

    /// Number of images, for `/info`.
    /// `name`'s id and those of the images it was committed on, newest first (empty
    /// when `name` is not an image).
    pub fn ancestry(&self, name: &str) -> Vec<String> {
        let cat = self.catalog();
        let mut out = Vec::new();
        let mut next = resolve_in(&cat, name).ok();
        while let Some(id) = next {
            if out.contains(&id) {
                break;
            }
            next = cat.data.images.get(&id).and_then(|r| r.parent.clone());
            out.push(id);
        }
        out
    }

    /// The local image `name` was committed on (`Parent`), if any.
    pub fn parent_of(&self, name: &str) -> Option<String> {
        let cat = self.catalog();
        let id = resolve_in(&cat, name).ok()?;
        cat.data.images.get(&id)?.parent.clone()
    }

    /// How many images `docker images -a` lists (`info`'s `Images`).
    pub fn count(&self) -> usize {
        let cat = self.catalog();
        cat.data
            .images
            .values()
            .filter(|rec| {
                let (tags, digests) = cat.names_of(&rec.id);
                !(rec.diff_ids.is_empty() && tags.is_empty() && digests.is_empty())
            })
            .count()
    }

    /// Resolves a name, tag, digest reference, full ID or unique ID prefix to an image ID.
    pub fn resolve(&self, name: &str) -> Result<String, ImageError> {
        resolve_in(&self.catalog(), name)
    }

    /// The image's layer directories, lowest first (for overlayfs).
    pub fn layer_paths(&self, name: &str) -> Result<Vec<PathBuf>, ImageError> {
        let cat = self.catalog();
        let id = resolve_in(&cat, name)?;
        let rec = &cat.data.images[&id];
        rec.diff_ids
            .iter()
            .map(|d| self.layers.diff_path(d))
            .collect()
    }

    /// The image's configuration.
    pub fn config(&self, name: &str) -> Result<(String, Arc<ConfigFile>), ImageError> {
        let id = self.resolve(name)?;
        let cfg = self.config_of(&id)?;
        Ok((id, cfg))
    }

    pub fn list(&self, filters: &ImageFilters) -> Result<Vec<ImageSummary>, ImageError> {
        let cat = self.catalog();
        let before = filters
            .before
            .as_deref()
            .map(|n| self.created_of(&cat, n))
            .transpose()?;
        let since = filters
            .since
            .as_deref()
            .map(|n| self.created_of(&cat, n))
            .transpose()?;
        let mut out = Vec::new();
        for rec in cat.data.images.values() {
            let cfg = self.config_of(&rec.id)?;
            let (tags, digests) = cat.names_of(&rec.id);
            if rec.diff_ids.is_empty() && tags.is_empty() && digests.is_empty() {
                // The build's `FROM scratch` base: dockerd lists nothing for it.
                continue;
            }
            let mut repo_tags = familiar_all(&tags);
            let mut repo_digests = familiar_all(&digests);
            if !filters.reference.is_empty() {
                // As dockerd: only the names that match are listed, and an image with no
                // matching name is left out.
                repo_tags.retain(|t| reference_matches(&filters.reference, t));
                repo_digests.retain(|t| reference_matches(&filters.reference, t));
                if repo_tags.is_empty() && repo_digests.is_empty() {
                    continue;
                }
            }
            let created = cfg.created_unix();
            let labels = cfg.labels();
            if !matches_filters(filters, &repo_tags, &labels, created) {
                continue;
            }
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            out.push(ImageSummary {
                id: rec.id.clone(),
                parent_id: rec.parent.clone().unwrap_or_default(),
                repo_tags,
                repo_digests,
                created,
                size: rec.size as i64,
                shared_size: -1,
                labels,
                containers: -1,
                manifests: None,
                descriptor: None,
            });
        }
        // Newest first, as dockerd lists them.
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn created_of(&self, cat: &Catalog, name: &str) -> Result<i64, ImageError> {
        let id = resolve_in(cat, name)?;
        Ok(self.config_of(&id)?.created_unix())
    }

    /// Bytes of every unpacked layer, each counted once (`docker system df`).
    pub fn layers_size(&self) -> u64 {
        let cat = self.catalog();
        let unique: HashSet<&String> = cat.data.images.values().flat_map(|r| &r.diff_ids).collect();
        unique.into_iter().map(|d| self.layers.size(d)).sum()
    }

    /// The size of image `id` (the sum of its layers), if it is in the store.
    pub fn size_of(&self, id: &str) -> Option<u64> {
        self.catalog().data.images.get(id).map(|r| r.size)
    }

    /// The image's topmost layer and its size (what a build step added), if it has one.
    pub fn top_layer(&self, id: &str) -> Option<(String, u64)> {
        let cat = self.catalog();
        let d = cat.data.images.get(id)?.diff_ids.last()?.clone();
        let size = self.layers.size(&d);
        Some((d, size))
    }

    pub fn inspect(&self, name: &str) -> Result<ImageInspect, ImageError> {
        let cat = self.catalog();
        let id = resolve_in(&cat, name)?;
        let rec = cat.data.images[&id].clone();
        let (tags, digests) = cat.names_of(&id);
        drop(cat);
        let cfg = self.config_of(&id)?;
        let dirs: Vec<String> = rec
            .diff_ids
            .iter()
            .rev()
            .filter_map(|d| self.layers.diff_path(d).ok())
            .map(|p| p.display().to_string())
            .collect();
        let mut graph = HashMap::new();
        if let Some((upper, lower)) = dirs.split_first() {
            graph.insert("UpperDir".to_string(), upper.clone());
            if !lower.is_empty() {
                graph.insert("LowerDir".to_string(), lower.join(":"));
            }
        }
        Ok(ImageInspect {
            id: Some(id.clone()),
            repo_tags: Some(familiar_all(&tags)),
            repo_digests: Some(familiar_all(&digests)),
            comment: Some(cfg.comment.clone().unwrap_or_default()),
            created: cfg.created.clone(),
            author: Some(cfg.author.clone().unwrap_or_default()),
            config: cfg.config.clone(),
            architecture: Some(cfg.architecture.clone()),
            variant: cfg.variant.clone(),
            os: Some(cfg.os.clone()),
            os_version: cfg.os_version.clone(),
            size: Some(rec.size as i64),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data: graph,
            }),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(rec.diff_ids.clone()),
            }),
            metadata: Some(ImageInspectMetadata {
                // dockerd shows Go's zero time for images never tagged locally.
                last_tag_time: Some(
                    rec.last_tag_time
                        .clone()
                        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                ),
            }),
            ..Default::default()
        })
    }

    pub fn history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, ImageError> {
        let cat = self.catalog();
        let id = resolve_in(&cat, name)?;
        let rec = cat.data.images[&id].clone();
        let (tags, _) = cat.names_of(&id);
        drop(cat);
        let cfg = self.config_of(&id)?;
        let mut layer_sizes = rec.diff_ids.iter().map(|d| self.layers.size(d) as i64);
        let mut items: Vec<ImageHistoryResponseItem> = if cfg.history.is_empty() {
            layer_sizes
                .map(|size| ImageHistoryResponseItem {
                    id: "<missing>".into(),
                    created: cfg.created_unix(),
                    created_by: String::new(),
                    tags: Vec::new(),
                    size,
                    comment: String::new(),
                })
                .collect()
        } else {
            cfg.history
                .iter()
                .map(|h| ImageHistoryResponseItem {
                    id: "<missing>".into(),
                    created: config::parse_time(h.created.as_deref()),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size: if h.empty_layer {
                        0
                    } else {
                        layer_sizes.next().unwrap_or(0)
                    },
                    comment: h.comment.clone().unwrap_or_default(),
                })
                .collect()
        };
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = id;
            top.tags = familiar_all(&tags);
        }
        Ok(items)
    }

    /// `docker tag SOURCE REPO[:TAG]`.
    pub fn tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<(), ImageError> {
        let target = ImageRef::from_repo_tag(repo, tag)?;
        let mut cat = self.catalog();
        let id = resolve_in(&cat, source)?;
        cat.data.tags.insert(full_tagged(&target), id.clone());
        if let Some(rec) = cat.data.images.get_mut(&id) {
            rec.last_tag_time = Some(crate::clock::now());
        }
        cat.save()?;
        self.emit("tag", &id, Some(&target.to_string()));
        Ok(())
    }

    fn emit_removals(&self, items: &[ImageDeleteResponseItem], id: &str) {
        for it in items {
            if let Some(name) = &it.untagged {
                self.emit("untag", id, Some(name));
            }
            if it.deleted.as_deref() == Some(id) {
                self.emit("delete", id, None);
            }
        }
    }

    /// `docker rmi`: untags, and deletes the image once nothing names it.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, ImageError> {
        let id = self.resolve(name)?;
        let items = self.remove_inner(name, force, in_use)?;
        self.emit_removals(&items, &id);
        Ok(items)
    }

    fn remove_inner(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, ImageError> {
        let mut cat = self.catalog();
        let id = resolve_in(&cat, name)?;
        let (tags, digests) = cat.names_of(&id);
        let mut out = Vec::new();
        let by_reference = !is_id_or_prefix(&id, name);
        if by_reference {
            let r = ImageRef::parse(name)?;
            // Untagging the last name of an image a container uses needs -f, as dockerd.
            let last_tag = tags.len() <= 1;
            if last_tag && !force && in_use(&id) {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container is using its referenced image {}",
                    digest::short(&id)
                )));
            }
            let key = match r.digest() {
                Some(_) => full_digested(&r),
                None => full_tagged(&r),
            };
            cat.data.tags.remove(&key);
            cat.data.digests.remove(&key);
            out.push(untagged(&key));
            // Once a repository's last tag goes, its digest references go with it.
            let repo = r.full_name();
            let repo_has_tags = cat
                .data
                .tags
                .iter()
                .any(|(k, v)| *v == id && repo_of(k) == repo);
            if !repo_has_tags {
                let stale: Vec<String> = cat
                    .data
                    .digests
                    .iter()
                    .filter(|(k, v)| **v == id && repo_of(k) == repo)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in stale {
                    cat.data.digests.remove(&k);
                    out.push(untagged(&k));
                }
            }
            let (left_tags, left_digests) = cat.names_of(&id);
            if !left_tags.is_empty() || !left_digests.is_empty() {
                cat.save()?;
                return Ok(out);
            }
        } else {
            let repos: HashSet<&str> = tags.iter().chain(&digests).map(|k| repo_of(k)).collect();
            if !force && repos.len() > 1 {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    digest::short(&id)
                )));
            }
        }
        if in_use(&id) {
            if by_reference {
                // The name is gone; the image stays for the container that uses it.
                cat.save()?;
                return Ok(out);
            }
            if !force {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by a container",
                    digest::short(&id)
                )));
            }
        }
        for k in tags.iter().chain(&digests) {
            if cat.data.tags.remove(k).is_some() || cat.data.digests.remove(k).is_some() {
                out.push(untagged(k));
            }
        }
        out.extend(self.delete_image(&mut cat, &id)?);
        Ok(out)
    }

    /// Drops the image record and every layer and blob only it used. The catalog is saved
    /// first, so a crash leaves at worst unreferenced files, never a record without data.
    fn delete_image(
        &self,
        cat: &mut Catalog,
        id: &str,
    ) -> Result<Vec<ImageDeleteResponseItem>, ImageError> {
        let Some(rec) = cat.data.images.remove(id) else {
            return Ok(Vec::new());
        };
        cat.save()?;
        let mut out = vec![deleted(id)];
        let chains = digest::chain_ids(&rec.diff_ids);
        for (diff_id, chain) in rec.diff_ids.iter().zip(chains).rev() {
            if !cat.layer_in_use(diff_id, id) {
                if let Some(b) = self.layers.remove(diff_id)? {
                    self.blobs.remove(&b.digest)?;
                }
                out.push(deleted(&chain));
            }
        }
        self.blobs.remove(id)?;
        if let Some(m) = &rec.manifest_digest {
            self.blobs.remove(m)?;
        }
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(out)
    }

    /// `docker image prune [-a]`: removes dangling images (or, with `dangling=false`,
    /// every image no container uses).
    pub fn prune(
        &self,
        filters: &ImageFilters,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<ImagePruneResponse, ImageError> {
        let mut cat = self.catalog();
        let only_dangling = filters.dangling.unwrap_or(true);
        let mut deleted_items = Vec::new();
        let mut reclaimed = 0i64;
        let ids: Vec<String> = cat.data.images.keys().cloned().collect();
        for id in ids {
            let (tags, digests) = cat.names_of(&id);
            if only_dangling && !tags.is_empty() {
                continue;
            }
            if in_use(&id) {
                continue;
            }
            let cfg = self.config_of(&id)?;
            if filters.until.is_some_and(|u| cfg.created_unix() >= u) {
                continue;
            }
            let labels = cfg.labels();
            if !labels_match(&filters.label, &labels)
                || (!filters.not_label.is_empty() && labels_match(&filters.not_label, &labels))
            {
                continue;
            }
            let sizes: HashMap<String, u64> = cat.data.images[&id]
                .diff_ids
                .iter()
                .map(|d| (d.clone(), self.layers.size(d)))
                .collect();
            for k in tags.iter().chain(&digests) {
                cat.data.tags.remove(k);
                cat.data.digests.remove(k);
                deleted_items.push(untagged(k));
            }
            let removed = self.delete_image(&mut cat, &id)?;
            for d in sizes.keys() {
                if !self.layers.exists(d) {
                    reclaimed += sizes[d] as i64;
                }
            }
            deleted_items.extend(removed);
        }
        cat.save()?;
        Ok(ImagePruneResponse {
            images_deleted: if deleted_items.is_empty() {
                None
            } else {
                Some(deleted_items)
            },
            space_reclaimed: Some(reclaimed),
        })
    }

    /// Deletes layers no image references (left by pulls a crash interrupted).
    pub fn collect_garbage(&self) -> Result<usize, ImageError> {
        let cat = self.catalog();
        let used: HashSet<&String> = cat
            .data
            .images
            .values()
            .flat_map(|i| i.diff_ids.iter())
            .collect();
        let mut n = 0;
        for l in self.layers.list()? {
            if !used.contains(&l) {
                if let Some(b) = self.layers.remove(&l)? {
                    self.blobs.remove(&b.digest)?;
                }
                n += 1;
            }
        }
        Ok(n)
    }

    fn allows_plain_http(&self, registry: &str) -> bool {
        reference::is_loopback_host(registry)
            || self.insecure_registries.iter().any(|r| r == registry)
    }

    /// Records a pulled image and points `name` (and its digest) at it.
    fn register(
        &self,
        rec: ImageRecord,
        name: &ImageRef,
        top_digest: &str,
    ) -> Result<bool, ImageError> {
        let mut cat = self.catalog();
        let id = rec.id.clone();
        cat.data.images.entry(id.clone()).or_insert(rec);
        let mut changed = true;
        if name.tag().is_some() {
            let key = full_tagged(name);
            changed = cat.data.tags.get(&key) != Some(&id);
            cat.data.tags.insert(key, id.clone());
        }
        cat.data
            .digests
            .insert(full_digested(&name.with_digest(top_digest)), id);
        cat.save()?;
        drop(cat);
        self.emit("pull", &name.to_string(), Some(&name.familiar_name()));
        Ok(changed)
    }
}

fn resolve_in(cat: &Catalog, name: &str) -> Result<String, ImageError> {
    // dockerd names the normalised reference: "No such image: busybox:latest".
    let not_found = || {
        let shown = match ImageRef::parse(name) {
            Ok(r) if !name.bytes().all(|b| b.is_ascii_hexdigit()) => r.to_string(),
            _ => name.to_string(),
        };
        ImageError::NotFound(shown)
    };
    if name.is_empty() {
        return Err(not_found());
    }
    if cat.data.images.contains_key(name) {
        return Ok(name.to_string());
    }
    let as_id = format!("sha256:{name}");
    if cat.data.images.contains_key(&as_id) {
        return Ok(as_id);
    }
    if let Ok(r) = ImageRef::parse(name) {
        let hit = match r.digest() {
            Some(_) => cat.data.digests.get(&full_digested(&r)),
            None => cat.data.tags.get(&full_tagged(&r)),
        };
        if let Some(id) = hit {
            return Ok(id.clone());
        }
    }
    let prefix = name.strip_prefix("sha256:").unwrap_or(name);
    if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits = cat
            .data
            .images
            .keys()
            .filter(|id| id["sha256:".len()..].starts_with(prefix));
        if let Some(first) = hits.next() {
            if hits.next().is_some() {
                return Err(ImageError::InvalidArgument(format!(
                    "multiple IDs found with provided prefix: {prefix}"
                )));
            }
            return Ok(first.clone());
        }
    }
    Err(not_found())
}

fn is_id_or_prefix(id: &str, name: &str) -> bool {
    let hex = &id["sha256:".len()..];
    let n = name.strip_prefix("sha256:").unwrap_or(name);
    !n.is_empty() && hex.starts_with(n)
}

fn full_tagged(r: &ImageRef) -> String {
    format!("{}:{}", r.full_name(), r.tag().unwrap_or("latest"))
}

fn full_digested(r: &ImageRef) -> String {
    format!("{}@{}", r.full_name(), r.digest().unwrap_or_default())
}

/// `docker.io/library/busybox:latest` → `docker.io/library/busybox`.
fn repo_of(key: &str) -> &str {
    if let Some((repo, _)) = key.split_once('@') {
        return repo;
    }
    match key.rfind(':') {
        Some(i) if !key[i..].contains('/') => &key[..i],
        _ => key,
    }
}

fn familiar(key: &str) -> String {
    ImageRef::parse(key)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| key.to_string())
}

fn familiar_all(keys: &[String]) -> Vec<String> {
    keys.iter().map(|k| familiar(k)).collect()
}

fn untagged(key: &str) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: Some(familiar(key)),
        deleted: None,
    }
}

fn deleted(id: &str) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: None,
        deleted: Some(id.to_string()),
    }
}

/// Docker's `label` filter: every `key` or `key=value` must match. Shared by image,
/// container and event filters.
pub fn labels_match(wanted: &[String], labels: &HashMap<String, String>) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// A familiar name (`app:v1`, `app@sha256:…`) against `reference` patterns, which may
/// name the repository alone or with its tag.
fn reference_matches(patterns: &[String], familiar: &str) -> bool {
    let name = match familiar.split_once('@') {
        Some((n, _)) => n,
        None => match familiar.rfind(':') {
            Some(i) if !familiar[i..].contains('/') => &familiar[..i],
            _ => familiar,
        },
    };
    patterns
        .iter()
        .any(|p| pattern_matches(p, familiar) || pattern_matches(p, name))
}

fn matches_filters(
    f: &ImageFilters,
    repo_tags: &[String],
    labels: &HashMap<String, String>,
    created: i64,
) -> bool {
    if let Some(d) = f.dangling {
        if d != repo_tags.is_empty() {
            return false;
        }
    }
    if f.until.is_some_and(|u| created >= u) {
        return false;
    }
    if !f.not_label.is_empty() && labels_match(&f.not_label, labels) {
        return false;
    }
    labels_match(&f.label, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_of_handles_ports_and_digests() {
        assert_eq!(repo_of("127.0.0.1:5000/app:v1"), "127.0.0.1:5000/app");
        assert_eq!(
            repo_of("127.0.0.1:5000/app@sha256:ab"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(
            repo_of("docker.io/library/busybox:latest"),
            "docker.io/library/busybox"
        );
    }

    #[test]
    fn label_filters() {
        let mut l = HashMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(labels_match(&["a".into()], &l));
        assert!(labels_match(&["a=1".into()], &l));
        assert!(!labels_match(&["a=2".into()], &l));
        assert!(!labels_match(&["b".into()], &l));
    }
}
