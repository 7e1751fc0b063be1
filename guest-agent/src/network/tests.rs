//! Unit tests of the network orchestration on the fake datapath and firewall: what
//! the service asks the kernel and the firewall for when networks are created and
//! removed and containers are attached, connected, detached and reconciled. No root,
//! and nothing reaches the host's network.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};

use super::datapath::fake::FakeDatapath;
use super::fake::{FakeNetwork, BRIDGE};
use super::firewall::fake::FakeFirewall;
use super::ports::{Proto, Wanted};
use super::*;

/// Container ids are 64 hex digits; names use the first 12.
fn cid(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

struct Rig {
    dir: tempfile::TempDir,
    dp: Arc<FakeDatapath>,
    fw: Arc<FakeFirewall>,
    svc: Arc<NetworkService>,
}

impl Rig {
    async fn new() -> Rig {
        Rig::with(Arc::new(FakeDatapath::new())).await
    }

    async fn with(dp: Arc<FakeDatapath>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let net = FakeNetwork::open_on(dir.path(), dp).await.unwrap();
        Rig {
            dir,
            dp: net.datapath,
            fw: net.firewall,
            svc: net.service,
        }
    }

    /// The engine restarting on the same state, with a kernel that kept nothing (the
    /// worst case: a rebooted VM).
    async fn restart(self) -> Rig {
        let Rig { dir, svc, .. } = self;
        drop(svc);
        let net = FakeNetwork::open(dir.path()).await.unwrap();
        Rig {
            dir,
            dp: net.datapath,
            fw: net.firewall,
            svc: net.service,
        }
    }

    async fn create(&self, name: &str) -> NetworkRecord {
        self.svc
            .create(CreateRequest {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    fn netns(&self, id: &str) -> PathBuf {
        self.dir.path().join("network/netns").join(id)
    }

    fn attached(&self, network: &str) -> Vec<String> {
        self.svc
            .get(network)
            .unwrap()
            .attachments
            .keys()
            .cloned()
            .collect()
    }
}

fn on(network: &str) -> EndpointRequest {
    EndpointRequest {
        network: network.into(),
        ..Default::default()
    }
}

fn no_container(_: &str) -> Option<PathBuf> {
    None
}

#[tokio::test]
async fn open_brings_up_the_default_bridge_around_routed_subnets() {
    let dp = Arc::new(FakeDatapath::new());
    dp.state().routed = vec![ipam::Subnet::parse("172.17.0.0/16").unwrap()];
    let rig = Rig::with(dp).await;
    let names: Vec<String> = rig.svc.list().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    let bridge = rig.svc.get("bridge").unwrap();
    assert_eq!(bridge.subnet.unwrap().to_string(), "172.18.0.0/16");
    assert_eq!(rig.svc.gateway_of("bridge"), Some(ip("172.18.0.1")));
    let br = rig.dp.state().bridges.get(BRIDGE).cloned().unwrap();
    assert_eq!(br.gateway, ip("172.18.0.1"));
    assert_eq!(rig.fw.bridges(), [BRIDGE]);
    // The state on disk names the firewall table, for tooling that cleans up.
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rig.dir.path().join("network/networks.json")).unwrap(),
    )
    .unwrap();
    assert!(saved["table"].as_str().unwrap().starts_with("berth_"));
}

#[tokio::test]
async fn create_and_remove_a_user_network() {
    let rig = Rig::new().await;
    let n = rig.create("appnet").await;
    let br = n.bridge.clone().unwrap();
    assert_eq!(br, format!("br-{}", &n.id[..12]));
    assert_eq!(n.subnet.unwrap().to_string(), "172.18.0.0/16");
    assert_eq!(n.gateway, Some(ip("172.18.0.1")));
    assert!(rig.dp.state().bridges.contains_key(&br));
    assert_eq!(rig.fw.bridges(), [BRIDGE, br.as_str()]);

    let again = rig
        .svc
        .create(CreateRequest {
            name: "appnet".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(again, Err(NetworkError::Conflict(_))));
    let overlap = rig
        .svc
        .create(CreateRequest {
            name: "other".into(),
            subnet: Some("172.18.5.0/24".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(overlap, Err(NetworkError::Forbidden(_))));
    let plugin = rig
        .svc
        .create(CreateRequest {
            name: "ov".into(),
            driver: Some("overlay".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(plugin, Err(NetworkError::InvalidArgument(_))));

    rig.svc.remove("appnet").await.unwrap();
    assert_eq!(rig.fw.bridges(), [BRIDGE], "firewall re-applied without it");
    // The bridge goes in the background; whatever creates a bridge waits for it.
    rig.svc.settle().await;
    assert!(!rig.dp.state().bridges.contains_key(&br));
    assert!(matches!(
        rig.svc.remove("appnet").await,
        Err(NetworkError::NotFound(_))
    ));
    assert!(matches!(
        rig.svc.remove("bridge").await,
        Err(NetworkError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_subnet_the_host_routes_is_refused() {
    let rig = Rig::new().await;
    rig.dp.state().routed = vec![ipam::Subnet::parse("10.1.0.0/16").unwrap()];
    let r = rig
        .svc
        .create(CreateRequest {
            name: "lan".into(),
            subnet: Some("10.1.2.0/24".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(r, Err(NetworkError::Forbidden(_))));
    let n = rig
        .svc
        .create(CreateRequest {
            name: "lan".into(),
            subnet: Some("10.2.0.0/24".into()),
            gateway: Some("10.2.0.254".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let br = rig.dp.state().bridges.get(&n.bridge.unwrap()).cloned();
    assert_eq!(br.unwrap().gateway, ip("10.2.0.254"));
}

#[tokio::test]
async fn a_failed_create_leaves_no_network_and_no_bridge() {
    let rig = Rig::new().await;
    rig.fw.fail_next("nft: no such file");
    let r = rig
        .svc
        .create(CreateRequest {
            name: "doomed".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(r, Err(NetworkError::Nft(_))), "{r:?}");
    assert!(rig.svc.get("doomed").is_err());
    let bridges: Vec<String> = rig.dp.state().bridges.keys().cloned().collect();
    assert_eq!(bridges, [BRIDGE]);
}

async fn ask(resolver: std::net::SocketAddr, name: &str) -> Vec<Ipv4Addr> {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q.to_vec().unwrap(), resolver).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..n])
        .unwrap()
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn attach_to_the_default_bridge_and_a_user_network() {
    let rig = Rig::new().await;
    let app = rig.create("appnet").await;
    let app_br = app.bridge.clone().unwrap();
    let c1 = cid(1);
    let extra = [EndpointRequest {
        network: "appnet".into(),
        aliases: vec!["api".into()],
        ipv4: None,
        mac: None,
        links: Vec::new(),
        ipv6: None,
    }];
    let w = rig
        .svc
        .attach(&c1, "web", "default", &extra, no_container)
        .await
        .unwrap();
    let ns = rig.netns(&c1);
    assert_eq!(w.netns.as_deref(), Some(ns.as_path()));
    assert!(!w.host);
    assert_eq!(rig.svc.netns_of(&c1), Some(ns.clone()));
    assert!(rig.dp.state().namespaces.contains(&ns));

    // eth0 on the default bridge carries the default route; eth1 does not.
    let veths = rig.dp.veths_in(&ns);
    assert_eq!(veths.len(), 2);
    let eth0 = &veths["eth0"];
    assert_eq!(
        (eth0.bridge.as_str(), eth0.ep.ip),
        (BRIDGE, ip("172.17.0.2"))
    );
    assert_eq!(eth0.ep.mac, [0x02, 0x42, 172, 17, 0, 2]);
    assert!(eth0.default_route);
    let eth1 = &veths["eth1"];
    assert_eq!(
        (eth1.bridge.as_str(), eth1.ep.ip),
        (app_br.as_str(), ip("172.18.0.2"))
    );
    assert_eq!(eth1.ep.gateway, ip("172.18.0.1"));
    assert!(!eth1.default_route);

    let bridge_ep = &w.endpoints["bridge"];
    assert_eq!((bridge_ep.ip, bridge_ep.prefix), (ip("172.17.0.2"), 16));
    assert_eq!(bridge_ep.mac, "02:42:ac:11:00:02");
    assert!(!bridge_ep.dns);
    let app_ep = &w.endpoints["appnet"];
    assert!(app_ep.dns);
    assert_eq!(app_ep.network_id, app.id);
    assert_eq!(app_ep.aliases, ["api"]);

    // Addresses are recorded (and saved), names only where there is DNS.
    let rec = rig.svc.get("appnet").unwrap();
    let att = &rec.attachments[&c1];
    assert_eq!(att.names, ["web", &c1[..12], "api"]);
    assert_eq!(att.endpoint_id, app_ep.endpoint_id);
    assert_eq!(rig.dp.state().veths[&att.host_if].ep.ifname, "eth1");
    assert!(rig.svc.get("bridge").unwrap().attachments[&c1]
        .names
        .is_empty());

    // The embedded DNS answers the container's names on the user network.
    assert!(rig.svc.wants_resolver(&c1));
    let resolver = rig.dp.state().resolvers.get(&ns).copied().unwrap();
    assert_eq!(ask(resolver, "api.").await, [ip("172.18.0.2")]);
    assert_eq!(ask(resolver, "WEB.").await, [ip("172.18.0.2")]);

    // The next container gets the next address; appnet is its primary network.
    let c2 = cid(2);
    let w2 = rig
        .svc
        .attach(&c2, "db", "appnet", &[], no_container)
        .await
        .unwrap();
    assert_eq!(w2.endpoints["appnet"].ip, ip("172.18.0.3"));
    let veths2 = rig.dp.veths_in(&rig.netns(&c2));
    assert!(veths2["eth0"].default_route);
    assert_eq!(ask(resolver, "db.").await, [ip("172.18.0.3")]);
}

#[tokio::test]
async fn a_requested_address_is_checked_and_a_failed_attach_is_undone() {
    let rig = Rig::new().await;
    rig.create("appnet").await;
    let (c1, c2) = (cid(1), cid(2));
    let want = |ip: &str| EndpointRequest {
        network: "appnet".into(),
        ipv4: Some(ip.parse().unwrap()),
        ..Default::default()
    };
    let w = rig
        .svc
        .attach(&c1, "a", "appnet", &[want("172.18.0.50")], no_container)
        .await
        .unwrap();
    assert_eq!(w.endpoints["appnet"].ip, ip("172.18.0.50"));

    let taken = rig
        .svc
        .attach(&c2, "b", "appnet", &[want("172.18.0.50")], no_container)
        .await;
    assert!(matches!(taken, Err(NetworkError::Conflict(_))), "{taken:?}");
    let outside = rig
        .svc
        .attach(&c2, "b", "appnet", &[want("10.0.0.5")], no_container)
        .await;
    assert!(matches!(outside, Err(NetworkError::InvalidArgument(_))));
    assert!(!rig.dp.state().namespaces.contains(&rig.netns(&c2)));
    assert_eq!(rig.attached("appnet"), [c1.as_str()]);
}

#[tokio::test]
async fn a_veth_that_cannot_be_plugged_rolls_the_whole_attach_back() {
    let rig = Rig::new().await;
    let app = rig.create("appnet").await;
    rig.dp
        .state()
        .fail_plugs
        .insert(app.bridge.clone().unwrap());
    let c1 = cid(1);
    let r = rig
        .svc
        .attach(&c1, "web", "default", &[on("appnet")], no_container)
        .await;
    assert!(matches!(r, Err(NetworkError::Netlink(_))), "{r:?}");
    assert!(rig.dp.state().namespaces.is_empty());
    assert!(
        rig.dp.state().veths.is_empty(),
        "eth0 went with the namespace"
    );
    assert!(rig.attached("bridge").is_empty());
    assert!(rig.attached("appnet").is_empty());
    assert_eq!(rig.svc.netns_of(&c1), None);

    // Its address was released: the next container gets it.
    rig.dp.state().fail_plugs.clear();
    let w = rig
        .svc
        .attach(&cid(2), "web2", "default", &[], no_container)
        .await
        .unwrap();
    assert_eq!(w.endpoints["bridge"].ip, ip("172.17.0.2"));
}

#[tokio::test]
async fn host_none_and_container_modes() {
    let rig = Rig::new().await;
    let host = rig
        .svc
        .attach(&cid(1), "h", "host", &[], no_container)
        .await
        .unwrap();
    assert!(host.host && host.netns.is_none() && host.endpoints.is_empty());
    assert!(rig.dp.state().namespaces.is_empty());

    let none = rig
        .svc
        .attach(&cid(2), "n", "none", &[], no_container)
        .await
        .unwrap();
    let ns = rig.netns(&cid(2));
    assert_eq!(none.netns.as_deref(), Some(ns.as_path()));
    assert!(none.endpoints.is_empty());
    assert!(rig.dp.state().loopback_only.contains(&ns));
    assert!(rig.dp.veths_in(&ns).is_empty());

    let shared = rig
        .svc
        .attach(&cid(3), "s", "container:n", &[], |name| {
            (name == "n").then(|| PathBuf::from("/run/other"))
        })
        .await
        .unwrap();
    assert_eq!(shared.netns, Some(PathBuf::from("/run/other")));
    assert!(!rig.dp.state().namespaces.contains(&rig.netns(&cid(3))));
    let stopped = rig
        .svc
        .attach(&cid(4), "s", "container:gone", &[], no_container)
        .await;
    assert!(matches!(stopped, Err(NetworkError::Conflict(_))));
    assert!(matches!(
        rig.svc
            .attach(&cid(5), "x", "nosuch", &[], no_container)
            .await,
        Err(NetworkError::NotFound(_))
    ));
    assert!(!rig.dp.state().namespaces.contains(&rig.netns(&cid(5))));
}

#[tokio::test]
async fn connect_and_disconnect_a_running_container() {
    let rig = Rig::new().await;
    let app = rig.create("appnet").await;
    let c1 = cid(1);
    rig.svc
        .attach(&c1, "web", "default", &[], no_container)
        .await
        .unwrap();
    let ns = rig.svc.netns_of(&c1).unwrap();
    assert!(!rig.svc.wants_resolver(&c1));
    assert!(rig.dp.state().resolvers.is_empty());

    let w = rig
        .svc
        .connect_running(&c1, "web", &on("appnet"), &ns, 1)
        .await
        .unwrap();
    assert_eq!(w.endpoints["appnet"].ip, ip("172.18.0.2"));
    let eth1 = rig.dp.veths_in(&ns)["eth1"].clone();
    assert_eq!(Some(eth1.bridge), app.bridge);
    assert!(!eth1.default_route, "eth0 keeps the default route");
    assert!(rig.svc.wants_resolver(&c1));
    assert!(rig.svc.resolvers().contains_key(&c1));
    assert!(rig.dp.state().resolvers.contains_key(&ns));

    rig.svc.disconnect_running(&c1, "appnet").await.unwrap();
    let left: Vec<String> = rig.dp.veths_in(&ns).into_keys().collect();
    assert_eq!(left, ["eth0"]);
    assert!(rig.attached("appnet").is_empty());
    assert_eq!(rig.attached("bridge"), [c1.as_str()]);
    assert!(!rig.svc.wants_resolver(&c1));
    assert!(!rig.svc.resolvers().contains_key(&c1));
    assert!(matches!(
        rig.svc.disconnect_running(&c1, "nosuch").await,
        Err(NetworkError::NotFound(_))
    ));
}

#[tokio::test]
async fn detach_releases_namespace_addresses_and_ports() {
    let rig = Rig::new().await;
    rig.create("appnet").await;
    let c1 = cid(1);
    rig.svc
        .attach(&c1, "web", "appnet", &[on("bridge")], no_container)
        .await
        .unwrap();
    // A published port, bound on loopback only.
    let mut events = rig.svc.ports.subscribe();
    let bound = rig
        .svc
        .ports
        .publish(
            &c1,
            "web",
            Ipv4Addr::LOCALHOST,
            &[Wanted {
                container_port: 80,
                proto: Proto::Tcp,
                host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                host_ports: (0, 0),
            }],
        )
        .await
        .unwrap();
    assert_eq!(rig.svc.ports.of(&c1), bound);
    assert!(events.recv().await.unwrap().published);
    // Another container cannot take the same host port.
    let port = bound[0].host_port;
    let clash = rig
        .svc
        .ports
        .publish(
            &cid(2),
            "other",
            Ipv4Addr::LOCALHOST,
            &[Wanted {
                container_port: 80,
                proto: Proto::Tcp,
                host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                host_ports: (port, port),
            }],
        )
        .await
        .unwrap_err();
    assert!(
        clash.to_string().contains("port is already allocated"),
        "{clash}"
    );

    rig.svc.detach(&c1).await;
    assert!(rig.dp.state().namespaces.is_empty());
    assert!(rig.dp.state().veths.is_empty());
    assert_eq!(rig.svc.netns_of(&c1), None);
    assert!(rig.attached("appnet").is_empty() && rig.attached("bridge").is_empty());
    assert!(rig.svc.ports.of(&c1).is_empty());
    let gone = events.recv().await.unwrap();
    assert!(!gone.published && gone.binding.host_port == port);
    assert!(!rig.svc.wants_resolver(&c1));
    // Detaching twice is harmless.
    rig.svc.detach(&c1).await;

    // The address is free again, and the network can go.
    let w = rig
        .svc
        .attach(&cid(3), "web3", "appnet", &[], no_container)
        .await
        .unwrap();
    assert_eq!(w.endpoints["appnet"].ip, ip("172.18.0.2"));
    assert!(matches!(
        rig.svc.remove("appnet").await,
        Err(NetworkError::Forbidden(_))
    ));
    rig.svc.detach(&cid(3)).await;
    rig.svc.remove("appnet").await.unwrap();
}

#[tokio::test]
async fn reconcile_after_an_engine_restart() {
    let rig = Rig::new().await;
    let app = rig.create("appnet").await;
    let (c1, c2) = (cid(1), cid(2));
    for (c, name) in [(&c1, "one"), (&c2, "two")] {
        rig.svc
            .attach(c, name, "appnet", &[], no_container)
            .await
            .unwrap();
    }
    let rig = rig.restart().await;
    // Every bridge network is brought up again, with its saved subnet.
    let bridges: Vec<String> = rig.dp.state().bridges.keys().cloned().collect();
    let app_br = app.bridge.clone().unwrap();
    assert_eq!(bridges, [BRIDGE, app_br.as_str()]);
    assert_eq!(rig.fw.bridges(), [BRIDGE, app_br.as_str()]);
    assert_eq!(rig.svc.get("appnet").unwrap().id, app.id);
    assert_eq!(rig.svc.get("appnet").unwrap().subnet, app.subnet);
    // Addresses survive until the container service says who still runs.
    let mut both = vec![c1.clone(), c2.clone()];
    both.sort();
    assert_eq!(rig.attached("appnet"), both);
    assert!(rig.svc.wants_resolver(&c2));

    rig.svc.reconcile(&BTreeSet::from([c1.clone()])).await;
    assert_eq!(rig.attached("appnet"), [c1.as_str()]);
    let removed = format!("remove_netns {}", rig.netns(&c2).display());
    assert!(rig.dp.state().calls.contains(&removed));
    assert!(rig.svc.wants_resolver(&c1) && !rig.svc.wants_resolver(&c2));

    // The survivor keeps its address; a newcomer gets the one c2 held.
    let w = rig
        .svc
        .attach(&cid(3), "three", "appnet", &[], no_container)
        .await
        .unwrap();
    assert_eq!(w.endpoints["appnet"].ip, ip("172.18.0.3"));
    // And that is what a second restart reads back.
    let rig = rig.restart().await;
    let rec = rig.svc.get("appnet").unwrap();
    assert_eq!(rec.attachments[&c1].ip, ip("172.18.0.2"));
    assert_eq!(rec.attachments[&cid(3)].ip, ip("172.18.0.3"));
}

#[tokio::test]
async fn prune_removes_unused_user_networks_only() {
    let rig = Rig::new().await;
    for n in ["a", "b", "c"] {
        rig.create(n).await;
    }
    rig.svc
        .attach(&cid(1), "x", "b", &[], no_container)
        .await
        .unwrap();
    let gone = rig.svc.prune(|n| n.name == "c").await;
    assert_eq!(gone, ["a"]);
    let names: Vec<String> = rig.svc.list().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["b", "bridge", "c", "host", "none"]);
    assert_eq!(rig.fw.current().len(), 3, "berth0, b and c");
}
