//! Engine III, storage: named and anonymous volumes, bind mounts, tmpfs mounts,
//! copy-up, `--volumes-from`, `rm -v`, `volume prune` and the local driver's `-o`
//! options, through the stock `docker` CLI. Every test ends by checking that nothing
//! stays mounted under the engine's root once its containers are gone.

use std::path::{Path, PathBuf};

use berth_tests::engine::Engine;
use berth_tests::images::{self};
use berth_tests::registry::Registry;

/// An engine with the busybox test image pulled; returns the image name.
fn setup() -> (Registry, Engine, String) {
    berth_tests::busybox_engine()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// Removes every container and asserts the engine left no mount behind.
fn assert_clean(engine: &Engine) {
    let ids = engine.docker_ok(&["ps", "-aq"]);
    for id in ids.split_whitespace() {
        engine.docker_ok(&["rm", "-f", id]);
    }
    let left = mounts_under(engine.root());
    assert!(left.is_empty(), "mounts left under the root: {left:?}");
}

fn inspect(engine: &Engine, format: &str, what: &str) -> String {
    engine
        .docker_ok(&["inspect", "-f", format, what])
        .trim()
        .to_string()
}

fn volume_exists(engine: &Engine, name: &str) -> bool {
    engine.docker(&["volume", "inspect", name]).status.success()
}

#[test]
fn named_volume_outlives_its_containers_and_an_engine_restart() {
    let (_r, mut engine, img) = setup();
    engine.docker_ok(&["volume", "create", "--label", "team=storage", "data1"]);
    engine.docker_ok(&[
        "run",
        "--name",
        "wr",
        "-v",
        "data1:/d",
        &img,
        "sh",
        "-c",
        "echo hi > /d/f",
    ]);
    let out = engine.docker_ok(&[
        "run",
        "--name",
        "rd",
        "-v",
        "data1:/d:ro",
        &img,
        "cat",
        "/d/f",
    ]);
    assert_eq!(out, "hi\n");
    // Mounts as dockerd shows them.
    let mounts = inspect(&engine, "{{json .Mounts}}", "rd");
    let v: serde_json::Value = serde_json::from_str(&mounts).unwrap();
    let m = &v[0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "data1");
    assert_eq!(m["Destination"], "/d");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["Mode"], "ro");
    assert_eq!(m["RW"], false);
    let data = engine.root().join("volumes/data1/_data");
    assert_eq!(m["Source"], data.display().to_string());
    assert_eq!(
        inspect(&engine, "{{json .HostConfig.Binds}}", "rd"),
        r#"["data1:/d:ro"]"#
    );
    engine.docker_ok(&["rm", "wr", "rd"]);
    engine.kill9();
    engine.respawn().unwrap();
    let out = engine.docker_ok(&["run", "--rm", "-v", "data1:/d", &img, "cat", "/d/f"]);
    assert_eq!(out, "hi\n");
    // ls, inspect and filters.
    let v: serde_json::Value =
        serde_json::from_str(&engine.docker_ok(&["volume", "inspect", "data1"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Mountpoint"], data.display().to_string());
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Labels"]["team"], "storage");
    assert!(
        v["CreatedAt"].as_str().is_some_and(|c| c.starts_with("20")),
        "{v}"
    );
    let ls = engine.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(ls.trim(), "data1");
    let f = engine.docker_ok(&[
        "volume",
        "ls",
        "-q",
        "-f",
        "label=team=storage",
        "-f",
        "dangling=true",
    ]);
    assert_eq!(f.trim(), "data1");
    assert_eq!(
        engine
            .docker_ok(&["volume", "ls", "-q", "-f", "name=nope"])
            .trim(),
        ""
    );
    // Names are validated like Docker's.
    let bad = engine.docker(&["volume", "create", "bad!name"]);
    assert!(
        stderr(&bad).contains("includes invalid characters for a local volume name"),
        "{}",
        stderr(&bad)
    );
    assert_clean(&engine);
    engine.docker_ok(&["volume", "rm", "data1"]);
    assert!(!data.exists());
}

#[test]
fn bind_mounts_read_write_read_only_and_missing_sources() {
    let (_r, engine, img) = setup();
    let host = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h"),
        &img,
        "sh",
        "-c",
        "echo rw > /h/from-container",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("from-container")).unwrap(),
        "rw\n"
    );
    let out = engine.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h:ro"),
        &img,
        "sh",
        "-c",
        "echo x > /h/nope",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!host.path().join("nope").exists());
    // --mount type=bind refuses a missing source with dockerd's text…
    let out = engine.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/nonexistent-berth,target=/x",
        &img,
        "true",
    ]);
    assert!(
        stderr(&out).contains(
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"
        ),
        "{}",
        stderr(&out)
    );
    // …while -v creates it, as dockerd does.
    let created = host.path().join("made/by/v");
    engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", created.display()),
        &img,
        "true",
    ]);
    assert!(created.is_dir());
    // --mount readonly, and how inspect shows binds.
    engine.docker_ok(&[
        "create",
        "--name",
        "bnd",
        "--mount",
        &format!("type=bind,source={h},target=/mb,readonly"),
        "-v",
        &format!("{h}:/vb"),
        &img,
        "true",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&inspect(&engine, "{{json .Mounts}}", "bnd")).unwrap();
    let by_dest = |d: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == d)
            .cloned()
            .unwrap()
    };
    let mb = by_dest("/mb");
    assert_eq!(
        (mb["Type"].as_str(), mb["RW"].as_bool()),
        (Some("bind"), Some(false))
    );
    assert_eq!(mb["Propagation"], "rprivate");
    assert_eq!(mb["Source"], h.as_str());
    let vb = by_dest("/vb");
    assert_eq!(
        (vb["Mode"].as_str(), vb["RW"].as_bool()),
        (Some(""), Some(true))
    );
    assert!(inspect(&engine, "{{json .HostConfig.Mounts}}", "bnd").contains("\"ReadOnly\":true"));
    let out = engine.docker_ok(&["start", "-a", "bnd"]);
    assert_eq!(out, "");
    assert_clean(&engine);
}

#[test]
fn tmpfs_mounts_are_empty_per_container() {
    let (_r, engine, img) = setup();
    for args in [
        vec!["--tmpfs", "/t"],
        vec!["--mount", "type=tmpfs,target=/t,tmpfs-size=1m"],
    ] {
        let mut first = vec!["run", "--rm"];
        first.extend(&args);
        first.extend([
            img.as_str(),
            "sh",
            "-c",
            "ls /t; echo x > /t/f; grep ' /t ' /proc/mounts",
        ]);
        let out = engine.docker_ok(&first);
        assert!(out.starts_with("tmpfs /t tmpfs"), "{out}");
        if args[0] == "--mount" {
            assert!(out.contains("size=1024k"), "{out}");
        }
        let mut second = vec!["run", "--rm"];
        second.extend(&args);
        second.extend([img.as_str(), "ls", "/t"]);
        assert_eq!(engine.docker_ok(&second), "");
    }
    assert_clean(&engine);
}

#[test]
fn copy_up_fills_only_an_empty_volume() {
    let (registry, engine, img) = setup();
    // The image's /etc appears in a fresh named volume mounted there.
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        &img,
        "cat",
        "/etc/group",
    ]);
    assert!(out.contains("root:x:0:"), "{out}");
    let data = engine.root().join("volumes/etcvol/_data");
    assert!(data.join("passwd").is_file());
    // A volume that already has content is not overwritten.
    engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "pre:/x",
        &img,
        "sh",
        "-c",
        "echo mine > /x/marker",
    ]);
    let out = engine.docker_ok(&["run", "--rm", "-v", "pre:/etc", &img, "ls", "/etc"]);
    assert_eq!(out, "marker\n");
    // volume-subpath mounts a directory inside the volume.
    engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "pre:/x",
        &img,
        "sh",
        "-c",
        "mkdir /x/sub && echo s > /x/sub/f",
    ]);
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=pre,target=/s,volume-subpath=sub",
        &img,
        "cat",
        "/s/f",
    ]);
    assert_eq!(out, "s\n");
    // nocopy leaves a new volume empty.
    let out = engine.docker_ok(&["run", "--rm", "-v", "nc:/etc:nocopy", &img, "ls", "/etc"]);
    assert_eq!(out, "");
    // An image VOLUME becomes an anonymous volume with the image's files, owners and
    // modes.
    let vimg = images::busybox_volume_image().unwrap();
    vimg.push(&registry, "vol:latest").unwrap();
    let vname = format!("{}/vol:latest", registry.addr());
    engine.docker_ok(&["pull", "-q", &vname]);
    let out = engine.docker_ok(&[
        "run",
        "--name",
        "iv",
        &vname,
        "sh",
        "-c",
        "cat /data/seed; busybox stat -c '%u %a' /data /data/seed",
    ]);
    assert_eq!(out, "seeded65534 750\n65534 640\n");
    let v: serde_json::Value =
        serde_json::from_str(&inspect(&engine, "{{json .Mounts}}", "iv")).unwrap();
    assert_eq!(v[0]["Type"], "volume");
    assert_eq!(v[0]["Destination"], "/data");
    assert_eq!(v[0]["Mode"], "");
    let anon = v[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64);
    engine.docker_ok(&["rm", "-v", "iv"]);
    assert!(!volume_exists(&engine, &anon));
    assert_clean(&engine);
}

#[test]
fn in_use_volumes_rm_v_and_prune() {
    let (_r, engine, img) = setup();
    let id = engine
        .docker_ok(&[
            "create", "--name", "c1", "-v", "named:/n", "-v", "/anon", &img, "true",
        ])
        .trim()
        .to_string();
    let out = engine.docker(&["volume", "rm", "named"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("remove named: volume is in use - [{id}]")),
        "{}",
        stderr(&out)
    );
    let anon = inspect(
        &engine,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "c1",
    );
    assert_eq!(anon.len(), 64, "{anon}");
    // Also while the container has run and stopped.
    engine.docker_ok(&["start", "-a", "c1"]);
    assert!(!engine.docker(&["volume", "rm", &anon]).status.success());
    engine.docker_ok(&["rm", "-v", "c1"]);
    assert!(
        !volume_exists(&engine, &anon),
        "rm -v removes anonymous volumes"
    );
    assert!(volume_exists(&engine, "named"), "rm -v keeps named volumes");
    // Without -v the anonymous volume stays, dangling, until prune.
    engine.docker_ok(&["create", "--name", "c2", "-v", "/anon2", &img, "true"]);
    let anon2 = inspect(&engine, "{{range .Mounts}}{{.Name}}{{end}}", "c2");
    engine.docker_ok(&["rm", "c2"]);
    assert!(volume_exists(&engine, &anon2));
    let out = engine.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon2), "{out}");
    assert!(!volume_exists(&engine, &anon2));
    assert!(
        volume_exists(&engine, "named"),
        "prune keeps named volumes without --all"
    );
    // --rm takes its anonymous volumes along.
    engine.docker_ok(&["run", "--rm", "-v", "/gone", &img, "true"]);
    assert_eq!(engine.docker_ok(&["volume", "ls", "-q"]).trim(), "named");
    engine.docker_ok(&["volume", "prune", "-af"]);
    assert_eq!(engine.docker_ok(&["volume", "ls", "-q"]).trim(), "");
    assert_clean(&engine);
}

#[test]
fn volumes_from_shares_mounts_and_honours_ro() {
    let (_r, engine, img) = setup();
    let host = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    engine.docker_ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "vf:/shared",
        "-v",
        "/anon",
        "-v",
        &format!("{h}:/h"),
        &img,
        "sh",
        "-c",
        "echo one > /shared/f; echo two > /anon/g",
    ]);
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        &img,
        "sh",
        "-c",
        "cat /shared/f /anon/g; echo three > /h/x",
    ]);
    assert_eq!(out, "one\ntwo\n");
    assert!(host.path().join("x").is_file());
    let out = engine.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        &img,
        "sh",
        "-c",
        "echo no > /shared/f",
    ]);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // The anonymous volume survived the --rm consumer: src still holds it.
    let anon = inspect(
        &engine,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "src",
    );
    assert!(volume_exists(&engine, &anon));
    let out = engine.docker(&["run", "--rm", "--volumes-from", "nosuch", &img, "true"]);
    assert!(
        stderr(&out).contains("No such container: nosuch"),
        "{}",
        stderr(&out)
    );
    assert_clean(&engine);
}

#[test]
fn local_driver_tmpfs_and_bind_options() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ]);
    let data: PathBuf = engine.root().join("volumes/tv/_data");
    engine.docker_ok(&[
        "run", "-d", "--name", "tt", "-v", "tv:/t", &img, "sleep", "60",
    ]);
    let out = engine.docker_ok(&["exec", "tt", "sh", "-c", "grep ' /t ' /proc/mounts"]);
    assert!(
        out.starts_with("tmpfs /t tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(
        mounts_under(&data).len() == 1,
        "the tmpfs is mounted on _data while in use"
    );
    engine.docker_ok(&["rm", "-f", "tt"]);
    assert!(mounts_under(&data).is_empty(), "and unmounted after");
    let opts = engine.docker_ok(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]);
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=1m","type":"tmpfs"}"#
    );
    // A bind-device volume writes through to the host directory, and removing the
    // volume never deletes that directory's content.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("keep"), b"keep").unwrap();
    engine.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &format!("device={}", host.path().display()),
        "bv",
    ]);
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/b",
        &img,
        "sh",
        "-c",
        "cat /b/keep; echo new > /b/new",
    ]);
    assert_eq!(out, "keep");
    assert!(host.path().join("new").is_file());
    engine.docker_ok(&["volume", "rm", "bv", "tv"]);
    assert_eq!(std::fs::read(host.path().join("keep")).unwrap(), b"keep");
    assert!(host.path().join("new").is_file());
    // The volume's life as `docker events` tells it.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = engine.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    for want in ["create tv", "mount tv", "unmount tv", "destroy tv"] {
        assert!(
            events.lines().any(|l| l == want),
            "{want} missing in:\n{events}"
        );
    }
    let out = engine.docker(&["volume", "create", "-o", "foo=bar", "x1"]);
    assert!(
        stderr(&out).contains("invalid option: \"foo\""),
        "{}",
        stderr(&out)
    );
    assert_clean(&engine);
}

#[test]
fn system_df_and_system_prune() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&["volume", "create", "dfvol"]);
    engine.docker_ok(&[
        "run",
        "--name",
        "dfuser",
        "-v",
        "dfvol:/data",
        &img,
        "sh",
        "-c",
        "head -c 4096 /dev/zero > /data/f; head -c 1000 /dev/zero > /rw",
    ]);
    let df = engine.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.lines().any(|l| l == "Images 1 1"), "{df}");
    assert!(df.lines().any(|l| l == "Containers 1 0"), "{df}");
    assert!(df.lines().any(|l| l == "Local Volumes 1 1"), "{df}");
    let v = engine.docker_ok(&["system", "df", "-v", "--format", "{{json .Volumes}}"]);
    assert!(v.contains("dfvol") && v.contains("4.096kB"), "{v}");
    engine.docker_ok(&["network", "create", "unused-net"]);
    let out = engine.docker_ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    let nets = engine.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("unused-net"), "{nets}");
    // Named volumes survive a plain prune (API 1.42+: only anonymous ones go).
    assert_eq!(engine.docker_ok(&["volume", "ls", "-q"]).trim(), "dfvol");
}

/// `--filter` on container, network, image and system prune: `label`, `label!`
/// and `until` keep what they exclude, as with dockerd (Berth once pruned
/// every stopped container whatever the filter said).
#[test]
fn prune_filters_keep_what_they_exclude() {
    let (_r, engine, img) = setup();
    let names = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = engine.docker_ok(args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let all_containers = || names(&["ps", "-a", "--format", "{{.Names}}"]);
    for (name, label) in [
        ("pk-keep", "keep=yes"),
        ("pk-team", "team=a"),
        ("pk-plain", "x=1"),
    ] {
        engine.docker_ok(&["create", "--name", name, "--label", label, &img, "true"]);
    }
    // Created just now: nothing is older than an hour.
    engine.docker_ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(all_containers(), ["pk-keep", "pk-plain", "pk-team"]);
    engine.docker_ok(&["container", "prune", "-f", "--filter", "label=team=a"]);
    assert_eq!(all_containers(), ["pk-keep", "pk-plain"]);
    engine.docker_ok(&["system", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(all_containers(), ["pk-keep"]);
    let bad = engine.docker(&["container", "prune", "-f", "--filter", "bogus=1"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("invalid filter 'bogus'"),
        "{}",
        stderr(&bad)
    );
    assert_eq!(all_containers(), ["pk-keep"]);

    engine.docker_ok(&["network", "create", "--label", "keep", "pn-keep"]);
    engine.docker_ok(&["network", "create", "pn-plain"]);
    let networks = || {
        names(&[
            "network",
            "ls",
            "--filter",
            "name=pn-",
            "--format",
            "{{.Name}}",
        ])
    };
    engine.docker_ok(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(networks(), ["pn-keep", "pn-plain"]);
    engine.docker_ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(networks(), ["pn-keep"]);

    // Two unused images, one labelled: `label!` spares it. (A commit keeps its
    // container's labels, so the plain one comes from a plain container.)
    engine.docker_ok(&["create", "--name", "pk-base", &img, "true"]);
    engine.docker_ok(&["commit", "--change", "LABEL keep=1", "pk-base", "pi-keep:1"]);
    engine.docker_ok(&["commit", "pk-base", "pi-plain:1"]);
    engine.docker_ok(&["rm", "pk-keep", "pk-base"]);
    engine.docker_ok(&["image", "prune", "-a", "-f", "--filter", "label!=keep"]);
    let images = names(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(
        images,
        ["pi-keep"],
        "the plain image and the unused base go"
    );
}

#[test]
fn cp_into_a_running_container_writes_into_its_volume() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "cpvol:/data",
        &img,
        "sleep",
        "1000",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("note.txt");
    std::fs::write(&f, "via-cp\n").unwrap();
    engine.docker_ok(&["cp", f.to_str().unwrap(), "holder:/data/note.txt"]);
    // Another container sees it in the volume, not in holder's own layer.
    let seen = engine.docker_ok(&["run", "--rm", "-v", "cpvol:/v", &img, "cat", "/v/note.txt"]);
    assert_eq!(seen, "via-cp\n");
    // And reading back through cp works the same way.
    let back = tmp.path().join("back");
    std::fs::create_dir(&back).unwrap();
    engine.docker_ok(&["cp", "holder:/data/note.txt", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("note.txt")).unwrap(),
        "via-cp\n"
    );
    engine.docker_ok(&["rm", "-f", "holder"]);
}
