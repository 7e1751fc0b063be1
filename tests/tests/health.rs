//! Healthchecks through the stock `docker` CLI against the real engine: a probe that
//! fails turns the container unhealthy, one that succeeds makes it healthy again,
//! `ps` shows and filters the status, `events` has the `health_status` changes,
//! `inspect` has `State.Health`; `--no-healthcheck` has none; stopping a container
//! leaves no probe behind. Images come from a local registry, built from
//! busybox-static.

use std::time::{Duration, Instant};

use berth_tests::engine::Engine;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls `docker inspect -f '{{.State.Health.Status}}'` until it reads `want`.
fn wait_health(engine: &Engine, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = engine.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", name]);
        if last.trim() == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{name} never became {want}: last {last:?}");
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn a_probe_turns_a_container_unhealthy_then_healthy() {
    let (_r, engine, img) = berth_tests::busybox_engine();
    let since = now_secs() - 1;
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        &img,
        "sleep",
        "60",
    ]);
    let ps = engine.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.contains("(health: starting)") || ps.contains("(unhealthy)"),
        "{ps}"
    );
    wait_health(&engine, "hc", "unhealthy");
    let ps = engine.docker_ok(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(ps.trim(), "hc");

    engine.docker_ok(&["exec", "hc", "touch", "/tmp/ok"]);
    wait_health(&engine, "hc", "healthy");
    let ps = engine.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("hc Up") && ps.contains("(healthy)"), "{ps}");
    let found = engine.docker_ok(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
    assert_eq!(found.trim(), "hc");
    let none = engine.docker_ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(none.trim(), "");

    let health = engine.docker_ok(&["inspect", "-f", "{{json .State.Health}}", "hc"]);
    let health: serde_json::Value = serde_json::from_str(health.trim()).unwrap();
    assert_eq!(health["Status"], "healthy", "{health}");
    assert_eq!(health["FailingStreak"], 0, "{health}");
    let log = health["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{health}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{health}");
    assert!(
        last["Start"].as_str().is_some_and(|s| !s.is_empty()),
        "{health}"
    );
    assert!(
        last["End"].as_str().is_some_and(|s| !s.is_empty()),
        "{health}"
    );
    // Probes are not listed as the container's execs.
    let execs = engine.docker_ok(&["inspect", "-f", "{{len .ExecIDs}}", "hc"]);
    assert!(matches!(execs.trim(), "0" | "<no value>"), "{execs}");

    let until = now_secs() + 1;
    let events = engine.docker_ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "container=hc",
        "--format",
        "{{.Action}}",
    ]);
    let health_events: Vec<&str> = events
        .lines()
        .filter(|l| l.starts_with("health_status"))
        .collect();
    assert_eq!(
        health_events,
        ["health_status: unhealthy", "health_status: healthy"],
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l == "exec_start: /bin/sh -c test -f /tmp/ok"),
        "{events}"
    );
    engine.docker_ok(&["rm", "-f", "hc"]);
}

#[test]
fn no_healthcheck_leaves_no_health() {
    let (_r, engine, img) = berth_tests::busybox_engine();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--no-healthcheck",
        &img,
        "sleep",
        "60",
    ]);
    let health = engine.docker_ok(&["inspect", "-f", "{{json .State.Health}}", "plain"]);
    assert_eq!(health.trim(), "null");
    let ps = engine.docker_ok(&["ps", "--format", "{{.Status}}"]);
    assert!(!ps.contains('('), "{ps}");
    let none = engine.docker_ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(none.trim(), "plain");
    let bad = engine.docker(&["ps", "--filter", "health=sick"]);
    assert!(!bad.status.success());
    engine.docker_ok(&["rm", "-f", "plain"]);
}

#[test]
fn stopping_a_container_leaves_no_probe_behind() {
    let (_r, engine, img) = berth_tests::busybox_engine();
    // A probe that is still running when the container stops.
    let marker = "sleep 4242";
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        marker,
        "--health-interval",
        "1s",
        "--health-timeout",
        "60s",
        &img,
        "sleep",
        "60",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(marker).is_empty() {
        assert!(Instant::now() < deadline, "the probe never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    engine.docker_ok(&["stop", "-t", "1", "slow"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(marker);
        let dirs = std::fs::read_dir(engine.root().join("containers"))
            .unwrap()
            .flatten()
            .filter_map(|c| std::fs::read_dir(c.path().join("exec")).ok())
            .map(|d| d.count())
            .sum::<usize>();
        if left.is_empty() && dirs == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "probe left behind: {left:?}, {dirs} exec directories"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = engine.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "slow"]);
    assert_eq!(status.trim(), "unhealthy");
    engine.docker_ok(&["rm", "slow"]);
}

#[test]
fn health_survives_an_engine_restart_and_probing_goes_on() {
    let (_r, mut engine, img) = berth_tests::busybox_engine();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "kept",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        &img,
        "sh",
        "-c",
        "touch /tmp/ok; sleep 60",
    ]);
    wait_health(&engine, "kept", "healthy");
    engine.kill9();
    engine.respawn().unwrap();
    // The record kept the health the old engine saw.
    let log = engine.docker_ok(&["inspect", "-f", "{{len .State.Health.Log}}", "kept"]);
    assert!(log.trim().parse::<usize>().unwrap() >= 1, "{log}");
    // And the new engine probes: the probe now fails.
    engine.docker_ok(&["exec", "kept", "rm", "/tmp/ok"]);
    wait_health(&engine, "kept", "unhealthy");
    engine.docker_ok(&["rm", "-f", "kept"]);
}
