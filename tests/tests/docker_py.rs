//! docker-py (from PyPI) as a client: proves the API works beyond the docker CLI.

use berth_tests::engine::Engine;
use berth_tests::images::{self, Compression};
use berth_tests::registry::{Registry, RegistryAuth};

#[test]
fn docker_py_drives_a_container_lifecycle() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "py:latest").unwrap();
    let name = format!("{}/py:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &name]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/lifecycle.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", engine.docker_host())
        .env("IMAGE", &name)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "docker-py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("docker-py lifecycle ok"));
}

#[test]
fn docker_py_drives_volumes() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "pyv:latest").unwrap();
    let name = format!("{}/pyv:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &name]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/volumes.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", engine.docker_host())
        .env("IMAGE", &name)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "docker-py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("docker-py volumes ok"));
}
