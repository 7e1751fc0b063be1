//! Finding the guest image (`vmlinuz` + `initramfs.img`, built by
//! `cargo xtask vm-image`) and the helper programs the manager runs.

use std::path::{Path, PathBuf};

use super::argv::Arch;

/// The kernel as shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kernel {
    /// A bootable file as is (`vmlinuz`).
    Plain(PathBuf),
    /// `vmlinux.zst`: the uncompressed x86 kernel (an ELF QEMU boots through
    /// PVH), zstd-compressed for shipping. Decompressing it once on the host
    /// spares every boot the bzImage's xz decompression, which takes about 3 s
    /// of an emulated CPU under TCG.
    Zstd(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestImage {
    pub kernel: Kernel,
    pub initrd: PathBuf,
}

impl GuestImage {
    fn at(dir: &Path) -> Option<GuestImage> {
        let initrd = dir.join("initramfs.img");
        if !initrd.is_file() {
            return None;
        }
        let kernel = if dir.join("vmlinux.zst").is_file() {
            Kernel::Zstd(dir.join("vmlinux.zst"))
        } else if dir.join("vmlinuz").is_file() {
            Kernel::Plain(dir.join("vmlinuz"))
        } else {
            return None;
        };
        Some(GuestImage { kernel, initrd })
    }

    /// The kernel file QEMU boots; a compressed one is unpacked into `cache`
    /// once per shipped file (named by its size and mtime).
    pub fn kernel_file(&self, cache: &Path) -> std::io::Result<PathBuf> {
        let src = match &self.kernel {
            Kernel::Plain(p) => return Ok(p.clone()),
            Kernel::Zstd(p) => p,
        };
        let meta = std::fs::metadata(src)?;
        let mtime = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("vmlinux-{}-{mtime}", meta.len());
        let out = cache.join(&name);
        if out.is_file() {
            return Ok(out);
        }
        std::fs::create_dir_all(cache)?;
        let tmp = cache.join(format!("{name}.tmp"));
        {
            let mut dec = zstd::stream::read::Decoder::new(std::fs::File::open(src)?)?;
            let mut f = std::fs::File::create(&tmp)?;
            std::io::copy(&mut dec, &mut f)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &out)?;
        // Kernels of older images are never booted again.
        for e in std::fs::read_dir(cache)?.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("vmlinux-") && *n != *name {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(out)
    }
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The places an image can be, in order: the setting, `BERTH_VM_IMAGE_DIR`, an
/// installed copy beside the binary (`../share/berth/vm-image/<arch>` on Linux
/// and in a macOS app, `vm-image/<arch>` on Windows), and a development build (`target/vm-image/<arch>` beside `target/debug`).
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
        // Windows installs resources beside the executable.
        c.push(exe.join("vm-image").join(arch.name()));
    }
    c
}

pub fn find(configured: Option<&Path>, arch: Arch) -> Result<GuestImage, Vec<PathBuf>> {
    let tried = candidates(configured, exe_dir().as_deref(), arch);
    tried.iter().find_map(|d| GuestImage::at(d)).ok_or(tried)
}

/// A helper program: on PATH, or installed beside the binary (`../lib/berth`,
/// where the packages put `vhost-device-vsock`; `../tools/bin`, where `cargo
/// xtask` puts the ones it builds).
pub fn find_program(name: &str) -> Option<PathBuf> {
    // `berth` is `berth.exe` on Windows.
    let name = &format!("{name}{}", std::env::consts::EXE_SUFFIX);
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let exe = exe_dir()?;
    // Debian puts virtiofsd in /usr/libexec.
    [
        exe.join("../lib/berth").join(name),
        exe.join("../tools/bin").join(name),
        exe.join(name),
        PathBuf::from("/usr/libexec").join(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_kernel_is_unpacked_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("initramfs.img"), b"cpio").unwrap();
        let kernel = zstd::encode_all(&b"\x7fELF kernel"[..], 3).unwrap();
        std::fs::write(dir.path().join("vmlinux.zst"), kernel).unwrap();
        let img = GuestImage::at(dir.path()).unwrap();
        let cache = dir.path().join("cache");
        let k = img.kernel_file(&cache).unwrap();
        assert_eq!(std::fs::read(&k).unwrap(), b"\x7fELF kernel");
        assert_eq!(img.kernel_file(&cache).unwrap(), k);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    }

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
