//! The host's end of the control channel: keeps the port mirror in step with
//! the engine, pings for health, and steps the guest's clock after the host
//! slept (wall time jumped further than monotonic time) and after every idle
//! pause (the guest's clock stood still while its vCPUs did).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_proto::control::{self, GuestMsg, HostMsg};
use tokio::io::BufReader;
use tokio::sync::{watch, Mutex};

use super::Sleep;
use crate::forward::ports::PortMirror;
use crate::transport::Transport;

const PING_EVERY: Duration = Duration::from_secs(5);

fn now_msg() -> HostMsg {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    HostMsg::SetTime {
        unix_secs: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
    }
}

/// Runs until the task is dropped, reconnecting whenever the channel breaks.
pub async fn run(
    transport: Arc<dyn Transport>,
    mirror: Arc<Mutex<PortMirror>>,
    mut sleep: watch::Receiver<Sleep>,
) {
    loop {
        match transport.connect(berth_proto::CONTROL_PORT).await {
            Ok(s) => {
                if let Err(e) = session(s, &mirror, &mut sleep).await {
                    tracing::info!(error = %e, "control channel ended");
                }
            }
            Err(e) => tracing::debug!(error = %e, "control channel not reachable yet"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn session(
    stream: crate::transport::BoxStream,
    mirror: &Mutex<PortMirror>,
    sleep: &mut watch::Receiver<Sleep>,
) -> Result<(), control::ControlError> {
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    control::send(&mut w, &now_msg()).await.map_err(io)?;
    let mut tick = tokio::time::interval(PING_EVERY);
    let mut seq = 0u64;
    let mut last = (Instant::now(), SystemTime::now());
    loop {
        tokio::select! {
            msg = control::recv::<_, GuestMsg>(&mut r) => match msg? {
                Some(GuestMsg::Hello { ports, agent, .. }) => {
                    tracing::info!(agent, ports = ports.len(), "engine connected");
                    mirror.lock().await.reset(ports).await;
                }
                Some(GuestMsg::Published(m)) => mirror.lock().await.add(m).await,
                Some(GuestMsg::Unpublished(m)) => mirror.lock().await.remove(&m),
                Some(GuestMsg::Pong { .. } | GuestMsg::Activity(_)) => {}
                Some(GuestMsg::ShuttingDown) => return Ok(()),
                None => return Ok(()),
            },
            Ok(()) = sleep.changed() => {
                let now = *sleep.borrow_and_update();
                if now == Sleep::Awake {
                    control::send(&mut w, &now_msg()).await.map_err(io)?;
                    last = (Instant::now(), SystemTime::now());
                }
            }
            // A paused guest reads nothing; pings would only pile up.
            _ = tick.tick(), if *sleep.borrow() == Sleep::Awake => {
                seq += 1;
                control::send(&mut w, &HostMsg::Ping { seq }).await.map_err(io)?;
                // The guest's clock stood still while the host slept.
                let (mono, wall) = (Instant::now(), SystemTime::now());
                let mono_d = mono.duration_since(last.0).as_secs_f64();
                let wall_d = wall.duration_since(last.1).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                if (wall_d - mono_d).abs() > 2.0 {
                    control::send(&mut w, &now_msg()).await.map_err(io)?;
                }
                last = (mono, wall);
            }
        }
    }
}

fn io(e: std::io::Error) -> control::ControlError {
    control::ControlError::Line(berth_proto::lines::LineError::Io(e))
}

/// What the containers are doing (see [`control::Activity`]), asked on a
/// connection of its own.
pub async fn activity(transport: &dyn Transport) -> std::io::Result<control::Activity> {
    let s = transport.connect(berth_proto::CONTROL_PORT).await?;
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    control::send(&mut w, &HostMsg::Activity).await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match control::recv::<_, GuestMsg>(&mut r).await {
                Ok(Some(GuestMsg::Activity(a))) => return Ok(a),
                Ok(Some(_)) => continue,
                Ok(None) => return Err(std::io::Error::other("the guest closed the channel")),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
    })
    .await;
    answer.unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the guest did not say what its containers do",
        ))
    })
}

/// Asks the guest to shut down; true when it acknowledged.
pub async fn request_shutdown(transport: &dyn Transport) -> bool {
    let Ok(s) = transport.connect(berth_proto::CONTROL_PORT).await else {
        return false;
    };
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    if control::send(&mut w, &HostMsg::Shutdown).await.is_err() {
        return false;
    }
    let ack = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match control::recv::<_, GuestMsg>(&mut r).await {
                Ok(Some(GuestMsg::ShuttingDown)) => return true,
                Ok(Some(_)) => continue,
                _ => return false,
            }
        }
    })
    .await;
    matches!(ack, Ok(true))
}
