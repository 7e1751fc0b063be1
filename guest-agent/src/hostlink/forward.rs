//! Forward streams: a host connection (or UDP peer) spliced to a port the engine
//! published in the guest. The engine's own proxy listens on that port, on the
//! address the user asked for, so the guest side connects over its loopback.

use std::net::{Ipv4Addr, SocketAddr};

use berth_proto::control::Proto;
use berth_proto::forward;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

pub async fn run<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stream = BufReader::new(stream);
    let req = match forward::accept(&mut stream).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "bad forward request");
            let _ = forward::reply(stream.get_mut(), Err(e.to_string())).await;
            return;
        }
    };
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, req.port));
    match req.proto {
        Proto::Tcp => tcp(stream, target).await,
        Proto::Udp => udp(stream, target).await,
    }
}

async fn tcp<S>(mut stream: BufReader<S>, target: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = match tokio::net::TcpStream::connect(target).await {
        Ok(c) => c,
        Err(e) => {
            let _ = forward::reply(stream.get_mut(), Err(format!("{target}: {e}"))).await;
            return;
        }
    };
    if forward::reply(stream.get_mut(), Ok(())).await.is_err() {
        return;
    }
    let _ = conn.set_nodelay(true);
    // Bytes the host sent right behind the header sit in the BufReader; the copy
    // reads through it, so none are lost.
    if let Err(e) = tokio::io::copy_bidirectional(&mut stream, &mut conn).await {
        tracing::debug!(error = %e, "forwarded connection ended");
    }
}

async fn udp<S>(stream: BufReader<S>, target: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sock = match tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(s) => s,
        Err(e) => {
            let mut stream = stream;
            let _ = forward::reply(stream.get_mut(), Err(e.to_string())).await;
            return;
        }
    };
    let (mut r, mut w) = tokio::io::split(stream);
    if let Err(e) = sock.connect(target).await {
        let _ = forward::reply(&mut w, Err(format!("{target}: {e}"))).await;
        return;
    }
    if forward::reply(&mut w, Ok(())).await.is_err() {
        return;
    }
    let mut from_host = Vec::new();
    let mut from_port = vec![0u8; 65536];
    loop {
        tokio::select! {
            more = forward::read_datagram(&mut r, &mut from_host) => match more {
                Ok(true) => {
                    let _ = sock.send(&from_host).await;
                }
                _ => break,
            },
            got = sock.recv(&mut from_port) => match got {
                Ok(n) => {
                    if forward::write_datagram(&mut w, &from_port[..n]).await.is_err() {
                        break;
                    }
                }
                // ICMP port unreachable from an earlier datagram: keep going,
                // like the engine's own UDP proxy.
                Err(_) => continue,
            },
        }
    }
    let _ = w.shutdown().await;
}
