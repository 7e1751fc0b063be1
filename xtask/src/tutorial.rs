//! `cargo xtask tutorial-image`: `berth/getting-started`, built from `tutorial/Dockerfile`
//! by Berth's own engine (a throwaway `berth-agent daemon` on a scratch root) and saved
//! with `docker save` as the OCI archive the engine preloads on first start
//! (`berth-agent daemon --preload`). The VM image, the .deb and `cargo xtask run` ship it.
//! Rebuilt only when the tutorial's files or the busybox it carries change.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::bench::engine::Engine;
use crate::deps;
use crate::proc::{run, step, target_dir, workspace_root};

pub const IMAGE: &str = "berth/getting-started:latest";
/// Debian's busybox-static: the tutorial image's only binary.
const BUSYBOX: &str = "/bin/busybox";
/// The default bridge of the engine that builds the image (never the user's `berth0`).
const BRIDGE: &str = "berthtut0";

/// `cargo xtask tutorial-image [--agent PATH]`.
pub fn tutorial_image(args: &[String]) -> anyhow::Result<()> {
    let agent = match args {
        [] => {
            step("build berth-agent (release)");
            run(crate::proc::cargo().args(["build", "--release", "-p", "berth-agent"]))?;
            target_dir().join("release/berth-agent")
        }
        [flag, path] if flag == "--agent" => PathBuf::from(path),
        _ => anyhow::bail!("usage: cargo xtask tutorial-image [--agent PATH]"),
    };
    let out = archive(&agent)?;
    println!("{}", out.display());
    Ok(())
}

/// The archive, built with `agent` unless its inputs are unchanged since the last build.
pub fn archive(agent: &Path) -> anyhow::Result<PathBuf> {
    step("tutorial image");
    deps::ensure_packages(&["busybox-static"])?;
    deps::ensure_docker_cli()?;
    let source = workspace_root().join("tutorial");
    let out_dir = target_dir().join("tutorial");
    let out = out_dir.join("getting-started.tar");
    let stamp_file = out_dir.join("inputs.sha256");

    let files = walk(&source)?;
    let mut inputs = Sha256::new();
    for f in &files {
        inputs.update(f.strip_prefix(&source)?.to_string_lossy().as_bytes());
        inputs.update(std::fs::read(f)?);
        inputs.update(mode(f)?.to_le_bytes());
    }
    inputs.update(std::fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX}"))?);
    inputs.update(include_bytes!("tutorial.rs"));
    let stamp = hex::encode(inputs.finalize());
    if out.is_file() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp) {
        println!("{IMAGE} up to date in {}", out.display());
        return Ok(out);
    }

    // The build context: the tutorial folder plus the busybox binary it copies in.
    let context = out_dir.join("context");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(&out_dir)?;
    run(Command::new("cp").arg("-a").arg(&source).arg(&context))?;
    std::fs::copy(BUSYBOX, context.join("busybox"))?;

    let engine = Engine::berth_on(agent, BRIDGE)?;
    let context_arg = context.to_string_lossy().into_owned();
    engine
        .docker_env(
            &["build", "-q", "-t", IMAGE, &context_arg],
            &[("DOCKER_BUILDKIT", "0")],
        )
        .map_err(|e| anyhow::anyhow!("{e}{}", engine.log_tail()))?;
    let tmp = out_dir.join("getting-started.tar.tmp");
    let tmp_arg = tmp.to_string_lossy().into_owned();
    engine
        .docker(&["save", "-o", &tmp_arg, IMAGE])
        .map_err(|e| anyhow::anyhow!("{e}{}", engine.log_tail()))?;
    drop(engine);
    std::fs::rename(&tmp, &out)?;
    std::fs::write(&stamp_file, &stamp)?;
    let _ = std::fs::remove_dir_all(&context);
    println!(
        "{IMAGE}: {} ({:.1} MB)",
        out.display(),
        std::fs::metadata(&out)?.len() as f64 / 1e6
    );
    Ok(out)
}

/// Every file under `dir`, sorted, so the input hash does not depend on readdir order.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn mode(p: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(p)?.permissions().mode())
}
