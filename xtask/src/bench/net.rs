//! The `net` group: a published port's throughput and connection latency, for Berth and
//! for dockerd, next to the same HTTP server reached directly on loopback. The server
//! is busybox's httpd in every case (in a container behind `-p 127.0.0.1:PORT:80`, or
//! on the host), the client is this process. Traffic stays on 127.0.0.1 and on bridges
//! the engines (or this group) created.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, Options};

const BUSYBOX: &str = "/bin/busybox";
/// The bulk file, in MiB.
const BIG_MB: usize = 256;
const QUICK_BIG_MB: usize = 64;
const DOWNLOADS: usize = 8;
const QUICK_DOWNLOADS: usize = 3;
/// Requests for the latency rows.
const REQUESTS: usize = 200;
const QUICK_REQUESTS: usize = 50;
/// The bridge dockerd gets in this group (it must have one for `-p`).
const DOCKERD_BRIDGE: &str = "berthbench0";
const DOCKERD_BRIDGE_ADDR: &str = "10.213.77.1/24";

struct Plan {
    image: String,
    big_mb: usize,
    downloads: usize,
    requests: usize,
}

struct Measured {
    /// Seconds per download of the big file.
    download: Samples,
    /// Milliseconds per connect + GET of a tiny file.
    latency: Samples,
}

fn failed(why: String) -> Measured {
    Measured {
        download: Err(why.clone()),
        latency: Err(why),
    }
}

/// A free port on 127.0.0.1 (bound and released; nothing else here races for it).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// GET `path` over HTTP/1.0; returns the body length.
fn get(port: u16, path: &str) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    let mut header_done = false;
    let mut head = Vec::new();
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if header_done {
            total += n;
        } else {
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                header_done = true;
                total += head.len() - (i + 4);
            }
        }
    }
    Ok(total)
}

/// Waits until GET `path` returns `want` bytes.
fn wait_ready(port: u16, path: &str, want: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        check_interrupted()?;
        if matches!(get(port, path), Ok(n) if n == want) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server on port {port} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn measure_server(port: u16, plan: &Plan) -> anyhow::Result<Measured> {
    let big = plan.big_mb << 20;
    wait_ready(port, "/big", big)?;
    let mut download = Vec::new();
    for _ in 0..plan.downloads {
        check_interrupted()?;
        let t = Instant::now();
        let n = get(port, "/big")?;
        anyhow::ensure!(n == big, "short download: {n} of {big} bytes");
        download.push(t.elapsed().as_secs_f64());
    }
    let mut latency = Vec::new();
    for _ in 0..plan.requests {
        check_interrupted()?;
        let t = Instant::now();
        let n = get(port, "/small")?;
        anyhow::ensure!(n == 6, "short answer: {n} bytes");
        latency.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Measured {
        download: Ok(download),
        latency: Ok(latency),
    })
}

/// busybox httpd on the host, for the direct-loopback baseline; killed on drop.
struct HostServer(Child);

impl Drop for HostServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn baseline(plan: &Plan) -> anyhow::Result<Measured> {
    let dir = Scratch::new("net-www")?;
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    let mut f = std::fs::File::create(www.join("big"))?;
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..plan.big_mb {
        f.write_all(&chunk)?;
    }
    std::fs::write(www.join("small"), "small\n")?;
    let port = free_port()?;
    let child = Command::new(BUSYBOX)
        .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting busybox httpd on the host")?;
    let _server = HostServer(child);
    measure_server(port, plan)
}

fn in_engine(engine: &Engine, plan: &Plan) -> anyhow::Result<Measured> {
    if let Err(e) = engine.docker(&["pull", "-q", &plan.image]) {
        return Ok(failed(e));
    }
    let port = free_port()?;
    let script = format!(
        "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1048576 count={} 2>/dev/null && echo small > /www/small && exec httpd -f -p 80 -h /www",
        plan.big_mb
    );
    let publish = format!("127.0.0.1:{port}:80");
    if let Err(e) = engine.docker(&[
        "run",
        "-d",
        "--name",
        "berth-bench-web",
        "-p",
        &publish,
        &plan.image,
        "sh",
        "-c",
        &script,
    ]) {
        return Ok(failed(e));
    }
    let result = measure_server(port, plan);
    let _ = engine.docker(&["rm", "-f", "berth-bench-web"]);
    match result {
        Ok(m) => Ok(m),
        Err(e) if super::interrupted() => Err(e),
        Err(e) => Ok(failed(format!("{e:#}"))),
    }
}

/// The bridge dockerd runs on in this group; deleted on drop.
struct Bridge;

impl Bridge {
    fn create() -> anyhow::Result<Bridge> {
        let ip = |args: &[&str]| -> anyhow::Result<()> {
            let st = Command::new("ip").args(args).status()?;
            anyhow::ensure!(st.success(), "ip {} failed", args.join(" "));
            Ok(())
        };
        let _ = Command::new("ip")
            .args(["link", "del", DOCKERD_BRIDGE])
            .stderr(Stdio::null())
            .status();
        ip(&["link", "add", DOCKERD_BRIDGE, "type", "bridge"])?;
        let b = Bridge;
        ip(&["addr", "add", DOCKERD_BRIDGE_ADDR, "dev", DOCKERD_BRIDGE])?;
        ip(&["link", "set", DOCKERD_BRIDGE, "up"])?;
        Ok(b)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", DOCKERD_BRIDGE])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing (apt-get install busybox-static)"
    );
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let plan = Plan {
        image,
        big_mb: if opts.quick { QUICK_BIG_MB } else { BIG_MB },
        downloads: if opts.quick {
            QUICK_DOWNLOADS
        } else {
            DOWNLOADS
        },
        requests: if opts.quick { QUICK_REQUESTS } else { REQUESTS },
    };
    println!("direct loopback baseline");
    let base = baseline(&plan)?;
    let berth = match Engine::berth(&opts.berth_bin) {
        Ok(e) => in_engine(&e, &plan)?,
        Err(e) => failed(format!("could not start: {e:#}")),
    };
    let dockerd = {
        let _bridge = Bridge::create()?;
        match Engine::dockerd_with(&registry.addr, Some(DOCKERD_BRIDGE)) {
            Ok(e) => in_engine(&e, &plan)?,
            Err(e) => failed(format!("could not start: {e:#}")),
        }
    };
    let median = |s: &Samples| {
        s.as_ref()
            .ok()
            .and_then(|v| super::report::percentile(v, 0.5))
    };
    let mbps = |secs: Option<f64>| secs.map(|t| plan.big_mb as f64 * 1.048_576 / t);
    let base_mbps = mbps(median(&base.download));
    let fmt = |v: Option<f64>| {
        v.map(|x| format!("{x:.0} MB/s"))
            .unwrap_or_else(|| "n/a".into())
    };
    let share = |v: Option<f64>| match (v, base_mbps) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.0} %", 100.0 * x / b),
        _ => "n/a".into(),
    };
    let (bm, dm) = (
        mbps(median(&berth.download)),
        mbps(median(&dockerd.download)),
    );
    report.notes.push(format!(
        "net: busybox httpd serving a {} MiB file and a 6-byte file, `-p 127.0.0.1:PORT:80` \
         (dockerd on its own bridge with --iptables=false, so its docker-proxy carries the \
         port; Berth's userland proxy likewise), {} downloads and {} connect+GET requests \
         per server, the client in this process. Direct loopback (the same httpd on the \
         host): {} and {:.3} ms per request. Through the published port: Berth {} ({} of \
         loopback), dockerd {} ({} of loopback).",
        plan.big_mb,
        plan.downloads,
        plan.requests,
        fmt(base_mbps),
        median(&base.latency).unwrap_or(f64::NAN),
        fmt(bm),
        share(bm),
        fmt(dm),
        share(dm),
    ));
    report.rows.push(Row {
        metric: format!("download of {} MiB through a published port", plan.big_mb),
        unit: "s",
        decimals: 3,
        berth: berth.download,
        dockerd: dockerd.download,
    });
    report.rows.push(Row {
        metric: "connect + GET of a tiny file through a published port".into(),
        unit: "ms",
        decimals: 3,
        berth: berth.latency,
        dockerd: dockerd.latency,
    });
    Ok(())
}
