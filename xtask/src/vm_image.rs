//! `cargo xtask vm-image [--arch x86_64|aarch64]`: the guest image, built
//! reproducibly from Debian packages and this workspace.
//!
//! - `vmlinuz`: the kernel of Debian's `linux-image-<arch>` package, downloaded
//!   with `apt-get download` and unpacked with `dpkg-deb` (the host's /boot is
//!   never used).
//! - `initramfs.img`: a zstd newc cpio with only what the engine needs: the
//!   modules in `vm-image/modules.txt` and their dependencies, busybox-static,
//!   `nft`, `mke2fs`/`e2fsck`, tini, the statically linked `berth-agent`, QEMU's
//!   user-mode emulators for the other architectures (`qemu-user-static`), and
//!   `vm-image/init` as PID 1. Entries are sorted, owned by root and dated
//!   `SOURCE_DATE_EPOCH`, so the same inputs give the same bytes.
//!
//! Output goes to `target/vm-image/<arch>/` with a `manifest.json`; an unchanged
//! set of inputs is not rebuilt.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::deps;
use crate::proc::{cargo, output, run, step, target_dir, workspace_root};

/// What the recipe needs on the build host.
pub const VM_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "qemu-utils",
    "busybox-static",
    "kmod",
    "cpio",
    "zstd",
    "e2fsprogs",
    "nftables",
    "tini",
    "libseccomp-dev",
    "pkg-config",
    "file",
    "ca-certificates",
    "xz-utils",
];

/// Dates every file in the image unless `SOURCE_DATE_EPOCH` says otherwise.
const DEFAULT_EPOCH: u64 = 1_700_000_000;

struct ArchSpec {
    name: &'static str,
    /// Debian's metapackage that names the current kernel package.
    kernel_meta: &'static str,
    rust_target: &'static str,
    libdir: &'static str,
}

const ARCHES: &[ArchSpec] = &[
    ArchSpec {
        name: "x86_64",
        kernel_meta: "linux-image-amd64",
        rust_target: "x86_64-unknown-linux-gnu",
        libdir: "/lib/x86_64-linux-gnu",
    },
    ArchSpec {
        name: "aarch64",
        kernel_meta: "linux-image-arm64",
        rust_target: "aarch64-unknown-linux-gnu",
        libdir: "/lib/aarch64-linux-gnu",
    },
];

pub fn vm_image(args: &[String]) -> anyhow::Result<()> {
    let mut arch = std::env::consts::ARCH.to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--arch" => arch = it.next().context("--arch needs a value")?.clone(),
            s if s.starts_with("--arch=") => arch = s["--arch=".len()..].to_string(),
            other => bail!(
                "unknown argument {other:?}; usage: cargo xtask vm-image [--arch x86_64|aarch64]"
            ),
        }
    }
    build(&arch).map(|_| ())
}

/// Builds (or finds up to date) the image for `arch`; returns its directory.
pub fn build(arch: &str) -> anyhow::Result<PathBuf> {
    let spec = ARCHES
        .iter()
        .find(|a| a.name == arch)
        .with_context(|| format!("unknown arch {arch:?} (x86_64 or aarch64)"))?;
    step(&format!("vm image ({})", spec.name));
    deps::ensure_packages(VM_PACKAGES)?;
    // The fast paths `berth vm start` looks for next to target/debug/berth
    // (target/tools/bin): without them it falls back to the serial transport
    // and 9p, and says so.
    deps::ensure_vhost_device_vsock()?;
    deps::ensure_virtiofsd()?;
    let out_dir = target_dir().join("vm-image").join(spec.name);
    let cache = target_dir().join("vm-image/cache").join(spec.name);
    std::fs::create_dir_all(&out_dir)?;
    std::fs::create_dir_all(&cache)?;

    if spec.name != std::env::consts::ARCH {
        // The recipe is the same; what this host lacks is a cross toolchain for
        // the agent (rustup cannot fetch targets here) and the foreign arch's
        // packages (busybox, nft, e2fsprogs) for the rest of the tree.
        bail!(
            "the {} image cannot be built on this {} host: its berth-agent needs the Rust \
             target {} and its userland the Debian {} packages (dpkg --add-architecture). \
             See vm-image/README.md for the recipe.",
            spec.name,
            std::env::consts::ARCH,
            spec.rust_target,
            spec.kernel_meta.trim_start_matches("linux-image-")
        );
    }

    let (kernel_pkg, kroot, kver) = kernel(spec, &cache)?;
    let agent = build_agent(spec)?;
    // The static agent runs on this host too: it builds the tutorial image it ships.
    let tutorial = crate::tutorial::archive(&agent)?;
    let recipe = workspace_root().join("vm-image");
    let qemu_user = fetch_deb("qemu-user-static", &cache.join("debs"))?;

    let mut inputs = Sha256::new();
    inputs.update(kernel_pkg.as_bytes());
    inputs.update(qemu_user.to_string_lossy().as_bytes());
    inputs.update(std::fs::read(&agent)?);
    inputs.update(std::fs::read(&tutorial)?);
    for f in ["init", "modules.txt", "acpi/PWRF/00000080"] {
        inputs.update(std::fs::read(recipe.join(f))?);
    }
    for p in ["busybox-static", "nftables", "e2fsprogs", "tini"] {
        inputs.update(output(Command::new("dpkg-query").args(["-W", p]))?.as_bytes());
    }
    inputs.update(include_bytes!("vm_image.rs"));
    let stamp = hex::encode(inputs.finalize());
    let stamp_file = out_dir.join("inputs.sha256");
    let outputs = [out_dir.join("vmlinux.zst"), out_dir.join("initramfs.img")];
    if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str())
        && outputs.iter().all(|p| p.is_file())
    {
        println!("vm image up to date in {}", out_dir.display());
        report(&out_dir)?;
        return Ok(out_dir);
    }

    let stage = cache.join("stage");
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/berth",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "mnt",
        "root",
        "var/lib/berth",
        "var/log",
        "usr/share/berth/images",
    ] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    userland(spec, &stage)?;
    let agent_dst = stage.join("usr/bin/berth-agent");
    run(Command::new("strip").arg("-o").arg(&agent_dst).arg(&agent))?;
    // Loaded by the engine on the first start of a fresh disk (`--preload`).
    std::fs::copy(
        &tutorial,
        stage.join("usr/share/berth/images/getting-started.tar"),
    )?;
    modules(&recipe, &kroot, &kver, &stage)?;
    emulators(spec, &qemu_user, &cache, &stage)?;
    etc(&recipe, &stage)?;
    std::fs::copy(recipe.join("init"), stage.join("init"))?;
    set_mode(&stage.join("init"), 0o755)?;

    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EPOCH);
    run(Command::new("find").arg(&stage).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        &format!("@{epoch}"),
        "{}",
        "+",
    ]))?;
    let tmp = out_dir.join("initramfs.img.tmp");
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | zstd -q -19 -T1 -f -o '{}'",
        stage.display(),
        tmp.display()
    )))?;
    std::fs::rename(&tmp, out_dir.join("initramfs.img"))?;
    vmlinux(
        &kroot.join(format!("boot/vmlinuz-{kver}")),
        &cache,
        &outputs[0],
    )?;

    let sha =
        |p: &Path| -> anyhow::Result<String> { Ok(hex::encode(Sha256::digest(std::fs::read(p)?))) };
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let manifest = serde_json::json!({
        "arch": spec.name,
        "kernelPackage": kernel_pkg,
        "kernelVersion": kver,
        "vmlinux.zst": { "bytes": size(&outputs[0]), "sha256": sha(&outputs[0])? },
        "initramfs": { "bytes": size(&outputs[1]), "sha256": sha(&outputs[1])? },
        "cmdline": "console=ttyS0 panic=-1 quiet berth.transport=vsock",
        "sourceDateEpoch": epoch,
    });
    std::fs::write(
        out_dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    std::fs::write(&stamp_file, &stamp)?;
    report(&out_dir)?;
    Ok(out_dir)
}

/// The bzImage's xz payload, unpacked to the ELF `vmlinux` that QEMU boots
/// through PVH (no decompression in the guest, ~3 s less under TCG), shipped
/// zstd-compressed; the host unpacks it once.
fn vmlinux(bzimage: &Path, cache: &Path, out: &Path) -> anyhow::Result<()> {
    let bz = std::fs::read(bzimage)?;
    let at = bz
        .windows(6)
        .position(|w| w == b"\xfd7zXZ\x00")
        .context("the kernel image has no xz payload (CONFIG_KERNEL_XZ)")?;
    let xz = cache.join("vmlinux.xz");
    std::fs::write(&xz, &bz[at..])?;
    let elf = cache.join("vmlinux");
    // xz stops at the end of its stream; the bytes after it are the bzImage's trailer.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "xz -dc -q '{}' > '{}' 2>/dev/null",
            xz.display(),
            elf.display()
        ))
        .status()?;
    let head = std::fs::read(&elf)
        .map(|b| b.get(..4) == Some(b"\x7fELF"))
        .unwrap_or(false);
    if !head {
        bail!(
            "unpacking vmlinux from {} failed ({status})",
            bzimage.display()
        );
    }
    run(Command::new("zstd")
        .args(["-q", "-19", "-T1", "-f", "-o"])
        .arg(out)
        .arg(&elf))?;
    let _ = std::fs::remove_file(&xz);
    let _ = std::fs::remove_file(&elf);
    Ok(())
}

fn report(out_dir: &Path) -> anyhow::Result<()> {
    let k = std::fs::metadata(out_dir.join("vmlinux.zst"))?.len();
    let i = std::fs::metadata(out_dir.join("initramfs.img"))?.len();
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "vm image: vmlinux.zst {:.1} MB + initramfs {:.1} MB = {:.1} MB (target ≤ 40 MB) in {}",
        mb(k),
        mb(i),
        mb(k + i),
        out_dir.display()
    );
    Ok(())
}

/// The kernel package: downloaded once, unpacked once, `depmod`ed (Debian ships
/// modules without `modules.dep`).
fn kernel(spec: &ArchSpec, cache: &Path) -> anyhow::Result<(String, PathBuf, String)> {
    let depends = output(Command::new("apt-cache").args(["depends", spec.kernel_meta]))?;
    let pkg = depends
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .filter(|p| p.starts_with("linux-image-"))
        .with_context(|| format!("{} names no kernel package", spec.kernel_meta))?
        .trim()
        .to_string();
    let version = output(Command::new("apt-cache").args(["show", "--no-all-versions", &pkg]))?
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or("unknown")
        .to_string();
    let kroot = cache.join(format!("{pkg}_{version}"));
    if !kroot.join("boot").is_dir() {
        let deb = fetch_deb(&pkg, &cache.join("debs"))?;
        let tmp = cache.join("unpack.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
        std::fs::rename(&tmp, &kroot)?;
    }
    let kver = std::fs::read_dir(kroot.join("lib/modules"))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .next()
        .context("the kernel package has no modules")?;
    if !kroot
        .join("lib/modules")
        .join(&kver)
        .join("modules.dep")
        .is_file()
    {
        run(Command::new("depmod").arg("-b").arg(&kroot).arg(&kver))?;
    }
    Ok((format!("{pkg} {version}"), kroot, kver))
}

/// `apt-get download`s `pkg` into `debs` unless a `.deb` of it is there.
fn fetch_deb(pkg: &str, debs: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(debs)?;
    let find = || {
        std::fs::read_dir(debs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
            })
    };
    if let Some(deb) = find() {
        return Ok(deb);
    }
    let download = || {
        Command::new("apt-get")
            .args(["download", pkg])
            .current_dir(debs)
            .status()
    };
    if !download()?.success() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        if !download()?.success() {
            bail!("apt-get download {pkg} failed");
        }
    }
    find().with_context(|| format!("the downloaded {pkg} package is missing"))
}

/// The emulators for the other architectures this one's users run
/// (`docker run --platform`): QEMU's user-mode emulators from Debian's
/// `qemu-user-static`, each with its binfmt_misc registration line. They ship
/// zstd-compressed; the agent unpacks them onto the data disk and registers
/// them (`guest-agent/src/emulators.rs`), so a user who never runs a foreign
/// image pays no memory for them.
fn emulators(spec: &ArchSpec, deb: &Path, cache: &Path, stage: &Path) -> anyhow::Result<()> {
    let wanted: &[&str] = match spec.name {
        "x86_64" => &["aarch64", "arm"],
        _ => &["x86_64"],
    };
    // Only the files used: the package unpacks to 370 MB.
    let root = cache.join("qemu-user");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let members: Vec<String> = wanted
        .iter()
        .flat_map(|a| {
            [
                format!("./usr/bin/qemu-{a}-static"),
                format!("./usr/lib/binfmt.d/qemu-{a}.conf"),
            ]
        })
        .collect();
    run(Command::new("sh")
        .arg("-c")
        .arg(r#"root="$1"; shift; dpkg-deb --fsys-tarfile "$0" | tar -x -C "$root" "$@""#)
        .arg(deb)
        .arg(&root)
        .args(&members))?;
    let out = stage.join("usr/lib/berth/emulators");
    std::fs::create_dir_all(&out)?;
    for arch in wanted {
        let conf = root.join(format!("usr/lib/binfmt.d/qemu-{arch}.conf"));
        std::fs::copy(&conf, out.join(format!("qemu-{arch}.conf")))
            .with_context(|| format!("copying {}", conf.display()))?;
        let bin = root.join(format!("usr/bin/qemu-{arch}-static"));
        run(Command::new("zstd")
            .args(["-q", "-19", "-T1", "-f", "-o"])
            .arg(out.join(format!("qemu-{arch}-static.zst")))
            .arg(&bin))?;
    }
    Ok(())
}

/// `berth-agent` linked statically (glibc and libseccomp), in its own target
/// dir so the flags never invalidate the debug build.
fn build_agent(spec: &ArchSpec) -> anyhow::Result<PathBuf> {
    run(cargo()
        .args([
            "build",
            "--release",
            "-p",
            "berth-agent",
            "--target",
            spec.rust_target,
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("LIBSECCOMP_LINK_TYPE", "static")
        .env("LIBSECCOMP_LIB_PATH", "/usr/lib/x86_64-linux-gnu"))?;
    let bin = target_dir()
        .join(spec.rust_target)
        .join("release/berth-agent");
    let kind = output(Command::new("file").arg(&bin))?;
    if !kind.contains("static") {
        bail!("berth-agent is not statically linked: {kind}");
    }
    Ok(bin)
}

fn set_mode(p: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Copies `src` to the same path under `stage`, following symlinks.
fn copy_in(stage: &Path, src: &Path) -> anyhow::Result<()> {
    let dst = stage.join(src.strip_prefix("/")?);
    if let Some(d) = dst.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::copy(src, &dst).with_context(|| format!("copying {}", src.display()))?;
    Ok(())
}

/// A dynamically linked program and every library `ldd` says it loads.
fn copy_with_libs(stage: &Path, bin: &Path) -> anyhow::Result<()> {
    copy_in(stage, bin)?;
    let libs = output(Command::new("ldd").arg(bin))?;
    for word in libs.split_whitespace() {
        if word.starts_with('/') {
            copy_in(stage, Path::new(word))?;
        }
    }
    Ok(())
}

fn userland(spec: &ArchSpec, stage: &Path) -> anyhow::Result<()> {
    // busybox: its applets as symlinks in /bin; the real tools below take
    // precedence (/usr/sbin and /sbin come first in the init's PATH).
    copy_in(stage, Path::new("/bin/busybox"))?;
    let list = output(Command::new("/bin/busybox").arg("--list"))?;
    for applet in list.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let link = stage.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    for prog in ["/usr/sbin/nft", "/sbin/mke2fs", "/sbin/e2fsck"] {
        copy_with_libs(stage, Path::new(prog))?;
    }
    // `docker run --init` runs the engine's static tini.
    copy_in(stage, Path::new("/usr/bin/tini-static"))?;
    // Registries over TLS: the engine reads the system's CA bundle.
    copy_in(stage, Path::new("/etc/ssl/certs/ca-certificates.crt"))?;
    // The static agent still loads NSS modules of the same glibc for names.
    for lib in ["libnss_files.so.2", "libnss_dns.so.2"] {
        let p = Path::new(spec.libdir).join(lib);
        if p.exists() {
            copy_in(stage, &p)?;
        }
    }
    Ok(())
}

fn modules(recipe: &Path, kroot: &Path, kver: &str, stage: &Path) -> anyhow::Result<()> {
    let list = std::fs::read_to_string(recipe.join("modules.txt"))?;
    let moddir = Path::new("lib/modules").join(kver);
    let mut shipped = std::collections::BTreeSet::new();
    for m in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
    {
        let deps = output(Command::new("modprobe").arg("-d").arg(kroot).args([
            "-S",
            kver,
            "--show-depends",
            m,
        ]))
        .with_context(|| format!("module {m} (vm-image/modules.txt)"))?;
        for line in deps.lines() {
            if let Some(path) = line.strip_prefix("insmod ") {
                let path = path.split_whitespace().next().unwrap_or_default();
                shipped.insert(PathBuf::from(path));
            }
        }
    }
    for abs in &shipped {
        let rel = abs.strip_prefix(kroot)?;
        let dst = stage.join(rel);
        std::fs::create_dir_all(dst.parent().context("module path")?)?;
        std::fs::copy(abs, &dst)?;
    }
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let src = kroot.join(&moddir).join(f);
        if src.exists() {
            std::fs::copy(&src, stage.join(&moddir).join(f))?;
        }
    }
    run(Command::new("depmod").arg("-b").arg(stage).arg(kver))?;
    std::fs::copy(
        recipe.join("modules.txt"),
        stage.join("etc/berth/modules.txt"),
    )?;
    println!("{} kernel modules", shipped.len());
    Ok(())
}

fn etc(recipe: &Path, stage: &Path) -> anyhow::Result<()> {
    let files: &[(&str, &str)] = &[
        ("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 berth\n10.0.2.2 host.docker.internal gateway.docker.internal\n"),
        ("etc/resolv.conf", "nameserver 10.0.2.3\n"),
        ("etc/nsswitch.conf", "hosts: files dns\npasswd: files\ngroup: files\n"),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/hostname", "berth\n"),
        ("etc/os-release", "NAME=\"Berth VM\"\nPRETTY_NAME=\"Berth VM\"\nID=berth\n"),
    ];
    for (path, text) in files {
        std::fs::write(stage.join(path), text)?;
    }
    let acpi = stage.join("etc/acpi/PWRF");
    std::fs::create_dir_all(&acpi)?;
    std::fs::copy(recipe.join("acpi/PWRF/00000080"), acpi.join("00000080"))?;
    set_mode(&acpi.join("00000080"), 0o755)?;
    Ok(())
}
