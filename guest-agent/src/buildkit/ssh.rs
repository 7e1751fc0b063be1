//! `--ssh` forwarding: the client's SSH agents, reached through its session's
//! `moby.sshforward.v1.SSH` service. Each connection a RUN step makes on its agent
//! socket becomes one `ForwardAgent` stream, the agent's id in the `buildkit.ssh.id`
//! metadata as BuildKit sends it; bytes go both ways as `BytesMessage`s.

use std::sync::Arc;

use bollard_buildkit_proto::moby::sshforward::v1::{
    ssh_client::SshClient, BytesMessage, CheckAgentRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::build::SshAgents;
use crate::sessions::client::Session;

/// BuildKit's metadata key for the agent a stream is for.
const KEY_SSH_ID: &str = "buildkit.ssh.id";

/// The agents one session forwards.
struct SessionAgents {
    session: Session,
    ids: Vec<String>,
}

impl SshAgents for SessionAgents {
    fn has(&self, id: &str) -> bool {
        self.ids.iter().any(|i| i == id)
    }

    fn forward(&self, id: &str, conn: tokio::net::UnixStream) {
        tokio::spawn(forward(self.session.clone(), id.to_string(), conn));
    }
}

/// The agents among `wanted` that the client forwards (`CheckAgent` says so); `None`
/// when it forwards none of them.
pub async fn agents(session: &Session, wanted: Vec<String>) -> Option<Arc<dyn SshAgents>> {
    if wanted.is_empty() || !session.serves("/moby.sshforward.v1.SSH/CheckAgent") {
        return None;
    }
    let mut client = SshClient::with_origin(session.clone(), Session::origin());
    let mut ids = Vec::new();
    for id in wanted {
        // Any error means the client has no such agent (buildx answers an unknown id
        // with a plain error), which fails only a `required` mount, later.
        match client
            .check_agent(CheckAgentRequest { id: id.clone() })
            .await
        {
            Ok(_) => ids.push(id),
            Err(s) => tracing::debug!(id = %id, status = %s.message(), "no such SSH agent"),
        }
    }
    if ids.is_empty() {
        return None;
    }
    Some(Arc::new(SessionAgents {
        session: session.clone(),
        ids,
    }))
}

/// One connection, to the agent and back, until either side ends it.
async fn forward(session: Session, id: String, conn: tokio::net::UnixStream) {
    let (mut from_step, mut to_step) = conn.into_split();
    let (tx, rx) = mpsc::channel::<BytesMessage>(16);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_step.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = buf[..n].to_vec();
                    if tx.send(BytesMessage { data }).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut req = tonic::Request::new(outgoing);
    if let Ok(v) = tonic::metadata::MetadataValue::try_from(id.as_str()) {
        req.metadata_mut().insert(KEY_SSH_ID, v);
    }
    let mut client = SshClient::with_origin(session, Session::origin());
    match client.forward_agent(req).await {
        Ok(resp) => {
            let mut incoming = resp.into_inner();
            while let Ok(Some(m)) = incoming.message().await {
                if to_step.write_all(&m.data).await.is_err() {
                    break;
                }
            }
        }
        Err(s) => tracing::debug!(id = %id, status = %s.message(), "SSH forwarding failed"),
    }
    let _ = to_step.shutdown().await;
    reader.abort();
}
