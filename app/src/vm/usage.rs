//! What the VM costs the host right now: the guest's memory as its balloon
//! reports it, what QEMU holds, and the data disk's real size. For `berth vm
//! status` and the app's Troubleshoot page.

use serde::Serialize;

use super::qmp::{self, GuestMemory};
use super::{VmPaths, VmState};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmUsage {
    /// None until the guest's balloon posted its first statistics.
    pub guest: Option<GuestMemory>,
    /// QEMU's resident memory (where the OS tells it).
    pub qemu_rss_bytes: Option<u64>,
    /// The data disk file's blocks on the host.
    pub disk_bytes: Option<u64>,
    /// The data disk's size as the guest sees it (the most it can grow to).
    pub disk_limit_bytes: Option<u64>,
}

/// Reads what it can; a VM that is not running still has a disk. QMP is
/// answered while the VM is paused, so this never wakes it.
pub fn usage(paths: &VmPaths, state: Option<&VmState>) -> VmUsage {
    let guest = state
        .and_then(|_| qmp::guest_memory(&paths.qmp_endpoint()).ok())
        .flatten();
    let qemu_rss_bytes = state
        .and_then(|s| s.qemu_pid)
        .and_then(crate::os::rss_bytes);
    let disk = std::fs::metadata(paths.data_disk()).ok();
    VmUsage {
        guest,
        qemu_rss_bytes,
        disk_bytes: disk.as_ref().map(crate::os::allocated_bytes),
        disk_limit_bytes: disk_limit(&paths.data_disk()),
    }
}

/// The qcow2 header's virtual size (big-endian u64 at offset 24), read directly
/// rather than through `qemu-img info`, which would have to take the image's
/// lock that the running QEMU holds.
fn disk_limit(path: &std::path::Path) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; 32];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..4] != b"QFI\xfb" {
        return None;
    }
    Some(u64::from_be_bytes(head[24..32].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qcow2_header_gives_the_disk_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.qcow2");
        let mut head = b"QFI\xfb\0\0\0\x03".to_vec();
        head.resize(24, 0);
        head.extend_from_slice(&(64u64 << 30).to_be_bytes());
        std::fs::write(&p, &head).unwrap();
        assert_eq!(disk_limit(&p), Some(64 << 30));
        std::fs::write(&p, b"not a qcow2 image at all, no........").unwrap();
        assert_eq!(disk_limit(&p), None);
    }
}
