//! `POST /auth`: what `docker login` calls to check credentials before saving them.

use bytes::Bytes;
use hyper::StatusCode;

use bollard_stubs::models::AuthResponse;

use super::{json, ApiError, ApiResult};
use crate::engine::Engine;
use crate::images::ImageError;

#[derive(serde::Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
}

pub async fn login(engine: &Engine, body: Bytes) -> ApiResult {
    let cfg: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    engine
        .images
        .login(&cfg.serveraddress, &cfg.username, &cfg.password)
        .await
        .map_err(|e| match e {
            // Only login answers 401: it is the one call where the CLI expects it.
            ImageError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            other => other.into(),
        })?;
    json(
        StatusCode::OK,
        &AuthResponse {
            status: "Login Succeeded".into(),
            identity_token: Some(String::new()),
        },
    )
}
