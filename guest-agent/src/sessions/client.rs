//! Client sessions. A BuildKit client (buildx, Compose, bollard) opens `POST
//! /session` and, once the connection is upgraded, serves gRPC on it: its FileSync
//! (the build context), Secrets, Auth and FileSend services. The engine is the HTTP/2
//! *client* on that connection. A session lives as long as its connection; a Solve
//! names the session it belongs to and waits a little for it, because the client
//! opens the session and sends the Solve concurrently.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use super::SessionError;

/// How long a Solve waits for the session it names to connect.
const SESSION_WAIT: Duration = Duration::from_secs(10);

/// A client session: the gRPC channel into it and the methods it says it serves.
#[derive(Clone)]
pub struct Session {
    send: SendRequest<tonic::body::Body>,
    methods: Arc<Vec<String>>,
}

impl Session {
    /// Whether the client serves a gRPC method (`/moby.buildkit.secrets.v1.Secrets/GetSecret`).
    pub fn serves(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    /// The origin every call into the session is addressed to; the client's gRPC
    /// server ignores it, but HTTP/2 requests need a scheme and an authority.
    pub fn origin() -> hyper::Uri {
        hyper::Uri::from_static("http://session")
    }
}

// tonic's generated clients need a tower `Service`; hyper 1's `SendRequest` is not
// one (hyper-util's pooled client would reconnect, which a hijacked connection
// cannot), so this is the few lines between them.
impl tonic::codegen::Service<hyper::Request<tonic::body::Body>> for Session {
    type Response = hyper::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, req: hyper::Request<tonic::body::Body>) -> Self::Future {
        let fut = self.send.send_request(req);
        Box::pin(fut)
    }
}

/// The sessions connected now, by id.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    /// Bumped whenever a session connects, for Solves waiting on one.
    joined: watch::Sender<u64>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes over an upgraded `/session` connection: the HTTP/2 handshake as the
    /// client, then the session is usable until the connection ends.
    pub async fn attach<IO>(self: &Arc<Self>, id: String, methods: Vec<String>, io: IO)
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (send, conn) =
            match hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(session = %id, error = %e, "session handshake failed");
                    return;
                }
            };
        let session = Session {
            send,
            methods: Arc::new(methods),
        };
        self.lock().insert(id.clone(), session);
        self.joined.send_modify(|n| *n += 1);
        tracing::debug!(session = %id, "build session connected");
        if let Err(e) = conn.await {
            tracing::debug!(session = %id, error = %e, "build session ended with an error");
        }
        self.lock().remove(&id);
        tracing::debug!(session = %id, "build session closed");
    }

    /// The session with this id, waiting briefly for it to connect.
    pub async fn get(&self, id: &str) -> Result<Session, SessionError> {
        let mut joined = self.joined.subscribe();
        let wait = async {
            loop {
                if let Some(s) = self.lock().get(id) {
                    return Some(s.clone());
                }
                if joined.changed().await.is_err() {
                    return None;
                }
            }
        };
        match tokio::time::timeout(SESSION_WAIT, wait).await {
            Ok(Some(s)) => Ok(s),
            _ => Err(SessionError::NoSession(id.to_string())),
        }
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}
