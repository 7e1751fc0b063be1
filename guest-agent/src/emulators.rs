//! Other architectures' images (`docker run --platform linux/arm64` on an x86_64
//! VM): QEMU's user-mode emulators registered with binfmt_misc, and the platforms
//! the engine can run because of them.
//!
//! Inside Berth's VM the image ships the emulators zstd-compressed next to
//! Debian's registration lines (`--emulators DIR`). [`install`] unpacks each onto
//! the data disk, where its pages are reclaimable cache rather than tmpfs memory a
//! user who never runs a foreign image would pay for, and registers it with the
//! `F` flag: the kernel opens the interpreter once, at registration, so containers
//! whose root has no QEMU still run through it. Natively on a Linux host the
//! host's own registrations (Debian's `qemu-user-static`) are used as they are;
//! [`platforms`] reads whichever are there.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::images::Platform;

/// Where the kernel's binfmt_misc interface is mounted.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{0}: not a binfmt_misc registration line (:name:type:offset:magic:mask:interpreter:flags)"
    )]
    BadLine(PathBuf),
    #[error("cannot mount binfmt_misc: {0}")]
    Mount(nix::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EmulatorError + '_ {
    move |source| EmulatorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One binfmt_misc registration, as `/usr/lib/binfmt.d/*.conf` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    fields: Vec<String>,
    pub interpreter: String,
    pub flags: String,
}

impl Registration {
    /// Parses `:name:type:offset:magic:mask:interpreter:flags`. The magic and mask
    /// are `\x..`-escaped, so they hold no literal `:`.
    pub fn parse(line: &str) -> Option<Registration> {
        let parts: Vec<&str> = line.trim().split(':').collect();
        match parts.as_slice() {
            ["", name, kind, offset, magic, mask, interpreter, flags]
                if !name.is_empty() && !interpreter.is_empty() =>
            {
                Some(Registration {
                    name: name.to_string(),
                    fields: [kind, offset, magic, mask]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    interpreter: interpreter.to_string(),
                    flags: flags.to_string(),
                })
            }
            _ => None,
        }
    }

    /// The line to write to `register`.
    pub fn line(&self) -> String {
        format!(
            ":{}:{}:{}:{}",
            self.name,
            self.fields.join(":"),
            self.interpreter,
            self.flags
        )
    }
}

/// The OCI platforms a QEMU target (`qemu-<target>`) runs.
fn platforms_of(target: &str) -> &'static [(&'static str, Option<&'static str>)] {
    match target {
        "aarch64" => &[("arm64", None)],
        "arm" => &[("arm", Some("v7")), ("arm", Some("v6"))],
        "x86_64" => &[("amd64", None)],
        "i386" => &[("386", None)],
        "riscv64" => &[("riscv64", None)],
        "ppc64le" => &[("ppc64le", None)],
        "s390x" => &[("s390x", None)],
        "mips64el" => &[("mips64le", None)],
        "loongarch64" => &[("loong64", None)],
        _ => &[],
    }
}

/// The platforms binfmt_misc entries under `dir` let containers run: enabled
/// `qemu-*` entries with the `F` flag (without it the interpreter is looked up
/// inside each container's root, where there is none).
pub fn platforms_in(dir: &Path) -> Vec<Platform> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(target) = name.strip_prefix("qemu-") else {
            continue;
        };
        let Ok(status) = fs::read_to_string(dir.join(&name)) else {
            continue;
        };
        let enabled = status.lines().next() == Some("enabled");
        let fixed = status
            .lines()
            .find_map(|l| l.strip_prefix("flags: "))
            .is_some_and(|f| f.contains('F'));
        if !(enabled && fixed) {
            continue;
        }
        for (arch, variant) in platforms_of(target) {
            let p = Platform {
                os: "linux".into(),
                architecture: arch.to_string(),
                variant: variant.map(str::to_string),
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// What this engine runs: its own platform first, then the emulated ones.
pub fn platforms(host: &Platform) -> Vec<Platform> {
    let mut out = vec![host.clone()];
    for p in platforms_in(Path::new(BINFMT_MISC)) {
        if p.architecture != host.architecture && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Unpacks the emulators shipped in `dir` (`qemu-<target>.conf` and
/// `qemu-<target>-static.zst`) into `store` and registers each with
/// binfmt_misc; returns the names registered. An emulator already registered
/// from the same bytes is left as it is (an engine restart inside one boot).
pub fn install(dir: &Path, store: &Path) -> Result<Vec<String>, EmulatorError> {
    mount_binfmt_misc()?;
    fs::create_dir_all(store).map_err(io_err(store))?;
    let mut confs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    confs.sort();
    let mut done = Vec::new();
    for conf in confs {
        let text = fs::read_to_string(&conf).map_err(io_err(&conf))?;
        let mut reg =
            Registration::parse(&text).ok_or_else(|| EmulatorError::BadLine(conf.clone()))?;
        let packed = conf.with_file_name(format!("{}-static.zst", reg.name));
        // Debian's emulators look at their own name (`…-binfmt-P`) for how
        // argv[0] was passed; the unpacked file keeps it.
        let file_name = Path::new(&reg.interpreter)
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| reg.name.clone().into());
        let target = store.join(file_name);
        let fresh = unpack(&packed, &target)?;
        reg.interpreter = target.display().to_string();
        register(&reg, fresh)?;
        done.push(reg.name);
    }
    Ok(done)
}

/// Unpacks `packed` to `target` unless the stamp beside it says it already
/// holds those bytes; returns whether it wrote a new file.
fn unpack(packed: &Path, target: &Path) -> Result<bool, EmulatorError> {
    let bytes = fs::read(packed).map_err(io_err(packed))?;
    let stamp = hex::encode(Sha256::digest(&bytes));
    let stamp_file = target.with_extension("sha256");
    if target.is_file() && fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(false);
    }
    let tmp = target.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut out = fs::File::create(&tmp)?;
        zstd::stream::copy_decode(&bytes[..], &mut out)?;
        out.flush()?;
        out.sync_all()?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        // A registration holding the old file keeps its inode; the rename never
        // changes what a running emulator reads.
        fs::rename(&tmp, target)?;
        fs::write(&stamp_file, &stamp)
    };
    write().map_err(io_err(target))?;
    Ok(true)
}

/// Registers `reg`, replacing an entry of the same name whose interpreter
/// differs or whose file was just replaced.
fn register(reg: &Registration, fresh: bool) -> Result<(), EmulatorError> {
    let dir = Path::new(BINFMT_MISC);
    let entry = dir.join(&reg.name);
    if let Ok(status) = fs::read_to_string(&entry) {
        let same = status
            .lines()
            .any(|l| l.strip_prefix("interpreter ") == Some(reg.interpreter.as_str()));
        if same && !fresh {
            return Ok(());
        }
        fs::write(&entry, "-1").map_err(io_err(&entry))?;
    }
    let register = dir.join("register");
    fs::write(&register, reg.line()).map_err(io_err(&register))
}

fn mount_binfmt_misc() -> Result<(), EmulatorError> {
    let dir = Path::new(BINFMT_MISC);
    if dir.join("register").exists() {
        return Ok(());
    }
    nix::mount::mount(
        Some("binfmt_misc"),
        dir,
        Some("binfmt_misc"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(EmulatorError::Mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AARCH64: &str = r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF";

    #[test]
    fn a_debian_line_round_trips_with_a_new_interpreter() {
        let mut r = Registration::parse(&format!("{AARCH64}\n")).unwrap();
        assert_eq!(r.name, "qemu-aarch64");
        assert_eq!(r.flags, "OPF");
        assert_eq!(r.line(), AARCH64);
        r.interpreter = "/var/lib/berth/emulators/aarch64-binfmt-P".into();
        assert!(r
            .line()
            .ends_with(r"\xff:/var/lib/berth/emulators/aarch64-binfmt-P:OPF"));
        assert!(Registration::parse(":qemu-x:M::magic").is_none());
        assert!(Registration::parse("").is_none());
    }

    #[test]
    fn only_enabled_fixed_qemu_entries_count() {
        let d = tempfile::tempdir().unwrap();
        let entry = |name: &str, enabled: bool, flags: &str| {
            let state = if enabled { "enabled" } else { "disabled" };
            fs::write(
                d.path().join(name),
                format!("{state}\ninterpreter /x\nflags: {flags}\noffset 0\nmagic 7f454c46\n"),
            )
            .unwrap();
        };
        entry("qemu-aarch64", true, "POF");
        entry("qemu-arm", true, "OCF");
        entry("qemu-riscv64", true, "P"); // not F: invisible inside containers
        entry("qemu-s390x", false, "F");
        entry("python3.11", true, "F");
        fs::write(d.path().join("status"), "enabled\n").unwrap();
        fs::write(d.path().join("register"), "").unwrap();
        let got: Vec<String> = platforms_in(d.path())
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, ["linux/arm64", "linux/arm/v7", "linux/arm/v6"]);
    }

    #[test]
    fn unpacking_writes_once_per_content() {
        let d = tempfile::tempdir().unwrap();
        let packed = d.path().join("qemu-x-static.zst");
        fs::write(
            &packed,
            zstd::encode_all(&b"\x7fELF-emulator"[..], 3).unwrap(),
        )
        .unwrap();
        let target = d.path().join("x-binfmt-P");
        assert!(unpack(&packed, &target).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"\x7fELF-emulator");
        assert!(!unpack(&packed, &target).unwrap());
        fs::write(&packed, zstd::encode_all(&b"\x7fELF-newer"[..], 3).unwrap()).unwrap();
        assert!(unpack(&packed, &target).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"\x7fELF-newer");
    }
}
