//! Image references as the API receives them (`docker pull NAME`, `docker tag`, a
//! build's `-t`, the `reference=` filter): `ImageRef::parse` and its helpers.
//! Beyond "no panic", a parsed reference must survive a round trip through the
//! familiar form the CLI prints.

#![no_main]

use berth_agent::images::reference::{self, ImageRef};
use libfuzzer_sys::fuzz_target;

fn round_trip(s: &str, r: &ImageRef) {
    // Docker prints `docker.io/a.b/c` as `a.b/c` too, which names the registry
    // `a.b`: the one familiar form that does not round-trip, there as here.
    let familiar = r.familiar_name();
    let first = familiar.split('/').next().unwrap_or_default();
    if r.registry() == "docker.io"
        && familiar.contains('/')
        && (first.contains(['.', ':']) || first == "localhost")
    {
        return;
    }
    let shown = r.to_string();
    let again = ImageRef::parse(&shown)
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its familiar form {shown:?} does not: {e}"));
    assert_eq!(&again, r, "{s:?} → {shown:?} names another image");
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ImageRef::parse(s) {
        round_trip(s, &r);
        let _ = (r.full_name(), r.tag_or_digest(), r.is_loopback_registry());
    }
    // `POST /images/{name}/tag?repo=…&tag=…`: the first line is the repo.
    let (repo, tag) = s.split_once('\n').unwrap_or((s, ""));
    let _ = ImageRef::from_repo_tag(repo, Some(tag));
    let _ = reference::is_loopback_host(repo);
    // The `reference=` filter: a pattern, then a name.
    let _ = reference::pattern_matches(repo, tag);
});
