//! Engine IV, image distribution: `docker commit` (with `--change`, `-m`, `-a`), and
//! the round trips built on it, through the stock `docker` CLI.

use berth_tests::engine::Engine;
use berth_tests::images::{self, Compression};
use berth_tests::registry::{Registry, RegistryAuth};

fn setup() -> (Registry, Engine, String) {
    berth_tests::busybox_engine()
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

#[test]
fn commit_save_rmi_load_run_round_trips() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "--name",
        "maker",
        &img,
        "sh",
        "-c",
        "echo saved-and-loaded > /proof",
    ]);
    engine.docker_ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/proof\"]",
        "maker",
        "roundtrip:1",
    ]);
    engine.docker_ok(&["rm", "maker"]);
    let id = engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "roundtrip:1"]);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("images.tar");
    // Both the committed image and the pulled one, in one archive.
    engine.docker_ok(&["save", "-o", archive.to_str().unwrap(), "roundtrip:1", &img]);
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for want in ["manifest.json", "index.json", "oci-layout"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    engine.docker_ok(&["rmi", "roundtrip:1", &img]);
    assert_eq!(engine.docker_ok(&["images", "-q"]).trim(), "");
    let loaded = engine.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: roundtrip:1"), "{loaded}");
    assert_eq!(
        engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "roundtrip:1"]),
        id
    );
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "roundtrip:1"]),
        "saved-and-loaded\n"
    );
    assert_eq!(
        engine.docker_ok(&["run", "--rm", &img, "echo", "base-ok"]),
        "base-ok\n"
    );
}

#[test]
fn a_tampered_archive_is_refused_and_registers_nothing() {
    let (_r, engine, img) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.tar");
    engine.docker_ok(&["save", "-o", good.to_str().unwrap(), &img]);
    engine.docker_ok(&["rmi", &img]);
    // Rewrite the archive with the config's diff_id changed: the layer no longer matches.
    let bad = tmp.path().join("bad.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&bad).unwrap());
    let mut ar = tar::Archive::new(std::fs::File::open(&good).unwrap());
    let manifest: serde_json::Value = {
        let mut ar2 = tar::Archive::new(std::fs::File::open(&good).unwrap());
        let mut e = ar2
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
            .unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let config_path = manifest[0]["Config"].as_str().unwrap().to_string();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if path == config_path {
            let mut cfg: serde_json::Value = serde_json::from_slice(&data).unwrap();
            cfg["rootfs"]["diff_ids"][0] =
                serde_json::Value::String(format!("sha256:{}", "0".repeat(64)));
            data = serde_json::to_vec(&cfg).unwrap();
        }
        let mut h = e.header().clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.append(&h, &data[..]).unwrap();
    }
    out.finish().unwrap();
    let o = engine.docker(&["load", "-i", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("diff_id"), "{err}");
    assert_eq!(engine.docker_ok(&["images", "-q"]).trim(), "");
}

#[test]
fn push_then_pull_on_a_fresh_engine_gives_the_same_image() {
    let (registry, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "--name",
        "pushsrc",
        &img,
        "sh",
        "-c",
        "echo pushed > /pushed",
    ]);
    let target = format!("{}/team/app:v2", registry.addr());
    engine.docker_ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/pushed\"]",
        "pushsrc",
        &target,
    ]);
    let id = engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &target]);
    let out = engine.docker_ok(&["push", &target]);
    assert!(out.contains("v2: digest: sha256:"), "{out}");
    // The base layer came from this registry: mounted or already there, not uploaded twice.
    assert!(
        out.contains("Mounted from") || out.contains("Layer already exists"),
        "{out}"
    );
    let again = engine.docker_ok(&["push", &target]);
    assert!(again.contains("Layer already exists"), "{again}");
    let fresh = Engine::start().unwrap();
    fresh.docker_ok(&["pull", "-q", &target]);
    assert_eq!(
        fresh.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &target]),
        id
    );
    assert_eq!(fresh.docker_ok(&["run", "--rm", &target]), "pushed\n");
    let digests = engine.docker_ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &target]);
    assert!(digests.contains("team/app@sha256:"), "{digests}");
    engine.docker_ok(&["rm", "pushsrc"]);
}

#[test]
fn push_and_login_against_an_htpasswd_registry() {
    let registry = Registry::start(RegistryAuth::Basic {
        user: "pusher".into(),
        password: "s3cret".into(),
    })
    .unwrap();
    let open = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&open, "bb:latest").unwrap();
    let base = format!("{}/bb:latest", open.addr());
    engine.docker_ok(&["pull", "-q", &base]);
    let target = format!("{}/private/bb:1", registry.addr());
    engine.docker_ok(&["tag", &base, &target]);
    let denied = engine.docker(&["push", &target]);
    assert!(!denied.status.success(), "pushed without credentials");
    let wrong = engine.docker_stdin(
        &[
            "login",
            "-u",
            "pusher",
            "--password-stdin",
            &registry.addr(),
        ],
        "nope\n",
    );
    assert!(!wrong.status.success());
    let good = engine.docker_stdin(
        &[
            "login",
            "-u",
            "pusher",
            "--password-stdin",
            &registry.addr(),
        ],
        "s3cret\n",
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let out = engine.docker_ok(&["push", &target]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    engine.docker_ok(&["rmi", &target, &base]);
    engine.docker_ok(&["pull", "-q", &target]);
}

#[test]
fn export_then_import_makes_a_runnable_image() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "--name",
        "exported",
        &img,
        "sh",
        "-c",
        "echo from-export > /marker",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("rootfs.tar");
    engine.docker_ok(&["export", "-o", tar.to_str().unwrap(), "exported"]);
    let tar_bytes = std::fs::read(&tar).unwrap();
    let mut import = engine.docker_cmd(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/marker\"]",
        "-m",
        "from a test",
        "-",
        "imported:1",
    ]);
    let out = {
        use std::io::Write;
        let mut child = import
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&tar_bytes).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .starts_with("sha256:"));
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "imported:1"]),
        "from-export\n"
    );
    let comment = engine.docker_ok(&["image", "inspect", "-f", "{{.Comment}}", "imported:1"]);
    assert_eq!(comment.trim(), "Imported from from a test");
    engine.docker_ok(&["rm", "exported"]);
}
