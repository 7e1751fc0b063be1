//! Berth's desktop app: a Tauri window over the engine's Docker API
//! (bollard) and the `berth` library. Commands live in `commands/`, one module
//! per page, and are listed once in `command_list.rs`; what the pages show is
//! computed in `model.rs`.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(test)]
mod bindings;
mod build_record;
mod command_list;
mod commands;
mod engine;
mod model;
mod rerun;
mod streams;
mod tray;
mod watch;
mod webkit_env;

/// When the process started, for the first-paint log line.
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn main() -> anyhow::Result<()> {
    STARTED.get_or_init(std::time::Instant::now);
    // While this is the only thread.
    webkit_env::prepare();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let docker = engine::connect().map_err(|e| e.to_string());
    tauri::Builder::default()
        .plugin(tauri_plugin_opener::init())
        .manage(commands::App {
            engine: watch::EngineWatch::start(docker.clone()),
            docker,
            streams: Default::default(),
            usage: Default::default(),
        })
        .setup(|app| {
            // A desktop without a tray (or a status-notifier host) still gets the window.
            if let Err(e) = tray::install(app.handle()) {
                tracing::warn!(error = %e, "no tray icon");
            }
            Ok(())
        })
        .invoke_handler(command_list::handler!())
        .run(tauri::generate_context!())
        .map_err(|e| anyhow::anyhow!("running the app: {e}"))
}

#[cfg(test)]
mod tests {
    /// A name listed twice would register one handler and one permission
    /// under two entries; the list stays a set.
    #[test]
    fn each_command_is_listed_once() {
        let mut names = super::command_list::COMMANDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::command_list::COMMANDS.len());
    }

    /// The frontend reaches the commands only through `lib/api.ts`, and that
    /// file calls each registered command and nothing else.
    #[test]
    fn api_ts_invokes_exactly_the_commands() {
        let api = include_str!("../../../frontend/src/lib/api.ts");
        let mut invoked: Vec<&str> = api
            .split("invoke")
            .skip(1)
            .filter_map(|rest| {
                // `invoke<T>("name"` or `invoke("name"`; other mentions are not calls.
                let call = match rest.strip_prefix('<') {
                    Some(generic) => generic.split_once('>')?.1,
                    None => rest,
                };
                Some(call.strip_prefix("(\"")?.split_once('"')?.0)
            })
            .collect();
        invoked.sort_unstable();
        invoked.dedup();
        let mut registered = super::command_list::COMMANDS.to_vec();
        registered.sort_unstable();
        assert_eq!(invoked, registered);
    }

    /// The webview may call exactly the commands the app registers: each has
    /// its `allow-…` permission in the window's capability, and no other
    /// permission but core event plumbing is granted.
    #[test]
    fn the_capability_grants_exactly_the_commands() {
        let cap: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
        let mut granted: Vec<String> = cap["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .filter(|p| *p != "core:event:default")
            .map(str::to_string)
            .collect();
        let mut wanted: Vec<String> = super::command_list::COMMANDS
            .iter()
            .map(|c| format!("allow-{}", c.replace('_', "-")))
            .collect();
        granted.sort();
        wanted.sort();
        assert_eq!(granted, wanted);
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).unwrap();
        let csp = conf["app"]["security"]["csp"].as_str().unwrap();
        assert!(
            csp.contains("default-src 'self'")
                && !csp.contains("http://*")
                && !csp.contains("https:")
        );
    }
}
