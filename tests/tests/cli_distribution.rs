//! Engine IV, image distribution: `docker commit` (with `--change`, `-m`, `-a`), and
//! the round trips built on it, through the stock `docker` CLI.

use berth_tests::engine::Engine;
use berth_tests::images::{self, Compression};
use berth_tests::registry::{Registry, RegistryAuth};

fn setup() -> (Registry, Engine, String) {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "bb:latest").unwrap();
    let name = format!("{}/bb:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &name]);
    (registry, engine, name)
}

#[test]
fn commit_makes_an_image_of_the_changes_with_config_changes() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "--name",
        "src",
        &img,
        "sh",
        "-c",
        "mkdir -p /app && echo committed > /app/hello && ln /app/hello /app/hardlink && rm /bin/ls",
    ]);
    let id = engine.docker_ok(&[
        "commit",
        "-m",
        "first commit",
        "-a",
        "Berth Tests <t@example.test>",
        "-c",
        "CMD [\"cat\", \"/app/hello\"]",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "EXPOSE 8080",
        "-c",
        "WORKDIR /app",
        "-c",
        "LABEL stage=committed",
        "src",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    // The new image runs with the changed config and the container's files.
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "committed:v1"]),
        "committed\n"
    );
    let seen = engine.docker_ok(&[
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "echo $GREETING; pwd; cat hardlink; ls /bin/ls >/dev/null 2>&1 || echo no-ls",
    ]);
    assert_eq!(seen, "hi\n/app\ncommitted\nno-ls\n", "{seen}");
    let meta = engine.docker_ok(&[
        "image", "inspect", "-f",
        "{{.Comment}}|{{.Author}}|{{.Config.Labels.stage}}|{{json .Config.ExposedPorts}}|{{len .RootFS.Layers}}",
        "committed:v1",
    ]);
    assert_eq!(
        meta.trim(),
        "first commit|Berth Tests <t@example.test>|committed|{\"8080/tcp\":{}}|2"
    );
    let history = engine.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "committed:v1",
    ]);
    assert!(
        history.lines().next().unwrap().contains("first commit"),
        "{history}"
    );
    // Runtime mount points (/etc/hosts and friends) are not part of the layer.
    engine.docker_ok(&["run", "--name", "src2", "committed:v1", "true"]);
    let diff = engine.docker_ok(&["diff", "src2"]);
    assert_eq!(diff.trim(), "", "{diff}");
    // A bad change is refused with dockerd's words.
    let bad = engine.docker(&["commit", "-c", "RUN true", "src", "bad:v1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("run is not a valid change command"));
    engine.docker_ok(&["rm", "src", "src2"]);
}
