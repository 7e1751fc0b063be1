fn main() {
    // Only the commands listed here exist for the webview, and only those a
    // capability grants (capabilities/main.json) may be called.
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(
            tauri_build::AppManifest::new().commands(berth_desktop_commands::COMMANDS),
        ),
    )
    .expect("tauri build script");
}

mod berth_desktop_commands {
    include!("src/command_list.rs");
}
