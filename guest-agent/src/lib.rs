//! berth-agent: Berth's container engine. It serves the Docker Engine API on a unix
//! socket (inside the VM, or natively on a Linux host; `api`) and owns images
//! (`images`), containers and their shims (`containers`, `runtime`), networks
//! (`network`), volumes (`volumes`) and Dockerfile builds (`build`; `buildkit` is
//! BuildKit's protocol over it, `sessions` its clients' sessions and builds);
//! `daemon` runs it and `hostlink` talks to the host from inside Berth's VM, where
//! `emulators` registers QEMU's user-mode emulators for other architectures.

pub mod api;
pub mod build;
pub mod build_history;
pub mod buildkit;
pub mod clock;
pub mod config;
pub mod containers;
pub mod daemon;
pub mod emulators;
pub mod engine;
pub mod events;
pub mod fsutil;
pub mod hostlink;
pub mod images;
pub mod memory;
pub mod network;
pub mod reaper;
pub mod runtime;
pub mod sessions;
pub mod volumes;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};
