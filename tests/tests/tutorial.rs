//! The getting-started tutorial (`tutorial/`): its image runs from a fresh engine with
//! no registry (preloaded from the archive Berth ships), and every command block on
//! its pages runs, in order, against a real engine through the stock `docker` CLI —
//! so the tutorial cannot rot. Blocks are `<pre class="cmd">`; `data-stdin` feeds an
//! interactive (`-it`) block through a pseudo-terminal, `data-expect` is text its
//! output must contain.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tests::engine::{tutorial_archive, Engine};
use berth_tests::{free_port, http_request};

const IMAGE: &str = "berth/getting-started";
/// The host ports the pages publish, each replaced by a free one in the test.
const PAGE_PORTS: [u16; 3] = [8080, 8000, 8001];
const BLOCK_LIMIT: Duration = Duration::from_secs(180);

fn site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tutorial/site")
}

/// The pages in reading order: the welcome page, then the numbered ones.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(site())
        .expect("tutorial/site")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    pages.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        (name != "index.html", name)
    });
    pages
}

#[derive(Debug)]
struct Block {
    page: String,
    command: String,
    stdin: Option<String>,
    expect: Option<String>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

/// Every `<pre class="cmd" …><code>…</code></pre>` of `html`, in order.
fn blocks_of(page: &str, html: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<pre class=\"cmd\"") {
        rest = &rest[at..];
        let tag_end = rest.find('>').expect("a closed <pre> tag");
        let tag = &rest[..tag_end];
        let code = rest.find("<code>").expect("<code> in a command block") + 6;
        let end = rest.find("</code>").expect("</code> in a command block");
        out.push(Block {
            page: page.to_string(),
            command: unescape(&rest[code..end]),
            stdin: attr(tag, "data-stdin"),
            expect: attr(tag, "data-expect"),
        });
        rest = &rest[end..];
    }
    out
}

fn tutorial_engine() -> Engine {
    let archive = tutorial_archive().unwrap();
    Engine::start_args(&["--preload", archive.to_str().unwrap()]).unwrap()
}

fn get(port: u16, path: &str) -> Option<String> {
    let r = http_request(&format!("127.0.0.1:{port}"), "GET", path, &[], None).ok()?;
    (r.status == 200).then(|| String::from_utf8_lossy(&r.body).into_owned())
}

fn wait_for_page(port: u16, path: &str) -> String {
    for _ in 0..100 {
        if let Some(body) = get(port, path) {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing served on 127.0.0.1:{port}{path}");
}

#[test]
fn the_tutorial_runs_on_a_fresh_engine_with_no_registry() {
    let mut engine = tutorial_engine();
    // Preloaded: present before anything was pulled (no registry exists here).
    let images = engine.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("berth/getting-started:latest"), "{images}");

    let port = free_port().unwrap();
    let publish = format!("127.0.0.1:{port}:80");
    engine.docker_ok(&["run", "-d", "-p", &publish, IMAGE]);
    let page = wait_for_page(port, "/");
    assert!(page.contains("Welcome to Berth"), "{page}");
    let style = wait_for_page(port, "/style.css");
    assert!(style.contains("pre.cmd"), "{style}");

    // Loaded once per store: a user who removes it does not get it back at restart.
    let ids = engine.docker_ok(&["ps", "-aq"]);
    engine.docker_ok(&["rm", "-f", "-v", ids.trim()]);
    engine.docker_ok(&["rmi", IMAGE]);
    engine.stop();
    engine.respawn().unwrap();
    let images = engine.docker_ok(&["images", "-q", IMAGE]);
    assert!(images.trim().is_empty(), "removed, yet back: {images}");
}

/// `docker compose` for the docker CLI where only Debian's docker-compose 1.29 exists:
/// a CLI plugin that hands its arguments to it (both speak the same subcommands).
fn compose_plugin(docker_config: &Path) {
    let dir = docker_config.join("cli-plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("docker-compose");
    std::fs::write(
        &plugin,
        "#!/bin/sh\n\
         if [ \"$1\" = docker-cli-plugin-metadata ]; then\n\
         echo '{\"SchemaVersion\":\"0.1.0\",\"Vendor\":\"Berth tests\",\"Version\":\"1.29.2\",\
         \"ShortDescription\":\"docker-compose 1.29 as docker compose\"}'\n\
         exit 0\nfi\nshift\nexec docker-compose \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn has_compose_v2() -> bool {
    Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_command_block_of_the_tutorial_runs_in_order() {
    let blocks: Vec<Block> = pages()
        .iter()
        .flat_map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            blocks_of(&name, &std::fs::read_to_string(p).unwrap())
        })
        .collect();
    assert!(blocks.len() >= 30, "only {} command blocks", blocks.len());

    let engine = tutorial_engine();
    let work = tempfile::tempdir().unwrap();
    if !has_compose_v2() {
        compose_plugin(&engine.docker_config());
    }
    let ports: Vec<(u16, u16)> = PAGE_PORTS
        .iter()
        .map(|&p| (p, free_port().unwrap()))
        .collect();
    let localize = |s: &str| -> String {
        let mut s = s.to_string();
        for (page, free) in &ports {
            s = s
                .replace(&format!("-p {page}:"), &format!("-p 127.0.0.1:{free}:"))
                .replace(&format!("localhost:{page}"), &format!("127.0.0.1:{free}"));
        }
        s
    };
    let app_port = ports[1].1.to_string();

    // What the app (or `berth tutorial`) does first; the pages start from there.
    let first = localize("docker run -d -p 8080:80 --name getting-started berth/getting-started");
    let args: Vec<&str> = first.split_whitespace().skip(1).collect();
    engine.docker_ok(&args);
    wait_for_page(ports[0].1, "/");

    let cwd_file = work.path().join(".cwd");
    std::fs::write(&cwd_file, work.path().to_string_lossy().as_bytes()).unwrap();
    for (n, b) in blocks.iter().enumerate() {
        let command = localize(&b.command);
        let body = match &b.stdin {
            // `-t` needs a terminal: `script` gives the command one, fed from stdin.
            Some(_) => format!("script -qec {} /dev/null", shell_quote(&command)),
            None => command.clone(),
        };
        let script = format!(
            "set -e\ncd \"$(cat {cwd:?})\"\n{body}\npwd > {cwd:?}\n",
            cwd = cwd_file
        );
        let mut child = Command::new("bash");
        child
            .arg("-c")
            .arg(&script)
            .env("DOCKER_HOST", engine.docker_host())
            .env("DOCKER_CONFIG", engine.docker_config())
            .env("DOCKER_BUILDKIT", "0")
            .env("APP_PORT", &app_port)
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut proc = child.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = proc.stdin.take().unwrap();
            if let Some(input) = &b.stdin {
                // After the shell's prompt is up; `script` passes it on to the container.
                std::thread::sleep(Duration::from_millis(1500));
                let _ = stdin.write_all(format!("{input}\n").as_bytes());
                std::thread::sleep(Duration::from_millis(1500));
            }
        }
        let out = berth_tests::vm::finish_within(proc, BLOCK_LIMIT).unwrap_or_else(|| {
            panic!(
                "block {n} ({}) still running after {BLOCK_LIMIT:?}: {command}",
                b.page
            )
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("--- {} #{n}: $ {command}\n{stdout}{stderr}", b.page);
        assert!(
            out.status.success(),
            "{} block {n} failed ({}): {command}\nstdout:\n{stdout}\nstderr:\n{stderr}\nengine log:\n{}",
            b.page,
            out.status,
            engine.log()
        );
        if let Some(want) = &b.expect {
            // What the user's terminal shows: stdout and stderr (`docker logs` passes
            // the container's stderr on as its own).
            assert!(
                stdout.contains(want.as_str()) || stderr.contains(want.as_str()),
                "{} block {n} ({command}) printed no {want:?}:\n{stdout}\n{stderr}",
                b.page
            );
        }
    }
    // The last page removes what the tutorial made: nothing runs any more.
    let left = engine.docker_ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "containers left: {left}");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn berth_tutorial_runs_it_from_the_terminal() {
    let engine = tutorial_engine();
    let berth = berth_tests::vm::workspace_bin("berth").expect("cargo build -p berth");
    let run = || {
        let out = Command::new(&berth)
            .args(["tutorial", "--no-open"])
            .env("DOCKER_HOST", engine.docker_host())
            .env("DOCKER_CONFIG", engine.docker_config())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // The command is printed, then run with the user's docker CLI.
    let first = run();
    assert!(
        first.contains("$ docker run -d -p ")
            && first.contains(" --name getting-started berth/getting-started"),
        "{first}"
    );
    let port: u16 = first
        .lines()
        .find_map(|l| l.strip_prefix("The tutorial is at http://localhost:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {first}"));
    assert!(wait_for_page(port, "/").contains("Welcome to Berth"));
    // Again: found running; stopped: started again on the same port.
    assert!(run().contains("already running"));
    engine.docker_ok(&["stop", "-t", "1", "getting-started"]);
    let again = run();
    assert!(again.contains("$ docker start getting-started"), "{again}");
    assert!(again.contains(&format!("localhost:{port}")), "{again}");
    engine.docker_ok(&["rm", "-f", "getting-started"]);
}
