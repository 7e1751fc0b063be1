//! Idle pause: when for the configured time (`idlePauseSeconds`) no client held
//! a connection and the containers did nothing (next to no CPU, no connection
//! out of the VM; an idle server waiting for requests qualifies), the
//! supervisor stops the VM's vCPUs (QMP `stop`). The next stream opened to the
//! guest (a docker command, a request on a published port) resumes it (QMP
//! `cont`) before its bytes are forwarded, and the guest's clock is stepped to
//! the host's.
//!
//! [`IdleGate`] wraps the VM's transport, so every way into the guest passes
//! through the same wake. The control channel is the supervisor's own and never
//! holds the VM awake; neither does a client that only watches `GET /events`
//! (the desktop app keeps one open), since nothing happens while the VM sleeps
//! that it could miss.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Mutex};

use berth_proto::control::Activity;

use super::argv::Endpoint;
use super::qmp;
pub use super::Sleep;
use crate::transport::{BoxStream, ConnectFuture, Transport};

struct Shared {
    /// The bare transport.
    inner: Arc<dyn Transport>,
    qmp: Endpoint,
    /// Streams that hold the VM awake.
    open: AtomicUsize,
    /// When such a stream last closed, or the engine became ready.
    last_busy: StdMutex<Instant>,
    /// Pausing is allowed (the engine is up and the setting is on).
    armed: AtomicBool,
    /// A fast path for `wake`: false whenever the VM is certainly running.
    paused: AtomicBool,
    /// Serializes `stop` and `cont`.
    switch: Mutex<()>,
    sleep: watch::Sender<Sleep>,
}

impl Shared {
    fn touch(&self) {
        if let Ok(mut t) = self.last_busy.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last_busy
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    async fn wake(&self) -> io::Result<()> {
        if !self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        let _switch = self.switch.lock().await;
        if !self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        let t = Instant::now();
        let at = self.qmp.clone();
        tokio::task::spawn_blocking(move || qmp::cont(&at))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::other(format!("resuming the paused VM: {e}")))?;
        // A vhost-user backend stops and restarts its rings with the VM, and
        // hybrid vsock's session has been seen to stall across that (about
        // one resume in 25 here): ask the guest, and on silence start a new
        // session before any client's stream goes on the old one.
        let probe = tokio::time::timeout(PROBE, super::control::activity(self.inner.as_ref()));
        if !matches!(probe.await, Ok(Ok(_))) {
            tracing::warn!("the guest's link did not answer after the resume; reconnecting it");
            self.inner.reset();
        }
        self.paused.store(false, Ordering::SeqCst);
        self.touch();
        self.sleep.send_replace(Sleep::Awake);
        tracing::info!(
            took_ms = t.elapsed().as_millis() as u64,
            "VM resumed from idle pause"
        );
        Ok(())
    }

    /// Pauses unless something became busy meanwhile; true when it did.
    async fn pause(&self) -> Result<bool, qmp::QmpError> {
        let _switch = self.switch.lock().await;
        if !self.armed.load(Ordering::SeqCst) || self.paused.load(Ordering::SeqCst) {
            return Ok(false);
        }
        // The flag goes up before the count is read, and a connect counts itself
        // before it reads the flag: so either this sees the new stream and backs
        // off, or that stream sees the flag and waits on `switch` to resume.
        self.paused.store(true, Ordering::SeqCst);
        if self.open.load(Ordering::SeqCst) > 0 {
            self.paused.store(false, Ordering::SeqCst);
            return Ok(false);
        }
        let at = self.qmp.clone();
        let stopped = tokio::task::spawn_blocking(move || qmp::stop(&at))
            .await
            .unwrap_or_else(|e| Err(qmp::QmpError::Command(e.to_string())));
        if let Err(e) = stopped {
            self.paused.store(false, Ordering::SeqCst);
            return Err(e);
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.sleep.send_replace(Sleep::Paused(since));
        tracing::info!("VM paused: idle, no container running");
        Ok(true)
    }
}

/// The VM's transport, with idle accounting and wake-on-connect.
pub struct IdleGate {
    shared: Arc<Shared>,
}

impl IdleGate {
    pub fn new(inner: Arc<dyn Transport>, qmp: Endpoint) -> IdleGate {
        IdleGate {
            shared: Arc::new(Shared {
                inner,
                qmp,
                open: AtomicUsize::new(0),
                last_busy: StdMutex::new(Instant::now()),
                armed: AtomicBool::new(false),
                paused: AtomicBool::new(false),
                switch: Mutex::new(()),
                sleep: watch::channel(Sleep::Awake).0,
            }),
        }
    }

    /// Follows pauses and resumes.
    pub fn watch(&self) -> watch::Receiver<Sleep> {
        self.shared.sleep.subscribe()
    }

    /// A new machine is up and its engine answers: it runs, and may pause
    /// once idle.
    pub fn arm(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
        self.shared.sleep.send_replace(Sleep::Awake);
        self.shared.touch();
        self.shared.armed.store(true, Ordering::SeqCst);
    }

    /// The machine is going away (stop, crash): never pause it again.
    pub fn disarm(&self) {
        self.shared.armed.store(false, Ordering::SeqCst);
    }

    /// Resumes the VM if it is paused.
    pub async fn wake(&self) -> io::Result<()> {
        self.shared.wake().await
    }

    /// Pauses the VM each time it has been idle for `after`: no stream held
    /// it awake for that long, its containers used under [`IDLE_CPU_PERCENT`]
    /// of a core over that time, and none holds a connection out of the VM.
    /// The guest is asked over the bare transport, which neither wakes it nor
    /// counts. Runs until the task is dropped.
    pub async fn pause_when_idle(&self, after: Duration) {
        let step = (after / 5).clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut history: VecDeque<(Instant, Activity)> = VecDeque::new();
        let mut told = String::new();
        loop {
            tokio::time::sleep(step).await;
            let s = &self.shared;
            if !s.armed.load(Ordering::SeqCst) || s.paused.load(Ordering::SeqCst) {
                history.clear();
                continue;
            }
            let now = match super::control::activity(self.shared.inner.as_ref()).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "not pausing: the guest did not say what runs");
                    // A stalled link is replaced; a booting or busy guest
                    // just answers next time.
                    if e.kind() == io::ErrorKind::TimedOut {
                        self.shared.inner.reset();
                    }
                    history.clear();
                    continue;
                }
            };
            let at = Instant::now();
            history.push_back((at, now));
            // Keep the newest sample that is at least `after` old, and what follows.
            while history.len() > 2 && at.duration_since(history[1].0) >= after {
                history.pop_front();
            }
            if s.open.load(Ordering::SeqCst) > 0 || s.idle_for() < after {
                continue;
            }
            let Some((then, base)) = history.front().copied() else {
                continue;
            };
            if at.duration_since(then) < after {
                continue;
            }
            if let Some(why) = busy(&base, &now, at.duration_since(then)) {
                if why != told {
                    tracing::info!("not pausing the idle VM: {why}");
                    told = why;
                }
                continue;
            }
            told.clear();
            match s.pause().await {
                Ok(_) => history.clear(),
                Err(e) => tracing::warn!(error = %e, "could not pause the idle VM"),
            }
        }
    }
}

/// How long the guest may take to answer right after a resume.
const PROBE: Duration = Duration::from_secs(2);

/// Containers that used more CPU than this share of one core over the idle
/// window keep the VM running: an idle server waiting for requests uses next
/// to none, a job that wakes every minute uses more.
pub const IDLE_CPU_PERCENT: u64 = 1;

/// Why the containers are not idle between two samples `over` apart, if they
/// are not.
fn busy(base: &Activity, now: &Activity, over: Duration) -> Option<String> {
    match now.external_flows {
        Some(0) => {}
        Some(n) => return Some(format!("containers hold {n} connection(s) out of the VM")),
        None if now.running > 0 => {
            return Some("containers run, and the guest cannot tell their connections".into())
        }
        None => {}
    }
    let used = now
        .container_cpu_usec
        .saturating_sub(base.container_cpu_usec);
    let window = over.as_micros() as u64;
    (used * 100 > window * IDLE_CPU_PERCENT).then(|| {
        format!(
            "containers used {} ms of CPU in the last {} s",
            used / 1000,
            over.as_secs()
        )
    })
}

impl Transport for IdleGate {
    fn connect(&self, port: u32) -> ConnectFuture<'_> {
        Box::pin(async move {
            // Counted before waking, so the pauser cannot stop the VM between
            // the resume and the connect.
            let hold = (port != berth_proto::CONTROL_PORT).then(|| Hold::new(&self.shared));
            self.shared.wake().await?;
            let stream = self.shared.inner.connect(port).await?;
            Ok(match hold {
                Some(hold) => Box::new(Held {
                    stream,
                    hold: Some(hold),
                    sniff: port == berth_proto::API_PORT,
                }) as BoxStream,
                None => stream,
            })
        })
    }

    fn name(&self) -> &'static str {
        self.shared.inner.name()
    }

    fn reset(&self) {
        self.shared.inner.reset()
    }
}

/// One open stream that keeps the VM awake; dropping it starts the idle clock.
struct Hold(Arc<Shared>);

impl Hold {
    fn new(shared: &Arc<Shared>) -> Hold {
        shared.open.fetch_add(1, Ordering::SeqCst);
        Hold(shared.clone())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.touch();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A guest stream that holds the VM awake while open, unless its first request
/// only watches events.
struct Held {
    stream: BoxStream,
    hold: Option<Hold>,
    /// Look at the first bytes the client sends (API streams only).
    sniff: bool,
}

/// `GET /events` or `GET /v1.NN/events`: a watcher, not work.
fn watches_events(first: &[u8]) -> bool {
    let Some(rest) = first.strip_prefix(b"GET ") else {
        return false;
    };
    let path = rest.split(|&b| b == b' ').next().unwrap_or_default();
    let path = match path.strip_prefix(b"/v") {
        Some(v) => {
            let skip = v
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'.')
                .count();
            &v[skip..]
        }
        None => path,
    };
    path == b"/events" || path.starts_with(b"/events?")
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.sniff && !buf.is_empty() {
            self.sniff = false;
            if watches_events(buf) {
                self.hold = None;
            }
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn event_watchers_are_told_apart() {
        assert!(watches_events(b"GET /events HTTP/1.1\r\n"));
        assert!(watches_events(
            b"GET /v1.47/events?filters=%7B%7D HTTP/1.1\r\n"
        ));
        assert!(!watches_events(b"GET /v1.47/containers/json HTTP/1.1\r\n"));
        assert!(!watches_events(b"POST /events HTTP/1.1\r\n"));
        assert!(!watches_events(b"GET /v1.47/eventsx HTTP/1.1\r\n"));
        assert!(!watches_events(b"GE"));
    }

    fn act(running: u32, cpu_ms: u64, flows: Option<u32>) -> Activity {
        Activity {
            running,
            container_cpu_usec: cpu_ms * 1000,
            external_flows: flows,
        }
    }

    #[test]
    fn idle_means_little_cpu_and_no_outside_peer() {
        let min = Duration::from_secs(60);
        // An idle web server: 100 ms of CPU in a minute.
        assert_eq!(
            busy(&act(1, 5_000, Some(0)), &act(1, 5_100, Some(0)), min),
            None
        );
        // No container at all.
        assert_eq!(busy(&act(0, 0, None), &act(0, 0, None), min), None);
        let e = busy(&act(1, 5_000, Some(0)), &act(1, 7_000, Some(0)), min).unwrap();
        assert_eq!(e, "containers used 2000 ms of CPU in the last 60 s");
        let e = busy(&act(1, 0, Some(0)), &act(1, 0, Some(2)), min).unwrap();
        assert!(e.contains("2 connection(s) out of the VM"), "{e}");
        assert!(busy(&act(1, 0, None), &act(1, 0, None), min).is_some());
    }

    /// A transport whose streams are in-memory pipes; the far end reads and
    /// never answers.
    struct Loop;
    impl Transport for Loop {
        fn connect(&self, _port: u32) -> ConnectFuture<'_> {
            Box::pin(async {
                let (near, mut far) = tokio::io::duplex(1024);
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut far, &mut tokio::io::sink()).await;
                });
                Ok(Box::new(near) as BoxStream)
            })
        }
        fn name(&self) -> &'static str {
            "loop"
        }
    }

    #[tokio::test]
    async fn open_streams_are_counted_until_dropped_and_watchers_are_not() {
        let gate = IdleGate::new(Arc::new(Loop), Endpoint::Unix("/nonexistent".into()));
        let mut api = gate.connect(berth_proto::API_PORT).await.unwrap();
        let fwd = gate.connect(berth_proto::FORWARD_PORT).await.unwrap();
        let control = gate.connect(berth_proto::CONTROL_PORT).await.unwrap();
        assert_eq!(gate.shared.open.load(Ordering::SeqCst), 2);
        drop(fwd);
        drop(control);
        assert_eq!(gate.shared.open.load(Ordering::SeqCst), 1);
        let mut events = gate.connect(berth_proto::API_PORT).await.unwrap();
        events
            .write_all(b"GET /v1.47/events HTTP/1.1\r\n")
            .await
            .unwrap();
        api.write_all(b"GET /v1.47/info HTTP/1.1\r\n")
            .await
            .unwrap();
        assert_eq!(gate.shared.open.load(Ordering::SeqCst), 1);
        drop(api);
        assert_eq!(gate.shared.open.load(Ordering::SeqCst), 0);
        drop(events);
    }

    #[tokio::test]
    async fn a_busy_or_unarmed_gate_does_not_pause() {
        let gate = IdleGate::new(Arc::new(Loop), Endpoint::Unix("/nonexistent".into()));
        // Not armed: no QMP is even tried.
        assert!(!gate.shared.pause().await.unwrap());
        gate.arm();
        let _held = gate.connect(berth_proto::API_PORT).await.unwrap();
        assert!(!gate.shared.pause().await.unwrap());
        assert_eq!(*gate.watch().borrow(), Sleep::Awake);
    }
}
