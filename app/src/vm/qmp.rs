//! QEMU's monitor protocol through the `qapi` crate: short synchronous sessions
//! (connect, handshake, one command), run off the async threads. The manager
//! holds no QMP connection between commands, so `berth vm status` from another
//! process can always get one.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("connecting to QMP at {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP: {0}")]
    Command(String),
}

fn session<T>(
    path: &Path,
    f: impl FnOnce(
        &mut qapi::Qmp<qapi::Stream<std::io::BufReader<&UnixStream>, &UnixStream>>,
    ) -> Result<T, qapi::ExecuteError>,
) -> Result<T, QmpError> {
    let stream = UnixStream::connect(path).map_err(|source| QmpError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    // qapi 0.15 panics when QEMU closes the socket before its greeting; a dying
    // QEMU must not take the manager down with it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut qmp = qapi::Qmp::from_stream(&stream);
        qmp.handshake()?;
        f(&mut qmp)
    }));
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(QmpError::Command(e.to_string())),
        Err(_) => Err(QmpError::Command("QEMU closed the monitor".into())),
    }
}

/// QEMU's run state (`running`, `paused`, `shutdown`, …).
pub fn status(path: &Path) -> Result<String, QmpError> {
    session(path, |q| q.execute(&qapi::qmp::query_status {}))
        .map(|s| format!("{:?}", s.status).to_lowercase())
}

/// Presses the ACPI power button.
pub fn system_powerdown(path: &Path) -> Result<(), QmpError> {
    session(path, |q| q.execute(&qapi::qmp::system_powerdown {})).map(|_| ())
}

/// Ends QEMU at once (the guest gets no say).
pub fn quit(path: &Path) -> Result<(), QmpError> {
    // QEMU may close the socket before answering `quit`; that is success.
    match session(path, |q| q.execute(&qapi::qmp::quit {})) {
        Ok(_) => Ok(()),
        Err(QmpError::Command(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
