//! The optional `/var/run/docker.sock` link (Linux and macOS), for tools that
//! ignore docker contexts and `DOCKER_HOST` and dial the well-known path. It is
//! made only where nothing is: a working socket of another engine, or any file
//! that is not already Berth's link, is left alone and reported.

use std::path::{Path, PathBuf};

/// Where tools look when nothing else is configured.
pub const WELL_KNOWN: &str = "/var/run/docker.sock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The link was made: uninstall removes it.
    Created,
    /// It already pointed at Berth's socket (made earlier, or by hand).
    AlreadyBerths,
    /// Something else is there; why it was left alone.
    LeftAlone(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("linking {link} needs root; run `sudo ln -s {target} {link}` yourself, or `sudo berth install --docker-sock`")]
    NeedsRoot { link: String, target: String },
    #[error("linking {link}: {source}")]
    Io {
        link: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `link` is a symlink to exactly `target`.
fn points_at(link: &Path, target: &Path) -> bool {
    std::fs::read_link(link).is_ok_and(|t| t == target)
}

/// Links `link` to `target` unless something other than that link is there.
pub fn link(link: &Path, target: &Path) -> Result<Outcome, LinkError> {
    if points_at(link, target) {
        return Ok(Outcome::AlreadyBerths);
    }
    if std::fs::symlink_metadata(link).is_ok() {
        return Ok(Outcome::LeftAlone(if crate::vm::ping_socket(link) {
            format!(
                "another engine answers on {}; Berth does not replace it",
                link.display()
            )
        } else {
            format!(
                "{} exists and is not Berth's; remove it first if it is stale",
                link.display()
            )
        }));
    }
    crate::os::symlink(target, link).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            LinkError::NeedsRoot {
                link: link.display().to_string(),
                target: target.display().to_string(),
            }
        } else {
            LinkError::Io {
                link: link.display().to_string(),
                source,
            }
        }
    })?;
    Ok(Outcome::Created)
}

/// Removes `link` if it is still the link to `target` that install made.
pub fn unlink(link: &Path, target: &Path) -> std::io::Result<bool> {
    let ours = points_at(link, target);
    if ours {
        std::fs::remove_file(link)?;
    }
    Ok(ours)
}

/// The link as recorded by install.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub link: PathBuf,
    pub target: PathBuf,
}

// The link is a unix idea (Windows has the `docker_engine` pipe instead).
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn made_where_nothing_is_and_removed_only_while_ours() {
        let dir = tempfile::tempdir().unwrap();
        let (l, t) = (
            dir.path().join("docker.sock"),
            dir.path().join("berth.sock"),
        );
        assert_eq!(link(&l, &t).unwrap(), Outcome::Created);
        assert_eq!(link(&l, &t).unwrap(), Outcome::AlreadyBerths);
        assert!(unlink(&l, &t).unwrap());
        assert!(!l.exists() && std::fs::symlink_metadata(&l).is_err());
        // Someone re-pointed it: no longer ours to remove.
        std::os::unix::fs::symlink("/elsewhere.sock", &l).unwrap();
        assert!(!unlink(&l, &t).unwrap());
        assert!(std::fs::symlink_metadata(&l).is_ok());
    }

    #[test]
    fn another_engines_socket_or_a_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("berth.sock");
        // A live engine: a socket that answers /_ping.
        let live = dir.path().join("live.sock");
        let listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        });
        let LeftAlone(why) = link(&live, &t).unwrap() else {
            panic!("a live socket is never replaced")
        };
        assert!(why.contains("another engine answers"), "{why}");
        server.join().unwrap();
        // A stale file of someone else's: also left, with what to do.
        let stale = dir.path().join("stale.sock");
        std::fs::write(&stale, b"").unwrap();
        let LeftAlone(why) = link(&stale, &t).unwrap() else {
            panic!("a file is never replaced")
        };
        assert!(why.contains("remove it first"), "{why}");
        assert_eq!(std::fs::read(&stale).unwrap(), b"");
    }

    use Outcome::LeftAlone;
}
