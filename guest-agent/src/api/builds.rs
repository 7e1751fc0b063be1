//! Berth's own endpoints for the build history (`crate::build_history`),
//! which the desktop app's Builds view reads: the Docker Engine API has none
//! (dockerd serves it only as BuildKit's gRPC `ListenBuildHistory`, whose step
//! output lives in a content store), so these answer plain JSON.
//!
//! - `GET /berth/builds`: every kept build, newest first, without step output;
//! - `GET /berth/builds/{ref}`: one build with each step's output;
//! - `DELETE /berth/builds/{ref}`: forgets it.

use hyper::StatusCode;

use super::{empty, json, ApiError, ApiResult};
use crate::build_history::HistoryError;
use crate::engine::Engine;

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        let status = match e {
            HistoryError::NotFound(_) => StatusCode::NOT_FOUND,
            HistoryError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

pub fn list(engine: &Engine) -> ApiResult {
    let all: Vec<_> = tokio::task::block_in_place(|| engine.build_history.all())
        .iter()
        .map(|r| r.summary())
        .collect();
    json(StatusCode::OK, &all)
}

pub fn get(engine: &Engine, id: &str) -> ApiResult {
    let r = tokio::task::block_in_place(|| engine.build_history.get(id))?;
    json(StatusCode::OK, &r)
}

pub fn remove(engine: &Engine, id: &str) -> ApiResult {
    tokio::task::block_in_place(|| engine.build_history.remove(id))?;
    empty(StatusCode::NO_CONTENT)
}
