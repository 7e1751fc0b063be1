//! The engine's end of the host↔guest link inside Berth's VM: the Docker API,
//! the control channel and port forwards, on the ports `berth-proto` defines.
//! The same handlers serve AF_VSOCK connections and the streams of the
//! multiplexed serial transport, so nothing here knows which one the host uses.

mod activity;
mod control;
mod forward;
mod reclaim;
mod serial;
pub mod shares;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

use crate::config::HostLink;
use crate::engine::Engine;

#[derive(Debug, thiserror::Error)]
pub enum HostLinkError {
    #[error("listening on vsock port {port}: {source}")]
    VsockBind {
        port: u32,
        #[source]
        source: std::io::Error,
    },
}

/// Starts serving the host. `shutdown` is notified when the host asks the VM to
/// power off; the daemon then stops and the VM's init powers off.
pub fn start(
    engine: Arc<Engine>,
    link: &HostLink,
    shutdown: Arc<Notify>,
) -> Result<(), HostLinkError> {
    tokio::spawn(reclaim::run(engine.clone()));
    match link {
        HostLink::Vsock => {
            for port in [
                berth_proto::API_PORT,
                berth_proto::CONTROL_PORT,
                berth_proto::FORWARD_PORT,
                berth_proto::MUX_PORT,
            ] {
                let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
                let listener = tokio_vsock::VsockListener::bind(addr)
                    .map_err(|source| HostLinkError::VsockBind { port, source })?;
                let engine = engine.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => {
                                dispatch(engine.clone(), port, stream, shutdown.clone())
                            }
                            Err(e) => {
                                tracing::warn!(port, error = %e, "vsock accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
            }
            tokio::spawn(announce_ready());
            tracing::info!("serving the host over vsock");
        }
        HostLink::Serial => {
            tokio::spawn(serial::run(engine, shutdown));
            tracing::info!("serving the host over the multiplexed serial port");
        }
    }
    Ok(())
}

/// Tells the host the listeners are up (see `berth_proto::READY_PORT`). A host
/// that does not listen (an older one, or kernel vhost-vsock without it) only
/// costs a few refused connects.
async fn announce_ready() {
    use tokio::io::AsyncWriteExt;
    let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_HOST, berth_proto::READY_PORT);
    for _ in 0..600 {
        if let Ok(mut s) = tokio_vsock::VsockStream::connect(addr).await {
            if s.write_all(berth_proto::READY_LINE.as_bytes())
                .await
                .is_ok()
            {
                let _ = AsyncWriteExt::shutdown(&mut s).await;
                tracing::info!("told the host the engine is ready");
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::warn!("the host never took the ready signal");
}

/// Hands a new host stream to the service on `port`.
fn dispatch<S>(engine: Arc<Engine>, port: u32, stream: S, shutdown: Arc<Notify>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match port {
        berth_proto::API_PORT => {
            tokio::spawn(crate::api::serve(engine, stream));
        }
        berth_proto::CONTROL_PORT => {
            tokio::spawn(control::run(engine, stream, shutdown));
        }
        berth_proto::FORWARD_PORT => {
            tokio::spawn(forward::run(stream));
        }
        berth_proto::MUX_PORT => {
            tokio::spawn(async move {
                let result = berth_proto::mux::serve(stream, move |port, s| {
                    // A session names only the services, never itself.
                    if port != berth_proto::MUX_PORT {
                        dispatch(engine.clone(), port, s, shutdown.clone())
                    }
                })
                .await;
                if let Err(e) = result {
                    tracing::debug!(error = %e, "multiplexed session ended");
                }
            });
        }
        other => tracing::debug!(port = other, "stream for an unknown port dropped"),
    }
}
