//! Mounting the host's shared folders in the VM, at the paths the host chose
//! (see `berth_proto::shares`). A share that cannot be mounted is logged and
//! skipped: the engine still starts, and binds under it are refused with the
//! shared-folder error rather than landing in an empty directory.

use std::path::Path;

use berth_proto::shares::{ShareFs, ShareMount};
use nix::mount::{mount, MsFlags};

/// 9p's data options. `cache=mmap` keeps no page cache beyond what mmap needs,
/// so edits on either side are seen at once; a large `msize` cuts round trips
/// for big reads and writes.
const NINEP_OPTIONS: &str = "trans=virtio,version=9p2000.L,msize=524288,cache=mmap";

/// The modules a share needs. init loads the file-sharing modules in the
/// background after boot (most VMs start without waiting for them), so they
/// are loaded here first when a share is configured.
fn load_modules(shares: &[ShareMount]) {
    let mut modules: Vec<&str> = Vec::new();
    for s in shares {
        match s.fs {
            ShareFs::Virtiofs => modules.push("virtiofs"),
            ShareFs::NineP => modules.extend(["9pnet_virtio", "9p"]),
        }
    }
    modules.dedup();
    for m in modules {
        match std::process::Command::new("modprobe").arg(m).status() {
            Ok(s) if s.success() => {}
            Ok(s) => tracing::debug!(module = m, status = %s, "modprobe failed (built in?)"),
            Err(e) => tracing::debug!(module = m, error = %e, "no modprobe"),
        }
    }
}

pub fn mount_all(shares: &[ShareMount]) -> usize {
    load_modules(shares);
    let mut mounted = 0;
    for s in shares {
        match mount_one(s) {
            Ok(()) => {
                mounted += 1;
                tracing::info!(tag = %s.tag, fs = s.fs.name(), path = %s.guest_path, ro = s.read_only, "shared folder mounted");
            }
            Err(e) => {
                tracing::error!(tag = %s.tag, fs = s.fs.name(), path = %s.guest_path, error = %e, "cannot mount a shared folder")
            }
        }
    }
    mounted
}

fn mount_one(s: &ShareMount) -> Result<(), nix::Error> {
    let target = Path::new(&s.guest_path);
    std::fs::create_dir_all(target)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if s.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    match s.fs {
        ShareFs::Virtiofs => mount(
            Some(s.tag.as_str()),
            target,
            Some("virtiofs"),
            flags,
            None::<&str>,
        ),
        ShareFs::NineP => mount(
            Some(s.tag.as_str()),
            target,
            Some("9p"),
            flags,
            Some(NINEP_OPTIONS),
        ),
    }
}
