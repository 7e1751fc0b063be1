//! BuildKit's build protocol over Berth's builder — one build engine, two front doors
//! (`/build` is the other). No HTTP here: `api::buildkit` and `api::llbbridge` are the
//! thin gRPC handlers over these.
//!
//! A BuildKit client drives a build in three concurrent conversations: `Control.Solve`
//! names the build (its ref), its session and the exporters; `Control.Status` streams
//! the build's progress; and the client's gateway (`LLBBridge`) asks for the
//! `dockerfile.v0` frontend to be solved and returns the result to export. Files come
//! from the client's session (`crate::sessions`, [`filesync`]); the session's jobs tie
//! the three conversations together; [`frontend`] turns the frontend's attributes into a build
//! of Berth's builder; [`export`] puts the result where the exporters say (files go
//! back through [`filesend`]); [`progress`] writes BuildKit's vertexes; [`ssh`]
//! carries `RUN --mount=type=ssh` connections to the client's agents;
//! `crate::build_history` keeps a record of each build, its steps and output.

pub mod export;
pub mod filesend;
pub mod filesync;
pub mod frontend;
pub mod progress;
pub mod ssh;

#[derive(Debug, thiserror::Error)]
pub enum BuildKitError {
    #[error(transparent)]
    Session(#[from] crate::sessions::SessionError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("transferring files from the client: {0}")]
    Transfer(String),
    #[error("the client's {call} failed: {message}")]
    Call { call: &'static str, message: String },
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl BuildKitError {
    pub fn session(call: &'static str, status: &tonic::Status) -> BuildKitError {
        BuildKitError::Call {
            call,
            message: status.message().to_string(),
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildKitError {
        let context = context.into();
        move |source| BuildKitError::Io { context, source }
    }
}
