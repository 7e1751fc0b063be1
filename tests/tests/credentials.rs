//! Registry logins end to end: the stock `docker` CLI with `credsStore: "berth"`
//! (set by `berth docker-config install`) logs in to an htpasswd-protected
//! `docker-registry` through the engine, the secret lands in the keychain
//! through `docker-credential-berth` (never in config.json), push and pull of a
//! private image go through the engine with those credentials, and after
//! `docker logout` a pull is refused as unauthorized.

use std::path::PathBuf;
use std::process::Command;

use berth_tests::engine::Engine;
use berth_tests::output_text;
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::workspace_bin;

fn isolate_keyring() {
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new anonymous session
    // keyring for this process and the helpers the CLI spawns; reads no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            1 as libc::c_long,
            std::ptr::null::<libc::c_char>(),
        )
    };
    assert!(r >= 0, "cannot join a session keyring");
}

/// PATH with the workspace's binaries first, so the CLI finds the helper.
fn path_with_helper() -> String {
    let helper = workspace_bin("docker-credential-berth").unwrap();
    let dir: PathBuf = helper.parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn docker(
    engine: &Engine,
    path: &str,
    service: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    let mut cmd = engine.docker_cmd(args);
    cmd.env("PATH", path)
        .env("BERTH_KEYRING", "keyutils")
        .env("BERTH_KEYRING_SERVICE", service)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

#[test]
fn login_push_pull_logout_through_the_keychain() {
    isolate_keyring();
    let service = format!("berth-e2e-{}", std::process::id());
    let registry = Registry::start(RegistryAuth::basic("ann", "s3cret-pw")).unwrap();
    let engine = Engine::start().unwrap();
    let path = path_with_helper();
    let reg = registry.addr();

    let berth = workspace_bin("berth").unwrap();
    let out = Command::new(&berth)
        .args(["docker-config", "install"])
        .env("DOCKER_CONFIG", engine.docker_config())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let config = engine.docker_config().join("config.json");

    let out = docker(
        &engine,
        &path,
        &service,
        &["login", "-u", "ann", "--password-stdin", &reg],
        Some("s3cret-pw\n"),
    );
    assert!(out.status.success(), "login: {}", output_text(&out));
    assert!(output_text(&out).contains("Login Succeeded"));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(cfg["credsStore"], "berth");
    let raw = std::fs::read_to_string(&config).unwrap();
    assert!(
        !raw.contains("s3cret-pw") && !raw.contains("\"auth\""),
        "secret on disk: {raw}"
    );

    // A private image: made locally, pushed and pulled back with the stored login.
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rootfs.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.path().join("bin/echo")).unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let image = format!("{reg}/private/bb:1");
    let mut import = engine.docker_cmd(&["import", "-", &image]);
    import
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = import.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tar).unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let out = docker(&engine, &path, &service, &["push", &image], None);
    assert!(out.status.success(), "push: {}", output_text(&out));
    engine.docker_ok(&["rmi", &image]);
    let out = docker(&engine, &path, &service, &["pull", &image], None);
    assert!(out.status.success(), "pull: {}", output_text(&out));
    assert_eq!(
        engine.docker_ok(&["run", "--rm", &image, "echo", "private"]),
        "private\n"
    );

    // Logout erases the keychain entry; the next pull is refused.
    let out = docker(&engine, &path, &service, &["logout", &reg], None);
    assert!(out.status.success(), "logout: {}", output_text(&out));
    let mut list = Command::new(workspace_bin("docker-credential-berth").unwrap());
    list.arg("list")
        .env("BERTH_KEYRING", "keyutils")
        .env("BERTH_KEYRING_SERVICE", &service);
    let listed = String::from_utf8(list.output().unwrap().stdout).unwrap();
    assert!(
        !listed.contains(&reg),
        "still listed after logout: {listed}"
    );
    engine.docker_ok(&["rmi", &image]);
    let out = docker(&engine, &path, &service, &["pull", &image], None);
    assert!(!out.status.success());
    assert!(
        output_text(&out).to_lowercase().contains("unauthorized"),
        "pull after logout: {}",
        output_text(&out)
    );
    let out = Command::new(&berth)
        .args(["docker-config", "uninstall"])
        .env("DOCKER_CONFIG", engine.docker_config())
        .output()
        .unwrap();
    assert!(out.status.success());
}
