//! A network service on the in-memory datapath and firewall, for unit tests anywhere
//! in the crate (the container lifecycle's too): nothing it does needs root or
//! reaches the host's network, and the fakes stay at hand for assertions.

use std::path::Path;
use std::sync::Arc;

use super::datapath::fake::FakeDatapath;
use super::firewall::fake::FakeFirewall;
use super::{NetworkError, NetworkService};

/// The default bridge's name in a fake service.
pub const BRIDGE: &str = "berth0";

pub struct FakeNetwork {
    pub service: Arc<NetworkService>,
    pub datapath: Arc<FakeDatapath>,
    pub firewall: Arc<FakeFirewall>,
}

impl FakeNetwork {
    /// Opens (or, on a root used before, reopens) the service with state under
    /// `root`, on a fresh fake kernel and firewall.
    pub async fn open(root: &Path) -> Result<FakeNetwork, NetworkError> {
        FakeNetwork::open_on(root, Arc::new(FakeDatapath::new())).await
    }

    /// [`Self::open`] on a fake kernel the caller arranged (routes, failures).
    pub async fn open_on(
        root: &Path,
        datapath: Arc<FakeDatapath>,
    ) -> Result<FakeNetwork, NetworkError> {
        let firewall = Arc::new(FakeFirewall::default());
        let service =
            NetworkService::open_with(root, BRIDGE, datapath.clone(), firewall.clone()).await?;
        Ok(FakeNetwork {
            service,
            datapath,
            firewall,
        })
    }
}
