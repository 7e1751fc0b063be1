//! `berth doctor`: what the VM would run with on this host, and why — the
//! accelerator, the transport, the guest image, the helper programs and the
//! shared folders — without starting anything.

use super::argv::{self, Arch};
use super::{image, shares, supervisor};
use crate::paths::{HostOs, Paths};
use crate::settings::{Accel, VmSettings};

pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

fn program(name: &'static str, needed: bool) -> Check {
    match image::find_program(name) {
        Some(p) => check(name, true, p.display().to_string()),
        None if needed => check(name, false, "not found (needed with these settings)"),
        None => check(name, true, "not found (not needed)"),
    }
}

pub fn run(paths: &Paths, settings: &VmSettings) -> Vec<Check> {
    let os = HostOs::current();
    let arch = Arch::current();
    let mut out = Vec::new();
    let kvm = os == HostOs::Linux && supervisor::kvm_usable();
    let accel = argv::resolve_accel(settings.accel, os, kvm);
    out.push(check(
        "accelerator",
        true,
        match accel {
            Accel::Tcg => "tcg (no hardware acceleration: slow)".to_string(),
            Accel::Kvm if settings.accel == Accel::Auto => {
                "kvm (a guest that fails under it is booted again under tcg)".to_string()
            }
            a => format!("{a:?}").to_lowercase(),
        },
    ));
    let qemu = match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Aarch64 => "qemu-system-aarch64",
    };
    out.push(program(qemu, true));
    out.push(program("qemu-img", true));
    let transport = supervisor::resolve_transport(settings.transport);
    out.push(check(
        "transport",
        true,
        format!("{transport:?}").to_lowercase(),
    ));
    out.push(program(
        "vhost-device-vsock",
        transport == crate::settings::TransportKind::Hybrid,
    ));
    out.push(match image::find(settings.image_dir.as_deref(), arch) {
        Ok(img) => check("guest image", true, img.initrd.display().to_string()),
        Err(tried) => check(
            "guest image",
            false,
            format!(
                "not found (cargo xtask vm-image); looked in {}",
                tried
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    });
    let virtiofsd = image::find_program("virtiofsd").is_some();
    match shares::resolve_backend(settings.file_sharing, os, virtiofsd) {
        Ok((None, why)) => out.push(check("file sharing", true, format!("off: {why}"))),
        Ok((Some(fs), why)) => {
            out.push(check(
                "file sharing",
                true,
                format!("{} ({why})", fs.name()),
            ));
            let (planned, warnings) =
                shares::plan(os, &settings.shared_folders, fs, |p| p.exists());
            for p in planned {
                out.push(check(
                    "shared folder",
                    true,
                    format!(
                        "{} → {}{}",
                        p.host_path.display(),
                        p.mount.guest_path,
                        if p.mount.read_only {
                            " (read-only)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            for w in warnings {
                out.push(check("shared folder", false, w));
            }
        }
        Err(e) => out.push(check("file sharing", false, e)),
    }
    out.push(check(
        "settings",
        true,
        paths.settings_file().display().to_string(),
    ));
    out
}
