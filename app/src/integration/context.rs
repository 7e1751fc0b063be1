//! The docker CLI's contexts, as files: `contexts/meta/<sha256 of the name>/meta.json`
//! under the CLI's config directory. Written directly so installing Berth needs
//! no `docker` binary.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const NAME: &str = "berth";

pub fn meta_dir(docker_dir: &Path, name: &str) -> PathBuf {
    docker_dir
        .join("contexts/meta")
        .join(hex::encode(Sha256::digest(name.as_bytes())))
}

pub fn exists(docker_dir: &Path, name: &str) -> bool {
    meta_dir(docker_dir, name).join("meta.json").is_file()
}

/// The docker endpoint the context `name` points at, if it exists.
pub fn host(docker_dir: &Path, name: &str) -> Option<String> {
    let meta = std::fs::read(meta_dir(docker_dir, name).join("meta.json")).ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&meta).ok()?;
    meta["Endpoints"]["docker"]["Host"]
        .as_str()
        .map(str::to_string)
}

/// Creates or updates the context `name` pointing at `host` (`unix://…`, `npipe://…`).
pub fn write(docker_dir: &Path, name: &str, host: &str) -> std::io::Result<()> {
    let dir = meta_dir(docker_dir, name);
    std::fs::create_dir_all(&dir)?;
    let meta = serde_json::json!({
        "Name": name,
        "Metadata": { "Description": "Berth" },
        "Endpoints": { "docker": { "Host": host, "SkipTLSVerify": false } },
    });
    std::fs::write(dir.join("meta.json"), meta.to_string())
}

/// Removes the context, and the `contexts` folders if nothing else is in them.
pub fn remove(docker_dir: &Path, name: &str) -> std::io::Result<()> {
    let dir = meta_dir(docker_dir, name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for d in [
        docker_dir.join("contexts/meta"),
        docker_dir.join("contexts"),
    ] {
        // Fails harmlessly when not empty.
        let _ = std::fs::remove_dir(d);
    }
    Ok(())
}
