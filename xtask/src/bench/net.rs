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

use anyhow::{bail, Context};

use super::engine::{Engine, BERTH_BRIDGE};
use super::registry::Registry;
use super::report::{percentile, Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, interrupted, Options};

/// The static busybox (Debian's busybox-static): the image's and the host's httpd.
const BUSYBOX: &str = "/bin/busybox";
/// The bulk file, in MiB.
const BIG_MB: usize = 256;
const QUICK_BIG_MB: usize = 64;
/// Timed downloads of the bulk file per server, after one warm-up.
const DOWNLOADS: usize = 20;
const QUICK_DOWNLOADS: usize = 5;
/// Timed connect + GET of the tiny file per server (the latency rows).
const REQUESTS: usize = 200;
const QUICK_REQUESTS: usize = 50;
/// What `/small` holds; its length is checked on every request.
const SMALL: &str = "small\n";
/// The target: at least this share of direct loopback throughput.
const TARGET_SHARE: f64 = 0.70;
const CONTAINER: &str = "berth-bench-web";
/// The bridge dockerd gets in this group (it needs one for `-p`); created and deleted
/// here so dockerd never makes `docker0` or touches the host's iptables.
const DOCKERD_BRIDGE: &str = "berthbench0";
const DOCKERD_BRIDGE_ADDR: &str = "10.213.77.1/24";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Generous: a stalled proxy should fail the row, not hang the bench.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

struct Plan {
    image: String,
    big_mb: usize,
    downloads: usize,
    requests: usize,
}

impl Plan {
    fn big_bytes(&self) -> usize {
        self.big_mb << 20
    }
}

struct Measured {
    /// MB/s (10^6 bytes) per download of the bulk file.
    throughput: Samples,
    /// Milliseconds per connect + GET of the tiny file.
    latency: Samples,
}

impl Measured {
    fn failed(why: String) -> Measured {
        Measured {
            throughput: Err(why.clone()),
            latency: Err(why),
        }
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

    // The baseline server stays up for the whole group and is measured before Berth
    // and again after dockerd: pooled, so load from elsewhere on the machine that
    // comes and goes during the run weighs on the baseline as it does on the engines.
    let host = HostServer::start(&plan)?;
    println!("direct loopback on port {}", host.port);
    let before = measure_server("loopback", host.port, &plan)?;
    let berth = measure(|| Engine::berth(&opts.berth_bin), &plan)?;
    let dockerd = {
        // Declared first, so dropped after the engine that uses it.
        let _bridge = Bridge::create()?;
        measure(
            || Engine::dockerd_with(&registry.addr, Some(DOCKERD_BRIDGE)),
            &plan,
        )?
    };
    let after = measure_server("loopback", host.port, &plan)?;
    drop(host);
    let loopback = Measured {
        throughput: pool(before.throughput, after.throughput),
        latency: pool(before.latency, after.latency),
    };

    report.notes.push(format!(
        "net: busybox httpd serving a {} MiB file of zeros and a {}-byte file, in a \
         container behind `-p 127.0.0.1:PORT:80` (Berth on its own bridge {}, dockerd on \
         {DOCKERD_BRIDGE} created here, with --iptables=false; on both a userland proxy \
         carries the port) and directly on the host's loopback; per server {} timed HTTP/1.0 downloads after one warm-up and {} \
         connect + GET + read-to-end of the small file, the client in this process; the \
         loopback rows pool runs before Berth and after dockerd. {}",
        plan.big_mb,
        SMALL.len(),
        BERTH_BRIDGE,
        plan.downloads,
        plan.requests,
        verdict(&berth, &dockerd, &loopback),
    ));
    let big = format!("{} MiB download", plan.big_mb);
    // The baseline is one set of samples; repeating it in both columns keeps the
    // table's shape and puts it right under the rows it is compared with.
    let baseline = "over direct loopback, no container; baseline, same in both columns";
    report.rows.push(Row {
        metric: format!("{big} through a published port"),
        unit: "MB/s",
        decimals: 0,
        better: Better::Higher,
        berth: berth.throughput,
        dockerd: dockerd.throughput,
    });
    report.rows.push(Row {
        metric: format!("{big} {baseline}"),
        unit: "MB/s",
        decimals: 0,
        better: Better::Higher,
        berth: loopback.throughput.clone(),
        dockerd: loopback.throughput,
    });
    report.rows.push(Row {
        metric: "connect + GET of a tiny file through a published port".into(),
        unit: "ms",
        decimals: 3,
        better: Better::Lower,
        berth: berth.latency,
        dockerd: dockerd.latency,
    });
    report.rows.push(Row {
        metric: format!("connect + GET of a tiny file {baseline}"),
        unit: "ms",
        decimals: 3,
        better: Better::Lower,
        berth: loopback.latency.clone(),
        dockerd: loopback.latency,
    });
    Ok(())
}

/// Both halves of a baseline, or the first error.
fn pool(a: Samples, b: Samples) -> Samples {
    let mut a = a?;
    a.extend(b?);
    Ok(a)
}

/// One sentence: each engine's share of loopback throughput and its added latency,
/// against the target (≥ 70 % of loopback and no worse than dockerd).
fn verdict(berth: &Measured, dockerd: &Measured, loopback: &Measured) -> String {
    let median = |s: &Samples| s.as_ref().ok().and_then(|v| percentile(v, 0.5));
    let Some(base) = median(&loopback.throughput).filter(|b| *b > 0.0) else {
        return "No loopback baseline.".into();
    };
    let base_ms = median(&loopback.latency);
    let describe = |who: &str, m: &Measured| match median(&m.throughput) {
        Some(t) => {
            let extra = match (median(&m.latency), base_ms) {
                (Some(l), Some(b)) => format!(", {:+.3} ms per request", l - b),
                _ => String::new(),
            };
            format!(
                "{who} {:.0} % of loopback throughput{extra}",
                100.0 * t / base
            )
        }
        None => format!("{who}: no result"),
    };
    let target = match (median(&berth.throughput), median(&dockerd.throughput)) {
        (Some(b), Some(d)) if b >= TARGET_SHARE * base && b >= d => "met",
        (Some(_), Some(_)) => "missed",
        _ => "not decided",
    };
    format!(
        "{}; {} (target: ≥ {:.0} % of loopback and no worse than dockerd: {target}).",
        describe("Berth", berth),
        describe("dockerd", dockerd),
        TARGET_SHARE * 100.0,
    )
}

/// Starts one engine and measures the httpd container on it. An engine that fails to
/// start, pull or run becomes an error in its column; only an interruption fails the
/// whole group.
fn measure(
    start: impl FnOnce() -> anyhow::Result<Engine>,
    plan: &Plan,
) -> anyhow::Result<Measured> {
    check_interrupted()?;
    let engine = match start() {
        Ok(e) => e,
        Err(e) => {
            let why = format!("could not start: {e:#}");
            println!("{why}");
            // The table lists the first line; the log excerpt was printed above.
            let first = why.lines().next().unwrap_or_default().to_string();
            return Ok(Measured::failed(first));
        }
    };
    println!("{} is up", engine.name);
    if let Err(e) = engine.docker(&["pull", "-q", &plan.image]) {
        println!("  {} pull failed: {e}{}", engine.name, engine.log_tail());
        return Ok(Measured::failed(e));
    }
    let port = free_port()?;
    // The files are made inside the container, so the image stays the tiny busybox one.
    let script = format!(
        "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count={} 2>/dev/null && \
         printf '{}' > /www/small && exec httpd -f -p 80 -h /www",
        plan.big_mb,
        SMALL.escape_default(),
    );
    let publish = format!("127.0.0.1:{port}:80");
    let run = [
        "run",
        "-d",
        "--name",
        CONTAINER,
        "-p",
        &publish,
        &plan.image,
        "sh",
        "-c",
        &script,
    ];
    if let Err(e) = engine.docker(&run) {
        println!("  {} run failed: {e}{}", engine.name, engine.log_tail());
        // A container may exist even though `run` failed; the engine goes with it anyway.
        let _ = engine.docker(&["rm", "-f", CONTAINER]);
        return Ok(Measured::failed(e));
    }
    let measured = measure_server(engine.name, port, plan);
    if let Err(e) = engine.docker(&["rm", "-f", CONTAINER]) {
        println!("  {} rm failed: {e}", engine.name);
    }
    match measured {
        Ok(m) => Ok(m),
        Err(e) if interrupted() => Err(e),
        Err(e) => {
            let e = format!("{e:#}");
            println!("  {}: {e}{}", engine.name, engine.log_tail());
            Ok(Measured::failed(e))
        }
    }
}

/// Waits until the server hands out the whole bulk file (that download is the warm-up),
/// then times the downloads and the small requests.
fn measure_server(who: &str, port: u16, plan: &Plan) -> anyhow::Result<Measured> {
    let mut buf = vec![0u8; 1 << 20];
    wait_ready(port, plan.big_bytes(), &mut buf)?;
    let mut throughput = Vec::new();
    for i in 1..=plan.downloads {
        check_interrupted()?;
        let t = Instant::now();
        let n = get(port, "/big", &mut buf)?;
        let took = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            n == plan.big_bytes(),
            "short download: {n} of {} bytes",
            plan.big_bytes()
        );
        let rate = n as f64 / 1e6 / took;
        println!("  {who} download {i}/{}: {rate:.0} MB/s", plan.downloads);
        throughput.push(rate);
    }
    let mut latency = Vec::new();
    for _ in 0..plan.requests {
        check_interrupted()?;
        let t = Instant::now();
        let n = get(port, "/small", &mut buf)?;
        latency.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(n == SMALL.len(), "/small came back with {n} bytes");
    }
    println!(
        "  {who} {} requests: median {:.3} ms",
        plan.requests,
        percentile(&latency, 0.5).unwrap_or_default()
    );
    Ok(Measured {
        throughput: Ok(throughput),
        latency: Ok(latency),
    })
}

/// Polls until GET /big returns all of it: the container may still be writing the file
/// or the proxy may not be listening yet.
fn wait_ready(port: u16, want: usize, buf: &mut [u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        check_interrupted()?;
        let last = match get(port, "/big", buf) {
            Ok(n) if n == want => return Ok(()),
            Ok(n) => format!("{n} of {want} bytes"),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("127.0.0.1:{port}/big not served within {READY_TIMEOUT:?} (last: {last})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Connects, sends `GET path HTTP/1.0` and reads to EOF; returns the body's length.
/// `buf` is reused so that allocating it is not part of any timing.
fn get(port: u16, path: &str, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())?;
    // Only the head is kept (to find where the body starts); body bytes are counted.
    let mut head = Vec::new();
    let mut body = None;
    loop {
        let n = s.read(buf)?;
        if n == 0 {
            break;
        }
        match &mut body {
            Some(total) => *total += n,
            None => {
                head.extend_from_slice(&buf[..n]);
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    if !head.starts_with(b"HTTP/1.0 200") && !head.starts_with(b"HTTP/1.1 200") {
                        let status = String::from_utf8_lossy(&head[..i.min(80)]).into_owned();
                        return Err(std::io::Error::other(format!("answered {status:?}")));
                    }
                    body = Some(head.len() - (i + 4));
                }
            }
        }
    }
    body.ok_or_else(|| std::io::Error::other("connection closed before the headers ended"))
}

/// A free port on 127.0.0.1 (bound and released; nothing else here races for it).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// busybox httpd on the host serving the same files, for the direct-loopback baseline.
/// Fields drop in order: the server is killed before its directory goes.
struct HostServer {
    port: u16,
    child: Child,
    _dir: Scratch,
}

impl HostServer {
    fn start(plan: &Plan) -> anyhow::Result<HostServer> {
        let dir = Scratch::new("net-www")?;
        let www = dir.join("www");
        std::fs::create_dir_all(&www)?;
        let mut f = std::fs::File::create(www.join("big"))?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..plan.big_mb {
            f.write_all(&chunk)?;
        }
        std::fs::write(www.join("small"), SMALL)?;
        let port = free_port()?;
        let child = Command::new(BUSYBOX)
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(&www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting busybox httpd on the host")?;
        Ok(HostServer {
            port,
            child,
            _dir: dir,
        })
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bridge dockerd runs on in this group; deleted on drop, so also on errors and
/// Ctrl-C (which only sets a flag, see `catch_interrupts`).
struct Bridge;

impl Bridge {
    fn create() -> anyhow::Result<Bridge> {
        // A run killed with SIGKILL can leave it behind; its address would clash.
        let _ = ip(&["link", "del", DOCKERD_BRIDGE]);
        ip(&["link", "add", DOCKERD_BRIDGE, "type", "bridge"])?;
        // From here on a failure still deletes the bridge.
        let bridge = Bridge;
        ip(&["addr", "add", DOCKERD_BRIDGE_ADDR, "dev", DOCKERD_BRIDGE])?;
        ip(&["link", "set", DOCKERD_BRIDGE, "up"])?;
        Ok(bridge)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Err(e) = ip(&["link", "del", DOCKERD_BRIDGE]) {
            println!("could not delete bridge {DOCKERD_BRIDGE}: {e:#}");
        }
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (apt-get install iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(throughput: &[f64], latency: &[f64]) -> Measured {
        Measured {
            throughput: Ok(throughput.to_vec()),
            latency: Ok(latency.to_vec()),
        }
    }

    #[test]
    fn verdict_states_shares_and_target() {
        let loopback = measured(&[1000.0, 1000.0], &[0.1]);
        let berth = measured(&[800.0], &[0.3]);
        let dockerd = measured(&[700.0], &[0.4]);
        let v = verdict(&berth, &dockerd, &loopback);
        assert!(
            v.starts_with("Berth 80 % of loopback throughput, +0.200 ms per request; dockerd 70 %"),
            "{v}"
        );
        assert!(v.ends_with("no worse than dockerd: met)."), "{v}");
        let slow = measured(&[600.0], &[0.3]);
        assert!(verdict(&slow, &dockerd, &loopback).ends_with("missed)."));
        let broken = Measured::failed("no".into());
        let v = verdict(&broken, &dockerd, &loopback);
        assert!(
            v.contains("Berth: no result") && v.ends_with("not decided)."),
            "{v}"
        );
    }

    #[test]
    fn pool_keeps_both_halves_or_the_error() {
        assert_eq!(pool(Ok(vec![1.0]), Ok(vec![2.0])), Ok(vec![1.0, 2.0]));
        assert_eq!(pool(Ok(vec![1.0]), Err("x".into())), Err("x".into()));
    }

    #[test]
    fn get_counts_the_body_and_refuses_errors() -> anyhow::Result<()> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let server = std::thread::spawn(move || -> std::io::Result<()> {
            for answer in [
                "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nsmall\n",
                "HTTP/1.0 404 Not Found\r\n\r\ngone",
            ] {
                let (mut c, _) = l.accept()?;
                let mut req = [0u8; 512];
                let _ = c.read(&mut req)?;
                c.write_all(answer.as_bytes())?;
            }
            Ok(())
        });
        // A tiny buffer splits the head across reads.
        let mut buf = [0u8; 7];
        assert_eq!(get(port, "/small", &mut buf)?, 6);
        assert!(get(port, "/missing", &mut buf).is_err());
        server
            .join()
            .map_err(|_| anyhow::anyhow!("server panicked"))??;
        Ok(())
    }
}
