//! `cargo xtask bundle [--debug] [--formats deb,appimage]`: the installers this
//! machine can build, with Tauri's bundler (`@tauri-apps/cli`, from the
//! frontend's npm packages). The per-OS configuration lives in `installer/`
//! (`linux.json`, `macos.json`, `windows.json`); its `@NAME@` placeholders are
//! filled with this build's paths and merged over `app/src-tauri/tauri.conf.json`.
//!
//! Linux gives a `.deb` (copied to `target/bundle/berth_<version>_<arch>.deb`)
//! and, where GitHub is reachable, an AppImage: Tauri's AppImage step downloads
//! `linuxdeploy` and the AppImage runtime, which no Debian package provides, so
//! offline it is reported as skipped rather than failing the whole command.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::deps;
use crate::proc::{cargo, run, step, target_dir, workspace_root};

const USAGE: &str = "usage: cargo xtask bundle [--debug] [--formats deb,appimage]";

struct Options {
    debug: bool,
    formats: Vec<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        debug: false,
        formats: vec!["deb".into(), "appimage".into()],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--debug" => o.debug = true,
            "--formats" => {
                let list = it.next().context("--formats needs a value")?;
                o.formats = list.split(',').map(str::to_string).collect();
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    for f in &o.formats {
        if !matches!(f.as_str(), "deb" | "appimage") {
            bail!("unknown format {f:?} (deb or appimage here)\n{USAGE}");
        }
    }
    Ok(o)
}

/// The values the `@NAME@` placeholders in `installer/*.json` stand for.
fn placeholders(profile_dir: &Path, arch: &str) -> Vec<(&'static str, String)> {
    let target = target_dir();
    let qemu_package = if arch == "aarch64" {
        "qemu-system-arm"
    } else {
        "qemu-system-x86"
    };
    vec![
        ("@BIN@", profile_dir.display().to_string()),
        ("@TOOLS@", target.join("tools/bin").display().to_string()),
        (
            "@VM_IMAGE@",
            target.join("vm-image").join(arch).display().to_string(),
        ),
        (
            "@TUTORIAL@",
            target
                .join("tutorial/getting-started.tar")
                .display()
                .to_string(),
        ),
        ("@ARCH@", arch.to_string()),
        ("@QEMU_PACKAGE@", qemu_package.to_string()),
        (
            "@INSTALLER@",
            workspace_root().join("installer").display().to_string(),
        ),
    ]
}

/// `template` with every placeholder filled; an unknown one left over is an error.
fn fill(template: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let mut s = template.to_string();
    for (k, v) in values {
        s = s.replace(k, v);
    }
    if let Some(start) = s.find('@') {
        let rest = &s[start + 1..];
        if let Some(end) = rest.find('@') {
            let name = &rest[..end];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                bail!("installer config: unknown placeholder @{name}@");
            }
        }
    }
    Ok(s)
}

pub fn bundle(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    if !cfg!(target_os = "linux") {
        bail!(
            "this machine builds the Linux bundles only; on macOS and Windows run \
             `tauri build --config installer/macos.json` (or windows.json) as installer/README.md says"
        );
    }
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    let arch = std::env::consts::ARCH;

    step("tools");
    deps::ensure_packages(deps::PACKAGES)?;
    deps::ensure_packages(crate::vm_image::VM_PACKAGES)?;
    deps::ensure_packages(deps::DESKTOP_PACKAGES)?;
    deps::ensure_vhost_device_vsock()?;
    deps::ensure_virtiofsd()?;

    step("frontend");
    deps::build_frontend(false)?;

    step("binaries");
    let mut build = cargo();
    build.args(["build", "-p", "berth", "-p", "berth-agent"]);
    if o.debug {
        // `tauri bundle` packs the debug app as `cargo build` left it; a release
        // app is built by `tauri build` itself (with its custom-protocol feature).
        build.args(["-p", "berth-desktop"]);
    } else {
        build.arg("--release");
    }
    run(&mut build)?;

    step("vm image");
    crate::vm_image::vm_image(&[])?;

    let profile_dir = if o.debug {
        stage_debug()?
    } else {
        target_dir().join("release")
    };
    let template = std::fs::read_to_string(root.join("installer/linux.json"))
        .context("reading installer/linux.json")?;
    let config = fill(&template, &placeholders(&profile_dir, arch))?;
    let out = target_dir().join("bundle");
    std::fs::create_dir_all(&out)?;
    let config_path = out.join("linux.json");
    std::fs::write(&config_path, config)?;

    let mut made = Vec::new();
    for format in &o.formats {
        step(&format!("bundle: {format}"));
        let mut tauri = tauri_cli(&root);
        if o.debug {
            // Tauri finds the app (and writes its bundles) under the target
            // dir: point it at the stripped copies.
            tauri
                .args(["bundle", "--debug"])
                .env("CARGO_TARGET_DIR", target_dir().join("bundle/stage"));
        } else {
            tauri.arg("build");
        }
        tauri
            .args(["--bundles", format, "--ci", "--config"])
            .arg(&config_path);
        match (format.as_str(), run(&mut tauri)) {
            ("deb", Ok(())) => made.push(copy_deb(&profile_dir, &out, arch)?),
            ("appimage", Ok(())) => {
                made.extend(find(&profile_dir.join("bundle/appimage"), "AppImage")?)
            }
            ("appimage", Err(e)) => println!(
                "AppImage not built ({e:#}): Tauri's AppImage step downloads linuxdeploy and \
                 the AppImage runtime from GitHub, which this machine may not reach"
            ),
            (_, Err(e)) => return Err(e),
            _ => {}
        }
    }
    step("bundles");
    for p in &made {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        println!("  {}  {:.1} MB", p.display(), size as f64 / 1e6);
    }
    Ok(())
}

/// The binaries a package ships from the cargo build.
const BINARIES: [&str; 4] = [
    "berth-desktop",
    "berth",
    "docker-credential-berth",
    "berth-agent",
];

/// Copies of the debug binaries without their DWARF (about 800 MB with it,
/// 130 MB without), in `target/bundle/stage/debug`, which then stands for the
/// profile directory. Copies, because Tauri patches the app binary it packs.
fn stage_debug() -> anyhow::Result<PathBuf> {
    let from = target_dir().join("debug");
    let stage = target_dir().join("bundle/stage/debug");
    std::fs::create_dir_all(&stage)?;
    for b in BINARIES {
        let dest = stage.join(b);
        std::fs::copy(from.join(b), &dest)
            .with_context(|| format!("copying {b} (is the debug build there?)"))?;
        run(Command::new("strip").arg("--strip-debug").arg(&dest))?;
    }
    Ok(stage)
}

/// The npm-installed Tauri CLI, run where `tauri.conf.json` is.
fn tauri_cli(root: &Path) -> Command {
    let mut c = Command::new(root.join("frontend/node_modules/.bin/tauri"));
    c.current_dir(root.join("app/src-tauri"));
    c
}

fn find(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    Ok(v)
}

/// Tauri names the package after the product (`Berth_…`); Debian's convention
/// (and the docs) say `berth_<version>_<arch>.deb`.
fn copy_deb(profile_dir: &Path, out: &Path, arch: &str) -> anyhow::Result<PathBuf> {
    let debs = find(&profile_dir.join("bundle/deb"), "deb")?;
    let version = env!("CARGO_PKG_VERSION");
    let deb_arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let built = debs
        .into_iter()
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .contains(&format!("_{version}_{deb_arch}"))
            })
        })
        .context("tauri made no .deb for this version")?;
    let dest = out.join(format!("berth_{version}_{deb_arch}.deb"));
    std::fs::copy(&built, &dest).with_context(|| format!("copying {}", built.display()))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_installer_config_fills_completely_and_stays_json() {
        let values = placeholders(Path::new("/t/release"), "x86_64");
        for os in ["linux", "macos", "windows"] {
            let path = workspace_root().join(format!("installer/{os}.json"));
            let text = std::fs::read_to_string(&path).unwrap();
            let filled = fill(&text, &values).unwrap();
            let v: serde_json::Value = serde_json::from_str(&filled).unwrap();
            assert_eq!(v["bundle"]["active"], true, "{os}");
        }
        let linux: serde_json::Value = serde_json::from_str(
            &fill(
                &std::fs::read_to_string(workspace_root().join("installer/linux.json")).unwrap(),
                &values,
            )
            .unwrap(),
        )
        .unwrap();
        let files = &linux["bundle"]["linux"]["deb"]["files"];
        assert_eq!(files["/usr/bin/berth"], "/t/release/berth");
        assert!(files["/usr/share/berth/vm-image/x86_64"]
            .as_str()
            .unwrap()
            .ends_with("vm-image/x86_64"));
        // Every file the package ships from the repo exists.
        for v in files.as_object().unwrap().values() {
            let p = v.as_str().unwrap();
            if p.contains("/installer/") {
                assert!(Path::new(p).is_file(), "{p}");
            }
        }
    }

    #[test]
    fn a_misspelt_placeholder_is_an_error() {
        assert!(fill(
            "{\"a\": \"@BINN@/x\"}",
            &placeholders(Path::new("/t"), "x86_64")
        )
        .is_err());
        assert!(parse(&["--formats".into(), "msi".into()]).is_err());
    }
}
