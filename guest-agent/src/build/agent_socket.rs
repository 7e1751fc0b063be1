//! `RUN --mount=type=ssh`: a Unix socket bound into the step's container whose
//! connections reach one of the client's SSH agents (BuildKit's `--ssh` forwarding).
//! The builder owns the socket for the step's lifetime; where a connection goes is the
//! frontend's business ([`SshAgents`]), so the builder knows nothing of sessions.

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use super::mounts::Owner;
use super::sources::ScratchDir;

/// The client's SSH agents, by id (`--ssh default`, `--ssh work=…`).
pub trait SshAgents: Send + Sync {
    /// Whether the client forwards an agent under `id`.
    fn has(&self, id: &str) -> bool;
    /// Carries one connection made on a step's socket to agent `id`, until either end
    /// closes it.
    fn forward(&self, id: &str, conn: tokio::net::UnixStream);
}

/// One step's socket for one agent. Dropping it stops accepting and removes the
/// socket; connections already made end with the step's processes.
pub(super) struct AgentSocket {
    pub path: PathBuf,
    accept: tokio::task::JoinHandle<()>,
    _dir: ScratchDir,
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Opens a socket for agent `id`, owned and moded as the mount asks. It lives in a
/// private directory of the system's temp dir, whose short path keeps it within the
/// 108 bytes a socket path may have.
pub(super) fn listen(
    agents: Arc<dyn SshAgents>,
    id: &str,
    owner: &Owner,
) -> std::io::Result<AgentSocket> {
    let dir =
        ScratchDir(std::env::temp_dir().join(format!("berth-ssh-{:016x}", rand::random::<u64>())));
    std::fs::create_dir(&dir.0)?;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.0.join("agent.sock");
    let listener = tokio::net::UnixListener::bind(&path)?;
    chown(&path, Some(owner.uid), Some(owner.gid))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(owner.mode))?;
    let id = id.to_string();
    let accept = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            agents.forward(&id, conn);
        }
    });
    Ok(AgentSocket {
        path,
        accept,
        _dir: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An "agent" that answers each connection with its id and what it was sent.
    struct Echo;

    impl SshAgents for Echo {
        fn has(&self, id: &str) -> bool {
            id == "default"
        }
        fn forward(&self, id: &str, mut conn: tokio::net::UnixStream) {
            let id = id.to_string();
            tokio::spawn(async move {
                let mut buf = [0u8; 5];
                if conn.read_exact(&mut buf).await.is_ok() {
                    let _ = conn.write_all(id.as_bytes()).await;
                    let _ = conn.write_all(&buf).await;
                }
            });
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn connections_reach_the_agent_and_the_socket_goes_with_the_step() {
        let owner = Owner {
            uid: 0,
            gid: 0,
            mode: 0o600,
        };
        let sock = listen(Arc::new(Echo), "default", &owner).unwrap();
        let mode = std::fs::metadata(&sock.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for _ in 0..2 {
            let mut c = tokio::net::UnixStream::connect(&sock.path).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "defaulthello");
        }
        let path = sock.path.clone();
        drop(sock);
        assert!(!path.exists());
    }
}
