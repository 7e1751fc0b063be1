//! Shared fixtures for Berth's end-to-end suites: a real `docker-registry` on loopback
//! (anonymous, Basic or token auth), small OCI images built locally from busybox-static
//! and pushed with skopeo, and a harness that runs the engine binary on a temp root.
//! Nothing here touches the internet.

pub mod engine;
pub mod images;
pub mod registry;

use std::net::TcpListener;

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A name no other test process uses at the same time.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
