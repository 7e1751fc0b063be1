//! How the host reaches a boot's guest: the transport, the QEMU device that
//! carries it, and how the guest says its listeners are up. Kernel and hybrid
//! vsock exist only on Linux hosts (`/dev/vhost-vsock`, `vhost-device-vsock`);
//! macOS and Windows QEMU have no vsock, so every other host uses the serial
//! mux ([`crate::transport::Muxed`]).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{resolve_transport, transport_for, transport_reason, ReadySignal};

#[cfg(not(target_os = "linux"))]
mod serial_only;
#[cfg(not(target_os = "linux"))]
pub(crate) use serial_only::{resolve_transport, transport_for, transport_reason, ReadySignal};
