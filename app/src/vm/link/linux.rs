//! Linux: kernel vhost-vsock, hybrid vsock through `vhost-device-vsock`, or
//! the serial mux; the vsock transports also carry the guest's ready signal.

use std::sync::Arc;

use crate::settings::TransportKind;
use crate::transport::{HybridVsock, Muxed, Pipe, Transport, VhostVsock};
use crate::vm::argv::TransportDevice;
use crate::vm::{image, VmPaths};

/// Why `resolve_transport(wanted)` gave `chosen`, and how to get vsock when
/// the slower serial mux was all there was.
pub(crate) fn transport_reason(wanted: TransportKind, chosen: TransportKind) -> String {
    transport_reason_for(wanted, chosen, VhostVsock::available())
}

fn transport_reason_for(wanted: TransportKind, chosen: TransportKind, vhost: bool) -> String {
    match (wanted, chosen) {
        (TransportKind::Auto, TransportKind::VhostVsock) => "the kernel's vhost-vsock".into(),
        (TransportKind::Auto, TransportKind::Hybrid) => {
            "vhost-device-vsock (no /dev/vhost-vsock here)".into()
        }
        (TransportKind::Auto, _) if !vhost => "no /dev/vhost-vsock and no vhost-device-vsock; \
             vsock starts and stops the VM faster: `sudo modprobe vhost_vsock` (and access to \
             /dev/vhost-vsock), or `cargo install vhost-device-vsock`"
            .into(),
        (TransportKind::Auto, _) => "the serial mux".into(),
        _ => "as the settings ask".into(),
    }
}

/// Which transport `Auto` means on this host.
pub(crate) fn resolve_transport(kind: TransportKind) -> TransportKind {
    match kind {
        TransportKind::Auto if VhostVsock::available() => TransportKind::VhostVsock,
        TransportKind::Auto if image::find_program("vhost-device-vsock").is_some() => {
            TransportKind::Hybrid
        }
        TransportKind::Auto => TransportKind::Serial,
        k => k,
    }
}

pub(crate) fn transport_for(
    kind: TransportKind,
    vm: &VmPaths,
) -> (Arc<dyn Transport>, TransportDevice) {
    match kind {
        TransportKind::VhostVsock => {
            // A CID no other VM of this host is likely to hold.
            let cid = 1000 + std::process::id() % 100_000;
            (
                Arc::new(VhostVsock { cid }),
                TransportDevice::VhostVsock { cid },
            )
        }
        TransportKind::Hybrid => (
            Arc::new(Muxed::new(Pipe::Hybrid(HybridVsock {
                uds: vm.vsock_uds(),
            }))),
            TransportDevice::Hybrid {
                socket: vm.vhost_user(),
            },
        ),
        TransportKind::Serial | TransportKind::Auto => (
            Arc::new(Muxed::new(vm.mux_endpoint().serial_pipe())),
            TransportDevice::Serial {
                endpoint: vm.mux_endpoint(),
            },
        ),
    }
}

/// How the supervisor learns that the guest's listeners are up.
pub(crate) enum ReadySignal {
    /// Hybrid vsock: the backend delivers the guest's connection here.
    Unix(tokio::net::UnixListener),
    /// Kernel vhost-vsock: a host AF_VSOCK listener.
    Vsock(tokio_vsock::VsockListener),
    /// No signal (the serial mux queues streams until the guest serves them):
    /// ping until the engine answers.
    Poll,
}

impl ReadySignal {
    pub(crate) fn bind(kind: TransportKind, vm: &VmPaths) -> ReadySignal {
        let port = berth_proto::READY_PORT;
        match kind {
            TransportKind::Hybrid => {
                let path = HybridVsock {
                    uds: vm.vsock_uds(),
                }
                .host_listener_path(port);
                let _ = std::fs::remove_file(&path);
                match tokio::net::UnixListener::bind(&path) {
                    Ok(l) => ReadySignal::Unix(l),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "no ready signal; polling");
                        ReadySignal::Poll
                    }
                }
            }
            TransportKind::VhostVsock => {
                let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
                match tokio_vsock::VsockListener::bind(addr) {
                    Ok(l) => ReadySignal::Vsock(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "no ready signal; polling");
                        ReadySignal::Poll
                    }
                }
            }
            TransportKind::Serial | TransportKind::Auto => ReadySignal::Poll,
        }
    }

    /// Drops connections a previous boot left queued, so they are not taken
    /// for this boot's signal.
    pub(crate) fn drain(&self) {
        use futures_util::FutureExt;
        loop {
            let pending = match self {
                ReadySignal::Unix(l) => l.accept().now_or_never().map(|r| r.is_ok()),
                ReadySignal::Vsock(l) => l.accept().now_or_never().map(|r| r.is_ok()),
                ReadySignal::Poll => None,
            };
            if pending != Some(true) {
                return;
            }
        }
    }

    /// Returns when a guest connected (never for `Poll`).
    pub(crate) async fn wait(&self) {
        match self {
            ReadySignal::Unix(l) => {
                let _ = l.accept().await;
            }
            ReadySignal::Vsock(l) => {
                let _ = l.accept().await;
            }
            ReadySignal::Poll => std::future::pending().await,
        }
    }

    /// Whether the supervisor must poll (no signal comes).
    pub(crate) fn polls(&self) -> bool {
        matches!(self, ReadySignal::Poll)
    }

    /// Removes the listener's socket file.
    pub(crate) fn cleanup(&self, vm: &VmPaths) {
        if let ReadySignal::Unix(_) = self {
            let _ = std::fs::remove_file(
                HybridVsock {
                    uds: vm.vsock_uds(),
                }
                .host_listener_path(berth_proto::READY_PORT),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_way_to_vsock_when_serial_was_all_there_was() {
        use TransportKind::*;
        assert!(transport_reason_for(Auto, Serial, false).contains("modprobe vhost_vsock"));
        assert!(transport_reason_for(Auto, Serial, false).contains("vhost-device-vsock"));
        assert_eq!(
            transport_reason_for(Auto, VhostVsock, true),
            "the kernel's vhost-vsock"
        );
        assert_eq!(
            transport_reason_for(Serial, Serial, true),
            "as the settings ask"
        );
    }
}
