//! docker-compose 1.29 (Debian's, a Python Engine API client) brings up a two-service
//! app with a network, a named volume and a published port, and `down -v` removes
//! exactly what it created.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use berth_tests::engine::Engine;
use berth_tests::images::{self, Compression};
use berth_tests::registry::{Registry, RegistryAuth};

fn compose(engine: &Engine, image: &str, port: u16, args: &[&str]) -> std::process::Output {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/web-and-client.yml");
    Command::new("docker-compose")
        .arg("-f")
        .arg(&file)
        .args(["-p", "berthdemo"])
        .args(args)
        .env("DOCKER_HOST", engine.docker_host())
        .env("IMAGE", image)
        .env("PORT", port.to_string())
        .output()
        .expect("docker-compose (Debian's package) is installed")
}

fn ok(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "docker-compose failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn compose_brings_up_and_tears_down_a_two_service_app() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "bb:latest").unwrap();
    let image = format!("{}/bb:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &image]);
    // Things compose did not create, which `down -v` must leave alone.
    engine.docker_ok(&["network", "create", "bystander-net"]);
    engine.docker_ok(&["volume", "create", "bystander-vol"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    ok(compose(&engine, &image, port, &["up", "-d"]));
    // The client reached the web service by service name and by alias.
    let mut logs = String::new();
    for _ in 0..100 {
        logs = ok(compose(
            &engine,
            &image,
            port,
            &["logs", "--no-color", "client"],
        ));
        if logs.matches("hello-compose").count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(logs.matches("hello-compose").count() >= 2, "{logs}");
    // The published port answers on the host's loopback.
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let _ = s.read_to_string(&mut body);
            if body.contains("hello-compose") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(body.contains("hello-compose"), "{body}");
    let ps = ok(compose(&engine, &image, port, &["ps", "-q"]));
    assert_eq!(ps.lines().count(), 2, "{ps}");

    ok(compose(&engine, &image, port, &["down", "-v"]));
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    let nets = engine.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("berthdemo"), "{nets}");
    assert!(nets.lines().any(|l| l == "bystander-net"), "{nets}");
    let vols = engine.docker_ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert_eq!(vols.trim(), "bystander-vol");
}
