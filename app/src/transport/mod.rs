//! Host↔guest transports behind one trait: each opens a byte stream to a guest
//! service port (`berth-proto`'s API, control and forward ports). What travels
//! on the stream is the same whichever transport carries it.

// Hybrid vsock backends serve unix sockets; kernel vsock is Linux's alone.
#[cfg(unix)]
mod hybrid;
mod serial;
mod tcp;
#[cfg(target_os = "linux")]
mod vhost_vsock;

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

#[cfg(unix)]
pub use hybrid::HybridVsock;
pub use serial::{Muxed, Pipe};
pub use tcp::Tcp;
#[cfg(target_os = "linux")]
pub use vhost_vsock::VhostVsock;

/// A connected stream to a guest port.
pub trait GuestStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> GuestStream for T {}

pub type BoxStream = Box<dyn GuestStream>;
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + 'a>>;

pub trait Transport: Send + Sync {
    /// Opens a stream to `port` in the guest. An error of kind `ConnectionRefused`
    /// means nothing listens there (yet): the guest may still be booting.
    fn connect(&self, port: u32) -> ConnectFuture<'_>;
    /// For logs and `berth vm status`.
    fn name(&self) -> &'static str;
    /// The link stopped answering: start afresh on the next connect (a
    /// multiplexed session is replaced; plain connections need nothing).
    fn reset(&self) {}
}

/// Sends `GET /_ping` on a fresh API stream; true when the engine answers OK.
pub async fn ping(t: &dyn Transport) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = t.connect(berth_proto::API_PORT).await else {
        return false;
    };
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    matches!(read, Ok(Ok(_))) && buf.starts_with(b"HTTP/1.1 200")
}
