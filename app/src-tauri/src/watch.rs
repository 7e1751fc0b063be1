//! One watcher of the engine for the whole app. It asks the engine's version
//! once, then holds a single `GET /events` stream: while that stream is open the
//! engine is up and nothing is polled; each event is passed to every page that
//! listens (lists reload on events instead of on a timer). When the stream ends
//! the engine stopped or restarted: the watcher asks again every few seconds
//! until it answers. So the window's status line and the tray cost the engine
//! nothing while it runs, and an idle VM may pause with the app open (an events
//! watcher does not hold it awake, `app/src/vm/idle.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters as q;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};

use crate::engine::{self, EngineStatus};

/// How often a stopped engine is asked again.
const RETRY: Duration = Duration::from_secs(3);

pub struct EngineWatch {
    status: watch::Sender<EngineStatus>,
    events: broadcast::Sender<String>,
}

impl EngineWatch {
    /// Starts watching on tauri's runtime; without a client it only reports why.
    pub fn start(docker: Result<Docker, String>) -> Arc<EngineWatch> {
        let first = EngineStatus {
            state: "stopped",
            detail: match &docker {
                Ok(_) => "checking…".into(),
                Err(e) => e.clone(),
            },
            docker_host: engine::docker_host().unwrap_or_default(),
            kind: "",
        };
        let w = Arc::new(EngineWatch {
            status: watch::channel(first).0,
            events: broadcast::channel(256).0,
        });
        if let Ok(d) = docker {
            tauri::async_runtime::spawn(run(d, w.clone()));
        }
        w
    }

    pub fn status(&self) -> EngineStatus {
        self.status.borrow().clone()
    }

    pub fn follow_status(&self) -> watch::Receiver<EngineStatus> {
        self.status.subscribe()
    }

    /// Each event as `TYPE ACTION` (`container start`).
    pub fn follow_events(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }
}

async fn run(docker: Docker, w: Arc<EngineWatch>) {
    loop {
        let s = engine::status(&docker).await;
        let up = s.state == "running";
        w.status.send_replace(s);
        if !up {
            tokio::time::sleep(RETRY).await;
            continue;
        }
        let opened = Instant::now();
        let mut stream = docker.events(None::<q::EventsOptions>);
        while let Some(Ok(ev)) = stream.next().await {
            let what = format!(
                "{} {}",
                ev.typ.map(|t| t.to_string()).unwrap_or_default(),
                ev.action.unwrap_or_default()
            );
            // No listener is fine: no page is open.
            let _ = w.events.send(what);
        }
        // The engine went away (or restarted): ask again, but never in a
        // tight loop if it keeps closing the stream at once.
        if opened.elapsed() < RETRY {
            tokio::time::sleep(RETRY).await;
        }
    }
}
