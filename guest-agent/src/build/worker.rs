//! The build worker as BuildKit's clients see it: one worker, Berth's own builder,
//! described by what it runs on (platforms), where `host-gateway` points, and how its
//! cache is kept. Data only: the API layer turns it into BuildKit's `ListWorkers` and
//! `Info` answers.
//!
//! The `…worker.snapshotter` label (`overlayfs`, what Berth stores layers with) is
//! what buildx's `docker` driver reads as "this daemon has the containerd image
//! store", as Docker Desktop's has by default: buildx then allows `--output
//! type=oci|docker` tarballs (Berth writes them), multi-platform and cache-export
//! requests (Berth refuses those by name) and, from buildx 0.14, leaves `--push` to
//! the exporter (`push=true`, which Berth does). Without it buildx refuses the
//! tarball outputs itself, as against dockerd's default store.

use crate::images::Platform;

/// BuildKit's label keys, as its workers publish them (buildx shows them in
/// `buildx inspect`).
pub const LABEL_EXECUTOR: &str = "org.mobyproject.buildkit.worker.executor";
pub const LABEL_HOSTNAME: &str = "org.mobyproject.buildkit.worker.hostname";
pub const LABEL_NETWORK: &str = "org.mobyproject.buildkit.worker.network";
pub const LABEL_SNAPSHOTTER: &str = "org.mobyproject.buildkit.worker.snapshotter";
/// What `--add-host name:host-gateway` resolves to in RUN steps.
pub const LABEL_HOST_GATEWAY: &str = "org.mobyproject.buildkit.worker.moby.host-gateway-ip";

/// The version BuildKit's `Info` reports for Berth's builder.
pub struct Version {
    pub package: &'static str,
    pub version: &'static str,
    pub revision: &'static str,
}

pub fn version() -> Version {
    Version {
        package: "github.com/berth/berth",
        version: crate::VERSION,
        revision: crate::GIT_COMMIT,
    }
}

/// Berth's one build worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// The engine's ID, as dockerd names its one worker.
    pub id: String,
    pub labels: Vec<(String, String)>,
    /// What RUN steps can execute: the engine's own platform first.
    pub platforms: Vec<Platform>,
    /// Cache kept at most this many bytes (0: no limit), as BuildKit's default
    /// policy keeps build cache to a share of the disk.
    pub gc_keep_bytes: i64,
}

/// The worker of engine `id` running `platforms` (its own first, then those
/// binfmt_misc emulates), named `hostname`, whose default bridge's gateway is
/// `host_gateway`.
pub fn worker(
    id: &str,
    platforms: &[Platform],
    hostname: &str,
    host_gateway: Option<std::net::Ipv4Addr>,
) -> Worker {
    let mut labels = vec![
        (LABEL_EXECUTOR.to_string(), "berth".to_string()),
        (LABEL_HOSTNAME.to_string(), hostname.to_string()),
        (LABEL_NETWORK.to_string(), "host".to_string()),
        (LABEL_SNAPSHOTTER.to_string(), "overlayfs".to_string()),
    ];
    if let Some(gw) = host_gateway {
        labels.push((LABEL_HOST_GATEWAY.to_string(), gw.to_string()));
    }
    Worker {
        id: id.to_string(),
        labels,
        platforms: platforms.to_vec(),
        gc_keep_bytes: 10 << 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_on_the_engines_platform_with_the_overlayfs_snapshotter() {
        let p = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        let w = worker(
            "E1",
            std::slice::from_ref(&p),
            "host1",
            Some([172, 17, 0, 1].into()),
        );
        assert_eq!((w.id.as_str(), w.platforms.clone()), ("E1", vec![p]));
        assert!(w
            .labels
            .contains(&(LABEL_SNAPSHOTTER.to_string(), "overlayfs".to_string())));
        assert!(w
            .labels
            .contains(&(LABEL_HOST_GATEWAY.to_string(), "172.17.0.1".to_string())));
        assert!(w
            .labels
            .contains(&(LABEL_HOSTNAME.to_string(), "host1".to_string())));
    }
}
