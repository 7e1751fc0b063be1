//! Engine VI: Compose v2 (the `docker compose` 2.26 CLI plugin from Debian trixie) on
//! Berth — healthcheck-gated `depends_on`, `up --wait`, profiles, the everyday
//! commands (`logs -f` and `top` among them), `down -v --rmi local`, and `watch`
//! syncing files (deletions included).

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use berth_tests::engine::Engine;
use berth_tests::output_text;

fn ok(o: &Output) -> String {
    let text = output_text(o);
    assert!(o.status.success(), "{text}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("dir");
    }
    std::fs::write(p, text).expect("write");
}

/// `docker compose --project-directory DIR -p PROJECT ARGS…`, to spawn.
fn compose_cmd(e: &Engine, dir: &Path, project: &str, args: &[&str]) -> std::process::Command {
    let mut a = vec![
        "compose",
        "--project-directory",
        dir.to_str().expect("UTF-8 path"),
        "-p",
        project,
    ];
    a.extend_from_slice(args);
    e.docker_cmd(&a)
}

/// The same, run to its end.
fn compose(e: &Engine, dir: &Path, project: &str, args: &[&str]) -> Output {
    compose_cmd(e, dir, project, args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("docker compose")
}

/// Polls `f` until it holds (30 s at most): compose acts in the background.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The lines a child prints, as they come.
fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads `lines` until one contains `wanted` (30 s at most).
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(wanted) => return,
            Ok(_) => {}
            Err(e) => panic!("no line with {wanted:?} ({e})"),
        }
    }
}

#[test]
fn healthy_dependencies_profiles_and_everyday_commands() {
    let (_r, e, img) = berth_tests::busybox_engine();
    e.with_cli_plugins();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = berth_tests::unique("cv2");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            r#"services:
  db:
    image: {img}
    command: ["sh", "-c", "sleep 1; touch /ready; exec sleep 300"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -e /ready"]
      interval: 1s
      retries: 60
  init:
    image: {img}
    command: ["sh", "-c", "echo initialised > /dev/null"]
  app:
    image: {img}
    command: ["sleep", "300"]
    stop_grace_period: 1s
    volumes: ["data:/data"]
    depends_on:
      db: {{condition: service_healthy}}
      init: {{condition: service_completed_successfully}}
  dbg:
    image: {img}
    command: ["sleep", "300"]
    stop_grace_period: 1s
    profiles: [debug]
volumes:
  data: {{}}
"#
        ),
    );
    let d = dir.path();
    ok(&compose(&e, d, &project, &["up", "-d"]));
    // `app` started only once `db` was healthy and `init` had exited 0.
    let health = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Health.Status}}",
        &format!("{project}-db-1"),
    ]);
    assert_eq!(health, "healthy\n");
    let init = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        &format!("{project}-init-1"),
    ]);
    assert_eq!(init, "exited 0\n");
    // The profile's service is left out.
    let ps = ok(&compose(&e, d, &project, &["ps", "--format", "json"]));
    let services: Vec<serde_json::Value> = ps
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let named = |s: &str| services.iter().find(|v| v["Service"] == s).cloned();
    assert_eq!(named("app").expect("app")["State"], "running", "{ps}");
    assert_eq!(named("db").expect("db")["Health"], "healthy", "{ps}");
    assert!(named("dbg").is_none(), "{ps}");

    assert_eq!(
        ok(&compose(
            &e,
            d,
            &project,
            &["run", "--rm", "-T", "app", "echo", "hi"]
        )),
        "hi\n"
    );
    assert_eq!(
        ok(&compose(
            &e,
            d,
            &project,
            &[
                "exec",
                "-T",
                "app",
                "sh",
                "-c",
                "echo from-exec > /data/f; cat /data/f"
            ]
        )),
        "from-exec\n"
    );
    let copied = d.join("copied");
    ok(&compose(
        &e,
        d,
        &project,
        &["cp", "app:/data/f", copied.to_str().expect("UTF-8")],
    ));
    assert_eq!(
        std::fs::read_to_string(&copied).expect("copied"),
        "from-exec\n"
    );
    ok(&compose(&e, d, &project, &["restart", "app"]));
    ok(&compose(&e, d, &project, &["up", "-d", "--scale", "app=3"]));
    let apps = ok(&compose(&e, d, &project, &["ps", "-q", "app"]));
    assert_eq!(apps.lines().count(), 3, "{apps}");
    ok(&compose(
        &e,
        d,
        &project,
        &["--profile", "debug", "up", "-d", "dbg"],
    ));
    let dbg = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Running}}",
        &format!("{project}-dbg-1"),
    ]);
    assert_eq!(dbg, "true\n");

    ok(&compose(
        &e,
        d,
        &project,
        &["--profile", "debug", "down", "-v"],
    ));
    let label = format!("label=com.docker.compose.project={project}");
    assert_eq!(e.docker_ok(&["ps", "-aq", "--filter", &label]), "");
    assert_eq!(e.docker_ok(&["volume", "ls", "-q", "--filter", &label]), "");
    assert_eq!(
        e.docker_ok(&["network", "ls", "-q", "--filter", &label]),
        ""
    );

    // The same file with Compose 1.29: `up` twice (the second reuses the network it
    // made), `run`, and down.
    let v1 = |args: &[&str]| {
        let o = std::process::Command::new("docker-compose")
            .arg("--project-directory")
            .arg(d)
            .args(["-p", &format!("{project}v1")])
            .args(args)
            .env("DOCKER_HOST", e.docker_host())
            .output()
            .expect("docker-compose 1.29");
        ok(&o)
    };
    v1(&["up", "-d"]);
    v1(&["up", "-d"]);
    assert_eq!(v1(&["run", "--rm", "-T", "app", "echo", "hi"]), "hi\n");
    v1(&["down", "-v"]);
}

#[test]
fn up_wait_returns_once_healthy_and_watch_syncs_changes_and_deletions() {
    let (_r, e, img) = berth_tests::busybox_engine();
    e.with_cli_plugins();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = berth_tests::unique("cvw");
    let d = dir.path();
    write(d, "Dockerfile", &format!("FROM {img}\nRUN mkdir -p /app\n"));
    write(d, "src/a.txt", "v1\n");
    write(d, "src/b.txt", "b\n");
    write(
        d,
        "compose.yaml",
        r#"services:
  web:
    build: .
    command: ["sh", "-c", "sleep 1; touch /ready; exec sleep 300"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -e /ready"]
      interval: 1s
      retries: 60
    develop:
      watch:
        - action: sync
          path: ./src
          target: /app
"#,
    );
    ok(&compose(&e, d, &project, &["up", "-d", "--wait"]));
    let health = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Health.Status}}",
        &format!("{project}-web-1"),
    ]);
    assert_eq!(health, "healthy\n", "--wait returned before healthy");

    let mut watch = compose_cmd(&e, d, &project, &["watch", "--no-up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("compose watch");
    let cat = |file: &str| {
        let o = compose(&e, d, &project, &["exec", "-T", "web", "cat", file]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Watch needs a moment to start watching: change until it syncs.
    let mut n = 0;
    eventually("a change synced", || {
        n += 1;
        write(d, "src/a.txt", &format!("v{n}\n"));
        std::thread::sleep(Duration::from_millis(500));
        cat("/app/a.txt") == format!("v{n}\n")
    });
    write(d, "src/c.txt", "c\n");
    eventually("a new file synced", || cat("/app/c.txt") == "c\n");
    // A deletion and a change in one batch: both reach the container.
    std::fs::remove_file(d.join("src/c.txt")).expect("rm");
    write(d, "src/a.txt", "after-delete\n");
    eventually("the deletion and the change synced", || {
        cat("/app/a.txt") == "after-delete\n" && cat("/app/c.txt").is_empty()
    });
    let _ = watch.kill();
    let _ = watch.wait();
    ok(&compose(&e, d, &project, &["down", "--rmi", "local"]));
    let label = format!("label=com.docker.compose.project={project}");
    assert_eq!(e.docker_ok(&["ps", "-aq", "--filter", &label]), "");
    assert!(!e
        .docker(&["image", "inspect", &format!("{project}-web")])
        .status
        .success());
}

#[test]
fn secrets_configs_logs_top_and_events() {
    let (_r, e, img) = berth_tests::busybox_engine();
    e.with_cli_plugins();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = berth_tests::unique("cvs");
    let d = dir.path();
    write(d, "s.txt", "secret-value\n");
    write(d, "c.txt", "config-value\n");
    write(
        d,
        "compose.yaml",
        &format!(
            r#"services:
  app:
    image: {img}
    command: ["sh", "-c", "echo started-$$((6*7)); echo to-stderr >&2; exec sleep 300"]
    stop_grace_period: 1s
    secrets: [s]
    configs:
      - source: c
        target: /etc/app/c.conf
secrets:
  s:
    file: ./s.txt
configs:
  c:
    file: ./c.txt
"#
        ),
    );
    // Events from before `up` on: the restart below must show in them.
    let mut events = compose_cmd(&e, d, &project, &["events", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("compose events");
    ok(&compose(&e, d, &project, &["up", "-d"]));
    assert_eq!(
        ok(&compose(
            &e,
            d,
            &project,
            &[
                "exec",
                "-T",
                "app",
                "cat",
                "/run/secrets/s",
                "/etc/app/c.conf"
            ]
        )),
        "secret-value\nconfig-value\n"
    );
    eventually("the service's output in its logs", || {
        let logs = ok(&compose(&e, d, &project, &["logs", "--no-color", "app"]));
        logs.contains("started-42") && logs.contains("to-stderr")
    });
    let top = ok(&compose(&e, d, &project, &["top", "app"]));
    assert!(top.contains("sleep 300"), "{top}");
    // `logs -f`: what was written, then what is written while it follows.
    let mut follow = compose_cmd(&e, d, &project, &["logs", "-f", "--no-color", "app"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("compose logs -f");
    let lines = lines_of(follow.stdout.take().expect("piped stdout"));
    wait_for_line(&lines, "started-42");
    ok(&compose(
        &e,
        d,
        &project,
        &[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "echo late-line > /proc/1/fd/1",
        ],
    ));
    wait_for_line(&lines, "late-line");
    ok(&compose(&e, d, &project, &["restart", "app"]));
    ok(&compose(&e, d, &project, &["down"]));
    // The project is gone: `logs -f` has nothing left to follow and ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while follow.try_wait().expect("logs -f status").is_none() {
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("`compose logs -f` still following after `down`");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = events.kill();
    let out = events.wait_with_output().expect("events output");
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    let actions: Vec<String> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["service"] == "app")
        .filter_map(|v| v["action"].as_str().map(str::to_string))
        .collect();
    for wanted in [
        "create", "start", "kill", "die", "stop", "restart", "destroy",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "no {wanted} in {actions:?}"
        );
    }
}
