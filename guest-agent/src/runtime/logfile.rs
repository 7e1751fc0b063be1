//! The container's json-file log: the line format (one JSON object per chunk of
//! output, as dockerd's json-file driver writes it) and Docker's `max-size`/`max-file`
//! rotation: `container.log` is the live file, `container.log.1` the newest rotated one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One json-file log line.
pub fn log_line(stream: &str, data: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(&serde_json::json!({
        "log": String::from_utf8_lossy(data),
        "stream": stream,
        "time": crate::clock::now(),
    }))
    .unwrap_or_default();
    out.push(b'\n');
    out
}

pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    /// Rotate once the live file reaches this many bytes (`None`: never).
    max_size: Option<u64>,
    /// Files kept in all, the live one included (Docker's `max-file`).
    max_files: u32,
}

impl RotatingLog {
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> io::Result<RotatingLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    /// Appends one whole entry, rotating first if it would cross the size cap.
    pub fn write_entry(&mut self, entry: &[u8]) -> io::Result<()> {
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + entry.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(entry)?;
        self.size += entry.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.max_files - 1;
        if keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for n in (1..keep).rev() {
            let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Rotated files that exist, oldest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = (1..=64)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    v.reverse();
    v
}

/// Docker's `max-size` values: `10k`, `20m`, `1g`, or bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_lines_are_json_file_entries() {
        let l = String::from_utf8(super::log_line("stdout", b"hi\n")).unwrap();
        assert!(
            l.starts_with(r#"{"log":"hi\n","stream":"stdout","time":""#),
            "{l}"
        );
    }

    use super::*;

    /// Found while writing the `api_request` fuzz target (by reading): `--log-opt
    /// max-size=` beyond u64 once multiplied overflowed, a panic in debug builds.
    #[test]
    fn sizes_out_of_range_are_refused() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("18446744073709551615g"), None);
        assert_eq!(parse_size("17179869184g"), None);
        assert_eq!(parse_size("0k"), None);
    }

    #[test]
    fn rotates_and_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("container.log");
        let mut l = RotatingLog::open(&p, Some(10), 3).unwrap();
        for i in 0..6 {
            l.write_entry(format!("entry-{i}\n").as_bytes()).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "entry-5\n");
        assert_eq!(
            std::fs::read_to_string(rotated(&p, 1)).unwrap(),
            "entry-4\n"
        );
        assert_eq!(
            std::fs::read_to_string(rotated(&p, 2)).unwrap(),
            "entry-3\n"
        );
        assert!(!rotated(&p, 3).exists());
        assert_eq!(rotated_files(&p), vec![rotated(&p, 2), rotated(&p, 1)]);
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }
}
