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
    let stream = at.connect().map_err(|source| QmpError::Connect {
        path: at.to_string(),
        source,
    })?;
    // A wedged QEMU cannot hang the caller (where the stream takes timeouts).
    let _ = crate::os::set_timeouts(&stream, std::time::Duration::from_secs(10));
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

/// Stops the vCPUs (the guest sees no time pass until [`cont`]).
pub fn stop(at: &Endpoint) -> Result<(), QmpError> {
    session(at, |q| q.execute(&qapi::qmp::stop {})).map(|_| ())
}

/// Runs the vCPUs again after [`stop`].
pub fn cont(at: &Endpoint) -> Result<(), QmpError> {
    session(at, |q| q.execute(&qapi::qmp::cont {})).map(|_| ())
}

/// The balloon device's QOM path.
fn balloon() -> String {
    format!("/machine/peripheral/{}", super::argv::BALLOON_ID)
}

/// Asks the guest's balloon driver to post memory statistics every `secs`.
pub fn enable_memory_stats(at: &Endpoint, secs: u32) -> Result<(), QmpError> {
    session(at, |q| {
        q.execute(&qapi::qmp::qom_set {
            path: balloon(),
            property: "guest-stats-polling-interval".into(),
            value: serde_json::json!(secs),
        })
    })
    .map(|_| ())
}

/// The guest's memory as its kernel last posted it through the balloon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestMemory {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// Page cache (including tmpfs).
    pub cached_bytes: u64,
    /// What programs hold: total less free and cache.
    pub used_bytes: u64,
}

impl GuestMemory {
    /// From `guest-stats`; None until the guest has posted once.
    pub fn from_stats(v: &serde_json::Value) -> Option<GuestMemory> {
        let stat = |k: &str| v["stats"][k].as_u64().filter(|&n| n != u64::MAX);
        let total = stat("stat-total-memory")?;
        let free = stat("stat-free-memory")?;
        let cached = stat("stat-disk-caches").unwrap_or(0);
        Some(GuestMemory {
            total_bytes: total,
            free_bytes: free,
            cached_bytes: cached,
            used_bytes: total.saturating_sub(free).saturating_sub(cached),
        })
    }
}

/// The guest's memory, if the balloon has statistics yet.
pub fn guest_memory(at: &Endpoint) -> Result<Option<GuestMemory>, QmpError> {
    session(at, |q| {
        q.execute(&qapi::qmp::qom_get {
            path: balloon(),
            property: "guest-stats".into(),
        })
    })
    .map(|v| GuestMemory::from_stats(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_stats_become_used_cached_free() {
        let v = serde_json::json!({"stats": {
            "stat-total-memory": 2_000_000_000u64, "stat-free-memory": 1_500_000_000u64,
            "stat-disk-caches": 300_000_000u64, "stat-swap-in": u64::MAX,
        }, "last-update": 1});
        let m = GuestMemory::from_stats(&v).unwrap();
        assert_eq!(m.used_bytes, 200_000_000);
        assert_eq!(m.cached_bytes, 300_000_000);
        // Before the guest's first post every stat is -1 (u64::MAX here).
        let none = serde_json::json!({"stats": {"stat-total-memory": u64::MAX}});
        assert_eq!(GuestMemory::from_stats(&none), None);
    }
}
