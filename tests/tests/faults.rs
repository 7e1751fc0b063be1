//! Fault injection: the engine SIGKILLed in the middle of `docker run`, a build and a
//! container's volume writes; a container's shim killed; the engine's root on a
//! small, full filesystem; a registry whose connections drop mid-blob. After each
//! the engine (restarted where it was killed) must list images, containers and
//! volumes that all inspect, every stored blob must still match its digest, and no
//! volume data may be lost. (SIGKILL mid-pull is in cli_images.rs, running
//! containers and networks surviving a SIGKILL in cli_containers.rs/cli_network.rs.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_tests::engine::{tutorial_archive, Engine};
use berth_tests::images::random_image;
use berth_tests::registry::{Registry, RegistryAuth};
use sha2::{Digest, Sha256};

const IMAGE: &str = "berth/getting-started";

fn preload_args() -> Vec<String> {
    vec![
        "--preload".into(),
        tutorial_archive().unwrap().to_string_lossy().into_owned(),
    ]
}

fn engine() -> Engine {
    let args = preload_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Engine::start_args(&args).unwrap()
}

/// Every blob in the store still hashes to its name.
fn blobs_verify(root: &Path) {
    let dir = root.join("image/blobs/sha256");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || p.is_dir() {
            continue;
        }
        let got = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
        assert_eq!(got, name, "blob {} is corrupt", p.display());
        n += 1;
    }
    assert!(n > 0, "no blobs in {}", dir.display());
}

/// `docker images/ps/volume ls` agree with inspect: everything listed inspects.
fn lists_are_consistent(engine: &Engine) {
    for (list, inspect) in [
        (vec!["images", "-q", "--no-trunc"], "image"),
        (vec!["ps", "-aq", "--no-trunc"], "container"),
        (vec!["volume", "ls", "-q"], "volume"),
    ] {
        for id in engine.docker_ok(&list).lines().filter(|l| !l.is_empty()) {
            engine.docker_ok(&[inspect, "inspect", id]);
        }
    }
}

fn mounts_under(root: &Path) -> Vec<String> {
    let prefix = root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix) && m.contains("/containers/"))
        .collect()
}

#[test]
fn sigkill_during_concurrent_docker_runs() {
    let mut engine = engine();
    let runs: Vec<Child> = (0..12)
        .map(|n| {
            engine
                .docker_cmd(&[
                    "run",
                    "-d",
                    "--name",
                    &format!("r{n}"),
                    IMAGE,
                    "sleep",
                    "600",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // As soon as the first container exists: the others are mid-create or mid-start.
    let store = engine.root().join("containers");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&store)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name() != ".trash")
                .count()
        })
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no container was created");
        std::thread::sleep(Duration::from_millis(5));
    }
    engine.kill9();
    let made = std::fs::read_dir(&store).unwrap().count();
    println!("killed with {made} container directories made");
    for mut r in runs {
        let _ = r.wait();
    }
    engine.respawn().unwrap();
    lists_are_consistent(&engine);
    blobs_verify(engine.root());
    // Whatever state each reached, each can be removed, and nothing of it stays.
    let ids = engine.docker_ok(&["ps", "-aq"]);
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.lines().filter(|l| !l.is_empty()));
    if rm.len() > 2 {
        engine.docker_ok(&rm);
    }
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mounts_under(engine.root()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(mounts_under(engine.root()), Vec::<String>::new());
    assert_eq!(
        engine.docker_ok(&["run", "--rm", IMAGE, "echo", "after"]),
        "after\n"
    );
}

#[test]
fn sigkill_during_a_build() {
    let mut engine = engine();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("f"), "content\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY f /f\nRUN sleep 3 && echo slow > /slow\nRUN cat /f /slow\n"),
    )
    .unwrap();
    let ctx_arg = ctx.path().to_str().unwrap();
    let mut build = engine
        .docker_cmd(&["build", "-t", "killed:1", ctx_arg])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the slow RUN is under way.
    let mut out = build.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("sleep 3") {
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the build ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(Duration::from_millis(500));
    engine.kill9();
    let _ = build.wait();
    engine.respawn().unwrap();

    lists_are_consistent(&engine);
    blobs_verify(engine.root());
    let tagged = engine.docker_ok(&["images", "-q", "killed"]);
    assert_eq!(tagged.trim(), "", "a killed build tagged an image");
    // A leftover intermediate container is a container like any other.
    let ids = engine.docker_ok(&["ps", "-aq"]);
    for id in ids.lines().filter(|l| !l.is_empty()) {
        engine.docker_ok(&["rm", "-f", id]);
    }
    let out = engine
        .docker_cmd(&["build", "-q", "-t", "killed:1", ctx_arg])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        engine.docker_ok(&["run", "--rm", "killed:1", "cat", "/f", "/slow"]),
        "content\nslow\n"
    );
    blobs_verify(engine.root());
}

#[test]
fn sigkill_during_volume_writes_loses_nothing() {
    let mut engine = engine();
    engine.docker_ok(&["volume", "create", "precious"]);
    // 150 files of known content, each renamed into place once written and synced.
    let writer = "for i in $(seq 1 150); do yes $i | head -c 65536 > /data/.f$i; sync; \
                  mv /data/.f$i /data/f$i; done; echo done > /data/finished";
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "precious:/data",
        IMAGE,
        "sh",
        "-c",
        writer,
    ]);
    std::thread::sleep(Duration::from_millis(300));
    engine.kill9();
    std::thread::sleep(Duration::from_millis(500));
    engine.respawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    engine.kill9();
    engine.respawn().unwrap();
    let code = engine.docker_ok(&["wait", "writer"]);
    assert_eq!(code.trim(), "0");
    let check = "cd /data && [ -f finished ] && for i in $(seq 1 150); do \
                 [ \"$(yes $i | head -c 65536 | md5sum | cut -d' ' -f1)\" = \"$(md5sum < f$i | cut -d' ' -f1)\" ] \
                 || { echo bad f$i; exit 1; }; done; ls | wc -l";
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "precious:/data",
        IMAGE,
        "sh",
        "-c",
        check,
    ]);
    assert_eq!(out.trim(), "151", "{out}");
    lists_are_consistent(&engine);
}

/// The shim of the container `id` (its command line names the container's bundle).
fn shim_of(engine: &Engine, id: &str) -> Option<u32> {
    let root = engine.root().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd);
            (cmd.contains("shim") && cmd.contains(&root) && cmd.contains(id)).then_some(pid)
        })
}

#[test]
fn a_killed_shim_ends_its_container_cleanly() {
    let engine = engine();
    let id = engine
        .docker_ok(&["run", "-d", "--name", "victim", IMAGE, "sleep", "600"])
        .trim()
        .to_string();
    let shim = shim_of(&engine, &id).expect("the container's shim runs");
    // SAFETY: kill takes plain integers; the pid is the shim we just found.
    unsafe {
        libc::kill(shim as libc::pid_t, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let running = engine.docker_ok(&["inspect", "-f", "{{.State.Running}}", "victim"]);
        if running.trim() == "false" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after its shim died"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its processes are gone with it, and it starts again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Command::new("pgrep")
        .args(["-f", "sleep 600"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|p| p.parse::<u32>().ok())
                .any(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                        .is_ok_and(|c| c.contains(&id))
                })
        })
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "the container's process outlived its shim"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    engine.docker_ok(&["start", "victim"]);
    let running = engine.docker_ok(&["inspect", "-f", "{{.State.Running}}", "victim"]);
    assert_eq!(running.trim(), "true");
    engine.docker_ok(&["rm", "-f", "victim"]);
    lists_are_consistent(&engine);
}

/// A small ext4 filesystem on a loop device, mounted at `dir`; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
    _image: tempfile::NamedTempFile,
}

impl SmallDisk {
    fn new(mb: u64) -> SmallDisk {
        let image = tempfile::NamedTempFile::new().unwrap();
        image.as_file().set_len(mb << 20).unwrap();
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mkfs.ext4");
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-o", "loop"])
            .arg(image.path())
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount -o loop");
        SmallDisk { dir, _image: image }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        berth_tests::engine::kill_processes_using(self.dir.path());
        berth_tests::engine::remove_network_state(&self.path());
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_pull_and_keeps_the_store() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let big = random_image(48).unwrap();
    big.push(&registry, "toobig:1").unwrap();
    let small = berth_tests::images::busybox_image(berth_tests::images::Compression::Gzip, "amd64")
        .unwrap();
    small.push(&registry, "small:1").unwrap();

    let disk = SmallDisk::new(64);
    let args = preload_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let engine = Engine::start_with(disk.path(), &args).unwrap();
    // Layers are kept twice (blob and unpacked): 48 MB cannot fit in 64 MB.
    let out = engine.docker(&["pull", &format!("{}/toobig:1", registry.addr())]);
    assert!(!out.status.success(), "a 48 MB image fit on a 64 MB disk?");
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("no space") || err.contains("disk") || err.contains("space"),
        "not a clear error: {err}"
    );
    engine.docker_ok(&["version"]);
    let images = engine.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("toobig"), "{images}");
    lists_are_consistent(&engine);
    blobs_verify(&disk.path());
    // What the failed pull wrote is gone again: a small image still fits and runs.
    let name = format!("{}/small:1", registry.addr());
    engine.docker_ok(&["pull", &name]);
    assert_eq!(
        engine.docker_ok(&["run", "--rm", &name, "echo", "fits"]),
        "fits\n"
    );
    assert_eq!(
        engine.docker_ok(&["run", "--rm", IMAGE, "echo", "still"]),
        "still\n"
    );
    drop(engine);
}

/// A TCP proxy to `upstream` that cuts the first `drops` connections whose answer
/// grows past `after` bytes (a blob download), mid-stream.
fn flaky_proxy(upstream: String, after: usize, drops: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let counter = counter.clone();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let (mut s_read, mut c_write) = (server, client);
                let mut sent = 0usize;
                let mut buf = [0u8; 16384];
                loop {
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if sent + n > after && counter.load(Ordering::SeqCst) < drops {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = c_write.write_all(&buf[..after.saturating_sub(sent)]);
                        let _ = c_write.shutdown(std::net::Shutdown::Both);
                        let _ = s_read.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (port, dropped)
}

#[test]
fn a_registry_dropping_connections_mid_blob() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let img = random_image(12).unwrap();
    img.push(&registry, "flaky:1").unwrap();
    let (port, dropped) = flaky_proxy(registry.addr(), 1 << 20, 4);
    let name = format!("127.0.0.1:{port}/flaky:1");

    let engine = engine();
    // Retried, or failed with a clear error: never a corrupt image.
    let first = engine.docker(&["pull", &name]);
    assert!(
        dropped.load(Ordering::SeqCst) > 0,
        "the proxy never cut a download"
    );
    if !first.status.success() {
        let images = engine.docker_ok(&["images", "-q", &name]);
        assert_eq!(images.trim(), "", "a failed pull left an image");
        blobs_verify(engine.root());
        lists_are_consistent(&engine);
        // Once the registry behaves, the pull completes.
        let mut ok = false;
        for _ in 0..5 {
            if engine.docker(&["pull", &name]).status.success() {
                ok = true;
                break;
            }
        }
        assert!(ok, "the pull never completed");
    }
    let id = engine.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &name]);
    assert_eq!(id.trim(), img.config_digest());
    blobs_verify(engine.root());
    lists_are_consistent(&engine);
}
