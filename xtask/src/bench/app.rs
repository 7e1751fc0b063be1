//! The `app` group: the desktop app's size, its cold start to first paint
//! under Xvfb, and its memory (the app and its WebKit processes) idle with
//! 100 containers listed, on a native Berth engine. Targets: ≤ 15 MB,
//! ≤ 1 s, ≤ 150 MB.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::{check_interrupted, Options};

const CONTAINERS: usize = 100;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xvfb() -> anyhow::Result<(Proc, String)> {
    for n in 150..200 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([
                &format!(":{n}"),
                "-screen",
                "0",
                "1280x860x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("Xvfb")?;
        let p = Proc(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return Ok((p, format!(":{n}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("no free X display")
}

/// Memory of `pid` and all its descendants, in MB, read in one walk: for
/// each of `fields` of `/proc/<pid>/smaps_rollup` (`Rss:`, `Pss:`,
/// `Pss_Anon:`) the sum over the tree.
fn tree_mem_mb<const N: usize>(pid: u32, fields: [&str; N]) -> [f64; N] {
    let mut total_kb = [0.0; N];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            for (field, total) in fields.iter().zip(total_kb.iter_mut()) {
                if let Some(kb) = rollup
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                {
                    *total += kb;
                }
            }
        }
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    total_kb.map(|kb| kb / 1024.0)
}

/// Starts the app and waits for its "first paint" line; (ms, the process).
fn launch(app: &Path, display: &str, docker_host: &str) -> anyhow::Result<(f64, Proc)> {
    let t = Instant::now();
    let mut child = Command::new(app)
        .env("DISPLAY", display)
        .env("DOCKER_HOST", docker_host)
        .env("NO_AT_BRIDGE", "1")
        .env("BERTH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting berth-desktop")?;
    let stderr = child.stderr.take().context("stderr")?;
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("first paint") {
                let _ = tx.send(t.elapsed());
            }
        }
    });
    let took = rx
        .recv_timeout(Duration::from_secs(60))
        .context("the app did not paint within 60 s")?;
    Ok((took.as_secs_f64() * 1000.0, proc))
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let app = crate::proc::target_dir().join("release/berth-desktop");
    let size_mb = std::fs::metadata(&app)
        .context("no release build of berth-desktop")?
        .len() as f64
        / 1e6;
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let engine = Engine::berth(&opts.berth_bin)?;
    engine
        .docker(&["pull", "-q", &image])
        .map_err(|e| anyhow::anyhow!("pull: {e}"))?;
    let docker_host = format!("unix://{}", engine.socket.display());
    let (_x, display) = xvfb()?;

    // Cold starts with an empty engine, then the idle footprint with 100 containers.
    let mut starts = Vec::new();
    for i in 0..opts.iterations.min(5) {
        check_interrupted()?;
        let (ms, p) = launch(&app, &display, &docker_host)?;
        println!("  start {}: first paint after {ms:.0} ms", i + 1);
        starts.push(ms);
        drop(p);
    }
    for i in 0..CONTAINERS {
        check_interrupted()?;
        engine
            .docker(&[
                "create",
                "--name",
                &format!("app-bench-{i}"),
                &image,
                "true",
            ])
            .map_err(|e| anyhow::anyhow!("create: {e}"))?;
    }
    let (_, p) = launch(&app, &display, &docker_host)?;
    std::thread::sleep(Duration::from_secs(5));
    let [rss, pss, anon] = tree_mem_mb(p.0.id(), ["Rss:", "Pss:", "Pss_Anon:"]);
    let (rss, pss, anon): (Samples, Samples, Samples) =
        (Ok(vec![rss]), Ok(vec![pss]), Ok(vec![anon]));
    drop(p);

    report.notes.push(format!(
        "app: release berth-desktop under Xvfb on a native engine; first paint is the page's \
         first frame, logged by the app; memory sums the app and its WebKit processes, idle 5 s \
         after listing {CONTAINERS} containers: RSS counts each shared library once per process, \
         PSS shares such pages out, and the anonymous part is the app's own heap and the \
         page's. Targets: ≤ 15 MB, ≤ 1 s, ≤ 150 MB"
    ));
    for (metric, unit, decimals, samples) in [
        (
            "desktop app binary (UI embedded, VM image excluded)",
            "MB",
            1,
            Ok(vec![size_mb]),
        ),
        ("desktop app cold start → first paint", "ms", 0, Ok(starts)),
        (
            "desktop app RSS, idle, 100 containers listed (+ WebKit)",
            "MB",
            0,
            rss,
        ),
        ("the same, PSS", "MB", 0, pss),
        ("the same, anonymous memory only (PSS)", "MB", 0, anon),
    ] {
        report.rows.push(Row {
            metric: metric.into(),
            unit,
            decimals,
            better: Better::Lower,
            berth: samples,
            dockerd: Ok(Vec::new()),
        });
    }
    Ok(())
}
