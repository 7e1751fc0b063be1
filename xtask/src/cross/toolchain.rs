//! The cross toolchain, set up idempotently under `target/tools/cross` (nothing
//! there that this cannot rebuild; nothing outside it replaced):
//! - Debian's `rustc-web` (bookworm-security: rustc, cargo, clippy and the std
//!   sources), unpacked, not installed: no prebuilt std exists for Windows or
//!   macOS here, so std is built from source (`-Z build-std`, `RUSTC_BOOTSTRAP=1`);
//! - mingw-w64 to link Windows binaries and Wine to run them; Wine 8 lacks
//!   `bcryptprimitives.dll`, whose `ProcessPrng` std imports, so a stand-in DLL
//!   built here with mingw serves it from `RtlGenRandom`;
//! - for macOS, which has no SDK here, a stub C compiler: build scripts that
//!   compile C for the target get empty objects, fine for checking, never linked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::deps;
use crate::proc::{output, run, target_dir};

/// Debian's packages for linking and running Windows binaries, and for
/// compiling the NSIS hooks' check.
const PACKAGES: &[&str] = &[
    "gcc-mingw-w64-x86-64",
    "binutils-mingw-w64-x86-64",
    "wine",
    "wine64",
    "nsis",
];

/// The rustc-web packages unpacked into the prefix (plus the versioned std).
const RUST_WEB: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev",
    "rust-web-src",
    "rust-web-clippy",
];

/// Tauri 2.12 needs rustc 1.90; bookworm itself has 1.85, bookworm-security newer.
const MIN_MINOR: u32 = 90;

const SHIM_C: &str = r#"/* Wine 8 (Debian 12) has no bcryptprimitives.dll; Rust's std for x86_64-pc-windows-gnu
   (>= 1.78) imports ProcessPrng from it. This stand-in serves it from RtlGenRandom. */
#include <windows.h>
BOOLEAN NTAPI SystemFunction036(PVOID buf, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
"#;

const APPLE_CC_STUB: &str = r#"#!/bin/sh
# Check-only stand-in for a macOS C compiler (there is no macOS SDK here): -E goes to
# the host preprocessor (cc-rs uses it to detect a GNU-style compiler); a compile
# writes an empty host object wherever -o says. Never for linking.
out=; pre=; last=
for a in "$@"; do last="$a"; done
while [ $# -gt 0 ]; do
  case "$1" in -E) pre=1 ;; -o) out="$2"; shift ;; -o*) out="${1#-o}" ;; esac
  shift
done
[ -n "$pre" ] && exec gcc -E "$last"
[ -n "$out" ] && exec gcc -c -x c /dev/null -o "$out"
exit 1
"#;

/// The set-up toolchain.
pub struct Toolchain {
    pub prefix: PathBuf,
}

impl Toolchain {
    fn rw(&self) -> PathBuf {
        self.prefix.join("rw")
    }

    pub fn wineprefix(&self) -> PathBuf {
        self.prefix.join("wineprefix")
    }

    /// The target directory of cross builds (another compiler than the
    /// workspace's, so a directory of its own).
    pub fn target_dir(&self) -> PathBuf {
        target_dir().join("cross")
    }

    /// `cargo` from rustc-web, in the environment every cross command runs in.
    pub fn cargo(&self) -> Command {
        let rw = self.rw();
        let bin = rw.join("usr/bin");
        let mut c = Command::new(bin.join("cargo"));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(paths).unwrap_or(path))
            .env("LD_LIBRARY_PATH", rw.join("usr/lib/x86_64-linux-gnu"))
            .env("RUSTC", bin.join("rustc"))
            .env("RUSTDOC", bin.join("rustdoc"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO")
            .env("CARGO_TARGET_DIR", self.target_dir())
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                "x86_64-w64-mingw32-gcc",
            )
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", "wine");
        self.wine_env(&mut c);
        let stub = self.prefix.join("bin/apple-cc-stub");
        for t in ["aarch64_apple_darwin", "x86_64_apple_darwin"] {
            c.env(format!("CC_{t}"), &stub)
                .env(format!("CXX_{t}"), &stub)
                .env(format!("AR_{t}"), "ar");
        }
        c
    }

    /// Console programs under Wine: this prefix, quiet, and no X display.
    pub fn wine_env(&self, c: &mut Command) {
        c.env("WINEPREFIX", self.wineprefix())
            .env("WINEDEBUG", "-all")
            .env_remove("DISPLAY");
    }
}

/// rustc-web's candidate version, after an `apt-get update` if the lists do not
/// offer a new enough one (a fresh machine's may predate bookworm-security's).
fn rust_web_version() -> anyhow::Result<String> {
    let candidate = || -> anyhow::Result<Option<String>> {
        let policy = output(Command::new("apt-cache").args(["policy", "rustc-web"]))?;
        Ok(policy
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: "))
            .map(str::to_string)
            .filter(|v| {
                let minor = v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
                minor.is_some_and(|m| m >= MIN_MINOR)
            }))
    };
    if let Some(v) = candidate()? {
        return Ok(v);
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    candidate()?.with_context(|| {
        format!("Debian offers no rustc-web >= 1.{MIN_MINOR} (it comes from bookworm-security)")
    })
}

fn unpack_rust_web(rw: &Path, version: &str) -> anyhow::Result<()> {
    let debs = rw.with_file_name("debs");
    let _ = std::fs::remove_dir_all(&debs);
    let _ = std::fs::remove_dir_all(rw);
    std::fs::create_dir_all(&debs)?;
    std::fs::create_dir_all(rw)?;
    let download = |pkgs: &[String]| {
        run(Command::new("apt-get")
            .arg("download")
            .args(pkgs)
            .current_dir(&debs))
    };
    download(
        &RUST_WEB
            .iter()
            .map(|p| format!("{p}={version}"))
            .collect::<Vec<_>>(),
    )?;
    let deb_files = || -> anyhow::Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(&debs)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect())
    };
    let depends = |deb: &Path| output(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Depends"));
    // The versioned std (libstd-rust-web-1.NN) the dev package names.
    let mut std_lib = None;
    for d in deb_files()? {
        for dep in depends(&d)?.split(',') {
            let name = dep.split_whitespace().next().unwrap_or_default();
            if name.starts_with("libstd-rust-web-1") {
                std_lib = Some(name.to_string());
            }
        }
    }
    let std_lib = std_lib.context("rustc-web names no libstd-rust-web-1.NN")?;
    download(&[format!("{std_lib}={version}")])?;
    // Their run-time libraries (libLLVM, libgit2, libcurl…) from bookworm itself.
    let mut needs = std::collections::BTreeSet::new();
    for d in deb_files()? {
        for dep in depends(&d)?.split(',') {
            let dep = dep.trim();
            let name = dep.split_whitespace().next().unwrap_or_default();
            if dep.is_empty()
                || name.contains("rust-web")
                || name.contains("rustc-web")
                || ["libc6", "libgcc-s1", "libstdc++6"].contains(&name)
            {
                continue;
            }
            needs.insert(dep.to_string());
        }
    }
    if !needs.is_empty() {
        let list = needs.into_iter().collect::<Vec<_>>().join(", ");
        run(Command::new("apt-get")
            .args(["satisfy", "-y", "-q", "--no-install-recommends"])
            .arg(&list)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()))?;
    }
    for d in deb_files()? {
        run(Command::new("dpkg-deb").arg("-x").arg(&d).arg(rw))?;
    }
    // -Z build-std needs only library/ of the rustc sources (1.2 GB -> ~60 MB).
    for src in std::fs::read_dir(rw.join("usr/src"))?.flatten() {
        if !src.file_name().to_string_lossy().starts_with("rustc-") {
            continue;
        }
        for e in std::fs::read_dir(src.path())?.flatten() {
            if e.file_name() != "library" {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    std::fs::remove_dir_all(&debs)?;
    std::fs::write(rw.join(".version"), version)?;
    Ok(())
}

fn wine_prefix(tc: &Toolchain) -> anyhow::Result<()> {
    let wp = tc.wineprefix();
    if !wp.join("system.reg").is_file() {
        let mut init = Command::new("wineboot");
        tc.wine_env(&mut init);
        run(init
            .arg("--init")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .stdin(Stdio::null()))?;
        let mut wait = Command::new("wineserver");
        tc.wine_env(&mut wait);
        let _ = wait.arg("-w").status();
    }
    let shim_dir = tc.prefix.join("shim");
    let dll = shim_dir.join("bcryptprimitives.dll");
    if !dll.is_file() {
        std::fs::create_dir_all(&shim_dir)?;
        let c = shim_dir.join("bcryptprimitives.c");
        std::fs::write(&c, SHIM_C)?;
        run(Command::new("x86_64-w64-mingw32-gcc")
            .args(["-O2", "-shared", "-Wl,--kill-at", "-o"])
            .arg(&dll)
            .arg(&c)
            .arg("-ladvapi32"))?;
    }
    std::fs::copy(
        &dll,
        wp.join("drive_c/windows/system32/bcryptprimitives.dll"),
    )
    .context("placing the bcryptprimitives stand-in in the Wine prefix")?;
    Ok(())
}

/// Sets everything up (each part only when missing or out of date).
pub fn ensure() -> anyhow::Result<Toolchain> {
    let tc = Toolchain {
        prefix: target_dir().join("tools/cross"),
    };
    deps::ensure_packages(PACKAGES)?;
    let version = rust_web_version()?;
    let rw = tc.rw();
    let have = std::fs::read_to_string(rw.join(".version")).unwrap_or_default();
    if have != version {
        println!("unpacking rustc-web {version} into {}", rw.display());
        unpack_rust_web(&rw, &version)?;
    }
    wine_prefix(&tc)?;
    let stub = tc.prefix.join("bin/apple-cc-stub");
    std::fs::create_dir_all(tc.prefix.join("bin"))?;
    std::fs::write(&stub, APPLE_CC_STUB)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))?;
    }
    let rustc = output(
        Command::new(rw.join("usr/bin/rustc"))
            .arg("-V")
            .env("LD_LIBRARY_PATH", rw.join("usr/lib/x86_64-linux-gnu")),
    )?;
    let mut wine = Command::new("wine");
    tc.wine_env(&mut wine);
    let wine = output(wine.arg("--version"))?;
    println!("cross toolchain: {} / {}", rustc.trim(), wine.trim());
    Ok(tc)
}
