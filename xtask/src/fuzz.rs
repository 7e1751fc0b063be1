//! `cargo xtask fuzz`: the cargo-fuzz targets in `fuzz/` (image references, API
//! requests, layer tars, Dockerfiles, host↔guest framing, credential helper input).
//!
//! CI has only the stable toolchain; cargo-fuzz needs nightly flags, so the build
//! runs with `RUSTC_BOOTSTRAP=1` (AddressSanitizer works that way: the stable
//! toolchain ships its runtime). The build goes to `target/fuzz`, apart from the
//! main build and its lock. Each run's corpus grows in `target/fuzz/corpus/<target>`,
//! seeded from the committed `fuzz/corpus/<target>` (with `fuzz/dicts/<target>.dict`
//! as libFuzzer's dictionary where there is one); a crash leaves its input in
//! `fuzz/artifacts/<target>/`, and `target/fuzz/<host>/release/<target> <file>`
//! (`debug/` after a bounded run) replays it.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::proc::{cargo, human, run, show, step, target_dir, workspace_root};

pub const TARGETS: &[&str] = &[
    "image_reference",
    "api_request",
    "layer_unpack",
    "dockerfile",
    "proto_framing",
    "credential_helper",
];

const SANITIZER: &str = "address";
/// `cargo xtask fuzz`: per target, unless `--seconds` says otherwise.
const LONG_SECONDS: u64 = 600;
/// The bounded run in `cargo xtask test`: per target, and at most this many inputs.
const SHORT_SECONDS: u64 = 20;
const SHORT_RUNS: u64 = 2_000_000;

pub fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    let mut seconds = LONG_SECONDS;
    let mut bounded = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().context("--seconds needs a number")?;
                seconds = v.parse().with_context(|| format!("--seconds {v:?}"))?;
            }
            "--bounded" => bounded = true,
            other => match TARGETS.iter().find(|t| **t == other) {
                Some(t) => targets.push(*t),
                None => bail!("unknown fuzz target or flag {other:?} (targets: {TARGETS:?})"),
            },
        }
    }
    if bounded {
        return self::bounded();
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    ensure_cargo_fuzz()?;
    let bins = build(Profile::Release)?;
    let limits = Limits {
        seconds,
        runs: None,
        live: true,
    };
    run_all(&bins, &targets, &limits)
}

/// What `cargo xtask test` runs: cargo-fuzz installed if missing, every target built
/// once, then each run for [`SHORT_SECONDS`]; any crash fails the step.
pub fn bounded() -> anyhow::Result<()> {
    ensure_cargo_fuzz()?;
    let bins = build(Profile::Dev)?;
    let limits = Limits {
        seconds: SHORT_SECONDS,
        runs: Some(SHORT_RUNS),
        live: false,
    };
    run_all(&bins, TARGETS, &limits)
}

struct Limits {
    seconds: u64,
    runs: Option<u64>,
    /// Echo libFuzzer's progress lines (long runs); otherwise one summary per target.
    live: bool,
}

/// `cargo fuzz build` of every target, into `target/fuzz`.
fn cargo_fuzz_build() -> Command {
    let mut cmd = cargo();
    cmd.current_dir(workspace_root())
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "--fuzz-dir", "fuzz", "-s", SANITIZER])
        .arg("--target-dir")
        .arg(target_dir().join("fuzz"));
    cmd
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let version = || {
        cargo()
            .args(["fuzz", "--version"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(v) = version() {
        println!("{v}");
        return Ok(());
    }
    let mut install = cargo();
    // Pinned, as every tool the suites install: a new release cannot change CI.
    install.args(["install", "--locked", "cargo-fuzz@0.13.2"]);
    println!("cargo-fuzz missing; running `{}`", show(&install));
    run(&mut install)?;
    match version() {
        Some(v) => {
            println!("{v}");
            Ok(())
        }
        None => bail!("cargo-fuzz installed but `cargo fuzz --version` does not run"),
    }
}

#[derive(Clone, Copy)]
enum Profile {
    /// Optimized: ~30× the executions per second, for long runs.
    Release,
    /// Unoptimized: builds in half the time (6 rather than 12 minutes from cold on
    /// two cores, most of it the 368 instrumented dependencies), which is what a
    /// 20-second smoke run in every CI run can afford.
    Dev,
}

/// Builds every target; returns the directory of their binaries.
fn build(profile: Profile) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    let mut cmd = cargo_fuzz_build();
    let dir = match profile {
        Profile::Release => "release",
        Profile::Dev => {
            cmd.arg("--dev");
            "debug"
        }
    };
    run(&mut cmd)?;
    println!("fuzz targets built in {}", human(started.elapsed()));
    Ok(target_dir().join("fuzz").join(host_triple()?).join(dir))
}

/// cargo-fuzz builds for the host triple, which names the output directory.
fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("running `rustc -vV`")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("`rustc -vV` names no host")
}

struct Outcome {
    target: &'static str,
    execs: Option<u64>,
    took: Duration,
    error: Option<String>,
}

fn run_all(bins: &Path, targets: &[&'static str], limits: &Limits) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for &target in targets {
        if limits.live {
            step(&format!("fuzz {target} ({} s)", limits.seconds));
        }
        let t = Instant::now();
        let (execs, error) = match run_one(bins, target, limits) {
            Ok(execs) => (execs, None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        let o = Outcome {
            target,
            execs,
            took: t.elapsed(),
            error,
        };
        println!("{}", summary(&o));
        outcomes.push(o);
    }
    if limits.live {
        step("fuzz summary");
        for o in &outcomes {
            println!("{}", summary(o));
        }
    }
    println!("fuzzing took {}", human(started.elapsed()));
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.error.is_some())
        .map(|o| o.target)
        .collect();
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

fn summary(o: &Outcome) -> String {
    let execs = o
        .execs
        .map(|n| format!("{n} execs"))
        .unwrap_or_else(|| "? execs".into());
    let verdict = match &o.error {
        None => "ok".to_string(),
        Some(e) => format!("FAILED: {e}"),
    };
    format!(
        "{:<18} {execs:>14} in {:>7}  {verdict}",
        o.target,
        human(o.took)
    )
}

/// Runs one target's binary; returns libFuzzer's count of executed inputs. Its whole
/// output goes to `target/fuzz/logs/<target>.log`.
fn run_one(bins: &Path, target: &str, limits: &Limits) -> anyhow::Result<Option<u64>> {
    let root = workspace_root();
    let fuzz_target = target_dir().join("fuzz");
    let corpus = fuzz_target.join("corpus").join(target);
    let seeds = root.join("fuzz/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    let logs = fuzz_target.join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let mut log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    // The binary itself rather than `cargo fuzz run`, which would check the build
    // again per target.
    let mut cmd = Command::new(bins.join(target));
    cmd.current_dir(&root)
        .env("ASAN_OPTIONS", "detect_odr_violation=0")
        // The first corpus directory takes new inputs; the committed seeds are only read.
        .arg(&corpus)
        .arg(&seeds)
        .args([
            format!("-artifact_prefix={}/", artifacts.display()),
            format!("-max_total_time={}", limits.seconds),
            "-timeout=10".into(),
            "-print_final_stats=1".into(),
        ]);
    if let Some(runs) = limits.runs {
        cmd.arg(format!("-runs={runs}"));
    }
    let dict = root.join("fuzz/dicts").join(format!("{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    // libFuzzer reports on stderr; stdout only has what a target prints.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}` (built?)", show(&cmd)))?;
    let mut execs = None;
    let mut tail: VecDeque<String> = VecDeque::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            writeln!(log, "{line}")?;
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                execs = n.trim().parse().ok();
            }
            if limits.live && is_progress(&line) {
                println!("{line}");
            }
            tail.push_back(line);
            if tail.len() > 80 {
                tail.pop_front();
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        println!("--- last lines of {} ---", log_path.display());
        for line in &tail {
            println!("{line}");
        }
        let artifact = artifact_of(&tail);
        bail!(
            "{status}{}; full output in {}",
            artifact
                .map(|a| format!(", input saved as {}", a.display()))
                .unwrap_or_default(),
            log_path.display()
        );
    }
    Ok(execs)
}

/// libFuzzer's periodic and final status lines (`#1024 pulse …`, `Done …`).
fn is_progress(line: &str) -> bool {
    line.contains("pulse") || line.starts_with("Done ") || line.contains("INITED")
}

/// The crash input libFuzzer saved: "Test unit written to <path>".
fn artifact_of(lines: &VecDeque<String>) -> Option<PathBuf> {
    lines.iter().rev().find_map(|l| {
        l.split_once("Test unit written to ")
            .map(|(_, p)| Path::new(p.trim()).to_path_buf())
    })
}
