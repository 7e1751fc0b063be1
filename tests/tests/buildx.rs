//! Engine V: `docker build` and `docker buildx build` through the buildx plugin and
//! `docker compose build` through Compose v2 — the real plugins (buildx 0.13, Compose
//! 2.26 from Debian trixie) speaking BuildKit's API to the engine, a real registry for
//! the base image and `--push`, nothing from the internet. A fallback to a
//! `docker-container` builder would start a container, which every test checks for.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use berth_tests::engine::Engine;
use berth_tests::output_text;
use berth_tests::registry::Registry;

fn setup() -> (Registry, Engine, String) {
    let (r, e, img) = berth_tests::busybox_engine();
    e.with_cli_plugins();
    (r, e, img)
}

fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("temp dir");
    std::fs::write(d.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    for (name, content) in files {
        let p = d.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(p, content).expect("file");
    }
    d
}

fn ok(o: &Output) -> String {
    let text = output_text(o);
    assert!(o.status.success(), "{text}");
    text
}

fn failed(o: &Output) -> String {
    let text = output_text(o);
    assert!(!o.status.success(), "succeeded: {text}");
    text
}

/// No container is left: no intermediate build container, no builder container.
fn nothing_left(e: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ps = e.docker_ok(&["ps", "-aq"]);
        if ps.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "containers left: {ps}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let scratch = e.root().join("build-tmp");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|rd| rd.flatten().map(|d| d.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build scratch left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = e.root().to_string_lossy().into_owned();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "mounts left under {root}"
    );
}

/// `docker build` in the background, returned once its RUN's container is up.
fn build_until_its_run_starts(e: &Engine, tag: &str, ctx: &Path) -> std::process::Child {
    let child = e
        .docker_cmd(&["build", "--progress=plain", "-t", tag, path(ctx)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker build");
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.docker_ok(&["ps", "-q"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "the RUN never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn docker_build_and_buildx_load_make_images_that_run_and_a_rebuild_is_cached() {
    let (_r, e, img) = setup();
    let ctx = context(
        &format!(
            "FROM {img}\nENV GREETING=hi\nWORKDIR /app\nCOPY a.txt ./\nRUN echo \"$GREETING from run\" > run.txt && echo building-output\nCMD [\"cat\", \"/app/a.txt\", \"/app/run.txt\"]\n"
        ),
        &[("a.txt", "copied\n")],
    );
    // Plain `docker build` goes to buildx when it is installed; no --load needed.
    let first = ok(&e.docker(&["build", "--progress=plain", "-t", "bk:1", path(ctx.path())]));
    for shown in [
        "[internal] load build definition from Dockerfile",
        "[internal] load build context",
        "[1/4] FROM ",
        "[2/4] WORKDIR /app",
        "[3/4] COPY a.txt ./",
        "[4/4] RUN echo \"$GREETING from run\" > run.txt && echo building-output",
        "building-output",
        "exporting to image",
        "naming to docker.io/library/bk:1",
    ] {
        assert!(first.contains(shown), "no {shown:?} in\n{first}");
    }
    assert_eq!(
        e.docker_ok(&["run", "--rm", "bk:1"]),
        "copied\nhi from run\n"
    );
    // BuildKit's history: an entry per instruction, metadata ones without a layer.
    let history = e.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}|{{.Size}}",
        "bk:1",
    ]);
    let top: Vec<&str> = history.lines().take(5).collect();
    let k = "buildkit.dockerfile.v0";
    assert_eq!(
        top[0],
        format!("CMD [\"cat\" \"/app/a.txt\" \"/app/run.txt\"]|{k}|0B")
    );
    assert!(
        top[1].starts_with(&format!(
            "RUN /bin/sh -c echo \"$GREETING from run\" > run.txt && echo building-output # buildkit|{k}|"
        )),
        "{history}"
    );
    assert!(
        top[2].starts_with(&format!("COPY a.txt ./ # buildkit|{k}|")),
        "{history}"
    );
    assert_eq!(top[3], format!("WORKDIR /app|{k}|0B"), "{history}");
    assert_eq!(top[4], format!("ENV GREETING=hi|{k}|0B"), "{history}");

    let again = ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "--progress=plain",
        "-t",
        "bk:2",
        path(ctx.path()),
    ]));
    // The step's name has the words too; its output would be a log line.
    let ran = again
        .lines()
        .any(|l| l.ends_with(" building-output") && !l.contains("RUN"));
    assert!(!ran, "RUN ran again:\n{again}");
    let cached = again.lines().filter(|l| l.ends_with(" CACHED")).count();
    assert!(cached >= 2, "COPY and RUN not CACHED:\n{again}");
    let ids = e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "bk:1", "bk:2"]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "a fully cached build is the same image");
    nothing_left(&e);
}

#[test]
fn target_build_args_labels_and_no_cache() {
    let (_r, e, img) = setup();
    // `unused` fails if it runs: BuildKit builds only what the target needs.
    let ctx = context(
        &format!(
            "FROM {img} AS base\nARG V=default\nRUN echo \"v=$V\" > /v\nFROM base AS unused\nRUN exit 7\nFROM {img} AS final\nCOPY --from=base /v /v\nLABEL stage=final\n"
        ),
        &[],
    );
    let out = ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "--progress=plain",
        "--build-arg",
        "V=given",
        "--label",
        "org.berth.test=yes",
        "-t",
        "multi:1",
        path(ctx.path()),
    ]));
    assert!(out.contains("[base 2/2] RUN echo \"v=$V\" > /v"), "{out}");
    assert!(out.contains("[final 2/2] COPY --from=base /v /v"), "{out}");
    assert!(!out.contains("exit 7"), "an unneeded stage ran:\n{out}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "multi:1", "cat", "/v"]),
        "v=given\n"
    );
    let labels = e.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        "multi:1",
    ]);
    assert!(labels.contains("\"org.berth.test\":\"yes\""), "{labels}");
    assert!(labels.contains("\"stage\":\"final\""), "{labels}");

    let base = ok(&e.docker(&[
        "build",
        "--progress=plain",
        "--target",
        "base",
        "-t",
        "multi:base",
        path(ctx.path()),
    ]));
    assert!(!base.contains("[final"), "{base}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "multi:base", "cat", "/v"]),
        "v=default\n"
    );
    // The stage's build args head its RUN's history entry, as BuildKit writes it.
    let history = e.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "multi:base",
    ]);
    assert!(
        history.contains("RUN |1 V=default /bin/sh -c echo \"v=$V\" > /v # buildkit"),
        "{history}"
    );

    let fresh = ok(&e.docker(&[
        "build",
        "--progress=plain",
        "--no-cache",
        "--build-arg",
        "V=given",
        "-t",
        "multi:2",
        path(ctx.path()),
    ]));
    assert!(
        !fresh.contains("CACHED"),
        "--no-cache used the cache:\n{fresh}"
    );
    nothing_left(&e);
}

#[test]
fn local_tar_docker_and_oci_outputs_and_push_to_a_registry() {
    let (r, e, img) = setup();
    let ctx = context(
        &format!("FROM {img}\nCOPY a.txt /out/a.txt\n"),
        &[("a.txt", "exported\n")],
    );
    let dest = tempfile::tempdir().expect("temp dir");
    let dir = dest.path().join("dir");
    let local = format!("type=local,dest={}", path(&dir));
    ok(&e.docker(&["buildx", "build", "--output", &local, path(ctx.path())]));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/a.txt")).expect("exported file"),
        "exported\n"
    );
    assert!(dir.join("bin/busybox").is_file());

    let tar = dest.path().join("out.tar");
    let spec = format!("type=tar,dest={}", path(&tar));
    ok(&e.docker(&["buildx", "build", "--output", &spec, path(ctx.path())]));
    let f = std::fs::File::open(&tar).expect("the tarball");
    let names: Vec<String> = tar::Archive::new(f)
        .entries()
        .expect("a tar")
        .flatten()
        .filter_map(|en| en.path().ok().map(|p| p.to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().any(|n| n == "out/a.txt"), "{names:?}");

    // `type=docker` and `type=oci` tarballs: `docker load` reads the one under its
    // name, skopeo the other as an OCI archive; neither is tagged in the store.
    let docker_tar = dest.path().join("docker.tar");
    let spec = format!("type=docker,dest={}", path(&docker_tar));
    ok(&e.docker(&[
        "buildx",
        "build",
        "-t",
        "tarred:1",
        "--output",
        &spec,
        path(ctx.path()),
    ]));
    assert!(!e.docker(&["image", "inspect", "tarred:1"]).status.success());
    let loaded = e.docker_ok(&["load", "-i", path(&docker_tar)]);
    assert!(loaded.contains("tarred:1"), "{loaded}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "tarred:1", "cat", "/out/a.txt"]),
        "exported\n"
    );
    let oci_tar = dest.path().join("oci.tar");
    let spec = format!("type=oci,dest={}", path(&oci_tar));
    ok(&e.docker(&["buildx", "build", "--output", &spec, path(ctx.path())]));
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", path(&oci_tar)))
        .output()
        .expect("skopeo");
    let manifest = output_text(&inspect);
    assert!(inspect.status.success(), "{manifest}");
    assert!(manifest.contains("\"layers\""), "{manifest}");
    // Cache export is refused by name (inline is harmless and let through).
    let cache = format!("type=local,dest={}", path(&dest.path().join("cache")));
    let err = failed(&e.docker(&["buildx", "build", "--cache-to", &cache, path(ctx.path())]));
    assert!(
        err.contains("cache export (--cache-to type=local)"),
        "{err}"
    );
    ok(&e.docker(&[
        "buildx",
        "build",
        "--cache-to",
        "type=inline",
        path(ctx.path()),
    ]));

    let pushed = format!("{}/pushed:1", r.addr());
    ok(&e.docker(&["buildx", "build", "--push", "-t", &pushed, path(ctx.path())]));
    e.docker_ok(&["rmi", &pushed]);
    e.docker_ok(&["pull", "-q", &pushed]);
    assert_eq!(
        e.docker_ok(&["run", "--rm", &pushed, "cat", "/out/a.txt"]),
        "exported\n"
    );
    nothing_left(&e);
}

#[test]
fn compose_build_and_up_build() {
    let (_r, e, img) = setup();
    let project = berth_tests::unique("bkc");
    let ctx = context(
        &format!("FROM {img}\nARG WHO=nobody\nRUN echo \"built for $WHO\" > /who\n"),
        &[(
            "compose.yaml",
            "services:\n  app:\n    build:\n      context: .\n      args:\n        WHO: compose\n    command: [\"cat\", \"/who\"]\n",
        )],
    );
    let dir = path(ctx.path());
    ok(&e.docker(&[
        "compose",
        "--project-directory",
        dir,
        "-p",
        &project,
        "build",
    ]));
    let image = format!("{project}-app");
    assert_eq!(
        e.docker_ok(&["run", "--rm", &image, "cat", "/who"]),
        "built for compose\n"
    );
    let up = ok(&e.docker(&[
        "compose",
        "--project-directory",
        dir,
        "-p",
        &project,
        "up",
        "--build",
        "--abort-on-container-exit",
    ]));
    assert!(up.contains("built for compose"), "{up}");
    ok(&e.docker(&[
        "compose",
        "--project-directory",
        dir,
        "-p",
        &project,
        "down",
    ]));
    nothing_left(&e);
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing_behind() {
    let (_r, e, img) = setup();
    let cases = [
        (format!("FROM {img}\nFROOM x\n"), "FROOM"),
        (format!("FROM {img}\nCOPY missing.txt /\n"), "missing.txt"),
        (
            format!("FROM {img}\nRUN echo partial > /p && exit 3\n"),
            "did not complete successfully: exit code: 3",
        ),
        (
            format!("# syntax=example.com/frontend:1\nFROM {img}\n"),
            "example.com/frontend:1",
        ),
    ];
    for (dockerfile, says) in &cases {
        let ctx = context(dockerfile, &[]);
        let err = failed(&e.docker(&["build", "-t", "bad:1", path(ctx.path())]));
        assert!(err.contains(says), "no {says:?} in\n{err}");
    }
    assert!(!e.docker(&["image", "inspect", "bad:1"]).status.success());

    // Ctrl-C in the middle of a RUN: the build's container goes too.
    let ctx = context(&format!("FROM {img}\nRUN echo started && sleep 60\n"), &[]);
    let mut child = build_until_its_run_starts(&e, "bad:2", ctx.path());
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait();
    nothing_left(&e);
    assert!(!e.docker(&["image", "inspect", "bad:2"]).status.success());

    // A client that dies midway (SIGKILL: its session and its gRPC connection just
    // close) stops the build the same way.
    let mut child = build_until_its_run_starts(&e, "bad:3", ctx.path());
    // The CLI runs the buildx plugin as its child: both go.
    let _ = child.kill();
    let _ = std::process::Command::new("pkill")
        .args([
            "-9",
            "-f",
            "docker-buildx buildx build --progress=plain -t bad:3",
        ])
        .status();
    let _ = child.wait();
    nothing_left(&e);
    assert!(!e.docker(&["image", "inspect", "bad:3"]).status.success());
    assert_eq!(e.request("GET", "/_ping", None).0, 200);
}

#[test]
fn run_mounts_secrets_caches_binds_and_tmpfs_leave_no_trace_in_the_image() {
    let (_r, e, img) = setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, "file-s3cret-value").expect("secret");
    let ctx = context(
        &format!(
            "FROM {img} AS tool\n\
             RUN echo from-stage > /made\n\
             FROM {img}\n\
             RUN --mount=type=secret,id=tok test \"$(tr a-z A-Z < /run/secrets/tok)\" = FILE-S3CRET-VALUE && echo marker-in-layer > /m\n\
             RUN --mount=type=secret,id=envsec,env=FROM_ENV,required test \"$(echo $FROM_ENV | tr a-z A-Z)\" = ENV-S3CRET-VALUE\n\
             RUN --mount=type=cache,target=/var/cache/thing sh -c 'echo run >> /var/cache/thing/runs; wc -l < /var/cache/thing/runs > /runs'\n\
             RUN --mount=type=bind,source=data.txt,target=/src/data.txt cp /src/data.txt /data\n\
             RUN --mount=from=tool,source=/made,target=/from/made cp /from/made /made\n\
             RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/x && ! test -e /m2'\n"
        ),
        &[("data.txt", "bound\n")],
    );
    let secret_arg = format!("id=tok,src={}", path(&secret_file));
    let build = |tag: &str, no_cache: bool| {
        let mut args = vec!["buildx", "build", "--load", "--progress=plain"];
        if no_cache {
            args.push("--no-cache");
        }
        args.extend([
            "--secret",
            &secret_arg,
            "--secret",
            "id=envsec,env=BERTH_TEST_SECRET",
        ]);
        args.extend(["-t", tag, path(ctx.path())]);
        e.docker_cmd(&args)
            .env("BERTH_TEST_SECRET", "env-s3cret-value")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("docker buildx build")
    };
    ok(&build("mounts:1", false));
    assert_eq!(
        e.docker_ok(&["run", "--rm", "mounts:1", "cat", "/runs", "/data", "/made"]),
        "1\nbound\nfrom-stage\n"
    );
    // No mountpoint of any mount is committed.
    let left = e.docker_ok(&[
        "run", "--rm", "mounts:1", "sh", "-c",
        "for p in /run/secrets /run /var/cache/thing /src /from /scratch; do test -e $p && echo $p; done; true",
    ]);
    assert_eq!(left, "", "mountpoints committed");
    // Neither secret is in a layer, the config or the history (the Dockerfile has
    // them in capitals only, so that its own text does not count).
    let saved = dir.path().join("image.tar");
    e.docker_ok(&["save", "-o", path(&saved), "mounts:1"]);
    let bytes = std::fs::read(&saved).expect("saved image");
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("marker-in-layer"), "the saved layers are not plain tar");
    assert!(!has("s3cret-value"), "a secret's value is in the image");
    let history = e.docker_ok(&["history", "--no-trunc", "mounts:1"]);
    assert!(!history.contains("s3cret-value"), "{history}");
    let shm: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|rd| rd.flatten().map(|d| d.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !shm.iter()
            .any(|n| n.to_string_lossy().starts_with("berth-secret-")),
        "secret scratch left: {shm:?}"
    );

    // The cache mount outlives the build: an uncached rebuild sees the first run's file.
    ok(&build("mounts:2", true));
    assert_eq!(
        e.docker_ok(&["run", "--rm", "mounts:2", "cat", "/runs"]),
        "2\n"
    );
    // A cached rebuild does not run the steps again; a changed bound file does.
    std::fs::write(ctx.path().join("data.txt"), "changed\n").expect("data");
    let third = ok(&build("mounts:3", false));
    assert!(third.contains("CACHED"), "{third}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "mounts:3", "cat", "/data"]),
        "changed\n"
    );

    // A required secret the client does not have fails its step by name.
    let ctx = context(
        &format!("FROM {img}\nRUN --mount=type=secret,id=absent,required=true true\n"),
        &[],
    );
    let err = failed(&e.docker(&["buildx", "build", "--progress=plain", path(ctx.path())]));
    assert!(err.contains("secret absent: not found"), "{err}");
    nothing_left(&e);
}

#[test]
fn buildx_du_prune_and_a_cache_that_outlives_the_engine() {
    // (`buildx ls` is in buildkit.rs.)
    let (_r, mut e, img) = setup();
    let ctx = context(
        &format!(
            "FROM {img}\nRUN head -c 3000 /dev/zero > /zeros\nRUN --mount=type=cache,target=/c sh -c 'head -c 5000 /dev/zero > /c/f'\nCOPY a.txt /\n"
        ),
        &[("a.txt", "a\n")],
    );
    let build = |e: &Engine, tag: &str| {
        ok(&e.docker(&[
            "buildx",
            "build",
            "--progress=plain",
            "-t",
            tag,
            path(ctx.path()),
        ]))
    };
    build(&e, "cached:1");
    // The cache outlives the engine: after a crash and restart, all steps are CACHED.
    e.kill9();
    e.respawn().expect("engine restarts");
    let again = build(&e, "cached:2");
    let cached = again.lines().filter(|l| l.ends_with(" CACHED")).count();
    assert_eq!(cached, 3, "not fully cached after a restart:\n{again}");

    let du = ok(&e.docker(&["buildx", "du", "--verbose"]));
    for shown in [
        "Type:\t\tregular",
        "Type:\t\texec.cachemount",
        "Description:\tRUN /bin/sh -c head -c 3000 /dev/zero > /zeros # buildkit",
        "Description:\tcached mount /c",
    ] {
        assert!(du.contains(shown), "no {shown:?} in\n{du}");
    }
    // Sizes are the layers' and the cache directory's.
    assert!(
        du.contains("3kB") || du.contains("3.0kB") || du.contains("3.072kB"),
        "{du}"
    );
    assert!(du.contains("5kB") || du.contains("5.12kB"), "{du}");
    let df = e.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    let count = |du: &str| du.lines().filter(|l| l.starts_with("ID:")).count();
    let records = count(&du);
    assert!(records >= 3, "{du}");
    assert!(
        df.contains(&format!("Build Cache {records}")),
        "df and du disagree ({records} records):\n{df}"
    );

    // The cached steps' images are the builder's: `docker images` shows them only
    // with -a, and `docker image prune` leaves them to `builder prune`.
    let listed = e.docker_ok(&["images", "-q"]);
    let all = e.docker_ok(&["images", "-aq"]);
    assert!(
        all.lines().count() > listed.lines().count(),
        "{listed}\n--\n{all}"
    );
    assert!(!listed.lines().any(|l| l.trim().is_empty()), "{listed}");
    e.docker_ok(&["image", "prune", "-f"]);
    assert_eq!(
        count(&ok(&e.docker(&["buildx", "du", "--verbose"]))),
        records
    );

    // Nothing is older than an hour; a prune with that filter removes nothing.
    ok(&e.docker(&["buildx", "prune", "-f", "--filter", "until=1h"]));
    assert_eq!(
        count(&ok(&e.docker(&["buildx", "du", "--verbose"]))),
        records
    );
    let pruned = ok(&e.docker(&["buildx", "prune", "-f"]));
    assert!(pruned.contains("Total:"), "{pruned}");
    let du = ok(&e.docker(&["buildx", "du"]));
    assert!(
        du.contains("Total:\t\t0B") || du.contains("Total:\t0B"),
        "{du}"
    );
    // The images the builds were named are kept; the intermediate ones are gone.
    assert_eq!(
        e.docker_ok(&["run", "--rm", "cached:2", "sh", "-c", "wc -c < /zeros"])
            .trim(),
        "3000"
    );
    let dangling = e.docker_ok(&["images", "-aq", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), "", "intermediate images left");
    let rebuilt = build(&e, "cached:3");
    assert!(
        !rebuilt.contains(" CACHED"),
        "cached after a prune:\n{rebuilt}"
    );
}

#[test]
fn add_host_shm_size_network_ulimit_and_platform_reach_the_run_steps() {
    let (_r, e, img) = setup();
    let ctx = context(
        &format!(
            "FROM {img}\nRUN grep -q '10.9.8.7[[:space:]]*berth-test-host' /etc/hosts && df -k /dev/shm | tail -1 > /shm && (ip -o link 2>/dev/null || cat /proc/net/dev) | grep -c : > /links && echo $(ulimit -n) $(ulimit -Hn) > /nofile\n"
        ),
        &[],
    );
    ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "--add-host",
        "berth-test-host:10.9.8.7",
        "--shm-size",
        "128m",
        "--network",
        "none",
        "--ulimit",
        "nofile=1234:2345",
        "-t",
        "opts:1",
        path(ctx.path()),
    ]));
    assert_eq!(
        e.docker_ok(&["run", "--rm", "opts:1", "cat", "/nofile"]),
        "1234 2345\n"
    );
    let shm = e.docker_ok(&["run", "--rm", "opts:1", "cat", "/shm"]);
    assert!(shm.split_whitespace().nth(1) == Some("131072"), "{shm}");
    // `--network none`: only the loopback device.
    assert_eq!(
        e.docker_ok(&["run", "--rm", "opts:1", "cat", "/links"])
            .trim(),
        "1"
    );
    // `docker run --shm-size` is the same option on a container.
    let run = e.docker_ok(&[
        "run",
        "--rm",
        "--shm-size",
        "32m",
        &img,
        "sh",
        "-c",
        "df -k /dev/shm | tail -1",
    ]);
    assert!(run.split_whitespace().nth(1) == Some("32768"), "{run}");
    // … and `--ulimit`, which a wrong name or soft > hard fails as dockerd does.
    let limits = e.docker_ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        "--ulimit",
        "nproc=77",
        &img,
        "sh",
        "-c",
        "echo $(ulimit -n) $(ulimit -Hn) $(ulimit -u)",
    ]);
    assert_eq!(limits, "512 1024 77\n");
    let body = format!(
        r#"{{"Image":"{img}","Cmd":["true"],"HostConfig":{{"Ulimits":[{{"Name":"bogus","Soft":1,"Hard":1}}]}}}}"#
    );
    let (status, _, bad) = e.request("POST", "/containers/create", Some(body.as_bytes()));
    let bad = String::from_utf8_lossy(&bad);
    assert_eq!(status, 400, "{bad}");
    assert!(bad.contains("invalid ulimit type: bogus"), "{bad}");

    let other = if cfg!(target_arch = "x86_64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let err = failed(&e.docker(&["buildx", "build", "--platform", other, path(ctx.path())]));
    assert!(
        err.contains(&format!("building for {other} is not supported")),
        "{err}"
    );
}

#[test]
fn named_build_contexts_stand_for_images_stages_and_client_directories() {
    let (_r, e, img) = setup();
    let extra = tempfile::tempdir().expect("temp dir");
    std::fs::write(extra.path().join("data.txt"), "extra-data\n").expect("data");
    std::fs::write(extra.path().join("private.txt"), "ignored\n").expect("private");
    std::fs::write(extra.path().join(".dockerignore"), "private.txt\n").expect("ignore");
    let tree = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(tree.path().join("etc")).expect("dir");
    std::fs::write(tree.path().join("etc/tree.conf"), "from-tree\n").expect("tree");
    // `nosuch/base:9` exists nowhere: only the named context makes the FROM work. The
    // `gen` stage would fail if it ran: the context replaces it.
    let ctx = context(
        "FROM nosuch/base:9 AS gen\n\
         RUN exit 7\n\
         FROM tree AS files\n\
         FROM nosuch/base:9\n\
         COPY --from=extra data.txt /extra.txt\n\
         COPY --from=files /etc/tree.conf /tree.conf\n\
         COPY --from=gen /gen.txt /gen.txt\n\
         RUN --mount=from=extra,target=/e sh -c 'test ! -e /e/private.txt && cat /e/data.txt > /mounted'\n",
        &[],
    );
    let gen = tempfile::tempdir().expect("temp dir");
    std::fs::write(gen.path().join("gen.txt"), "generated\n").expect("gen");
    let base = format!("nosuch/base:9=docker-image://{img}");
    let extra_arg = format!("extra={}", path(extra.path()));
    let tree_arg = format!("tree={}", path(tree.path()));
    let gen_arg = format!("gen={}", path(gen.path()));
    let build = |tag: &str| {
        e.docker(&[
            "buildx",
            "build",
            "--load",
            "--progress=plain",
            "--build-context",
            &base,
            "--build-context",
            &extra_arg,
            "--build-context",
            &tree_arg,
            "--build-context",
            &gen_arg,
            "-t",
            tag,
            path(ctx.path()),
        ])
    };
    let first = ok(&build("named:1"));
    assert!(
        first.contains("[context extra] load from client"),
        "{first}"
    );
    assert_eq!(
        e.docker_ok(&[
            "run",
            "--rm",
            "named:1",
            "cat",
            "/extra.txt",
            "/tree.conf",
            "/gen.txt",
            "/mounted",
        ]),
        "extra-data\nfrom-tree\ngenerated\nextra-data\n"
    );
    // Unchanged contexts: fully cached, the same image.
    let second = ok(&build("named:2"));
    assert!(second.contains("CACHED"), "{second}");
    let id = |t: &str| e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", t]);
    assert_eq!(id("named:1"), id("named:2"));
    // A changed file in a context directory is seen.
    std::fs::write(extra.path().join("data.txt"), "changed\n").expect("data");
    ok(&build("named:3"));
    assert_eq!(
        e.docker_ok(&["run", "--rm", "named:3", "cat", "/extra.txt"]),
        "changed\n"
    );

    // A kind of context Berth does not take is named in the error.
    let ctx = context("FROM remote\n", &[]);
    let err = failed(&e.docker(&[
        "buildx",
        "build",
        "--progress=plain",
        "--build-context",
        "remote=https://example.invalid/repo.git",
        path(ctx.path()),
    ]));
    assert!(err.contains("https://example.invalid/repo.git"), "{err}");
    nothing_left(&e);
}

/// A real `ssh-agent` on a socket of its own, killed when dropped.
struct Agent {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ssh_agent_with_a_key(dir: &Path) -> Agent {
    let key = dir.join("key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "berth-test-key",
            "-f",
        ])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(keygen.status.success(), "{}", output_text(&keygen));
    let socket = dir.join("agent.sock");
    let child = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    let agent = Agent { child, socket };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.socket.exists() {
        assert!(Instant::now() < deadline, "ssh-agent never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let add = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .expect("ssh-add");
    assert!(add.status.success(), "{}", output_text(&add));
    agent
}

/// `ssh-add` and the libraries it loads, laid out under `root` as on the host, so a
/// busybox image can list an agent's keys.
fn copy_ssh_add_into(root: &Path) {
    let ldd = std::process::Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .expect("ldd");
    let text = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let libs = text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(std::path::PathBuf::from);
    for file in libs.chain([std::path::PathBuf::from("/usr/bin/ssh-add")]) {
        let to = root.join(file.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
        std::fs::copy(&file, &to).expect("copy");
    }
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
}

#[test]
fn ssh_forwarding_reaches_the_clients_agent_and_leaves_no_trace() {
    let (_r, e, img) = setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = ssh_agent_with_a_key(dir.path());
    let ctx = context(
        &format!(
            "FROM {img}\n\
             COPY root/ /\n\
             RUN --mount=type=ssh ssh-add -l > /keys && echo \"$SSH_AUTH_SOCK\" > /sock\n\
             RUN --mount=type=ssh,id=other,target=/agent ssh-add -l 2> /absent || true\n"
        ),
        &[],
    );
    copy_ssh_add_into(&ctx.path().join("root"));
    let ssh_arg = format!("default={}", path(&agent.socket));
    ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "--progress=plain",
        "--ssh",
        &ssh_arg,
        "-t",
        "ssh:1",
        path(ctx.path()),
    ]));
    let keys = e.docker_ok(&["run", "--rm", "ssh:1", "cat", "/keys", "/sock"]);
    assert!(
        keys.contains("berth-test-key (ED25519)"),
        "the agent's key was not listed: {keys}"
    );
    assert!(keys.ends_with("/run/buildkit/ssh_agent.0\n"), "{keys}");
    // An agent the client does not forward (and not `required`) is not mounted, and no
    // socket or mountpoint of either mount is in the image.
    let left = e.docker_ok(&[
        "run",
        "--rm",
        "ssh:1",
        "sh",
        "-c",
        "test -s /absent && for p in /run/buildkit /agent; do test -e $p && echo $p; done; true",
    ]);
    assert_eq!(left, "", "mountpoints committed");

    // A `required` agent the client does not forward fails its step by name.
    let ctx = context(
        &format!("FROM {img}\nRUN --mount=type=ssh,id=work,required true\n"),
        &[],
    );
    let err = failed(&e.docker(&[
        "buildx",
        "build",
        "--progress=plain",
        "--ssh",
        &ssh_arg,
        path(ctx.path()),
    ]));
    assert!(err.contains("no SSH key \"work\" forwarded"), "{err}");
    let leftover: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .map(|rd| rd.flatten().map(|d| d.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !leftover
            .iter()
            .any(|n| n.to_string_lossy().starts_with("berth-ssh-")),
        "agent sockets left: {leftover:?}"
    );
    nothing_left(&e);
}

#[test]
fn independent_stages_run_at_once_and_a_failure_cancels_the_others() {
    let (_r, e, img) = setup();
    // Each stage waits (10 s at most) for the other's mark in a shared cache mount:
    // built one after the other, the first would give up and fail the build.
    let wait_for = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/sync sh -c 'touch /sync/{me}; i=0; \
             until [ -e /sync/{other} ]; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done; echo {me} > /{me}'\n"
        )
    };
    let ctx = context(
        &format!(
            "FROM {img} AS left\n{}FROM {img} AS right\n{}FROM {img}\n\
             COPY --from=left /left /left\nCOPY --from=right /right /right\n",
            wait_for("left", "right"),
            wait_for("right", "left"),
        ),
        &[],
    );
    ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "--progress=plain",
        "--no-cache",
        "-t",
        "both:1",
        path(ctx.path()),
    ]));
    assert_eq!(
        e.docker_ok(&["run", "--rm", "both:1", "cat", "/left", "/right"]),
        "left\nright\n"
    );

    // One stage fails while the other runs a long step: the build fails with the
    // failure, the other step is cancelled and its container goes.
    let ctx = context(
        &format!(
            "FROM {img} AS slow\nRUN sleep 60 && touch /never\n\
             FROM {img} AS broken\nRUN sleep 0.5 && exit 5\n\
             FROM {img}\nCOPY --from=slow /never /\nCOPY --from=broken / /b\n"
        ),
        &[],
    );
    let err = failed(&e.docker(&[
        "buildx",
        "build",
        "--progress=plain",
        "-t",
        "broken:1",
        path(ctx.path()),
    ]));
    assert!(
        err.contains("did not complete successfully: exit code: 5"),
        "{err}"
    );
    assert!(
        err.contains("CANCELED"),
        "the slow step was not cancelled:\n{err}"
    );
    nothing_left(&e);
    assert!(!e.docker(&["image", "inspect", "broken:1"]).status.success());
}

/// Berth's build history (`GET /berth/builds`, what the app's Builds view
/// shows): each `docker buildx build` is a record with its image, its steps in
/// order with their cached flag and output, and a failed build with its error;
/// the record outlives the engine.
#[test]
fn the_build_history_keeps_each_build_with_its_steps() {
    let (_r, mut e, img) = setup();
    let ctx = context(
        &format!("FROM {img}\nCOPY a.txt /a.txt\nRUN echo history-says-$(cat /a.txt)\n"),
        &[("a.txt", "hello")],
    );
    let builds = |e: &Engine| -> Vec<serde_json::Value> {
        let (status, _, body) = e.request("GET", "/berth/builds", None);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("JSON")
    };
    let one = |e: &Engine, id: &str| -> serde_json::Value {
        let (status, _, body) = e.request("GET", &format!("/berth/builds/{id}"), None);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("JSON")
    };
    ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "-t",
        "hist:1",
        path(ctx.path()),
    ]));
    let list = builds(&e);
    assert_eq!(list.len(), 1, "{list:?}");
    let b = &list[0];
    assert_eq!(b["status"], "completed", "{b}");
    assert!(b["name"].as_str().unwrap().ends_with("hist:1"), "{b}");
    let image = e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "hist:1"]);
    assert_eq!(b["image"].as_str(), Some(image.trim()));
    assert!(b["completed"].as_i64() >= b["created"].as_i64());
    let detail = one(&e, b["id"].as_str().unwrap());
    let steps = detail["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["name"].as_str()).collect();
    let at = |want: &str| {
        names
            .iter()
            .position(|n| n.contains(want))
            .unwrap_or_else(|| panic!("no step {want:?} in {names:?}"))
    };
    assert!(at("[1/3] FROM") < at("[2/3] COPY a.txt /a.txt"));
    assert!(at("[2/3] COPY") < at("[3/3] RUN echo history-says"));
    let run = &steps[at("[3/3] RUN")];
    assert!(
        run["log"].as_str().unwrap().contains("history-says-hello"),
        "{run}"
    );
    assert_eq!(run["cached"], false);
    assert!(run["completed"].as_i64() >= run["started"].as_i64());
    // The list leaves the output out.
    assert!(list[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["log"] == ""));

    // A rebuild: cached steps counted.
    ok(&e.docker(&[
        "buildx",
        "build",
        "--load",
        "-t",
        "hist:2",
        path(ctx.path()),
    ]));
    let again = &builds(&e)[0];
    assert!(
        again["name"].as_str().unwrap().ends_with("hist:2"),
        "{again}"
    );
    assert!(again["cachedSteps"].as_u64() >= Some(2), "{again}");

    // A failing build is kept with its error and the step that failed.
    let bad = context(
        &format!("FROM {img}\nRUN echo about-to-fail && false\n"),
        &[],
    );
    failed(&e.docker(&["buildx", "build", "-t", "hist:bad", path(bad.path())]));
    let failed_build = &builds(&e)[0];
    assert_eq!(failed_build["status"], "failed", "{failed_build}");
    let detail = one(&e, failed_build["id"].as_str().unwrap());
    let step = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["error"].is_string())
        .unwrap_or_else(|| panic!("no failed step in {detail}"));
    assert!(step["name"]
        .as_str()
        .unwrap()
        .contains("RUN echo about-to-fail"));
    assert!(
        step["log"].as_str().unwrap().contains("about-to-fail"),
        "{step}"
    );

    // Unknown refs are 404s in Docker's shape; removing one forgets it.
    let (status, _, body) = e.request("GET", "/berth/builds/no-such-build", None);
    assert_eq!(status, 404);
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(m["message"].as_str().unwrap().contains("no-such-build"));
    let id = failed_build["id"].as_str().unwrap().to_string();
    let (status, _, _) = e.request("DELETE", &format!("/berth/builds/{id}"), None);
    assert_eq!(status, 204);
    assert_eq!(builds(&e).len(), 2);

    e.kill9();
    e.respawn().expect("engine restarts");
    assert_eq!(builds(&e).len(), 2, "the history outlives the engine");
    nothing_left(&e);
}
