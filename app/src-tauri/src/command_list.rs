// The webview's commands, declared once. `build.rs` includes this file (so it
// cannot be a `//!`-documented module) to make an `allow-…` permission for
// each name; `main.rs` registers the same list as the invoke handler, and the
// capability test checks that the window is granted exactly these.

/// Expands the one list into `COMMANDS` (the names, in this order: the
/// generated permissions follow it) and `handler!()` (the
/// `tauri::generate_handler!` over `crate::commands::<page>::<name>`).
macro_rules! commands {
    ($($page:ident::$name:ident),* $(,)?) => {
        #[cfg_attr(not(test), allow(dead_code))]
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        // The build script has no `tauri` and never expands this.
        #[allow(unused_macros)]
        macro_rules! handler {
            () => {
                tauri::generate_handler![$(crate::commands::$page::$name),*]
            };
        }
        #[allow(unused_imports)]
        pub(crate) use handler;
    };
}

commands! {
    app::engine_status,
    containers::list_containers,
    containers::container_action,
    images::list_images,
    images::remove_image,
    images::pull_image,
    containers::run_container,
    logs::follow_logs,
    streams::stop_stream,
    events::watch_events,
    terminal::exec_start,
    terminal::exec_input,
    terminal::exec_resize,
    images::prune_images,
    volumes::list_volumes,
    volumes::create_volume,
    volumes::remove_volume,
    networks::list_networks,
    networks::create_network,
    networks::remove_network,
    inspect::inspect,
    stats::watch_stats,
    settings::get_settings,
    settings::save_settings,
    settings::docker_cli,
    settings::set_docker_cli,
    troubleshoot::troubleshoot,
    troubleshoot::factory_reset,
    vm::vm_start,
    vm::vm_stop,
    app::open_link,
    app::app_ready,
    stats::list_usage,
    welcome::start_tutorial,
    welcome::finish_welcome,
    containers::project_action,
    builds::list_builds,
    builds::build_detail,
    builds::remove_build,
    builds::rerun_build,
    disk::disk_usage,
    disk::reclaim,
}
