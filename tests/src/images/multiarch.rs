//! Images for more than one architecture: indexes, and the other
//! architecture's real busybox for the tests that run it through an emulator.

use anyhow::Context;

use super::{
    busybox_layer, busybox_layer_of, new_dir, Compression, ImageLayout, Layer, Writer, LAYOUT_TAG,
};

/// An image index with linux/amd64, linux/arm64 and linux/arm/v7 entries (all
/// three with this machine's busybox: for tests of the choice, not of running).
pub fn multiarch_index() -> anyhow::Result<ImageLayout> {
    let layer = busybox_layer(Compression::Gzip)?;
    index_of(&[
        (&layer, "amd64", None),
        (&layer, "arm64", Some("v8")),
        (&layer, "arm", Some("v7")),
    ])
}

/// The Debian architecture of the other busybox `cargo xtask test` fetches
/// (`cargo xtask foreign-busybox`): arm64 on x86_64 machines, amd64 on arm64.
pub fn foreign_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "amd64"
    } else {
        "arm64"
    }
}

fn foreign_busybox() -> anyhow::Result<Vec<u8>> {
    let dir = crate::engine::foreign_dir(foreign_arch());
    std::fs::read(dir.join("busybox")).with_context(|| {
        format!(
            "reading the {} busybox in {} (cargo xtask foreign-busybox)",
            foreign_arch(),
            dir.display()
        )
    })
}

/// The other architecture's real busybox as a one-layer image: it runs only
/// where an emulator for that architecture is registered.
pub fn foreign_busybox_image() -> anyhow::Result<ImageLayout> {
    let layer = busybox_layer_of(&foreign_busybox()?, Compression::Gzip)?;
    ImageLayout::single(
        &[layer],
        foreign_arch(),
        None,
        &["ADD busybox-static /bin/"],
    )
}

/// An index whose two entries each hold their own architecture's real busybox:
/// this machine's and the other one's.
pub fn native_and_foreign_index() -> anyhow::Result<ImageLayout> {
    let native = busybox_layer(Compression::Gzip)?;
    let foreign = busybox_layer_of(&foreign_busybox()?, Compression::Gzip)?;
    let native_arch = if foreign_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    index_of(&[
        (&native, native_arch, None),
        (&foreign, foreign_arch(), None),
    ])
}

fn index_of(entries: &[(&Layer, &str, Option<&str>)]) -> anyhow::Result<ImageLayout> {
    let dir = new_dir()?;
    let w = Writer::new(dir.path())?;
    let mut images = Vec::new();
    let mut descriptors = Vec::new();
    for (layer, arch, variant) in entries {
        let (manifest, img) = w.image(
            std::slice::from_ref(*layer),
            arch,
            *variant,
            &["sh"],
            &["ADD busybox-static /bin/"],
            &[],
        )?;
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = (*v).into();
        }
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.manifest_digest,
            "size": manifest.len(),
            "platform": platform,
        }));
        images.push(img);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    }))?;
    let index_digest = w.blob(&index)?;
    w.index(serde_json::json!([{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": index_digest,
        "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": LAYOUT_TAG},
    }]))?;
    // The arm64 variant "v8" is what the index says; tests look it up without it.
    if let Some(i) = images.iter_mut().find(|i| i.architecture == "arm64") {
        i.variant = None;
    }
    Ok(ImageLayout {
        dir,
        images,
        index_digest: Some(index_digest),
    })
}
