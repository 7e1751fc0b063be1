//! Multiplexed transports: one byte pipe carries a yamux session and each guest
//! port is a yamux stream ([`berth_proto::mux`]). The pipe is either QEMU's
//! chardev socket for a virtio-serial port (QEMU builds without vsock: macOS,
//! Windows), or one hybrid-vsock connection to the guest's mux port (hybrid
//! backends cannot half-close a connection; yamux streams can).
//!
//! A pipe takes one session at a time, so one session serves the whole host
//! side; it is re-established when it breaks (QEMU restarted).

use std::io;

use berth_proto::mux::MuxClient;
use tokio::sync::Mutex;

#[cfg(unix)]
use super::HybridVsock;
use super::{BoxStream, ConnectFuture, Transport};

/// What carries the session.
pub enum Pipe {
    /// QEMU's chardev socket of the virtio-serial port.
    Serial(std::path::PathBuf),
    /// The same chardev as a named pipe (Windows QEMU).
    NamedPipe(String),
    /// The guest's mux port through a hybrid-vsock backend.
    #[cfg(unix)]
    Hybrid(HybridVsock),
}

pub struct Muxed {
    pipe: Pipe,
    session: Mutex<Option<MuxClient>>,
    /// [`Transport::reset`] was called: the next connect opens a new session.
    stale: std::sync::atomic::AtomicBool,
}

impl Muxed {
    pub fn new(pipe: Pipe) -> Muxed {
        Muxed {
            pipe,
            session: Mutex::new(None),
            stale: std::sync::atomic::AtomicBool::new(false),
        }
    }

    async fn open_pipe(&self) -> io::Result<BoxStream> {
        match &self.pipe {
            Pipe::Serial(path) => Ok(Box::new(crate::os::connect_unix_async(path).await?)),
            Pipe::NamedPipe(name) => Ok(Box::new(crate::os::connect_pipe_async(name).await?)),
            #[cfg(unix)]
            Pipe::Hybrid(h) => h.connect(berth_proto::MUX_PORT).await,
        }
    }

    async fn client(&self) -> io::Result<MuxClient> {
        let mut session = self.session.lock().await;
        if self.stale.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // Dropping the last handle ends the old session's task, which
            // closes its pipe and every stream still on it.
            *session = None;
        }
        if let Some(c) = session.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let io = self.open_pipe().await?;
        let (client, _task) = MuxClient::spawn(io);
        *session = Some(client.clone());
        Ok(client)
    }
}

impl Transport for Muxed {
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

    fn reset(&self) {
        self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn name(&self) -> &'static str {
        match self.pipe {
            Pipe::Serial(_) | Pipe::NamedPipe(_) => "serial-mux",
            #[cfg(unix)]
            Pipe::Hybrid(_) => "hybrid-vsock",
        }
    }
}
