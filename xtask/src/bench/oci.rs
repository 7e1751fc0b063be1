//! Bench images: OCI image layouts of incompressible pseudo-random layers (gzip), written
//! from a seed so every image has fresh content, or of one small busybox layer; pushed to
//! a registry with skopeo.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::json;
use sha2::{Digest, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A fixed timestamp keeps the layouts reproducible from their seed.
const CREATED: &str = "2026-01-01T00:00:00Z";
const MTIME: u64 = 1_767_225_600;

/// Splitmix64 bytes: fast, deterministic per seed (for a given read pattern), and
/// incompressible for gzip.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hash.finalize()));
        (self.inner, digest, self.len)
    }
}

struct Blob {
    digest: String,
    size: u64,
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> anyhow::Result<Blob> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    std::fs::write(blob_path(layout, &digest), bytes)?;
    Ok(Blob {
        digest,
        size: bytes.len() as u64,
    })
}

type LayerTar = tar::Builder<Hashing<flate2::write::GzEncoder<Hashing<BufWriter<File>>>>>;

/// One gzip layer whose tar `fill` writes (deterministic headers). Returns the blob and
/// the layer's diff_id.
fn write_tar_layer(
    layout: &Path,
    level: flate2::Compression,
    fill: impl FnOnce(&mut LayerTar) -> std::io::Result<()>,
) -> anyhow::Result<(Blob, String)> {
    let tmp = layout.join("blobs/sha256/.layer.tmp");
    let file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let gz = flate2::write::GzEncoder::new(Hashing::new(file), level);
    let mut tar = tar::Builder::new(Hashing::new(gz));
    tar.mode(tar::HeaderMode::Deterministic);
    fill(&mut tar)?;
    let (gz, diff_id, _) = tar.into_inner()?.finish();
    let (file, digest, compressed) = gz.finish()?.finish();
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, blob_path(layout, &digest))?;
    Ok((
        Blob {
            digest,
            size: compressed,
        },
        diff_id,
    ))
}

fn dir_header() -> tar::Header {
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_mtime(MTIME);
    dir.set_size(0);
    dir
}

/// One gzip layer holding `bench/layer-<seed>.bin` of `size` random bytes.
/// Returns the blob and the layer's diff_id.
fn write_layer(layout: &Path, size: u64, seed: u64) -> anyhow::Result<(Blob, String)> {
    write_tar_layer(layout, flate2::Compression::fast(), |tar| {
        tar.append_data(&mut dir_header(), "bench/", std::io::empty())?;
        let mut file = tar::Header::new_gnu();
        file.set_mode(0o644);
        file.set_mtime(MTIME);
        file.set_size(size);
        let noise = Noise {
            state: seed,
            left: size,
        };
        tar.append_data(&mut file, format!("bench/layer-{seed}.bin"), noise)
    })
}

/// Commands of the busybox image, each a symlink to `bin/busybox`.
/// `sh` and `true` for the run bench; the rest for the fs bench's workload.
const BUSYBOX_APPLETS: [&str; 8] = ["sh", "true", "sleep", "dd", "cat", "ls", "mkdir", "rm"];

/// One gzip layer holding `bin/busybox` (a copy of `busybox`) and the
/// `BUSYBOX_APPLETS` symlinks to it.
fn write_busybox_layer(layout: &Path, busybox: &Path) -> anyhow::Result<(Blob, String)> {
    let bytes = std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    write_tar_layer(layout, flate2::Compression::default(), |tar| {
        tar.append_data(&mut dir_header(), "bin/", std::io::empty())?;
        let mut file = tar::Header::new_gnu();
        file.set_mode(0o755);
        file.set_mtime(MTIME);
        file.set_size(bytes.len() as u64);
        tar.append_data(&mut file, "bin/busybox", bytes.as_slice())?;
        for applet in BUSYBOX_APPLETS {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_mode(0o777);
            link.set_mtime(MTIME);
            link.set_size(0);
            tar.append_link(&mut link, format!("bin/{applet}"), "busybox")?;
        }
        Ok(())
    })
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Writes an OCI image layout at `layout` tagged `tag`: one layer per entry of
/// `layer_sizes` (bytes), each seeded from `seed`. Returns the compressed size.
pub fn write_layout(
    layout: &Path,
    tag: &str,
    seed: u64,
    layer_sizes: &[u64],
) -> anyhow::Result<u64> {
    create_layout_dirs(layout)?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in layer_sizes.iter().enumerate() {
        let (blob, diff_id) = write_layer(layout, *size, seed.wrapping_mul(1000) + i as u64)?;
        layers.push(blob);
        diff_ids.push(diff_id);
    }
    let config = json!({
        "created": CREATED,
        "architecture": goarch(),
        "os": "linux",
        "config": { "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": layer_sizes.iter().map(|s| json!({
            "created": CREATED,
            "created_by": format!("cargo xtask bench: {s} random bytes"),
        })).collect::<Vec<_>>(),
    });
    finish_layout(layout, tag, &layers, &config)
}

/// Writes a tiny OCI image layout at `layout` tagged `tag`: one gzip layer with
/// `bin/busybox` (copied from the static `busybox`) and `bin/sh`, `bin/true` symlinks to
/// it; Cmd `["sh"]`, `PATH=/bin`. Returns the compressed size.
pub fn write_busybox_layout(layout: &Path, tag: &str, busybox: &Path) -> anyhow::Result<u64> {
    create_layout_dirs(layout)?;
    let (layer, diff_id) = write_busybox_layer(layout, busybox)?;
    let config = json!({
        "created": CREATED,
        "architecture": goarch(),
        "os": "linux",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{
            "created": CREATED,
            "created_by": format!(
                "cargo xtask bench: {} + {} -> busybox",
                busybox.display(),
                BUSYBOX_APPLETS.join(", ")
            ),
        }],
    });
    finish_layout(layout, tag, &[layer], &config)
}

fn create_layout_dirs(layout: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(layout.join("blobs/sha256"))
        .with_context(|| format!("creating {}", layout.display()))
}

/// Writes the config, manifest, index and `oci-layout` for `layers` (already written).
/// Returns the layers' compressed size.
fn finish_layout(
    layout: &Path,
    tag: &str,
    layers: &[Blob],
    config: &serde_json::Value,
) -> anyhow::Result<u64> {
    let config = write_blob(layout, &serde_json::to_vec(config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": { "mediaType": CONFIG, "digest": config.digest, "size": config.size },
        "layers": layers.iter().map(|l| json!({
            "mediaType": LAYER_GZIP, "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest = write_blob(layout, &serde_json::to_vec(&manifest)?)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": manifest.digest,
            "size": manifest.size,
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(layers.iter().map(|l| l.size).sum())
}

/// `skopeo copy` of `oci:<layout>:<tag>` to `docker://<dest>` over plain HTTP.
pub fn push(layout: &Path, tag: &str, dest: &str) -> anyhow::Result<()> {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .stdin(Stdio::null())
        .output()
        .context("running skopeo (apt-get install skopeo)")?;
    if !out.status.success() {
        bail!(
            "skopeo copy to {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_exact_length() {
        let read = |seed, len| {
            let mut v = Vec::new();
            Noise {
                state: seed,
                left: len,
            }
            .read_to_end(&mut v)
            .map(|_| v)
        };
        let a = read(7, 100_003).expect("read");
        assert_eq!(a.len(), 100_003);
        assert_eq!(a, read(7, 100_003).expect("read"));
        assert_ne!(a, read(8, 100_003).expect("read"));
    }

    #[test]
    fn layout_is_consistent() -> anyhow::Result<()> {
        let dir = super::super::scratch::Scratch::new("oci-test")?;
        let layout = dir.join("img");
        let compressed = write_layout(&layout, "t", 3, &[1000, 70_000])?;
        assert!(
            compressed > 71_000,
            "random data must not compress: {compressed}"
        );
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .context("manifest digest")?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob_path(&layout, digest))?)?;
        let layers = manifest["layers"].as_array().context("layers")?;
        assert_eq!(layers.len(), 2);
        for l in layers {
            let d = l["digest"].as_str().context("layer digest")?;
            let bytes = std::fs::read(blob_path(&layout, d))?;
            assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))), d);
            assert_eq!(Some(bytes.len() as u64), l["size"].as_u64());
        }
        Ok(())
    }

    #[test]
    fn busybox_layout_has_busybox_and_applet_links() -> anyhow::Result<()> {
        let dir = super::super::scratch::Scratch::new("oci-test")?;
        // Any regular file stands in for busybox here.
        let fake = dir.join("busybox");
        std::fs::write(&fake, b"\x7fELF not really")?;
        let layout = dir.join("img");
        write_busybox_layout(&layout, "1", &fake)?;
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .context("manifest digest")?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob_path(&layout, digest))?)?;
        let config_digest = manifest["config"]["digest"].as_str().context("config")?;
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob_path(&layout, config_digest))?)?;
        assert_eq!(config["config"]["Cmd"], json!(["sh"]));
        assert_eq!(config["config"]["Env"], json!(["PATH=/bin"]));
        assert_eq!(config["os"], "linux");
        let layer = manifest["layers"][0]["digest"].as_str().context("layer")?;
        let gz = flate2::read::GzDecoder::new(File::open(blob_path(&layout, layer))?);
        let mut entries = Vec::new();
        for e in tar::Archive::new(gz).entries()? {
            let e = e?;
            let link = e.link_name()?.map(|l| l.display().to_string());
            entries.push((e.path()?.display().to_string(), e.header().mode()?, link));
        }
        let mut want = vec![
            ("bin/".to_string(), 0o755, None),
            ("bin/busybox".to_string(), 0o755, None),
        ];
        want.extend(
            BUSYBOX_APPLETS
                .iter()
                .map(|a| (format!("bin/{a}"), 0o777, Some("busybox".to_string()))),
        );
        assert_eq!(entries, want);
        Ok(())
    }
}
