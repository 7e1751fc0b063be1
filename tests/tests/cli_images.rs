//! Engine I acceptance: the stock `docker` CLI against berth-agent, with images built
//! locally from busybox-static and served by a real `docker-registry` on loopback.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::engine::Engine;
use berth_tests::images::{self, Compression};
use berth_tests::registry::{Registry, RegistryAuth};
use serde_json::Value;

fn inspect(engine: &Engine, name: &str) -> Value {
    let out = engine.docker_ok(&["image", "inspect", name]);
    let v: Value = serde_json::from_str(&out).expect("inspect output is JSON");
    v[0].clone()
}

fn image_lines(engine: &Engine) -> Vec<String> {
    engine
        .docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn version_and_info_report_the_engine() {
    let engine = Engine::start().unwrap();
    let v = engine.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.53 1.24 linux");
    let info = engine.docker_ok(&[
        "info",
        "--format",
        "{{.Driver}} {{.Images}} {{.OSType}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("overlay2 0 linux {}", engine.root().display())
    );
    // The socket is owner and group only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(engine.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn swarm_commands_answer_as_a_dockerd_outside_a_swarm() {
    let engine = Engine::start().unwrap();
    let leave = engine.docker(&["swarm", "leave"]);
    assert!(!leave.status.success());
    let said = berth_tests::output_text(&leave);
    assert!(said.contains("This node is not part of a swarm"), "{said}");
    let nodes = engine.docker(&["node", "ls"]);
    let said = berth_tests::output_text(&nodes);
    assert!(said.contains("This node is not a swarm manager"), "{said}");
    let (status, _, body) = engine.request("GET", "/v1.41/services", None);
    assert_eq!(status, 503);
    let msg: Value = serde_json::from_slice(&body).unwrap();
    assert!(msg["message"]
        .as_str()
        .unwrap()
        .starts_with("This node is not a swarm manager"));
}

#[test]
fn ping_and_version_negotiation() {
    let engine = Engine::start().unwrap();
    let (status, headers, body) = engine.request("GET", "/_ping", None);
    assert_eq!(status, 200);
    assert_eq!(body, b"OK");
    let h = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(h("Api-Version"), "1.53");
    assert_eq!(h("Ostype"), "linux");
    assert_eq!(h("Docker-Experimental"), "false");
    let (status, _, _) = engine.request("HEAD", "/_ping", None);
    assert_eq!(status, 200);
    for v in ["1.24", "1.41", "1.50", "1.53"] {
        let (status, _, _) = engine.request("GET", &format!("/v{v}/version"), None);
        assert_eq!(status, 200, "version {v}");
    }
    let (status, _, body) = engine.request("GET", "/v1.12/version", None);
    assert_eq!(status, 400);
    let msg: Value = serde_json::from_slice(&body).unwrap();
    assert!(msg["message"].as_str().unwrap().contains("too old"));
    let (status, _, body) = engine.request("GET", "/v1.99/info", None);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("too new"));
}

#[test]
fn malformed_requests_get_docker_shaped_errors() {
    let engine = Engine::start().unwrap();
    /// method, path, body, expected status, expected message fragment
    type Case<'a> = (&'a str, &'a str, Option<&'a [u8]>, u16, &'a str);
    let cases: &[Case] = &[
        (
            "POST",
            "/v1.50/images/create?fromImage=UPPER/case&tag=latest",
            None,
            400,
            "must be lowercase",
        ),
        (
            "POST",
            "/v1.50/images/create?fromImage=bad%20name",
            None,
            400,
            "invalid reference format",
        ),
        ("POST", "/v1.50/images/create", None, 400, "fromImage"),
        (
            "POST",
            "/v1.50/images/create?fromImage=a&platform=plan9%2Fmips",
            None,
            400,
            "not supported",
        ),
        (
            "GET",
            "/v1.50/images/nope/json",
            None,
            404,
            "No such image: nope:latest",
        ),
        ("DELETE", "/v1.50/images/nope", None, 404, "No such image"),
        (
            "GET",
            "/v1.50/images/json?filters=%7Bnot-json",
            None,
            400,
            "invalid filter",
        ),
        (
            "GET",
            "/v1.50/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
            None,
            400,
            "invalid filter 'bogus'",
        ),
        ("POST", "/v1.50/auth", Some(b"{nope"), 400, "invalid JSON"),
        (
            "GET",
            "/v1.50/no/such/endpoint",
            None,
            404,
            "page not found",
        ),
        (
            "POST",
            "/v1.50/images/nope/tag?repo=x",
            None,
            404,
            "No such image",
        ),
    ];
    for (method, path, body, want_status, want_msg) in cases {
        let (status, headers, resp) = engine.request(method, path, *body);
        assert_eq!(
            status,
            *want_status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&resp)
        );
        let ct = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        assert_eq!(ct, "application/json", "{method} {path}");
        let v: Value = serde_json::from_slice(&resp).unwrap_or_else(|e| panic!("{path}: {e}"));
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(want_msg),
            "{method} {path}: {msg:?} lacks {want_msg:?}"
        );
    }
    // The engine is still healthy afterwards.
    engine.docker_ok(&["version"]);
}

#[test]
fn pull_inspect_tag_history_and_remove() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    let name = format!("{}/test/busybox:latest", registry.addr());
    img.push(&registry, "test/busybox:latest").unwrap();

    let out = engine.docker_ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Digest: {}", img.manifest_digest())),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );

    let id = img.config_digest();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert!(image_lines(&engine).contains(&format!("{name} {short}")));

    let v = inspect(&engine, &name);
    assert_eq!(v["Id"], id);
    assert_eq!(v["RepoTags"], serde_json::json!([name]));
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!(
            "{}/test/busybox@{}",
            registry.addr(),
            img.manifest_digest()
        )])
    );
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!(img.diff_ids()));
    assert!(
        v["Size"].as_i64().unwrap() > 500_000,
        "busybox is in the layer"
    );
    // The unpacked layer really holds busybox.
    let upper = v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(Path::new(upper).join("bin/busybox").is_file());

    // Pulling again changes nothing.
    let out = engine.docker_ok(&["pull", &name]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );

    // history: newest first, the top row carries the ID.
    let hist = engine.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        &name,
    ]);
    let first = hist.lines().next().unwrap();
    assert!(first.starts_with(&id), "{hist}");
    assert!(hist.lines().count() >= 1);

    // tag: a second name for the same ID.
    engine.docker_ok(&["tag", &name, "mine/app:v1"]);
    assert!(image_lines(&engine).contains(&format!("mine/app:v1 {short}")));
    // Removing by ID with two repositories needs -f, as dockerd.
    let out = engine.docker(&["rmi", short]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("image is referenced in multiple repositories"),
        "{err}"
    );
    // Removing one name only untags.
    let out = engine.docker_ok(&["rmi", "mine/app:v1"]);
    assert_eq!(out.trim(), "Untagged: mine/app:v1");
    assert!(Path::new(upper).exists(), "image still present");
    // Removing the last name deletes the image and its layer.
    let out = engine.docker_ok(&["rmi", &name]);
    assert!(out.contains(&format!("Untagged: {name}")), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(!Path::new(upper).exists(), "layer removed");
    assert!(image_lines(&engine).is_empty());
}

#[test]
fn filters_and_prune() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let gz = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    // A different image (its config differs, so its ID does).
    let plain = images::whiteout_image().unwrap();
    gz.push(&registry, "app:one").unwrap();
    plain.push(&registry, "app:two").unwrap();
    let one = format!("{}/app:one", registry.addr());
    let two = format!("{}/app:two", registry.addr());
    engine.docker_ok(&["pull", "-q", &one]);
    engine.docker_ok(&["pull", "-q", &two]);
    engine.docker_ok(&["tag", &one, "other:x"]);

    let refs = engine.docker_ok(&[
        "images",
        "--filter",
        "reference=other",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(refs.trim(), "other:x");
    let refs = engine.docker_ok(&[
        "images",
        "--filter",
        &format!("reference={}/*", registry.addr()),
        "-q",
    ]);
    assert_eq!(refs.lines().count(), 2, "{refs}");
    let labelled = engine.docker_ok(&["images", "--filter", "label=org.berth.test", "-q"]);
    assert!(!labelled.trim().is_empty(), "the test images carry a label");
    let none = engine.docker_ok(&["images", "--filter", "label=no.such.label", "-q"]);
    assert!(none.trim().is_empty());

    // Make `two`'s image dangling: point its tag at `one`'s image.
    engine.docker_ok(&["tag", &one, &two]);
    let dangling = engine.docker_ok(&["images", "--filter", "dangling=true", "-q", "--no-trunc"]);
    assert_eq!(dangling.trim(), plain.config_digest());
    let out = engine.docker_ok(&["image", "prune", "-f"]);
    assert!(
        out.contains(&format!("deleted: {}", plain.config_digest())),
        "{out}"
    );
    assert!(engine
        .docker_ok(&["images", "--filter", "dangling=true", "-q"])
        .trim()
        .is_empty());
    // -a removes every unused image.
    let out = engine.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(
        image_lines(&engine).is_empty(),
        "{:?}",
        image_lines(&engine)
    );
}

#[test]
fn multiarch_index_selects_the_platform() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let index = images::multiarch_index().unwrap();
    index.push(&registry, "multi:latest").unwrap();
    let name = format!("{}/multi:latest", registry.addr());

    engine.docker_ok(&["pull", &name]);
    let v = inspect(&engine, &name);
    assert_eq!(v["Id"], index.config_digest_for("amd64", None));
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!(
            "{}/multi@{}",
            registry.addr(),
            index.index_digest()
        )])
    );

    engine.docker_ok(&["pull", "--platform", "linux/arm64", &name]);
    let v = inspect(&engine, &name);
    assert_eq!(v["Id"], index.config_digest_for("arm64", None));
    assert_eq!(v["Architecture"], "arm64");

    engine.docker_ok(&["pull", "--platform", "linux/arm/v7", &name]);
    let v = inspect(&engine, &name);
    assert_eq!(v["Id"], index.config_digest_for("arm", Some("v7")));

    let out = engine.docker(&["pull", "--platform", "linux/s390x", &name]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no matching manifest"));

    // Create for another platform than the local image's: dockerd's 404, which
    // makes the CLI pull the platform asked for and create again.
    let body = serde_json::json!({"Image": name, "Cmd": ["true"]}).to_string();
    let (status, _, body) = engine.request(
        "POST",
        "/containers/create?platform=linux/amd64",
        Some(body.as_bytes()),
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains(
            "does not match the specified platform: wanted linux/amd64, actual: linux/arm/v7"
        ),
        "{body}"
    );
    let out = engine.docker_ok(&["create", "--platform", "linux/amd64", &name, "true"]);
    let id = out.trim().lines().last().unwrap_or_default().to_string();
    assert_eq!(inspect(&engine, &name)["Architecture"], "amd64");
    // Without --platform, an image for another platform gets dockerd's warning.
    engine.docker_ok(&["pull", "--platform", "linux/arm64", &name]);
    let out = engine.docker(&["create", &name, "true"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "The requested image's platform (linux/arm64) does not match the detected host platform"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    engine.docker_ok(&["rm", &id]);
}

#[test]
fn zstd_and_uncompressed_layers() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    for (compression, tag) in [(Compression::Zstd, "zstd"), (Compression::None, "plain")] {
        let img = images::busybox_image(compression, "amd64").unwrap();
        img.push(&registry, &format!("comp:{tag}")).unwrap();
        let name = format!("{}/comp:{tag}", registry.addr());
        let out = engine.docker_ok(&["pull", &name]);
        // Same content as the zstd layer: the second pull finds the layer present.
        assert!(out.contains("Status: Downloaded newer image"), "{out}");
        let v = inspect(&engine, &name);
        assert_eq!(v["Id"], img.config_digest());
        assert_eq!(v["RootFS"]["Layers"], serde_json::json!(img.diff_ids()));
    }
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::fs::MetadataExt;
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    let img = images::whiteout_image().unwrap();
    img.push(&registry, "wh:latest").unwrap();
    let name = format!("{}/wh:latest", registry.addr());
    engine.docker_ok(&["pull", &name]);
    let v = inspect(&engine, &name);
    let upper = Path::new(v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap());
    let gone = std::fs::symlink_metadata(upper.join("data/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!upper.join("data/.wh.gone").exists());
    let opaque = xattr::get(upper.join("opq"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(upper.join("opq/new").is_file());
}

#[test]
fn malicious_layers_are_refused_and_write_nothing_outside() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let engine = Engine::start().unwrap();
    for evil in images::malicious_images().unwrap() {
        evil.image
            .push(&registry, &format!("evil:{}", evil.tag))
            .unwrap();
        let name = format!("{}/evil:{}", registry.addr(), evil.tag);
        let out = engine.docker(&["pull", &name]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{} pulled", evil.tag);
        assert!(err.contains("invalid layer"), "{}: {err}", evil.tag);
        assert!(
            !evil.escape_target.exists(),
            "{} wrote {:?}",
            evil.tag,
            evil.escape_target
        );
        if let Some(victim) = &evil.victim {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                std::fs::metadata(victim).unwrap().nlink(),
                1,
                "{} linked {victim:?}",
                evil.tag
            );
        }
    }
    assert!(image_lines(&engine).is_empty());
    let tmp = engine.root().join("image/layers/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no half layers"
    );
    let committed = engine.root().join("image/layers/sha256");
    assert_eq!(
        std::fs::read_dir(&committed).unwrap().count(),
        0,
        "no committed layers"
    );
}

#[test]
fn token_auth_registry_and_login() {
    let registry = Registry::start(RegistryAuth::Token {
        user: "berth".into(),
        password: "s3cret".into(),
    })
    .unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "private/app:1").unwrap();
    let name = format!("{}/private/app:1", registry.addr());

    let out = engine.docker(&["pull", &name]);
    assert!(!out.status.success(), "anonymous pull must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pull access denied") || err.contains("unauthorized"),
        "{err}"
    );

    let bad = engine.docker_stdin(
        &["login", "-u", "berth", "--password-stdin", &registry.addr()],
        "wrong\n",
    );
    assert!(!bad.status.success(), "bad password accepted");

    let good = engine.docker_stdin(
        &["login", "-u", "berth", "--password-stdin", &registry.addr()],
        "s3cret\n",
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("Login Succeeded"));

    let out = engine.docker_ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(inspect(&engine, &name)["Id"], img.config_digest());
}

#[test]
fn basic_auth_registry() {
    let registry = Registry::start(RegistryAuth::Basic {
        user: "basic".into(),
        password: "pw".into(),
    })
    .unwrap();
    let engine = Engine::start().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    img.push(&registry, "b/app:1").unwrap();
    let name = format!("{}/b/app:1", registry.addr());
    assert!(!engine.docker(&["pull", &name]).status.success());
    let good = engine.docker_stdin(
        &["login", "-u", "basic", "--password-stdin", &registry.addr()],
        "pw\n",
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    engine.docker_ok(&["pull", &name]);
}

/// Starts a pull over the raw API and returns once the first layer bytes are flowing.
fn start_pull(socket: &Path, name: &str) -> UnixStream {
    let mut s = UnixStream::connect(socket).unwrap();
    let (image, tag) = name.rsplit_once(':').unwrap();
    write!(
        s,
        "POST /v1.50/images/create?fromImage={image}&tag={tag} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("pull stream ended before any download progress");
        }
        if line.contains("Downloading") {
            return s;
        }
    }
    panic!("no download progress within 60 s");
}

#[test]
fn sigkill_mid_pull_leaves_a_consistent_store() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let mut engine = Engine::start().unwrap();
    let big = images::random_image(96).unwrap();
    big.push(&registry, "big:1").unwrap();
    let name = format!("{}/big:1", registry.addr());

    let _conn = start_pull(engine.socket(), &name);
    engine.kill9();

    let root = engine.root().to_path_buf();
    let mut engine = Engine::start_with(root.clone(), &[]).unwrap();
    assert!(
        image_lines(&engine).is_empty(),
        "a half pull must not show up"
    );
    assert_eq!(
        std::fs::read_dir(root.join("image/layers/tmp"))
            .unwrap()
            .count(),
        0
    );

    let out = engine.docker_ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let v = inspect(&engine, &name);
    assert_eq!(v["Id"], big.config_digest());
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!(big.diff_ids()));

    // And it survives a clean restart too.
    engine.stop();
    let engine = Engine::start_with(root, &[]).unwrap();
    assert_eq!(inspect(&engine, &name)["Id"], big.config_digest());
}
