//! Berth's Windows docker endpoint, for real under Wine: `berth.exe serve`
//! (the named-pipe forwarder the supervisor runs on Windows) in front of the
//! native Linux engine, reached through a loopback TCP bridge that only this
//! test sets up, and a Windows client (`app/tests/pipe_e2e.rs`, built for
//! Windows) that pings and streams `/events` through the pipe while it makes a
//! volume on another connection. `cargo xtask cross` builds both `.exe`s and
//! the Wine prefix into `target/tools/windows`.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::engine::{windows_dir, Engine};

/// Relays each loopback TCP connection to the engine's unix socket, both ways,
/// half-closes included; ends with the test process.
fn bridge(socket: &Path) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let Ok(unix) = UnixStream::connect(&socket) else {
                continue;
            };
            let (mut t2, mut u2) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
            let (mut t1, mut u1) = (tcp, unix);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut t1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut t2);
                let _ = t2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

fn wine(dir: &Path) -> Command {
    let mut c = Command::new("wine");
    c.env("WINEPREFIX", dir.join("wineprefix"))
        .env("WINEDEBUG", "-all")
        // Console programs only: no window, so no X display.
        .env_remove("DISPLAY");
    c
}

/// Kills the Wine process (and so `berth.exe`) when the test ends, however,
/// and the prefix's wineserver, which would otherwise linger a few seconds.
struct Killed(Child, std::path::PathBuf);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = Command::new("wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.1.join("wineprefix"))
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn a_windows_client_pings_and_streams_events_through_the_pipe() {
    let dir = windows_dir();
    let engine = Engine::start().expect("the engine");
    let port = bridge(engine.socket());
    // Sanity: the bridge itself reaches the engine.
    TcpStream::connect(("127.0.0.1", port)).expect("the bridge");

    let pipe = format!("berth-e2e-{}", std::process::id());
    // berth.exe's log (and Wine's own processes' stderr) goes to a file, shown
    // on failure: nothing of Wine's holds the test's output open.
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("berth-serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let show_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut server = Killed(
        wine(&dir)
            .arg(dir.join("berth.exe"))
            .args(["serve", "--engine", &format!("tcp://127.0.0.1:{port}")])
            .args(["--endpoint", &format!("npipe:////./pipe/{pipe}")])
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("wine berth.exe serve"),
        dir.clone(),
    );
    // `serve` prints one line once the pipe accepts connections.
    let stdout = server.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let started = Instant::now();
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("berth.exe serve did not start:\n{}", show_log()));
    assert!(
        line.starts_with(&format!("serving npipe:////./pipe/{pipe}")),
        "{line:?}"
    );
    eprintln!(
        "berth.exe serves {pipe} after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let out = wine(&dir)
        .arg(dir.join("pipe-e2e.exe"))
        .args(["--nocapture", "--test-threads=1"])
        .env("BERTH_E2E_PIPE", &pipe)
        .output()
        .expect("wine pipe-e2e.exe");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the Windows client failed:\n{text}\nberth.exe serve:\n{}",
        show_log()
    );
    assert!(text.contains("1 passed"), "{text}");
    // The forwarder is still up for the next client.
    assert!(server.0.try_wait().unwrap().is_none(), "berth.exe exited");
}
