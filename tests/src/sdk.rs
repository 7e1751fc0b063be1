//! SDK clients that live outside the workspace (their dependencies' features would
//! change the engine's own if built with it): built on first use, into
//! `target/sdk-clients`. `cargo xtask test` builds them before the suites run, so
//! here that is a no-op.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The bollard BuildKit client (`tests/bollard-client`).
pub fn bollard_client() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let manifest = root.join("bollard-client/Cargo.toml");
            let target = root
                .parent()
                .map(|p| p.join("target/sdk-clients"))
                .unwrap_or_else(|| root.join("target/sdk-clients"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "building {} failed: {status:?}",
                manifest.display()
            );
            target.join("debug/berth-bollard-client")
        })
        .clone()
}
