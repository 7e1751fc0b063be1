//! Memory back to the host when Berth's VM idles. The guest kernel reports free
//! pages to QEMU through the balloon device's free-page reporting and QEMU
//! discards them, so memory a container freed leaves the host within seconds.
//! The page cache is not free, though: image layers and container files read
//! or written stay cached, and the host would hold them after every container
//! stopped. So once no container has run for [`IDLE`] and the droppable cache
//! is over [`FLOOR_KIB`], clean page cache is dropped and memory compacted, so
//! whole 2 MiB blocks come free and are reported. Only in the VM: a native
//! engine never touches its host's caches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::Engine;

/// How often the engine looks.
const CHECK: Duration = Duration::from_secs(5);
/// How long no container must have run.
const IDLE: Duration = Duration::from_secs(20);
/// Page cache below this (not counting tmpfs, which cannot be dropped) stays.
const FLOOR_KIB: u64 = 64 * 1024;

/// `/proc/meminfo`'s field `name`, in KiB.
pub fn meminfo_kib(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Page cache the kernel can drop: `Cached` less `Shmem` (tmpfs, the root).
fn droppable_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let cached = meminfo_kib(&text, "Cached")?;
    let shmem = meminfo_kib(&text, "Shmem").unwrap_or(0);
    Some(cached.saturating_sub(shmem))
}

/// Writes back dirty pages, drops clean page cache, and compacts free memory.
fn reclaim() -> std::io::Result<()> {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", b"1\n")?;
    // Best effort: without compaction fewer whole blocks are reportable.
    let _ = std::fs::write("/proc/sys/vm/compact_memory", b"1\n");
    Ok(())
}

pub async fn run(engine: Arc<Engine>) {
    let mut idle_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(CHECK).await;
        let (running, paused, _) = engine.containers.counts();
        if running + paused > 0 {
            idle_since = None;
            continue;
        }
        if idle_since.get_or_insert_with(Instant::now).elapsed() < IDLE {
            continue;
        }
        let Some(before) = droppable_kib().filter(|&k| k > FLOOR_KIB) else {
            continue;
        };
        let started = Instant::now();
        match tokio::task::spawn_blocking(reclaim).await {
            Ok(Ok(())) => tracing::info!(
                cache_mib = before / 1024,
                left_mib = droppable_kib().unwrap_or(0) / 1024,
                ms = started.elapsed().as_millis() as u64,
                "idle: page cache dropped, memory back to the host"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "idle reclaim failed"),
            Err(e) => tracing::warn!(error = %e, "idle reclaim panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields_in_kib() {
        let text = "MemTotal:        2014208 kB\nCached:           812344 kB\nShmem:             40960 kB\n";
        assert_eq!(meminfo_kib(text, "Cached"), Some(812_344));
        assert_eq!(meminfo_kib(text, "Shmem"), Some(40_960));
        assert_eq!(meminfo_kib(text, "Mem"), None, "whole names only");
        assert_eq!(meminfo_kib(text, "SwapCached"), None);
    }
}
