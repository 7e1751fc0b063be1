//! Starting and stopping the VM (Troubleshoot, the welcome flow, the tray)
//! through the `berth` library's lifecycle, off the UI's threads.

use super::Res;

/// The `berth` binary that runs the VM supervisor: beside the app, else on PATH.
fn berth_exe() -> Res<std::path::PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| {
            e.parent()
                .map(|d| d.join(format!("berth{}", std::env::consts::EXE_SUFFIX)))
        })
        .filter(|p| p.is_file())
        .or_else(|| berth::vm::image::find_program("berth"))
        .ok_or_else(|| "the berth command is not installed beside the app".to_string())
}

/// Boots the VM (returns once its engine answers), off the UI's threads.
#[tauri::command]
pub async fn vm_start() -> Res<String> {
    let exe = berth_exe()?;
    tokio::task::spawn_blocking(move || {
        berth::vm::lifecycle::start(
            &berth::paths::Paths::for_user(),
            &exe,
            std::time::Duration::from_secs(300),
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map(|s| started_message(s.already, s.took))
    .map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn vm_stop() -> Res<String> {
    tokio::task::spawn_blocking(|| berth::vm::lifecycle::stop(&berth::paths::Paths::for_user()))
        .await
        .map_err(|e| e.to_string())?
        .map(stopped_message)
        .map_err(|e| e.to_string())
}

fn started_message(already: bool, took: std::time::Duration) -> String {
    if already {
        "The VM was already running.".to_string()
    } else {
        format!(
            "The VM is up; its engine answered after {:.1} s.",
            took.as_secs_f64()
        )
    }
}

fn stopped_message(was_running: bool) -> String {
    if was_running {
        "The VM is stopped.".to_string()
    } else {
        "The VM was not running.".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_say_what_happened() {
        assert_eq!(
            started_message(false, std::time::Duration::from_millis(2340)),
            "The VM is up; its engine answered after 2.3 s."
        );
        assert_eq!(
            started_message(true, std::time::Duration::ZERO),
            "The VM was already running."
        );
        assert_eq!(stopped_message(true), "The VM is stopped.");
        assert_eq!(stopped_message(false), "The VM was not running.");
    }
}
