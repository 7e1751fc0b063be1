//! The multiplexed serial transport's guest end: find the virtio-serial port the
//! host named `org.berth.mux`, serve yamux sessions on it, and reopen it
//! whenever a session ends (the host's QEMU chardev went away and came back).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::engine::Engine;

/// `/dev/vportNpM` for the port whose sysfs name matches.
fn find_port() -> Option<PathBuf> {
    let dir = std::fs::read_dir("/sys/class/virtio-ports").ok()?;
    for entry in dir.flatten() {
        let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if name.trim() == berth_proto::SERIAL_PORT_NAME {
            return Some(PathBuf::from("/dev").join(entry.file_name()));
        }
    }
    None
}

pub async fn run(engine: Arc<Engine>, shutdown: Arc<Notify>) {
    let mut warned = false;
    loop {
        let Some(path) = find_port() else {
            if !warned {
                tracing::warn!(
                    "no virtio-serial port named {}",
                    berth_proto::SERIAL_PORT_NAME
                );
                warned = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // The port opens once (a second open is EBUSY); two handles on that one
        // open file, because tokio runs a file's reads on its blocking pool one
        // operation at a time and a pending read must not hold up writes.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .and_then(|f| Ok((f.try_clone()?, f)));
        let (reader, writer) = match opened {
            Ok((r, w)) => (tokio::fs::File::from_std(r), tokio::fs::File::from_std(w)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open the serial port");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let io = tokio::io::join(reader, writer);
        let engine2 = engine.clone();
        let shutdown2 = shutdown.clone();
        let result = berth_proto::mux::serve(io, move |port, stream| {
            super::dispatch(engine2.clone(), port, stream, shutdown2.clone())
        })
        .await;
        match result {
            Ok(()) => tracing::debug!("serial session ended; reopening"),
            Err(e) => tracing::info!(error = %e, "serial session failed; reopening"),
        }
        // The port reads EOF while no host is attached; don't spin.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
