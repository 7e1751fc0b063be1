//! Kernel vhost-vsock: the host's own AF_VSOCK sockets reach the guest's CID.

use super::{BoxStream, ConnectFuture, Transport};

pub struct VhostVsock {
    pub cid: u32,
}

impl VhostVsock {
    /// True when this host can give a guest a vsock device.
    pub fn available() -> bool {
        std::path::Path::new("/dev/vhost-vsock").exists()
    }
}

impl Transport for VhostVsock {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            let addr = tokio_vsock::VsockAddr::new(self.cid, port);
            let s = tokio_vsock::VsockStream::connect(addr).await?;
            Ok(Box::new(s) as BoxStream)
        })
    }

    fn name(&self) -> &'static str {
        "vhost-vsock"
    }
}
