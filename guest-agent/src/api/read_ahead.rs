//! Reading a client's connection ahead of its requests, as Go's `net/http` does
//! under dockerd, so that a client that half-closes is told apart from one that
//! left only where it matters.
//!
//! A client may send a request and then shut down its sending side (`socat`,
//! `nc -N`, go-winio's `CloseWrite` on Windows): dockerd still answers. hyper,
//! by default, takes an end of input while a request is in flight as the client
//! gone and drops the request unanswered; with `half_close` on it answers, but
//! then it stops reading mid-request altogether, and a stream that writes
//! nothing for a while (`/events`, `wait`, `logs -f` of a quiet container)
//! would outlive a client that left (and keep an idle VM awake). So a task
//! reads the socket ahead of hyper ([`split`]), whatever hyper is doing, and
//! marks the moment input ends; streaming answers end there ([`until_done`]),
//! as dockerd's handlers stop when the request's context is cancelled. Answers
//! of a known length are always sent whole.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf, WriteHalf};
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFutureOwned};

use super::Body;

/// How much of the client's input is read ahead of hyper: about one socket
/// buffer; beyond it the reader waits for hyper, so a large upload is never
/// held in memory.
const AHEAD: usize = 64 * 1024;

/// The connection as hyper sees it: reads come from what the read-ahead task
/// took off the socket, writes go straight to it.
pub struct Conn<S> {
    ahead: DuplexStream,
    write: WriteHalf<S>,
    /// Stops the read-ahead task once hyper is done with the connection (or
    /// with its upgraded stream), which drops the socket's last half and so
    /// closes it.
    _served: DropGuard,
}

/// Cancelled once the client has sent all it will: its sending side ended or
/// failed.
#[derive(Clone)]
pub struct ClientDone(CancellationToken);

/// Starts reading `stream` ahead; the connection for hyper, and the signal of
/// the client's input ending.
pub fn split<S>(stream: S) -> (Conn<S>, ClientDone)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read, write) = tokio::io::split(stream);
    let (mut ahead_w, ahead) = tokio::io::duplex(AHEAD);
    let done = CancellationToken::new();
    let served = CancellationToken::new();
    let (task_done, task_served) = (done.clone(), served.clone());
    tokio::spawn(async move {
        tokio::select! {
            r = tokio::io::copy(&mut read, &mut ahead_w) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "reading the client ended");
                }
                task_done.cancel();
                // hyper reads what is left, then the end.
                let _ = ahead_w.shutdown().await;
            }
            _ = task_served.cancelled() => {}
        }
    });
    let conn = Conn {
        ahead,
        write,
        _served: served.drop_guard(),
    };
    (conn, ClientDone(done))
}

/// `body`, ended early once the client is done sending, unless it is of a
/// known length (an answer already whole) or further frames are ready now.
pub fn until_done(body: Body, done: &ClientDone) -> Body {
    if body.size_hint().exact().is_some() {
        return body;
    }
    UntilDone {
        body,
        done: Box::pin(done.0.clone().cancelled_owned()),
    }
    .boxed_unsync()
}

struct UntilDone {
    body: Body,
    done: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl hyper::body::Body for UntilDone {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.done.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<S: AsyncRead + AsyncWrite> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ahead).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.write.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn stream_of(chunks: Vec<&'static str>, then_pending: bool) -> Body {
        let items = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, io::Error>(Frame::data(Bytes::from(c)))),
        );
        let tail = futures_util::stream::once(async move {
            if then_pending {
                std::future::pending::<()>().await;
            }
            Ok(Frame::data(Bytes::from_static(b"last")))
        });
        use futures_util::StreamExt;
        http_body_util::StreamBody::new(items.chain(tail)).boxed_unsync()
    }

    async fn collect(body: Body) -> String {
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn a_whole_answer_is_sent_after_the_client_is_done() {
        let (client, server) = tokio::io::duplex(1024);
        let (_conn, done) = split(server);
        drop(client);
        done.0.cancelled().await;
        let body = until_done(super::super::full("{\"Id\":\"x\"}"), &done);
        assert_eq!(collect(body).await, "{\"Id\":\"x\"}");
        // Frames that are ready still go out; the stream ends where it waits.
        let body = until_done(stream_of(vec!["a", "b"], true), &done);
        assert_eq!(collect(body).await, "ab");
    }

    #[tokio::test]
    async fn a_stream_goes_on_while_the_client_sends_nothing_but_is_connected() {
        let (_client, server) = tokio::io::duplex(1024);
        let (_conn, done) = split(server);
        let body = until_done(stream_of(vec!["a"], false), &done);
        assert_eq!(collect(body).await, "alast");
        let waiting = until_done(stream_of(vec![], true), &done);
        let r = tokio::time::timeout(std::time::Duration::from_millis(100), collect(waiting)).await;
        assert!(
            r.is_err(),
            "a waiting stream ended with its client still there"
        );
    }

    #[tokio::test]
    async fn hyper_reads_all_the_client_sent_then_the_end() {
        let (mut client, server) = tokio::io::duplex(1024);
        let (mut conn, done) = split(server);
        client
            .write_all(b"GET /_ping HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"GET /_ping HTTP/1.1\r\n\r\n");
        assert!(done.0.is_cancelled());
        // Our side still writes to the half-closed client.
        conn.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        let mut answer = [0u8; 17];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n");
    }

    #[tokio::test]
    async fn dropping_the_connection_closes_the_socket() {
        let (mut client, server) = tokio::io::duplex(1024);
        let (conn, _done) = split(server);
        drop(conn);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_to_end(&mut rest),
        )
        .await
        .expect("the socket closed")
        .unwrap();
        assert_eq!(n, 0);
    }
}
