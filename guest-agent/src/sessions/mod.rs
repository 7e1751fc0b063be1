//! What BuildKit's clients leave with the engine while they build: their sessions
//! ([`client`]: the gRPC channel into each client's own services) and the builds in
//! flight ([`jobs`]: progress, gateway results), both by the ids the clients chose.
//! State only; `buildkit` is what builds with it.

pub mod client;
pub mod jobs;

use std::sync::Arc;

/// The client sessions and builds of one engine.
#[derive(Default)]
pub struct BuildState {
    pub sessions: Arc<client::Sessions>,
    pub jobs: Arc<jobs::Jobs>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session {0}: the client's session did not connect")]
    NoSession(String),
    #[error("no Solve arrived for build {0}")]
    NoSolve(String),
}
