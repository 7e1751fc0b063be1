//! The Linux package end to end, as a user meets it: `apt-get install
//! ./berth_*.deb` (the .deb `cargo xtask bundle --debug --formats deb` made, a
//! step of `cargo xtask test`), `berth install`, `berth doctor` passing, the
//! stock docker CLI running a container through the `berth` context on the
//! packaged engine (native backend), then `berth uninstall` and `apt-get
//! remove` leaving `~/.docker/config.json` and the contexts as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_tests::engine::Engine;
use berth_tests::images::{busybox_image, Compression};
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::workspace_bin;

/// Debian's default PATH (the docker CLI may be in /usr/local/bin).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "berth"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt(args: &[&str]) -> Output {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap()
}

/// Purges the package however the test ends (after `apt-get remove`, dpkg
/// still lists it as removed with its maintainer scripts kept).
struct Package;

impl Drop for Package {
    fn drop(&mut self) {
        let known = Command::new("dpkg-query")
            .args(["-W", "berth"])
            .output()
            .is_ok_and(|o| o.status.success());
        if known {
            let _ = apt(&["purge", "-y", "berth"]);
        }
    }
}

/// `target/bundle/berth_<version>_<arch>.deb`.
fn deb() -> PathBuf {
    let berth = workspace_bin("berth").expect("cargo build -p berth");
    let target = berth
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/berth");
    let dir = target.join("bundle");
    std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with("berth_") && n.ends_with(".deb")
        })
        .unwrap_or_else(|| {
            panic!(
                "no berth_*.deb in {}: run `cargo xtask bundle --debug --formats deb`",
                dir.display()
            )
        })
}

/// A command as the user `home` belongs to would type it: only the system's
/// PATH, nothing of the test's docker or Berth environment.
fn user_cmd(program: &str, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("HOME", home).env("PATH", PATH);
    for v in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "BERTH_HOME",
        "BERTH_CONFIG_DIR",
        "XDG_CONFIG_HOME",
        "XDG_RUNTIME_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

#[test]
fn the_deb_installs_runs_containers_and_uninstalls_cleanly() {
    assert!(
        !installed(),
        "a berth package is already installed here; this test installs and removes its own"
    );
    let deb = deb();
    let _package = Package;
    ok(
        apt(&[
            "install",
            "-y",
            // The recommended docker CLI is here already; nothing else is fetched.
            "--no-install-recommends",
            deb.to_str().unwrap(),
        ]),
        "apt-get install",
    );
    for f in [
        "/usr/bin/berth",
        "/usr/bin/docker-credential-berth",
        "/usr/bin/berth-desktop",
        "/usr/lib/berth/berth-agent",
        "/usr/lib/berth/vhost-device-vsock",
        "/usr/lib/berth/virtiofsd",
        "/lib/systemd/system/berth-engine.service",
    ] {
        assert!(Path::new(f).is_file(), "{f} is not in the package");
    }
    assert!(
        std::fs::read_dir("/usr/share/berth/vm-image/x86_64").is_ok_and(|d| d.count() >= 2),
        "the guest image is in the package"
    );

    // The packaged engine, run natively.
    let engine = Engine::start_bin("/usr/lib/berth/berth-agent".into()).unwrap();
    let registry = Registry::start(RegistryAuth::None).unwrap();
    busybox_image(Compression::Gzip, "amd64")
        .unwrap()
        .push(&registry, "pkg:latest")
        .unwrap();
    let image = format!("{}/pkg:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &image]);

    // A user with a config and a context of their own (not current).
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let docker_dir = home.join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let before = r#"{"psFormat":"table {{.Names}}","auths":{"reg.example:5000":{}}}"#;
    std::fs::write(docker_dir.join("config.json"), before).unwrap();
    ok(
        user_cmd("docker", &home)
            .args([
                "context",
                "create",
                "work",
                "--docker",
                "host=unix:///nowhere/docker.sock",
            ])
            .output()
            .unwrap(),
        "docker context create",
    );
    let contexts_before = snapshot(&docker_dir.join("contexts"));

    let link = dir.path().join("docker.sock");
    let out = ok(
        user_cmd("berth", &home)
            .args(["install", "--host", &engine.docker_host(), "--docker-sock"])
            .arg("--docker-sock-path")
            .arg(&link)
            .output()
            .unwrap(),
        "berth install",
    );
    assert!(
        out.contains("now the docker CLI's current context"),
        "{out}"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), engine.socket());
    assert!(
        !home.join(".local/bin/berth").exists(),
        "/usr/bin is on PATH: nothing to link"
    );

    let report = user_cmd("berth", &home).arg("doctor").output().unwrap();
    ok(report, "berth doctor");

    let ls = ok(
        user_cmd("docker", &home)
            .args(["context", "ls", "--format", "{{.Name}} {{.Current}}"])
            .output()
            .unwrap(),
        "docker context ls",
    );
    assert!(ls.lines().any(|l| l == "berth true"), "{ls}");
    for args in [
        vec!["--context", "berth", "run", "--rm", image.as_str(), "true"],
        vec!["run", "--rm", image.as_str(), "true"],
    ] {
        ok(
            user_cmd("docker", &home).args(&args).output().unwrap(),
            &format!("docker {args:?}"),
        );
    }
    // Tools that dial the well-known socket reach the same engine.
    let version = ok(
        user_cmd("docker", &home)
            .arg("-H")
            .arg(format!("unix://{}", link.display()))
            .args(["version", "--format", "{{.Server.Os}}"])
            .output()
            .unwrap(),
        "docker -H <link> version",
    );
    assert_eq!(version.trim(), "linux");

    ok(
        user_cmd("berth", &home).arg("uninstall").output().unwrap(),
        "berth uninstall",
    );
    drop(engine);
    ok(apt(&["remove", "-y", "berth"]), "apt-get remove");
    assert!(!installed());
    assert!(!Path::new("/usr/bin/berth").exists());

    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        after,
        serde_json::from_str::<serde_json::Value>(before).unwrap()
    );
    assert_eq!(snapshot(&docker_dir.join("contexts")), contexts_before);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the link is gone"
    );
}
