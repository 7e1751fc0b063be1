//! `berth doctor`: every piece Berth needs on this host, and for each broken
//! one what to do — QEMU and its version, the accelerator, the transport and
//! its helper, the guest image, file sharing, the docker socket, the `berth`
//! context, the credential helper, disk space and, on Linux, what the host's firewall
//! does to bridged traffic. Nothing is started.

use std::path::Path;

use crate::integration::context;
use crate::paths::{DockerEndpoint, HostOs, Paths};
use crate::settings::{Accel, VmSettings};
use crate::vm::argv::{self, Arch};
use crate::vm::{image, shares, supervisor};

pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What to do when it is not ok.
    pub fix: Option<String>,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
        fix: None,
    }
}

fn broken(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn program(name: &'static str, needed: bool, fix: String) -> Check {
    match image::find_program(name) {
        Some(p) => check(name, true, p.display().to_string()),
        None if needed => broken(name, "not found (needed with these settings)", fix),
        None => check(name, true, "not found (not needed)"),
    }
}

/// `qemu-system-* --version`'s first line.
fn qemu_version(bin: &Path) -> Option<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// Free bytes on the filesystem holding `path` (or its nearest existing parent).
fn free_bytes(path: &Path) -> Option<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent()?;
    }
    crate::os::free_bytes(p)
}

/// Below this, pulls and the VM's disk run out soon.
const MIN_FREE: u64 = 2 << 30;

/// The checks of how the docker CLI reaches Berth: its socket, the context
/// and the credential helper. `docker_dir` is the CLI's config directory.
pub fn integration(paths: &Paths, docker_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let own = paths.user_docker_endpoint().docker_host();
    let host = context::host(docker_dir, context::NAME);
    out.push(match &host {
        Some(h) => check("docker context", true, format!("\"berth\" → {h}")),
        None => broken(
            "docker context",
            "no \"berth\" context",
            "run `berth install` (it adds the context and the credential helper)",
        ),
    });
    let target = host.unwrap_or(own);
    out.push(match DockerEndpoint::from_docker_host(&target) {
        Some(ep) if crate::vm::ping(&ep) => check("engine", true, format!("answers on {target}")),
        Some(_) => broken(
            "engine",
            format!("nothing answers on {target}"),
            "start it: `berth vm start` (or the desktop app); on Linux it also runs natively: \
             `sudo systemctl start berth-engine` (the package) or `cargo xtask run` (a checkout)",
        ),
        None => check("engine", true, format!("{target} (not checked from here)")),
    });
    let config = docker_dir.join("config.json");
    let store = crate::creds::docker_config::creds_store(&config)
        .ok()
        .flatten();
    out.push(
        match (
            store.as_deref(),
            image::find_program("docker-credential-berth"),
        ) {
            (Some("berth"), Some(p)) => check("credential helper", true, p.display().to_string()),
            (Some("berth"), None) => broken(
                "credential helper",
                "credsStore is \"berth\" but docker-credential-berth is not on PATH",
                "run `berth install` (it links the helper onto PATH) or reinstall Berth",
            ),
            (other, _) => broken(
                "credential helper",
                format!(
                    "the docker CLI's credsStore is {}",
                    other.map_or("unset".to_string(), |s| format!("\"{s}\""))
                ),
                "run `berth docker-config install` to keep logins in the OS keychain",
            ),
        },
    );
    out.push(match free_bytes(&paths.home) {
        Some(b) if b >= MIN_FREE => check(
            "disk space",
            true,
            format!("{:.1} GB free for {}", b as f64 / 1e9, paths.home.display()),
        ),
        Some(b) => broken(
            "disk space",
            format!("{:.1} GB free for {}", b as f64 / 1e9, paths.home.display()),
            "free some space (docker system prune, or elsewhere on that disk)",
        ),
        None => check("disk space", true, "unknown"),
    });
    out
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
    out.push(match image::find_program(qemu) {
        Some(p) => check(
            "qemu",
            true,
            qemu_version(&p).unwrap_or_else(|| p.display().to_string()),
        ),
        None => broken(
            "qemu",
            format!("{qemu} not found"),
            crate::vm::fix_on(os, "qemu-system"),
        ),
    });
    out.push(program("qemu-img", true, crate::vm::fix_on(os, "qemu-img")));
    let transport = supervisor::resolve_transport(settings.transport);
    out.push(check(
        "transport",
        true,
        format!(
            "{} ({})",
            format!("{transport:?}").to_lowercase(),
            supervisor::transport_reason(settings.transport, transport)
        ),
    ));
    out.push(program(
        "vhost-device-vsock",
        transport == crate::settings::TransportKind::Hybrid,
        "cargo install vhost-device-vsock, or set \"transport\": \"serial\" in settings".into(),
    ));
    out.push(match image::find(settings.image_dir.as_deref(), arch) {
        Ok(img) => check("guest image", true, img.initrd.display().to_string()),
        Err(tried) => broken(
            "guest image",
            format!(
                "not found; looked in {}",
                tried
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "build it with `cargo xtask vm-image`, or reinstall Berth",
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
                out.push(broken(
                    "shared folder",
                    w,
                    format!(
                        "fix \"sharedFolders\" in {}",
                        paths.settings_file().display()
                    ),
                ));
            }
        }
        Err(e) => out.push(broken(
            "file sharing",
            e,
            format!(
                "set \"fileSharing\" to \"auto\" in {}",
                paths.settings_file().display()
            ),
        )),
    }
    out.push(check(
        "settings",
        true,
        paths.settings_file().display().to_string(),
    ));
    // Where the engine runs natively: what another engine's firewall does to bridges.
    if os == HostOs::Linux {
        out.push(check(
            "host firewall",
            true,
            crate::host_firewall::Probe::read().describe(),
        ));
    }
    out
}
