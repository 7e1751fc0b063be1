//! The daemon's life: open the engine, bind the API socket (owner and group only), serve
//! connections, and stop cleanly on SIGINT/SIGTERM.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::engine::Engine;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("opening the engine: {0}")]
    Engine(#[from] crate::containers::ContainerError),
    #[error("another engine is already serving {0}")]
    SocketInUse(String),
    #[error("binding {path}: {source}")]
    Bind {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("installing signal handlers: {0}")]
    Signals(#[source] io::Error),
    #[error(transparent)]
    HostLink(#[from] crate::hostlink::HostLinkError),
}

fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Bind {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(err)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::SocketInUse(path.display().to_string()));
        }
        fs::remove_file(path).map_err(err)?; // stale socket of a dead engine
    }
    // Bind under a restrictive umask so the socket is never briefly world-accessible.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o117));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener.map_err(err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(listener)
}

pub async fn run(config: Config) -> Result<(), DaemonError> {
    let socket = config.socket.clone();
    // Before the engine opens: containers restarted at boot may bind into them.
    if !config.shares.is_empty() {
        crate::hostlink::shares::mount_all(&config.shares);
    }
    // Before the engine opens: containers it restarts may be foreign ones.
    if let Some(dir) = &config.emulators {
        let store = config.root.join("emulators");
        match tokio::task::block_in_place(|| crate::emulators::install(dir, &store)) {
            Ok(names) => {
                tracing::info!(emulators = ?names, "registered other-architecture emulators")
            }
            Err(e) => tracing::warn!(error = %e, "cannot register other-architecture emulators"),
        }
    }
    let engine = tokio::task::block_in_place(|| Engine::open(config))?;
    let engine = Arc::new(engine);
    match engine.images.collect_garbage() {
        Ok(0) => {}
        Ok(n) => tracing::info!(layers = n, "removed layers left by interrupted pulls"),
        Err(e) => tracing::warn!(error = %e, "layer garbage collection failed"),
    }
    // Before the socket opens: the first `docker run` of a shipped image finds it.
    let preloaded = tokio::task::block_in_place(|| {
        crate::images::preload::run(&engine.images, &engine.config.root, &engine.config.preload)
    });
    for (archive, outcome) in preloaded {
        match outcome {
            Ok(crate::images::preload::Preloaded::Loaded(lines)) => {
                tracing::info!(archive = %archive.display(), loaded = ?lines, "preloaded images")
            }
            Ok(crate::images::preload::Preloaded::AlreadyDone) => {}
            Err(e) => {
                tracing::warn!(archive = %archive.display(), error = %e, "could not preload images")
            }
        }
    }
    match crate::reaper::become_subreaper() {
        Ok(()) => {
            tokio::spawn(crate::reaper::run());
        }
        Err(e) => tracing::warn!(error = %e, "cannot become a child subreaper"),
    }
    let listener = bind_socket(&socket)?;
    let shutdown = Arc::new(tokio::sync::Notify::new());
    if let Some(link) = &engine.config.host_link {
        crate::hostlink::start(engine.clone(), link, shutdown.clone())?;
    }
    tracing::info!(socket = %socket.display(), root = %engine.config.root.display(), "berth engine listening");

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                tokio::spawn(crate::api::serve(engine.clone(), stream));
            }
            _ = shutdown.notified() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    let _ = fs::remove_file(&socket);
    // A build cut short keeps its finished steps' images in memory only.
    if let Err(e) = engine.images.flush() {
        tracing::warn!(error = %e, "saving the image catalog");
    }
    let network = engine.network.clone();
    network.settle().await;
    let _ = tokio::task::spawn_blocking(move || network.release_shared_rules()).await;
    Ok(())
}
