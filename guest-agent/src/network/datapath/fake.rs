//! An in-memory datapath for unit tests: it keeps the bridges, namespaces and veth
//! endpoints the kernel would hold, with the kernel's rules that matter to the
//! orchestration (a veth needs its bridge and namespace; a namespace takes the
//! container ends of its veths with it), and fails on request. It never touches the
//! host's network: the embedded DNS gets an ephemeral port on 127.0.0.1 instead of
//! 127.0.0.11:53 inside a namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{Datapath, Endpoint, HostLock};
use crate::network::ipam::Subnet;
use crate::network::NetworkError;

/// A bridge as the fake kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeBridge {
    pub gateway: Ipv4Addr,
    pub subnet: Subnet,
}

/// One veth pair: the host end on a bridge, the peer inside a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeVeth {
    pub bridge: String,
    pub netns: PathBuf,
    pub ep: Endpoint,
    pub default_route: bool,
}

#[derive(Debug, Default)]
pub struct State {
    pub bridges: BTreeMap<String, FakeBridge>,
    pub namespaces: BTreeSet<PathBuf>,
    /// By host interface name.
    pub veths: BTreeMap<String, FakeVeth>,
    /// Namespaces given only loopback (`--network none`).
    pub loopback_only: BTreeSet<PathBuf>,
    /// Where each namespace's embedded DNS socket really listens.
    pub resolvers: BTreeMap<PathBuf, SocketAddr>,
    /// Subnets the fake host routes.
    pub routed: Vec<Subnet>,
    /// Bridges whose creation fails.
    pub fail_bridges: BTreeSet<String>,
    /// Bridges a veth cannot be plugged into.
    pub fail_plugs: BTreeSet<String>,
    /// Every call, in order, for tests that care about sequence.
    pub calls: Vec<String>,
}

#[derive(Debug, Default)]
pub struct FakeDatapath {
    state: Mutex<State>,
}

impl FakeDatapath {
    pub fn new() -> FakeDatapath {
        FakeDatapath::default()
    }

    /// The fake kernel's state, to inspect or to arrange failures.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The veths inside namespace `netns`, by interface name inside it.
    pub fn veths_in(&self, netns: &Path) -> BTreeMap<String, FakeVeth> {
        self.state()
            .veths
            .values()
            .filter(|v| v.netns == netns)
            .map(|v| (v.ep.ifname.clone(), v.clone()))
            .collect()
    }

    fn record(&self, call: String) -> MutexGuard<'_, State> {
        let mut s = self.state();
        s.calls.push(call);
        s
    }
}

impl Datapath for FakeDatapath {
    fn lock_host(&self) -> Result<HostLock, NetworkError> {
        Ok(HostLock::none())
    }

    fn routed_subnets(&self) -> Vec<Subnet> {
        self.state().routed.clone()
    }

    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        gateway: Ipv4Addr,
        subnet: &'a Subnet,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        let mut s = self.record(format!("ensure_bridge {name}"));
        let r = if s.fail_bridges.contains(name) {
            Err(NetworkError::Netlink(format!("creating the bridge {name}")))
        } else {
            s.bridges.insert(
                name.to_string(),
                FakeBridge {
                    gateway,
                    subnet: *subnet,
                },
            );
            Ok(())
        };
        futures_util::future::ready(r).boxed()
    }

    fn delete_bridge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        self.record(format!("delete_bridge {name}"))
            .bridges
            .remove(name);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn create_netns<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(), NetworkError>> {
        let mut s = self.record(format!("create_netns {}", path.display()));
        let r = if s.namespaces.insert(path.to_path_buf()) {
            Ok(())
        } else {
            Err(NetworkError::Io {
                context: "creating the network namespace".into(),
                source: std::io::ErrorKind::AlreadyExists.into(),
            })
        };
        futures_util::future::ready(r).boxed()
    }

    fn remove_netns<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, ()> {
        let mut s = self.record(format!("remove_netns {}", path.display()));
        s.namespaces.remove(path);
        s.loopback_only.remove(path);
        s.resolvers.remove(path);
        s.veths.retain(|_, v| v.netns != path);
        futures_util::future::ready(()).boxed()
    }

    fn netns_exists(&self, path: &Path) -> bool {
        self.state().namespaces.contains(path)
    }

    fn plug<'a>(
        &'a self,
        bridge: &'a str,
        host_if: &'a str,
        netns: &'a Path,
        ep: &'a Endpoint,
        default_route: bool,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        let mut s = self.record(format!("plug {bridge} {host_if} {}", ep.ifname));
        let r = if !s.bridges.contains_key(bridge) || s.fail_plugs.contains(bridge) {
            Err(NetworkError::Netlink(format!("bridge {bridge} is missing")))
        } else if !s.namespaces.contains(netns) {
            Err(NetworkError::Netlink("no such namespace".into()))
        } else if s.veths.contains_key(host_if)
            || s.veths
                .values()
                .any(|v| v.netns == netns && v.ep.ifname == ep.ifname)
        {
            Err(NetworkError::Netlink(
                "creating the veth pair: File exists".into(),
            ))
        } else {
            s.veths.insert(
                host_if.to_string(),
                FakeVeth {
                    bridge: bridge.to_string(),
                    netns: netns.to_path_buf(),
                    ep: ep.clone(),
                    default_route,
                },
            );
            Ok(())
        };
        futures_util::future::ready(r).boxed()
    }

    fn unplug<'a>(&'a self, host_if: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        self.record(format!("unplug {host_if}"))
            .veths
            .remove(host_if);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn loopback_only<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<(), NetworkError>> {
        let mut s = self.record(format!("loopback_only {}", netns.display()));
        let r = if s.namespaces.contains(netns) {
            s.loopback_only.insert(netns.to_path_buf());
            Ok(())
        } else {
            Err(NetworkError::Netlink("no such namespace".into()))
        };
        futures_util::future::ready(r).boxed()
    }

    fn bind_udp_in<'a>(
        &'a self,
        netns: &'a Path,
        addr: SocketAddrV4,
    ) -> BoxFuture<'a, std::io::Result<std::net::UdpSocket>> {
        let mut s = self.record(format!("bind_udp_in {} {addr}", netns.display()));
        let r = if s.namespaces.contains(netns) {
            std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|sock| {
                s.resolvers.insert(netns.to_path_buf(), sock.local_addr()?);
                Ok(sock)
            })
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        };
        futures_util::future::ready(r).boxed()
    }
}
