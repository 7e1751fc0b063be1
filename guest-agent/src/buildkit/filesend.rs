//! Sending a build's files back to the client: `--output type=tar` (the image's
//! filesystem as one tar stream) and `--output type=local,dest=DIR` (the same files
//! as an fsutil transfer with the engine as the *sender*), both on the session's
//! `FileSend.DiffCopy`. The client tells its outputs apart by the exporter's index,
//! sent as `buildkit-attachable-exporter-id`.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard_buildkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard_buildkit_proto::moby::filesync::v1::file_send_client::FileSendClient;
use bollard_buildkit_proto::moby::filesync::v1::BytesMessage;
use bollard_stubs::models::ContainerCreateBody;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::filesync::mode;
use super::BuildKitError;
use crate::engine::Engine;
use crate::sessions::client::Session;

const CHUNK: usize = 32 * 1024;
const METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// The image's filesystem as a tar file at `dest`, read through a container that is
/// created, never started, and removed.
pub async fn image_tar(
    engine: &Arc<Engine>,
    image: &str,
    dest: &Path,
) -> Result<(), BuildKitError> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["/bin/sh".into()]),
        entrypoint: Some(vec![]),
        labels: Some(HashMap::from([(
            crate::containers::BUILD_LABEL.to_string(),
            "export".to_string(),
        )])),
        ..Default::default()
    };
    let cid = engine
        .containers
        .create(&engine.images, None, body)
        .map_err(crate::build::BuildError::from)?;
    let dest = dest.to_path_buf();
    let written = engine
        .containers
        .with_rootfs(&cid, move |root| {
            let f = std::fs::File::create(&dest).map_err(|e| {
                crate::containers::ContainerError::Io {
                    context: format!("creating {}", dest.display()),
                    source: e,
                }
            })?;
            crate::containers::archive::export(root, std::io::BufWriter::new(f))
        })
        .await;
    let _ = engine.containers.remove(&cid, true, true).await;
    written.map_err(crate::build::BuildError::from)?;
    Ok(())
}

fn exporter_id<T>(req: &mut tonic::Request<T>, index: usize) {
    if let Ok(v) = tonic::metadata::MetadataValue::try_from(index.to_string()) {
        req.metadata_mut()
            .insert("buildkit-attachable-exporter-id", v);
    }
}

fn check(session: &Session) -> Result<(), BuildKitError> {
    if session.serves(METHOD) {
        Ok(())
    } else {
        Err(BuildKitError::Invalid(
            "the client's session takes no files back (no FileSend service)".into(),
        ))
    }
}

/// Streams a tar file to the client's tar output number `index`.
pub async fn send_tar(session: &Session, index: usize, tar: &Path) -> Result<(), BuildKitError> {
    check(session)?;
    let mut file = std::fs::File::open(tar).map_err(BuildKitError::io("opening the tarball"))?;
    let (tx, rx) = mpsc::channel::<BytesMessage>(8);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0
                || tx
                    .blocking_send(BytesMessage {
                        data: buf[..n].to_vec(),
                    })
                    .is_err()
            {
                return Ok(());
            }
        }
    });
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut req = tonic::Request::new(outgoing);
    exporter_id(&mut req, index);
    let mut client = FileSendClient::with_origin(session.clone(), Session::origin());
    let mut incoming = client
        .diff_copy(req)
        .await
        .map_err(|s| BuildKitError::session("FileSend.DiffCopy", &s))?
        .into_inner();
    while let Some(m) = incoming.next().await {
        m.map_err(|s| BuildKitError::session("FileSend.DiffCopy", &s))?;
    }
    reader
        .await
        .map_err(|e| BuildKitError::Transfer(e.to_string()))?
        .map_err(BuildKitError::io("reading the tarball"))
}

/// One entry of a directory sent to the client, in fsutil's order.
struct Entry {
    stat: Stat,
    path: PathBuf,
}

/// The tree under `root` as fsutil sends it: depth first, each directory's names in
/// byte order, a directory before its contents; Go file modes, owner 0:0.
fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    fn visit(root: &Path, rel: &Path, out: &mut Vec<Entry>) -> std::io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let path = root.join(&rel);
            let m = std::fs::symlink_metadata(&path)?;
            let ft = m.file_type();
            let mut go = m.mode() & 0o777;
            if m.mode() & 0o4000 != 0 {
                go |= mode::SETUID;
            }
            if m.mode() & 0o2000 != 0 {
                go |= mode::SETGID;
            }
            if m.mode() & 0o1000 != 0 {
                go |= mode::STICKY;
            }
            let mut linkname = String::new();
            if ft.is_dir() {
                go |= mode::DIR;
            } else if ft.is_symlink() {
                go |= mode::SYMLINK;
                linkname = std::fs::read_link(&path)?.to_string_lossy().into_owned();
            } else if !ft.is_file() {
                // Devices and pipes are not sent back as files.
                continue;
            }
            out.push(Entry {
                stat: Stat {
                    path: rel.to_string_lossy().into_owned(),
                    mode: go,
                    size: if ft.is_file() { m.len() as i64 } else { 0 },
                    mod_time: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                    linkname,
                    ..Default::default()
                },
                path: path.clone(),
            });
            if ft.is_dir() {
                visit(root, &rel, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(root, Path::new(""), &mut out)?;
    Ok(out)
}

fn packet(t: PacketType, id: u32, stat: Option<Stat>, data: Vec<u8>) -> Packet {
    Packet {
        r#type: t as i32,
        stat,
        id,
        data,
    }
}

/// Sends the directory `root` to the client's local output number `index`: every
/// entry's STAT, then the files the client asks for, until it says FIN.
pub async fn send_dir(session: &Session, index: usize, root: &Path) -> Result<(), BuildKitError> {
    check(session)?;
    let root = root.to_path_buf();
    let entries = tokio::task::spawn_blocking(move || walk(&root))
        .await
        .map_err(|e| BuildKitError::Transfer(e.to_string()))?
        .map_err(BuildKitError::io("reading the files to send"))?;
    let entries = Arc::new(entries);
    let (tx, rx) = mpsc::channel::<Packet>(64);
    {
        let tx = tx.clone();
        let entries = entries.clone();
        tokio::spawn(async move {
            for e in entries.iter() {
                let p = packet(PacketType::PacketStat, 0, Some(e.stat.clone()), vec![]);
                if tx.send(p).await.is_err() {
                    return;
                }
            }
            let _ = tx
                .send(packet(PacketType::PacketStat, 0, None, vec![]))
                .await;
        });
    }
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
    let mut req = tonic::Request::new(outgoing);
    exporter_id(&mut req, index);
    // FileSend is declared with BytesMessage, but a directory output carries fsutil
    // packets on it (as BuildKit sends them), so the call is made with that codec.
    let mut grpc = tonic::client::Grpc::with_origin(session.clone(), Session::origin());
    grpc.ready()
        .await
        .map_err(|e| BuildKitError::Transfer(format!("the session is gone: {e}")))?;
    let codec = tonic_prost::ProstCodec::<Packet, Packet>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(METHOD);
    let mut incoming = grpc
        .streaming(req, path, codec)
        .await
        .map_err(|s| BuildKitError::session("FileSend.DiffCopy", &s))?
        .into_inner();
    let lost = || BuildKitError::Transfer("the client stopped taking files".into());
    while let Some(p) = incoming.next().await {
        let p = p.map_err(|s| BuildKitError::session("FileSend.DiffCopy", &s))?;
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                let e = entries.get(p.id as usize).ok_or_else(|| {
                    BuildKitError::Transfer(format!("the client asked for unknown file {}", p.id))
                })?;
                let path = e.path.clone();
                let data = tokio::task::spawn_blocking(move || std::fs::read(path))
                    .await
                    .map_err(|e| BuildKitError::Transfer(e.to_string()))?
                    .map_err(BuildKitError::io(format!("reading {}", e.stat.path)))?;
                for chunk in data.chunks(CHUNK) {
                    let d = packet(PacketType::PacketData, p.id, None, chunk.to_vec());
                    tx.send(d).await.map_err(|_| lost())?;
                }
                let end = packet(PacketType::PacketData, p.id, None, vec![]);
                tx.send(end).await.map_err(|_| lost())?;
            }
            Ok(PacketType::PacketFin) => {
                let _ = tx
                    .send(packet(PacketType::PacketFin, 0, None, vec![]))
                    .await;
                drop(tx);
                // The client ends the call once it has our FIN.
                while let Some(p) = incoming.next().await {
                    if p.is_err() {
                        break;
                    }
                }
                return Ok(());
            }
            Ok(PacketType::PacketErr) => {
                return Err(BuildKitError::Transfer(format!(
                    "the client failed to take the files: {}",
                    String::from_utf8_lossy(&p.data)
                )))
            }
            _ => {
                return Err(BuildKitError::Transfer(format!(
                    "unexpected packet of type {} from the client",
                    p.r#type
                )))
            }
        }
    }
    Err(lost())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_in_fsutil_order_with_go_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir(p.join("a")).unwrap();
        std::fs::write(p.join("a/b"), "x").unwrap();
        std::fs::write(p.join("a.txt"), "yy").unwrap();
        std::os::unix::fs::symlink("a.txt", p.join("z")).unwrap();
        let e = walk(p).unwrap();
        let paths: Vec<&str> = e.iter().map(|e| e.stat.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/b", "a.txt", "z"]);
        assert!(e[0].stat.mode & mode::DIR != 0);
        assert_eq!(e[2].stat.size, 2);
        assert!(e[3].stat.mode & mode::SYMLINK != 0);
        assert_eq!(e[3].stat.linkname, "a.txt");
    }
}
