//! The VM path end to end, under QEMU TCG: `berth vm start` boots the guest
//! image, and the stock `docker` CLI talks to the engine inside through the
//! host socket; published ports answer on the host; data survives a stop and a
//! SIGKILLed QEMU. One test per host↔guest transport.

use std::io::Write;
use std::time::Duration;

use berth_tests::images::{busybox_image, Compression};
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::{tail, Vm};

/// The test registry as the guest sees it: QEMU's user network puts the host's
/// loopback at 10.0.2.2.
fn guest_registry(registry: &Registry) -> String {
    registry.addr().replace("127.0.0.1", "10.0.2.2")
}

/// A registry on the host with the busybox image, and a VM on `transport`
/// that may pull from it; returns the image as the guest names it.
fn vm_with_registry(transport: &str) -> (Registry, Vm, String) {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    busybox_image(Compression::Gzip, "amd64")
        .unwrap()
        .push(&registry, "bb:latest")
        .unwrap();
    let reg = guest_registry(&registry);
    let vm = Vm::start(serde_json::json!({
        "transport": transport,
        "insecureRegistries": [reg],
    }))
    .unwrap();
    (registry, vm, format!("{reg}/bb:latest"))
}

/// `curl` on the host, as a user would check a published port.
fn http_get(port: u16) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker run -it` under `script`, so the CLI has a real terminal.
fn docker_it(vm: &Vm, args: &str, input: &str) -> std::process::Output {
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("docker {args}"), "/dev/null"])
        .env("DOCKER_HOST", vm.docker_host())
        .env("DOCKER_CONFIG", vm.dir().join("docker-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    // Keep stdin open until the shell has read it; it exits on `exit`.
    let out = vm.finish(child, &format!("docker {args}"));
    drop(stdin);
    out
}

#[test]
fn hybrid_vsock_end_to_end() {
    let (_registry, vm, img) = vm_with_registry("hybrid");
    let status = vm.status();
    assert_eq!(status["state"]["transport"], "hybrid-vsock", "{status}");
    assert_eq!(status["qemu"], "running", "{status}");

    vm.docker_ok(&["pull", "-q", &img]);
    assert_eq!(vm.docker_ok(&["run", "--rm", &img, "echo", "hi"]), "hi\n");
    // The VM is cgroup v2: as with dockerd there, a container has its own
    // cgroup namespace and sees only its own cgroup.
    assert_eq!(
        vm.docker_ok(&["run", "--rm", &img, "cat", "/proc/self/cgroup"]),
        "0::/\n"
    );

    // An interactive session through a pty, over the hijacked attach stream.
    let out = docker_it(
        &vm,
        &format!("run --rm -it {img} sh"),
        "echo in-$((6*7))\nexit\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("in-42"), "{text}");

    // A published port answers on the host's loopback.
    let port = berth_tests::free_port().unwrap();
    vm.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        &img,
        "sh",
        "-c",
        "mkdir -p /www && echo from-the-vm > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let mut body = None;
    assert!(
        vm.wait_for(Duration::from_secs(30), || {
            body = http_get(port);
            body.as_deref().is_some_and(|b| b.contains("from-the-vm"))
        }),
        "port {port} did not answer: {body:?}\n{}",
        tail(&vm.supervisor_log(), 30)
    );
    // Unpublished when the container goes.
    vm.docker_ok(&["rm", "-f", "web"]);
    assert!(
        vm.wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "port {port} still open on the host after rm"
    );

    // A volume outlives a clean stop…
    vm.docker_ok(&["volume", "create", "keep"]);
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        &img,
        "sh",
        "-c",
        "echo persisted > /data/f && sync",
    ]);
    let out = vm.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!vm.socket().exists(), "the socket outlived the VM");
    let console = vm.console();
    assert!(
        console.contains("berth engine listening"),
        "{}",
        tail(&console, 30)
    );

    let out = vm.berth(&["vm", "start", "--timeout", "240"]);
    assert!(
        out.status.success(),
        "restart: {}\n--- console ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&vm.console(), 60)
    );
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "-v", "keep:/data", &img, "cat", "/data/f"]),
        "persisted\n"
    );

    // …and a SIGKILLed QEMU: the supervisor notices and boots again, and the
    // guest's fsck recovers the disk.
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        &img,
        "sh",
        "-c",
        "echo again >> /data/f && sync",
    ]);
    let pid = vm.qemu_pid().expect("qemu pid");
    // SAFETY: kill(2) on the QEMU this test's VM started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(
        vm.wait_for(Duration::from_secs(240), || {
            let s = vm.status();
            s["state"]["restarts"] == 1 && s["engine"] == true && s["state"]["phase"] == "running"
        }),
        "no recovery after SIGKILL: {}\n{}",
        vm.status(),
        tail(&vm.supervisor_log(), 30)
    );
    assert!(vm.status()["state"]["lastCrash"]
        .as_str()
        .is_some_and(|s| s.contains("signal 9")));
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "-v", "keep:/data", &img, "cat", "/data/f"]),
        "persisted\nagain\n"
    );
    let out = vm.stop();
    assert!(out.status.success());
    assert!(vm.qemu_pid().is_none(), "qemu pid file left behind");
}

#[test]
fn serial_mux_transport() {
    let (_registry, vm, img) = vm_with_registry("serial");
    assert_eq!(vm.status()["state"]["transport"], "serial-mux");
    // The image ships the tutorial, loaded into the guest's fresh store at boot.
    let images = vm.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(images.contains("berth/getting-started"), "{images}");
    vm.docker_ok(&["pull", "-q", &img]);
    assert_eq!(
        vm.docker_ok(&["run", "--rm", &img, "echo", "over-serial"]),
        "over-serial\n"
    );
    // Piped stdin and its end (half-close) through the multiplexer.
    let mut child = vm
        .docker_cmd(&["run", "--rm", "-i", &img, "sh", "-c", "wc -l"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\nb\nc\n").unwrap();
    let out = vm.finish(child, "docker run -i");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");

    // UDP published on the host: an echo server in the container.
    let port = berth_tests::free_port().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bin = berth_tests::udp_echo_binary(tmp.path());
    vm.docker_ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        &format!("127.0.0.1:{port}:7/udp"),
        &img,
        "sleep",
        "1000",
    ]);
    vm.docker_ok(&["cp", bin.to_str().unwrap(), "echo:/bin/udpecho"]);
    vm.docker_ok(&["exec", "-d", "echo", "/bin/udpecho", "7"]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let echoed = vm.wait_for(Duration::from_secs(30), || {
        let _ = sock.send_to(b"udp-ping", ("127.0.0.1", port));
        matches!(sock.recv(&mut buf), Ok(n) if &buf[..n] == b"udp-ping")
    });
    assert!(
        echoed,
        "no UDP echo on {port}\n{}",
        tail(&vm.supervisor_log(), 30)
    );
    let out = vm.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vhost_vsock_transport() {
    if !std::path::Path::new("/dev/vhost-vsock").exists() {
        eprintln!("skipped: this host has no /dev/vhost-vsock (kernel vhost-vsock)");
        return;
    }
    let vm = Vm::start(serde_json::json!({ "transport": "vhost-vsock" })).unwrap();
    assert_eq!(vm.status()["state"]["transport"], "vhost-vsock");
    assert!(
        vm.docker_ok(&["version", "--format", "{{.Server.Version}}"])
            .trim()
            .len()
            > 1
    );
}
