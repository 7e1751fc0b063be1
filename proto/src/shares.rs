//! Shared folders: how the host tells the guest what to mount where.
//!
//! Each share is one word on the kernel command line, passed by init to the
//! agent as `--share`:
//!
//! ```text
//! berth.share=<tag>,<fs>,<ro|rw>,<guest path, percent-encoded>
//! ```
//!
//! `<fs>` is `virtiofs` or `9p`; `<tag>` is the device's mount tag
//! (`berth0`, `berth1`, …). The path is percent-encoded because a home
//! directory may hold spaces and commas, and the kernel splits its command
//! line on spaces. `berth.hostos=<linux|macos|windows>` says how bind-mount
//! sources the docker CLI sends are to be read (Windows drive paths).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Everything but unreserved characters and `/` is encoded.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b',')
    .add(b'=')
    .add(b'\'')
    .add(b'\\')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'^')
    .add(b'&')
    .add(b'$')
    .add(b'*')
    .add(b'!')
    .add(b'(')
    .add(b')')
    .add(b'~')
    .add(b'@')
    .add(b'+');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareFs {
    Virtiofs,
    NineP,
}

impl ShareFs {
    pub fn name(self) -> &'static str {
        match self {
            ShareFs::Virtiofs => "virtiofs",
            ShareFs::NineP => "9p",
        }
    }
}

/// One shared folder as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMount {
    pub tag: String,
    pub fs: ShareFs,
    pub read_only: bool,
    /// Absolute path inside the VM (the host path, or its `/run/desktop/mnt/host/…`
    /// form for a Windows host).
    pub guest_path: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad share {value:?}: {reason}")]
pub struct ShareParseError {
    pub value: String,
    pub reason: &'static str,
}

impl ShareMount {
    /// The value after `berth.share=`.
    pub fn encode(&self) -> String {
        format!(
            "{},{},{},{}",
            self.tag,
            self.fs.name(),
            if self.read_only { "ro" } else { "rw" },
            utf8_percent_encode(&self.guest_path, PATH)
        )
    }

    pub fn decode(value: &str) -> Result<ShareMount, ShareParseError> {
        let err = |reason| ShareParseError {
            value: value.to_string(),
            reason,
        };
        let mut it = value.splitn(4, ',');
        let (Some(tag), Some(fs), Some(mode), Some(path)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(err("want tag,fs,ro|rw,path"));
        };
        if tag.is_empty()
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err("bad tag"));
        }
        let fs = match fs {
            "virtiofs" => ShareFs::Virtiofs,
            "9p" => ShareFs::NineP,
            _ => return Err(err("fs must be virtiofs or 9p")),
        };
        let read_only = match mode {
            "ro" => true,
            "rw" => false,
            _ => return Err(err("mode must be ro or rw")),
        };
        let guest_path = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| err("path is not UTF-8"))?
            .into_owned();
        if !guest_path.starts_with('/') || guest_path.split('/').any(|c| c == "..") {
            return Err(err("path must be absolute, without '..'"));
        }
        Ok(ShareMount {
            tag: tag.to_string(),
            fs,
            read_only,
            guest_path,
        })
    }
}

/// Where a Windows host's drive paths live in the VM, as in Docker Desktop.
pub const WINDOWS_DRIVES: &str = "/run/desktop/mnt/host";

/// A Windows path the docker CLI may send as a bind source, in the VM's terms:
/// `C:\Users\me`, `c:/Users/me`, `/c/Users/me` and `//c/Users/me` all become
/// `/run/desktop/mnt/host/c/Users/me`. `None` for anything else (UNC paths
/// included: they cannot be shared).
pub fn windows_guest_path(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let (drive, rest) = if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        if b.len() > 2 && b[2] != b'\\' && b[2] != b'/' {
            return None;
        }
        (b[0], &path[2..])
    } else {
        let p = path.strip_prefix("//").or_else(|| path.strip_prefix('/'))?;
        let pb = p.as_bytes();
        if pb.is_empty() || !pb[0].is_ascii_alphabetic() || (pb.len() > 1 && pb[1] != b'/') {
            return None;
        }
        (pb[0], &p[1..])
    };
    let mut out = format!("{WINDOWS_DRIVES}/{}", (drive as char).to_ascii_lowercase());
    for part in rest
        .split(['\\', '/'])
        .filter(|c| !c.is_empty() && *c != ".")
    {
        if part == ".." {
            return None;
        }
        out.push('/');
        out.push_str(part);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_paths() {
        for path in [
            "/home/me",
            "/Users/Jane Doe/my,project=1",
            "/run/desktop/mnt/host/c/Users/Zoë (work)",
            "/tmp/%41",
        ] {
            let s = ShareMount {
                tag: "berth0".into(),
                fs: ShareFs::NineP,
                read_only: true,
                guest_path: path.into(),
            };
            let enc = s.encode();
            assert!(!enc.contains(' '), "{enc}");
            assert_eq!(enc.matches(',').count(), 3, "{enc}");
            assert_eq!(ShareMount::decode(&enc).unwrap(), s);
        }
        assert_eq!(
            ShareMount::decode("berth1,virtiofs,rw,/home/me")
                .unwrap()
                .fs,
            ShareFs::Virtiofs
        );
    }

    #[test]
    fn refuses_what_it_cannot_mount() {
        for bad in [
            "berth0,virtiofs,rw",
            "berth0,nfs,rw,/x",
            "berth0,9p,rx,/x",
            "berth0,9p,rw,relative",
            "berth0,9p,rw,/a/../etc",
            "bad tag,9p,rw,/x",
        ] {
            assert!(ShareMount::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_paths_land_under_the_drive_mounts() {
        for (host, guest) in [
            (r"C:\Users", "/run/desktop/mnt/host/c/Users"),
            (
                r"C:\Users\me\proj\",
                "/run/desktop/mnt/host/c/Users/me/proj",
            ),
            ("d:/src/app", "/run/desktop/mnt/host/d/src/app"),
            ("/c/Users/me", "/run/desktop/mnt/host/c/Users/me"),
            ("//c/Users/me", "/run/desktop/mnt/host/c/Users/me"),
            ("C:", "/run/desktop/mnt/host/c"),
        ] {
            assert_eq!(windows_guest_path(host).as_deref(), Some(guest), "{host}");
        }
        for other in [
            r"\\server\share",
            "/usr/src",
            "relative",
            "C:relative",
            r"C:\a\..\..\etc",
            "/var/run/docker.sock",
        ] {
            assert_eq!(windows_guest_path(other), None, "{other}");
        }
    }
}
