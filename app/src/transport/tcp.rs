//! An engine reached over TCP loopback rather than in Berth's VM: every stream
//! is a new connection to its API, the only port such an engine has. `berth
//! serve` uses it to put Berth's docker endpoint (the Windows named pipes, the
//! unix socket) in front of an engine that already runs, such as the native
//! Linux engine the Windows tests reach through a loopback bridge.

use std::io;
use std::net::SocketAddr;

use super::{BoxStream, ConnectFuture, Transport};

pub struct Tcp {
    addr: SocketAddr,
}

impl Tcp {
    /// Only loopback addresses: Berth never carries the Docker API over a network.
    pub fn loopback(addr: SocketAddr) -> io::Result<Tcp> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} is not a loopback address"),
            ));
        }
        Ok(Tcp { addr })
    }
}

impl Transport for Tcp {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            if port != berth_proto::API_PORT {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("an engine over TCP has only its API (asked for port {port})"),
                ));
            }
            let s = tokio::net::TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as BoxStream)
        })
    }

    fn name(&self) -> &'static str {
        "tcp-loopback"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn streams_reach_the_api_and_nothing_else() {
        assert!(Tcp::loopback("192.0.2.1:2375".parse().unwrap()).is_err());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = Tcp::loopback(l.local_addr().unwrap()).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let mut s = t.connect(berth_proto::API_PORT).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        let refused = t.connect(berth_proto::CONTROL_PORT).await.err().unwrap();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }
}
