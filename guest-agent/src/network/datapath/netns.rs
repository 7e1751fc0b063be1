//! Network namespaces as files: a namespace is created on a short-lived thread and kept
//! alive by bind-mounting it onto a file, as `ip netns add` does, so the container's
//! runtime can join it by path and the engine can configure it before the container
//! starts. rtnetlink's own `NetworkNamespace::add` forks the whole process instead,
//! which a multi-threaded daemon should not do.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Creates a new network namespace pinned at `path`.
pub fn create(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path)?;
    let target = path.to_path_buf();
    let result = std::thread::spawn(move || -> std::io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        mount(
            Some(Path::new("/proc/thread-self/ns/net")),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(std::io::Error::from)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")));
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Releases the namespace pinned at `path` (it goes away with its last user).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Runs `f` on a thread that has joined the namespace at `path`: sockets `f` opens
/// (netlink, listeners) belong to that namespace.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let ns = File::open(path)?;
    std::thread::spawn(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        f()
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
}

/// Where the engine pins container `id`'s namespace.
pub fn path_for(dir: &Path, id: &str) -> PathBuf {
    dir.join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_enter_remove() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ns");
        create(&p).unwrap();
        let inside = run_in(&p, || std::fs::read_link("/proc/thread-self/ns/net")).unwrap();
        let outside = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        assert_ne!(inside, outside);
        remove(&p);
        assert!(!p.exists());
    }
}
