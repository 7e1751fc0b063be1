//! Memory back to the host when Berth's VM idles. The guest kernel reports free
//! pages to QEMU through the balloon device's free-page reporting and QEMU
//! discards them, so memory a container freed leaves the host within seconds.
//! The page cache is not free, though: image layers and container files read
//! or written stay cached, and the host would hold them after every container
//! stopped. So once no container has run for [`IDLE`] and the droppable cache
//! is over [`FLOOR_KIB`], clean page cache is dropped and memory compacted, so
//! whole 2 MiB blocks come free and are reported.
//!
//! The disk likewise: the data disk's qcow2 file grows as the guest writes and
//! never shrinks on its own. QEMU passes discards through (`discard=unmap`), so
//! when the idle engine sees that over [`TRIM_AFTER_BYTES`] came free on the
//! data disk since its low point (images, containers or volumes removed), it
//! trims the filesystem (`FITRIM`, what `fstrim` does) and the file shrinks.
//! Only in the VM: a native engine never touches its host's caches or disks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::containers::stats::meminfo_kib;
use crate::engine::Engine;

/// How often the engine looks.
const CHECK: Duration = Duration::from_secs(5);
/// How long no container must have run.
const IDLE: Duration = Duration::from_secs(20);
/// Page cache below this (not counting tmpfs, which cannot be dropped) stays.
const FLOOR_KIB: u64 = 64 * 1024;
/// Space freed on the data disk since its low point before a trim is worth it.
const TRIM_AFTER_BYTES: u64 = 64 * 1024 * 1024;

/// `struct fstrim_range` of `<linux/fs.h>`.
#[repr(C)]
struct FstrimRange {
    start: u64,
    len: u64,
    minlen: u64,
}

/// `FITRIM` = `_IOWR('X', 121, struct fstrim_range)`: read-write (3 << 30), the
/// struct's 24 bytes, type 'X', number 121. (Neither libc nor nix's enabled
/// features define it.)
const FITRIM: libc::c_ulong = (3 << 30) | (24 << 16) | ((b'X' as libc::c_ulong) << 8) | 121;

/// Free bytes on the filesystem holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(s.blocks_free() as u64 * s.fragment_size() as u64)
}

/// Discards the filesystem's free blocks; how many bytes it trimmed.
fn trim(path: &std::path::Path) -> std::io::Result<u64> {
    let dir = std::fs::File::open(path)?;
    let mut range = FstrimRange {
        start: 0,
        len: u64::MAX,
        minlen: 0,
    };
    // SAFETY: FITRIM on an open directory of the filesystem, with a valid range
    // the kernel updates to what it trimmed.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            FITRIM,
            &mut range as *mut FstrimRange,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(range.len)
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
    let root = engine.config.root.clone();
    // The data disk's lowest free space since the last trim.
    let mut low_free = free_bytes(&root);
    // Whether this idle spell has had its trim (ext4 skips groups it trimmed
    // before, so a trim with nothing new to discard is cheap).
    let mut trimmed = false;
    loop {
        tokio::time::sleep(CHECK).await;
        // The low point counts while containers write too.
        let free = free_bytes(&root);
        if let (Some(f), Some(low)) = (free, low_free) {
            low_free = Some(low.min(f));
        }
        let (running, paused, _) = engine.containers.counts();
        if running + paused > 0 {
            idle_since = None;
            trimmed = false;
            continue;
        }
        if idle_since.get_or_insert_with(Instant::now).elapsed() < IDLE {
            continue;
        }
        if let (Some(f), Some(low)) = (free, low_free) {
            if !trimmed || f > low + TRIM_AFTER_BYTES {
                trimmed = true;
                let dir = root.clone();
                match tokio::task::spawn_blocking(move || trim(&dir)).await {
                    Ok(Ok(bytes)) => tracing::info!(
                        freed_mib = (f - low) >> 20,
                        trimmed_mib = bytes >> 20,
                        "idle: the data disk trimmed, its file shrinks on the host"
                    ),
                    Ok(Err(e)) => tracing::warn!(error = %e, "idle trim failed"),
                    Err(e) => tracing::warn!(error = %e, "idle trim panicked"),
                }
                low_free = free_bytes(&root);
            }
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

    #[test]
    fn fitrim_is_the_kernels_number() {
        // <linux/fs.h>: #define FITRIM _IOWR('X', 121, struct fstrim_range)
        assert_eq!(FITRIM, 0xC018_5879);
        assert_eq!(std::mem::size_of::<FstrimRange>(), 24);
    }
}
