//! The TypeScript types the frontend imports (`frontend/src/lib/model.ts`),
//! generated from the Rust types the commands take and return, so the two
//! cannot drift: the test here fails when the checked-in file differs from
//! what these types generate, and `BERTH_BLESS=1` makes it rewrite the file.

use std::path::PathBuf;

use ts_rs::{Config, TS};

use crate::commands::{containers, disk, images, logs, settings, stats, troubleshoot, welcome};
use crate::{engine, model};

/// Where the file lives, from this crate's directory.
const FILE: &str = "../../frontend/src/lib/model.ts";

/// The types `berth::settings` and `berth::vm` own; the library has no
/// TypeScript derive, so `settings.ts` keeps them by hand.
const FOREIGN: &str = r#"import type { Settings, VmState, VmUsage } from "./settings";"#;

fn decl<T: TS + 'static>(cfg: &Config) -> String {
    format!("{}export {}\n", T::docs().unwrap_or_default(), T::decl(cfg))
}

/// The whole file, types in the order `api.ts` uses them.
fn generate() -> String {
    // JSON numbers: the engine's sizes and times fit a double.
    let cfg = Config::new().with_large_int("number");
    let decls = [
        decl::<engine::EngineStatus>(&cfg),
        decl::<model::PortLink>(&cfg),
        decl::<model::ContainerRow>(&cfg),
        decl::<model::ImageRow>(&cfg),
        decl::<containers::RunForm>(&cfg),
        decl::<logs::LogLine>(&cfg),
        decl::<images::PullEvent>(&cfg),
        decl::<model::VolumeRow>(&cfg),
        decl::<model::NetworkRow>(&cfg),
        decl::<model::StatsPoint>(&cfg),
        decl::<settings::SettingsView>(&cfg),
        decl::<settings::DockerCli>(&cfg),
        decl::<troubleshoot::Troubleshoot>(&cfg),
        decl::<stats::Usage>(&cfg),
        decl::<welcome::TutorialStarted>(&cfg),
        decl::<crate::build_record::BuildStep>(&cfg),
        decl::<crate::build_record::BuildRequest>(&cfg),
        decl::<crate::build_record::BuildSource>(&cfg),
        decl::<crate::build_record::Build>(&cfg),
        decl::<disk::DiskRow>(&cfg),
        decl::<disk::DiskUsage>(&cfg),
    ];
    let file = format!(
        "// Generated from app/src-tauri's Rust types by `cargo test -p berth-desktop`\n\
         // (src/bindings.rs); do not edit. BERTH_BLESS=1 on that test rewrites it.\n\
         {FOREIGN}\n\n{}",
        decls.join("\n")
    );
    // ts-rs leaves a space after each `{` and `,` that opens a line.
    file.lines()
        .map(|l| l.trim_end().to_string() + "\n")
        .collect()
}

#[test]
fn the_frontend_types_match_the_rust_model() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let want = generate();
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the Rust types generate: run \
         `BERTH_BLESS=1 cargo test -p berth-desktop bindings` and commit it",
        path.display()
    );
}

#[test]
fn the_generated_types_are_the_wire_shapes() {
    let file = generate();
    // camelCase as serde sends it, numbers not bigints, options nullable.
    assert!(file.contains("dockerHost: string"), "{file}");
    assert!(file.contains(r#"state: "running" | "stopped""#), "{file}");
    assert!(file.contains("memoryLimit: number"), "{file}");
    assert!(file.contains("cpuPercent: number | null"), "{file}");
    assert!(!file.contains("bigint"), "{file}");
    assert!(file.contains("settings: Settings"), "{file}");
}

/// The top-level keys of the first `{ … }` after `after` in TypeScript text.
fn ts_keys(ts: &str, after: &str) -> Vec<String> {
    let Some(start) = ts
        .find(after)
        .and_then(|i| ts[i..].find('{').map(|j| i + j + 1))
    else {
        return Vec::new();
    };
    let (mut depth, mut keys, mut key, mut in_type) = (0usize, Vec::new(), String::new(), false);
    for c in ts[start..].chars() {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' if depth == 0 => break,
            '}' | ']' | ')' => depth -= 1,
            ':' if depth == 0 && !in_type => {
                keys.push(key.trim_end_matches('?').to_string());
                key.clear();
                in_type = true;
            }
            ';' | ',' if depth == 0 => in_type = false,
            c if depth == 0 && !in_type && !c.is_whitespace() => key.push(c),
            _ => {}
        }
    }
    keys.sort();
    keys
}

fn json_keys(v: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// `settings.ts` is kept by hand (see `FOREIGN`): at least its settings, which
/// the page sends back whole, must name exactly the fields the library
/// serializes.
#[test]
fn the_hand_kept_settings_match_the_library() {
    let ts = include_str!("../../../frontend/src/lib/settings.ts");
    let json = serde_json::to_value(berth::settings::Settings::default()).unwrap();
    assert_eq!(ts_keys(ts, "type Settings ="), json_keys(&json));
    assert_eq!(ts_keys(ts, "type VmSettings ="), json_keys(&json["vm"]));
    assert_eq!(ts_keys(ts, "app: {"), json_keys(&json["app"]));
}

#[test]
fn typescript_keys_are_read_at_the_top_level_only() {
    let ts = "type A = { a: number; b?: { c: string }; d: Array<{ e: 1 }> };";
    assert_eq!(ts_keys(ts, "type A ="), ["a", "b", "d"]);
    assert_eq!(ts_keys(ts, "b?: {"), ["c"]);
    assert!(ts_keys(ts, "type Z =").is_empty());
}
