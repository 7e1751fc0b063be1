//! The tray icon: the engine's state at a glance, the window, the VM's start
//! and stop, and quit — what Docker Desktop's whale menu offers.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager};

fn show(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// VM start/stop from the menu, off the UI thread; the result is logged (the
/// window's pages show the state).
fn vm(action: &'static str) {
    tauri::async_runtime::spawn(async move {
        let r = match action {
            "start" => crate::commands::vm::vm_start().await,
            _ => crate::commands::vm::vm_stop().await,
        };
        match r {
            Ok(m) => tracing::info!("{m}"),
            Err(e) => tracing::warn!(error = %e, "VM {action} from the tray failed"),
        }
    });
}

pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", "Engine: checking…", false, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "show", "Show Berth", true, None::<&str>)?,
            &MenuItem::with_id(app, "vm-start", "Start VM", true, None::<&str>)?,
            &MenuItem::with_id(app, "vm-stop", "Stop VM", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "welcome", "Getting started", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "quit", "Quit Berth", true, None::<&str>)?,
        ],
    )?;
    let mut tray = TrayIconBuilder::with_id("berth")
        .tooltip("Berth")
        .menu(&menu)
        .on_menu_event(|app, ev| match ev.id().as_ref() {
            "show" => show(app),
            "vm-start" => vm("start"),
            "vm-stop" => vm("stop"),
            "welcome" => {
                show(app);
                // The window's App listens and opens the first-run flow.
                let _ = app.emit("open-welcome", ());
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;

    // Keep the status line current: the app's engine watcher says when it changes.
    let configured = app.state::<crate::commands::App>().docker.is_ok();
    let mut follow = app.state::<crate::commands::App>().engine.follow_status();
    tauri::async_runtime::spawn(async move {
        loop {
            let text = match (configured, follow.borrow_and_update().state) {
                (false, _) => "Engine: not configured",
                (true, "running") => "Engine: running",
                (true, _) => "Engine: stopped",
            };
            let _ = status.set_text(text);
            if follow.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(())
}
