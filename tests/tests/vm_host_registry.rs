//! A registry on the host's loopback, named as the user types it on the host
//! (`localhost:PORT/…`, `127.0.0.1:PORT/…`), works from Berth's VM over plain
//! HTTP with no settings: the engine reaches the host's loopback through
//! QEMU's gateway, as dockerd on Linux reaches its own (under QEMU TCG).

use berth_tests::images::{busybox_image, Compression};
use berth_tests::registry::{Registry, RegistryAuth};
use berth_tests::vm::Vm;

#[test]
fn localhost_registries_on_the_host_work_from_the_vm() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    busybox_image(Compression::Gzip, "amd64")
        .unwrap()
        .push(&registry, "bb:latest")
        .unwrap();
    let port = registry.addr().rsplit(':').next().unwrap().to_string();
    // No insecureRegistries: loopback registries may use plain HTTP.
    let vm = Vm::start(serde_json::json!({})).unwrap();
    let by_name = format!("localhost:{port}/bb:latest");
    vm.docker_ok(&["pull", &by_name]);
    let out = vm.docker_ok(&["run", "--rm", &by_name, "echo", "pulled by name"]);
    assert_eq!(out.trim(), "pulled by name");
    // The image keeps the name the user typed.
    let names = vm.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(names.lines().any(|l| l == by_name), "{names}");

    // Push back under the 127.0.0.1 spelling; the registry on the host has it.
    let by_ip = format!("127.0.0.1:{port}/pushed:1");
    vm.docker_ok(&["tag", &by_name, &by_ip]);
    vm.docker_ok(&["push", &by_ip]);
    let tags = registry
        .get("GET", "/v2/pushed/tags/list", "application/json")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tags.body).contains("\"1\""),
        "the host's registry did not get the push: {:?}",
        String::from_utf8_lossy(&tags.body)
    );
    vm.stop();
}
