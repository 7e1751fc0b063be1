//! The Windows side of the named-pipe test: a docker client on the pipe that
//! `berth.exe serve` serves. Built for Windows and run under Wine by the
//! Linux test `tests/tests/windows_pipe.rs`, which starts the native engine,
//! a loopback bridge to it and `berth.exe`, and passes the pipe's name in
//! `BERTH_E2E_PIPE`. Run any other way, it fails: it has nothing to talk to.
#![cfg(windows)]

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::windows::named_pipe::ClientOptions;

const ERROR_PIPE_BUSY: i32 = 231;

async fn open(pipe: &str) -> tokio::net::windows::named_pipe::NamedPipeClient {
    for _ in 0..500 {
        match ClientOptions::new().open(pipe) {
            Ok(c) => return c,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {}
            Err(e) => panic!("opening {pipe}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{pipe} stayed busy")
}

/// One request on its own connection; the whole response (headers and body).
async fn request<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, head: &str, body: &str) -> String {
    let req = format!(
        "{head} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("a response within 30 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn ping_and_a_streamed_event_through_the_pipe() {
    let name = std::env::var("BERTH_E2E_PIPE")
        .expect("BERTH_E2E_PIPE: run by tests/tests/windows_pipe.rs, which serves the pipe");
    let pipe = format!(r"\\.\pipe\{name}");
    let volume = format!("berth-e2e-{}", std::process::id());

    let pong = request(open(&pipe).await, "GET /_ping", "").await;
    assert!(pong.starts_with("HTTP/1.1 200"), "{pong}");
    assert!(pong.ends_with("OK"), "{pong}");

    // Half-close, as the docker CLI does it on Windows (go-winio's CloseWrite,
    // a zero-length message): on a keep-alive connection, once its answer is
    // in, the pipe closes only because the engine learned the client is done.
    // The answer is read first, so what this checks is the half-close passing
    // through the pipe, not how the engine treats input that ends while it
    // answers (`cli_containers`' half-close test covers that).
    let half = tokio::task::spawn_blocking({
        let pipe = pipe.clone();
        move || {
            use std::io::{Read, Write};
            use std::os::windows::io::AsRawHandle;
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&pipe)
                .unwrap();
            f.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                .unwrap();
            // `/_ping`'s answer ends with its two-byte body, "OK".
            let mut answer = Vec::new();
            let mut buf = [0u8; 1024];
            while !(answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"OK")) {
                let n = f.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "closed before the answer: {}",
                    String::from_utf8_lossy(&answer)
                );
                answer.extend_from_slice(&buf[..n]);
            }
            let mut written = 0u32;
            // SAFETY: a zero-length write on our own open pipe handle.
            let ok = unsafe {
                windows_sys::Win32::Storage::FileSystem::WriteFile(
                    f.as_raw_handle(),
                    std::ptr::null(),
                    0,
                    &mut written,
                    std::ptr::null_mut(),
                )
            };
            assert_ne!(ok, 0, "{}", std::io::Error::last_os_error());
            let mut rest = Vec::new();
            f.read_to_end(&mut rest).unwrap();
            (String::from_utf8_lossy(&answer).into_owned(), rest)
        }
    });
    let (answer, rest) = tokio::time::timeout(Duration::from_secs(30), half)
        .await
        .expect("the half-closed connection was closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    // A stream that stays open: the engine's events, filtered to volumes.
    let mut events = open(&pipe).await;
    events
        .write_all(
            b"GET /events?filters=%7B%22type%22%3A%5B%22volume%22%5D%7D HTTP/1.1\r\nHost: docker\r\n\r\n",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The response head arrives before any event.
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), events.read(&mut buf))
            .await
            .expect("the events head")
            .unwrap();
        assert!(n > 0, "events closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // Meanwhile, on another connection through the same pipe: make a volume.
    let created = request(
        open(&pipe).await,
        "POST /volumes/create",
        &format!(r#"{{"Name":"{volume}"}}"#),
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");

    // Its event arrives on the open stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.contains(&volume) && text.contains(r#""Action":"create""#) {
            break;
        }
        let n = tokio::time::timeout_at(deadline, events.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no create event for {volume}; got:\n{text}"))
            .unwrap();
        assert!(n > 0, "events closed before the create event; got:\n{text}");
        seen.extend_from_slice(&buf[..n]);
    }

    let removed = request(open(&pipe).await, &format!("DELETE /volumes/{volume}"), "").await;
    assert!(removed.starts_with("HTTP/1.1 204"), "{removed}");
}
