//! Engine II, first slice: containers through the stock `docker` CLI — run (attached,
//! detached, --rm), create/start/wait, logs, stop/kill/restart, rm, rename, ps and
//! inspect, Docker's default security, exit codes, and re-adoption after an engine
//! SIGKILL. Images come from a local registry, built from busybox-static.

use berth_tests::engine::Engine;
use berth_tests::registry::Registry;

/// An engine with the busybox test image pulled; returns the image name.
fn setup() -> (Registry, Engine, String) {
    berth_tests::busybox_engine()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_attached_prints_streams_and_returns_the_exit_code() {
    let (_r, engine, img) = setup();
    let out = engine.docker(&[
        "run",
        "--rm",
        &img,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"), "{}", stderr(&out));
    // --rm removed it.
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn missing_executable_exits_127_and_rm_cleans_up() {
    let (_r, engine, img) = setup();
    let out = engine.docker(&["run", "--rm", &img, "/no/such/thing"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    // dockerd's wait(removed) carries no error, so the CLI logs nothing more.
    assert!(!stderr(&out).contains("Error waiting"), "{}", stderr(&out));
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    // Without --rm the container stays `created`, with the code and the message.
    let out = engine.docker(&["run", "--name", "never", &img, "/no/such/thing"]);
    assert_eq!(out.status.code(), Some(127));
    let state = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
        "never",
    ]);
    assert!(
        state.starts_with("created 127 failed to create task for container")
            && state.contains("executable file not found"),
        "{state}"
    );
    engine.docker_ok(&["rm", "never"]);
}

#[test]
fn env_workdir_user_and_hostname() {
    let (_r, engine, img) = setup();
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--hostname",
        "box",
        &img,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; hostname; echo $PATH",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..4], &["bar", "/tmp", "65534", "box"], "{out}");
    assert!(lines[4].contains("/bin"), "{out}");
    // Groups as dockerd sets them: the primary gid is also the first
    // supplementary group, and a uid passwd does not know runs in group 0.
    for (flags, want) in [
        (&[][..], "0 0:0"),
        (&["-u", "4242"][..], "4242 0:0"),
        (&["-u", "4242:77"][..], "4242 77:77"),
        (&["-u", "4242", "--group-add", "5"][..], "4242 0:0 5"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([img.as_str(), "sh", "-c", "echo $(id -u) $(id -g):$(id -G)"]);
        let out = engine.docker_ok(&args);
        assert_eq!(out.trim(), want, "{flags:?}");
    }
}

#[test]
fn detached_lifecycle_logs_stop_start_kill_rm() {
    let (_r, engine, img) = setup();
    let id = engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        &img,
        "sh",
        "-c",
        "echo started; while true; do sleep 1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = engine.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("ticker Up"), "{ps}");
    // Logs arrive through the shim's json-file log.
    let mut logs = String::new();
    for _ in 0..100 {
        logs = engine.docker_ok(&["logs", "ticker"]);
        if logs.contains("started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs, "started\n");
    // sh as PID 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    engine.docker_ok(&["stop", "-t", "1", "ticker"]);
    let state = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}",
        "ticker",
    ]);
    assert_eq!(state.trim(), "exited 137 false");
    // Restart it, kill it with a chosen signal.
    engine.docker_ok(&["start", "ticker"]);
    assert!(engine.docker_ok(&["ps", "-q"]).trim().len() == 12);
    engine.docker_ok(&["kill", "-s", "KILL", "ticker"]);
    let code = engine.docker_ok(&["wait", "ticker"]);
    assert_eq!(code.trim(), "137");
    // Removing a running container needs -f.
    engine.docker_ok(&["start", "ticker"]);
    let out = engine.docker(&["rm", "ticker"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container is running"),
        "{}",
        stderr(&out)
    );
    engine.docker_ok(&["rm", "-f", "ticker"]);
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "the rootfs must be unmounted");
}

#[test]
fn create_start_attach_wait_rename_and_names() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&["create", "--name", "c1", &img, "echo", "hi"]);
    let ps = engine.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(ps.trim(), "c1 Created");
    let out = engine.docker(&["create", "--name", "c1", &img, "true"]);
    assert!(
        stderr(&out).contains("is already in use"),
        "{}",
        stderr(&out)
    );
    assert_eq!(engine.docker_ok(&["start", "-a", "c1"]), "hi\n");
    assert_eq!(engine.docker_ok(&["wait", "c1"]).trim(), "0");
    engine.docker_ok(&["rename", "c1", "c2"]);
    let v: serde_json::Value = serde_json::from_str(&engine.docker_ok(&["inspect", "c2"])).unwrap();
    assert_eq!(v[0]["Name"], "/c2");
    assert_eq!(v[0]["Path"], "echo");
    assert_eq!(v[0]["Args"], serde_json::json!(["hi"]));
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["echo", "hi"]));
    // The image is in use: untagging its last name needs -f.
    let out = engine.docker(&["rmi", &img]);
    assert!(!out.status.success(), "rmi of an image in use succeeded");
    let out = engine.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers"), "{out}");
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    engine.docker_ok(&["rmi", &img]);
}

#[test]
fn default_security_matches_docker_and_privileged_lifts_it() {
    let (_r, engine, img) = setup();
    let status = engine.docker_ok(&["run", "--rm", &img, "cat", "/proc/self/status"]);
    assert!(status.contains("CapBnd:\t00000000a80425fb"), "{status}");
    // Docker's defaults: a seccomp filter, no_new_privs off unless asked for.
    assert!(
        status.contains("Seccomp:\t2\n") && status.contains("NoNewPrivs:\t0\n"),
        "{status}"
    );
    let nnp = engine.docker_ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        &img,
        "cat",
        "/proc/self/status",
    ]);
    assert!(nnp.contains("NoNewPrivs:\t1\n"), "{nnp}");
    let unconfined = engine.docker_ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        &img,
        "cat",
        "/proc/self/status",
    ]);
    assert!(unconfined.contains("Seccomp:\t0\n"), "{unconfined}");
    // The filter refuses what Docker's profile refuses even when a capability would
    // allow it: swapon with CAP_SYS_ADMIN gets EPERM from seccomp, and reaches the
    // kernel's own check (ETXTBSY: the file is a running executable) without the filter.
    let swapon = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--cap-add", "SYS_ADMIN"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&img, "/bin/busybox", "swapon", "/bin/busybox"]);
        stderr(&engine.docker(&args))
    };
    let filtered = swapon(&[]);
    assert!(filtered.contains("Operation not permitted"), "{filtered}");
    let unfiltered = swapon(&["--security-opt", "seccomp=unconfined"]);
    assert!(unfiltered.contains("Text file busy"), "{unfiltered}");
    // Masked paths read empty (/proc/kcore does not exist on every kernel; these do).
    let masked = engine.docker_ok(&[
        "run",
        "--rm",
        &img,
        "sh",
        "-c",
        "cat /proc/keys /proc/timer_list; ls /sys/firmware; echo rc=$?",
    ]);
    assert_eq!(masked, "rc=0\n", "masked paths leak");
    let ro = engine.docker(&[
        "run",
        "--rm",
        &img,
        "sh",
        "-c",
        "echo x > /proc/sys/kernel/hostname",
    ]);
    assert_ne!(ro.status.code(), Some(0), "/proc/sys must be read-only");
    let added = engine.docker_ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-drop",
        "NET_RAW",
        &img,
        "cat",
        "/proc/self/status",
    ]);
    // +CAP_SYS_ADMIN (bit 21), -CAP_NET_RAW (bit 13).
    assert!(added.contains("CapBnd:\t00000000a82405fb"), "{added}");
    let privileged = engine.docker_ok(&[
        "run",
        "--rm",
        "--privileged",
        &img,
        "cat",
        "/proc/self/status",
    ]);
    // Privileged: the whole bounding set this kernel has, as the host's root has it.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("CapBnd:"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(bnd(&privileged), bnd(&host));
    assert!(privileged.contains("Seccomp:\t0\n"), "{privileged}");
}

#[test]
fn running_containers_survive_an_engine_sigkill() {
    let (_r, mut engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        &img,
        "sh",
        "-c",
        "echo before; trap 'echo bye; exit 0' TERM; while true; do sleep 0.2; done",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    engine.kill9();
    engine.respawn().unwrap();
    let ps = engine.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "survivor running", "{ps}");
    engine.docker_ok(&["stop", "-t", "5", "survivor"]);
    let state = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "survivor",
    ]);
    assert_eq!(state.trim(), "exited 0");
    let logs = engine.docker_ok(&["logs", "survivor"]);
    assert_eq!(logs, "before\nbye\n");
    engine.docker_ok(&["rm", "survivor"]);
}

/// The parent pid and state of a process, from `/proc/<pid>/stat`.
fn ppid_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((f.next()?.parse().ok()?, state))
}

#[test]
fn a_dead_shim_takes_its_container_down_and_leaves_no_zombie() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&["run", "-d", "--name", "orphan", &img, "sleep", "1000"]);
    let pid: u32 = engine
        .docker_ok(&["inspect", "-f", "{{.State.Pid}}", "orphan"])
        .trim()
        .parse()
        .unwrap();
    let (shim, _) = ppid_and_state(pid).expect("container process");
    assert_ne!(
        Some(shim),
        engine.pid(),
        "the container's parent is its shim"
    );
    let killed = std::process::Command::new("kill")
        .args(["-9", &shim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let state = wait_for(&engine, "orphan", "{{.State.Status}}", "exited");
    assert_eq!(state, "exited");
    // The container's init was re-parented to the engine (a child subreaper), killed,
    // and reaped: neither running nor a zombie.
    let mut left = ppid_and_state(pid);
    for _ in 0..100 {
        if left.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = ppid_and_state(pid);
    }
    assert_eq!(left, None, "container process left behind");
    engine.docker_ok(&["rm", "orphan"]);
}

#[test]
fn cgroup_limits_from_host_config() {
    let (_r, engine, img) = setup();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let script = if v2 {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
    };
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        &img,
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "67108864", "{out}");
    assert_eq!(lines[1], "50", "{out}");
    assert!(lines[2].starts_with("50000"), "{out}");
}

#[test]
fn stdin_is_forwarded_with_dash_i() {
    let (_r, engine, img) = setup();
    let out = engine.docker_stdin(
        &["run", "-i", "--rm", &img, "cat"],
        "piped input\nsecond line\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "piped input\nsecond line\n");
}

/// Runs `docker …` under `script`, so the CLI has a real terminal, feeding `input`.
fn docker_in_pty(engine: &Engine, docker_args: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("docker {docker_args}"), "/dev/null"])
        .env("DOCKER_HOST", engine.docker_host())
        .env("DOCKER_CONFIG", engine.docker_config())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `docker attach` in a pty: types `line`, waits until the container has logged
/// `marker` (so the CLI is attached and its terminal raw: a cooked pty would eat
/// ctrl-q as flow control), then types `keys`. Killed if it has not ended in 30 s.
fn attach_and_detach(
    engine: &Engine,
    args: &str,
    line: &str,
    marker: &str,
    keys: &[u8],
) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("docker attach {args}"), "/dev/null"])
        .env("DOCKER_HOST", engine.docker_host())
        .env("DOCKER_CONFIG", engine.docker_config())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(line.as_bytes()).unwrap();
    let name = args.rsplit(' ').next().unwrap();
    let attached = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        engine.docker_ok(&["logs", name]).contains(marker)
    });
    stdin.write_all(keys).unwrap();
    // Output is a few lines, well under a pipe's buffer: poll, then collect.
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        attached,
        "{marker:?} never reached the log: {}",
        stdout(&out)
    );
    out
}

#[test]
fn attach_detaches_with_ctrl_p_ctrl_q_and_reattaches() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&["run", "-dit", "--name", "det", &img, "sh"]);
    let first = attach_and_detach(&engine, "det", "echo o\\ne\n", "one", b"\x10\x11");
    let out = stdout(&first);
    // The CLI exits 1 after a detach, with dockerd too.
    assert_eq!(first.status.code(), Some(1), "{out} {}", stderr(&first));

    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(
        engine
            .docker_ok(&["inspect", "-f", "{{.State.Status}}", "det"])
            .trim(),
        "running"
    );
    // A custom sequence, on a second attach to the same shell.
    let second = attach_and_detach(
        &engine,
        "--detach-keys ctrl-x,x det",
        "echo t\\wo\n",
        "two",
        b"\x18x",
    );
    assert!(
        stdout(&second).contains("read escape sequence"),
        "{}",
        stdout(&second)
    );
    assert_eq!(
        engine
            .docker_ok(&["inspect", "-f", "{{.State.Status}}", "det"])
            .trim(),
        "running"
    );
    engine.docker_ok(&["rm", "-f", "det"]);
}

#[test]
fn tty_and_interactive_shell_with_dash_it() {
    let (_r, engine, img) = setup();
    let out = docker_in_pty(
        &engine,
        &format!("run --rm -it {img} sh -c 'ls -l /proc/self/fd/0; echo hi'"),
        "",
    );
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/0"), "stdin is a terminal: {text}");
    assert!(text.contains("hi"), "{text}");
    let out = docker_in_pty(
        &engine,
        &format!("run --rm -it {img} sh"),
        "echo from-$((6*7))\nexit 5\n",
    );
    assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    assert!(stdout(&out).contains("from-42"), "{}", stdout(&out));
}

#[test]
fn exec_runs_in_the_container_with_streams_and_exit_codes() {
    let (_r, engine, img) = setup();
    // An unknown exec id, in dockerd's words.
    for (method, path) in [("GET", "/exec/nope/json"), ("POST", "/exec/nope/start")] {
        let (status, _, body) = engine.request(method, path, Some(b"{}"));
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("No such exec instance: nope"), "{body}");
    }
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "host",
        "-e",
        "FROM_RUN=1",
        &img,
        "sh",
        "-c",
        "echo marker > /tmp/m; while true; do sleep 1; done",
    ]);
    // Same filesystem and environment as the container's own process.
    let mut out = String::new();
    for _ in 0..50 {
        out = engine.docker_ok(&[
            "exec",
            "host",
            "sh",
            "-c",
            "cat /tmp/m 2>/dev/null; echo env=$FROM_RUN",
        ]);
        if out.starts_with("marker") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(out, "marker\nenv=1\n");
    let o = engine.docker(&[
        "exec",
        "-e",
        "X=2",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "host",
        "sh",
        "-c",
        "echo $X $(id -u) $(pwd); exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "2 65534 /tmp\n");
    let o = engine.docker_stdin(&["exec", "-i", "host", "cat"], "through exec\n");
    assert_eq!(stdout(&o), "through exec\n");
    let o = engine.docker(&["exec", "host", "/no/such/tool"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = docker_in_pty(&engine, "exec -it host sh", "echo tty-$((6*7))\nexit 6\n");
    assert_eq!(o.status.code(), Some(6), "{}", stdout(&o));
    assert!(stdout(&o).contains("tty-42"));
    engine.docker_ok(&["exec", "-d", "host", "sh", "-c", "echo bg > /tmp/bg"]);
    let mut bg = String::new();
    for _ in 0..50 {
        bg = engine.docker_ok(&[
            "exec",
            "host",
            "sh",
            "-c",
            "cat /tmp/bg 2>/dev/null || true",
        ]);
        if !bg.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(bg, "bg\n");
    engine.docker_ok(&["rm", "-f", "host"]);
    let o = engine.docker(&["exec", "host", "true"]);
    assert!(!o.status.success());
}

/// Compose (v2) attaches to an exec (`POST /exec/{id}/start` upgraded), then starts
/// it again with a plain POST: as dockerd, the second start answers 200 with the
/// error in its stream, and the attached stream gets the process's output.
/// A client that sends its request and then shuts down its sending side
/// (`socat`, `nc -N`, the docker CLI's `CloseWrite` on Windows) is answered, as
/// dockerd answers it; a stream it opens that way ends rather than outliving it.
#[test]
fn a_client_that_half_closes_is_answered_and_its_streams_end() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let (_r, engine, img) = setup();
    engine.docker_ok(&["run", "-d", "--name", "halfclosed", &img, "sleep", "300"]);
    let half_closed = |head: &str| -> String {
        let mut s = UnixStream::connect(engine.socket()).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        write!(
            s,
            "{head} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{head}: the connection stayed open: {e}"));
        String::from_utf8_lossy(&out).into_owned()
    };
    // The end of input arrives with the request and races its answer: many tries.
    for head in [
        "GET /_ping",
        "GET /containers/json",
        "GET /containers/halfclosed/json",
        "GET /info",
    ] {
        for _ in 0..20 {
            let out = half_closed(head);
            assert!(out.starts_with("HTTP/1.1 200"), "{head}: {out:?}");
        }
    }
    assert!(half_closed("GET /containers/json").contains("/halfclosed"));
    // Streams that would wait for something: they end with the client's input.
    for head in [
        "GET /events",
        "POST /containers/halfclosed/wait",
        "GET /containers/halfclosed/logs?follow=1&stdout=1",
        "GET /containers/halfclosed/stats",
    ] {
        let out = half_closed(head);
        assert!(out.starts_with("HTTP/1.1 200"), "{head}: {out:?}");
    }
    engine.docker_ok(&["rm", "-f", "halfclosed"]);
}

#[test]
fn an_exec_attached_then_started_again_answers_both_as_dockerd() {
    use std::io::{Read, Write};
    let (_r, engine, img) = setup();
    engine.docker_ok(&["run", "-d", "--name", "twice", &img, "sleep", "300"]);
    let create = br#"{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","sleep 0.5; echo attached-output"]}"#;
    let (status, _, body) = engine.request("POST", "/containers/twice/exec", Some(create));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let id = v["Id"].as_str().expect("exec id").to_string();

    let mut s = std::os::unix::net::UnixStream::connect(engine.socket()).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let start = br#"{"Detach":false,"Tty":false}"#;
    write!(
        s,
        "POST /exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n",
        start.len()
    )
    .expect("write");
    s.write_all(start).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("the upgrade's response");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );

    let (status, _, body) = engine.request(
        "POST",
        &format!("/exec/{id}/start"),
        Some(br#"{"Detach":false}"#),
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("already"), "{body}");

    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        String::from_utf8_lossy(&rest).contains("attached-output"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    engine.docker_ok(&["rm", "-f", "twice"]);
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "frozen",
        &img,
        "sh",
        "-c",
        // Write then rename, so a reader never sees the truncated file.
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.05; done",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    engine.docker_ok(&["pause", "frozen"]);
    let ps = engine.docker_ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    assert_eq!(
        engine
            .docker_ok(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.Paused}}",
                "frozen"
            ])
            .trim(),
        "paused true"
    );
    // While frozen the counter does not move (read through the overlay from the host).
    let merged = engine.docker_ok(&["inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", "frozen"]);
    let counter = std::path::Path::new(merged.trim()).join("tmp/n");
    let before = std::fs::read_to_string(&counter).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap(),
        before,
        "paused container kept running"
    );
    let out = engine.docker(&["pause", "frozen"]);
    assert!(stderr(&out).contains("already paused"), "{}", stderr(&out));
    engine.docker_ok(&["unpause", "frozen"]);
    let a = engine.docker_ok(&["exec", "frozen", "cat", "/tmp/n"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let b = engine.docker_ok(&["exec", "frozen", "cat", "/tmp/n"]);
    assert!(
        b.trim().parse::<u64>().unwrap() > a.trim().parse::<u64>().unwrap(),
        "{a} {b}"
    );
    // Stopping a paused container works (it is thawed first).
    engine.docker_ok(&["pause", "frozen"]);
    engine.docker_ok(&["rm", "-f", "frozen"]);
}

fn wait_for(engine: &Engine, name: &str, format: &str, want: &str) -> String {
    let mut got = String::new();
    for _ in 0..200 {
        got = engine
            .docker_ok(&["inspect", "-f", format, name])
            .trim()
            .to_string();
        if got == want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    got
}

#[test]
fn restart_policies() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        &img,
        "sh",
        "-c",
        "exit 1",
    ]);
    let got = wait_for(
        &engine,
        "flaky",
        "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
        "2 exited 1",
    );
    assert_eq!(got, "2 exited 1");
    // It stays down after the retries are used up.
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        engine
            .docker_ok(&["inspect", "-f", "{{.RestartCount}}", "flaky"])
            .trim(),
        "2"
    );

    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        &img,
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    let n = wait_for(&engine, "phoenix", "{{ge .RestartCount 2}}", "true");
    assert_eq!(n, "true");
    // docker stop is final for `always`.
    engine.docker_ok(&["stop", "-t", "1", "phoenix"]);
    let count = engine.docker_ok(&["inspect", "-f", "{{.RestartCount}}", "phoenix"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        engine
            .docker_ok(&[
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Running}}",
                "phoenix"
            ])
            .trim(),
        format!("{} false", count.trim())
    );
    engine.docker_ok(&["rm", "-f", "flaky", "phoenix"]);
}

#[test]
fn stats_top_and_logs_follow() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "32m",
        &img,
        "sh",
        "-c",
        "while true; do sleep 1; done",
    ]);
    let stats = engine.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "busy",
    ]);
    let fields: Vec<&str> = stats.trim().split('|').collect();
    assert_eq!(fields[0], "busy", "{stats}");
    assert!(fields[1].ends_with("/ 32MiB"), "{stats}");
    assert!(fields[2].parse::<u32>().unwrap() >= 1, "{stats}");
    let top = engine.docker_ok(&["top", "busy"]);
    assert!(top.contains("while true"), "{top}");
    // The host's `ps` with the user's options, as dockerd runs it.
    let top = engine.docker_ok(&["top", "busy", "-o", "pid,comm"]);
    let titles: Vec<&str> = top
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(titles, ["PID", "COMMAND"], "{top}");
    assert!(top.lines().skip(1).any(|l| l.ends_with("sh")), "{top}");
    let bad = engine.docker(&["top", "busy", "-o", "user=PID"]);
    assert!(!bad.status.success());
    assert!(
        berth_tests::output_text(&bad).contains("specifying \"user=PID\" is not allowed"),
        "{}",
        berth_tests::output_text(&bad)
    );
    engine.docker_ok(&["rm", "-f", "busy"]);

    // logs -f follows a live container to its end.
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        &img,
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done",
    ]);
    let followed = engine.docker_ok(&["logs", "-f", "talker"]);
    assert_eq!(followed, "line1\nline2\nline3\nline4\nline5\n");
    let tail = engine.docker_ok(&["logs", "--tail", "2", "talker"]);
    assert_eq!(tail, "line4\nline5\n");
    let stamped = engine.docker_ok(&["logs", "-t", "--tail", "1", "talker"]);
    assert!(
        stamped.starts_with("20") && stamped.trim_end().ends_with(" line5"),
        "{stamped}"
    );
    engine.docker_ok(&["rm", "talker"]);
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let (_r, engine, img) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "hello\n").unwrap();
    std::fs::write(src.join("sub/b.txt"), "deep\n").unwrap();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        &img,
        "sh",
        "-c",
        "while true; do sleep 1; done",
    ]);
    engine.docker_ok(&["cp", src.join("a.txt").to_str().unwrap(), "box:/tmp/a.txt"]);
    engine.docker_ok(&["cp", src.to_str().unwrap(), "box:/tmp/srcdir"]);
    assert_eq!(
        engine.docker_ok(&["exec", "box", "cat", "/tmp/a.txt", "/tmp/srcdir/sub/b.txt"]),
        "hello\ndeep\n"
    );
    let back = tmp.path().join("back");
    engine.docker_ok(&["cp", "box:/tmp/srcdir", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("sub/b.txt")).unwrap(),
        "deep\n"
    );
    // A symlink comes out as a symlink.
    let link = tmp.path().join("sh");
    engine.docker_ok(&["cp", "box:/bin/sh", link.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::PathBuf::from("busybox")
    );
    // Works on a stopped container too.
    engine.docker_ok(&["stop", "-t", "0", "box"]);
    let out = tmp.path().join("a-again");
    engine.docker_ok(&["cp", "box:/tmp/a.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\n");
    let missing = engine.docker(&["cp", "box:/nope", tmp.path().join("x").to_str().unwrap()]);
    assert!(
        stderr(&missing).contains("Could not find the file /nope"),
        "{}",
        stderr(&missing)
    );
    engine.docker_ok(&["rm", "box"]);
}

#[test]
fn parallel_runs_leave_nothing_behind() {
    let (_r, engine, img) = setup();
    let runs: Vec<_> = (0..100)
        .map(|_| {
            engine
                .docker_cmd(&["run", "--rm", &img, "true"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
    let root = engine.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "leaked mounts under {root}");
    let containers = std::fs::read_dir(engine.root().join("containers"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .count();
    assert_eq!(containers, 0, "leaked container directories");
    let shims = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(&root))
        .filter(|c| String::from_utf8_lossy(c).contains("shim"))
        .count();
    assert_eq!(shims, 0, "leaked shims");
}

#[test]
fn init_tmpfs_and_read_only() {
    let (_r, engine, img) = setup();
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "--init",
        &img,
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/sbin/docker-init\0--\0sh"), "{out:?}");
    assert_ne!(lines[1], "1", "the command is not PID 1 under --init");
    let out = engine.docker(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        &img,
        "sh",
        "-c",
        "echo x > /scratch/f && cat /scratch/f && grep ' /scratch ' /proc/mounts; echo y > /f",
    ]);
    let text = stdout(&out);
    assert!(
        text.starts_with("x\ntmpfs /scratch tmpfs rw,nosuid,nodev,noexec"),
        "{text}"
    );
    assert!(text.contains("size=1024k"), "{text}");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn events_record_the_lifecycle() {
    let (_r, engine, img) = setup();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let run = engine.docker(&[
        "run",
        "--rm",
        "--name",
        "evt",
        "--label",
        "team=berth",
        &img,
        "sh",
        "-c",
        "exit 2",
    ]);
    assert_eq!(run.status.code(), Some(2));
    let _ = engine.docker(&["run", "--rm", "--name", "other", &img, "true"]);
    // A window that closes a moment from now: past events, then the stream ends.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = engine.docker_ok(&[
        "events", "--since", &since.to_string(), "--until", &until.to_string(),
        "--filter", "container=evt", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.team}} {{.Actor.Attributes.exitCode}}",
    ]);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.replace(" <no value>", "").trim_end().to_string())
        .collect();
    assert_eq!(
        lines,
        vec![
            "container create evt berth",
            "container start evt berth",
            "container die evt berth 2",
            "container destroy evt berth",
        ],
        "{out}"
    );
}

#[test]
fn events_filter_networks_and_volumes_and_refuse_an_inverted_window() {
    let (_r, engine, _img) = setup();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let since = (now() - 1).to_string();
    engine.docker_ok(&["network", "create", "evnet"]);
    engine.docker_ok(&["volume", "create", "evvol"]);
    let until = (now() + 1).to_string();
    let seen = |filter: &str| {
        engine.docker_ok(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            filter,
            "--format",
            "{{.Type}} {{.Action}}",
        ])
    };
    assert_eq!(seen("network=evnet"), "network create\n");
    // Names match by prefix, as dockerd's fuzzy match does.
    assert_eq!(seen("volume=evv"), "volume create\n");
    assert_eq!(seen("scope=swarm"), "");
    // A filter dockerd does not know is ignored there, so here too.
    assert!(seen("nosuchfilter=1").ends_with("network create\nvolume create\n"));
    let o = engine.docker(&["events", "--since", "2000", "--until", "1000"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot be after `until`"),
        "{}",
        stderr(&o)
    );
    engine.docker_ok(&["network", "rm", "evnet"]);
    engine.docker_ok(&["volume", "rm", "evvol"]);
}

#[test]
fn ps_filters_select_as_dockerd_does() {
    let (_r, engine, img) = setup();
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        engine
            .docker_ok(&a)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    engine.docker_ok(&["create", "--name", "pa", "-v", "psvol:/data", &img, "true"]);
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "pb",
        "-p",
        "127.0.0.1::80",
        "--expose",
        "81",
        &img,
        "sleep",
        "300",
    ]);
    let o = engine.docker(&[
        "run",
        "--name",
        "pc",
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    engine.docker_ok(&["tag", &img, "psalias:1"]);
    let host_port = engine.docker_ok(&["port", "pb", "80"]);
    let host_port = host_port.trim().rsplit(':').next().unwrap().to_string();

    assert_eq!(names(&["-a"]), "pc pb pa");
    // Names are regular expressions, with or without the leading '/'.
    assert_eq!(names(&["-a", "-f", "name=^p[ab]$"]), "pb pa");
    assert_eq!(names(&["-a", "-f", "name=^/pc$"]), "pc");
    assert_eq!(names(&["-a", "-f", "since=pa"]), "pc pb");
    assert_eq!(names(&["-a", "-f", "before=pc"]), "pb pa");
    assert_eq!(names(&["-a", "-f", "volume=psvol"]), "pa");
    assert_eq!(names(&["-a", "-f", "volume=/data"]), "pa");
    assert_eq!(names(&["-f", "expose=81"]), "pb");
    assert_eq!(names(&["-f", &format!("publish={host_port}/tcp")]), "pb");
    assert_eq!(names(&["-f", "publish=1-79"]), "");
    assert_eq!(names(&["-a", "-f", "network=none"]), "pc");
    assert_eq!(names(&["-a", "-f", "network=bridge"]), "pb pa");
    assert_eq!(names(&["-a", "-f", "ancestor=psalias:1"]), "pc pb pa");
    assert_eq!(names(&["-a", "-f", "is-task=true"]), "");
    assert_eq!(names(&["-a", "-f", "is-task=false"]), "pc pb pa");
    // An exit code filter needs -a, as with dockerd; a limit counts stopped ones.
    assert_eq!(names(&["-f", "exited=3"]), "");
    assert_eq!(names(&["-a", "-f", "exited=3"]), "pc");
    assert_eq!(names(&["-n", "1"]), "pc");
    assert_eq!(names(&["-f", "status=created"]), "pa");
    for (filter, says) in [
        ("status=bogus", "invalid filter 'status=bogus'"),
        ("health=bogus", "invalid filter 'health=bogus'"),
        ("is-task=maybe", "invalid filter 'is-task=maybe'"),
        ("publish=80:80", "should not contain ':'"),
        ("before=nosuch", "No such container: nosuch"),
    ] {
        let o = engine.docker(&["ps", "-a", "-f", filter]);
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "{filter}: {}",
            stderr(&o)
        );
    }
    // A bad signal is refused before the container is looked up.
    let o = engine.docker(&["kill", "-s", "BOGUS", "nosuch"]);
    assert!(stderr(&o).contains("signal"), "{}", stderr(&o));
    engine.docker_ok(&["rm", "-f", "pa", "pb", "pc"]);
    engine.docker_ok(&["volume", "rm", "psvol"]);
}

#[test]
fn diff_and_export() {
    let (_r, engine, img) = setup();
    let run = engine.docker(&[
        "run",
        "--name",
        "changed",
        &img,
        "sh",
        "-c",
        "mkdir -p /new/dir && echo x > /new/dir/f && rm /bin/ls",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let diff = engine.docker_ok(&["diff", "changed"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "C /bin",
        "D /bin/ls",
        "A /new",
        "A /new/dir",
        "A /new/dir/f",
    ] {
        assert!(lines.contains(&want), "{want} missing from {diff}");
    }
    // Sizes: the layer holds "x\n" and a whiteout; SizeRootFs adds the image.
    let sizes = engine.docker_ok(&[
        "inspect",
        "--size",
        "-f",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "changed",
    ]);
    let image_size: i64 = engine
        .docker_ok(&["image", "inspect", "-f", "{{.Size}}", &img])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sizes.trim(), format!("2 {}", 2 + image_size));
    let ps = engine.docker_ok(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(ps.starts_with("changed 2B (virtual "), "{ps}");
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("fs.tar");
    engine.docker_ok(&["export", "-o", tar.to_str().unwrap(), "changed"]);
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "new/dir/f"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"));
    assert!(
        !names.iter().any(|n| n == "bin/ls"),
        "deleted files are not exported"
    );
    engine.docker_ok(&["rm", "changed"]);
}

#[test]
fn log_rotation_caps_the_json_file() {
    let (_r, engine, img) = setup();
    let out = engine.docker(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        &img,
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log_path = engine.docker_ok(&["inspect", "-f", "{{.LogPath}}", "chatty"]);
    let log_path = std::path::Path::new(log_path.trim());
    let mut files = vec![log_path.to_path_buf()];
    for n in 1..=5 {
        let p = std::path::PathBuf::from(format!("{}.{n}", log_path.display()));
        if p.exists() {
            files.push(p);
        }
    }
    assert_eq!(files.len(), 3, "live file plus two rotated: {files:?}");
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() <= 2048,
            "{f:?} over the cap"
        );
    }
    // docker logs reads across the rotated files, in order, ending with the last line.
    let logs = engine.docker_ok(&["logs", "chatty"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.last(), Some(&"line-299"));
    let nums: Vec<u32> = lines
        .iter()
        .map(|l| l["line-".len()..].parse().unwrap())
        .collect();
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "gap or disorder in {nums:?}"
    );
    engine.docker_ok(&["rm", "chatty"]);
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "grow",
        "-m",
        "32m",
        "--pids-limit",
        "20",
        &img,
        "sh",
        "-c",
        "while true; do sleep 1; done",
    ]);
    engine.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "40",
        "grow",
    ]);
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let script = if v2 {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    };
    assert_eq!(
        engine.docker_ok(&["exec", "grow", "sh", "-c", script]),
        "67108864\n40\n"
    );
    assert_eq!(
        engine
            .docker_ok(&[
                "inspect",
                "-f",
                "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
                "grow"
            ])
            .trim(),
        "67108864 40"
    );
    engine.docker_ok(&["rm", "-f", "grow"]);
}

/// Containers start with no standard signal ignored, as Docker's do: the engine and
/// its shim are Rust programs, which ignore SIGPIPE, and an ignored signal survives
/// exec. With SIGPIPE ignored, `yes | head` in a container never ends. (Real-time
/// signals are left out: glibc reserves 32 and 33, and a test runner may ignore them.)
#[test]
fn containers_start_with_no_signal_ignored() {
    let (_r, engine, img) = setup();
    let ignored = |status: &str| -> u64 {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .unwrap_or_else(|| panic!("no SigIgn in {status}"));
        u64::from_str_radix(hex.trim(), 16).unwrap() & 0x7fff_ffff
    };
    let status = engine.docker_ok(&["run", "--rm", &img, "cat", "/proc/self/status"]);
    assert_eq!(ignored(&status), 0, "{status}");
    engine.docker_ok(&["run", "-d", "--name", "sigs", &img, "sleep", "60"]);
    let status = engine.docker_ok(&["exec", "sigs", "cat", "/proc/self/status"]);
    assert_eq!(ignored(&status), 0, "{status}");
    let out = engine.docker_ok(&["exec", "sigs", "sh", "-c", "yes | head -n 2"]);
    assert_eq!(out, "y\ny\n");
    engine.docker_ok(&["rm", "-f", "sigs"]);
}

#[test]
fn run_sets_what_dockerd_sets_and_refuses_what_it_refuses() {
    let (_r, engine, img) = setup();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        engine.docker(&a)
    };
    let out = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    // A terminal gets TERM=xterm; a bare -e NAME the client does not have unsets it.
    assert_eq!(out(&["-t", &img, "sh", "-c", "echo $TERM"]), "xterm");
    assert_eq!(
        out(&[
            "-e",
            "BERTH_NEVER_SET_HERE",
            "-e",
            "B=1",
            &img,
            "sh",
            "-c",
            "echo ${BERTH_NEVER_SET_HERE-unset} $B"
        ]),
        "unset 1"
    );
    // dockerd's default sysctls in a private network namespace, and --sysctl.
    assert_eq!(
        out(&["--sysctl", "net.ipv4.tcp_keepalive_time=77", &img, "sh", "-c",
            "cat /proc/sys/net/ipv4/tcp_keepalive_time /proc/sys/net/ipv4/ip_unprivileged_port_start"]),
        "77\n0"
    );
    let o = run(&[
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        &img,
        "true",
    ]);
    assert!(
        stderr(&o).contains("not allowed in host network namespace"),
        "{}",
        stderr(&o)
    );
    // --domainname: the NIS domain, and the FQDN first in /etc/hosts.
    assert_eq!(
        out(&[
            "--hostname",
            "h1",
            "--domainname",
            "example.com",
            &img,
            "sh",
            "-c",
            "hostname -f; cat /proc/sys/kernel/domainname"
        ]),
        "h1.example.com\nexample.com"
    );
    assert_eq!(
        out(&[
            "--shm-size",
            "8m",
            &img,
            "sh",
            "-c",
            "while read s d r; do [ $d = /dev/shm ] && echo $s; done < /proc/mounts; true"
        ]),
        "shm"
    );
    for (args, says) in [
        (&["-m", "1k"][..], "Minimum memory limit allowed is 6MB"),
        (&["--cpus", "999"][..], "range of CPUs is from 0.01"),
        (
            &["-m", "64m", "--memory-swap", "32m"][..],
            "memoryswap limit should be larger",
        ),
    ] {
        let mut a = args.to_vec();
        a.extend([img.as_str(), "true"]);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // A network that does not exist fails the start, not the create: the CLI must
    // not go looking for the image in a registry.
    let o = run(&["--network", "nosuchnet", &img, "true"]);
    assert!(
        stderr(&o).contains("network nosuchnet not found"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );
    let info = engine.docker_ok(&[
        "info",
        "--format",
        "{{.DefaultRuntime}} {{json .SecurityOptions}}",
    ]);
    assert_eq!(info.trim(), r#"runc ["name=seccomp,profile=builtin"]"#);
    assert_eq!(engine.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn exec_cp_rename_and_logs_answer_as_dockerd() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ecr",
        &img,
        "sh",
        "-c",
        "echo one; echo two; sleep 300",
    ]);
    let o = engine.docker(&["exec", "-u", "ghost", "ecr", "id"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    // The CLI prints an exec's start failure on stdout, as with dockerd.
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("unable to find user ghost"), "{said}");
    let o = docker_in_pty(&engine, "exec -t ecr sh -c 'echo $TERM'", "");
    assert!(stdout(&o).contains("xterm"), "{}", stdout(&o));
    engine.docker_ok(&["pause", "ecr"]);
    let o = engine.docker(&["exec", "ecr", "true"]);
    assert!(
        stderr(&o).contains("is paused, unpause the container before exec"),
        "{}",
        stderr(&o)
    );
    engine.docker_ok(&["unpause", "ecr"]);
    let o = engine.docker(&["cp", "ecr:/nonexist", "/tmp/berth-never-written"]);
    assert!(
        stderr(&o).contains("Could not find the file /nonexist in container ecr"),
        "{}",
        stderr(&o)
    );
    let o = engine.docker(&["rename", "ecr", "ecr"]);
    assert!(
        stderr(&o).contains("Renaming a container with the same name"),
        "{}",
        stderr(&o)
    );
    // A tail that is not a count is the whole log, as dockerd reads it.
    for tail in ["-1", "all", "x"] {
        assert_eq!(
            engine.docker_ok(&["logs", "--tail", tail, "ecr"]),
            "one\ntwo\n",
            "{tail}"
        );
    }
    engine.docker_ok(&["rm", "-f", "ecr"]);
}

#[test]
fn cgroupns_follows_dockerd_default_and_the_flag() {
    let (_r, engine, img) = setup();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let cgroup = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend([img.as_str(), "cat", "/proc/self/cgroup"]);
        engine.docker_ok(&a)
    };
    // In its own cgroup namespace a container's cgroups are all `/`.
    let own = |out: &str| out.lines().all(|l| l.ends_with(":/"));
    assert!(own(&cgroup(&["--cgroupns", "private"])));
    assert!(!own(&cgroup(&["--cgroupns", "host"])));
    assert_eq!(
        own(&cgroup(&[])),
        v2,
        "dockerd's default: private on cgroup v2 only"
    );
    engine.docker_ok(&["create", "--name", "cg", &img, "true"]);
    let mode = engine.docker_ok(&["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "cg"]);
    assert_eq!(mode.trim(), if v2 { "private" } else { "host" });
    engine.docker_ok(&["rm", "cg"]);
}
