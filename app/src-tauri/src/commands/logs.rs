//! A container's logs, followed live over a channel (the Logs tab).

use bollard::query_parameters as q;
use futures_util::StreamExt;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;

use super::{docker, App, Res};

#[derive(Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    #[cfg_attr(test, ts(type = r#""stdout" | "stderr""#))]
    pub stream: &'static str,
    pub text: String,
}

/// Follows a container's logs (the last `tail` lines first); returns the
/// stream's id for `stop_stream`.
#[tauri::command]
pub async fn follow_logs(
    app: State<'_, App>,
    id: String,
    timestamps: bool,
    on_line: Channel<LogLine>,
) -> Res<u64> {
    let d = docker(&app)?.clone();
    Ok(app.streams.spawn(async move {
        let mut s = d.logs(
            &id,
            Some(q::LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                timestamps,
                tail: "1000".into(),
                ..Default::default()
            }),
        );
        while let Some(Ok(out)) = s.next().await {
            use bollard::container::LogOutput;
            let (stream, bytes) = match out {
                LogOutput::StdErr { message } => ("stderr", message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    ("stdout", message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            let line = LogLine {
                stream,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            };
            if on_line.send(line).is_err() {
                break;
            }
        }
    }))
}
