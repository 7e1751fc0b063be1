//! Networks: the predefined `bridge`, `host` and `none`, user-defined bridge networks,
//! addresses for containers (persisted), the per-container network namespace and its
//! veth pairs, the `/etc` files a container sees, published ports and the embedded DNS.
//! The kernel side (`datapath/`) and the firewall (`firewall/`) sit behind traits, so
//! the orchestration (`service.rs`, `attach.rs`) is tested on fakes without root.
//! Nothing here knows about HTTP.

mod attach;
pub mod datapath;
pub mod dns;
pub mod etc;
#[cfg(test)]
pub mod fake;
pub mod firewall;
pub mod ipam;
pub mod ports;
mod records;
mod service;
#[cfg(test)]
mod tests;

pub use records::{
    Attachment, CreateRequest, EndpointRequest, NetworkRecord, WiredEndpoint, Wiring,
};
pub use service::NetworkService;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Removing a predefined network or one with endpoints: dockerd answers 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nftables: {0}")]
    Nft(String),
    #[error("iptables: {0}")]
    Iptables(String),
    /// A published port that cannot be bound: dockerd's wording, a 500.
    #[error("{0}")]
    Port(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Teardown keeps going past a failure; these are all it met.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<NetworkError>),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let context = context.into();
    move |source| NetworkError::Io { context, source }
}
