//! The control channel: announces published ports to the host, answers health
//! pings and the idle pause's activity question, steps the clock when the host
//! woke from sleep or resumed the VM, and takes the shutdown request.

use std::sync::Arc;

use berth_proto::control::{self, GuestMsg, HostMsg, PortMapping};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::{broadcast, Notify};

use crate::engine::Engine;
use crate::network::ports::Binding;

fn mapping(b: &Binding) -> PortMapping {
    PortMapping {
        proto: b.proto,
        ip: b.host_ip,
        port: b.host_port,
    }
}

fn hello(engine: &Engine) -> GuestMsg {
    let mut ports: Vec<PortMapping> = engine.network.ports.all().iter().map(mapping).collect();
    ports.sort_by_key(|m| (m.port, m.proto.as_str()));
    ports.dedup();
    GuestMsg::Hello {
        protocol: berth_proto::PROTOCOL_VERSION,
        agent: crate::VERSION.to_string(),
        ports,
    }
}

/// Steps the wall clock to the host's when they differ by more than a second
/// (the VM's clock stops while the host sleeps).
fn set_time(unix_secs: i64, nanos: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - unix_secs).abs() <= 1 {
        return;
    }
    let ts = nix::sys::time::TimeSpec::new(unix_secs, nanos as _);
    match nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, ts) {
        Ok(()) => tracing::info!(drift_secs = unix_secs - now, "clock stepped to the host's"),
        Err(e) => tracing::warn!(error = %e, "cannot set the clock"),
    }
}

pub async fn run<S>(engine: Arc<Engine>, stream: S, shutdown: Arc<Notify>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    // Subscribe before the snapshot so no change falls between the two.
    let mut events = engine.network.ports.subscribe();
    if control::send(&mut w, &hello(&engine)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            msg = control::recv::<_, HostMsg>(&mut r) => match msg {
                Ok(Some(HostMsg::Ping { seq })) => {
                    if control::send(&mut w, &GuestMsg::Pong { seq }).await.is_err() {
                        return;
                    }
                }
                Ok(Some(HostMsg::SetTime { unix_secs, nanos })) => set_time(unix_secs, nanos),
                Ok(Some(HostMsg::Activity)) => {
                    let a = super::activity::sample(&engine);
                    if control::send(&mut w, &GuestMsg::Activity(a)).await.is_err() {
                        return;
                    }
                }
                Ok(Some(HostMsg::Shutdown)) => {
                    tracing::info!("the host asked for shutdown");
                    let _ = control::send(&mut w, &GuestMsg::ShuttingDown).await;
                    shutdown.notify_one();
                    return;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "control channel closed");
                    return;
                }
            },
            ev = events.recv() => {
                let msg = match ev {
                    Ok(ev) if ev.published => GuestMsg::Published(mapping(&ev.binding)),
                    Ok(ev) => GuestMsg::Unpublished(mapping(&ev.binding)),
                    // Missed changes: a fresh snapshot replaces the host's view.
                    Err(broadcast::error::RecvError::Lagged(_)) => hello(&engine),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if control::send(&mut w, &msg).await.is_err() {
                    return;
                }
            }
        }
    }
}
