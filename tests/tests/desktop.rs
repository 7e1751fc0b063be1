//! The desktop app end to end: the real `berth-desktop` binary under Xvfb,
//! driven over WebDriver (`tauri-driver` in front of Debian's
//! `WebKitWebDriver`), against a real engine on the native backend and the
//! local registry. A user's first session: pull an image with the GUI, run it
//! with a published port, find it in the list, read its logs, type in its
//! terminal, watch its usage, stop and remove it, create a volume and see the
//! networks. Screenshots of each page go to
//! `target/desktop-e2e/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_tests::engine::Engine;
use berth_tests::images::{busybox_image, Compression};
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::workspace_bin;
use fantoccini::{Client, ClientBuilder, Locator};

/// A child process killed on drop.
/// A child killed with its whole process group on drop: tauri-driver's
/// WebKitWebDriver (and the app under it) would outlive tauri-driver alone.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // Each Proc is spawned as its own group leader (process_group(0)).
        // SAFETY: killpg takes plain integers; a group that is gone is ESRCH.
        unsafe {
            libc::killpg(self.0.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An Xvfb server, stopped on drop with SIGTERM so it removes its lock file
/// and socket; whatever a server that did not stop in time left is removed
/// here. (Killed with SIGKILL it left both, and after 50 runs every display
/// from :90 was taken: "no free X display".)
struct Xvfb {
    proc: Proc,
    n: u32,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SAFETY: kill takes plain integers; a process that is gone is ESRCH.
        unsafe {
            libc::kill(self.proc.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if !matches!(self.proc.0.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.n));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.n));
    }
}

/// Xvfb on the first free display from :90.
fn xvfb() -> anyhow::Result<(Xvfb, String)> {
    for n in 90..140 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let mut child = Command::new("Xvfb")
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
            .process_group(0)
            .spawn()
            .context("Xvfb (Debian's xvfb) is installed")?;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return Ok((
                    Xvfb {
                        proc: Proc(child),
                        n,
                    },
                    format!(":{n}"),
                ));
            }
            if child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    bail!("no free X display")
}

fn tauri_driver() -> anyhow::Result<PathBuf> {
    let tools = workspace_bin("berth")?
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("tools/bin/tauri-driver"))
        .context("target dir")?;
    if tools.is_file() {
        return Ok(tools);
    }
    bail!(
        "tauri-driver not found at {} (cargo xtask test installs it)",
        tools.display()
    )
}

fn screenshots() -> PathBuf {
    let dir = workspace_bin("berth")
        .ok()
        .and_then(|b| b.parent()?.parent().map(|t| t.join("desktop-e2e")))
        .unwrap_or_else(|| PathBuf::from("target/desktop-e2e"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// WebKitGTK's screenshot waits for the page's next paint, and the app draws
/// without compositing (`webkit_env.rs`): a page that has settled never
/// paints again. So a pixel in the corner flickers for a few frames first
/// (one level of 255 in its alpha), which is the paint the screenshot waits for.
const REPAINT: &str = r#"
    const d = document.createElement('div');
    d.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;' +
        'background:#000;opacity:0;pointer-events:none';
    document.body.appendChild(d);
    let n = 0;
    const tick = () => {
        d.style.opacity = n % 2 ? '0' : '0.004';
        if (++n < 20) requestAnimationFrame(tick); else d.remove();
    };
    requestAnimationFrame(tick);
"#;

async fn shot(c: &Client, name: &str) {
    let _ = c.execute(REPAINT, vec![]).await;
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(screenshots().join(format!("{name}.png")), png);
    }
}

/// A failed session keeps a screenshot, and its error says what the page
/// showed: CI keeps only the log.
async fn on_failure(c: &Client, name: &str, r: anyhow::Result<()>) -> anyhow::Result<()> {
    let Err(e) = r else { return Ok(()) };
    shot(c, name).await;
    let page = c
        .execute(
            "return innerWidth + 'x' + innerHeight + ' ' + location.hash + '\\n' \
             + document.body.innerText.slice(0, 3000);",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    Err(anyhow::anyhow!("{e:#}\n--- the page showed ---\n{page}"))
}

/// The app under Xvfb behind tauri-driver, with `HOME`, Berth's config and the
/// engine of the test; `path_first` goes before `PATH` (a stand-in browser).
struct AppUnderTest {
    app: PathBuf,
    wd_port: u16,
    // Dropped in this order: the driver (and the app under it), then the display.
    _driver: Proc,
    _x: Xvfb,
}

impl AppUnderTest {
    fn start(
        app: &Path,
        engine: &Engine,
        config: &Path,
        home: &Path,
        path_first: Option<&Path>,
    ) -> anyhow::Result<AppUnderTest> {
        let (x, display) = xvfb()?;
        let wd_port = berth_tests::free_port()?;
        let native_port = berth_tests::free_port()?;
        let mut cmd = Command::new(tauri_driver()?);
        cmd.process_group(0)
            .args([
                "--port",
                &wd_port.to_string(),
                "--native-port",
                &native_port.to_string(),
                "--native-driver",
                "/usr/bin/WebKitWebDriver",
            ])
            .env("DISPLAY", &display)
            .env("HOME", home)
            .env_remove("DOCKER_CONFIG")
            .env("DOCKER_HOST", engine.docker_host())
            .env("BERTH_CONFIG_DIR", config)
            .env("BERTH_HOME", config.join("home"))
            // No accessibility bus under Xvfb; GTK would wait for it.
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = path_first {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        let driver = Proc(cmd.spawn().context("starting tauri-driver")?);
        Ok(AppUnderTest {
            app: app.to_path_buf(),
            wd_port,
            _driver: driver,
            _x: x,
        })
    }

    /// A WebDriver session on the app's window.
    async fn connect(&self) -> anyhow::Result<Client> {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": self.app }),
        );
        caps.insert("browserName".into(), "wry".into());
        let url = format!("http://127.0.0.1:{}", self.wd_port);
        until(
            Duration::from_secs(30),
            "tauri-driver to accept a session",
            || {
                let caps = caps.clone();
                let url = url.clone();
                async move {
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(caps)
                        .connect(&url)
                        .await
                        .ok()
                }
            },
        )
        .await
    }
}

/// Polls `f` until it yields, or fails after `within` with `what`.
async fn until<T, F, Fut>(within: Duration, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let t = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if t.elapsed() > within {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// At `width` px wide, no element of the page overflows its box: the main
/// area does not scroll sideways, and no table cell or toolbar item holds
/// content wider than itself unless it clips it (ellipsis) on purpose.
async fn fits_at(c: &Client, width: u32) -> anyhow::Result<()> {
    let (w0, h0) = c.get_window_size().await?;
    let inner0 = inner_size(c).await?;
    c.set_window_size(width, 800).await?;
    if u64::from(width) != w0 {
        until(
            Duration::from_secs(10),
            "the page to take the new width",
            || async { inner_size(c).await.ok().filter(|s| s.0 != inner0.0) },
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let found = c
        .execute(
            r#"const bad = [];
            const main = document.querySelector('main');
            if (main.scrollWidth > main.clientWidth + 1)
              bad.push('main: ' + main.scrollWidth + ' > ' + main.clientWidth);
            for (const el of document.querySelectorAll('main td, main th, main header > *, main form > *')) {
              const cs = getComputedStyle(el);
              if (cs.overflowX === 'hidden') continue;
              if (el.scrollWidth > el.clientWidth + 1)
                bad.push((el.dataset.testid || el.className || el.tagName) + ': ' + el.scrollWidth + ' > ' + el.clientWidth);
            }
            return bad;"#,
            vec![],
        )
        .await?;
    c.set_window_size(w0 as u32, h0 as u32).await?;
    // The resize reaches the page asynchronously: a click computed against
    // the old layout would land beside its target.
    until(
        Duration::from_secs(10),
        "the page back at its size",
        || async { inner_size(c).await.ok().filter(|s| *s == inner0) },
    )
    .await?;
    let bad: Vec<String> = serde_json::from_value(found)?;
    anyhow::ensure!(bad.is_empty(), "at {width} px wide, overflowing: {bad:?}");
    Ok(())
}

/// The page's viewport, as its layout sees it.
async fn inner_size(c: &Client) -> anyhow::Result<(u64, u64)> {
    let v = c
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// Waits until the element `css` has `attr` equal to `want`.
async fn until_attr(c: &Client, css: &str, attr: &str, want: &str) -> anyhow::Result<()> {
    let what = format!("{css} with {attr}={want}");
    until(Duration::from_secs(60), &what, || async {
        let el = c.find(Locator::Css(css)).await.ok()?;
        (el.attr(attr).await.ok()?? == want).then_some(())
    })
    .await
}

/// The number in the element `css`'s attribute `attr`.
async fn num_attr(c: &Client, css: &str, attr: &str) -> Option<u64> {
    c.find(Locator::Css(css))
        .await
        .ok()?
        .attr(attr)
        .await
        .ok()??
        .parse()
        .ok()
}

async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn click(c: &Client, css: &str) -> anyhow::Result<()> {
    let el = until(Duration::from_secs(20), css, || async {
        c.find(Locator::Css(css)).await.ok()
    })
    .await?;
    el.click()
        .await
        .with_context(|| format!("clicking {css}"))?;
    Ok(())
}

/// Clicks `css` until `opens` is on the page: a click that only opens
/// something is harmless to repeat. In one CI run under load, the click on an
/// image's Run button returned and its form never opened; each miss is logged.
async fn click_to_open(c: &Client, css: &str, opens: &str) -> anyhow::Result<()> {
    for attempt in 0..3 {
        click(c, css).await?;
        let shown = until(Duration::from_secs(5), opens, || async {
            c.find(Locator::Css(opens)).await.ok()
        })
        .await;
        if shown.is_ok() {
            return Ok(());
        }
        eprintln!("{opens} not open after click {} on {css}", attempt + 1);
    }
    bail!("clicking {css} three times did not open {opens}")
}

/// Like `click`, waits for the field: a page draws its form once its data
/// has loaded.
async fn fill(c: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let el = until(Duration::from_secs(20), css, || async {
        c.find(Locator::Css(css)).await.ok()
    })
    .await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

fn http_get(port: u16) -> Option<String> {
    berth_tests::http_request(&format!("127.0.0.1:{port}"), "GET", "/", &[], None)
        .ok()
        .map(|r| r.text())
}

/// Settings → Docker CLI: "use Berth" writes the `berth` context (current, as
/// the user had none) and the credential helper into `home`'s docker config;
/// "stop" removes exactly that again.
async fn docker_cli_setting(c: &Client, home: &Path, engine_host: &str) -> anyhow::Result<()> {
    let long = Duration::from_secs(30);
    let current = |want: &'static str| async move {
        until(
            long,
            &format!("the CLI's context to read {want}"),
            || async {
                text_of(c, "[data-testid=cli-current]")
                    .await
                    .filter(|t| t == want)
            },
        )
        .await
    };
    current("default").await?;
    click(c, "[data-testid=cli-use]").await?;
    current("berth").await?;
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(".docker/config.json"))?)?;
    anyhow::ensure!(config["credsStore"] == "berth", "config.json: {config}");
    anyhow::ensure!(config["currentContext"] == "berth", "config.json: {config}");
    let contexts = Command::new("docker")
        .args([
            "context",
            "inspect",
            "berth",
            "--format",
            "{{.Endpoints.docker.Host}}",
        ])
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .output()?;
    anyhow::ensure!(
        String::from_utf8_lossy(&contexts.stdout).trim() == engine_host,
        "docker context inspect berth: {}{}",
        String::from_utf8_lossy(&contexts.stdout),
        String::from_utf8_lossy(&contexts.stderr)
    );
    shot(c, "11-settings-docker-cli").await;
    click(c, "[data-testid=cli-undo]").await?;
    current("default").await?;
    until(long, "the use-Berth button to return", || async {
        c.find(Locator::Css("[data-testid=cli-use]")).await.ok()
    })
    .await?;
    anyhow::ensure!(
        !home.join(".docker/config.json").exists(),
        "the config.json Berth created is gone again"
    );
    Ok(())
}

/// A Compose project is one row: its aggregate state, its merged logs with the
/// service on each line, and stop/start/restart/remove that leave what
/// `docker compose -p P stop/start/restart/rm -s -f` would.
async fn compose_project(c: &Client, engine: &Engine, image: &str) -> anyhow::Result<()> {
    engine.with_cli_plugins();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        format!(
            "services:\n  web:\n    image: {image}\n    command: [\"sh\", \"-c\", \"echo web-says-hi; exec sleep 600\"]\n    stop_grace_period: 2s\n  worker:\n    image: {image}\n    command: [\"sh\", \"-c\", \"echo worker-says-hi; exec sleep 600\"]\n    stop_grace_period: 2s\n"
        ),
    )?;
    let file = file.display().to_string();
    let compose = |args: &[&str]| {
        let mut all = vec!["compose", "-p", "guiproj", "-f", &file];
        all.extend_from_slice(args);
        engine.docker_ok(&all)
    };
    compose(&["up", "-d"]);
    click(c, "[data-testid=nav-containers]").await?;
    let row = "[data-testid=project-row][data-project=guiproj]";
    let running = |n: &'static str| until_attr(c, row, "data-running", n);
    let states = || {
        let mut s: Vec<String> = compose(&["ps", "-a", "--format", "{{.State}}"])
            .lines()
            .map(str::to_string)
            .collect();
        s.sort();
        s
    };
    running("2").await?;
    shot(c, "16-compose-project").await;

    click(c, &format!("{row} [data-testid=project-menu] summary")).await?;
    click(c, &format!("{row} [data-testid=project-logs]")).await?;
    until(Duration::from_secs(60), "the merged logs", || async {
        text_of(c, "[data-testid=project-logs]")
            .await
            .filter(|t| t.contains("web | web-says-hi") && t.contains("worker | worker-says-hi"))
    })
    .await?;
    click(c, "[data-testid=back]").await?;

    click(c, &format!("{row} [data-testid=project-stop]")).await?;
    running("0").await?;
    assert_eq!(states(), ["exited", "exited"]);
    click(c, &format!("{row} [data-testid=project-start]")).await?;
    running("2").await?;
    assert_eq!(states(), ["running", "running"]);
    // Both services restarted (each waits out its grace period: `sleep` as
    // PID 1 ignores SIGTERM), then both run again.
    let started = || {
        engine.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            "guiproj-web-1",
            "guiproj-worker-1",
        ])
    };
    let before = started();
    click(c, &format!("{row} [data-testid=project-menu] summary")).await?;
    click(c, &format!("{row} [data-testid=project-restart]")).await?;
    until(Duration::from_secs(90), "the project restarted", || async {
        let now = started();
        let changed = now.lines().zip(before.lines()).all(|(a, b)| a != b);
        changed.then_some(())
    })
    .await?;
    running("2").await?;
    until(
        Duration::from_secs(30),
        "the project's actions enabled",
        || async {
            let el = c
                .find(Locator::Css(&format!("{row} [data-testid=project-remove]")))
                .await
                .ok()?;
            el.is_enabled().await.ok()?.then_some(())
        },
    )
    .await?;
    click(c, &format!("{row} [data-testid=project-remove]")).await?;
    click(
        c,
        &format!("{row} [data-testid=project-remove][data-armed=true]"),
    )
    .await?;
    until(Duration::from_secs(60), "the project gone", || async {
        c.find(Locator::Css(row)).await.is_err().then_some(())
    })
    .await?;
    assert!(compose(&["ps", "-a", "-q"]).trim().is_empty());
    Ok(())
}

/// Health badges follow a container that turns unhealthy and recovers, and its
/// detail page shows the last probes.
async fn health(c: &Client, engine: &Engine, image: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "Image": image,
        "Cmd": ["sh", "-c", "touch /tmp/ok; exec sleep 600"],
        "Healthcheck": {
            "Test": ["CMD-SHELL", "[ -f /tmp/ok ] && echo probe-ok || { echo probe-failed; exit 1; }"],
            "Interval": 1_000_000_000u64, "Timeout": 5_000_000_000u64, "Retries": 1,
        },
    })
    .to_string();
    let (status, _, b) = engine.request(
        "POST",
        "/containers/create?name=gui-health",
        Some(body.as_bytes()),
    );
    anyhow::ensure!(status == 201, "create: {}", String::from_utf8_lossy(&b));
    engine.docker_ok(&["start", "gui-health"]);
    click(c, "[data-testid=nav-containers]").await?;
    let badge = "[data-testid=container-row][data-name=gui-health] [data-testid=health]";
    let shows = |want: &'static str| until_attr(c, badge, "data-health", want);
    shows("healthy").await?;
    engine.docker_ok(&["exec", "gui-health", "rm", "/tmp/ok"]);
    shows("unhealthy").await?;
    shot(c, "15-unhealthy").await;
    // The detail page: the badge and the failing probe's output, then both
    // follow the recovery.
    click(
        c,
        "[data-testid=container-row][data-name=gui-health] [data-testid=open-container]",
    )
    .await?;
    let probes_say = |what: &'static str| async move {
        until(Duration::from_secs(60), what, || async {
            text_of(c, "[data-testid=health-log]")
                .await
                .filter(|t| t.contains(what))
        })
        .await
    };
    probes_say("probe-failed").await?;
    engine.docker_ok(&["exec", "gui-health", "touch", "/tmp/ok"]);
    until_attr(c, "[data-testid=detail-health]", "data-health", "healthy").await?;
    probes_say("probe-ok").await?;
    click(c, "[data-testid=back]").await?;
    engine.docker_ok(&["rm", "-f", "gui-health"]);
    Ok(())
}

/// The Builds view lists builds made with `docker buildx build` (the real
/// plugin), newest first: a build's steps in order with their output, a
/// rebuild's steps cached, a build run again from the app (the same argument
/// and label, today's files), a failed build's error and the step that failed.
async fn builds(c: &Client, engine: &Engine, image: &str, home: &Path) -> anyhow::Result<()> {
    // The user's docker config (the app's too), where buildx records each
    // build's directory: the plugin found through it.
    let config = home.join(".docker");
    std::fs::create_dir_all(&config)?;
    let file = config.join("config.json");
    let mut cfg: serde_json::Value = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    cfg["cliPluginsExtraDirs"] = serde_json::json!([berth_tests::engine::cli_plugins_dir()]);
    std::fs::write(&file, cfg.to_string())?;
    let buildx = |args: &[&str]| {
        let mut all = vec![
            "buildx",
            "build",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "gui=yes",
        ];
        all.extend_from_slice(args);
        engine
            .docker_cmd(&all)
            .env("DOCKER_CONFIG", &config)
            .stdin(Stdio::null())
            .output()
    };
    let ctx = tempfile::tempdir()?;
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\nARG GREETING\nCOPY a.txt /a.txt\nRUN echo gui-build-$GREETING-$(cat /a.txt)\n"),
    )?;
    std::fs::write(ctx.path().join("a.txt"), "says-hi")?;
    let dir = ctx.path().to_str().context("a UTF-8 path")?;
    let ok = |o: std::io::Result<std::process::Output>| -> anyhow::Result<()> {
        let o = o?;
        anyhow::ensure!(
            o.status.success(),
            "buildx: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Ok(())
    };
    ok(buildx(&["-t", "gui-built:1", dir]))?;
    click(c, "[data-testid=nav-builds]").await?;
    let row = "[data-testid=build-row]";
    until_attr(c, row, "data-status", "completed").await?;
    let name = c.find(Locator::Css(row)).await?.attr("data-name").await?;
    anyhow::ensure!(
        name.as_deref().is_some_and(|n| n.ends_with("gui-built:1")),
        "first build row {name:?}"
    );
    click(c, "[data-testid=open-build]").await?;
    let run_step = "[data-testid=build-step][data-name*='RUN echo gui-build']";
    click(c, &format!("{run_step} [data-testid=step-toggle]")).await?;
    until(Duration::from_secs(30), "the RUN step's output", || async {
        text_of(c, "[data-testid=step-log]")
            .await
            .filter(|t| t.contains("gui-build-hi-says-hi"))
    })
    .await?;
    let names = c
        .execute(
            "return [...document.querySelectorAll('[data-testid=build-step]')].map(r => r.dataset.name)",
            vec![],
        )
        .await?;
    let names: Vec<String> = serde_json::from_value(names)?;
    let at = |w: &str| names.iter().position(|n| n.contains(w));
    anyhow::ensure!(
        at("[1/3] FROM") < at("[2/3] COPY")
            && at("[2/3] COPY") < at("[3/3] RUN")
            && at("[1/3] FROM").is_some(),
        "steps out of order: {names:?}"
    );
    let made = engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "gui-built:1"]);
    until_attr(c, "[data-testid=build-image]", "data-image", made.trim()).await?;
    shot(c, "17-build-steps").await;
    for width in [900, 1440] {
        fits_at(c, width).await?;
    }
    click(c, "[data-testid=back]").await?;

    // A rebuild: its steps are cached; a failing build shows why.
    ok(buildx(&["-t", "gui-built:2", dir]))?;
    until(
        Duration::from_secs(30),
        "the rebuild listed first",
        || async {
            let n = c
                .find(Locator::Css(row))
                .await
                .ok()?
                .attr("data-name")
                .await
                .ok()??;
            n.ends_with("gui-built:2").then_some(())
        },
    )
    .await?;
    click(c, "[data-testid=open-build]").await?;
    until(Duration::from_secs(30), "the cached RUN step", || async {
        c.find(Locator::Css(&format!("{run_step}[data-cached=true]")))
            .await
            .ok()
    })
    .await?;
    click(c, "[data-testid=back]").await?;

    // Run again from the app, after the file changed: a new build of the same
    // tag, with the same argument and label, on today's files.
    let first =
        |a: &'static str| async move { c.find(Locator::Css(row)).await.ok()?.attr(a).await.ok()? };
    let before = first("data-id").await.context("the rebuild's id")?;
    std::fs::write(ctx.path().join("a.txt"), "says-again")?;
    click(c, "[data-testid=open-build]").await?;
    until_attr(c, "[data-testid=build-context]", "title", dir).await?;
    let args = c
        .find(Locator::Css("[data-testid=build-args]"))
        .await?
        .prop("textContent")
        .await?;
    anyhow::ensure!(
        args.as_deref() == Some("GREETING=hi"),
        "build args {args:?}"
    );
    click(c, "[data-testid=rerun-build]").await?;
    until(Duration::from_secs(120), "the build run again", || async {
        let id = first("data-id").await?;
        let done = first("data-status").await? == "completed";
        (id != before && done).then_some(())
    })
    .await?;
    anyhow::ensure!(
        first("data-name")
            .await
            .is_some_and(|n| n.ends_with("gui-built:2")),
        "the build run again is named {:?}",
        first("data-name").await
    );
    click(c, "[data-testid=open-build]").await?;
    click(c, &format!("{run_step} [data-testid=step-toggle]")).await?;
    until(
        Duration::from_secs(30),
        "the new RUN step's output",
        || async {
            text_of(c, "[data-testid=step-log]")
                .await
                .filter(|t| t.contains("gui-build-hi-says-again"))
        },
    )
    .await?;
    let label = engine.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"gui\"}}",
        "gui-built:2",
    ]);
    anyhow::ensure!(
        label.trim() == "yes",
        "the label of the build run again: {label:?}"
    );
    click(c, "[data-testid=back]").await?;

    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\nRUN echo gui-about-to-fail && exit 3\n"),
    )?;
    let failed = buildx(&["-t", "gui-built:bad", dir])?;
    anyhow::ensure!(!failed.status.success(), "the failing build succeeded");
    until_attr(c, row, "data-status", "failed").await?;
    click(c, "[data-testid=open-build]").await?;
    until(
        Duration::from_secs(30),
        "the failed step's output",
        || async {
            c.find(Locator::Css("[data-testid=build-step][data-failed=true]"))
                .await
                .ok()?;
            text_of(c, "[data-testid=step-log]")
                .await
                .filter(|t| t.contains("gui-about-to-fail"))
        },
    )
    .await?;
    anyhow::ensure!(text_of(c, "[data-testid=build-error]").await.is_some());
    shot(c, "18-build-failed").await;
    click(c, "[data-testid=back]").await?;
    Ok(())
}

/// The Disk page shows what `docker system df` counts, and a reclaim action
/// says what it removes and frees before it runs (a first click), then frees
/// it: here the stopped containers.
async fn disk(c: &Client, engine: &Engine, image: &str) -> anyhow::Result<()> {
    engine.docker_ok(&[
        "run",
        "--name",
        "gui-df-stopped",
        image,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /filler",
    ]);
    click(c, "[data-testid=nav-disk]").await?;
    let row = |kind: &str| format!("[data-testid=disk-row][data-kind={kind}]");
    let attr =
        |kind: &'static str, a: &'static str| async move { num_attr(c, &row(kind), a).await };
    // The CLI's own rows: the same counts.
    let df = engine.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}",
    ]);
    for line in df.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let kind = match f[0] {
            "Images" => "images",
            "Containers" => "containers",
            "Local Volumes" => "volumes",
            "Build Cache" => "buildCache",
            _ => continue,
        };
        let total: u64 = f[1].parse()?;
        until(
            Duration::from_secs(30),
            &format!("{kind}: {total} as docker system df"),
            || async { (attr(kind, "data-total").await? == total).then_some(()) },
        )
        .await?;
    }
    anyhow::ensure!(c
        .find(Locator::Css("[data-testid=vm-disk-none]"))
        .await
        .is_ok());
    let stopped = engine
        .docker_ok(&["ps", "-aq", "--filter", "status=exited"])
        .lines()
        .count() as u64;
    anyhow::ensure!(attr("containers", "data-removable").await == Some(stopped));
    anyhow::ensure!(attr("containers", "data-reclaimable").await >= Some(300_000));
    shot(c, "19-disk").await;
    for width in [900, 1440] {
        fits_at(c, width).await?;
    }
    let button = format!("{} [data-testid=reclaim]", row("containers"));
    click(c, &button).await?;
    until_attr(c, &button, "data-armed", "true").await?;
    let asks = text_of(c, &button).await.unwrap_or_default();
    anyhow::ensure!(asks.contains("stopped container"), "the question: {asks:?}");
    anyhow::ensure!(
        engine
            .docker(&["inspect", "gui-df-stopped"])
            .status
            .success(),
        "one click removed it"
    );
    click(c, &button).await?;
    until(Duration::from_secs(30), "what was freed", || async {
        text_of(c, "[data-testid=reclaimed]")
            .await
            .filter(|t| t.contains("freed"))
    })
    .await?;
    anyhow::ensure!(!engine
        .docker(&["inspect", "gui-df-stopped"])
        .status
        .success());
    until(Duration::from_secs(30), "nothing left to free", || async {
        (attr("containers", "data-removable").await? == 0).then_some(())
    })
    .await?;
    // The build cache the Builds section left: freed the same way.
    anyhow::ensure!(attr("buildCache", "data-removable").await > Some(0));
    let button = format!("{} [data-testid=reclaim]", row("buildCache"));
    click(c, &button).await?;
    until_attr(c, &button, "data-armed", "true").await?;
    click(c, &button).await?;
    until(
        Duration::from_secs(30),
        "no build cache left to free",
        || async { (attr("buildCache", "data-removable").await? == 0).then_some(()) },
    )
    .await?;
    Ok(())
}

/// The containers page with 1,000 containers: all of them are in the list
/// (the list follows the engine's events) but only a window of rows is in the
/// DOM; the keyboard moves through it (End reaches the last row, drawn when it
/// comes into view); scrolling draws the rows scrolled to; a search and the
/// state filter narrow it; a detail page opens and the list comes back. The
/// times are printed, not asserted (the bench measures speed).
async fn many_containers(c: &Client, engine: &Engine, image: &str) -> anyhow::Result<()> {
    const N: usize = 1000;
    let body = serde_json::json!({ "Image": image, "Cmd": ["true"] }).to_string();
    for i in 0..N {
        let (status, _, b) = engine.request(
            "POST",
            &format!("/containers/create?name=many-{i}"),
            Some(body.as_bytes()),
        );
        anyhow::ensure!(status == 201, "create: {}", String::from_utf8_lossy(&b));
    }
    let t = Instant::now();
    click(c, "[data-testid=nav-containers]").await?;
    let list = "[data-testid=container-list]";
    let num = |attr: &'static str| async move { num_attr(c, list, attr).await.map(|n| n as usize) };
    let rows = || async {
        c.find_all(Locator::Css("[data-testid=container-row]"))
            .await
            .map(|r| r.len())
            .unwrap_or(0)
    };
    until(
        Duration::from_secs(60),
        "1,000 containers listed",
        || async { (num("data-items").await? >= N).then_some(()) },
    )
    .await?;
    let listed = t.elapsed();
    let drawn = rows().await;
    anyhow::ensure!(
        (1..100).contains(&drawn),
        "{drawn} rows in the DOM for {N} containers: the list is not windowed"
    );
    shot(c, "14-1000-containers").await;

    // The keyboard: focus the list, End goes to the last row, Home back.
    c.find(Locator::Css(list)).await?.click().await?;
    let keys =
        |k: &'static str| async move { c.find(Locator::Css(list)).await?.send_keys(k).await };
    keys("\u{E010}").await?; // End
                             // The focused row is drawn, and is the list's last (no spacer below it).
    until(Duration::from_secs(10), "the last row focused", || async {
        c.execute(
            "const f = document.querySelector('tr.focused'); return !!f && f === f.parentElement.lastElementChild;",
            vec![],
        )
        .await
        .ok()?
        .as_bool()?
        .then_some(())
    })
    .await?;
    keys("\u{E011}").await?; // Home
    keys("\u{E015}").await?; // Down
    until(
        Duration::from_secs(10),
        "the second row focused, the first drawn",
        || async {
            c.find(Locator::Css("tr.focused")).await.ok()?;
            let top = c
                .execute("return document.querySelector('main').scrollTop", vec![])
                .await
                .ok()?;
            (top.as_f64()? < 200.0).then_some(())
        },
    )
    .await?;
    // Scrolling to the middle draws the middle.
    c.execute(
        "const m = document.querySelector('main'); m.scrollTop = m.scrollHeight / 2;",
        vec![],
    )
    .await?;
    let middle = until(Duration::from_secs(10), "rows from the middle drawn", || async {
        let names = c
            .execute(
                "return [...document.querySelectorAll('[data-testid=container-row]')].map(r => r.dataset.name)",
                vec![],
            )
            .await
            .ok()?;
        let names: Vec<String> = serde_json::from_value(names).ok()?;
        names
            .iter()
            .any(|n| {
                n.strip_prefix("many-")
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| (300..700).contains(&i))
            })
            .then_some(names.len())
    })
    .await?;
    anyhow::ensure!(middle < 100, "{middle} rows drawn after scrolling");

    // Search by name, then by state: only what matches stays.
    let t = Instant::now();
    fill(c, "[data-testid=container-search]", "many-25").await?;
    until(Duration::from_secs(30), "11 rows for many-25", || async {
        (num("data-items").await? == 11 && rows().await == 11).then_some(())
    })
    .await?;
    let searched = t.elapsed();
    // Backspaces, so the page sees input events as from a keyboard.
    c.find(Locator::Css("[data-testid=container-search]"))
        .await?
        .send_keys(&"\u{E003}".repeat(8))
        .await?;
    let show = |state: &'static str| async move {
        c.find(Locator::Css("[data-testid=state-filter]"))
            .await?
            .select_by_value(state)
            .await
    };
    show("running").await?;
    until(Duration::from_secs(30), "no running one", || async {
        c.find(Locator::Css("[data-testid=no-match]")).await.ok()
    })
    .await?;
    show("all").await?;
    until(Duration::from_secs(30), "all rows again", || async {
        (num("data-items").await? >= N).then_some(())
    })
    .await?;
    println!(
        "{N} containers: {drawn} rows drawn; filtered by name in {:.2} s",
        searched.as_secs_f64()
    );
    let t = Instant::now();
    fill(c, "[data-testid=container-search]", "many-250").await?;
    click(
        c,
        "[data-testid=container-row][data-name=many-250] [data-testid=open-container]",
    )
    .await?;
    until(
        Duration::from_secs(30),
        "many-250's detail page",
        || async { c.find(Locator::Css("[data-testid=logs]")).await.ok() },
    )
    .await?;
    click(c, "[data-testid=back]").await?;
    until(Duration::from_secs(30), "the list again", || async {
        c.find(Locator::Css(
            "[data-testid=container-row][data-name=many-250]",
        ))
        .await
        .ok()
    })
    .await?;
    println!(
        "{N} containers: listed {:.2} s after opening the page; detail and back in {:.2} s",
        listed.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    row_menu(c, engine, image).await
}

/// Every action of a row's menu, on one container among the 1,000: each
/// leaves the state `docker inspect` reports.
async fn row_menu(c: &Client, engine: &Engine, image: &str) -> anyhow::Result<()> {
    let name = "gui-menu";
    engine.docker_ok(&["run", "-d", "--name", name, image, "sleep", "600"]);
    fill(c, "[data-testid=container-search]", name).await?;
    let row = format!("[data-testid=container-row][data-name={name}]");
    let state = || engine.docker_ok(&["inspect", "-f", "{{.State.Status}}", name]);
    let started = || engine.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", name]);
    let menu = |item: &'static str| {
        let row = row.clone();
        async move {
            click(c, &format!("{row} [data-testid=row-menu] summary")).await?;
            click(c, &format!("{row} [data-testid={item}]")).await
        }
    };
    let shows = |s: &'static str| until_attr(c, &row, "data-state", s);

    until_attr(c, &row, "data-state", "running").await?;
    let before = started();
    menu("menu-restart").await?;
    until(Duration::from_secs(30), "a new start time", || async {
        (started() != before && state().trim() == "running").then_some(())
    })
    .await?;
    menu("menu-pause").await?;
    shows("paused").await?;
    anyhow::ensure!(state().trim() == "paused");
    menu("menu-unpause").await?;
    shows("running").await?;
    menu("menu-terminal").await?;
    until_attr(c, "[data-testid=terminal]", "data-ready", "true").await?;
    click(c, "[data-testid=back]").await?;
    menu("menu-logs").await?;
    until(Duration::from_secs(30), "the logs", || async {
        c.find(Locator::Css("[data-testid=logs]")).await.ok()
    })
    .await?;
    click(c, "[data-testid=back]").await?;
    menu("menu-inspect").await?;
    until(Duration::from_secs(30), "the inspect view", || async {
        text_of(c, "[data-testid=inspect]")
            .await
            .filter(|t| t.contains(name))
    })
    .await?;
    click(c, "[data-testid=back]").await?;
    menu("menu-stop").await?;
    shows("exited").await?;
    menu("menu-start").await?;
    shows("running").await?;
    // Remove asks first: the first click only arms it.
    menu("menu-remove").await?;
    until_attr(
        c,
        &format!("{row} [data-testid=menu-remove]"),
        "data-armed",
        "true",
    )
    .await?;
    anyhow::ensure!(state().trim() == "running", "one click removed it");
    click(c, &format!("{row} [data-testid=menu-remove]")).await?;
    until(Duration::from_secs(30), "the container gone", || async {
        (!engine.docker(&["inspect", name]).status.success()).then_some(())
    })
    .await?;
    // Backspaces: the page sees them as typing, as it does not a clear().
    c.find(Locator::Css("[data-testid=container-search]"))
        .await?
        .send_keys(&"\u{E003}".repeat(name.len()))
        .await?;
    Ok(())
}

async fn session(
    c: &Client,
    image: &str,
    port: u16,
    home: &Path,
    engine: &Engine,
) -> anyhow::Result<()> {
    let engine_host = engine.docker_host();
    let engine_host = engine_host.as_str();
    let long = Duration::from_secs(60);
    until_attr(c, "[data-testid=engine-status]", "data-state", "running").await?;
    // The engine in use is named: this is the native one, at its socket.
    let kind = until(long, "the engine's kind", || async {
        let el = c
            .find(Locator::Css("[data-testid=engine-kind]"))
            .await
            .ok()?;
        el.attr("data-kind").await.ok()?
    })
    .await?;
    assert_eq!(kind, "native");
    let host = c
        .find(Locator::Css("[data-testid=engine-host]"))
        .await?
        .attr("title")
        .await?
        .unwrap_or_default();
    assert_eq!(host, engine_host);
    shot(c, "01-containers-empty").await;

    // Pull with the GUI.
    click(c, "[data-testid=nav-images]").await?;
    fill(c, "[data-testid=pull-ref]", image).await?;
    click(c, "[data-testid=pull]").await?;
    until(long, "the pull to finish", || async {
        if let Some(e) = text_of(c, "[data-testid=images-error]").await {
            return Some(Err(e));
        }
        text_of(c, "[data-testid=pull-status]")
            .await
            .filter(|t| t.starts_with("Pulled"))
            .map(Ok)
    })
    .await?
    .map_err(|e| anyhow::anyhow!("the app says: {e}"))?;
    let row = format!("[data-testid=image-row][data-tags~='{image}']");
    until(long, "the image in the list", || async {
        c.find(Locator::Css(&row)).await.ok()
    })
    .await?;
    shot(c, "02-images-pulled").await;
    for width in [900, 1440] {
        fits_at(c, width).await?;
    }

    // A run whose command does not exist: the cause, and nothing left behind.
    click_to_open(
        c,
        &format!("{row} [data-testid=run-image]"),
        "[data-testid=run-form]",
    )
    .await?;
    fill(c, "[data-testid=run-name]", "gui-broken").await?;
    fill(c, "[data-testid=run-command]", "no-such-program").await?;
    click(c, "[data-testid=run-submit]").await?;
    let said = until(long, "the failed run's error", || async {
        text_of(c, "[data-testid=images-error]").await
    })
    .await?;
    assert!(
        said.starts_with("The container could not start") && said.contains("no-such-program"),
        "{said}"
    );
    let left = engine.docker_ok(&["ps", "-a", "-q", "--filter", "name=gui-broken"]);
    assert!(left.trim().is_empty(), "a failed run left {left}");

    // Run it with a published port and a command that says hello.
    fill(c, "[data-testid=run-name]", "gui-web").await?;
    fill(c, "[data-testid=run-name]", "gui-web").await?;
    fill(
        c,
        "[data-testid=run-ports]",
        &format!("127.0.0.1:{port}:80"),
    )
    .await?;
    fill(
        c,
        "[data-testid=run-command]",
        "sh -c 'mkdir -p /www && echo served-by-gui > /www/index.html && echo hello-from-the-gui && exec httpd -f -p 80 -h /www'",
    )
    .await?;
    shot(c, "03-run-form").await;
    click(c, "[data-testid=run-submit]").await?;
    let running = "[data-testid=container-row][data-name=gui-web][data-state=running]";
    until(long, "gui-web running in the list", || async {
        c.find(Locator::Css(running)).await.ok()
    })
    .await?;
    let link = text_of(c, &format!("{running} [data-testid=port-link]"))
        .await
        .unwrap_or_default();
    assert!(link.contains(&port.to_string()), "port link {link:?}");
    let body = until(long, "the published port to answer", || async {
        http_get(port)
    })
    .await?;
    assert!(body.contains("served-by-gui"), "{body}");
    until(long, "the container's CPU in the list", || async {
        text_of(c, &format!("{running} [data-testid=cpu]"))
            .await
            .filter(|t| t.ends_with('%'))
    })
    .await?;
    shot(c, "04-containers-running").await;
    for width in [900, 1440] {
        fits_at(c, width).await?;
    }

    // Its logs.
    click(c, &format!("{running} [data-testid=open-container]")).await?;
    until(long, "the known log line", || async {
        text_of(c, "[data-testid=logs]")
            .await
            .filter(|t| t.contains("hello-from-the-gui"))
    })
    .await?;
    shot(c, "05-logs").await;

    // Its terminal: keys go to xterm's input, output shows in its rows.
    click(c, "[data-testid=tab-terminal]").await?;
    let input = until(long, "the terminal", || async {
        c.find(Locator::Css(
            "[data-testid=terminal][data-ready=true] textarea",
        ))
        .await
        .ok()
    })
    .await?;
    input.send_keys("echo term-$((6*7))\n").await?;
    until(long, "the terminal's output", || async {
        text_of(c, "[data-testid=terminal] .xterm-rows")
            .await
            .filter(|t| t.contains("term-42"))
    })
    .await?;
    shot(c, "06-terminal").await;

    // Live usage: the first sample fills the CPU figure; each chart has its
    // scale, and network and block I/O their legends.
    click(c, "[data-testid=tab-stats]").await?;
    until(long, "a stats sample", || async {
        text_of(c, "[data-testid=chart-cpu] .label")
            .await
            .filter(|t| t.ends_with('%'))
    })
    .await?;
    let block = text_of(c, "[data-testid=chart-block]")
        .await
        .unwrap_or_default();
    anyhow::ensure!(
        block.contains("read") && block.contains("written") && block.contains("/s"),
        "block I/O chart: {block:?}"
    );
    let scale = text_of(c, "[data-testid=chart-cpu] [data-testid=chart-max]").await;
    anyhow::ensure!(scale.as_deref() == Some("100 %"), "CPU scale {scale:?}");
    shot(c, "07-stats").await;

    // Stop and remove.
    click(c, "[data-testid=back]").await?;
    // The image's "Used by" is what `docker ps -a --filter ancestor=` lists.
    let ancestors = engine
        .docker_ok(&["ps", "-a", "-q", "--filter", &format!("ancestor={image}")])
        .lines()
        .count();
    click(c, "[data-testid=nav-images]").await?;
    let used_by = format!("[data-testid=image-row][data-tags~='{image}'] [data-testid=used-by]");
    let used = until(long, "the image's Used by", || async {
        let el = c.find(Locator::Css(&used_by)).await.ok()?;
        el.attr("data-count").await.ok()?
    })
    .await?;
    assert_eq!(
        used,
        ancestors.to_string(),
        "Used by vs docker ps -a --filter ancestor"
    );
    assert!(ancestors >= 1);
    click(c, "[data-testid=nav-containers]").await?;
    let row = "[data-testid=container-row][data-name=gui-web]";
    click(c, &format!("{row} [data-testid=stop]")).await?;
    until(long, "gui-web stopped", || async {
        let el = c.find(Locator::Css(row)).await.ok()?;
        (el.attr("data-state").await.ok()?? != "running").then_some(())
    })
    .await?;
    // Remove asks first: the first click arms it, the second removes.
    click(c, &format!("{row} [data-testid=remove]")).await?;
    click(c, &format!("{row} [data-testid=remove][data-armed=true]")).await?;
    until(long, "gui-web gone", || async {
        c.find(Locator::Css(row)).await.is_err().then_some(())
    })
    .await?;
    shot(c, "08-removed").await;

    // Volumes: create one; networks: the default bridge is listed.
    click(c, "[data-testid=nav-volumes]").await?;
    fill(c, "[data-testid=volume-name]", "gui-vol").await?;
    click(c, "[data-testid=volume-create]").await?;
    until(long, "the new volume", || async {
        c.find(Locator::Css("[data-testid=volume-row][data-name=gui-vol]"))
            .await
            .ok()
    })
    .await?;
    shot(c, "09-volumes").await;
    click(c, "[data-testid=nav-networks]").await?;
    until(long, "the bridge network", || async {
        c.find(Locator::Css("[data-testid=network-row][data-name=bridge]"))
            .await
            .ok()
    })
    .await?;
    // A network made in the app is the engine's, with its subnet; removing it
    // asks first. The subnet is outside Docker's default pools (172.17–31/16,
    // 192.168/20), which the other suites' engines take from: a route to a
    // 172.31 subnet here once swallowed another suite's traffic.
    fill(c, "[data-testid=network-name]", "gui-net").await?;
    fill(c, "[data-testid=network-subnet]", "10.213.77.0/24").await?;
    click(c, "[data-testid=network-create]").await?;
    let net_row = "[data-testid=network-row][data-name=gui-net]";
    until(long, "the new network", || async {
        c.find(Locator::Css(net_row)).await.ok()
    })
    .await?;
    let subnet = engine.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "gui-net",
    ]);
    anyhow::ensure!(subnet.trim() == "10.213.77.0/24", "subnet {subnet:?}");
    shot(c, "10-networks").await;
    let remove = format!("{net_row} [data-testid=remove-network]");
    click(c, &remove).await?;
    until_attr(c, &remove, "data-armed", "true").await?;
    click(c, &remove).await?;
    until(long, "the network gone", || async {
        (!engine
            .docker(&["network", "inspect", "gui-net"])
            .status
            .success())
        .then_some(())
    })
    .await?;
    anyhow::ensure!(
        c.find(Locator::Css(
            "[data-testid=network-row][data-name=bridge] [data-testid=remove-network]"
        ))
        .await
        .is_err(),
        "the default bridge offers removal"
    );

    // Settings: a change is saved to the settings file.
    click(c, "[data-testid=nav-settings]").await?;
    fill(c, "[data-testid=set-cpus]", "3").await?;
    click(c, "[data-testid=settings-save]").await?;
    until(long, "the settings to save", || async {
        text_of(c, "[data-testid=settings-saved]")
            .await
            .filter(|t| t.starts_with("Saved"))
    })
    .await?;
    shot(c, "11-settings").await;
    docker_cli_setting(c, home, engine_host).await?;
    click(c, "[data-testid=nav-troubleshoot]").await?;
    until(long, "the troubleshoot page", || async {
        c.find(Locator::Css("[data-testid=console]")).await.ok()
    })
    .await?;
    shot(c, "12-troubleshoot").await;

    // The VM from the app, through the berth library: start, see it, stop.
    click(c, "[data-testid=vm-start]").await?;
    until(Duration::from_secs(300), "the VM to start", || async {
        if let Some(e) = text_of(c, "[data-testid=troubleshoot-error]").await {
            return Some(Err(e));
        }
        text_of(c, "[data-testid=vm-line]")
            .await
            .filter(|t| t.starts_with("running"))
            .map(Ok)
    })
    .await?
    .map_err(|e| anyhow::anyhow!("starting the VM: {e}"))?;
    shot(c, "13-vm-running").await;
    click(c, "[data-testid=vm-stop]").await?;
    until(Duration::from_secs(120), "the VM to stop", || async {
        text_of(c, "[data-testid=vm-done]")
            .await
            .filter(|t| t.contains("stopped"))
    })
    .await?;
    compose_project(c, engine, image).await?;
    health(c, engine, image).await?;
    builds(c, engine, image, home).await?;
    disk(c, engine, image).await?;
    many_containers(c, engine, image).await?;
    Ok(())
}

#[test]
fn a_first_session_in_the_app() {
    let app = workspace_bin("berth-desktop").expect("cargo build -p berth-desktop");
    let engine = Engine::start().unwrap();
    let registry = Registry::start(RegistryAuth::None).unwrap();
    busybox_image(Compression::Gzip, "amd64")
        .unwrap()
        .push(&registry, "gui/bb:latest")
        .unwrap();
    let image = format!("{}/gui/bb:latest", registry.addr());
    let port = berth_tests::free_port().unwrap();

    let config = tempfile::tempdir().unwrap();
    // The VM the app may start: TCG, the built image, no shared folders.
    let image_dir = berth_tests::vm::image_dir().expect("cargo xtask vm-image");
    std::fs::write(
        config.path().join("settings.json"),
        serde_json::to_vec(&serde_json::json!({"vm": {
            "accel": "tcg", "cpus": 2, "memoryMib": 1024, "diskGib": 8,
            "imageDir": image_dir, "fileSharing": "off",
        }, "app": {"welcomeDone": true}}))
        .unwrap(),
    )
    .unwrap();
    // The user's home: where the Docker CLI setting writes `~/.docker` (and
    // WebKit its caches), never the real one.
    let user_home = config.path().join("user");
    std::fs::create_dir_all(&user_home).unwrap();
    let app_under_test =
        AppUnderTest::start(&app, &engine, config.path(), &user_home, None).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let result: anyhow::Result<()> = rt.block_on(async {
        let client = app_under_test.connect().await?;
        let r = session(&client, &image, port, &user_home, &engine).await;
        let r = on_failure(&client, "99-failure", r).await;
        let _ = client.close().await;
        r
    });
    // Whatever happened, no VM outlives the test.
    let _ = Command::new(workspace_bin("berth").unwrap())
        .args(["vm", "stop"])
        .env("BERTH_CONFIG_DIR", config.path())
        .env("BERTH_HOME", config.path().join("home"))
        .output();
    if result.is_ok() {
        let saved: serde_json::Value = serde_json::from_slice(
            &std::fs::read(config.path().join("settings.json")).expect("the app saved settings"),
        )
        .unwrap();
        assert_eq!(saved["vm"]["cpus"], 3, "{saved}");
    }
    if let Err(e) = result {
        let ps = engine.docker(&["ps", "-a"]);
        panic!(
            "{e:#}\nscreenshots in {}\ndocker ps -a:\n{}",
            screenshots().display(),
            String::from_utf8_lossy(&ps.stdout)
        );
    }
}

/// The first-run flow on a fresh engine with no registry: welcome → the engine
/// shows as running → "Run the tutorial" starts the preloaded tutorial with a
/// published port, shows the `docker run` it took and hands its address to the
/// browser (a stand-in `xdg-open` that records it) → that address serves the
/// tutorial. Done is remembered; Help → Getting started opens the flow again.
async fn first_run(c: &Client, opened: &Path, engine: &Engine) -> anyhow::Result<()> {
    let long = Duration::from_secs(60);
    until(long, "the welcome", || async {
        c.find(Locator::Css("[data-testid=welcome][data-step=welcome]"))
            .await
            .ok()
    })
    .await?;
    shot(c, "20-welcome").await;
    click(c, "[data-testid=welcome-start]").await?;
    until(long, "the engine to show as running", || async {
        c.find(Locator::Css(
            "[data-testid=welcome-engine][data-state=running]",
        ))
        .await
        .ok()
    })
    .await?;
    shot(c, "21-welcome-engine").await;
    click(c, "[data-testid=welcome-run]").await?;
    let command = until(long, "the tutorial to run", || async {
        if let Some(e) = text_of(c, "[data-testid=welcome-error]").await {
            return Some(Err(e));
        }
        text_of(c, "[data-testid=welcome-command]").await.map(Ok)
    })
    .await?
    .map_err(|e| anyhow::anyhow!("the app says: {e}"))?;
    shot(c, "22-welcome-tutorial").await;
    if !command.starts_with("docker run -d -p ")
        || !command.ends_with(":80 --name getting-started berth/getting-started")
    {
        bail!("the command shown is {command:?}");
    }
    let url = until(
        long,
        "the browser to be asked to open the tutorial",
        || async {
            std::fs::read_to_string(opened)
                .ok()
                .filter(|u| !u.trim().is_empty())
        },
    )
    .await?;
    let port: u16 = url
        .trim()
        .strip_prefix("http://localhost:")
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("the browser was given {url:?}"))?;
    let page = until(long, "the tutorial's first page", || async move {
        http_get(port).filter(|b| b.contains("Welcome to Berth"))
    })
    .await?;
    if !page.contains("docker run -d -p 8080:80") {
        bail!("the first page does not teach the command: {page}");
    }
    let running = engine.docker_ok(&["ps", "--format", "{{.Names}} {{.Image}}"]);
    if !running.contains("getting-started berth/getting-started") {
        bail!("docker ps shows: {running}");
    }
    click(c, "[data-testid=welcome-done]").await?;
    until(long, "the welcome to close", || async {
        c.find(Locator::Css("[data-testid=welcome]"))
            .await
            .is_err()
            .then_some(())
    })
    .await?;
    // Help reopens it; the tutorial, already running, is found again.
    click(c, "[data-testid=nav-welcome]").await?;
    click(c, "[data-testid=welcome-start]").await?;
    click(c, "[data-testid=welcome-run]").await?;
    let again = until(long, "the tutorial found again", || async {
        text_of(c, "[data-testid=welcome-command]").await
    })
    .await?;
    if again != command {
        bail!("second time the command is {again:?}, first {command:?}");
    }
    click(c, "[data-testid=welcome-done]").await?;
    Ok(())
}

#[test]
fn the_first_run_flow_opens_the_offline_tutorial() {
    let app = workspace_bin("berth-desktop").expect("cargo build -p berth-desktop");
    let archive = berth_tests::engine::tutorial_archive().unwrap();
    let engine = Engine::start_args(&["--preload", archive.to_str().unwrap()]).unwrap();
    let config = tempfile::tempdir().unwrap();
    let user_home = config.path().join("user");
    std::fs::create_dir_all(&user_home).unwrap();
    // The user's browser: records the address it is asked to open.
    let bin = config.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opened = config.path().join("opened-url");
    std::fs::write(
        bin.join("xdg-open"),
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("xdg-open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let under_test =
        AppUnderTest::start(&app, &engine, config.path(), &user_home, Some(&bin)).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let result: anyhow::Result<()> = rt.block_on(async {
        let client = under_test.connect().await?;
        let r = first_run(&client, &opened, &engine).await;
        let r = on_failure(&client, "29-welcome-failure", r).await;
        let _ = client.close().await;
        r
    });
    if let Err(e) = result {
        panic!("{e:#}\nscreenshots in {}", screenshots().display());
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(saved["app"]["welcomeDone"], true, "{saved}");
}
