//! The embedded DNS of containers on user-defined networks, where Docker has it: a UDP
//! socket at 127.0.0.11:53 inside the container's own network namespace (opened from
//! a thread that joined it, served by the engine's runtime). It answers the names,
//! short ids and aliases of containers on the networks the asking container shares,
//! and forwards everything else to the host's nameservers (reachable from the engine,
//! which runs in the host's namespace). Messages are parsed and built with
//! hickory-proto.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// One network's names: (lower-case name, address: IPv4, and IPv6 on an `--ipv6`
/// network), and its member containers.
#[derive(Debug, Default, Clone)]
pub struct NetNames {
    pub names: Vec<(String, IpAddr)>,
    pub members: Vec<String>,
    /// Per member: its links' (lower-case alias, lower-case target name).
    pub links: HashMap<String, Vec<(String, String)>>,
}

/// Name tables of the networks that have DNS, by network id.
pub type Table = Arc<Mutex<HashMap<String, NetNames>>>;

/// Where Docker's embedded resolver listens inside a container.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

#[derive(Clone)]
pub struct Lookup {
    pub table: Table,
}

impl Lookup {
    pub fn new(table: Table) -> Lookup {
        Lookup { table }
    }

    /// Addresses of `name` on the networks container `asker` is on: a container's
    /// name or alias, or one of `asker`'s links (resolved to its target then).
    fn find(&self, asker: &str, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.').to_lowercase();
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mine = || t.values().filter(|n| n.members.iter().any(|m| m == asker));
        let on = |n: &NetNames, want: &str| -> Vec<IpAddr> {
            n.names
                .iter()
                .filter(|(x, _)| x == want)
                .map(|(_, ip)| *ip)
                .collect()
        };
        let direct: Vec<IpAddr> = mine().flat_map(|n| on(n, &name)).collect();
        if !direct.is_empty() {
            return direct;
        }
        mine()
            .flat_map(|n| {
                n.links
                    .get(asker)
                    .into_iter()
                    .flatten()
                    .filter(|(alias, _)| *alias == name)
                    .flat_map(|(_, target)| on(n, target))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

pub struct Server {
    pub lookup: Lookup,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Serves container `asker`'s queries on `std_sock` (bound inside its namespace).
    pub fn start(
        std_sock: std::net::UdpSocket,
        asker: String,
        lookup: Lookup,
    ) -> std::io::Result<Server> {
        std_sock.set_nonblocking(true)?;
        let sock = Arc::new(UdpSocket::from_std(std_sock)?);
        let upstreams: Vec<SocketAddr> = std::fs::read_to_string("/etc/resolv.conf")
            .map(|s| super::etc::host_nameservers(&s))
            .unwrap_or_default()
            .iter()
            .filter_map(|ns| ns.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        let l = lookup.clone();
        let task = tokio::spawn(serve(sock, asker, l, Arc::new(upstreams)));
        Ok(Server { lookup, task })
    }
}

async fn serve(
    sock: Arc<UdpSocket>,
    asker: String,
    lookup: Lookup,
    upstreams: Arc<Vec<SocketAddr>>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf[..n].to_vec();
        let (sock, asker, lookup, upstreams) = (
            sock.clone(),
            asker.clone(),
            lookup.clone(),
            upstreams.clone(),
        );
        tokio::spawn(async move {
            if let Some(reply) = answer(&query, &asker, &lookup, &upstreams).await {
                let _ = sock.send_to(&reply, from).await;
            }
        });
    }
}

/// The reply to container `asker`'s query: local names first, then the host's
/// resolvers.
pub async fn answer(
    query: &[u8],
    asker: &str,
    lookup: &Lookup,
    upstreams: &[SocketAddr],
) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    if msg.metadata.message_type != MessageType::Query {
        return None;
    }
    let q = msg.queries.first()?.clone();
    let name = q.name().to_ascii();
    let local = lookup.find(asker, &name);
    if !local.is_empty() {
        let mut reply = Message::response(msg.metadata.id, msg.metadata.op_code);
        reply.metadata.recursion_desired = msg.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.add_query(q.clone());
        for ip in local {
            let data = match (q.query_type(), ip) {
                (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
                (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(q.name().clone(), 600, data));
        }
        // Other types of a known name: an empty NOERROR, so clients stop asking.
        return reply.to_vec().ok();
    }
    for up in upstreams {
        if let Some(r) = forward(query, *up).await {
            return Some(r);
        }
    }
    let mut fail = Message::error_msg(
        msg.metadata.id,
        msg.metadata.op_code,
        ResponseCode::ServFail,
    );
    fail.add_query(q);
    fail.to_vec().ok()
}

async fn forward(query: &[u8], to: SocketAddr) -> Option<Vec<u8>> {
    let bind: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind).await.ok()?;
    s.connect(to).await.ok()?;
    s.send(query).await.ok()?;
    let mut b = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), s.recv(&mut b))
        .await
        .ok()?
        .ok()?;
    b.truncate(n);
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn l_find(t: &Table, asker: &str, name: &str) -> Vec<IpAddr> {
        Lookup::new(t.clone()).find(asker, name)
    }

    #[tokio::test]
    async fn answers_names_on_its_network_only() {
        let table: Table = Arc::default();
        table.lock().unwrap().insert(
            "net1".into(),
            NetNames {
                names: vec![
                    ("web".into(), Ipv4Addr::new(172, 18, 0, 2).into()),
                    ("v6".into(), "2001:db8::2".parse::<IpAddr>().unwrap()),
                ],
                members: vec!["web-id".into(), "client-id".into()],
                links: [("client-id".into(), vec![("api".into(), "web".into())])].into(),
            },
        );
        // A link's alias resolves for the container that has the link only.
        assert_eq!(
            l_find(&table, "client-id", "api."),
            vec![IpAddr::from(Ipv4Addr::new(172, 18, 0, 2))]
        );
        assert!(l_find(&table, "web-id", "api.").is_empty());
        let l = Lookup::new(table);
        let r = answer(&query("WEB.", RecordType::A), "client-id", &l, &[])
            .await
            .unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(172, 18, 0, 2))));
        let aaaa = Message::from_vec(
            &answer(&query("web.", RecordType::AAAA), "client-id", &l, &[])
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty());
        // An IPv6 address answers AAAA, and A of the same name stays empty.
        let v6 = Message::from_vec(
            &answer(&query("v6.", RecordType::AAAA), "client-id", &l, &[])
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            v6.answers[0].data,
            RData::AAAA(AAAA("2001:db8::2".parse().unwrap()))
        );
        // A container on another network does not see the name (no upstream: SERVFAIL).
        let other = Message::from_vec(
            &answer(&query("web.", RecordType::A), "stranger", &l, &[])
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(other.metadata.response_code, ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn forwards_unknown_names_upstream() {
        // A fake upstream on loopback that answers everything with 10.0.0.9.
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            let (n, from) = up.recv_from(&mut b).await.unwrap();
            let q = Message::from_vec(&b[..n]).unwrap();
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            let qq = q.queries[0].clone();
            r.add_answer(Record::from_rdata(
                qq.name().clone(),
                5,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 9))),
            ));
            r.add_query(qq);
            up.send_to(&r.to_vec().unwrap(), from).await.unwrap();
        });
        let l = Lookup::new(Arc::default());
        let r = answer(&query("example.test.", RecordType::A), "n", &l, &[addr])
            .await
            .unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 9))));
    }
}
