//! `cargo xtask bench [GROUP…] [--quick]`: Berth next to Debian's dockerd, measured in
//! the same run on the same inputs, reported as one Markdown table in
//! `target/bench/report.md`. Each issue adds its group to `GROUPS`.

mod dockerd;
mod pull;
mod report;

use anyhow::bail;

use crate::deps;
use crate::proc::{cargo, run, step, workspace_root};
pub use report::{Report, Row};

type Group = fn(&Options, &mut Report) -> anyhow::Result<()>;

const GROUPS: &[(&str, Group)] = &[("pull", pull::bench)];

pub struct Options {
    pub iterations: usize,
    pub quick: bool,
}

pub fn bench(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for w in &wanted {
        if !GROUPS.iter().any(|(n, _)| n == w) {
            let known: Vec<&str> = GROUPS.iter().map(|(n, _)| *n).collect();
            bail!("unknown bench group {w:?}; known: {}", known.join(", "));
        }
    }
    std::env::set_current_dir(workspace_root())?;
    deps::ensure_packages(deps::PACKAGES)?;
    deps::ensure_packages(deps::BENCH_PACKAGES)?;
    step("building berth-agent (release)");
    run(cargo().args(["build", "--release", "-p", "berth-agent"]))?;
    std::env::set_var(
        "BERTH_AGENT_BIN",
        workspace_root().join("target/release/berth-agent"),
    );
    let opts = Options {
        iterations: if quick { 3 } else { 10 },
        quick,
    };
    let mut report = Report::default();
    for (name, group) in GROUPS {
        if wanted.is_empty() || wanted.contains(name) {
            step(&format!("bench {name}"));
            group(&opts, &mut report)?;
        }
    }
    let out = workspace_root().join("target/bench/report.md");
    report.write(&out)?;
    println!("\n{}\nwritten to {}", report.markdown(), out.display());
    Ok(())
}
