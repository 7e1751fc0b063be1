//! Other architectures' images in Berth's VM (under QEMU TCG): `docker run
//! --platform linux/arm64` on an x86_64 machine (linux/amd64 on an arm64 one)
//! runs the image's own binaries through the QEMU user-mode emulator the VM
//! registers with binfmt_misc; a multi-arch index is pulled for the platform
//! asked for; `docker buildx ls` lists the emulated platform.

use berth_tests::engine::cli_plugins_dir;
use berth_tests::images::{foreign_arch, foreign_busybox_image, native_and_foreign_index};
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::Vm;

/// What `uname -m` says for a Debian architecture.
fn machine(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64",
        _ => "x86_64",
    }
}

#[test]
fn foreign_images_run_through_the_vms_emulator() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    foreign_busybox_image()
        .unwrap()
        .push(&registry, "foreign:1")
        .unwrap();
    native_and_foreign_index()
        .unwrap()
        .push(&registry, "multi:1")
        .unwrap();
    let port = registry.addr().rsplit(':').next().unwrap().to_string();
    let foreign = format!("linux/{}", foreign_arch());
    let vm = Vm::start(serde_json::json!({})).unwrap();

    // Not here yet: the CLI pulls it for the platform, then runs it.
    let single = format!("localhost:{port}/foreign:1");
    let run_foreign = |image: &str, cmd: &[&str]| {
        let mut args = vec!["run", "--rm", "--platform", &foreign, image];
        args.extend_from_slice(cmd);
        vm.docker_ok(&args)
    };
    let out = run_foreign(&single, &["busybox", "uname", "-m"]);
    assert_eq!(out.trim(), machine(foreign_arch()));
    // A shell that forks and execs more of the image's binaries.
    let out = run_foreign(
        &single,
        &["sh", "-c", "busybox echo $((6*7)) | busybox cat"],
    );
    assert_eq!(out.trim(), "42");
    // Without --platform it still runs, with dockerd's warning.
    let out = vm.docker(&["run", "--rm", &single, "busybox", "uname", "-m"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not match the detected host platform"),
        "{stderr}"
    );

    // The index: this machine's entry by default, the other one when asked;
    // the local native image does not satisfy --platform, so the CLI pulls.
    let multi = format!("localhost:{port}/multi:1");
    let out = vm.docker_ok(&["run", "--rm", &multi, "busybox", "uname", "-m"]);
    assert_eq!(out.trim(), std::env::consts::ARCH);
    let out = vm.docker_ok(&[
        "run",
        "--rm",
        "--platform",
        &foreign,
        &multi,
        "busybox",
        "uname",
        "-m",
    ]);
    assert_eq!(out.trim(), machine(foreign_arch()));
    let arch = vm.docker_ok(&["image", "inspect", "--format", "{{.Architecture}}", &multi]);
    assert_eq!(arch.trim(), foreign_arch());
    // An explicit pull for a platform the index lacks names it.
    let out = vm.docker(&["pull", "--platform", "linux/s390x", &multi]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("linux/s390x"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // buildx (the CLI plugin) lists the emulated platform beside the native one.
    let config = vm.dir().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({ "cliPluginsExtraDirs": [cli_plugins_dir()] }).to_string(),
    )
    .unwrap();
    let ls = vm.docker_ok(&["buildx", "ls"]);
    assert!(ls.contains(&foreign), "{ls}");
    vm.stop();
}
