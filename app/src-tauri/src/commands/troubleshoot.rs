//! The Troubleshoot page: the VM's state, what it costs the host (memory and
//! disk), its console, and the reset to factory defaults with what it deletes.

use serde::Serialize;

use super::Res;

/// How much of the VM's console the page shows.
const CONSOLE_LINES: usize = 200;

#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Troubleshoot {
    /// The VM supervisor's published state, when it runs.
    #[cfg_attr(test, ts(type = "VmState | null"))]
    pub vm: Option<berth::vm::VmState>,
    /// Guest memory, QEMU's RSS and the data disk's real size.
    #[cfg_attr(test, ts(type = "VmUsage"))]
    pub usage: berth::vm::usage::VmUsage,
    /// The last lines of the VM's console.
    pub console: String,
    /// What a reset to factory defaults deletes.
    pub reset_deletes: Vec<String>,
}

/// Off the async threads: QMP and the console file are blocking reads.
#[tauri::command]
pub async fn troubleshoot() -> Res<Troubleshoot> {
    tauri::async_runtime::spawn_blocking(gather)
        .await
        .map_err(|e| e.to_string())
}

fn gather() -> Troubleshoot {
    let paths = berth::paths::Paths::for_user();
    let vm = berth::vm::VmPaths::new(paths.vm_dir());
    let state = berth::vm::running_supervisor(&vm).and_then(|_| berth::vm::VmState::read(&vm));
    let console = std::fs::read_to_string(vm.console_log()).unwrap_or_default();
    Troubleshoot {
        usage: berth::vm::usage::usage(&vm, state.as_ref()),
        vm: state,
        console: last_lines(&console, CONSOLE_LINES),
        reset_deletes: berth::vm::reset::plan(&paths)
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    }
}

/// Deletes what `troubleshoot` listed; refused while the VM runs.
#[tauri::command]
pub fn factory_reset() -> Res<Vec<String>> {
    berth::vm::reset::reset(&berth::paths::Paths::for_user())
        .map(|v| v.iter().map(|p| p.display().to_string()).collect())
        .map_err(|e| e.to_string())
}

/// The last `n` lines of `text`, joined by `\n`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_keeps_its_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 5), "a\nb");
        assert_eq!(last_lines("", 5), "");
    }
}
