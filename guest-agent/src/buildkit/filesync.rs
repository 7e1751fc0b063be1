//! Fetching a directory from a client session: fsutil's `DiffCopy` stream, with the
//! engine as the receiver. The client walks the directory it exposes under a name
//! (`context`, `dockerfile`), applying the include and exclude patterns the engine
//! sends, and streams one STAT packet per entry (ids are implicit: the n-th STAT is
//! id n), then an empty STAT. The engine asks for each regular file's bytes with a
//! REQ packet, receives them as DATA packets (an empty one ends a file), and says FIN
//! when it has everything; the client answers FIN and closes.
//!
//! Nothing here trusts the client: paths must be relative and plain, and nothing is
//! written through a symlink the client created.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::BuildKitError;
use crate::sessions::client::Session;

/// Go's `os.FileMode` type bits, as fsutil sends them.
pub mod mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const IRREGULAR: u32 = 1 << 19;
    /// Every type bit: a regular file has none of them.
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;

    /// The unix permission bits of a Go file mode.
    pub fn unix_perm(m: u32) -> u32 {
        let mut p = m & 0o777;
        if m & SETUID != 0 {
            p |= 0o4000;
        }
        if m & SETGID != 0 {
            p |= 0o2000;
        }
        if m & STICKY != 0 {
            p |= 0o1000;
        }
        p
    }
}

/// What to fetch: the directory's name in the session and fsutil's filters.
#[derive(Debug, Clone, Default)]
pub struct Want {
    pub dir_name: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub follow: Vec<String>,
}

/// What a fetch transferred.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub entries: u64,
    pub bytes: u64,
}

fn packet(t: PacketType, id: u32) -> Packet {
    Packet {
        r#type: t as i32,
        stat: None,
        id,
        data: vec![],
    }
}

/// Fetches the session's directory into `dest` (which must exist).
pub async fn fetch(session: &Session, want: &Want, dest: &Path) -> Result<Fetched, BuildKitError> {
    let (tx, rx) = mpsc::channel::<Packet>(64);
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
    let mut req = tonic::Request::new(outgoing);
    let md = req.metadata_mut();
    let ascii = |v: &str| {
        tonic::metadata::MetadataValue::try_from(v)
            .map_err(|_| BuildKitError::Invalid(format!("pattern is not ASCII: {v:?}")))
    };
    md.insert("dir-name", ascii(&want.dir_name)?);
    for p in &want.include {
        md.append("include-patterns", ascii(p)?);
    }
    for p in &want.exclude {
        md.append("exclude-patterns", ascii(p)?);
    }
    for p in &want.follow {
        md.append("followpaths", ascii(p)?);
    }
    let mut client = FileSyncClient::with_origin(session.clone(), Session::origin())
        .max_decoding_message_size(64 << 20);
    let mut incoming = client
        .diff_copy(req)
        .await
        .map_err(|s| BuildKitError::session("FileSync.DiffCopy", &s))?
        .into_inner();
    let mut recv = Receiver::new(dest);
    while let Some(p) = incoming.next().await {
        let p = p.map_err(|s| BuildKitError::session("FileSync.DiffCopy", &s))?;
        match recv.take(p)? {
            Next::Continue => {}
            Next::Request(id) => send(&tx, packet(PacketType::PacketReq, id)).await?,
            Next::Finish => send(&tx, packet(PacketType::PacketFin, 0)).await?,
            Next::Done => break,
        }
    }
    if !recv.complete() {
        return Err(BuildKitError::Transfer(format!(
            "the client closed {:?} before sending every file",
            want.dir_name
        )));
    }
    Ok(recv.fetched)
}

async fn send(tx: &mpsc::Sender<Packet>, p: Packet) -> Result<(), BuildKitError> {
    tx.send(p)
        .await
        .map_err(|_| BuildKitError::Transfer("the file transfer stream closed".into()))
}

/// What the receiver wants done after a packet.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    Request(u32),
    Finish,
    Done,
}

/// The receiving side's state, apart from the stream so it can be tested alone.
struct Receiver {
    dest: PathBuf,
    next_id: u32,
    listed: bool,
    finished: bool,
    /// Files asked for and not yet complete: id → (path, unix permissions).
    pending: HashMap<u32, (PathBuf, u32)>,
    open: HashMap<u32, std::fs::File>,
    /// Symlinks written so far: nothing is written beneath one.
    links: HashSet<PathBuf>,
    /// Directories' permissions, applied at the end (a read-only directory must
    /// still receive its files first).
    dirs: Vec<(PathBuf, u32)>,
    fetched: Fetched,
}

impl Receiver {
    fn new(dest: &Path) -> Receiver {
        Receiver {
            dest: dest.to_path_buf(),
            next_id: 0,
            listed: false,
            finished: false,
            pending: HashMap::new(),
            open: HashMap::new(),
            links: HashSet::new(),
            dirs: Vec::new(),
            fetched: Fetched::default(),
        }
    }

    fn complete(&self) -> bool {
        self.listed && self.pending.is_empty()
    }

    /// A path the client sent, checked: relative, no `..`, not beneath a symlink.
    fn local(&self, raw: &str) -> Result<(PathBuf, PathBuf), BuildKitError> {
        let rel = Path::new(raw);
        let plain = rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if raw.is_empty() || !plain {
            return Err(BuildKitError::Transfer(format!(
                "the client sent a path outside the directory: {raw:?}"
            )));
        }
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            if prefix.as_path() != rel && self.links.contains(&prefix) {
                return Err(BuildKitError::Transfer(format!(
                    "the client sent a path beneath a symlink: {raw:?}"
                )));
            }
        }
        Ok((rel.to_path_buf(), self.dest.join(rel)))
    }

    fn io(what: &str, path: &Path, e: std::io::Error) -> BuildKitError {
        BuildKitError::Transfer(format!("{what} {}: {e}", path.display()))
    }

    fn take(&mut self, p: Packet) -> Result<Next, BuildKitError> {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => match p.stat {
                Some(stat) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.stat(id, stat)
                }
                None => {
                    self.listed = true;
                    self.finish_dirs()?;
                    Ok(self.after_progress())
                }
            },
            Ok(PacketType::PacketData) => self.data(p.id, &p.data),
            Ok(PacketType::PacketFin) => Ok(Next::Done),
            Ok(PacketType::PacketErr) => Err(BuildKitError::Transfer(format!(
                "the client failed to send its files: {}",
                String::from_utf8_lossy(&p.data)
            ))),
            Ok(PacketType::PacketReq) | Err(_) => Err(BuildKitError::Transfer(format!(
                "unexpected packet of type {} from the client",
                p.r#type
            ))),
        }
    }

    fn stat(&mut self, id: u32, stat: Stat) -> Result<Next, BuildKitError> {
        let (rel, path) = self.local(&stat.path)?;
        self.fetched.entries += 1;
        let perm = mode::unix_perm(stat.mode);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Self::io("creating", parent, e))?;
        }
        if stat.mode & mode::DIR != 0 {
            std::fs::create_dir_all(&path).map_err(|e| Self::io("creating", &path, e))?;
            self.dirs.push((path, perm));
            Ok(Next::Continue)
        } else if stat.mode & mode::SYMLINK != 0 {
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(&stat.linkname, &path)
                .map_err(|e| Self::io("linking", &path, e))?;
            self.links.insert(rel);
            Ok(Next::Continue)
        } else if stat.mode & mode::TYPE == 0 {
            self.pending.insert(id, (path, perm));
            Ok(Next::Request(id))
        } else {
            // Devices, pipes and sockets have no place in a build context.
            Ok(Next::Continue)
        }
    }

    fn data(&mut self, id: u32, data: &[u8]) -> Result<Next, BuildKitError> {
        let Some((path, perm)) = self.pending.get(&id).cloned() else {
            return Err(BuildKitError::Transfer(format!(
                "the client sent data for a file not asked for (id {id})"
            )));
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = self.open.entry(id) {
            let f = std::fs::File::create(&path).map_err(|e| Self::io("creating", &path, e))?;
            slot.insert(f);
        }
        if data.is_empty() {
            if let Some(f) = self.open.remove(&id) {
                f.set_permissions(std::fs::Permissions::from_mode(perm))
                    .map_err(|e| Self::io("setting the mode of", &path, e))?;
            }
            self.pending.remove(&id);
            return Ok(self.after_progress());
        }
        if let Some(f) = self.open.get_mut(&id) {
            f.write_all(data)
                .map_err(|e| Self::io("writing", &path, e))?;
        }
        self.fetched.bytes += data.len() as u64;
        Ok(Next::Continue)
    }

    fn after_progress(&mut self) -> Next {
        if self.complete() && !self.finished {
            self.finished = true;
            Next::Finish
        } else {
            Next::Continue
        }
    }

    fn finish_dirs(&mut self) -> Result<(), BuildKitError> {
        // Files may still arrive: keep directories writable by the owner until then.
        for (path, perm) in &self.dirs {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm | 0o700))
                .map_err(|e| Self::io("setting the mode of", path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &str, mode: u32) -> Packet {
        Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(Stat {
                path: path.into(),
                mode,
                ..Default::default()
            }),
            id: 0,
            data: vec![],
        }
    }

    fn data(id: u32, d: &[u8]) -> Packet {
        Packet {
            r#type: PacketType::PacketData as i32,
            stat: None,
            id,
            data: d.to_vec(),
        }
    }

    #[test]
    fn receives_a_tree_and_asks_for_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Receiver::new(dir.path());
        assert_eq!(r.take(stat("Dockerfile", 0o644)).unwrap(), Next::Request(0));
        assert_eq!(
            r.take(stat("src", mode::DIR | 0o755)).unwrap(),
            Next::Continue
        );
        let mut link = stat("src/link", mode::SYMLINK | 0o777);
        if let Some(s) = link.stat.as_mut() {
            s.linkname = "../Dockerfile".into();
        }
        assert_eq!(r.take(link).unwrap(), Next::Continue);
        assert_eq!(r.take(stat("src/run.sh", 0o755)).unwrap(), Next::Request(3));
        assert_eq!(
            r.take(packet(PacketType::PacketStat, 0)).unwrap(),
            Next::Continue
        );
        assert_eq!(r.take(data(3, b"echo hi\n")).unwrap(), Next::Continue);
        assert_eq!(r.take(data(3, b"")).unwrap(), Next::Continue);
        assert_eq!(r.take(data(0, b"FROM scratch\n")).unwrap(), Next::Continue);
        assert_eq!(r.take(data(0, b"")).unwrap(), Next::Finish);
        assert_eq!(
            r.take(packet(PacketType::PacketFin, 0)).unwrap(),
            Next::Done
        );
        let p = dir.path();
        assert_eq!(
            std::fs::read(p.join("Dockerfile")).unwrap(),
            b"FROM scratch\n"
        );
        assert_eq!(std::fs::read(p.join("src/run.sh")).unwrap(), b"echo hi\n");
        let m = std::fs::metadata(p.join("src/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(p.join("src/link")).unwrap(),
            Path::new("../Dockerfile")
        );
        assert_eq!(
            r.fetched,
            Fetched {
                entries: 4,
                bytes: 21
            }
        );
    }

    #[test]
    fn an_empty_listing_finishes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Receiver::new(dir.path());
        assert_eq!(
            r.take(packet(PacketType::PacketStat, 0)).unwrap(),
            Next::Finish
        );
    }

    #[test]
    fn refuses_escapes_and_writes_beneath_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Receiver::new(dir.path());
        assert!(r.take(stat("../evil", 0o644)).is_err());
        assert!(r.take(stat("/etc/passwd", 0o644)).is_err());
        let mut link = stat("out", mode::SYMLINK | 0o777);
        if let Some(s) = link.stat.as_mut() {
            s.linkname = "/etc".into();
        }
        r.take(link).unwrap();
        assert!(r.take(stat("out/passwd", 0o644)).is_err());
        assert!(!Path::new("/etc/passwd.berth-test").exists());
    }

    #[test]
    fn data_for_a_file_never_asked_for_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Receiver::new(dir.path());
        assert!(r.take(data(7, b"x")).is_err());
    }

    #[test]
    fn go_file_modes_map_to_unix_permissions() {
        assert_eq!(mode::unix_perm(mode::DIR | 0o755), 0o755);
        assert_eq!(mode::unix_perm(mode::SETUID | 0o755), 0o4755);
        assert_eq!(mode::unix_perm(mode::STICKY | mode::DIR | 0o777), 0o1777);
    }
}
