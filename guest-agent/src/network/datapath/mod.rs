//! The network datapath as a trait: every kernel side effect the network service
//! asks for (bridges, veth pairs into a container's namespace, namespaces pinned on
//! files, the host-wide IPAM lock, the host's routes, a socket inside a namespace).
//! [`linux::Linux`] makes the calls; `fake::FakeDatapath` (tests only) records them,
//! so the orchestration in `service.rs` and `attach.rs` is tested without root.

#[cfg(test)]
pub mod fake;
pub mod link;
pub mod linux;
pub mod netns;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use futures_util::future::BoxFuture;

use super::ipam::Subnet;
use super::NetworkError;

/// What the container's end of a veth gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
    /// The interface's name inside the container: eth0, eth1, …
    pub ifname: String,
    /// Address, prefix length and gateway on an `--ipv6` network.
    pub ipv6: Option<(std::net::Ipv6Addr, u8, std::net::Ipv6Addr)>,
}

/// Held while one engine picks a subnet and creates its bridge, so two engines on one
/// machine never pick the same pool; released when dropped.
pub struct HostLock {
    _file: Option<std::fs::File>,
}

impl HostLock {
    /// A lock that guards nothing (for a datapath that owns no host state).
    pub fn none() -> HostLock {
        HostLock { _file: None }
    }

    pub(crate) fn file(f: std::fs::File) -> HostLock {
        HostLock { _file: Some(f) }
    }
}

/// The kernel side of networking, as the service uses it. Async methods return boxed
/// futures so the service can hold the datapath as `Arc<dyn Datapath>`.
pub trait Datapath: Send + Sync {
    /// Serialises subnet choice across engines on one machine.
    fn lock_host(&self) -> Result<HostLock, NetworkError>;

    /// IPv4 subnets the machine already routes (a new network must not shadow them).
    fn routed_subnets(&self) -> Vec<Subnet>;

    /// Creates bridge `name` with `gateway/prefix` on it if missing, and brings it up.
    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        gateway: Ipv4Addr,
        subnet: &'a Subnet,
    ) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// Puts IPv6 gateway `gateway/prefix` on bridge `name` (made by `ensure_bridge`)
    /// if it lacks it. A datapath that models no addresses has nothing to do.
    fn bridge_ipv6<'a>(
        &'a self,
        _name: &'a str,
        _gateway: std::net::Ipv6Addr,
        _prefix: u8,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(futures_util::future::ready(Ok(())))
    }

    /// Deletes bridge `name` if it exists.
    fn delete_bridge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// Creates a network namespace pinned at `path`.
    fn create_netns<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// Releases the namespace pinned at `path` (and with it the container ends of its
    /// veths); a missing one is not an error.
    fn remove_netns<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, ()>;

    /// Whether a namespace is pinned at `path`.
    fn netns_exists(&self, path: &Path) -> bool;

    /// A veth pair: `host_if` on `bridge`, its peer inside the namespace at `netns`
    /// configured as `ep` (with the default route through `ep.gateway` when asked).
    fn plug<'a>(
        &'a self,
        bridge: &'a str,
        host_if: &'a str,
        netns: &'a Path,
        ep: &'a Endpoint,
        default_route: bool,
    ) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// Removes the veth whose host end is `host_if` (its peer goes with it).
    fn unplug<'a>(&'a self, host_if: &'a str) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// Brings loopback up in a namespace that gets no other interface.
    fn loopback_only<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<(), NetworkError>>;

    /// A UDP socket bound to `addr` inside the namespace at `netns` (the embedded DNS).
    fn bind_udp_in<'a>(
        &'a self,
        netns: &'a Path,
        addr: SocketAddrV4,
    ) -> BoxFuture<'a, std::io::Result<std::net::UdpSocket>>;
}
