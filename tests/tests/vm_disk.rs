//! A disk that shrinks, under QEMU TCG: after 500 MB written into a volume are
//! removed, the idle engine trims the data disk (`FITRIM`; QEMU passes the
//! discards through) and the qcow2 file's allocated size on the host shrinks
//! (`guest-agent/src/hostlink/reclaim.rs`).

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use berth_tests::vm::{guest_busybox, Vm};

const MIB: u64 = 1024 * 1024;

#[test]
fn removing_a_volume_shrinks_the_disk_file() {
    let (_registry, reg, image) = guest_busybox().unwrap();
    let vm = Vm::start(serde_json::json!({ "insecureRegistries": [reg] })).unwrap();
    let disk = vm.home().join("vm/data.qcow2");
    // What the file takes on the host's disk, not its apparent size.
    let allocated = || std::fs::metadata(&disk).unwrap().blocks() * 512;

    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "big:/data",
        &image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/big bs=1M count=500 2>/dev/null && sync",
    ]);
    let full = allocated();
    vm.docker_ok(&["volume", "rm", "big"]);
    let mut now = full;
    let shrank = vm.wait_for(Duration::from_secs(120), || {
        now = allocated();
        now + 300 * MIB < full
    });
    eprintln!(
        "data disk: {} MiB allocated after the write, {} MiB after the trim",
        full / MIB,
        now / MIB
    );
    assert!(
        shrank,
        "the disk file did not shrink: {} → {} MiB\n--- console ---\n{}",
        full / MIB,
        now / MIB,
        berth_tests::vm::tail(&vm.console(), 30)
    );
    vm.stop();
}
