//! Reset to factory defaults: what it deletes is listed first (the app shows
//! the list in its confirmation), then deleted, only while the VM is stopped.

use std::path::PathBuf;

use super::{running_supervisor, VmError, VmPaths};
use crate::paths::Paths;

/// Everything a reset deletes that exists now: the VM's data disk (all images,
/// containers and volumes in the VM), its unpacked kernel, logs and sockets,
/// and the settings file.
pub fn plan(paths: &Paths) -> Vec<PathBuf> {
    let vm = VmPaths::new(paths.vm_dir());
    [vm.dir.clone(), paths.settings_file()]
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

pub fn reset(paths: &Paths) -> Result<Vec<PathBuf>, VmError> {
    let vm = VmPaths::new(paths.vm_dir());
    if let Some(pid) = running_supervisor(&vm) {
        return Err(VmError::AlreadyRunning(pid));
    }
    let doomed = plan(paths);
    for p in &doomed {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        r.map_err(super::io_err(format!("removing {}", p.display())))?;
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_then_removes_the_vm_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(&dir.path().join("home"), &dir.path().join("config"));
        assert!(plan(&paths).is_empty());
        std::fs::create_dir_all(paths.vm_dir()).unwrap();
        std::fs::write(paths.vm_dir().join("data.qcow2"), b"disk").unwrap();
        std::fs::create_dir_all(&paths.config).unwrap();
        std::fs::write(paths.settings_file(), b"{}").unwrap();
        let listed = plan(&paths);
        assert_eq!(listed, [paths.vm_dir(), paths.settings_file()]);
        assert_eq!(reset(&paths).unwrap(), listed);
        assert!(!paths.vm_dir().exists() && !paths.settings_file().exists());
        assert!(paths.home.exists(), "only what was listed goes");
    }
}
