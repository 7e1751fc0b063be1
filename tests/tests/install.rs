//! `berth install` / `berth uninstall` with the real docker CLI: the `berth`
//! context appears and becomes current (the user had none), `docker` then
//! reaches Berth's engine without DOCKER_HOST, and uninstall leaves the CLI's
//! config and contexts exactly as they were.

use std::path::Path;
use std::process::{Command, Output};

use berth_tests::engine::Engine;
use berth_tests::images::{busybox_image, Compression};
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::workspace_bin;

fn berth(home: &Path, docker: &Path, args: &[&str]) -> Output {
    Command::new(workspace_bin("berth").unwrap())
        .args(args)
        .env("BERTH_HOME", home)
        .env("DOCKER_CONFIG", docker)
        .output()
        .unwrap()
}

/// `berth doctor`'s report, run with `path` as PATH.
fn doctor(home: &Path, docker: &Path, path: &str) -> String {
    let out = Command::new(workspace_bin("berth").unwrap())
        .arg("doctor")
        .env("BERTH_HOME", home)
        .env("BERTH_CONFIG_DIR", home.join("config"))
        .env("DOCKER_CONFIG", docker)
        .env("PATH", path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report has `piece` failing, followed by a fix that mentions `fix`.
fn failing_with(report: &str, piece: &str, fix: &str) -> bool {
    let lines: Vec<&str> = report.lines().collect();
    lines.windows(2).any(|w| {
        w[0].starts_with("FAIL")
            && w[0][5..].starts_with(piece)
            && w[1].contains('→')
            && w[1].contains(fix)
    })
}

fn docker(config: &Path, args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap()
}

#[test]
fn install_then_uninstall_leaves_the_cli_as_it_was() {
    let engine = Engine::start().unwrap();
    let registry = Registry::start(RegistryAuth::None).unwrap();
    busybox_image(Compression::Gzip, "amd64")
        .unwrap()
        .push(&registry, "inst:latest")
        .unwrap();
    let image = format!("{}/inst:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &image]);

    let dir = tempfile::tempdir().unwrap();
    let (home, cfg, bin) = (
        dir.path().join("berth"),
        dir.path().join("docker"),
        dir.path().join("bin"),
    );
    std::fs::create_dir_all(&cfg).unwrap();
    let before = r#"{"psFormat":"table {{.Names}}","auths":{"reg.example:5000":{}}}"#;
    std::fs::write(cfg.join("config.json"), before).unwrap();

    // Before: doctor names each missing piece and what to do about it.
    let doc = doctor(&home, &cfg, "/usr/sbin:/usr/bin:/sbin:/bin");
    for (piece, fix) in [
        ("docker context", "berth install"),
        ("engine", "berth vm start"),
        ("credential helper", "berth docker-config install"),
    ] {
        assert!(failing_with(&doc, piece, fix), "{piece} in:\n{doc}");
    }
    // A machine without QEMU is told how to get it.
    let doc = doctor(&home, &cfg, "/nonexistent");
    assert!(
        failing_with(&doc, "qemu", "apt-get install qemu-system-x86"),
        "{doc}"
    );

    let out = berth(
        &home,
        &cfg,
        &[
            "install",
            "--host",
            &engine.docker_host(),
            "--bin-dir",
            bin.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls = docker(
        &cfg,
        &["context", "ls", "--format", "{{.Name}} {{.Current}}"],
    );
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.lines().any(|l| l == "berth true"), "{ls}");
    assert!(bin.join("berth").is_symlink() && bin.join("docker-credential-berth").is_symlink());

    // The current context reaches the engine; so does --context.
    for args in [
        vec!["run", "--rm", image.as_str(), "true"],
        vec!["--context", "berth", "run", "--rm", image.as_str(), "true"],
    ] {
        let out = docker(&cfg, &args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // After: those pieces pass.
    let doc = doctor(&home, &cfg, "/usr/sbin:/usr/bin:/sbin:/bin");
    for piece in ["docker context", "engine", "credential helper"] {
        assert!(
            doc.lines()
                .any(|l| l.starts_with("ok") && l[5..].starts_with(piece)),
            "{piece} in:\n{doc}"
        );
    }

    let out = berth(&home, &cfg, &["uninstall"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        after,
        serde_json::from_str::<serde_json::Value>(before).unwrap()
    );
    assert!(!cfg.join("contexts").exists(), "the context is gone");
    assert!(!bin.join("berth").exists());
    let ls = docker(&cfg, &["context", "ls", "--format", "{{.Name}}"]);
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), "default");
}
