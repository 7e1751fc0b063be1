//! Test images: OCI layouts built locally (busybox-static, generated data) and pushed with skopeo.
//!
//! Every digest is deterministic for the same inputs, and each image exposes the
//! digests tests compare against (manifest, config = image ID, index, layers).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::registry::Registry;

/// The tag of the single image (or index) in every layout written here.
const LAYOUT_TAG: &str = "latest";
const CREATED: &str = "2024-05-01T12:00:00Z";
const MTIME: u64 = 1_714_564_800;
const BUSYBOX: &str = "/bin/busybox";
mod multiarch;
pub use multiarch::{
    foreign_arch, foreign_busybox_image, multiarch_index, native_and_foreign_index,
};

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "env", "id", "hostname", "ps", "top",
    "wget", "httpd", "mkdir", "rm", "touch", "uname", "whoami",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Uncompresses a layer blob according to its media type (`…tar`, `+gzip`, `+zstd`).
pub fn decompress(blob: &[u8], media_type: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    if media_type.ends_with("gzip") {
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut out)
            .context("gunzip")?;
    } else if media_type.ends_with("zstd") {
        out = zstd::decode_all(blob).context("zstd -d")?;
    } else {
        out = blob.to_vec();
    }
    Ok(out)
}

/// A layer tar under construction.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        LayerBuilder { tar }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> anyhow::Result<&mut Self> {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.tar.append_data(&mut h, path, std::io::empty())?;
        Ok(self)
    }

    /// A directory or file owned by `uid:gid` (`data: None` makes a directory).
    pub fn owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        data: Option<&[u8]>,
    ) -> anyhow::Result<&mut Self> {
        let (kind, bytes) = match data {
            Some(d) => (tar::EntryType::Regular, d),
            None => (tar::EntryType::Directory, &[][..]),
        };
        let mut h = Self::header(kind, mode, bytes.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        self.tar.append_data(&mut h, path, bytes)?;
        Ok(self)
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> anyhow::Result<&mut Self> {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.tar.append_data(&mut h, path, data)?;
        Ok(self)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> anyhow::Result<&mut Self> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.tar.append_link(&mut h, path, target)?;
        Ok(self)
    }

    /// Appends an entry with raw name and link bytes, bypassing the tar crate's path
    /// checks (which refuse `..` and absolute links): this is how a hostile layer is
    /// made. Names or links over 100 bytes go in GNU `././@LongLink` entries.
    pub fn raw(
        &mut self,
        kind: tar::EntryType,
        name: &str,
        link: &str,
        data: &[u8],
    ) -> anyhow::Result<&mut Self> {
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        {
            let old = h.as_old_mut();
            if name.len() > old.name.len() {
                self.long_link(tar::EntryType::GNULongName, name)?;
            }
            if link.len() > old.linkname.len() {
                self.long_link(tar::EntryType::GNULongLink, link)?;
            }
            let old = h.as_old_mut();
            old.name = [0; 100];
            let n = name.len().min(100);
            old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
            old.linkname = [0; 100];
            let n = link.len().min(100);
            old.linkname[..n].copy_from_slice(&link.as_bytes()[..n]);
        }
        h.set_cksum();
        self.tar.append(&h, data)?;
        Ok(self)
    }

    /// A GNU long name (`L`) or long link (`K`) entry for the entry that follows.
    fn long_link(&mut self, kind: tar::EntryType, value: &str) -> anyhow::Result<()> {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..13].copy_from_slice(b"././@LongLink");
        h.set_cksum();
        self.tar.append(&h, &data[..])?;
        Ok(())
    }

    pub fn finish(self, compression: Compression) -> anyhow::Result<Layer> {
        let raw = self.tar.into_inner()?;
        Layer::from_tar(raw, compression)
    }
}

/// A finished layer blob.
#[derive(Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
    pub media_type: &'static str,
}

impl Layer {
    pub fn from_tar(raw: Vec<u8>, compression: Compression) -> anyhow::Result<Layer> {
        let diff_id = sha256(&raw);
        let (blob, media_type) = match compression {
            Compression::None => (raw, "application/vnd.oci.image.layer.v1.tar"),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&raw)?;
                (enc.finish()?, "application/vnd.oci.image.layer.v1.tar+gzip")
            }
            Compression::Zstd => (
                zstd::encode_all(&raw[..], 3)?,
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
        };
        Ok(Layer {
            digest: sha256(&blob),
            diff_id,
            blob,
            media_type,
        })
    }
}

/// A layer as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDesc {
    pub media_type: String,
    /// Digest of the (compressed) blob.
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    pub size: u64,
}

/// One platform image inside a layout.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub architecture: String,
    pub variant: Option<String>,
    pub manifest_digest: String,
    pub config_digest: String,
    pub diff_ids: Vec<String>,
    pub layers: Vec<LayerDesc>,
}

/// An OCI image layout on disk: one image, or an index of several.
pub struct ImageLayout {
    dir: tempfile::TempDir,
    images: Vec<PlatformImage>,
    index_digest: Option<String>,
}

struct Writer {
    root: PathBuf,
}

impl Writer {
    fn new(root: &Path) -> anyhow::Result<Writer> {
        std::fs::create_dir_all(root.join("blobs/sha256"))?;
        std::fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(Writer {
            root: root.to_path_buf(),
        })
    }

    fn blob(&self, data: &[u8]) -> anyhow::Result<String> {
        let d = sha256(data);
        std::fs::write(
            self.root.join("blobs/sha256").join(&d["sha256:".len()..]),
            data,
        )?;
        Ok(d)
    }

    /// Writes config + manifest; returns (manifest json bytes, image facts).
    fn image(
        &self,
        layers: &[Layer],
        arch: &str,
        variant: Option<&str>,
        cmd: &[&str],
        history: &[&str],
        volumes: &[&str],
    ) -> anyhow::Result<(Vec<u8>, PlatformImage)> {
        for l in layers {
            self.blob(&l.blob)?;
        }
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let mut config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": CREATED,
            "author": "berth tests",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
                "Labels": {"org.berth.test": "1"},
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history.iter().map(|h| serde_json::json!({"created": CREATED, "created_by": h})).collect::<Vec<_>>(),
        });
        if let Some(v) = variant {
            config["variant"] = v.into();
        }
        if !volumes.is_empty() {
            config["config"]["Volumes"] = volumes
                .iter()
                .map(|v| (v.to_string(), serde_json::json!({})))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        let config_bytes = serde_json::to_vec(&config)?;
        let config_digest = self.blob(&config_bytes)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.blob.len(),
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest)?;
        let manifest_digest = self.blob(&manifest_bytes)?;
        Ok((
            manifest_bytes,
            PlatformImage {
                architecture: arch.to_string(),
                variant: variant.map(str::to_string),
                manifest_digest,
                config_digest,
                diff_ids,
                layers: layers
                    .iter()
                    .map(|l| LayerDesc {
                        media_type: l.media_type.to_string(),
                        digest: l.digest.clone(),
                        diff_id: l.diff_id.clone(),
                        size: l.blob.len() as u64,
                    })
                    .collect(),
            },
        ))
    }

    fn index(&self, entries: serde_json::Value) -> anyhow::Result<()> {
        std::fs::write(
            self.root.join("index.json"),
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": entries}))?,
        )?;
        Ok(())
    }
}

fn new_dir() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("berth-oci-").tempdir()?)
}

fn busybox_layer(compression: Compression) -> anyhow::Result<Layer> {
    let busybox =
        std::fs::read(BUSYBOX).context("reading /bin/busybox (apt-get install busybox-static)")?;
    busybox_layer_of(&busybox, compression)
}

fn busybox_layer_of(busybox: &[u8], compression: Compression) -> anyhow::Result<Layer> {
    let mut b = LayerBuilder::new();
    b.dir("bin", 0o755)?;
    b.file("bin/busybox", 0o755, busybox)?;
    for a in APPLETS {
        b.symlink(&format!("bin/{a}"), "busybox")?;
    }
    b.dir("etc", 0o755)?;
    b.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    b.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    b.dir("root", 0o700)?;
    b.dir("tmp", 0o1777)?;
    b.finish(compression)
}

impl ImageLayout {
    fn single(
        layers: &[Layer],
        arch: &str,
        variant: Option<&str>,
        history: &[&str],
    ) -> anyhow::Result<ImageLayout> {
        Self::single_with(layers, arch, variant, history, &[])
    }

    fn single_with(
        layers: &[Layer],
        arch: &str,
        variant: Option<&str>,
        history: &[&str],
        volumes: &[&str],
    ) -> anyhow::Result<ImageLayout> {
        let dir = new_dir()?;
        let w = Writer::new(dir.path())?;
        let (manifest, img) = w.image(layers, arch, variant, &["sh"], history, volumes)?;
        w.index(serde_json::json!([{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": LAYOUT_TAG},
        }]))?;
        Ok(ImageLayout {
            dir,
            images: vec![img],
            index_digest: None,
        })
    }

    /// Pushes the layout as `registry/name_tag` (all platforms of an index) with
    /// `skopeo copy --preserve-digests`, so the registry holds exactly these digests.
    /// Uses the registry's credentials when it needs them.
    pub fn push(&self, registry: &Registry, name_tag: &str) -> anyhow::Result<()> {
        self.push_as(registry, name_tag, registry.creds().as_deref())
    }

    /// Like [`ImageLayout::push`] with explicit `user:password` (or none), to check
    /// that a registry refuses wrong credentials.
    pub fn push_as(
        &self,
        registry: &Registry,
        name_tag: &str,
        creds: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ]);
        if self.index_digest.is_some() {
            cmd.arg("--all");
        }
        match creds {
            Some(c) => {
                cmd.arg("--dest-creds").arg(c);
            }
            // Never pick up a login from the user's auth.json.
            None => {
                cmd.arg("--dest-no-creds");
            }
        }
        // A private, empty auth file: never the user's logins.
        let authdir = tempfile::Builder::new().prefix("berth-skopeo-").tempdir()?;
        let authfile = authdir.path().join("auth.json");
        std::fs::write(&authfile, b"{}")?;
        cmd.arg("--authfile").arg(&authfile);
        cmd.arg(format!("oci:{}:{LAYOUT_TAG}", self.dir.path().display()));
        cmd.arg(format!("docker://{}/{}", registry.addr(), name_tag));
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .context("running skopeo (apt-get install skopeo)")?;
        if !out.status.success() {
            bail!(
                "skopeo copy to {}/{name_tag} failed: {}",
                registry.addr(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Reads a blob (layer, config, manifest or index) of the layout by digest.
    pub fn blob(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("not a sha256 digest: {digest}"))?;
        let path = self.dir.path().join("blobs/sha256").join(hex);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The uncompressed tar of a layer blob of this layout.
    pub fn layer_tar(&self, layer: &LayerDesc) -> anyhow::Result<Vec<u8>> {
        let blob = self.blob(&layer.digest)?;
        decompress(&blob, &layer.media_type)
    }

    /// Layers of the (first) platform image, bottom first.
    pub fn layers(&self) -> &[LayerDesc] {
        &self.first().layers
    }

    fn first(&self) -> &PlatformImage {
        &self.images[0]
    }

    /// Digest of the (first) platform manifest.
    pub fn manifest_digest(&self) -> String {
        self.first().manifest_digest.clone()
    }

    /// The image ID dockerd would report: the config digest.
    pub fn config_digest(&self) -> String {
        self.first().config_digest.clone()
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.first().diff_ids.clone()
    }

    /// The index digest of a multi-platform layout.
    pub fn index_digest(&self) -> String {
        self.index_digest.clone().unwrap_or_default()
    }

    /// Config digest of the platform image for `arch`/`variant`.
    pub fn config_digest_for(&self, arch: &str, variant: Option<&str>) -> String {
        self.images
            .iter()
            .find(|i| i.architecture == arch && i.variant.as_deref() == variant)
            .map(|i| i.config_digest.clone())
            .unwrap_or_default()
    }

    pub fn platforms(&self) -> &[PlatformImage] {
        &self.images
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// busybox-static in one layer, `Cmd ["sh"]`, a label, for `arch`.
pub fn busybox_image(compression: Compression, arch: &str) -> anyhow::Result<ImageLayout> {
    let layer = busybox_layer(compression)?;
    ImageLayout::single(&[layer], arch, None, &["ADD busybox-static /bin/"])
}

/// busybox plus `VOLUME /data`, where the image has `/data/seed` ("seeded", mode 0640)
/// in a 0750 directory, both owned by 65534 (nobody).
pub fn busybox_volume_image() -> anyhow::Result<ImageLayout> {
    let base = busybox_layer(Compression::Gzip)?;
    let mut top = LayerBuilder::new();
    top.owned("data", 0o750, 65534, None)?
        .owned("data/seed", 0o640, 65534, Some(b"seeded"))?;
    let top = top.finish(Compression::Gzip)?;
    ImageLayout::single_with(
        &[base, top],
        "amd64",
        None,
        &["ADD busybox-static /bin/", "VOLUME /data"],
        &["/data"],
    )
}

/// Two layers: the second deletes `data/gone` and makes `opq/` opaque.
pub fn whiteout_image() -> anyhow::Result<ImageLayout> {
    let mut base = LayerBuilder::new();
    base.dir("data", 0o755)?
        .file("data/keep", 0o644, b"keep")?
        .file("data/gone", 0o644, b"gone")?
        .dir("opq", 0o755)?
        .file("opq/old", 0o644, b"old")?;
    let base = base.finish(Compression::Gzip)?;
    let mut top = LayerBuilder::new();
    top.dir("data", 0o755)?
        .file("data/.wh.gone", 0o644, b"")?
        .dir("opq", 0o755)?
        .file("opq/.wh..wh..opq", 0o644, b"")?
        .file("opq/new", 0o644, b"new")?;
    let top = top.finish(Compression::Gzip)?;
    ImageLayout::single(
        &[base, top],
        "amd64",
        None,
        &["ADD base", "RUN rm data/gone && rm -rf opq/*"],
    )
}

/// The content of every [`MaliciousImage::victim`]; it must never change.
pub const VICTIM_CONTENT: &[u8] = b"secret";

/// A hostile single-layer image and what it tries to write outside the store.
pub struct MaliciousImage {
    /// `dotdot`, `symlink` or `hardlink`.
    pub tag: &'static str,
    pub image: ImageLayout,
    /// A path in a fresh temp dir outside any store: must not exist after the pull.
    pub escape_target: PathBuf,
    /// An existing file outside the store (content [`VICTIM_CONTENT`]) that must keep
    /// a link count of 1 and its content.
    pub victim: Option<PathBuf>,
    _outside: tempfile::TempDir,
}

impl MaliciousImage {
    /// What escaped, if anything: the target exists, or the victim was linked or
    /// changed.
    pub fn escaped(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        if self.escape_target.symlink_metadata().is_ok() {
            return Some(format!(
                "{} wrote {}",
                self.tag,
                self.escape_target.display()
            ));
        }
        if let Some(v) = &self.victim {
            match std::fs::metadata(v) {
                Ok(m) if m.nlink() != 1 => {
                    return Some(format!("{} hard-linked {}", self.tag, v.display()))
                }
                Ok(_) => {}
                Err(e) => return Some(format!("{}: victim {}: {e}", self.tag, v.display())),
            }
            if std::fs::read(v).ok().as_deref() != Some(VICTIM_CONTENT) {
                return Some(format!("{} changed {}", self.tag, v.display()));
            }
        }
        // Anything else that appeared next to the target.
        let extra: Vec<_> = std::fs::read_dir(self._outside.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| Some(p) != self.victim.as_ref())
                    .collect()
            })
            .unwrap_or_default();
        if !extra.is_empty() {
            return Some(format!("{} wrote {extra:?}", self.tag));
        }
        None
    }
}

fn outside_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("berth-escape-")
        .tempdir()
        .context("making a temp dir for an escape target")
}

/// Three images that each try one escape (each target in its own fresh temp dir):
/// - `dotdot`: a file entry `../../…/<tmp>/berth-escape-X/dotdot-pwned`, climbing out
///   of wherever it is unpacked to an absolute, unique target;
/// - `symlink`: `evil -> <tmp>/berth-escape-X` (absolute) then a file `evil/pwned`;
/// - `hardlink`: `hl` hard-linked to `../../…/<tmp>/berth-escape-X/secret`, an existing
///   file, then a regular `hl` whose content would be written through the link.
pub fn malicious_images() -> anyhow::Result<Vec<MaliciousImage>> {
    let mut out = Vec::new();
    let climb = "../".repeat(16);

    let outside = outside_dir()?;
    let target = outside.path().join("dotdot-pwned");
    let rel = target.strip_prefix("/")?.display().to_string();
    let mut b = LayerBuilder::new();
    b.raw(
        tar::EntryType::Regular,
        &format!("{climb}{rel}"),
        "",
        b"pwned",
    )?;
    out.push(MaliciousImage {
        tag: "dotdot",
        image: ImageLayout::single(&[b.finish(Compression::Gzip)?], "amd64", None, &["evil"])?,
        escape_target: target,
        victim: None,
        _outside: outside,
    });

    let outside = outside_dir()?;
    let mut b = LayerBuilder::new();
    b.raw(
        tar::EntryType::Symlink,
        "evil",
        &outside.path().display().to_string(),
        b"",
    )?;
    b.raw(tar::EntryType::Regular, "evil/pwned", "", b"pwned")?;
    out.push(MaliciousImage {
        tag: "symlink",
        image: ImageLayout::single(&[b.finish(Compression::Gzip)?], "amd64", None, &["evil"])?,
        escape_target: outside.path().join("pwned"),
        victim: None,
        _outside: outside,
    });

    let outside = outside_dir()?;
    let victim = outside.path().join("secret");
    std::fs::write(&victim, VICTIM_CONTENT)?;
    let rel = victim.strip_prefix("/")?.display().to_string();
    let mut b = LayerBuilder::new();
    b.raw(tar::EntryType::Link, "hl", &format!("{climb}{rel}"), b"")?;
    b.raw(tar::EntryType::Regular, "hl", "", b"pwned")?;
    out.push(MaliciousImage {
        tag: "hardlink",
        image: ImageLayout::single(&[b.finish(Compression::Gzip)?], "amd64", None, &["evil"])?,
        escape_target: outside.path().join("hl"),
        victim: Some(victim),
        _outside: outside,
    });
    Ok(out)
}

/// Incompressible data in three layers totalling about `size_mb` MB (gzip), for pull
/// benchmarks and interrupted-pull tests. `seed` makes distinct images.
pub fn random_image_seeded(size_mb: usize, seed: u64) -> anyhow::Result<ImageLayout> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        // xorshift64*: fast, deterministic, incompressible enough for gzip.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let sizes = [
        size_mb / 6,
        size_mb / 3,
        size_mb - size_mb / 6 - size_mb / 3,
    ];
    let mut layers = Vec::new();
    for (i, mb) in sizes.iter().enumerate() {
        let mut data = Vec::with_capacity(mb * 1_000_000 + 8);
        while data.len() < mb * 1_000_000 {
            data.extend_from_slice(&next().to_le_bytes());
        }
        let mut b = LayerBuilder::new();
        b.dir("data", 0o755)?;
        b.file(&format!("data/blob{i}"), 0o644, &data)?;
        layers.push(b.finish(Compression::Gzip)?);
    }
    ImageLayout::single(&layers, "amd64", None, &["ADD 1", "ADD 2", "ADD 3"])
}

pub fn random_image(size_mb: usize) -> anyhow::Result<ImageLayout> {
    random_image_seeded(size_mb, 1)
}
