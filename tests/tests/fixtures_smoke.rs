//! Smoke test of the fixtures themselves: registry (anonymous, Basic, token), images, skopeo.
//!
//! No engine involved.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use berth_tests::images::{self, Compression, ImageLayout, LayerDesc};
use berth_tests::registry::{Registry, RegistryAuth, SERVICE};
use sha2::{Digest, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// (path, entry type, link name, mode, data) of every entry, names read raw.
type Entry = (String, tar::EntryType, String, u32, Vec<u8>);

fn entries(img: &ImageLayout, layer: &LayerDesc) -> Vec<Entry> {
    let tar = img.layer_tar(layer).unwrap();
    assert_eq!(sha256(&tar), layer.diff_id, "diff_id is the tar's digest");
    let mut a = tar::Archive::new(&tar[..]);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let kind = e.header().entry_type();
            let mode = e.header().mode().unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, kind, link, mode, data)
        })
        .collect()
}

fn manifest(registry: &Registry, name: &str, reference: &str, accept: &str) -> (String, String) {
    let r = registry
        .get("GET", &format!("/v2/{name}/manifests/{reference}"), accept)
        .unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), registry.log());
    assert_eq!(
        r.header("docker-content-digest").map(str::to_string),
        Some(sha256(&r.body)),
        "the registry's digest is the body's"
    );
    (
        r.header("content-type").unwrap_or_default().to_string(),
        sha256(&r.body),
    )
}

#[test]
fn anonymous_registry_serves_pushed_images_in_every_compression() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    assert!(registry.addr().starts_with("127.0.0.1:"));
    for (c, tag, media_type, magic) in [
        (
            Compression::None,
            "plain",
            "application/vnd.oci.image.layer.v1.tar",
            &b""[..],
        ),
        (
            Compression::Gzip,
            "gzip",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &[0x1f, 0x8b][..],
        ),
        (
            Compression::Zstd,
            "zstd",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &[0x28, 0xb5, 0x2f, 0xfd][..],
        ),
    ] {
        let img = images::busybox_image(c, "amd64").unwrap();
        let layer = &img.layers()[0];
        assert_eq!(layer.media_type, media_type);
        let blob = img.blob(&layer.digest).unwrap();
        assert!(blob.starts_with(magic), "{tag} blob magic");
        assert_eq!(sha256(&blob), layer.digest);
        assert_eq!(img.diff_ids(), vec![layer.diff_id.clone()]);

        img.push(&registry, &format!("smoke/busybox:{tag}"))
            .unwrap();
        let (ct, digest) = manifest(&registry, "smoke/busybox", tag, OCI_MANIFEST);
        assert_eq!(ct, OCI_MANIFEST);
        assert_eq!(digest, img.manifest_digest());
        // By digest too, and the config and layer blobs are there, unchanged.
        manifest(&registry, "smoke/busybox", &digest, OCI_MANIFEST);
        let r = registry
            .get(
                "GET",
                &format!("/v2/smoke/busybox/blobs/{}", img.config_digest()),
                "*/*",
            )
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(sha256(&r.body), img.config_digest());
        let config: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(config["config"]["Labels"]["org.berth.test"], "1");
        assert!(config["config"]["Env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH="));
        assert_eq!(config["rootfs"]["diff_ids"][0], layer.diff_id.as_str());
        assert!(!config["history"].as_array().unwrap().is_empty());
        let r = registry
            .get(
                "HEAD",
                &format!("/v2/smoke/busybox/blobs/{}", layer.digest),
                "*/*",
            )
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-length"),
            Some(layer.size.to_string().as_str())
        );
    }
    let r = registry
        .get("GET", "/v2/smoke/busybox/tags/list", "application/json")
        .unwrap();
    let tags: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort();
    assert_eq!(tags, ["gzip", "plain", "zstd"]);
}

#[test]
fn busybox_layer_has_the_expected_tree_and_digests_are_deterministic() {
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    let again = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    assert_eq!(img.manifest_digest(), again.manifest_digest());
    assert_eq!(img.config_digest(), again.config_digest());
    let arm = images::busybox_image(Compression::Gzip, "arm64").unwrap();
    assert_ne!(img.config_digest(), arm.config_digest());
    assert_eq!(img.diff_ids(), arm.diff_ids());

    let entries = entries(&img, &img.layers()[0]);
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.0.trim_end_matches('/') == p)
            .unwrap_or_else(|| {
                panic!(
                    "no {p} in {:?}",
                    entries.iter().map(|e| &e.0).collect::<Vec<_>>()
                )
            })
    };
    let bb = find("bin/busybox");
    assert_eq!(bb.1, tar::EntryType::Regular);
    assert_eq!(bb.3 & 0o777, 0o755);
    assert_eq!(bb.4, std::fs::read("/bin/busybox").unwrap());
    for applet in [
        "sh", "ls", "cat", "sleep", "wget", "httpd", "whoami", "uname",
    ] {
        let e = find(&format!("bin/{applet}"));
        assert_eq!((e.1, e.2.as_str()), (tar::EntryType::Symlink, "busybox"));
    }
    assert!(String::from_utf8_lossy(&find("etc/passwd").4).contains("nobody:x:65534"));
    assert!(String::from_utf8_lossy(&find("etc/group").4).starts_with("root:x:0:"));
    let tmp = find("tmp");
    assert_eq!(tmp.1, tar::EntryType::Directory);
    assert_eq!(tmp.3 & 0o7777, 0o1777);
}

#[test]
fn multiarch_index_is_pushed_whole() {
    let registry = Registry::start(RegistryAuth::None).unwrap();
    let index = images::multiarch_index().unwrap();
    index.push(&registry, "smoke/multi:latest").unwrap();
    let (ct, digest) = manifest(&registry, "smoke/multi", "latest", OCI_INDEX);
    assert_eq!(ct, OCI_INDEX);
    assert_eq!(digest, index.index_digest());

    let r = registry
        .get("GET", "/v2/smoke/multi/manifests/latest", OCI_INDEX)
        .unwrap();
    let idx: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let platforms: Vec<String> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .collect();
    assert!(
        platforms.contains(&"linux/amd64".to_string()),
        "{platforms:?}"
    );
    assert!(platforms.iter().any(|p| p.starts_with("linux/arm64")));
    assert!(platforms.contains(&"linux/arm/v7".to_string()));

    let mut configs = Vec::new();
    for p in index.platforms() {
        let (ct, d) = manifest(&registry, "smoke/multi", &p.manifest_digest, OCI_MANIFEST);
        assert_eq!(ct, OCI_MANIFEST);
        assert_eq!(d, p.manifest_digest);
        configs.push(p.config_digest.clone());
    }
    configs.sort();
    configs.dedup();
    assert_eq!(configs.len(), 3, "each platform has its own config");
    assert_eq!(
        index.config_digest_for("arm", Some("v7")),
        index.platforms()[2].config_digest
    );
    assert!(!index.config_digest_for("arm64", None).is_empty());
}

#[test]
fn whiteout_image_layers() {
    let img = images::whiteout_image().unwrap();
    let layers = img.layers();
    assert_eq!(layers.len(), 2);
    let names = |l| -> Vec<String> {
        entries(&img, l)
            .into_iter()
            .map(|e| e.0.trim_end_matches('/').to_string())
            .collect()
    };
    let base = names(&layers[0]);
    for p in ["data/keep", "data/gone", "opq/old"] {
        assert!(base.contains(&p.to_string()), "{p} in {base:?}");
    }
    let top = names(&layers[1]);
    for p in ["data/.wh.gone", "opq/.wh..wh..opq", "opq/new"] {
        assert!(top.contains(&p.to_string()), "{p} in {top:?}");
    }
}

#[test]
fn malicious_layers_carry_their_escapes() {
    let evil = images::malicious_images().unwrap();
    let tags: Vec<&str> = evil.iter().map(|e| e.tag).collect();
    assert_eq!(tags, ["dotdot", "symlink", "hardlink"]);
    for e in &evil {
        assert_eq!(e.escaped(), None, "{} clean before any pull", e.tag);
        let entries = entries(&e.image, &e.image.layers()[0]);
        match e.tag {
            "dotdot" => {
                let (path, kind, ..) = &entries[0];
                assert_eq!(*kind, tar::EntryType::Regular);
                assert!(path.starts_with("../../"), "{path}");
                // Resolving it from any directory lands on the target.
                let resolved = std::path::Path::new("/x/y").join(path);
                let canon = normalize(&resolved);
                assert_eq!(canon, e.escape_target);
            }
            "symlink" => {
                assert_eq!(entries[0].0, "evil");
                assert_eq!(entries[0].1, tar::EntryType::Symlink);
                assert_eq!(
                    std::path::Path::new(&entries[0].2),
                    e.escape_target.parent().unwrap()
                );
                assert_eq!(entries[1].0, "evil/pwned");
            }
            "hardlink" => {
                assert_eq!(entries[0].0, "hl");
                assert_eq!(entries[0].1, tar::EntryType::Link);
                assert!(entries[0].2.starts_with("../../"), "{}", entries[0].2);
                let victim = e.victim.as_ref().unwrap();
                assert_eq!(
                    &normalize(&std::path::Path::new("/x").join(&entries[0].2)),
                    victim
                );
                assert_eq!(entries[1].0, "hl");
                assert_eq!(std::fs::read(victim).unwrap(), images::VICTIM_CONTENT);
                assert_eq!(std::fs::metadata(victim).unwrap().nlink(), 1);
            }
            other => panic!("unexpected {other}"),
        }
    }
    // escaped() notices a write at the target.
    let e = &evil[0];
    std::fs::write(&e.escape_target, b"x").unwrap();
    assert!(e.escaped().is_some());
    std::fs::remove_file(&e.escape_target).unwrap();
    let targets: Vec<_> = evil.iter().map(|e| e.escape_target.clone()).collect();
    drop(evil);
    for t in targets {
        assert!(!t.parent().unwrap().exists(), "escape dirs are cleaned up");
    }
}

/// Lexical `..` resolution (the targets do not exist yet).
fn normalize(p: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[test]
fn random_image_is_big_incompressible_and_seeded() {
    let img = images::random_image(6).unwrap();
    let layers = img.layers();
    assert_eq!(layers.len(), 3);
    let total: u64 = layers.iter().map(|l| l.size).sum();
    assert!(total >= 6_000_000, "{total} bytes");
    let same = images::random_image_seeded(6, 1).unwrap();
    assert_eq!(img.manifest_digest(), same.manifest_digest());
    let other = images::random_image_seeded(6, 2).unwrap();
    assert_ne!(img.manifest_digest(), other.manifest_digest());
}

#[test]
fn basic_auth_registry_over_plain_http() {
    let registry = Registry::start(RegistryAuth::basic("alice", "s3cret")).unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();
    let err = img
        .push_as(&registry, "smoke/basic:latest", Some("alice:wrong"))
        .unwrap_err();
    eprintln!("wrong basic creds: {err:#}");
    assert!(
        format!("{err:#}").contains("401") || format!("{err:#}").contains("unauthorized"),
        "{err:#}"
    );
    assert!(img.push_as(&registry, "smoke/basic:latest", None).is_err());
    img.push(&registry, "smoke/basic:latest").unwrap();

    let anon = berth_tests::http_request(&registry.addr(), "GET", "/v2/", &[], None).unwrap();
    assert_eq!(anon.status, 401);
    let challenge = anon.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let (_, digest) = manifest(&registry, "smoke/basic", "latest", OCI_MANIFEST);
    assert_eq!(digest, img.manifest_digest());
}

#[test]
fn token_auth_registry_end_to_end() {
    let registry = Registry::start(RegistryAuth::token("bob", "hunter2")).unwrap();
    let realm = registry.token_realm().unwrap();
    let img = images::busybox_image(Compression::Gzip, "amd64").unwrap();

    // The registry sends clients to the token server.
    let anon = berth_tests::http_request(&registry.addr(), "GET", "/v2/", &[], None).unwrap();
    assert_eq!(anon.status, 401);
    let challenge = anon.header("www-authenticate").unwrap_or_default();
    assert_eq!(
        challenge,
        format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"")
    );

    // Wrong credentials: no token, and skopeo cannot push.
    let err = registry
        .token("repository:smoke/token:pull", Some("bob:wrong"))
        .unwrap_err();
    assert!(format!("{err:#}").contains("401"), "{err:#}");
    let err = img
        .push_as(&registry, "smoke/token:latest", Some("bob:wrong"))
        .unwrap_err();
    eprintln!("wrong token creds: {err:#}");
    assert!(
        format!("{err:#}").contains("401") || format!("{err:#}").contains("unauthorized"),
        "{err:#}"
    );

    // Right credentials: skopeo pushes through the token flow.
    let before = registry.token_requests();
    img.push(&registry, "smoke/token:latest").unwrap();
    assert!(registry.token_requests() > before);
    let (ct, digest) = manifest(&registry, "smoke/token", "latest", OCI_MANIFEST);
    assert_eq!(ct, OCI_MANIFEST);
    assert_eq!(digest, img.manifest_digest());

    // A token is only good for its scope.
    let other = registry.token("repository:smoke/other:pull", None).unwrap();
    let r = berth_tests::http_request(
        &registry.addr(),
        "GET",
        "/v2/smoke/token/manifests/latest",
        &[
            ("Authorization", &format!("Bearer {other}")),
            ("Accept", OCI_MANIFEST),
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let mine = registry.token("repository:smoke/token:pull", None).unwrap();
    let r = berth_tests::http_request(
        &registry.addr(),
        "GET",
        "/v2/smoke/token/manifests/latest",
        &[
            ("Authorization", &format!("Bearer {mine}")),
            ("Accept", OCI_MANIFEST),
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // The registry checks the signature.
    let (signed, sig) = mine.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{flipped}{}", &sig[1..]);
    let r = berth_tests::http_request(
        &registry.addr(),
        "GET",
        "/v2/smoke/token/manifests/latest",
        &[
            ("Authorization", &format!("Bearer {forged}")),
            ("Accept", OCI_MANIFEST),
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());

    // The token endpoint speaks the documented JSON.
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "bob:hunter2")
    );
    let path = realm.split_once("://").unwrap().1;
    let (host, rest) = path.split_once('/').unwrap();
    let r = berth_tests::http_request(
        host,
        "GET",
        &format!("/{rest}?service={SERVICE}&scope=repository%3Asmoke%2Ftoken%3Apull"),
        &[("Authorization", &basic)],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["token"], v["access_token"]);
    assert_eq!(v["token"].as_str().unwrap().split('.').count(), 3);
    let r = berth_tests::http_request(host, "GET", &format!("/{rest}"), &[], None).unwrap();
    assert_eq!(r.status, 401, "no anonymous tokens");
}

#[test]
fn registry_drop_stops_it_and_removes_its_storage() {
    let registry = Registry::start(RegistryAuth::token("u", "p")).unwrap();
    let addr = registry.addr();
    let realm = registry.token_realm().unwrap();
    let dir = registry.dir().to_path_buf();
    assert!(dir.join("config.yml").is_file());
    drop(registry);
    assert!(!dir.exists());
    assert!(std::net::TcpStream::connect(&addr).is_err());
    let token_addr = realm
        .trim_start_matches("http://")
        .trim_end_matches("/token");
    assert!(std::net::TcpStream::connect(token_addr).is_err());
}
