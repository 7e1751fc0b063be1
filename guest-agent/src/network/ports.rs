//! Published ports: a userland proxy per binding (as dockerd's `docker-proxy`), which
//! also covers connections from the host's own loopback that DNAT would not see. Every
//! publish and unpublish is announced on a channel; the VM's host side forwards ports
//! from those announcements.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::NetworkError;

/// TCP or UDP: the control channel's type, so a binding is announced to the host as
/// it is kept here.
pub use berth_proto::control::Proto;

/// A port as the API names it: `80/tcp`.
pub fn parse_port_key(key: &str) -> Option<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, proto))
}

/// `8000` or `8000-8010`: an inclusive range of ports, first no greater than last.
pub fn parse_port_range(p: &str) -> Option<(u16, u16)> {
    let (a, z) = p.split_once('-').unwrap_or((p, p));
    let (a, z) = (a.parse::<u16>().ok()?, z.parse::<u16>().ok()?);
    (a <= z).then_some((a, z))
}

/// What the user asked for one container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: IpAddr,
    /// Inclusive range; (0, 0) for "any free port".
    pub host_ports: (u16, u16),
}

/// Reads HostConfig.PortBindings (plus the image's and config's exposed ports when
/// `publish_all`, i.e. `-P`).
pub fn wanted(
    bindings: &HashMap<String, Option<Vec<bollard_stubs::models::PortBinding>>>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<Wanted>, NetworkError> {
    let mut out = Vec::new();
    let bad = |m: String| NetworkError::InvalidArgument(m);
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    for key in keys {
        let (cport, proto) = parse_port_key(key)
            .ok_or_else(|| bad(format!("invalid port specification: {key:?}")))?;
        let list = bindings.get(key).cloned().flatten().unwrap_or_default();
        let list = if list.is_empty() {
            vec![Default::default()]
        } else {
            list
        };
        for b in list {
            let host_ip = match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
                Some(ip) => ip
                    .parse()
                    .map_err(|_| bad(format!("invalid IP address: {ip}")))?,
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            let host_ports = match b.host_port.as_deref().filter(|s| !s.is_empty()) {
                None => (0, 0),
                Some(p) => {
                    parse_port_range(p).ok_or_else(|| bad(format!("invalid hostPort: {p}")))?
                }
            };
            out.push(Wanted {
                container_port: cport,
                proto,
                host_ip,
                host_ports,
            });
        }
    }
    if publish_all {
        for key in exposed {
            if let Some((cport, proto)) = parse_port_key(key) {
                if !out
                    .iter()
                    .any(|w| w.container_port == cport && w.proto == proto)
                {
                    out.push(Wanted {
                        container_port: cport,
                        proto,
                        host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        host_ports: (0, 0),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A bound host port, proxied to a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub target: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEvent {
    pub container: String,
    pub published: bool,
    pub binding: Binding,
}

struct Active {
    binding: Binding,
    task: JoinHandle<()>,
}

pub struct Ports {
    active: Mutex<HashMap<String, Vec<Active>>>,
    events: broadcast::Sender<PortEvent>,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            active: Mutex::new(HashMap::new()),
            events: broadcast::channel(256).0,
        }
    }
}

fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

impl Ports {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Active>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publish/unpublish announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<PortEvent> {
        self.events.subscribe()
    }

    /// Every binding held now, of every container.
    pub fn all(&self) -> Vec<Binding> {
        self.lock()
            .values()
            .flat_map(|v| v.iter().map(|a| a.binding.clone()))
            .collect()
    }

    /// The bindings container `id` holds.
    pub fn of(&self, id: &str) -> Vec<Binding> {
        self.lock()
            .get(id)
            .map(|v| v.iter().map(|a| a.binding.clone()).collect())
            .unwrap_or_default()
    }

    /// Binds every wanted port and starts its proxy; all or nothing. `endpoint` names
    /// the container in dockerd's error messages.
    pub async fn publish(
        &self,
        id: &str,
        endpoint: &str,
        target: Ipv4Addr,
        wanted: &[Wanted],
    ) -> Result<Vec<Binding>, NetworkError> {
        let mut done: Vec<Active> = Vec::new();
        for w in wanted {
            match self.bind_one(id, endpoint, target, w, &done).await {
                Ok(a) => done.push(a),
                Err(e) => {
                    for a in done {
                        a.task.abort();
                    }
                    return Err(e);
                }
            }
        }
        let bindings: Vec<Binding> = done.iter().map(|a| a.binding.clone()).collect();
        for b in &bindings {
            tracing::debug!(
                container = id,
                port = b.host_port,
                proto = b.proto.as_str(),
                "published"
            );
            let _ = self.events.send(PortEvent {
                container: id.to_string(),
                published: true,
                binding: b.clone(),
            });
        }
        self.lock().entry(id.to_string()).or_default().extend(done);
        Ok(bindings)
    }

    async fn bind_one(
        &self,
        id: &str,
        endpoint: &str,
        target: Ipv4Addr,
        w: &Wanted,
        pending: &[Active],
    ) -> Result<Active, NetworkError> {
        let in_use = |port: u16| {
            let held = self.lock();
            held.values().flatten().chain(pending.iter()).any(|a| {
                a.binding.proto == w.proto
                    && a.binding.host_port == port
                    && overlaps(a.binding.host_ip, w.host_ip)
            })
        };
        let refused = |detail: String| {
            NetworkError::Port(format!(
                "driver failed programming external connectivity on endpoint {endpoint} ({id}): {detail}"
            ))
        };
        let candidates: Vec<u16> = if w.host_ports == (0, 0) {
            vec![0]
        } else {
            (w.host_ports.0..=w.host_ports.1).collect()
        };
        let mut last = None;
        for port in candidates {
            if port != 0 && in_use(port) {
                last = Some(refused(format!(
                    "Bind for {}:{port} failed: port is already allocated",
                    w.host_ip
                )));
                continue;
            }
            let addr = SocketAddr::new(w.host_ip, port);
            let started = match w.proto {
                Proto::Tcp => TcpListener::bind(addr).await.and_then(|l| {
                    let bound = l.local_addr()?.port();
                    Ok((
                        bound,
                        tokio::spawn(serve_tcp(
                            l,
                            SocketAddr::new(target.into(), w.container_port),
                        )),
                    ))
                }),
                Proto::Udp => UdpSocket::bind(addr).await.and_then(|s| {
                    let bound = s.local_addr()?.port();
                    Ok((
                        bound,
                        tokio::spawn(serve_udp(
                            Arc::new(s),
                            SocketAddr::new(target.into(), w.container_port),
                        )),
                    ))
                }),
            };
            match started {
                Ok((bound, task)) => {
                    return Ok(Active {
                        binding: Binding {
                            proto: w.proto,
                            host_ip: w.host_ip,
                            host_port: bound,
                            container_port: w.container_port,
                            target,
                        },
                        task,
                    })
                }
                Err(e) => {
                    let family = if w.host_ip.is_ipv4() { "4" } else { "6" };
                    last = Some(refused(format!(
                        "Error starting userland proxy: listen {}{family} {addr}: bind: {}",
                        w.proto.as_str(),
                        os_reason(&e)
                    )));
                }
            }
        }
        Err(last.unwrap_or_else(|| refused("no port to bind".into())))
    }

    /// Stops container `id`'s proxies.
    pub fn release(&self, id: &str) {
        let gone = self.lock().remove(id).unwrap_or_default();
        for a in gone {
            a.task.abort();
            tracing::debug!(container = id, port = a.binding.host_port, "unpublished");
            let _ = self.events.send(PortEvent {
                container: id.to_string(),
                published: false,
                binding: a.binding,
            });
        }
    }
}

/// Go's wording for the common bind errors, as dockerd prints them.
fn os_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

/// Proxy buffer per direction: large enough that a bulk transfer is not syscall-bound.
const TCP_BUF: usize = 256 * 1024;

async fn serve_tcp(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut upstream) = TcpStream::connect(target).await else {
                return; // dropping the client resets it, as docker-proxy does
            };
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut client,
                &mut upstream,
                TCP_BUF,
                TCP_BUF,
            )
            .await;
        });
    }
}

/// How long a UDP flow without traffic keeps its upstream socket (docker-proxy: 90 s).
const UDP_IDLE: Duration = Duration::from_secs(90);

async fn serve_udp(sock: Arc<UdpSocket>, target: SocketAddr) {
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let existing = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Ok(u) = UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)).await
                else {
                    continue;
                };
                if u.connect(target).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, u.clone());
                let (back, up, table) = (sock.clone(), u.clone(), flows.clone());
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65536];
                    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, up.recv(&mut b)).await {
                        let _ = back.send_to(&b[..n], client).await;
                    }
                    table
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&client);
                });
                u
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::PortBinding;

    fn pb(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn wanted_from_bindings_and_publish_all() {
        let mut m = HashMap::new();
        m.insert("80/tcp".to_string(), Some(vec![pb("127.0.0.1", "8080")]));
        m.insert("53/udp".to_string(), Some(vec![pb("", "")]));
        m.insert("90".to_string(), Some(vec![pb("", "9000-9005")]));
        let w = wanted(&m, &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w[0].proto, Proto::Udp);
        assert_eq!(w[0].host_ports, (0, 0));
        assert_eq!(w[1].host_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(w[2].host_ports, (9000, 9005));
        assert_eq!(w[3].container_port, 443);
        let mut bad = HashMap::new();
        bad.insert("80/sctp".to_string(), None);
        assert!(wanted(&bad, &[], false).is_err());
    }

    #[tokio::test]
    async fn proxies_tcp_and_udp_and_refuses_a_taken_port() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A TCP echo "container" and a UDP echo one on loopback.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let uecho = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uport = uecho.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut b = [0u8; 100];
            while let Ok((n, from)) = uecho.recv_from(&mut b).await {
                let _ = uecho.send_to(&b[..n], from).await;
            }
        });
        let ports = Ports::default();
        let mut events = ports.subscribe();
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let got = ports
            .publish(
                "c1",
                "web",
                Ipv4Addr::LOCALHOST,
                &[
                    Wanted {
                        container_port: port,
                        proto: Proto::Tcp,
                        host_ip: lo,
                        host_ports: (0, 0),
                    },
                    Wanted {
                        container_port: uport,
                        proto: Proto::Udp,
                        host_ip: lo,
                        host_ports: (0, 0),
                    },
                ],
            )
            .await
            .unwrap();
        assert!(events.recv().await.unwrap().published);
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, got[0].host_port))
            .await
            .unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        u.send_to(b"dgram", (Ipv4Addr::LOCALHOST, got[1].host_port))
            .await
            .unwrap();
        let mut ub = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), u.recv(&mut ub))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&ub[..n], b"dgram");
        // The same host port for another container: dockerd's words.
        let taken = got[0].host_port;
        let err = ports
            .publish(
                "c2",
                "web2",
                Ipv4Addr::LOCALHOST,
                &[Wanted {
                    container_port: 80,
                    proto: Proto::Tcp,
                    host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    host_ports: (taken, taken),
                }],
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("port is already allocated"), "{err}");
        ports.release("c1");
        assert!(ports.of("c1").is_empty());
    }
}
