//! Engine III, networking: user-defined networks with name resolution, the default
//! bridge without it, published TCP and UDP ports reached from the host's loopback,
//! `-P` with `docker port`, port conflicts, and nothing left behind — through the stock
//! `docker` CLI. Traffic goes only to 127.0.0.1 and to addresses on bridges the
//! engines under test created.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use berth_tests::engine::{network_leftovers, network_state, Engine};
use berth_tests::registry::Registry;

fn setup() -> (Registry, Engine, String) {
    berth_tests::busybox_engine()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts busybox httpd serving `body` on port 80 in a new detached container.
fn httpd(engine: &Engine, img: &str, args: &[&str], body: &str) {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    a.extend([img, "sh", "-c", script.as_str()]);
    engine.docker_ok(&a);
}

/// GET / from the host, retrying while the server starts.
fn http_get(port: u16) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if out.contains("200 OK") {
                    return out;
                }
                last = out;
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no answer on 127.0.0.1:{port}: {last}");
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_alias() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&["network", "create", "--label", "t=1", "appnet"]);
    // Only the options the user gave (none): Compose 1.29 compares them with its file
    // and would otherwise demand the network be recreated on the next `up`.
    assert_eq!(
        engine.docker_ok(&["network", "inspect", "-f", "{{json .Options}}", "appnet"]),
        "{}\n"
    );
    let ls = engine.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["appnet bridge", "bridge bridge", "host host", "none null"] {
        assert!(ls.lines().any(|l| l == want), "{want} missing from {ls}");
    }
    httpd(
        &engine,
        &img,
        &[
            "--name",
            "web",
            "--network",
            "appnet",
            "--network-alias",
            "frontend",
        ],
        "hello-from-web",
    );
    for target in ["web", "frontend"] {
        let mut got = String::new();
        for _ in 0..50 {
            let o = engine.docker(&[
                "run",
                "--rm",
                "--network",
                "appnet",
                &img,
                "wget",
                "-qO-",
                &format!("http://{target}/"),
            ]);
            got = String::from_utf8_lossy(&o.stdout).into_owned();
            if got.contains("hello-from-web") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(got.contains("hello-from-web"), "{target}: {got}");
    }
    // docker stats counts the traffic of the container's interfaces.
    let netio = engine.docker_ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", "web"]);
    assert!(!netio.trim().starts_with("0B"), "{netio}");
    // The resolver and the files Docker writes.
    let etc = engine.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "--hostname",
        "probe",
        "--add-host",
        "db:10.9.9.9",
        &img,
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts /etc/hostname",
    ]);
    assert!(etc.contains("nameserver 127.0.0.11\n"), "{etc}");
    assert!(etc.contains("options ndots:0"), "{etc}");
    assert!(etc.contains("10.9.9.9\tdb"), "{etc}");
    assert!(etc.lines().any(|l| l == "probe"), "{etc}");
    // inspect shows the address on the network; the network shows the container.
    let ip = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"appnet\").IPAddress}}",
        "web",
    ]);
    assert!(ip.trim().contains('.'), "{ip}");
    let members = engine.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        "appnet",
    ]);
    assert_eq!(members.trim(), "web");
    // A network with a container cannot go; without, it can.
    let busy = engine.docker(&["network", "rm", "appnet"]);
    assert!(
        stderr(&busy).contains("has active endpoints"),
        "{}",
        stderr(&busy)
    );
    engine.docker_ok(&["rm", "-f", "web"]);
    engine.docker_ok(&["network", "rm", "appnet"]);
    let pre = engine.docker(&["network", "rm", "bridge"]);
    assert!(
        stderr(&pre).contains("pre-defined network"),
        "{}",
        stderr(&pre)
    );
}

#[test]
fn the_default_bridge_has_no_name_resolution_but_reaches_by_address() {
    let (_r, engine, img) = setup();
    httpd(&engine, &img, &["--name", "plain"], "on-default-bridge");
    let ip = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "plain",
    ]);
    let ip = ip.trim().to_string();
    let by_name = engine.docker(&[
        "run",
        "--rm",
        &img,
        "wget",
        "-qO-",
        "-T",
        "2",
        "http://plain/",
    ]);
    assert!(
        !by_name.status.success(),
        "names resolve on the default bridge"
    );
    let mut got = String::new();
    for _ in 0..50 {
        let o = engine.docker(&[
            "run",
            "--rm",
            &img,
            "wget",
            "-qO-",
            &format!("http://{ip}/"),
        ]);
        got = String::from_utf8_lossy(&o.stdout).into_owned();
        if got.contains("on-default-bridge") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(got.contains("on-default-bridge"), "{got}");
    let none = engine.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!(none.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    // --network host: the engine's own interfaces, its default bridge among them.
    let host = engine.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        &img,
        "ls",
        "/sys/class/net",
    ]);
    let bridge = berth_tests::engine::bridge_name(engine.root());
    assert!(
        host.split_whitespace().any(|i| i == bridge),
        "{bridge} not in {host}"
    );
    let name = engine.docker_ok(&["run", "--rm", "--network", "host", &img, "hostname"]);
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(name.trim(), ours.trim());
    engine.docker_ok(&["rm", "-f", "plain"]);
}

#[test]
fn published_ports_answer_on_loopback_and_conflicts_are_refused() {
    let (_r, engine, img) = setup();
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    httpd(&engine, &img, &["--name", "pub", "-p", &spec], "published");
    assert!(http_get(port).contains("published"));
    let shown = engine.docker_ok(&["port", "pub"]);
    assert_eq!(shown.trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    let ps = engine.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    // The same host port again: dockerd's error, and the container does not run.
    let clash = engine.docker(&[
        "run", "-d", "--name", "clash", "-p", &spec, &img, "sleep", "100",
    ]);
    assert!(!clash.status.success());
    assert!(
        stderr(&clash).contains("port is already allocated"),
        "{}",
        stderr(&clash)
    );
    // -P gives EXPOSEd ports an ephemeral host port.
    engine.docker_ok(&[
        "run", "-d", "--name", "all", "--expose", "80", "-P", &img, "sleep", "100",
    ]);
    let p = engine.docker_ok(&["port", "all", "80/tcp"]);
    let host_port: u16 = p.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(host_port > 0, "{p}");
    engine.docker_ok(&["rm", "-f", "pub", "clash", "all"]);
    // Released: the port can be bound again on the host.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn a_published_udp_port_passes_datagrams() {
    let (_r, engine, img) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let bin = berth_tests::udp_echo_binary(tmp.path());
    let port = free_port();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{port}:9999/udp"),
        &img,
        "sleep",
        "1000",
    ]);
    engine.docker_ok(&["cp", bin.to_str().unwrap(), "udp:/bin/udpecho"]);
    engine.docker_ok(&["exec", "-d", "udp", "/bin/udpecho", "9999"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..50 {
        sock.send_to(b"datagram", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = sock.recv(&mut buf) {
            got = buf[..n].to_vec();
            break;
        }
    }
    assert_eq!(got, b"datagram");
    engine.docker_ok(&["rm", "-f", "udp"]);
}

#[test]
fn nothing_is_left_behind() {
    let state;
    {
        let (_r, engine, img) = setup();
        let root = engine.root().to_path_buf();
        engine.docker_ok(&["network", "create", "leftover-net"]);
        httpd(
            &engine,
            &img,
            &[
                "--name",
                "xx",
                "--network",
                "leftover-net",
                "-p",
                "127.0.0.1::80",
            ],
            "x",
        );
        engine.docker_ok(&["rm", "-f", "xx"]);
        // After rm: no namespace file is mounted under the engine's root.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&format!("{}/network/netns/", root.display())),
            "a netns is still mounted"
        );
        engine.docker_ok(&["network", "rm", "leftover-net"]);
        let until = (std::time::SystemTime::now() + Duration::from_secs(1))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let events = engine.docker_ok(&[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "type=network",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ]);
        for want in [
            "create leftover-net",
            "connect leftover-net",
            "disconnect leftover-net",
            "destroy leftover-net",
        ] {
            assert!(
                events.lines().any(|l| l == want),
                "{want} missing from {events}"
            );
        }
        state = network_state(&root);
        let left = network_leftovers(&state);
        assert_eq!(
            state.0.len(),
            1,
            "only the default bridge remains: {state:?}"
        );
        assert_eq!(
            left.len(),
            2,
            "the default bridge and the nft table exist while the engine runs: {left:?}"
        );
    }
    // The harness removed the engine's default bridge and its nft table.
    assert_eq!(network_leftovers(&state), Vec::<String>::new());
}

#[test]
fn networking_survives_an_engine_sigkill() {
    let (_r, mut engine, img) = setup();
    engine.docker_ok(&["network", "create", "keep"]);
    let port = free_port();
    httpd(
        &engine,
        &img,
        &[
            "--name",
            "kept",
            "--network",
            "keep",
            "-p",
            &format!("127.0.0.1:{port}:80"),
        ],
        "still-here",
    );
    assert!(http_get(port).contains("still-here"));
    let ip_before = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.keep.IPAddress}}",
        "kept",
    ]);
    engine.kill9();
    engine.respawn().unwrap();
    // The proxy died with the engine; the new engine binds the port again.
    assert!(http_get(port).contains("still-here"));
    let ip_after = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.keep.IPAddress}}",
        "kept",
    ]);
    assert_eq!(ip_before, ip_after);
    // A new container on the network does not get the survivor's address, and finds it.
    let o = engine.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "keep",
        &img,
        "wget",
        "-qO-",
        "http://kept/",
    ]);
    assert!(o.contains("still-here"), "{o}");
    engine.docker_ok(&["rm", "-f", "kept"]);
    engine.docker_ok(&["network", "rm", "keep"]);
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let (_r, engine, img) = setup();
    engine.docker_ok(&["network", "create", "first"]);
    engine.docker_ok(&["network", "create", "second"]);
    httpd(
        &engine,
        &img,
        &["--name", "svc", "--network", "first"],
        "multi-homed",
    );
    engine.docker_ok(&["network", "connect", "--alias", "svc-two", "second", "svc"]);
    let ifs = engine.docker_ok(&["exec", "svc", "ls", "/sys/class/net"]);
    assert_eq!(
        ifs.split_whitespace().collect::<Vec<_>>(),
        vec!["eth0", "eth1", "lo"]
    );
    let mut got = String::new();
    for _ in 0..50 {
        let o = engine.docker(&[
            "run",
            "--rm",
            "--network",
            "second",
            &img,
            "wget",
            "-qO-",
            "http://svc-two/",
        ]);
        got = String::from_utf8_lossy(&o.stdout).into_owned();
        if got.contains("multi-homed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(got.contains("multi-homed"), "{got}");
    engine.docker_ok(&["network", "disconnect", "second", "svc"]);
    let ifs = engine.docker_ok(&["exec", "svc", "ls", "/sys/class/net"]);
    assert_eq!(
        ifs.split_whitespace().collect::<Vec<_>>(),
        vec!["eth0", "lo"]
    );
    let gone = engine.docker(&[
        "run",
        "--rm",
        "--network",
        "second",
        &img,
        "wget",
        "-qO-",
        "-T",
        "2",
        "http://svc-two/",
    ]);
    assert!(
        !gone.status.success(),
        "the name still resolves after disconnect"
    );
    engine.docker_ok(&["rm", "-f", "svc"]);
    engine.docker_ok(&["network", "rm", "first", "second"]);
}

#[test]
fn an_ipv6_network_gives_containers_addresses_that_reach_each_other() {
    let (_r, engine, img) = setup();
    // A documentation prefix of this process's own: engines of parallel suites use no IPv6.
    let prefix = format!("2001:db8:{:x}", std::process::id() & 0xffff);
    let subnet = format!("{prefix}::/64");
    engine.docker_ok(&["network", "create", "--ipv6", "--subnet", &subnet, "v6net"]);
    let fixed = format!("{prefix}::10");
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        "v6a",
        "--network",
        "v6net",
        "--ip6",
        &fixed,
        &img,
        "sleep",
        "300",
    ]);
    // The second container gets the first free address, the gateway being ::1.
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        &img,
        "sh",
        "-c",
        &format!(
            "ip -6 addr show eth0 && ping -6 -c1 {fixed} && ping -6 -c1 {prefix}::1 && nslookup -type=AAAA v6a"
        ),
    ]);
    // The embedded DNS answers AAAA with the IPv6 address.
    assert!(out.contains(&format!("Address: {fixed}")), "{out}");
    assert!(out.contains(&format!("inet6 {prefix}::2/64")), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    let ep = engine.docker_ok(&[
        "inspect",
        "-f",
        "{{with index .NetworkSettings.Networks \"v6net\"}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}",
        "v6a",
    ]);
    assert_eq!(ep.trim(), format!("{fixed}/64 {prefix}::1"));
    let net = engine.docker_ok(&["network", "inspect", "-f", "{{.EnableIPv6}}", "v6net"]);
    assert_eq!(net.trim(), "true");
    // An address outside the subnet, and an IPv6 pool without --ipv6, are refused.
    let o = engine.docker(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "2001:db9::5",
        &img,
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no configured subnet contains IP address"),
        "{}",
        stderr(&o)
    );
    let o = engine.docker(&[
        "network",
        "create",
        "--subnet",
        "2001:db8:ffff::/64",
        "nov6",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--ipv6"), "{}", stderr(&o));
}
