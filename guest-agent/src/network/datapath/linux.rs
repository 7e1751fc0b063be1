//! The real datapath: rtnetlink for links (`link.rs`), namespaces pinned on files
//! (`netns.rs`), an flock under /run/berth for the host-wide IPAM lock and
//! /proc/net/route for the subnets the machine already uses.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{link, netns, Datapath, Endpoint, HostLock};
use crate::network::ipam::Subnet;
use crate::network::{io_err, NetworkError};

/// The kernel, through rtnetlink and namespace files.
#[derive(Debug, Default, Clone, Copy)]
pub struct Linux;

impl Datapath for Linux {
    fn lock_host(&self) -> Result<HostLock, NetworkError> {
        let dir = Path::new("/run/berth");
        std::fs::create_dir_all(dir).map_err(io_err("creating /run/berth"))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("ipam.lock"))
            .map_err(io_err("opening the ipam lock"))?;
        // Held until the file is dropped.
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
            return Err(io_err("locking ipam")(std::io::Error::last_os_error()));
        }
        Ok(HostLock::file(f))
    }

    fn routed_subnets(&self) -> Vec<Subnet> {
        std::fs::read_to_string("/proc/net/route")
            .map(|s| parse_routes(&s))
            .unwrap_or_default()
    }

    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        gateway: Ipv4Addr,
        subnet: &'a Subnet,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        link::ensure_bridge(name, gateway, subnet).boxed()
    }

    fn bridge_ipv6<'a>(
        &'a self,
        name: &'a str,
        gateway: std::net::Ipv6Addr,
        prefix: u8,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        link::bridge_ipv6(name, gateway, prefix).boxed()
    }

    fn delete_bridge<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        link::delete(name).boxed()
    }

    fn create_netns<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<(), NetworkError>> {
        let p = path.to_path_buf();
        async move {
            // unshare(2) on a thread of its own: the runtime's workers stay put.
            tokio::task::spawn_blocking(move || netns::create(&p))
                .await
                .map_err(|e| NetworkError::Netlink(e.to_string()))?
                .map_err(io_err("creating the network namespace"))
        }
        .boxed()
    }

    fn remove_netns<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, ()> {
        let p = path.to_path_buf();
        async move {
            if p.exists() {
                let _ = tokio::task::spawn_blocking(move || netns::remove(&p)).await;
            }
        }
        .boxed()
    }

    fn netns_exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn plug<'a>(
        &'a self,
        bridge: &'a str,
        host_if: &'a str,
        netns: &'a Path,
        ep: &'a Endpoint,
        default_route: bool,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        link::plug(bridge, host_if, netns, ep, default_route).boxed()
    }

    fn unplug<'a>(&'a self, host_if: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        link::delete(host_if).boxed()
    }

    fn loopback_only<'a>(&'a self, netns: &'a Path) -> BoxFuture<'a, Result<(), NetworkError>> {
        link::loopback_only(netns).boxed()
    }

    fn bind_udp_in<'a>(
        &'a self,
        netns: &'a Path,
        addr: SocketAddrV4,
    ) -> BoxFuture<'a, std::io::Result<std::net::UdpSocket>> {
        let p = netns.to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || {
                netns::run_in(&p, move || std::net::UdpSocket::bind(addr))
            })
            .await
            .map_err(std::io::Error::other)?
        }
        .boxed()
    }
}

/// The subnets in /proc/net/route's text, except the default route (which covers
/// everything and would leave no pool free).
pub fn parse_routes(text: &str) -> Vec<Subnet> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            // The kernel prints the in-memory (network order) word as a native integer.
            let addr = Ipv4Addr::from(dest.to_ne_bytes());
            Some(Subnet {
                addr,
                prefix: u32::from_be_bytes(mask.to_ne_bytes()).leading_ones() as u8,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_skip_the_default() {
        // Little-endian words, as an x86 or arm64 kernel prints them.
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let got = parse_routes(text);
        if cfg!(target_endian = "little") {
            assert_eq!(
                got,
                vec![
                    Subnet::parse("192.168.2.0/24").unwrap(),
                    Subnet::parse("172.17.0.0/16").unwrap()
                ]
            );
        } else {
            assert_eq!(got.len(), 2);
        }
        assert!(parse_routes("header only\n").is_empty());
    }

    /// `ip` with `args`, from a thread inside the namespace at `ns`: its stdout, or
    /// None when it failed.
    fn ip_in(ns: &Path, args: &'static [&'static str]) -> Option<String> {
        netns::run_in(ns, move || {
            std::process::Command::new("ip").args(args).output()
        })
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// The real datapath end to end, with a scratch namespace standing in for the
    /// host's, so no bridge or veth ever appears on the machine. Needs root and `ip`.
    #[test]
    fn wires_a_real_namespace_inside_a_scratch_host() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !Path::new("/usr/sbin/ip").exists() {
            eprintln!("skipped: needs root and iproute2");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host");
        let c = d.path().join("c");
        netns::create(&host).unwrap();
        let subnet = Subnet::parse("10.77.0.0/24").unwrap();
        let ep = Endpoint {
            ip: Ipv4Addr::new(10, 77, 0, 2),
            subnet,
            gateway: Ipv4Addr::new(10, 77, 0, 1),
            mac: crate::network::ipam::mac_for(Ipv4Addr::new(10, 77, 0, 2)),
            ifname: "eth0".into(),
            ipv6: None,
        };
        let (c2, ep2) = (c.clone(), ep.clone());
        // Every thread the runtime starts is started from this one, inside `host`.
        let wired = netns::run_in(&host, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let dp = Linux;
                dp.ensure_bridge("br-test", ep2.gateway, &subnet).await?;
                dp.ensure_bridge("br-test", ep2.gateway, &subnet).await?;
                dp.create_netns(&c2).await?;
                dp.plug("br-test", "veth-test", &c2, &ep2, true).await?;
                let dns = dp
                    .bind_udp_in(&c2, SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53))
                    .await
                    .map_err(|e| NetworkError::Netlink(e.to_string()))?;
                Ok::<_, NetworkError>(dns.local_addr().is_ok())
            })
            .map_err(std::io::Error::other)
        });
        let inside_addr = ip_in(&c, &["-o", "-4", "addr", "show", "dev", "eth0"]);
        let inside_link = ip_in(&c, &["-o", "link", "show", "eth0"]);
        let inside_route = ip_in(&c, &["route", "show", "default"]);
        let bridge_addr = ip_in(&host, &["-o", "-4", "addr", "show", "dev", "br-test"]);
        let ports = ip_in(&host, &["-o", "link", "show", "master", "br-test"]);
        let unplugged = netns::run_in(&host, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let dp = Linux;
                dp.unplug("veth-test").await?;
                dp.unplug("veth-test").await?;
                dp.delete_bridge("br-test").await?;
                Ok::<_, NetworkError>(())
            })
            .map_err(std::io::Error::other)
        });
        let veth_left = ip_in(&host, &["-o", "link", "show", "veth-test"]);
        let eth0_left = ip_in(&c, &["-o", "link", "show", "eth0"]);
        netns::remove(&c);
        netns::remove(&host);

        assert!(wired.unwrap(), "the resolver socket is bound");
        assert!(
            inside_addr
                .unwrap_or_default()
                .contains("inet 10.77.0.2/24"),
            "address"
        );
        let link = inside_link.unwrap_or_default();
        assert!(link.contains("link/ether 02:42:0a:4d:00:02"), "{link}");
        assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
        let route = inside_route.unwrap_or_default();
        assert!(route.contains("default via 10.77.0.1 dev eth0"), "{route}");
        assert!(bridge_addr
            .unwrap_or_default()
            .contains("inet 10.77.0.1/24"));
        assert!(ports.unwrap_or_default().contains("veth-test@"));
        unplugged.unwrap();
        assert_eq!(veth_left, None, "the host end went");
        assert_eq!(eth0_left, None, "and the container end with it");
    }

    #[test]
    fn host_routes_are_normalised_subnets() {
        for s in Linux.routed_subnets() {
            assert_eq!(Subnet::parse(&s.to_string()), Some(s));
        }
    }
}
