//! Docker-shaped errors: `{"message": "..."}` with the status dockerd would use.

use hyper::StatusCode;

use crate::images::ImageError;
use crate::volumes::VolumeError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        let status = match &e {
            ImageError::InvalidReference(_)
            | ImageError::InvalidArgument(_)
            | ImageError::Platform(_)
            | ImageError::InvalidArchive(_) => StatusCode::BAD_REQUEST,
            // dockerd answers "pull access denied" with 404, and we never send 401: the
            // CLI would turn it into an interactive login prompt.
            ImageError::NotFound(_)
            | ImageError::RegistryNotFound(_)
            | ImageError::OtherPlatform(_) => StatusCode::NOT_FOUND,
            ImageError::Unauthorized(m) if m.starts_with("pull access denied") => {
                StatusCode::NOT_FOUND
            }
            ImageError::Unauthorized(_) => StatusCode::FORBIDDEN,
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::Registry(_) => StatusCode::BAD_GATEWAY,
            ImageError::Layer(_) | ImageError::Corrupt(_) | ImageError::Io { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        let status = match &e {
            VolumeError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            VolumeError::NotFound(_) | VolumeError::NoDriver(_) => StatusCode::NOT_FOUND,
            VolumeError::Conflict(_) => StatusCode::CONFLICT,
            VolumeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "volume request failed");
        }
        ApiError::new(status, e.to_string())
    }
}
