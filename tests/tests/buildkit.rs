//! BuildKit's API on the engine's socket, from a real gRPC client (tonic with the
//! generated BuildKit types, as bollard and buildx speak it): `POST /grpc` upgraded to
//! h2c, and HTTP/2 from the first byte, both reaching `moby.buildkit.v1.Control`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use berth_tests::engine::Engine;
use berth_tests::output_text;
use bollard_buildkit_proto::moby::buildkit::v1 as pb;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// A gRPC channel over one already-open stream (tonic dials through the connector
/// once; a second dial means the connection broke, which the test reports).
async fn channel_over(stream: UnixStream) -> anyhow::Result<Channel> {
    let slot = Arc::new(Mutex::new(Some(stream)));
    let channel = Endpoint::from_static("http://berth.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let s = slot.lock().ok().and_then(|mut g| g.take());
            async move {
                s.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("the stream was used already"))
            }
        }))
        .await?;
    Ok(channel)
}

/// `POST /grpc` with `Upgrade: h2c`, as buildx's docker driver dials: the stream
/// after the 101 answer.
async fn upgraded(socket: &Path) -> anyhow::Result<UnixStream> {
    let mut s = UnixStream::connect(socket).await?;
    s.write_all(b"POST /grpc HTTP/1.1\r\nHost: \r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(s.read(&mut byte).await? == 1, "EOF before the answer ended");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    anyhow::ensure!(head.starts_with("http/1.1 101"), "not upgraded: {head}");
    anyhow::ensure!(head.contains("upgrade: h2c"), "{head}");
    Ok(s)
}

async fn exercise(mut client: ControlClient<Channel>, engine_id: &str) -> anyhow::Result<()> {
    let workers = client
        .list_workers(pb::ListWorkersRequest::default())
        .await
        .context("ListWorkers")?
        .into_inner()
        .record;
    anyhow::ensure!(workers.len() == 1, "{workers:?}");
    let w = &workers[0];
    anyhow::ensure!(
        w.id == engine_id,
        "worker id {} vs engine {engine_id}",
        w.id
    );
    anyhow::ensure!(
        w.platforms
            .iter()
            .any(|p| p.os == "linux" && !p.architecture.is_empty()),
        "{:?}",
        w.platforms
    );
    // The label buildx's docker driver reads as "containerd image store" (which
    // lets `--output type=oci|docker` through).
    anyhow::ensure!(
        w.labels.get("org.mobyproject.buildkit.worker.snapshotter")
            == Some(&"overlayfs".to_string()),
        "{:?}",
        w.labels
    );

    let info = client.info(pb::InfoRequest {}).await?.into_inner();
    let v = info.buildkit_version.context("no version")?;
    anyhow::ensure!(!v.version.is_empty(), "{v:?}");

    let du = client
        .disk_usage(pb::DiskUsageRequest::default())
        .await?
        .into_inner();
    anyhow::ensure!(du.record.is_empty(), "{du:?}");

    let mut pruned = client
        .prune(pb::PruneRequest::default())
        .await?
        .into_inner();
    anyhow::ensure!(pruned.message().await?.is_none(), "prune streamed a record");

    // A frontend other than Dockerfiles: a clear gRPC status naming it, not a hang.
    let err = client
        .solve(pb::SolveRequest {
            r#ref: "berth-test-frontend".into(),
            frontend: "gateway.v0".into(),
            ..Default::default()
        })
        .await
        .err()
        .context("Solve succeeded")?;
    anyhow::ensure!(err.message().contains("\"gateway.v0\""), "{err:?}");
    Ok(())
}

fn engine_id(e: &Engine) -> String {
    let (_, _, body) = e.request("GET", "/info", None);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    v["ID"].as_str().unwrap_or_default().to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn control_over_an_h2c_upgrade() {
    let e = Engine::start().expect("engine");
    let id = engine_id(&e);
    let socket: PathBuf = e.socket().to_path_buf();
    runtime()
        .block_on(async {
            let stream = upgraded(&socket).await?;
            exercise(ControlClient::new(channel_over(stream).await?), &id).await
        })
        .unwrap_or_else(|err| panic!("{err:#}\n{}", e.log()));
}

#[test]
fn control_over_http2_from_the_first_byte() {
    let e = Engine::start().expect("engine");
    let id = engine_id(&e);
    let socket: PathBuf = e.socket().to_path_buf();
    runtime()
        .block_on(async {
            let stream = UnixStream::connect(&socket).await?;
            exercise(ControlClient::new(channel_over(stream).await?), &id).await
        })
        .unwrap_or_else(|err| panic!("{err:#}\n{}", e.log()));
}

#[test]
fn a_probe_that_hangs_up_after_the_upgrade_leaves_the_engine_serving() {
    let e = Engine::start().expect("engine");
    let socket: PathBuf = e.socket().to_path_buf();
    runtime()
        .block_on(async {
            // buildx checks for BuildKit this way before every command.
            for _ in 0..3 {
                drop(upgraded(&socket).await?);
            }
            Ok::<_, anyhow::Error>(())
        })
        .unwrap_or_else(|err| panic!("{err:#}\n{}", e.log()));
    assert_eq!(e.request("GET", "/_ping", None).0, 200);
}

#[test]
fn grpc_and_session_without_an_upgrade_are_docker_shaped_400s() {
    let e = Engine::start().expect("engine");
    for path in ["/grpc", "/session"] {
        let (status, _, body) = e.request("POST", path, None);
        assert_eq!(status, 400, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert!(
            v["message"].as_str().is_some_and(|m| m.contains("h2c")),
            "{v}"
        );
    }
}

#[test]
fn buildx_sees_the_engines_builder_and_lists_and_prunes_its_cache() {
    let e = Engine::start().expect("engine");
    e.with_cli_plugins();
    let ls = e.docker(&["buildx", "ls"]);
    let out = output_text(&ls);
    assert!(ls.status.success(), "{out}");
    // The docker driver's default builder, running on this engine (not a
    // docker-container builder it would have to pull).
    let node = out
        .lines()
        .find(|l| l.contains("running"))
        .unwrap_or_else(|| panic!("no running node: {out}"));
    assert!(node.contains("linux/"), "{out}");
    assert!(out.contains("docker"), "{out}");
    let du = e.docker(&["buildx", "du"]);
    assert!(du.status.success(), "{}", output_text(&du));
    assert!(output_text(&du).contains("Total:"), "{}", output_text(&du));
    let prune = e.docker(&["buildx", "prune", "-f"]);
    assert!(prune.status.success(), "{}", output_text(&prune));
    let ps = e.docker(&["ps", "-aq"]);
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "a builder container was started"
    );
}

/// bollard, the Docker SDK for Rust, as a second BuildKit client
/// (`tests/bollard-client`): `build_image` with `BuilderVersion::BuilderBuildKit`
/// opens a session and posts `/build?version=2`; the progress comes back as
/// BuildKit status messages and the image is named.
#[test]
fn bollard_builds_with_buildkit_and_reads_its_progress() {
    let (_r, e, img) = berth_tests::busybox_engine();
    let ctx = tempfile::tempdir().expect("context");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {img} AS one\nRUN echo made-by-bollard > /x\nFROM {img}\nRUN --mount=from=one,source=/x,target=/in/x cp /in/x /x && echo step-output\nCMD [\"cat\", \"/x\"]\n"
        ),
    )
    .expect("Dockerfile");
    let run = |tag: &str| {
        let out = std::process::Command::new(berth_tests::sdk::bollard_client())
            .arg(e.socket())
            .arg(tag)
            .arg(ctx.path())
            .output()
            .expect("the bollard client runs");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("no JSON from the client: {}", output_text(&out)));
        (out.status.success(), v)
    };
    let (ok, v) = run("bollard-bk:1");
    assert!(ok, "{v}");
    let names: Vec<&str> = v["vertexes"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    for step in [
        "[one 2/2] RUN echo made-by-bollard > /x",
        "[stage-1 2/2] RUN --mount=from=one,source=/x,target=/in/x cp /in/x /x && echo step-output",
    ] {
        assert!(names.contains(&step), "no {step:?} in {v}");
    }
    assert!(
        v["logs"]
            .as_str()
            .unwrap_or_default()
            .contains("step-output"),
        "{v}"
    );
    let id = e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "bollard-bk:1"]);
    assert_eq!(v["ids"], serde_json::json!([id.trim()]));
    assert_eq!(
        e.docker_ok(&["run", "--rm", "bollard-bk:1"]),
        "made-by-bollard\n"
    );

    // A failing step fails the build, with BuildKit's message.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {img}\nRUN exit 7\n"),
    )
    .expect("Dockerfile");
    let (ok, v) = run("bollard-bk:2");
    assert!(!ok, "{v}");
    let err = v["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("did not complete successfully: exit code: 7"),
        "{v}"
    );
}
