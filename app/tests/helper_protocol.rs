//! `docker-credential-berth` against the real keychain backend of this machine
//! (on Linux the kernel keyutils store, a Secret Service only where a desktop
//! session offers one; built for Windows by `cargo xtask cross` and run under
//! Wine, the Credential Manager), driven as the docker CLI drives it: a verb argument,
//! input on stdin, the answer on stdout. Written from docker-credential-helpers'
//! protocol: `store` takes `{ServerURL, Username, Secret}`, `get` a server URL
//! and answers the same object or `credentials not found in native keychain`
//! with exit status 1, `erase` a URL, `list` a URL → username map.
//!
//! On Linux each test process first joins a new anonymous session keyring,
//! which the helper processes inherit; everywhere, each files entries under a
//! service name of its own, and every test erases what it stored.
#![cfg(any(target_os = "linux", windows))]

use std::io::Write;
use std::process::{Command, Stdio};

const HELPER: &str = env!("CARGO_BIN_EXE_docker-credential-berth");

#[cfg(target_os = "linux")]
fn isolate() {
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL) creates and joins a new
    // anonymous session keyring for this process; it reads no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            1 as libc::c_long,
            std::ptr::null::<libc::c_char>(),
        )
    };
    assert!(r >= 0, "cannot join a session keyring");
}

/// The Credential Manager is the user's; the service names keep tests apart.
#[cfg(windows)]
fn isolate() {}

/// keyutils also links entries into the user's persistent keyring, which all
/// sessions share: each test files its entries under its own service name.
fn service() -> String {
    format!(
        "berth-test-{}-{}",
        std::process::id(),
        std::thread::current().name().unwrap_or("t")
    )
}

fn helper(verb: &str, input: &str) -> (i32, String) {
    let mut child = Command::new(HELPER)
        .arg(verb)
        .env("BERTH_KEYRING", "keyutils")
        .env("BERTH_KEYRING_SERVICE", service())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn creds(server: &str, user: &str, secret: &str) -> String {
    serde_json::json!({"ServerURL": server, "Username": user, "Secret": secret}).to_string()
}

#[test]
fn every_verb_round_trips() {
    isolate();
    assert_eq!(helper("list", ""), (0, "{}".into()));
    assert_eq!(helper("store", &creds("127.0.0.1:5000", "ann", "pw1")).0, 0);
    assert_eq!(
        helper("store", &creds("https://index.docker.io/v1/", "bob", "pw2")).0,
        0
    );
    let (code, out) = helper("get", "127.0.0.1:5000\n");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"ServerURL": "127.0.0.1:5000", "Username": "ann", "Secret": "pw1"})
    );
    let (_, list) = helper("list", "");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        list,
        serde_json::json!({"127.0.0.1:5000": "ann", "https://index.docker.io/v1/": "bob"})
    );
    // Docker Hub under any of its names.
    let (code, out) = helper("get", "docker.io");
    assert_eq!(code, 0);
    assert!(out.contains("\"Username\":\"bob\""), "{out}");
    // Storing again replaces.
    assert_eq!(helper("store", &creds("127.0.0.1:5000", "ann", "pw3")).0, 0);
    assert!(helper("get", "127.0.0.1:5000").1.contains("pw3"));
    assert_eq!(helper("erase", "127.0.0.1:5000"), (0, String::new()));
    assert_eq!(
        helper("erase", "https://index.docker.io/v1/"),
        (0, String::new())
    );
    assert_eq!(helper("list", ""), (0, "{}".into()));
    assert!(helper("version", "")
        .1
        .starts_with("docker-credential-berth"));
}

#[test]
fn missing_entries_say_so_exactly() {
    isolate();
    let not_found = (1, "credentials not found in native keychain\n".to_string());
    assert_eq!(helper("get", "nowhere.example:1"), not_found);
    assert_eq!(helper("erase", "nowhere.example:1"), not_found);
}

#[test]
fn bad_input_is_refused_and_loses_nothing() {
    isolate();
    assert_eq!(helper("store", &creds("reg.example", "ann", "keep")).0, 0);
    for bad in ["", "{not json", "[1,2]", r#"{"ServerURL":"reg.example"}"#] {
        let (code, out) = helper("store", bad);
        assert_eq!(code, 1, "{bad:?} was accepted");
        assert!(!out.is_empty());
    }
    assert_eq!(
        helper("store", &creds("", "ann", "x")),
        (1, "no credentials server URL\n".into())
    );
    assert_eq!(
        helper("store", &creds("reg.example", "", "x")),
        (1, "no credentials username\n".into())
    );
    assert_eq!(helper("get", ""), (1, "no credentials server URL\n".into()));
    assert_eq!(helper("frobnicate", "").0, 1);
    // The stored entry survived all of it.
    assert!(helper("get", "reg.example")
        .1
        .contains("\"Secret\":\"keep\""));
    helper("erase", "reg.example");
}

/// The kernel keyring holds up to 32 KiB per entry, the Credential Manager
/// 2,560 bytes (`CRED_MAX_CREDENTIAL_BLOB_SIZE`): what fits, and what does not.
#[cfg(target_os = "linux")]
const FITS: usize = 24 * 1024;
#[cfg(target_os = "linux")]
const TOO_LONG: usize = 64 * 1024;
#[cfg(windows)]
const FITS: usize = 1000;
#[cfg(windows)]
const TOO_LONG: usize = 4 * 1024;

#[test]
fn long_secrets_and_unicode_usernames() {
    isolate();
    // Registry tokens run to a few KiB.
    let long: String = "x".repeat(FITS);
    assert_eq!(helper("store", &creds("long.example", "ann", &long)).0, 0);
    let (_, out) = helper("get", "long.example");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Secret"].as_str().map(str::len), Some(long.len()));
    // Too long: a clear refusal, and the old secret stays.
    let (code, out) = helper(
        "store",
        &creds("long.example", "ann", &"y".repeat(TOO_LONG)),
    );
    assert_eq!(code, 1);
    assert!(out.contains("too long"), "{out}");
    assert!(helper("get", "long.example").1.contains("xxxx"));

    let name = "Zoë-测试-🐳";
    assert_eq!(
        helper("store", &creds("uni.example", name, "pässwörd ✓")).0,
        0
    );
    let v: serde_json::Value = serde_json::from_str(&helper("get", "uni.example").1).unwrap();
    assert_eq!(v["Username"], name);
    assert_eq!(v["Secret"], "pässwörd ✓");
    assert!(helper("list", "").1.contains(name));
    helper("erase", "uni.example");
    helper("erase", "long.example");
}
