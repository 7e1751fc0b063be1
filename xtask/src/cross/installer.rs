//! The Windows installers' part that can run here: `installer/windows/hooks.nsh`
//! (the NSIS hooks that put the install folder on every user's Path) compiled
//! with Debian's `makensis` into a small installer around the real `berth.exe`,
//! installed and uninstalled silently under Wine, and the machine's `Path`
//! read back from Wine's registry after each.
//!
//! Tauri's own installer cannot be built here (its bundler downloads NSIS
//! plugins from GitHub), so the harness stands in for it: the same
//! `NSIS_HOOK_POSTINSTALL` / `NSIS_HOOK_PREUNINSTALL` macros, in the same
//! order around the copy, with an install folder holding a space as
//! `C:\Program Files\Berth` does. It is an amd64 installer because this
//! machine's Wine runs 64-bit programs only; Tauri's is x86, and what the hooks
//! run is the same `berth.exe path-entry`. The MSI's fragment (`path.wxs`,
//! Windows Installer's Environment table) is only checked for consistency with
//! `windows.json`: Debian's `wixl` does not support `Environment`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::toolchain::Toolchain;
use crate::proc::{output, run, workspace_root};

const MACHINE_ENV: &str = r"HKLM\System\CurrentControlSet\Control\Session Manager\Environment";

pub fn check(tc: &Toolchain, windows_dir: &Path, work: &Path) -> anyhow::Result<()> {
    config_is_consistent()?;
    let folder = format!("Berth hooks check {}", std::process::id());
    let install_dir = format!(r"C:\Program Files\{folder}");
    std::fs::create_dir_all(work)?;
    let script = work.join("hooks-check.nsi");
    std::fs::write(
        &script,
        harness(
            &workspace_root().join("installer/windows/hooks.nsh"),
            &windows_dir.join("berth.exe"),
            &folder,
        ),
    )?;
    run(Command::new("makensis").args(["-V2"]).arg(&script))?;
    let setup = work.join("berth-hooks-check.exe");
    let before = machine_path(tc)?;

    let mut install = Command::new("wine");
    tc.wine_env(&mut install);
    run(install.arg(&setup).arg("/S"))?;
    wait_for(tc, "the install folder on the machine's Path", |path| {
        on_path(path, &install_dir)
    })?;
    println!("installed: {install_dir} is on every user's Path");

    // The uninstaller copies itself to %TEMP% and returns at once: wait for
    // its effects.
    let mut uninstall = Command::new("wine");
    tc.wine_env(&mut uninstall);
    run(uninstall
        .arg(format!(r"{install_dir}\uninstall.exe"))
        .arg("/S"))?;
    wait_for(
        tc,
        "the machine's Path as it was before the install",
        |path| path == before,
    )?;
    println!("uninstalled: {install_dir} is off the Path, the rest of it as it was");
    Ok(())
}

fn harness(hooks: &Path, berth_exe: &Path, folder: &str) -> String {
    format!(
        r#"Unicode true
Target amd64-unicode
!include "{hooks}"
Name "Berth hooks check"
OutFile "berth-hooks-check.exe"
RequestExecutionLevel admin
InstallDir "$PROGRAMFILES64\{folder}"
Section
  SetOutPath "$INSTDIR"
  File "/oname=berth.exe" "{berth}"
  !insertmacro NSIS_HOOK_POSTINSTALL
  WriteUninstaller "$INSTDIR\uninstall.exe"
SectionEnd
Section Uninstall
  !insertmacro NSIS_HOOK_PREUNINSTALL
  Delete "$INSTDIR\berth.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
SectionEnd
"#,
        hooks = hooks.display(),
        berth = berth_exe.display(),
    )
}

fn on_path(path: &str, dir: &str) -> bool {
    path.split(';')
        .any(|e| e.trim_end_matches('\\').eq_ignore_ascii_case(dir))
}

/// The machine's `Path` as `reg query` prints it.
fn machine_path(tc: &Toolchain) -> anyhow::Result<String> {
    let mut q = Command::new("wine");
    tc.wine_env(&mut q);
    let out = output(
        q.args(["reg", "query", MACHINE_ENV, "/v", "PATH"])
            .stdin(Stdio::null()),
    )?;
    out.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()?.eq_ignore_ascii_case("path") && f.next()?.starts_with("REG_"))
                .then(|| f.collect::<Vec<_>>().join(" "))
        })
        .context("no PATH in Wine's machine environment")
}

fn wait_for(tc: &Toolchain, what: &str, ok: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let path = machine_path(tc)?;
        if ok(&path) {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("timed out waiting for {what}; the machine's Path is {path}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `windows.json` names hook and fragment files that exist, and components
/// its fragments define.
fn config_is_consistent() -> anyhow::Result<()> {
    let installer = workspace_root().join("installer");
    let conf: serde_json::Value = serde_json::from_slice(
        &std::fs::read(installer.join("windows.json")).context("reading windows.json")?,
    )?;
    let file = |v: &serde_json::Value| -> anyhow::Result<String> {
        let p = v
            .as_str()
            .context("a path in windows.json")?
            .replace("@INSTALLER@", &installer.to_string_lossy());
        std::fs::read_to_string(&p).with_context(|| format!("windows.json names {p}"))
    };
    let w = &conf["bundle"]["windows"];
    let hooks = file(&w["nsis"]["installerHooks"])?;
    for m in ["NSIS_HOOK_POSTINSTALL", "NSIS_HOOK_PREUNINSTALL"] {
        if !hooks.contains(&format!("!macro {m}")) {
            bail!("hooks.nsh defines no {m}");
        }
    }
    let mut fragments = String::new();
    for f in w["wix"]["fragmentPaths"].as_array().into_iter().flatten() {
        fragments += &file(f)?;
    }
    for c in w["wix"]["componentRefs"].as_array().into_iter().flatten() {
        let id = c.as_str().context("a component id")?;
        if !fragments.contains(&format!(r#"<Component Id="{id}""#)) {
            bail!("windows.json refers to component {id}, which no fragment defines");
        }
    }
    if !fragments.contains(r#"Value="[INSTALLDIR]""#) {
        bail!("the MSI fragment does not put INSTALLDIR on the Path");
    }
    Ok(())
}
