//! `docker save` and `docker load`: image archives in the format Docker 25+ writes, an
//! OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…`) that also carries the
//! docker-archive `manifest.json`, so both dockerd and OCI tools read it. Load accepts
//! either kind (and older dockerd archives, whose layers are plain tars at other
//! paths). Every layer is unpacked with the normal unpacker and checked against the
//! config's diff_ids before anything is registered.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::catalog::ImageRecord;
use super::config::ConfigFile;
use super::layers::BlobRef;
use super::reference::ImageRef;
use super::{full_tagged, ImageError, ImageService};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_V1: &str = "application/vnd.docker.container.image.v1+json";

#[derive(Deserialize)]
struct ArchiveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// The schema2 manifest of an image whose layer blobs are all known.
pub(super) fn manifest_for(config: &[u8], layers: &[BlobRef]) -> Vec<u8> {
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": CONFIG_V1, "size": config.len(), "digest": super::digest::sha256(config)},
        "layers": layers.iter().map(|b| serde_json::json!({
            "mediaType": b.media_type, "size": b.size, "digest": b.digest,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&m).unwrap_or_default()
}

fn append_file(b: &mut tar::Builder<impl Write>, name: &str, path: &Path) -> io::Result<()> {
    let mut f = fs::File::open(path)?;
    let mut h = tar::Header::new_gnu();
    h.set_size(f.metadata()?.len());
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, &mut f)
}

fn append_bytes(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

fn dir_entry(b: &mut tar::Builder<impl Write>, name: &str) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, name, io::empty())
}

impl ImageService {
    /// The compressed blobs of `diff_ids`, which push and save send as they are.
    pub(super) fn layer_blobs(
        &self,
        diff_ids: &[String],
        image: &str,
        what: &str,
    ) -> Result<Vec<BlobRef>, ImageError> {
        diff_ids
            .iter()
            .map(|d| {
                self.layers.blob_of(d).ok_or_else(|| {
                    ImageError::Conflict(format!(
                        "image {image} has a layer ({d}) pulled before Berth kept layer blobs; pull it again to {what} it"
                    ))
                })
            })
            .collect()
    }

    /// Writes the images `names` (with the tags they were named by) as one archive.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<(), ImageError> {
        // image id → tags asked for (an id alone carries no tag).
        let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in names {
            let id = self.resolve(n)?;
            let tags = images.entry(id.clone()).or_default();
            if !n.starts_with("sha256:") && !id.contains(n.as_str()) {
                if let Ok(r) = ImageRef::parse(n) {
                    if r.digest().is_none() {
                        tags.push(r.to_string());
                    }
                }
            }
        }
        self.write_archive(&images, out)
    }

    /// Writes image `id` as one archive under the names `tags` (normalised, not
    /// looked up in the store): what a build's `docker` and `oci` exporters send.
    pub fn save_as(&self, id: &str, tags: &[String], out: impl Write) -> Result<(), ImageError> {
        let id = self.resolve(id)?;
        let tags = tags
            .iter()
            .filter_map(|t| ImageRef::parse(t).ok())
            .filter(|r| r.digest().is_none())
            .map(|r| r.to_string())
            .collect();
        self.write_archive(&BTreeMap::from([(id, tags)]), out)
    }

    /// The archive of `images` (id → tags): OCI layout and `docker save`'s
    /// `manifest.json` in one.
    fn write_archive(
        &self,
        images: &BTreeMap<String, Vec<String>>,
        out: impl Write,
    ) -> Result<(), ImageError> {
        let err = |c: &'static str| ImageError::io(c);
        let mut b = tar::Builder::new(out);
        dir_entry(&mut b, "blobs/").map_err(err("writing the archive"))?;
        dir_entry(&mut b, "blobs/sha256/").map_err(err("writing the archive"))?;
        let mut written = std::collections::HashSet::new();
        let mut manifests = Vec::new();
        let mut index = Vec::new();
        for (id, tags) in images {
            let rec = self
                .catalog()
                .data
                .images
                .get(id)
                .cloned()
                .ok_or_else(|| ImageError::NotFound(id.clone()))?;
            let cfg = self.blobs.get(id)?;
            let layers = self.layer_blobs(&rec.diff_ids, id, "save")?;
            let manifest = manifest_for(&cfg, &layers);
            let manifest_digest = super::digest::sha256(&manifest);
            let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
            for (digest, data) in [
                (id.clone(), cfg.clone()),
                (manifest_digest.clone(), manifest.clone()),
            ] {
                if written.insert(digest.clone()) {
                    append_bytes(&mut b, &format!("blobs/sha256/{}", hex(&digest)), &data)
                        .map_err(err("writing the archive"))?;
                }
            }
            for l in &layers {
                if written.insert(l.digest.clone()) {
                    let path = self.blobs.file(&l.digest)?;
                    append_file(&mut b, &format!("blobs/sha256/{}", hex(&l.digest)), &path)
                        .map_err(err("writing the archive"))?;
                }
            }
            manifests.push(serde_json::json!({
                "Config": format!("blobs/sha256/{}", hex(id)),
                "RepoTags": tags,
                "Layers": layers.iter().map(|l| format!("blobs/sha256/{}", hex(&l.digest))).collect::<Vec<_>>(),
            }));
            let mut entry = serde_json::json!({
                "mediaType": MANIFEST_V2, "digest": manifest_digest, "size": manifest.len(),
            });
            if let Some(t) = tags.first() {
                entry["annotations"] = serde_json::json!({
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": t.rsplit(':').next().unwrap_or("latest"),
                });
            }
            index.push(entry);
        }
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index});
        let json = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
        append_bytes(&mut b, "index.json", &json(&index)).map_err(err("writing the archive"))?;
        append_bytes(
            &mut b,
            "manifest.json",
            &json(&serde_json::Value::Array(manifests)),
        )
        .map_err(err("writing the archive"))?;
        append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(err("writing the archive"))?;
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(err("writing the archive"))
    }

    /// Loads an archive; returns what was loaded, as the lines `docker load` prints.
    pub fn load(&self, archive: impl Read) -> Result<Vec<String>, ImageError> {
        let dir = self.layers.scratch("load");
        fs::create_dir_all(&dir).map_err(ImageError::io("creating the load directory"))?;
        let result = self.load_from(archive, &dir);
        let _ = fs::remove_dir_all(&dir);
        result
    }

    fn load_from(&self, archive: impl Read, dir: &Path) -> Result<Vec<String>, ImageError> {
        let bad = |m: String| ImageError::InvalidArchive(m);
        // Plain files only, no links, no escapes: the archive is untrusted input.
        let mut files: HashMap<String, PathBuf> = HashMap::new();
        let mut ar = tar::Archive::new(archive);
        for (n, e) in ar
            .entries()
            .map_err(|e| bad(format!("reading the archive: {e}")))?
            .enumerate()
        {
            let mut e = e.map_err(|e| bad(format!("reading the archive: {e}")))?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = e
                .path()
                .map_err(|e| bad(format!("bad name in the archive: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let path = dir.join(format!("f{n}"));
            let mut f = fs::File::create(&path).map_err(ImageError::io("unpacking the archive"))?;
            io::copy(&mut e, &mut f).map_err(|e| bad(format!("reading the archive: {e}")))?;
            files.insert(name, path);
        }
        let read = |name: &str| -> Result<Vec<u8>, ImageError> {
            let p = files
                .get(name.trim_start_matches("./"))
                .ok_or_else(|| bad(format!("{name} is missing from the archive")))?;
            fs::read(p).map_err(ImageError::io("reading the archive"))
        };
        let entries: Vec<ArchiveManifest> = if files.contains_key("manifest.json") {
            serde_json::from_slice(&read("manifest.json")?)
                .map_err(|e| bad(format!("invalid manifest.json: {e}")))?
        } else if files.contains_key("index.json") {
            self.oci_entries(&read("index.json")?, &read)?
        } else {
            return Err(bad(
                "neither manifest.json nor index.json found in the archive".into(),
            ));
        };
        let mut out = Vec::new();
        for m in entries {
            let cfg_bytes = read(&m.config)?;
            let id = super::digest::sha256(&cfg_bytes);
            let cfg: ConfigFile = serde_json::from_slice(&cfg_bytes)
                .map_err(|e| bad(format!("invalid image config {}: {e}", m.config)))?;
            if cfg.rootfs.diff_ids.len() != m.layers.len() {
                return Err(bad(format!(
                    "the manifest lists {} layers but the config {}",
                    m.layers.len(),
                    cfg.rootfs.diff_ids.len()
                )));
            }
            let mut blobs = Vec::new();
            for (layer, diff_id) in m.layers.iter().zip(&cfg.rootfs.diff_ids) {
                let path = files
                    .get(layer.trim_start_matches("./"))
                    .ok_or_else(|| bad(format!("{layer} is missing from the archive")))?;
                blobs.push(self.load_layer(path, diff_id)?);
            }
            let manifest = manifest_for(&cfg_bytes, &blobs);
            let manifest_digest = super::digest::sha256(&manifest);
            self.blobs
                .put_all(&[(&id, &cfg_bytes), (&manifest_digest, &manifest)])?;
            let size = cfg
                .rootfs
                .diff_ids
                .iter()
                .map(|d| self.layers.size(d))
                .sum();
            let tags: Vec<ImageRef> = m
                .repo_tags
                .unwrap_or_default()
                .iter()
                .filter_map(|t| ImageRef::parse(t).ok())
                .collect();
            {
                let mut cat = self.catalog();
                cat.data.images.entry(id.clone()).or_insert(ImageRecord {
                    id: id.clone(),
                    diff_ids: cfg.rootfs.diff_ids.clone(),
                    size,
                    manifest_digest: Some(manifest_digest),
                    last_tag_time: None,
                    parent: None,
                });
                for t in &tags {
                    cat.data.tags.insert(full_tagged(t), id.clone());
                }
                cat.save()?;
            }
            if tags.is_empty() {
                out.push(format!("Loaded image ID: {id}"));
            }
            for t in tags {
                self.emit("load", &id, Some(&t.to_string()));
                out.push(format!("Loaded image: {t}"));
            }
        }
        Ok(out)
    }

    /// The entries of an OCI layout's index, as docker-archive entries.
    fn oci_entries(
        &self,
        index: &[u8],
        read: &dyn Fn(&str) -> Result<Vec<u8>, ImageError>,
    ) -> Result<Vec<ArchiveManifest>, ImageError> {
        let bad = |m: String| ImageError::InvalidArchive(m);
        let index: serde_json::Value =
            serde_json::from_slice(index).map_err(|e| bad(format!("invalid index.json: {e}")))?;
        let path = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let mut out = Vec::new();
        for desc in index["manifests"].as_array().cloned().unwrap_or_default() {
            let digest = desc["digest"].as_str().unwrap_or_default();
            let m: serde_json::Value = serde_json::from_slice(&read(&path(digest))?)
                .map_err(|e| bad(format!("invalid manifest {digest}: {e}")))?;
            let name = desc["annotations"]["io.containerd.image.name"]
                .as_str()
                .map(str::to_string);
            out.push(ArchiveManifest {
                config: path(m["config"]["digest"].as_str().unwrap_or_default()),
                repo_tags: name.map(|n| vec![n]),
                layers: m["layers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|l| path(l["digest"].as_str().unwrap_or_default()))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Verifies and stores one layer file of an archive; returns its blob.
    fn load_layer(&self, path: &Path, diff_id: &str) -> Result<BlobRef, ImageError> {
        let mut hasher = Sha256::new();
        let mut f = fs::File::open(path).map_err(ImageError::io("reading a layer"))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        let mut magic = Vec::new();
        loop {
            let n = f
                .read(&mut buf)
                .map_err(ImageError::io("reading a layer"))?;
            if n == 0 {
                break;
            }
            if magic.len() < 4 {
                magic.extend_from_slice(&buf[..n.min(4 - magic.len())]);
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let media_type = if magic.starts_with(&[0x1f, 0x8b]) {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        } else {
            "application/vnd.docker.image.rootfs.diff.tar"
        };
        if !self.layers.exists(diff_id) {
            let pending = self.layers.begin()?;
            let reader = fs::File::open(path).map_err(ImageError::io("reading a layer"))?;
            let (actual, stats) = super::pull::unpack_file(reader, &pending.diff_dir())?;
            if actual != diff_id {
                return Err(ImageError::InvalidArchive(format!(
                    "layer {digest} has diff_id {actual}, but the image config says {diff_id}"
                )));
            }
            self.layers.commit(pending, diff_id, stats.size)?;
        }
        let blob = BlobRef {
            digest: digest.clone(),
            media_type: media_type.into(),
            size,
        };
        let kept = self.layers.scratch("loaded");
        if fs::hard_link(path, &kept).is_err() {
            fs::copy(path, &kept).map_err(ImageError::io("keeping a layer blob"))?;
        }
        self.blobs.adopt(&digest, &kept)?;
        self.layers.set_blob(diff_id, &blob)?;
        Ok(blob)
    }
}
