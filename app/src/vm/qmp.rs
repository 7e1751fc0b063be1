//! QEMU's monitor protocol through the `qapi` crate: short synchronous sessions
//! (connect, handshake, one command), run off the async threads. The manager
//! holds no QMP connection between commands, so `berth vm status` from another
//! process can always get one.

use super::argv::Endpoint;
use crate::os::LocalStream;

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
    at: &Endpoint,
    f: impl FnOnce(
        &mut qapi::Qmp<qapi::Stream<std::io::BufReader<&LocalStream>, &LocalStream>>,
    ) -> Result<T, qapi::ExecuteError>,
) -> Result<T, QmpError> {
    // Unix sockets get a read timeout: a wedged QEMU cannot hang the caller.
    let stream = at.connect().map_err(|source| QmpError::Connect {
        path: at.to_string(),
        source,
    })?;
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
pub fn status(at: &Endpoint) -> Result<String, QmpError> {
    session(at, |q| q.execute(&qapi::qmp::query_status {}))
        .map(|s| format!("{:?}", s.status).to_lowercase())
}

/// Presses the ACPI power button.
pub fn system_powerdown(at: &Endpoint) -> Result<(), QmpError> {
    session(at, |q| q.execute(&qapi::qmp::system_powerdown {})).map(|_| ())
}

/// Ends QEMU at once (the guest gets no say).
pub fn quit(at: &Endpoint) -> Result<(), QmpError> {
    // QEMU may close the socket before answering `quit`; that is success.
    match session(at, |q| q.execute(&qapi::qmp::quit {})) {
        Ok(_) => Ok(()),
        Err(QmpError::Command(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
