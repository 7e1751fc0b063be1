//! Engine VI, living beside another engine: Debian's dockerd, with its firewall on
//! (filter `FORWARD` policy DROP, the `DOCKER-USER` chain, bridged traffic through
//! iptables), runs next to Berth. Berth's user-defined networks, published ports and
//! Compose v1 and v2 apps still work, and stopping Berth leaves dockerd's rules exactly
//! as they were.
//!
//! Both engines run in a scratch network namespace made for this test, so neither
//! dockerd's rules nor its bridge ever touch the host's; the namespace, and with it
//! every rule, bridge and process in it, is gone when the test ends, pass or fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::engine::Engine;
use berth_tests::images::{self, Compression};
use berth_tests::netns::Netns;
use berth_tests::output_text;

const DOCKERD: &str = "/usr/sbin/dockerd";
const CONTAINERD: &str = "/usr/bin/containerd";
const IMAGE: &str = "beside-bb:1";

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// What the command printed, or everything it said when it failed.
fn stdout_or_err(o: Output) -> Result<String, String> {
    match o.status.success() {
        true => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        false => Err(output_text(&o)),
    }
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", output_text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The namespace's IPv4 filter table, without counters or the dump's timestamps:
/// what must be the same before Berth starts and after it stops.
fn filter_rules(ns: &Netns) -> String {
    let out = ok(&run(ns.exec("iptables-save").args(["-t", "filter"])));
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.strip_prefix(':') {
            // `:CHAIN POLICY [packets:bytes]`
            Some(chain) => {
                let mut parts = chain.split_whitespace();
                format!(
                    ":{} {}",
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or("")
                )
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Debian's dockerd with its defaults for the firewall (iptables on, the default
/// bridge), in the namespace, with a private containerd beside it in the same mount
/// namespace (dockerd mounts the rootfs that containerd's runc then uses).
struct Dockerd {
    dir: tempfile::TempDir,
    /// `nsenter` → `sh` → `exec dockerd`: dockerd itself, in the end.
    child: std::process::Child,
}

impl Drop for Dockerd {
    /// SIGTERM first, so dockerd and containerd unmount what they mounted (they share
    /// the host's mount namespace); then whatever is still mounted under the
    /// directory goes, before the directory.
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.path().join("dockerd.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            // SAFETY: kill(2) on the dockerd this test started (its pidfile).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let containerd = self.dir.path().join("containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(containerd)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on the containerd this test started.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        berth_tests::engine::cleanup_tree(self.dir.path());
    }
}

impl Dockerd {
    fn start(ns: &Netns) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-beside-dockerd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let cd = d.join("containerd");
        std::fs::create_dir_all(&cd).expect("containerd dir");
        let address = cd.join("containerd.sock");
        std::fs::write(
            cd.join("config.toml"),
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{addr}\"\n[ttrpc]\n  address = \"{addr}.ttrpc\"\n",
                root = cd.join("root").display(),
                state = cd.join("state").display(),
                addr = address.display(),
            ),
        )
        .expect("containerd config");
        let script = format!(
            "{CONTAINERD} --config {cfg} >{cd}/containerd.log 2>&1 &\n\
             echo $! >{cd}/containerd.pid\n\
             for i in $(seq 100); do [ -S {addr} ] && break; sleep 0.1; done\n\
             exec {DOCKERD} --containerd {addr} --data-root {d}/data --exec-root {d}/exec \
             --pidfile {d}/dockerd.pid -H unix://{d}/docker.sock >{d}/dockerd.log 2>&1",
            cfg = cd.join("config.toml").display(),
            cd = cd.display(),
            addr = address.display(),
            d = d.display(),
        );
        let child = ns
            .exec("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dockerd (apt-get install docker.io)");
        let mut me = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !me.answers() {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!(
                    "dockerd exited with {status}:\n{}",
                    std::fs::read_to_string(me.dir.path().join("dockerd.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 60 s:\n{}",
                std::fs::read_to_string(me.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        me
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn answers(&self) -> bool {
        Command::new("docker")
            .args(["-H", &format!("unix://{}", self.socket().display())])
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The busybox test image, imported (the namespace cannot reach a registry on the
/// host's loopback).
fn import_busybox(e: &Engine) {
    let layout = images::busybox_image(Compression::Gzip, "amd64").expect("busybox image");
    let tar = layout.layer_tar(&layout.layers()[0]).expect("layer tar");
    let mut child = e
        .docker_cmd(&["import", "-", IMAGE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&tar)
        .expect("writing the layer");
    ok(&child.wait_with_output().expect("docker import"));
}

/// busybox httpd serving `body`, as a detached container.
fn httpd(e: &Engine, args: &[&str], body: &str) {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    a.extend([IMAGE, "sh", "-c", script.as_str()]);
    ok(&e.docker(&a));
}

/// Retries `f` until it returns Some (20 s at most): servers take a moment to listen.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("never: {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn wget_from_container(e: &Engine, network: &str, url: &str) -> Result<String, String> {
    // busybox's own `wget -T` crashes; `timeout` bounds a connection that is dropped.
    stdout_or_err(e.docker(&[
        "run",
        "--rm",
        "--network",
        network,
        IMAGE,
        "busybox",
        "timeout",
        "5",
        "wget",
        "-qO-",
        url,
    ]))
}

const COMPOSE_FILE: &str = "services:
  web:
    image: beside-bb:1
    command: [\"sh\", \"-c\", \"mkdir -p /www && echo composed > /www/index.html && exec httpd -f -p 80 -h /www\"]
  client:
    image: beside-bb:1
    profiles: [\"client\"]
    command: [\"busybox\", \"timeout\", \"5\", \"wget\", \"-qO-\", \"http://web/\"]
";

fn compose_v2(e: &Engine, dir: &Path, args: &[&str]) -> Output {
    let mut a = vec![
        "compose",
        "--project-directory",
        dir.to_str().expect("UTF-8 path"),
        "-p",
        "besidev2",
    ];
    a.extend_from_slice(args);
    e.docker(&a)
}

fn compose_v1(e: &Engine, dir: &Path, args: &[&str]) -> Output {
    run(Command::new("docker-compose")
        .arg("-f")
        .arg(dir.join("compose.yaml"))
        .args(["-p", "besidev1"])
        .args(args)
        .env("DOCKER_HOST", e.docker_host()))
}

#[test]
fn berth_works_beside_dockerd_and_leaves_its_rules_as_they_were() {
    let ns = Netns::new("berth-beside");
    // A new namespace inherits the host's IPv4 forwarding, which any engine on the
    // host may have turned on; dockerd sets its FORWARD drop only when it turns
    // forwarding on itself, as on a fresh host.
    ok(&run(ns
        .exec("sh")
        .args(["-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"])));
    let dockerd = Dockerd::start(&ns);
    // What a host with Docker Engine has: the drop that used to cut Berth's bridges.
    let before = filter_rules(&ns);
    assert!(before.contains(":FORWARD DROP"), "{before}");
    assert!(before.contains(":DOCKER-USER"), "{before}");
    let nf = ok(&run(ns
        .exec("cat")
        .arg("/proc/sys/net/bridge/bridge-nf-call-iptables")));
    assert_eq!(nf.trim(), "1", "bridged traffic goes through iptables");

    let mut e = Engine::start_in_netns(&ns.name).expect("berth in the namespace");
    e.with_cli_plugins();
    import_busybox(&e);

    // A user-defined network: a container reaches another by name.
    ok(&e.docker(&["network", "create", "beside"]));
    httpd(&e, &["--name", "web", "--network", "beside"], "by-name");
    let body = eventually("a container reaching another on a user network", || {
        wget_from_container(&e, "beside", "http://web/")
    });
    assert_eq!(body.trim(), "by-name");
    // The default bridge, by address.
    httpd(&e, &["--name", "plain"], "by-address");
    let ip = ok(&e.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "plain",
    ]));
    let body = eventually("a container reaching another on the default bridge", || {
        wget_from_container(&e, "bridge", &format!("http://{}/", ip.trim()))
    });
    assert_eq!(body.trim(), "by-address");

    // A published port, from the namespace's loopback (the test's own host).
    httpd(
        &e,
        &["--name", "pub", "-p", "127.0.0.1:18080:80"],
        "published",
    );
    let body = eventually("the published port", || {
        stdout_or_err(run(ns.exec("/bin/busybox").args([
            "timeout",
            "5",
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1:18080/",
        ])))
    });
    assert_eq!(body.trim(), "published");

    // Berth's accepts are in dockerd's DOCKER-USER while it runs.
    let user = ok(&run(ns.exec("iptables").args(["-S", "DOCKER-USER"])));
    assert!(user.contains("-j ACCEPT"), "{user}");

    // Compose v2 and v1: a project network, one service reaching the other by name.
    let project = tempfile::tempdir().expect("project dir");
    std::fs::write(project.path().join("compose.yaml"), COMPOSE_FILE).expect("compose file");
    ok(&compose_v2(&e, project.path(), &["up", "-d"]));
    let body = eventually("compose v2 services reaching each other", || {
        stdout_or_err(compose_v2(&e, project.path(), &["run", "--rm", "client"]))
    });
    assert!(body.contains("composed"), "{body}");
    ok(&compose_v2(&e, project.path(), &["down"]));
    ok(&compose_v1(&e, project.path(), &["up", "-d", "web"]));
    let body = eventually("compose v1 services reaching each other", || {
        stdout_or_err(compose_v1(&e, project.path(), &["run", "--rm", "client"]))
    });
    assert!(body.contains("composed"), "{body}");
    ok(&compose_v1(&e, project.path(), &["down"]));

    // Stopping Berth takes away its rules and nothing else.
    e.stop();
    let after = filter_rules(&ns);
    assert_eq!(
        before, after,
        "dockerd's filter rules changed after Berth stopped"
    );
    assert!(dockerd.answers(), "dockerd still runs");
}
