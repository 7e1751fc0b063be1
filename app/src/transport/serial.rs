//! The serial multiplexer: for QEMU builds without vsock (macOS, Windows). One
//! virtio-serial port, reached through QEMU's chardev socket, carries a yamux
//! session; each guest port is a yamux stream ([`berth_proto::mux`]).
//!
//! QEMU's chardev takes one client at a time, so one session serves the whole
//! host side; it is re-established when it breaks (QEMU restarted).

use std::io;
use std::path::PathBuf;

use berth_proto::mux::MuxClient;
use tokio::sync::Mutex;

use super::{BoxStream, ConnectFuture, Transport};

pub struct SerialMux {
    pub socket: PathBuf,
    session: Mutex<Option<MuxClient>>,
}

impl SerialMux {
    pub fn new(socket: PathBuf) -> SerialMux {
        SerialMux {
            socket,
            session: Mutex::new(None),
        }
    }

    async fn client(&self) -> io::Result<MuxClient> {
        let mut session = self.session.lock().await;
        if let Some(c) = session.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let io = tokio::net::UnixStream::connect(&self.socket).await?;
        let (client, _task) = MuxClient::spawn(io);
        *session = Some(client.clone());
        Ok(client)
    }
}

impl Transport for SerialMux {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            let client = self.client().await?;
            match client.connect(port).await {
                Ok(s) => Ok(Box::new(s) as BoxStream),
                Err(e) => {
                    // A broken session is replaced on the next connect.
                    *self.session.lock().await = None;
                    Err(io::Error::new(io::ErrorKind::ConnectionRefused, e))
                }
            }
        })
    }

    fn name(&self) -> &'static str {
        "serial-mux"
    }
}
