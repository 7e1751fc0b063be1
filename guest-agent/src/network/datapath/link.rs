//! Links through rtnetlink: the bridges, the veth pairs, and the container end's
//! address and routes (configured from a thread inside the container's namespace).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::Endpoint;
use crate::network::ipam::Subnet;
use crate::network::NetworkError;

fn nl(context: &str) -> impl FnOnce(rtnetlink::Error) -> NetworkError + '_ {
    move |e| NetworkError::Netlink(format!("{context}: {e}"))
}

fn connect() -> Result<Handle, NetworkError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| NetworkError::Netlink(e.to_string()))?;
    tokio::spawn(conn);
    Ok(handle)
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        // The kernel answers ENODEV for an unknown name.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl("looking up a link")(e)),
    }
}

/// Creates bridge `name` with `gateway/prefix` on it (if missing) and brings it up.
pub async fn ensure_bridge(
    name: &str,
    gateway: Ipv4Addr,
    subnet: &Subnet,
) -> Result<(), NetworkError> {
    let h = connect()?;
    let idx = match index_of(&h, name).await? {
        Some(i) => i,
        None => {
            h.link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await
                .map_err(nl("creating the bridge"))?;
            index_of(&h, name)
                .await?
                .ok_or_else(|| NetworkError::Netlink(format!("bridge {name} vanished")))?
        }
    };
    let mut addrs = h.address().get().set_link_index_filter(idx).execute();
    let mut present = false;
    while let Some(a) = addrs.try_next().await.map_err(nl("reading addresses"))? {
        use rtnetlink::packet_route::address::AddressAttribute;
        present |= a
            .attributes
            .iter()
            .any(|at| matches!(at, AddressAttribute::Address(IpAddr::V4(ip)) if *ip == gateway));
    }
    if !present {
        h.address()
            .add(idx, IpAddr::V4(gateway), subnet.prefix)
            .execute()
            .await
            .map_err(nl("addressing the bridge"))?;
    }
    set_up(&h, idx, "bringing the bridge up").await
}

/// No duplicate address detection on `ifname` (in the calling thread's namespace):
/// the addresses are the engine's to hand out, and DAD would hold each one
/// "tentative", unusable, for a second or more after it is set.
fn no_dad(ifname: &str) -> Result<(), NetworkError> {
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{ifname}/accept_dad"), "0").map_err(|e| {
        NetworkError::Io {
            context: format!("turning off IPv6 duplicate address detection on {ifname}"),
            source: e,
        }
    })
}

/// Adds `gateway/prefix` to bridge `name` unless it has it.
pub async fn bridge_ipv6(name: &str, gateway: Ipv6Addr, prefix: u8) -> Result<(), NetworkError> {
    let h = connect()?;
    let idx = index_of(&h, name)
        .await?
        .ok_or_else(|| NetworkError::Netlink(format!("bridge {name} is missing")))?;
    let mut addrs = h.address().get().set_link_index_filter(idx).execute();
    while let Some(a) = addrs.try_next().await.map_err(nl("reading addresses"))? {
        use rtnetlink::packet_route::address::AddressAttribute;
        if a.attributes
            .iter()
            .any(|at| matches!(at, AddressAttribute::Address(IpAddr::V6(ip)) if *ip == gateway))
        {
            return Ok(());
        }
    }
    no_dad(name)?;
    h.address()
        .add(idx, IpAddr::V6(gateway), prefix)
        .execute()
        .await
        .map_err(nl("adding the bridge's IPv6 gateway"))
}

/// Sets link `idx` up; `context` names it in the error.
async fn set_up(h: &Handle, idx: u32, context: &str) -> Result<(), NetworkError> {
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl(context))
}

/// Sets loopback up in the namespace `h` talks to (a new namespace has it down).
async fn loopback_up(h: &Handle) -> Result<(), NetworkError> {
    match index_of(h, "lo").await? {
        Some(lo) => set_up(h, lo, "bringing loopback up").await,
        None => Ok(()),
    }
}

/// Deletes link `name` if it exists (a bridge, or a veth with its peer).
pub async fn delete(name: &str) -> Result<(), NetworkError> {
    let h = connect()?;
    if let Some(idx) = index_of(&h, name).await? {
        h.link()
            .del(idx)
            .execute()
            .await
            .map_err(nl("deleting a link"))?;
    }
    Ok(())
}

/// A veth pair: `host` on `bridge` and up, its peer created directly inside the
/// namespace at `netns` as `ep.ifname` with the container's MAC (creating it there,
/// rather than moving it in afterwards, saves the RCU grace period a move waits for:
/// ~10–15 ms per container here); then the address, loopback and the default route
/// are set from inside.
pub async fn plug(
    bridge: &str,
    host: &str,
    netns: &Path,
    ep: &Endpoint,
    default_route: bool,
) -> Result<(), NetworkError> {
    let h = connect()?;
    let br = index_of(&h, bridge)
        .await?
        .ok_or_else(|| NetworkError::Netlink(format!("bridge {bridge} is missing")))?;
    let ns = std::fs::File::open(netns).map_err(|e| NetworkError::Io {
        context: "opening the container's namespace".into(),
        source: e,
    })?;
    let peer = LinkUnspec::new_with_name(&ep.ifname)
        .address(ep.mac.to_vec())
        .setns_by_fd(ns.as_raw_fd())
        .build();
    let veth = LinkVeth::new(host, &ep.ifname)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(br)
        .up()
        .build();
    h.link()
        .add(veth)
        .execute()
        .await
        .map_err(nl("creating the veth pair"))?;
    drop(ns);
    let ep = ep.clone();
    let configured = in_namespace(netns, move || async move {
        configure_inside(&ep, default_route).await
    })
    .await;
    if let Err(e) = configured {
        let _ = delete(host).await;
        return Err(NetworkError::Netlink(format!(
            "configuring the container's interface: {e}"
        )));
    }
    Ok(())
}

/// Runs netlink work from a thread inside the namespace at `netns` (a netlink socket
/// belongs to the namespace of the thread that opens it), on a runtime of its own.
async fn in_namespace<F, Fut>(netns: &Path, f: F) -> Result<(), NetworkError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), NetworkError>>,
{
    let path = netns.to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::netns::run_in(&path, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(f()).map_err(std::io::Error::other)
        })
    })
    .await
    .map_err(|e| NetworkError::Netlink(e.to_string()))?
    .map_err(|e| NetworkError::Netlink(e.to_string()))
}

/// Inside the container's namespace: address, up, loopback up, default route.
async fn configure_inside(ep: &Endpoint, default_route: bool) -> Result<(), NetworkError> {
    let h = connect()?;
    let idx = index_of(&h, &ep.ifname)
        .await?
        .ok_or_else(|| NetworkError::Netlink("the veth peer is not in the namespace".into()))?;
    h.address()
        .add(idx, IpAddr::V4(ep.ip), ep.subnet.prefix)
        .execute()
        .await
        .map_err(nl("addressing the interface"))?;
    if let Some((ip, prefix, _)) = ep.ipv6 {
        no_dad(&ep.ifname)?;
        h.address()
            .add(idx, IpAddr::V6(ip), prefix)
            .execute()
            .await
            .map_err(nl("adding the interface's IPv6 address"))?;
    }
    set_up(&h, idx, "bringing the interface up").await?;
    loopback_up(&h).await?;
    if default_route {
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(ep.gateway)
            .output_interface(idx)
            .build();
        let v6 = ep.ipv6.map(|(_, _, gateway)| {
            RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gateway)
                .output_interface(idx)
                .build()
        });
        for route in std::iter::once(v4).chain(v6) {
            h.route()
                .add(route)
                .execute()
                .await
                .map_err(nl("adding the default route"))?;
        }
    }
    Ok(())
}

/// Brings loopback up in a namespace that gets no other interface (`--network none`).
pub async fn loopback_only(netns: &Path) -> Result<(), NetworkError> {
    in_namespace(netns, || async { loopback_up(&connect()?).await }).await
}
