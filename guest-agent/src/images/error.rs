//! Everything that can go wrong with images, typed so the API layer can pick a status.

use super::unpack::UnpackError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    InvalidReference(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The registry has no such repository, tag or manifest.
    #[error("{0}")]
    RegistryNotFound(String),
    /// The registry refused our credentials (or we had none).
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered something we cannot use.
    #[error("{0}")]
    Registry(String),
    #[error("{0}")]
    Platform(String),
    /// The local image is for another platform than the one asked for: dockerd's
    /// 404, on which the CLI pulls the right one.
    #[error("{0}")]
    OtherPlatform(String),
    #[error("failed to register layer: {0}")]
    Layer(#[from] UnpackError),
    #[error("{0}")]
    Corrupt(String),
    /// A `docker load` archive that is not a usable image archive.
    #[error("{0}")]
    InvalidArchive(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}
