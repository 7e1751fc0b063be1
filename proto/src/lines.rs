//! Bounded line reading: every header and control message is one `\n`-terminated
//! line, and a peer that never sends `\n` must not make the other side buffer
//! without end.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The longest line either side accepts, newline included.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one line without its `\n`; `None` at a clean end of stream.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<String>, LineError> {
    let mut buf = Vec::new();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            return Err(LineError::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        r.consume(take);
        if done {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return String::from_utf8(buf)
                .map(Some)
                .map_err(|_| LineError::NotUtf8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_and_limits() {
        let mut r = tokio::io::BufReader::new(&b"one\ntwo\r\nthree"[..]);
        assert_eq!(read_line(&mut r).await.unwrap().as_deref(), Some("one"));
        assert_eq!(read_line(&mut r).await.unwrap().as_deref(), Some("two"));
        assert!(matches!(read_line(&mut r).await, Err(LineError::Io(_))));
        let mut empty = tokio::io::BufReader::new(&b""[..]);
        assert!(read_line(&mut empty).await.unwrap().is_none());
        let long = vec![b'a'; MAX_LINE + 1];
        let mut r = tokio::io::BufReader::new(&long[..]);
        assert!(matches!(read_line(&mut r).await, Err(LineError::TooLong)));
    }
}
