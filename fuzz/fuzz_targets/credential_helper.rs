//! `docker-credential-berth store|get|erase|list`, fed what the docker CLI (or anyone)
//! writes on its stdin, through the same `helper::run` the binary calls, over an
//! in-memory store: the real keychain is never touched.
//!
//! Input: the first byte picks the verb, the rest is stdin. The store starts with one
//! login, so get/erase/list have something to find.

#![no_main]

use std::collections::HashMap;

use berth::creds::{self, helper, memory::Memory, Credentials, CredsError};
use libfuzzer_sys::fuzz_target;

const VERBS: &[&str] = &["store", "get", "erase", "list", "version", "bogus"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, stdin)) = data.split_first() else {
        return;
    };
    let verb = VERBS[usize::from(first) % VERBS.len()];
    let m = Memory::default();
    let seeded = Credentials {
        server_url: "127.0.0.1:5000".into(),
        username: "ann".into(),
        secret: "pw".into(),
    };
    creds::store(&m, &seeded).expect("memory store");

    let mut out = Vec::new();
    let code = helper::run(&m, verb, &mut &stdin[..], &mut out);
    let text = String::from_utf8(out).expect("the helper writes UTF-8");
    assert!(code == 0 || code == 1, "exit status {code}");

    match (verb, code) {
        // What was stored can be read back, and is listed under its normalised URL.
        ("store", 0) => {
            let c: Credentials = serde_json::from_slice(stdin).expect("store accepted it");
            let got = creds::get(&m, &c.server_url).expect("just stored");
            assert_eq!(
                (got.username.as_str(), got.secret.as_str()),
                (c.username.as_str(), c.secret.as_str())
            );
            let list = creds::list(&m).expect("list");
            assert_eq!(
                list.get(&creds::normalize(&c.server_url)),
                Some(&c.username)
            );
        }
        ("get", 0) => {
            let c: Credentials = serde_json::from_str(&text).expect("get answers JSON");
            assert!(!c.username.is_empty());
        }
        ("list", 0) => {
            let _: HashMap<String, String> =
                serde_json::from_str(&text).expect("list answers JSON");
        }
        // Erasing leaves nothing to get.
        ("erase", 0) => {
            let url = String::from_utf8_lossy(stdin);
            assert!(matches!(
                creds::get(&m, url.trim()),
                Err(CredsError::NotFound)
            ));
        }
        _ => {}
    }
});
