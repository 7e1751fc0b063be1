//! Engine IV, `docker build` (classic builder, first slice) through the stock CLI, with
//! and without BuildKit asked for.

use std::time::Duration;

use berth_tests::engine::Engine;
use berth_tests::registry::Registry;

fn setup() -> (Registry, Engine, String) {
    berth_tests::busybox_engine()
}

fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    d
}

#[test]
fn a_dockerfile_builds_and_each_instruction_shows() {
    let (_r, engine, img) = setup();
    let ctx = context(
        &format!(
            "ARG BASE={img}\nFROM $BASE\nARG GREETING=hello\nENV APP_HOME=/app \\\n    MODE=test\nWORKDIR $APP_HOME\nCOPY app.txt ./\nCOPY conf/ /etc/conf/\nRUN echo \"$GREETING from run\" > run.txt && echo building-output\nLABEL org.example.stage=\"built\"\nEXPOSE 8080\nVOLUME /data\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN echo shell-form-ran > /app/shell.txt\nHEALTHCHECK --interval=5s CMD true\nSTOPSIGNAL SIGINT\nONBUILD RUN echo child\nUSER nobody\nCMD [\"cat\", \"/app/app.txt\", \"/app/run.txt\"]\n"
        ),
        &[("app.txt", "copied file\n"), ("conf/settings.ini", "k=v\n")],
    );
    let out = engine.docker_ok(&[
        "build",
        "-t",
        "built:1",
        "--build-arg",
        "GREETING=hi",
        ctx.path().to_str().unwrap(),
    ]);
    // RUN's output and dockerd's closing lines come through the stream.
    assert!(out.contains("building-output"), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "built:1"]),
        "copied file\nhi from run\n"
    );
    let cfg = engine.docker_ok(&[
        "image", "inspect", "-f",
        "{{.Config.WorkingDir}}|{{.Config.User}}|{{index .Config.Labels \"org.example.stage\"}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{range .Config.Env}}{{.}};{{end}}",
        "built:1",
    ]);
    assert_eq!(
        cfg.trim(),
        "/app|nobody|built|{\"8080/tcp\":{}}|{\"/data\":{}}|PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin;APP_HOME=/app;MODE=test;",
        "{cfg}"
    );
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "built:1", "cat", "/etc/conf/settings.ini"]),
        "k=v\n"
    );
    let more = engine.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}}|{{.Config.Healthcheck.Interval}}|{{.Config.StopSignal}}|{{json .Config.OnBuild}}|{{json .Config.Shell}}",
        "built:1",
    ]);
    assert_eq!(
        more.trim(),
        "[\"CMD-SHELL\",\"true\"]|5s|SIGINT|[\"RUN echo child\"]|[\"/bin/sh\",\"-e\",\"-c\"]"
    );
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "built:1", "cat", "/app/shell.txt"]),
        "shell-form-ran\n"
    );
    // No intermediate containers are left.
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn classic_builder_without_buildkit_env_and_with_buildkit_0() {
    let (_r, engine, img) = setup();
    let ctx = context(&format!("FROM {img}\nRUN echo one > /one\n"), &[]);
    for env in [None, Some("0")] {
        let mut cmd =
            engine.docker_cmd(&["build", "-q", "-t", "plain:1", ctx.path().to_str().unwrap()]);
        cmd.env_remove("DOCKER_BUILDKIT");
        if let Some(v) = env {
            cmd.env("DOCKER_BUILDKIT", v);
        }
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{env:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout)
            .trim()
            .starts_with("sha256:"));
    }
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "plain:1", "cat", "/one"]),
        "one\n"
    );
}

#[test]
fn bad_dockerfiles_and_failing_runs_are_reported_and_leave_nothing() {
    let (_r, engine, img) = setup();
    let ctx = context(&format!("FROM {img}\nFROOM x\n"), &[]);
    let o = engine.docker(&["build", "-t", "bad:1", ctx.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 2") && err.contains("unknown instruction: FROOM"),
        "{err}"
    );
    let ctx = context(
        &format!("FROM {img}\nRUN echo partial > /p && exit 3\n"),
        &[],
    );
    let o = engine.docker(&["build", "-t", "bad:2", ctx.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    assert!(engine.docker(&["image", "inspect", "bad:2"]).status.code() != Some(0));
}

#[test]
fn rebuilds_use_the_cache_until_an_input_changes() {
    let (_r, engine, img) = setup();
    let ctx = context(
        &format!("FROM {img}\nRUN echo first > /first\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy-of-a\nCMD [\"cat\", \"/copy-of-a\"]\n"),
        &[("a.txt", "version one\n")],
    );
    let dir = ctx.path().to_str().unwrap();
    let first = engine.docker_ok(&["build", "-t", "cached:1", dir]);
    assert_eq!(first.matches("Using cache").count(), 0, "{first}");
    let id1 = engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "cached:1"]);
    // Nothing changed: every step after FROM is a cache hit, and the image is the same.
    let again = engine.docker_ok(&["build", "-t", "cached:1", dir]);
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
    assert_eq!(
        engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "cached:1"]),
        id1
    );
    // The copied file changed: the first RUN stays cached, the COPY and what follows run.
    std::fs::write(ctx.path().join("a.txt"), "version two\n").unwrap();
    let changed = engine.docker_ok(&["build", "-t", "cached:2", dir]);
    assert_eq!(changed.matches("Using cache").count(), 1, "{changed}");
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "cached:2"]),
        "version two\n"
    );
    // --no-cache runs everything again.
    let fresh = engine.docker_ok(&["build", "--no-cache", "-t", "cached:3", dir]);
    assert_eq!(fresh.matches("Using cache").count(), 0, "{fresh}");
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn multi_stage_with_copy_from_and_target() {
    let (_r, engine, img) = setup();
    let ctx = context(
        &format!(
            "FROM {img} AS builder\nRUN mkdir -p /out && echo compiled > /out/artifact && echo junk > /junk\n\nFROM {img} AS tester\nRUN echo testing > /tested\n\nFROM {img}\nCOPY --from=builder /out/artifact /app/artifact\nCMD [\"cat\", \"/app/artifact\"]\n"
        ),
        &[],
    );
    let dir = ctx.path().to_str().unwrap();
    engine.docker_ok(&["build", "-t", "multi:final", dir]);
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "multi:final"]),
        "compiled\n"
    );
    // Only the copied file came over, not the builder's other changes.
    let junk = engine.docker(&["run", "--rm", "multi:final", "cat", "/junk"]);
    assert!(!junk.status.success());
    // --target stops at that stage.
    engine.docker_ok(&["build", "--target", "tester", "-t", "multi:tester", dir]);
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "multi:tester", "cat", "/tested"]),
        "testing\n"
    );
    let missing = engine.docker(&["build", "--target", "nope", dir]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("failed to reach build target nope"));
    let bad_from = context(&format!("FROM {img}\nCOPY --from=ghost /x /x\n"), &[]);
    let o = engine.docker(&["build", bad_from.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ghost"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn dockerignore_add_tar_and_chown() {
    let (_r, engine, img) = setup();
    // A tar.gz in the context, which ADD unpacks.
    let ctx = context(
        &format!(
            "FROM {img}\nADD bundle.tar.gz /opt/\nCOPY --chown=65534:65534 owned.txt /owned.txt\nCOPY --chown=4242 owned.txt /byid.txt\nCOPY . /ctx/\nCOPY keep/*.txt /globbed/\n"
        ),
        &[("owned.txt", "mine\n"), ("secret.key", "do not ship\n"), ("keep/me.txt", "kept\n")],
    );
    std::fs::write(ctx.path().join(".dockerignore"), "secret.key\n*.tar.gz\n").unwrap();
    {
        let f = std::fs::File::create(ctx.path().join("bundle.tar.gz")).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(8);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "inner/file.txt", &b"unpacked"[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    // The ignore file names the archive too, so ADD finds nothing: dockerd's error.
    let o = engine.docker(&["build", "-t", "ign:0", ctx.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bundle.tar.gz"));
    std::fs::write(ctx.path().join(".dockerignore"), "secret.key\n").unwrap();
    engine.docker_ok(&["build", "-t", "ign:1", ctx.path().to_str().unwrap()]);
    let seen = engine.docker_ok(&[
        "run", "--rm", "ign:1", "sh", "-c",
        "cat /opt/inner/file.txt; echo; stat -c %u:%g /owned.txt /byid.txt; cat /globbed/me.txt; ls /ctx; test -e /ctx/secret.key && echo LEAKED || true",
    ]);
    // A bare uid gives its number as the gid too, as BuildKit does.
    assert!(
        seen.starts_with("unpacked\n65534:65534\n4242:4242\nkept\n"),
        "{seen}"
    );
    assert!(seen.contains("keep") && !seen.contains("LEAKED"), "{seen}");
}

#[test]
fn heredoc_runs_and_add_from_a_loopback_url() {
    let (_r, engine, img) = setup();
    // A one-shot HTTP server on loopback for ADD to fetch from.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = "fetched over http\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let ctx = context(
        &format!(
            "FROM {img}\nRUN <<EOF\necho from-heredoc > /h1\necho second-line >> /h1\nEOF\nRUN cat > /h2 <<-END\n\tindented\n\tEND\nADD http://127.0.0.1:{port}/remote.txt /fetched/\n"
        ),
        &[],
    );
    engine.docker_ok(&["build", "-t", "here:1", ctx.path().to_str().unwrap()]);
    server.join().unwrap();
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "here:1",
        "cat",
        "/h1",
        "/h2",
        "/fetched/remote.txt",
    ]);
    assert_eq!(
        out,
        "from-heredoc\nsecond-line\nindented\nfetched over http\n"
    );
}

#[test]
fn pull_refreshes_the_base_image() {
    let (registry, engine, img) = setup();
    let ctx = context(&format!("FROM {img}\nRUN true\n"), &[]);
    engine.docker_ok(&[
        "build",
        "-q",
        "-t",
        "on-old:1",
        ctx.path().to_str().unwrap(),
    ]);
    // The registry's tag now points at another image (one with VOLUME /data).
    let newer = berth_tests::images::busybox_volume_image().unwrap();
    newer.push(&registry, "bb:latest").unwrap();
    engine.docker_ok(&[
        "build",
        "-q",
        "--pull",
        "-t",
        "on-new:1",
        ctx.path().to_str().unwrap(),
    ]);
    let vols = engine.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Volumes}}",
        "on-new:1",
    ]);
    assert!(
        vols.contains("/data"),
        "--pull did not refresh the base: {vols}"
    );
    let old = engine.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Volumes}}",
        "on-old:1",
    ]);
    assert!(!old.contains("/data"), "{old}");
}

/// A context whose tar ends before the body does (padding after the end marker,
/// as some tar writers add) is still read to the end: the client gets the
/// build's answer, not a broken pipe from a connection closed under it.
#[test]
fn a_context_is_read_to_the_end_of_the_body() {
    let engine = Engine::start().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let dockerfile = b"FROM scratch\nCMD [\"x\"]\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", &dockerfile[..])
        .unwrap();
    let mut body = tar.into_inner().unwrap();
    // Far more than a socket buffer holds, so the client is still writing it
    // when the build is done.
    body.resize(body.len() + 4 * 1024 * 1024, 0);
    let (status, _, reply) = engine
        .try_request(
            "POST",
            "/v1.50/build?t=padded:1",
            &[("Content-Type", "application/x-tar")],
            Some(&body),
        )
        .expect("the whole body was taken");
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("Successfully tagged padded:1"), "{text}");
}
