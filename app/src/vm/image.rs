//! Finding the guest image (`vmlinuz` + `initramfs.img`, built by
//! `cargo xtask vm-image`) and the helper programs the manager runs.

use std::path::{Path, PathBuf};

use super::argv::Arch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl GuestImage {
    fn at(dir: &Path) -> Option<GuestImage> {
        let img = GuestImage {
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initramfs.img"),
        };
        (img.kernel.is_file() && img.initrd.is_file()).then_some(img)
    }
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The places an image can be, in order: the setting, `BERTH_VM_IMAGE_DIR`, an
/// installed copy beside the binary (`../share/berth/vm-image/<arch>`), and a
/// development build (`target/vm-image/<arch>` beside `target/debug`).
pub fn candidates(configured: Option<&Path>, exe_dir: Option<&Path>, arch: Arch) -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(d) = configured {
        c.push(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("BERTH_VM_IMAGE_DIR") {
        c.push(PathBuf::from(d));
    }
    if let Some(exe) = exe_dir {
        c.push(exe.join("../share/berth/vm-image").join(arch.name()));
        c.push(exe.join("../vm-image").join(arch.name()));
    }
    c
}

pub fn find(configured: Option<&Path>, arch: Arch) -> Result<GuestImage, Vec<PathBuf>> {
    let tried = candidates(configured, exe_dir().as_deref(), arch);
    tried.iter().find_map(|d| GuestImage::at(d)).ok_or(tried)
}

/// A helper program: on PATH, or installed beside the binary (`../tools/bin`,
/// where `cargo xtask` puts the ones it builds).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let exe = exe_dir()?;
    [exe.join("../tools/bin").join(name), exe.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_and_installed_layouts() {
        let c = candidates(None, Some(Path::new("/w/target/debug")), Arch::X86_64);
        assert!(c.contains(&PathBuf::from("/w/target/debug/../vm-image/x86_64")));
        assert!(c.contains(&PathBuf::from(
            "/w/target/debug/../share/berth/vm-image/x86_64"
        )));
        let c = candidates(Some(Path::new("/img")), None, Arch::Aarch64);
        assert_eq!(c[0], PathBuf::from("/img"));
    }
}
