//! Forward streams ([`crate::FORWARD_PORT`]).
//!
//! The host opens one stream per forwarded TCP connection, or per UDP peer, and
//! writes a header line `tcp <port>` or `udp <port>`. The guest connects to that
//! port on its loopback (where the engine's proxy for a published port listens,
//! whatever address the user published on) and answers `OK` or `ERR <reason>`.
//! After `OK`:
//! - TCP: the stream is the connection's bytes, both ways, with half-close.
//! - UDP: each datagram is a frame, a big-endian `u16` length then the payload,
//!   both ways. The stream lives while the host keeps the peer.

use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::control::Proto;
use crate::lines::{read_line, LineError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub proto: Proto,
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Line(#[from] LineError),
    #[error("malformed forward header {0:?}")]
    BadHeader(String),
    #[error("the guest refused the forward: {0}")]
    Refused(String),
    #[error("the stream ended before the header")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Request {
    pub fn line(&self) -> String {
        format!("{} {}\n", self.proto.as_str(), self.port)
    }

    pub fn parse(line: &str) -> Result<Request, ForwardError> {
        let bad = || ForwardError::BadHeader(line.chars().take(80).collect());
        let (proto, port) = line.split_once(' ').ok_or_else(bad)?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(bad()),
        };
        let port = port.parse::<u16>().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(Request { proto, port })
    }
}

/// Host side: sends the header and waits for the guest's verdict.
pub async fn open<S>(s: &mut tokio::io::BufReader<S>, req: Request) -> Result<(), ForwardError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.get_mut().write_all(req.line().as_bytes()).await?;
    s.get_mut().flush().await?;
    match read_line(s).await?.as_deref() {
        Some("OK") => Ok(()),
        Some(other) => Err(ForwardError::Refused(
            other.strip_prefix("ERR ").unwrap_or(other).to_string(),
        )),
        None => Err(ForwardError::Closed),
    }
}

/// Guest side: reads the header.
pub async fn accept<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Request, ForwardError> {
    match read_line(r).await? {
        Some(line) => Request::parse(&line),
        None => Err(ForwardError::Closed),
    }
}

/// Guest side: the reply line.
pub async fn reply<W: AsyncWrite + Unpin>(
    w: &mut W,
    result: Result<(), String>,
) -> std::io::Result<()> {
    let line = match result {
        Ok(()) => "OK\n".to_string(),
        Err(e) => format!("ERR {}\n", e.replace('\n', " ")),
    };
    w.write_all(line.as_bytes()).await?;
    w.flush().await
}

/// Writes one UDP datagram as a frame.
pub async fn write_datagram<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(data.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "datagram too long"))?;
    let mut frame = Vec::with_capacity(2 + data.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(data);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one frame into `buf` (resized to the datagram); `false` at end of stream.
pub async fn read_datagram<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    buf.resize(u16::from_be_bytes(len) as usize, 0);
    r.read_exact(buf).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let r = Request {
            proto: Proto::Udp,
            port: 53,
        };
        assert_eq!(r.line(), "udp 53\n");
        assert_eq!(Request::parse("udp 53").unwrap(), r);
        for bad in ["", "tcp", "tcp 0", "tcp 70000", "sctp 80", "tcp  80"] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn datagrams_keep_their_boundaries() {
        let mut wire = Vec::new();
        write_datagram(&mut wire, b"hello").await.unwrap();
        write_datagram(&mut wire, b"").await.unwrap();
        let mut r = &wire[..];
        let mut buf = Vec::new();
        assert!(read_datagram(&mut r, &mut buf).await.unwrap());
        assert_eq!(buf, b"hello");
        assert!(read_datagram(&mut r, &mut buf).await.unwrap());
        assert!(buf.is_empty());
        assert!(!read_datagram(&mut r, &mut buf).await.unwrap());
    }

    #[tokio::test]
    async fn open_and_refusal() {
        let (a, b) = tokio::io::duplex(256);
        let guest = tokio::spawn(async move {
            let mut b = tokio::io::BufReader::new(b);
            let req = accept(&mut b).await.unwrap();
            reply(b.get_mut(), Err(format!("nothing on {}", req.port)))
                .await
                .unwrap();
        });
        let mut a = tokio::io::BufReader::new(a);
        let err = open(
            &mut a,
            Request {
                proto: Proto::Tcp,
                port: 8080,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the guest refused the forward: nothing on 8080"
        );
        guest.await.unwrap();
    }
}
