//! Long-lived streams to the webview (logs, stats, events, terminals), each
//! over its own `tauri::ipc::Channel`. Every stream has an id so the page
//! that opened it can end it; a stream whose channel is gone ends itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::io::AsyncWrite;
use tokio::task::AbortHandle;

type Input = std::pin::Pin<Box<dyn AsyncWrite + Send>>;

#[derive(Default)]
pub struct Streams {
    next: AtomicU64,
    tasks: Mutex<HashMap<u64, AbortHandle>>,
    /// Terminal sessions: the exec's stdin, and the exec id for resizes.
    terminals: tokio::sync::Mutex<HashMap<u64, (String, Input)>>,
}

impl Streams {
    pub fn id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Runs `task` as a new stream on the runtime; returns its id for `stop`.
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) -> u64 {
        let id = self.id();
        self.track(id, tokio::spawn(task).abort_handle());
        id
    }

    pub fn track(&self, id: u64, task: AbortHandle) {
        if let Ok(mut t) = self.tasks.lock() {
            t.insert(id, task);
        }
    }

    pub async fn stop(&self, id: u64) {
        if let Some(t) = self.tasks.lock().ok().and_then(|mut t| t.remove(&id)) {
            t.abort();
        }
        self.terminals.lock().await.remove(&id);
    }

    pub async fn add_terminal(&self, id: u64, exec: String, input: Input) {
        self.terminals.lock().await.insert(id, (exec, input));
    }

    pub async fn write(&self, id: u64, data: &[u8]) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let mut t = self.terminals.lock().await;
        let (_, input) = t.get_mut(&id).ok_or("the terminal has ended")?;
        input.write_all(data).await.map_err(|e| e.to_string())?;
        input.flush().await.map_err(|e| e.to_string())
    }

    pub async fn exec_id(&self, id: u64) -> Option<String> {
        self.terminals.lock().await.get(&id).map(|(e, _)| e.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_stream_ends_and_others_run_on() {
        let streams = Streams::default();
        let (keep_a, ended_a) = tokio::sync::oneshot::channel::<()>();
        let (keep_b, mut ended_b) = tokio::sync::oneshot::channel::<()>();
        // Each task holds its sender until aborted: a dropped sender is its end.
        let a = streams.spawn(async move {
            let _keep = keep_a;
            std::future::pending::<()>().await
        });
        let b = streams.spawn(async move {
            let _keep = keep_b;
            std::future::pending::<()>().await
        });
        assert_ne!(a, b);
        streams.stop(a).await;
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), ended_a).await;
        assert!(
            matches!(ended, Ok(Err(_))),
            "stream {a} still runs after stop"
        );
        tokio::task::yield_now().await;
        assert!(matches!(
            ended_b.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        ));
    }
}
