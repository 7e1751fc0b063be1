//! Bind-mount sources inside Berth's VM. The docker CLI sends paths of the
//! user's machine; they exist in the VM only under the shared folders, which
//! are mounted at the same path (a Windows host's drives under
//! `/run/desktop/mnt/host`, as Docker Desktop does). A source outside every
//! share that the VM does not have either would silently become an empty
//! directory inside the VM, so it is refused with the setting to change.

use std::path::Path;

use berth_proto::shares::{windows_guest_path, ShareMount};
pub use berth_proto::HostOs;

#[derive(Debug, Clone)]
pub struct HostPaths {
    pub os: HostOs,
    /// Guest paths of the shared folders.
    pub shares: Vec<String>,
}

impl HostPaths {
    pub fn new(os: HostOs, shares: &[ShareMount]) -> HostPaths {
        HostPaths {
            os,
            shares: shares.iter().map(|s| s.guest_path.clone()).collect(),
        }
    }

    /// A source as the VM knows it (Windows forms translated).
    pub fn translate(&self, source: &str) -> String {
        match self.os {
            HostOs::Windows => windows_guest_path(source).unwrap_or_else(|| source.to_string()),
            _ => source.to_string(),
        }
    }

    /// `-v SRC:DST[:MODE]` with its source translated. A Windows drive path has
    /// a colon of its own, so the source ends at the first colon after it.
    pub fn translate_bind(&self, spec: &str) -> String {
        if self.os != HostOs::Windows {
            return spec.to_string();
        }
        let b = spec.as_bytes();
        let split = if b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            spec[2..].find(':').map(|i| i + 2)
        } else {
            spec.find(':')
        };
        match split {
            Some(i) => match windows_guest_path(&spec[..i]) {
                Some(src) => format!("{src}{}", &spec[i..]),
                None => spec.to_string(),
            },
            None => spec.to_string(),
        }
    }

    /// Whether a (translated, absolute) source may be bind-mounted: inside a
    /// shared folder, or something the VM itself has (`/var/run/docker.sock`).
    pub fn check(&self, source: &str, exists_in_vm: impl Fn(&Path) -> bool) -> Result<(), String> {
        let p = Path::new(source);
        if self.shares.iter().any(|s| p.starts_with(s)) || exists_in_vm(p) {
            return Ok(());
        }
        let shared = if self.shares.is_empty() {
            "no folders are shared".to_string()
        } else {
            format!("shared: {}", self.shares.join(", "))
        };
        Err(format!(
            "Mounts denied: the path {source} is not shared from the host and is not known to Berth ({shared}). \
             Add it, or a folder above it, to \"sharedFolders\" under \"vm\" in Berth's settings.json and restart the VM (berth vm stop; berth vm start)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::shares::ShareFs;

    fn share(p: &str) -> ShareMount {
        ShareMount {
            tag: "berth0".into(),
            fs: ShareFs::Virtiofs,
            read_only: false,
            guest_path: p.into(),
        }
    }

    #[test]
    fn windows_binds_are_translated_before_parsing() {
        let h = HostPaths::new(HostOs::Windows, &[share("/run/desktop/mnt/host/c/Users")]);
        assert_eq!(
            h.translate_bind(r"C:\Users\me\app:/app:ro"),
            "/run/desktop/mnt/host/c/Users/me/app:/app:ro"
        );
        assert_eq!(
            h.translate_bind("/c/Users/me:/src"),
            "/run/desktop/mnt/host/c/Users/me:/src"
        );
        assert_eq!(h.translate_bind("myvol:/data"), "myvol:/data");
        assert_eq!(
            h.translate_bind("/var/run/docker.sock:/var/run/docker.sock"),
            "/var/run/docker.sock:/var/run/docker.sock"
        );
        assert_eq!(h.translate("D:/x"), "/run/desktop/mnt/host/d/x");
        let unix = HostPaths::new(HostOs::MacOs, &[share("/Users")]);
        assert_eq!(unix.translate_bind("/c/x:/y"), "/c/x:/y");
    }

    #[test]
    fn only_shared_or_known_paths_pass() {
        let h = HostPaths::new(HostOs::Linux, &[share("/home/me")]);
        let none = |_: &Path| false;
        assert!(h.check("/home/me/proj/new-dir", none).is_ok());
        assert!(h
            .check("/var/run/docker.sock", |p: &Path| p
                == Path::new("/var/run/docker.sock"))
            .is_ok());
        let e = h.check("/home/meadow/x", none).unwrap_err();
        assert!(
            e.starts_with("Mounts denied: the path /home/meadow/x is not shared"),
            "{e}"
        );
        assert!(e.contains("sharedFolders") && e.contains("/home/me"), "{e}");
    }
}
