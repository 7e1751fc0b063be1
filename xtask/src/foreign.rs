//! The other architecture's busybox, for the tests that run a foreign image
//! through the VM's binfmt_misc emulators: Debian bookworm's `busybox-static`
//! for arm64 on an x86_64 machine (amd64 on an arm64 one), fetched with a
//! private apt state (see `apt.rs`) and unpacked to
//! `target/tools/foreign/<arch>/busybox`. Tests find that folder through
//! `BERTH_FOREIGN`.

use std::path::PathBuf;

use anyhow::Context;

use crate::apt::PrivateApt;
use crate::proc::workspace_root;

/// The Debian architecture the tests emulate on this machine.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "amd64",
        _ => "arm64",
    }
}

pub fn ensure() -> anyhow::Result<PathBuf> {
    let arch = arch();
    let out = workspace_root()
        .join("target/tools/foreign")
        .join(arch)
        .join("busybox");
    if out.is_file() {
        println!("{arch} busybox present");
        return Ok(out);
    }
    let state = workspace_root().join(format!("target/tools/apt-{arch}"));
    let apt = PrivateApt::new(
        &state,
        &format!(
            "deb [arch={arch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"
        ),
        &[
            &format!("APT::Architecture={arch}"),
            &format!("APT::Architectures={arch}"),
        ],
    )?;
    println!(
        "fetching busybox-static for {arch} (apt state in {})",
        state.display()
    );
    apt.fetch(&["busybox-static"])?;
    let from = apt.root().join("bin/busybox");
    let dir = out.parent().context("output folder")?;
    std::fs::create_dir_all(dir)?;
    std::fs::copy(&from, &out).with_context(|| format!("copying {}", from.display()))?;
    println!("{arch} busybox in {}", out.display());
    Ok(out)
}
