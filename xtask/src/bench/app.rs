//! The `app` group: the desktop app's size, its cold start to first paint
//! under Xvfb, and its memory idle with 100 and then 1,000 containers listed,
//! on a native Berth engine: RSS, PSS and anonymous memory of the app process,
//! WebKit's web process and its network process, and their sum. Targets:
//! ≤ 15 MB, ≤ 1 s, ≤ 150 MB PSS.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row};
use super::{check_interrupted, Options};

/// The lists measured, one after the other.
const CONTAINERS: [usize; 2] = [100, 1000];

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

/// RSS, PSS and anonymous PSS in MB of each process in `pid`'s tree, by
/// its name (`/proc/<pid>/comm`: `berth-desktop`, `WebKitWebProces`,
/// `WebKitNetworkPr`), from `/proc/<pid>/smaps_rollup`.
fn tree_mem_mb(pid: u32) -> Vec<(String, [f64; 3])> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            let field = |name: &str| {
                rollup
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
                    / 1024.0
            };
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            out.push((
                comm.trim().to_string(),
                [field("Rss:"), field("Pss:"), field("Pss_Anon:")],
            ));
        }
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    out
}

fn row(metric: &str, decimals: usize, berth: Vec<f64>) -> Row {
    Row {
        metric: metric.into(),
        unit: "MB",
        decimals,
        better: Better::Lower,
        berth: Ok(berth),
        dockerd: Ok(Vec::new()),
    }
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

/// The webview's own floor: a window with WebKitGTK showing one line of
/// HTML, through PyGObject (Debian's bindings of the same libwebkit2gtk),
/// drawing as the app does (no compositing).
const BLANK_PAGE: &str = r#"
import gi
gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2
w = Gtk.Window()
w.set_default_size(1200, 780)
v = WebKit2.WebView()
w.add(v)
v.load_html("<html><body><h1>Containers</h1></body></html>", "about:blank")
w.show_all()
Gtk.main()
"#;

/// Each process's PSS with the blank page: (UI, web, network).
fn blank_page(display: &str) -> anyhow::Result<[f64; 3]> {
    let child = Command::new("/usr/bin/python3")
        .args(["-c", BLANK_PAGE])
        .env("DISPLAY", display)
        .env("NO_AT_BRIDGE", "1")
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("python3 with PyGObject (python3-gi)")?;
    let p = Proc(child);
    std::thread::sleep(Duration::from_secs(8));
    let procs = tree_mem_mb(p.0.id());
    let pss = |name: &str| by_name(&procs, name)[1];
    let web = pss("WebKitWebProces");
    if web == 0.0 {
        bail!("the blank page started no web process");
    }
    Ok([pss("python3"), web, pss("WebKitNetworkPr")])
}

/// RSS, PSS and anonymous MB summed over the processes whose name starts
/// with `name` (all of them for "").
fn by_name(procs: &[(String, [f64; 3])], name: &str) -> [f64; 3] {
    procs
        .iter()
        .filter(|(c, _)| c.starts_with(name))
        .fold([0.0; 3], |a, (_, m)| {
            [a[0] + m[0], a[1] + m[1], a[2] + m[2]]
        })
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

    // Cold starts with an empty engine, then the idle footprint with 100 and 1,000 containers.
    let mut starts = Vec::new();
    for i in 0..opts.iterations.min(5) {
        check_interrupted()?;
        let (ms, p) = launch(&app, &display, &docker_host)?;
        println!("  start {}: first paint after {ms:.0} ms", i + 1);
        starts.push(ms);
        drop(p);
    }
    report.notes.push(
        "app: release berth-desktop under Xvfb on a native engine; first paint is the page's \
         first frame, logged by the app; memory is read 8 s after the app starts with the \
         containers listed: RSS counts each shared library once per process, PSS shares such \
         pages out, and the anonymous part is each process's own heap. WebKitGTK's web and \
         network processes are the app's too. Targets: ≤ 15 MB, ≤ 1 s, ≤ 150 MB PSS in all"
            .to_string(),
    );
    report.rows.push(row(
        "desktop app binary (UI embedded, VM image excluded)",
        1,
        vec![size_mb],
    ));
    report.rows.push(Row {
        unit: "ms",
        ..row("desktop app cold start → first paint", 0, starts)
    });
    let [ui, web, net] = blank_page(&display)?;
    report.notes.push(
        "app: the reference rows are a blank WebKitGTK page (one heading) in a PyGObject \
         window, without compositing as the app draws: the least any app on this webview \
         costs here. Its UI process is Python's, so it counts the interpreter where the app \
         counts its own code"
            .to_string(),
    );
    for (what, m) in [
        ("UI process (python3)", ui),
        ("WebKit web process", web),
        ("WebKit network process", net),
        ("all three", ui + web + net),
    ] {
        report.rows.push(row(
            &format!("reference: a blank WebKitGTK page: {what}, PSS"),
            0,
            vec![m],
        ));
    }
    let mut made = 0;
    for n in CONTAINERS {
        for i in made..n {
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
        made = n;
        let (_, p) = launch(&app, &display, &docker_host)?;
        std::thread::sleep(Duration::from_secs(8));
        let procs = tree_mem_mb(p.0.id());
        drop(p);
        let of = |name: &str| by_name(&procs, name);
        let all = of("");
        for (what, m) in [
            ("app process", of("berth-desktop")),
            ("WebKit web process", of("WebKitWebProces")),
            ("WebKit network process", of("WebKitNetworkPr")),
            ("all three", all),
        ] {
            report
                .rows
                .push(row(&format!("app, {n} listed: {what}, PSS"), 0, vec![m[1]]));
            report.rows.push(row(
                &format!("app, {n} listed: {what}, anonymous"),
                0,
                vec![m[2]],
            ));
        }
        report.rows.push(row(
            &format!("app, {n} listed: all three, RSS"),
            0,
            vec![all[0]],
        ));
    }
    Ok(())
}
