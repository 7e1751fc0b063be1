//! Idle pause with instant wake, under QEMU TCG (`app/src/vm/idle.rs`): with
//! `idlePauseSeconds` = 5 and only an idle web server running, the VM pauses;
//! `docker ps` and a request on the server's published port each resume it
//! and succeed, 20 times over; the container is never restarted, and the
//! guest's clock is stepped back to the host's after every pause. Over the
//! serial transport: this machine has no kernel vhost-vsock, and the hybrid
//! backend (vhost-device-vsock) does not survive a pause, so the supervisor
//! leaves idle pause off with it.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_tests::vm::{guest_busybox, tail, Vm};

const CYCLES: usize = 20;

/// Whether the supervisor says the VM is paused, read from its state file:
/// `berth vm status` would ping the engine, and that counts as activity.
fn paused(vm: &Vm) -> bool {
    std::fs::read_to_string(vm.home().join("vm/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|s| s["pausedSince"].is_u64())
}

fn wait_paused(vm: &Vm, cycle: usize) {
    let ok = vm.wait_for(Duration::from_secs(90), || paused(vm));
    assert!(
        ok,
        "cycle {cycle}: the idle VM did not pause\n--- supervisor ---\n{}",
        tail(&vm.supervisor_log(), 30)
    );
}

/// One HTTP/1.0 request on the published port: the body, and how long the
/// answer's first byte took.
fn get(port: u16) -> (String, Duration) {
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first)
        .expect("the first byte of the answer");
    let took = t.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the answer");
    let mut all = first.to_vec();
    all.extend(rest);
    (String::from_utf8_lossy(&all).into_owned(), took)
}

#[test]
fn an_idle_vm_pauses_and_wakes_on_docker_and_published_ports() {
    let (_registry, reg, image) = guest_busybox().unwrap();
    let vm = Vm::start(serde_json::json!({
        "insecureRegistries": [reg],
        "idlePauseSeconds": 5,
        "transport": "serial",
    }))
    .unwrap();
    let port = berth_tests::free_port().unwrap();
    vm.docker_ok(&["pull", &image]);
    vm.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        &image,
        "sh",
        "-c",
        "mkdir -p /srv && echo hello from web > /srv/index.html && exec httpd -f -p 8080 -h /srv",
    ]);
    let started = vm.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", "web"]);
    // The port is mirrored once the guest says so.
    assert!(
        vm.wait_for(Duration::from_secs(30), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "the published port never appeared on the host"
    );

    let mut wakes = Vec::new();
    for cycle in 0..CYCLES {
        wait_paused(&vm, cycle);
        if cycle % 2 == 0 {
            let t = Instant::now();
            let names = vm.docker_ok(&["ps", "--format", "{{.Names}}"]);
            eprintln!(
                "cycle {cycle}: docker ps took {:?} from paused",
                t.elapsed()
            );
            assert_eq!(names.trim(), "web", "cycle {cycle}");
        } else {
            let (body, first_byte) = get(port);
            assert!(body.ends_with("hello from web\n"), "cycle {cycle}: {body}");
            wakes.push(first_byte);
        }
        assert!(!paused(&vm), "cycle {cycle}: still paused after a request");
    }
    wakes.sort();
    eprintln!(
        "published port, paused → first byte: min {:?}, median {:?}, max {:?}",
        wakes[0],
        wakes[wakes.len() / 2],
        wakes[wakes.len() - 1]
    );

    // Nothing lost: the same container, never restarted, and a guest clock
    // that was stepped after each pause rather than left behind.
    wait_paused(&vm, CYCLES);
    std::thread::sleep(Duration::from_secs(3));
    let state = vm.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.RestartCount}} {{.State.StartedAt}}",
        "web",
    ]);
    assert_eq!(state.trim(), format!("running 0 {}", started.trim()));
    let guest: i64 = vm
        .docker_ok(&["exec", "web", "busybox", "date", "+%s"])
        .trim()
        .parse()
        .unwrap();
    let host = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (guest - host).abs() <= 2,
        "the guest's clock is {}s off the host's after {CYCLES} pauses",
        guest - host
    );
    vm.docker_ok(&["rm", "-f", "web"]);
    vm.stop();
}

#[test]
fn a_busy_container_keeps_the_vm_running() {
    let (_registry, reg, image) = guest_busybox().unwrap();
    let vm = Vm::start(serde_json::json!({
        "insecureRegistries": [reg],
        "idlePauseSeconds": 3,
        "transport": "serial",
    }))
    .unwrap();
    vm.docker_ok(&["pull", &image]);
    // A job that works a little every second: more than the idle threshold.
    vm.docker_ok(&[
        "run",
        "-d",
        "--name",
        "job",
        &image,
        "sh",
        "-c",
        "while true; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 1; done",
    ]);
    // Three idle windows pass without a pause.
    std::thread::sleep(Duration::from_secs(15));
    assert!(
        !paused(&vm),
        "paused while a container worked\n--- supervisor ---\n{}",
        tail(&vm.supervisor_log(), 30)
    );
    // Once it is gone, the VM pauses.
    vm.docker_ok(&["rm", "-f", "job"]);
    wait_paused(&vm, 0);
    vm.stop();
}
