//! docker-py's own integration suite (upstream `tests/integration`), run offline
//! against Berth with docker-py 7.2.0 as the client. `tests/py/upstream/` has the
//! runner, the stand-in images and `selection.txt` (what is left out, and why);
//! `cargo xtask test` prepares the suite and its venv. The same selection run against
//! Debian's dockerd (`tests/py/upstream/on-dockerd.sh`) shows it is fair.

use std::path::Path;
use std::process::Command;

use berth_tests::engine::{docker_py_dir, Engine};
use berth_tests::netns::Netns;

#[test]
fn docker_py_integration_suite_passes_on_berth() {
    let dir = docker_py_dir();
    // The suite creates networks on fixed subnets (172.28.0.0/16, …) that the host or
    // a parallel suite may already use: the engine gets a namespace of its own.
    let ns = Netns::new("berth-dpy");
    let engine = Engine::start_in_netns(&ns.name).unwrap();
    let out = tempfile::tempdir().unwrap();
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/upstream/run_suite.py");
    let status = Command::new(dir.join("venv/bin/python"))
        .arg(&runner)
        .arg("--suite")
        .arg(dir.join("suite"))
        .arg("--out")
        .arg(out.path())
        .env("DOCKER_HOST", engine.docker_host())
        .status()
        .expect("the venv's python runs");
    if !status.success() {
        let log = engine.log();
        // A count that is off by one (a list test) needs every container's life, not
        // only the last minute of the log.
        eprintln!(
            "container creates, removals and lists:\n{}",
            containers_lifecycle(&log)
        );
        eprintln!("engine log (tail):\n{}", tail(&log, 60));
    }
    assert!(
        status.success(),
        "docker-py's suite failed on Berth (above)"
    );
}

fn containers_lifecycle(log: &str) -> String {
    log.lines()
        .filter(|l| {
            let Some((_, path)) = l.split_once(" path=") else {
                return false;
            };
            let path = path.split(' ').next().unwrap_or_default();
            path.ends_with("/containers/json")
                || path.ends_with("/containers/create")
                || (l.contains("method=DELETE") && path.contains("/containers/"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
