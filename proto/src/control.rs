//! The control channel ([`crate::CONTROL_PORT`]): newline-delimited JSON, one
//! object per line, tagged by `"type"`.
//!
//! On connect the guest sends [`GuestMsg::Hello`] with every port published at
//! that moment, then a [`GuestMsg::Published`] or [`GuestMsg::Unpublished`] per
//! change. The host may send [`HostMsg::Ping`] (answered by [`GuestMsg::Pong`]),
//! [`HostMsg::SetTime`] after the host slept or the VM was paused,
//! [`HostMsg::Activity`] (answered by [`GuestMsg::Activity`], for the idle
//! pause), and [`HostMsg::Shutdown`], after which the guest answers
//! [`GuestMsg::ShuttingDown`], stops the engine, syncs and powers off.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};

use crate::lines::{read_line, LineError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A port the engine published in the guest, as the user asked for it:
/// `ip` is the host address (`0.0.0.0` for all interfaces, `127.0.0.1`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Proto,
    pub ip: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMsg {
    Ping {
        seq: u64,
    },
    /// Wall-clock time on the host, for the guest to step its clock to.
    SetTime {
        unix_secs: i64,
        nanos: u32,
    },
    /// What the containers are doing: answered by [`GuestMsg::Activity`].
    Activity,
    Shutdown,
}

/// What the containers are doing, for the host's idle pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Running containers (paused ones not counted).
    pub running: u32,
    /// CPU time every container has used since boot, in microseconds (the
    /// engine's cgroup's `usage_usec`; it counts removed containers too).
    pub container_cpu_usec: u64,
    /// Established TCP connections from containers out of the VM (to the host
    /// or beyond); None where the guest cannot tell.
    pub external_flows: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GuestMsg {
    Hello {
        protocol: u32,
        agent: String,
        ports: Vec<PortMapping>,
    },
    Pong {
        seq: u64,
    },
    Published(PortMapping),
    Unpublished(PortMapping),
    Activity(Activity),
    ShuttingDown,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Line(#[from] LineError),
    #[error("malformed control message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes one message as a line.
pub async fn send<W, M>(w: &mut W, msg: &M) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
    M: Serialize,
{
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

/// Reads the next message; `None` when the peer closed the channel.
pub async fn recv<R, M>(r: &mut R) -> Result<Option<M>, ControlError>
where
    R: AsyncBufRead + Unpin,
    M: for<'de> Deserialize<'de>,
{
    match read_line(r).await? {
        None => Ok(None),
        Some(line) => Ok(Some(serde_json::from_str(&line)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        let m = GuestMsg::Published(PortMapping {
            proto: Proto::Udp,
            ip: "127.0.0.1".parse().unwrap(),
            port: 5353,
        });
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"published","proto":"udp","ip":"127.0.0.1","port":5353}"#
        );
        assert_eq!(
            serde_json::to_string(&HostMsg::Shutdown).unwrap(),
            r#"{"type":"shutdown"}"#
        );
    }

    #[tokio::test]
    async fn round_trip_and_garbage() {
        let mut buf = Vec::new();
        send(&mut buf, &HostMsg::Ping { seq: 7 }).await.unwrap();
        buf.extend_from_slice(b"{\"type\":\"nope\"}\n");
        let mut r = tokio::io::BufReader::new(&buf[..]);
        let m: Option<HostMsg> = recv(&mut r).await.unwrap();
        assert_eq!(m, Some(HostMsg::Ping { seq: 7 }));
        assert!(matches!(
            recv::<_, HostMsg>(&mut r).await,
            Err(ControlError::Json(_))
        ));
        assert!(recv::<_, HostMsg>(&mut r).await.unwrap().is_none());
    }
}
