//! Reading a container's json-file log: filters (`stdout`, `stderr`, `since`, `until`,
//! `tail`), timestamps, and Docker's stream framing for the API.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub stream: Stream,
    pub time: String,
    pub data: Vec<u8>,
}

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    pub tail: Option<usize>,
    /// Unix seconds (fractional).
    pub since: Option<f64>,
    pub until: Option<f64>,
}

fn unix_of(t: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp() as f64 + d.timestamp_subsec_nanos() as f64 / 1e9)
        .unwrap_or(0.0)
}

impl LogOptions {
    fn wants(&self, e: &Entry) -> bool {
        let stream_ok = match e.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        if !stream_ok {
            return false;
        }
        let t = unix_of(&e.time);
        !(self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u))
    }
}

fn parse(line: &str) -> Option<Entry> {
    let l: Line = serde_json::from_str(line).ok()?;
    Some(Entry {
        stream: if l.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        time: l.time,
        data: l.log.into_bytes(),
    })
}

/// Reads entries from byte `offset` to the current end; returns them and the new offset
/// (only complete lines are consumed).
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<Entry>, u64)> {
    match std::fs::File::open(path) {
        Ok(f) => read_from_file(&f, offset),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), offset)),
        Err(e) => Err(e),
    }
}

/// [`read_from`] on a log already open: it can still be read once the container (and
/// so the file's name) is gone.
pub fn read_from_file(file: &std::fs::File, offset: u64) -> std::io::Result<(Vec<Entry>, u64)> {
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Some(e) = parse(line.trim_end()) {
            out.push(e);
        }
    }
    Ok((out, pos))
}

/// Entries of the rotated files (oldest first), which precede the live file's.
pub fn read_rotated(path: &Path) -> Vec<Entry> {
    crate::runtime::logfile::rotated_files(path)
        .iter()
        .flat_map(|p| read_from(p, 0).map(|(e, _)| e).unwrap_or_default())
        .collect()
}

/// The entries `opts` selects from what the log holds now, honouring `tail`.
pub fn select(entries: Vec<Entry>, opts: &LogOptions) -> Vec<Entry> {
    let mut v: Vec<Entry> = entries.into_iter().filter(|e| opts.wants(e)).collect();
    if let Some(n) = opts.tail {
        let skip = v.len().saturating_sub(n);
        v.drain(..skip);
    }
    v
}

pub fn wants(opts: &LogOptions, e: &Entry) -> bool {
    opts.wants(e)
}

/// One entry as the API sends it: with the 8-byte stdcopy header unless `raw` (TTY).
pub fn frame(e: &Entry, timestamps: bool, raw: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(e.data.len() + 32);
    if timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&e.data);
    if raw {
        return payload;
    }
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(e.stream as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_filters() {
        let e = Entry {
            stream: Stream::Stderr,
            time: "2024-01-01T00:00:00.5Z".into(),
            data: b"hi\n".to_vec(),
        };
        assert_eq!(
            frame(&e, false, false),
            [&[2u8, 0, 0, 0, 0, 0, 0, 3][..], b"hi\n"].concat()
        );
        assert_eq!(frame(&e, true, true), b"2024-01-01T00:00:00.5Z hi\n");
        let opts = LogOptions {
            stdout: true,
            stderr: false,
            ..Default::default()
        };
        assert!(!opts.wants(&e));
        let all = LogOptions {
            stdout: true,
            stderr: true,
            tail: Some(1),
            since: Some(1704067200.1),
            ..Default::default()
        };
        let picked = select(vec![e.clone(), e.clone()], &all);
        assert_eq!(picked.len(), 1);
    }

    #[test]
    fn reads_only_complete_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        std::fs::write(
            &p,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n{\"log\":",
        )
        .unwrap();
        let (v, off) = read_from(&p, 0).unwrap();
        assert_eq!(v.len(), 1);
        let (v2, off2) = read_from(&p, off).unwrap();
        assert!(v2.is_empty());
        assert_eq!(off, off2);
    }
}
