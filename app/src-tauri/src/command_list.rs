// The webview's commands: one list for the build script (which makes a
// permission for each) and for the handler registration test.
// Read by build.rs (through include!) and by the capability test.
#[cfg_attr(not(test), allow(dead_code))]
pub const COMMANDS: &[&str] = &[
    "engine_status",
    "list_containers",
    "container_action",
    "list_images",
    "remove_image",
    "pull_image",
    "run_container",
    "follow_logs",
    "stop_stream",
    "watch_events",
    "exec_start",
    "exec_input",
    "exec_resize",
    "prune_images",
    "list_volumes",
    "create_volume",
    "remove_volume",
    "list_networks",
    "inspect",
    "watch_stats",
    "get_settings",
    "save_settings",
    "troubleshoot",
    "factory_reset",
    "vm_start",
    "vm_stop",
    "open_link",
    "app_ready",
];
