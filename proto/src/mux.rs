//! The multiplexed transport for hosts without vsock (QEMU on macOS and
//! Windows): one virtio-serial port carries a yamux session.
//!
//! Why yamux: it is the multiplexer Lima, podman's gvisor-tap-vsock and
//! libp2p already run over single byte pipes, with per-stream flow control and
//! half-close, which a hand-made framing would have to reinvent.
//!
//! The host is the yamux client and opens every stream; the guest is the server.
//! Each stream starts with the 4-byte big-endian service port ([`crate::API_PORT`],
//! …); after it the stream carries what a vsock connection to that port would.
//!
//! A serial port has no connection state of its own: when the host side goes
//! away (QEMU's chardev socket closes) the guest sees the session fail and opens
//! a fresh one on the same port ([`serve`] returns; the caller loops).

use std::future::poll_fn;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// A stream of the session, with tokio's I/O traits.
pub type MuxStream = Compat<yamux::Stream>;

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("the multiplexed session is closed")]
    Closed,
    #[error("yamux: {0}")]
    Yamux(#[from] yamux::ConnectionError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn config() -> yamux::Config {
    // Defaults: 256 KiB windows per stream, which keeps a slow forwarded
    // connection from starving the API stream.
    yamux::Config::default()
}

type OpenReply = oneshot::Sender<Result<yamux::Stream, MuxError>>;

/// The host's handle on a session: opens streams to guest ports. Cheap to clone.
#[derive(Clone)]
pub struct MuxClient {
    open: mpsc::Sender<OpenReply>,
}

impl MuxClient {
    /// Starts a client session over `io` and spawns the task that drives it.
    /// The task ends when the byte pipe fails or every handle is dropped.
    pub fn spawn<T>(io: T) -> (MuxClient, tokio::task::JoinHandle<()>)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<OpenReply>(64);
        let conn = yamux::Connection::new(io.compat(), config(), yamux::Mode::Client);
        let task = tokio::spawn(drive_client(conn, rx));
        (MuxClient { open: tx }, task)
    }

    /// Opens a stream to the guest's `port`.
    pub async fn connect(&self, port: u32) -> Result<MuxStream, MuxError> {
        let (tx, rx) = oneshot::channel();
        self.open.send(tx).await.map_err(|_| MuxError::Closed)?;
        let stream = rx.await.map_err(|_| MuxError::Closed)??;
        let mut stream = stream.compat();
        stream.write_all(&port.to_be_bytes()).await?;
        Ok(stream)
    }

    pub fn is_closed(&self) -> bool {
        self.open.is_closed()
    }
}

async fn drive_client<T>(
    mut conn: yamux::Connection<Compat<T>>,
    mut requests: mpsc::Receiver<OpenReply>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending: Option<OpenReply> = None;
    let mut requests_open = true;
    let result: Result<(), MuxError> = poll_fn(|cx| {
        loop {
            // Serve open requests one at a time; yamux may make us wait for credit.
            if pending.is_none() && requests_open {
                match requests.poll_recv(cx) {
                    Poll::Ready(Some(r)) => pending = Some(r),
                    Poll::Ready(None) => requests_open = false,
                    Poll::Pending => {}
                }
            }
            if let Some(reply) = pending.take() {
                match conn.poll_new_outbound(cx) {
                    Poll::Ready(r) => {
                        let failed = r.is_err();
                        let _ = reply.send(r.map_err(MuxError::from));
                        if failed {
                            return Poll::Ready(Err(MuxError::Closed));
                        }
                        continue;
                    }
                    Poll::Pending => pending = Some(reply),
                }
            }
            // Inbound polling is what moves the session's bytes; the host accepts
            // no streams from the guest, and polls on: Ready registered no wake-up.
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    drop(stream);
                    continue;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e.into())),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => {}
            }
            if !requests_open && pending.is_none() {
                return Poll::Ready(Ok(()));
            }
            return Poll::Pending;
        }
    })
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "multiplexed session ended");
    }
    if let Some(reply) = pending {
        let _ = reply.send(Err(MuxError::Closed));
    }
}

/// Guest side: serves one session over `io`, handing each new stream and the
/// port it asked for to `handle`. Returns when the session ends.
pub async fn serve<T, F>(io: T, mut handle: F) -> Result<(), MuxError>
where
    T: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(u32, MuxStream),
{
    let mut conn = yamux::Connection::new(io.compat(), config(), yamux::Mode::Server);
    // Each stream names its port on its own task, so a slow opener cannot hold
    // up the session; named streams come back here.
    let (named_tx, mut named) = mpsc::unbounded_channel::<(u32, MuxStream)>();
    loop {
        tokio::select! {
            next = poll_fn(|cx| conn.poll_next_inbound(cx)) => match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(stream)) => {
                    let tx = named_tx.clone();
                    tokio::spawn(async move {
                        let mut stream = stream.compat();
                        let mut port = [0u8; 4];
                        if stream.read_exact(&mut port).await.is_ok() {
                            let _ = tx.send((u32::from_be_bytes(port), stream));
                        }
                    });
                }
            },
            Some((port, stream)) = named.recv() => handle(port, stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn streams_reach_their_ports_and_half_close() {
        let (host_io, guest_io) = tokio::io::duplex(64 * 1024);
        let guest = tokio::spawn(serve(guest_io, |port, mut s| {
            tokio::spawn(async move {
                // Echo with the port first, until the host half-closes.
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await.unwrap();
                s.write_all(format!("{port}:").as_bytes()).await.unwrap();
                s.write_all(&buf).await.unwrap();
                s.shutdown().await.unwrap();
            });
        }));
        let (client, _task) = MuxClient::spawn(host_io);
        let mut handles = Vec::new();
        for port in [1024u32, 1026, 1025] {
            let client = client.clone();
            handles.push(tokio::spawn(async move {
                let mut s = client.connect(port).await.unwrap();
                s.write_all(b"hello").await.unwrap();
                s.shutdown().await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                assert_eq!(out, format!("{port}:hello"));
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        drop(client);
        drop(_task);
        guest.abort();
    }

    /// Found by the `proto_framing` fuzz target: a window update that opens a stream
    /// with u32::MAX credit overflowed yamux 0.13's `credit + 256 KiB` (a panic with
    /// overflow checks); yamux 0.14 refuses the frame and ends the session.
    #[tokio::test]
    async fn an_overflowing_initial_window_ends_the_session() {
        // version 0, type 1 (window update), flags SYN, stream 1, credit u32::MAX
        let frame = [0, 1, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        let io = tokio::io::join(&frame[..], tokio::io::sink());
        // Ending at all is the point (Ok: yamux answers GoAway and closes).
        let _ = serve(io, |_, _| panic!("no stream may open")).await;
    }

    /// Found by the `proto_framing` fuzz target: after dropping a stream the guest
    /// opened, the host's session returned Pending with nothing to wake it, so it
    /// read no further (here: not even the end of the pipe) until the next `connect`.
    #[tokio::test]
    async fn a_stream_from_the_guest_does_not_stall_the_session() {
        // Four data frames without bodies, each opening a stream from the guest's
        // side (SYN; 0x3333 and 0x25 carry undefined flag bits too).
        #[rustfmt::skip]
        let guest: &[u8] = &[
            0, 0, 0, 0x01, 0, 0, 0x20, 0, 0, 0, 0, 0,
            0, 0, 0x33, 0x33, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0x25, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0x01, 0x67, 0, 0, 0, 0, 0, 0, 0,
        ];
        // Small reads, as a serial port gives them.
        let io = tokio::io::join(
            tokio::io::BufReader::with_capacity(6, guest),
            tokio::io::sink(),
        );
        let (client, task) = MuxClient::spawn(io);
        let read = async {
            let mut s = client.connect(crate::API_PORT).await?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.map_err(MuxError::from)
        };
        let read = tokio::time::timeout(Duration::from_secs(10), read).await;
        assert!(read.is_ok(), "the host's stream outlived the session");
        drop(client);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_dead_pipe_fails_opens() {
        let (host_io, guest_io) = tokio::io::duplex(1024);
        drop(guest_io);
        let (client, task) = MuxClient::spawn(host_io);
        assert!(client.connect(1024).await.is_err());
        task.await.unwrap();
        assert!(client.connect(1024).await.is_err());
    }
}
