//! The container runtime below the API: a busybox rootfs on overlayfs, Docker's default
//! spec, and the real shim binary running it through libcontainer on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_agent::images::unpack::unpack_layer;
use berth_agent::runtime::rootfs::{mount_overlay, unmount, RootfsDirs};
use berth_agent::runtime::shim::{read_exit, LOG_FILE};
use berth_agent::runtime::spec::{build, ContainerConfig, ProcessConfig};

fn busybox_layer(dest: &Path) {
    let mut b = tar::Builder::new(Vec::new());
    let bb = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "bin", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    for applet in ["sh", "echo", "cat", "grep", "id", "ls", "hostname"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for dir in ["proc", "sys", "dev", "etc", "tmp"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, dir, std::io::empty()).unwrap();
    }
    let data = b.into_inner().unwrap();
    unpack_layer(&data[..], dest).unwrap();
}

struct Run {
    code: i32,
    error: String,
    log: String,
}

/// Runs `args` in a fresh container and returns its exit code and json-file log.
fn run_container(args: &[&str], tweak: impl FnOnce(&mut ContainerConfig)) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    std::fs::create_dir_all(&layer).unwrap();
    busybox_layer(&layer);
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let dirs = RootfsDirs::under(&bundle);
    mount_overlay(&[layer], &dirs).unwrap();
    let id = format!("berth-test-{}-{}", std::process::id(), rand_suffix());
    let mut c = ContainerConfig {
        hostname: "shimtest".into(),
        rootfs: dirs.merged.clone(),
        // Flat, so deleting the container removes the whole cgroup.
        cgroups_path: PathBuf::from(format!("/{id}")),
        ..Default::default()
    };
    tweak(&mut c);
    let p = ProcessConfig {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        ..Default::default()
    };
    let spec = build(&p, &c).unwrap();
    spec.save(bundle.join("config.json")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_berth-agent"))
        .args(["shim", "--id", &id, "--bundle"])
        .arg(&bundle)
        .arg("--state")
        .arg(tmp.path().join("state"))
        .status()
        .unwrap();
    let _ = unmount(&dirs);
    let exit = read_exit(&bundle).unwrap_or_else(|| panic!("no exit record (shim {status})"));
    assert_eq!(status.code(), Some(exit.exit_code));
    for controller in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(!controller.path().join(&id).exists(), "cgroup {id} leaked");
    }
    Run {
        error: exit.error,
        code: exit.exit_code,
        log: std::fs::read_to_string(bundle.join(LOG_FILE)).unwrap_or_default(),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn lines(log: &str, stream: &str) -> Vec<String> {
    log.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stream"] == stream)
        .map(|v| v["log"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn runs_a_process_and_records_output_and_exit_code() {
    let r = run_container(
        &["sh", "-c", "echo hello; echo oops >&2; hostname; exit 3"],
        |_| {},
    );
    assert_eq!(r.code, 3, "{}", r.log);
    assert_eq!(lines(&r.log, "stdout"), vec!["hello\n", "shimtest\n"]);
    assert_eq!(lines(&r.log, "stderr"), vec!["oops\n"]);
}

#[test]
fn default_security_matches_docker() {
    let r = run_container(
        &["sh", "-c", "grep -E '^(CapBnd|Seccomp|NoNewPrivs)' /proc/self/status; cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/hostname && echo wrote"],
        |_| {},
    );
    let out = lines(&r.log, "stdout").concat();
    // Docker's 14 default capabilities.
    assert!(
        out.contains("CapBnd:\t00000000a80425fb"),
        "{out}\n{}",
        r.log
    );
    // /proc/kcore is masked (reads as empty) and /proc/sys is read-only.
    assert!(!out.contains("wrote"), "{out}");
}

#[test]
fn privileged_keeps_all_capabilities() {
    let r = run_container(&["sh", "-c", "grep CapBnd /proc/self/status"], |c| {
        c.privileged = true
    });
    let out = lines(&r.log, "stdout").concat();
    assert!(!out.contains("00000000a80425fb"), "{out}");
    assert_eq!(r.code, 0, "{}", r.log);
}

#[test]
fn missing_command_exits_127_with_the_reason() {
    let r = run_container(&["/no/such/binary"], |_| {});
    assert_eq!(r.code, 127);
    assert!(r.error.contains("/no/such/binary"), "{}", r.error);
}
