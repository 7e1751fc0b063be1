//! Long-lived streams to the webview (logs, pulls, events, terminals), each
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
