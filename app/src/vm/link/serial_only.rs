//! macOS and Windows: the serial mux over QEMU's chardev (a unix socket, or a
//! named pipe on Windows), whatever the settings ask for.

use std::sync::Arc;

use crate::settings::TransportKind;
use crate::transport::{Muxed, Transport};
use crate::vm::argv::TransportDevice;
use crate::vm::VmPaths;

/// Why the serial mux: the only transport QEMU offers on this OS.
pub(crate) fn transport_reason(_wanted: TransportKind, _chosen: TransportKind) -> String {
    "QEMU on this OS has no vsock".into()
}

/// Which transport `kind` means on this host: always the serial mux.
pub(crate) fn resolve_transport(kind: TransportKind) -> TransportKind {
    if !matches!(kind, TransportKind::Auto | TransportKind::Serial) {
        tracing::warn!(wanted = ?kind, "vsock exists only on Linux hosts; using the serial transport");
    }
    TransportKind::Serial
}

pub(crate) fn transport_for(
    _kind: TransportKind,
    vm: &VmPaths,
) -> (Arc<dyn Transport>, TransportDevice) {
    let endpoint = vm.mux_endpoint();
    (
        Arc::new(Muxed::new(endpoint.serial_pipe())),
        TransportDevice::Serial { endpoint },
    )
}

/// The serial mux queues streams until the guest serves them, so there is no
/// separate signal: the supervisor pings until the engine answers.
pub(crate) struct ReadySignal;

impl ReadySignal {
    pub(crate) fn bind(_kind: TransportKind, _vm: &VmPaths) -> ReadySignal {
        ReadySignal
    }

    pub(crate) fn polls(&self) -> bool {
        true
    }

    pub(crate) fn drain(&self) {}

    pub(crate) async fn wait(&self) {
        std::future::pending().await
    }

    pub(crate) fn cleanup(&self, _vm: &VmPaths) {}
}
