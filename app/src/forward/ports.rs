//! Published ports mirrored onto the host: the control channel tells which ports
//! the engine published (and on which address the user asked for); for each,
//! the host listens on the same address and port and forwards every TCP
//! connection, or every UDP peer, over a forward stream. Listeners go when the
//! port is unpublished or the VM stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_proto::control::{PortMapping, Proto};
use berth_proto::forward::{self, Request};
use tokio::io::BufReader;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::transport::Transport;

/// The host listeners, by mapping.
pub struct PortMirror {
    transport: Arc<dyn Transport>,
    active: HashMap<PortMapping, JoinHandle<()>>,
}

impl PortMirror {
    pub fn new(transport: Arc<dyn Transport>) -> PortMirror {
        PortMirror {
            transport,
            active: HashMap::new(),
        }
    }

    /// Replaces the whole set (a snapshot from the guest).
    pub async fn reset(&mut self, ports: Vec<PortMapping>) {
        let wanted: std::collections::HashSet<_> = ports.iter().cloned().collect();
        let stale: Vec<_> = self
            .active
            .keys()
            .filter(|m| !wanted.contains(*m))
            .cloned()
            .collect();
        for m in stale {
            self.remove(&m);
        }
        for m in ports {
            self.add(m).await;
        }
    }

    pub async fn add(&mut self, m: PortMapping) {
        if self.active.contains_key(&m) {
            return;
        }
        let addr = SocketAddr::new(m.ip, m.port);
        let task = match m.proto {
            Proto::Tcp => match TcpListener::bind(addr).await {
                Ok(l) => tokio::spawn(serve_tcp(l, self.transport.clone(), m.port)),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot mirror a published TCP port");
                    return;
                }
            },
            Proto::Udp => match UdpSocket::bind(addr).await {
                Ok(s) => tokio::spawn(serve_udp(s, self.transport.clone(), m.port)),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot mirror a published UDP port");
                    return;
                }
            },
        };
        tracing::info!(%addr, proto = m.proto.as_str(), "port published on the host");
        self.active.insert(m, task);
    }

    pub fn remove(&mut self, m: &PortMapping) {
        if let Some(task) = self.active.remove(m) {
            task.abort();
            tracing::info!(ip = %m.ip, port = m.port, proto = m.proto.as_str(), "port unpublished");
        }
    }

    pub fn clear(&mut self) {
        for (_, task) in self.active.drain() {
            task.abort();
        }
    }

    pub fn mappings(&self) -> Vec<PortMapping> {
        self.active.keys().cloned().collect()
    }
}

impl Drop for PortMirror {
    fn drop(&mut self) {
        self.clear();
    }
}

async fn open(
    transport: &dyn Transport,
    proto: Proto,
    port: u16,
) -> Result<BufReader<crate::transport::BoxStream>, forward::ForwardError> {
    let stream = transport.connect(berth_proto::FORWARD_PORT).await?;
    let mut stream = BufReader::new(stream);
    forward::open(&mut stream, Request { proto, port }).await?;
    Ok(stream)
}

async fn serve_tcp(listener: TcpListener, transport: Arc<dyn Transport>, port: u16) {
    loop {
        let Ok((mut client, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let transport = transport.clone();
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            match open(transport.as_ref(), Proto::Tcp, port).await {
                Ok(mut guest) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut guest).await;
                }
                Err(e) => tracing::debug!(%peer, port, error = %e, "forward refused"),
            }
        });
    }
}

/// How long a UDP peer's stream stays open without traffic (as a NAT would).
const UDP_IDLE: Duration = Duration::from_secs(60);

async fn serve_udp(sock: UdpSocket, transport: Arc<dyn Transport>, port: u16) {
    let sock = Arc::new(sock);
    let mut peers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        peers.retain(|_, tx| !tx.is_closed());
        let tx = match peers.get(&peer) {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
                tokio::spawn(udp_peer(sock.clone(), transport.clone(), port, peer, rx));
                peers.insert(peer, tx.clone());
                tx
            }
        };
        // A full queue drops the datagram, as a congested link would.
        let _ = tx.try_send(buf[..n].to_vec());
    }
}

async fn udp_peer(
    sock: Arc<UdpSocket>,
    transport: Arc<dyn Transport>,
    port: u16,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let guest = match open(transport.as_ref(), Proto::Udp, port).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, port, error = %e, "UDP forward refused");
            return;
        }
    };
    let (mut r, mut w) = tokio::io::split(guest);
    let mut back = Vec::new();
    loop {
        tokio::select! {
            d = rx.recv() => match d {
                Some(d) => {
                    if forward::write_datagram(&mut w, &d).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            more = forward::read_datagram(&mut r, &mut back) => match more {
                Ok(true) => {
                    let _ = sock.send_to(&back, peer).await;
                }
                _ => return,
            },
            _ = tokio::time::sleep(UDP_IDLE) => return,
        }
    }
}
