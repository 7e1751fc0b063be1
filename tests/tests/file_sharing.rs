//! Host folders in the VM, under QEMU TCG: the same test for virtio-fs
//! (`virtiofsd`) and 9p. The VM runs as an ordinary user (uid 65534), as on a
//! developer's machine, so "owned by the user on the host" is checked for real:
//! files a container's root creates must land owned by that user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use berth_tests::vm::{chown_tree, guest_busybox, Vm};

const USER: u32 = 65534;

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn shares_work_both_ways(fs: &str) {
    let (_registry, reg, img) = guest_busybox().unwrap();

    // A folder with a space and a comma: both need escaping on the way in.
    let root = tempfile::Builder::new()
        .prefix("berth-share-")
        .tempdir()
        .unwrap();
    let share = root.path().join("my project, 1");
    let ro_share = root.path().join("read only");
    let outside = tempfile::Builder::new()
        .prefix("berth-unshared-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(&share).unwrap();
    std::fs::create_dir_all(&ro_share).unwrap();
    std::fs::write(share.join("hello.txt"), "from the host\n").unwrap();
    std::fs::write(ro_share.join("config.txt"), "read me\n").unwrap();
    chown_tree(root.path(), USER).unwrap();

    let vm = Vm::start_as(
        serde_json::json!({
            "insecureRegistries": [reg],
            "fileSharing": fs,
            "sharedFolders": [
                {"path": share},
                {"path": ro_share, "readOnly": true},
            ],
        }),
        Some(USER),
    )
    .unwrap();
    let status = vm.status();
    assert!(
        status["state"]["fileSharing"]
            .as_str()
            .is_some_and(|s| s.starts_with(fs)),
        "{status}"
    );
    vm.docker_ok(&["pull", "-q", &img]);
    let bind = format!("{}:/work", path(&share));

    // Host → container.
    assert_eq!(
        vm.docker_ok(&["run", "--rm", "-v", &bind, &img, "cat", "/work/hello.txt"]),
        "from the host\n"
    );
    // A single file, read-only.
    assert_eq!(
        vm.docker_ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/etc/hello.txt:ro", path(&share.join("hello.txt"))),
            &img,
            "cat",
            "/etc/hello.txt",
        ]),
        "from the host\n"
    );

    // Container → host, owned by the user.
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        &img,
        "sh",
        "-c",
        "echo from the container > /work/out.txt && mkdir /work/made-inside",
    ]);
    let out = share.join("out.txt");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "from the container\n"
    );
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (USER, USER), "owner of {out:?}");
    assert_eq!(
        std::fs::metadata(share.join("made-inside")).unwrap().uid(),
        USER
    );

    // Renames and deletes, both ways, seen by a running container.
    vm.docker_ok(&[
        "run", "-d", "--name", "live", "-v", &bind, &img, "sleep", "600",
    ]);
    let ls = || vm.docker_ok(&["exec", "live", "ls", "/work"]);
    vm.docker_ok(&[
        "exec",
        "live",
        "sh",
        "-c",
        "mv /work/out.txt /work/renamed.txt && rm /work/hello.txt && rmdir /work/made-inside",
    ]);
    assert!(share.join("renamed.txt").is_file());
    assert!(!out.exists() && !share.join("hello.txt").exists());
    assert!(!share.join("made-inside").exists());
    std::fs::rename(share.join("renamed.txt"), share.join("by-host.txt")).unwrap();
    std::fs::write(share.join("new-on-host.txt"), "new\n").unwrap();
    let mut seen = String::new();
    assert!(
        vm.wait_for(Duration::from_secs(15), || {
            seen = ls();
            seen.split_whitespace().collect::<Vec<_>>() == ["by-host.txt", "new-on-host.txt"]
        }),
        "the container sees {seen:?}"
    );
    std::fs::remove_file(share.join("new-on-host.txt")).unwrap();
    assert!(
        vm.wait_for(Duration::from_secs(15), || {
            seen = ls();
            seen.split_whitespace().collect::<Vec<_>>() == ["by-host.txt"]
        }),
        "the container still sees {seen:?}"
    );
    assert_eq!(
        vm.docker_ok(&["exec", "live", "cat", "/work/by-host.txt"]),
        "from the container\n"
    );
    vm.docker_ok(&["rm", "-f", "live"]);

    // A read-only share stays read-only, even mounted rw.
    let ro_bind = format!("{}:/cfg", path(&ro_share));
    assert_eq!(
        vm.docker_ok(&[
            "run",
            "--rm",
            "-v",
            &ro_bind,
            &img,
            "cat",
            "/cfg/config.txt"
        ]),
        "read me\n"
    );
    let w = vm.docker(&["run", "--rm", "-v", &ro_bind, &img, "touch", "/cfg/x"]);
    assert!(!w.status.success());
    assert!(
        String::from_utf8_lossy(&w.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&w.stderr)
    );
    assert!(!ro_share.join("x").exists());

    // Outside every share: a clear error naming the setting, nothing created.
    let missing = outside.path().join("src");
    let denied = vm.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/src", path(&missing)),
        &img,
        "true",
    ]);
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(!denied.status.success());
    assert!(
        err.contains("Mounts denied") && err.contains("sharedFolders"),
        "{err}"
    );
    // What the VM itself has still mounts (the engine's socket, as tools expect).
    vm.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        &img,
        "sh",
        "-c",
        "[ -S /var/run/docker.sock ]",
    ]);
}

#[test]
fn virtiofs_shares_host_folders() {
    shares_work_both_ways("virtiofs");
}

#[test]
fn ninep_shares_host_folders() {
    shares_work_both_ways("9p");
}
