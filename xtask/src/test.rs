//! `cargo xtask test`: every suite, as CI runs it.

use std::time::Instant;

use crate::deps;
use crate::proc::{cargo, run, step, workspace_root};

pub fn test(extra: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    std::env::set_current_dir(workspace_root())?;
    deps::ensure_packages(deps::PACKAGES)?;
    deps::ensure_docker_cli()?;
    let nextest = deps::ensure_nextest();

    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("cargo clippy");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("build berth-agent (the e2e suites run the binary)");
    run(cargo().args(["build", "-p", "berth-agent"]))?;
    if nextest {
        step("cargo nextest run");
        run(cargo()
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .args(extra))?;
    } else {
        step("cargo test (cargo-nextest unavailable)");
        run(cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(extra))?;
    }
    println!("\nall suites passed in {:.0?}", started.elapsed());
    Ok(())
}
