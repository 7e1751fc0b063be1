//! Memory back to the host, under QEMU TCG: after a container touched 600 MB in
//! the guest and went, QEMU gives at least half of what it grew by back to the
//! host, and `berth vm status` shows the guest's memory and QEMU's. The guest
//! reports free pages through the balloon device (free-page reporting); the
//! engine drops the page cache once idle (`guest-agent/src/hostlink/reclaim.rs`).

use std::time::Duration;

use berth_tests::vm::{guest_busybox, Vm};

const MIB: u64 = 1024 * 1024;

/// QEMU's resident memory.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn memory_a_container_used_goes_back_to_the_host() {
    let (_registry, reg, image) = guest_busybox().unwrap();
    let vm = Vm::start(serde_json::json!({
        "memoryMib": 1536,
        "insecureRegistries": [reg],
    }))
    .unwrap();
    vm.docker_ok(&["pull", &image]);
    let pid = vm.qemu_pid().expect("QEMU's pid");
    let before = rss(pid);

    // 600 MB written in the container's layer and read back: page cache and
    // the file's own pages, all of it touched guest memory.
    vm.docker_ok(&[
        "run",
        "--name",
        "big",
        &image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1M count=600 2>/dev/null && sync && cat /big >/dev/null",
    ]);
    let peak = rss(pid);
    assert!(
        peak > before + 400 * MIB,
        "the workload did not grow QEMU: {} → {} MiB",
        before / MIB,
        peak / MIB
    );
    vm.docker_ok(&["rm", "big"]);

    // Half of what it grew by comes back within a minute.
    let mut now = peak;
    let back = vm.wait_for(Duration::from_secs(60), || {
        now = rss(pid);
        peak - now.min(peak) >= (peak - before) / 2
    });
    eprintln!(
        "QEMU RSS: {} MiB before, {} MiB at the peak, {} MiB after",
        before / MIB,
        peak / MIB,
        now / MIB
    );
    assert!(
        back,
        "QEMU kept its memory: {} → {} → {} MiB\n--- console ---\n{}",
        before / MIB,
        peak / MIB,
        now / MIB,
        berth_tests::vm::tail(&vm.console(), 30)
    );

    // The guest's view, through the balloon's statistics.
    let status = vm.status();
    let guest = &status["memory"]["guest"];
    assert!(
        guest["totalBytes"].as_u64().unwrap_or(0) > 1000 * MIB,
        "{status}"
    );
    assert!(guest["freeBytes"].as_u64().unwrap_or(0) > 0, "{status}");
    assert!(
        status["memory"]["qemuRssBytes"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    let text = String::from_utf8_lossy(&vm.berth(&["vm", "status"]).stdout).into_owned();
    assert!(text.contains("MiB free of"), "{text}");
    vm.stop();
}
