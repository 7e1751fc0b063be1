//! The Terminal tab: a shell in the container on a TTY, its keys and its size.

use futures_util::StreamExt;
use tauri::ipc::Channel;
use tauri::State;

use super::{docker, msg, App, Res};

/// A shell in the container on a TTY: output goes to `on_output`, keys come
/// back through `exec_input`.
#[tauri::command]
pub async fn exec_start(
    app: State<'_, App>,
    id: String,
    cols: u16,
    rows: u16,
    on_output: Channel<Vec<u8>>,
) -> Res<u64> {
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    let d = docker(&app)?.clone();
    let exec = d
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                cmd: Some(vec!["sh".to_string()]),
                ..Default::default()
            },
        )
        .await
        .map_err(msg)?;
    let started = d
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(msg)?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err("the engine did not attach the terminal".into());
    };
    let sid = app.streams.id();
    app.streams.add_terminal(sid, exec.id.clone(), input).await;
    let _ = d
        .resize_exec(
            &exec.id,
            bollard::exec::ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await;
    let task = tokio::spawn(async move {
        while let Some(Ok(out)) = output.next().await {
            if on_output.send(out.into_bytes().to_vec()).is_err() {
                break;
            }
        }
    });
    app.streams.track(sid, task.abort_handle());
    Ok(sid)
}

#[tauri::command]
pub async fn exec_input(app: State<'_, App>, id: u64, data: String) -> Res<()> {
    app.streams.write(id, data.as_bytes()).await
}

#[tauri::command]
pub async fn exec_resize(app: State<'_, App>, id: u64, cols: u16, rows: u16) -> Res<()> {
    let exec = app
        .streams
        .exec_id(id)
        .await
        .ok_or("the terminal has ended")?;
    docker(&app)?
        .resize_exec(
            &exec,
            bollard::exec::ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await
        .map_err(msg)
}
