//! `berth vm compact`: rewrites the stopped VM's data disk with `qemu-img
//! convert`, which leaves out every cluster the guest never wrote or trimmed
//! and packs the rest. The running VM already hands trimmed space back (the
//! guest's idle `fstrim` through `discard=unmap`); this is the offline pass
//! for what punching holes cannot reclaim: qcow2 metadata and fragmentation.
//!
//! The copy is written beside the disk and renamed over it only once
//! `qemu-img check` passes, so a failure at any step leaves the disk as it was.

use std::path::Path;

use super::{io_err, qemu_img, running_supervisor, VmError, VmPaths};

/// The disk's size on the host before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub before_bytes: u64,
    pub after_bytes: u64,
}

pub fn compact(vm: &VmPaths) -> Result<Compacted, VmError> {
    if let Some(pid) = running_supervisor(vm) {
        return Err(VmError::AlreadyRunning(pid));
    }
    let disk = vm.data_disk();
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| crate::os::allocated_bytes(&m))
            .map_err(io_err(format!("reading {}", p.display())))
    };
    let before_bytes = size(&disk)?;
    let tmp = disk.with_extension("qcow2.compact");
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        qemu_img(&[
            "convert".as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            disk.as_os_str(),
            tmp.as_os_str(),
        ])?;
        qemu_img(&["check".as_ref(), "-q".as_ref(), tmp.as_os_str()])?;
        std::fs::rename(&tmp, &disk).map_err(io_err("replacing the data disk"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(Compacted {
        before_bytes,
        after_bytes: size(&disk)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_disk_with_freed_space_gets_smaller_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let vm = VmPaths::new(dir.path().to_path_buf());
        let disk = vm.data_disk();
        match super::super::ensure_disk(&disk, 1) {
            Err(VmError::MissingProgram(_)) => return, // qemu-utils absent
            r => assert!(r.unwrap()),
        }
        // 8 MiB written, then 6 MiB of it zeroed without unmapping: blocks a
        // guest freed that stayed allocated in the file.
        let io = |cmd: &str| {
            let out = Command::new("qemu-io")
                .args(["-c", cmd])
                .arg(&disk)
                .output()
                .unwrap();
            assert!(out.status.success(), "qemu-io {cmd}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        io("write -P 0x5a 0 8M");
        io("write -z 2M 6M");
        let done = compact(&vm).unwrap();
        assert!(
            done.after_bytes < done.before_bytes,
            "compacting did not shrink the disk: {done:?}"
        );
        assert!(!disk.with_extension("qcow2.compact").exists());
        // The data survived: qemu-io's pattern read fails on a mismatch.
        assert!(io("read -P 0x5a 0 2M").contains("read 2097152/2097152"));
        assert!(io("read -P 0 2M 6M").contains("read 6291456/6291456"));
    }

    #[test]
    fn a_broken_disk_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let vm = VmPaths::new(dir.path().to_path_buf());
        std::fs::write(vm.data_disk(), b"QFI\xfbgarbage").unwrap();
        match compact(&vm) {
            Err(VmError::MissingProgram(_)) => return,
            Err(VmError::DiskCreate(_)) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(vm.data_disk()).unwrap(), b"QFI\xfbgarbage");
        assert!(!vm.data_disk().with_extension("qcow2.compact").exists());
    }
}
