//! The byte protocol on `<bundle>/attach.sock`, spoken by the daemon (client) to a
//! container's shim (server): what the user types and how big their terminal is.
//! Output never flows here; it goes through the container's log.
//!
//! Frame: `[kind: u8][len: u32 big-endian][payload]`.
//! kind 0 = stdin bytes, 1 = close stdin (payload empty),
//! 2 = resize (payload: rows u16 BE, cols u16 BE).

pub const SOCKET: &str = "attach.sock";

/// A short path for a socket in `dir`: unix socket addresses hold at most 107 bytes and
/// container directories are deeper than that, so we go through an open handle on the
/// directory (`/proc/self/fd/N/NAME`). Keep the returned handle until bind/connect is
/// done.
pub fn short_path(
    dir: &std::path::Path,
    name: &str,
) -> std::io::Result<(std::fs::File, std::path::PathBuf)> {
    let handle = std::fs::File::open(dir)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&handle);
    Ok((
        handle,
        std::path::PathBuf::from(format!("/proc/self/fd/{fd}/{name}")),
    ))
}
const HEADER: usize = 5;
/// Frames larger than this are a protocol error, not an allocation.
const MAX_PAYLOAD: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize { rows: u16, cols: u16 },
}

pub fn encode(f: &Frame) -> Vec<u8> {
    let (kind, payload): (u8, Vec<u8>) = match f {
        Frame::Stdin(d) => (0, d.clone()),
        Frame::CloseStdin => (1, Vec::new()),
        Frame::Resize { rows, cols } => (2, [rows.to_be_bytes(), cols.to_be_bytes()].concat()),
    };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed resize frame")]
    Resize,
}

/// Accumulates bytes and yields whole frames.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<Result<Frame, ProtoError>> {
        if self.buf.len() < HEADER {
            return None;
        }
        let kind = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Some(Err(ProtoError::TooLarge(len)));
        }
        if self.buf.len() < HEADER + len {
            return None;
        }
        let payload: Vec<u8> = self.buf.drain(..HEADER + len).skip(HEADER).collect();
        Some(match kind {
            0 => Ok(Frame::Stdin(payload)),
            1 => Ok(Frame::CloseStdin),
            2 if payload.len() == 4 => Ok(Frame::Resize {
                rows: u16::from_be_bytes([payload[0], payload[1]]),
                cols: u16::from_be_bytes([payload[2], payload[3]]),
            }),
            2 => Err(ProtoError::Resize),
            k => Err(ProtoError::Kind(k)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_in_pieces() {
        let frames = vec![
            Frame::Stdin(b"hello".to_vec()),
            Frame::Resize {
                rows: 40,
                cols: 120,
            },
            Frame::CloseStdin,
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in bytes.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame() {
                got.push(f.unwrap());
            }
        }
        assert_eq!(got, frames);
        let mut d = Decoder::default();
        d.push(&[9, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Some(Err(ProtoError::Kind(9))));
        let mut d = Decoder::default();
        d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Some(Err(ProtoError::TooLarge(_)))));
    }
}
