//! The protocol between Berth's host side (`app/`) and the engine in the VM
//! (`guest-agent/`). Both sides link this crate, so the bytes are defined once.
//!
//! # Services
//!
//! The guest offers three byte-stream services, each on its own vsock port:
//!
//! | port | service | bytes |
//! |---|---|---|
//! | [`API_PORT`] 1024 | the Docker Engine API | HTTP/1.1 exactly as on `docker.sock`; upgrades (attach, exec) continue on the same stream |
//! | [`CONTROL_PORT`] 1025 | control | one JSON object per line, [`control::HostMsg`] host→guest and [`control::GuestMsg`] guest→host |
//! | [`FORWARD_PORT`] 1026 | port forward | a header line ([`forward::Request`]), a reply line, then the forwarded bytes ([`forward`]) |
//! | [`MUX_PORT`] 1027 | multiplexer | one yamux session whose streams reach the ports above ([`mux`]) |
//!
//! A host opens one stream per API client connection and per forwarded TCP
//! connection (or UDP peer); the control stream lives as long as the host
//! supervises the VM.
//!
//! # Transports
//!
//! How a stream reaches a port depends on the host, never on the guest's code:
//! kernel vhost-vsock and hybrid vsock (`vhost-device-vsock`, `CONNECT <port>\n`
//! / `OK <port>\n`) land on the guest's AF_VSOCK listeners directly. Where the
//! host's QEMU has no vsock (macOS, Windows), one virtio-serial port carries a
//! yamux session ([`mux`]) whose every stream starts with the 4-byte port it
//! wants; after that prefix the stream carries exactly what the vsock
//! connection would.
//!
//! Hybrid vsock backends end the whole vsock connection when the host side
//! half-closes its unix socket (`vhost-device-vsock` does, measured), yet the
//! Docker API needs half-close: it is how a client says stdin ended. So the
//! host reaches the guest through [`MUX_PORT`] there too, and only kernel
//! vhost-vsock uses the per-service ports directly.

pub mod control;
pub mod forward;
pub mod lines;
pub mod mux;
pub mod shares;

/// The host's OS: what the host side is built for, and what the guest is told
/// (`berth.hostos=`) so it reads the host's paths right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOs {
    Linux,
    MacOs,
    Windows,
}

impl HostOs {
    /// The OS this binary is built for.
    pub fn current() -> HostOs {
        if cfg!(target_os = "macos") {
            HostOs::MacOs
        } else if cfg!(target_os = "windows") {
            HostOs::Windows
        } else {
            HostOs::Linux
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HostOs::Linux => "linux",
            HostOs::MacOs => "macos",
            HostOs::Windows => "windows",
        }
    }

    pub fn parse(s: &str) -> Option<HostOs> {
        [HostOs::Linux, HostOs::MacOs, HostOs::Windows]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// The Docker Engine API.
pub const API_PORT: u32 = 1024;
/// Control messages: published ports, health, time, shutdown.
pub const CONTROL_PORT: u32 = 1025;
/// Connections forwarded from a host port to a port published in the guest.
pub const FORWARD_PORT: u32 = 1026;
/// A yamux session carrying streams to the ports above.
pub const MUX_PORT: u32 = 1027;
/// The one guest→host connection: once its listeners are up, the guest
/// connects to this port on the host (CID 2) and writes [`READY_LINE`]. Hybrid
/// vsock backends can lose a `CONNECT` that arrives while the guest's vsock
/// driver is still starting (and then never answer it), so the host waits for
/// this before its first `CONNECT`, as Kata's agent handshake does.
pub const READY_PORT: u32 = 1028;
pub const READY_LINE: &str = "berth-ready\n";

/// The guest's name for the virtio-serial port of the multiplexed transport
/// (`/sys/class/virtio-ports/*/name`).
pub const SERIAL_PORT_NAME: &str = "org.berth.mux";

/// The guest's address on QEMU's user network (`vm-image/init` assigns it; the
/// host is 10.0.2.2). Connections the engine masquerades out of the VM carry it.
pub const GUEST_NET_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 15);
/// The host's loopback as the guest reaches it on QEMU's user network.
pub const HOST_NET_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 2);

/// Bumped when a message or a framing changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;
