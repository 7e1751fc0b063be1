//! The `vm` group: the VM path against the native backend, in one run. Cold boot
//! (`berth vm start` until the engine answers on the host socket), warm
//! `docker run --rm IMG true` through the VM and on native Berth, the `_ping`
//! round trip through the forwarder (what each API call pays for crossing into
//! the VM), QEMU's idle RSS and the guest image's size; then what the VM keeps
//! (QEMU's RSS and PSS idle, at a 600 MB workload's peak and 60 s after it, its
//! CPU awake-idle and paused, the wake from an idle pause, the data disk's file
//! after 500 MB written and removed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, Options};

const BOOTS: usize = 3;
const QUICK_BOOTS: usize = 1;
const RUNS: usize = 10;
const QUICK_RUNS: usize = 3;
const PINGS: usize = 50;

/// `berth` on a scratch `BERTH_HOME`; stops its VM on drop.
pub(super) struct BerthVm {
    bin: PathBuf,
    dir: Scratch,
}

impl BerthVm {
    /// A VM with these `vm` settings over TCG, 2 vCPUs, 1 GiB and the built
    /// image, not started yet.
    pub(super) fn new(label: &str, extra: serde_json::Value) -> anyhow::Result<BerthVm> {
        let target = crate::proc::target_dir();
        let dir = Scratch::new(label)?;
        std::fs::create_dir_all(dir.join("config"))?;
        let mut vm = serde_json::json!({
            "accel": "tcg", "transport": "hybrid", "cpus": 2, "memoryMib": 1024,
            "diskGib": 8, "imageDir": target.join("vm-image/x86_64"),
        });
        if let (Some(base), Some(extra)) = (vm.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        std::fs::write(
            dir.join("config/settings.json"),
            serde_json::to_vec(&serde_json::json!({ "vm": vm }))?,
        )?;
        Ok(BerthVm {
            bin: target.join("release/berth"),
            dir,
        })
    }

    pub(super) fn start(&self) -> anyhow::Result<()> {
        self.run(&["vm", "start", "--timeout", "300"]).map(drop)
    }

    /// `docker …` through the VM; stdout.
    pub(super) fn docker_out(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("BERTH_HOME", self.dir.join("home"))
            .env("BERTH_CONFIG_DIR", self.dir.join("config"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.cmd(args).output()?;
        if !out.status.success() {
            bail!(
                "berth {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("home/run/docker.sock")
    }

    pub(super) fn docker(&self, args: &[&str]) -> Result<(), String> {
        self.docker_out(args).map(drop)
    }

    fn qemu_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("home/vm/qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for BerthVm {
    fn drop(&mut self) {
        let _ = self.cmd(&["vm", "stop"]).output();
    }
}

/// A `Field:   N kB` line of a `/proc/PID/…` file, in MB.
fn proc_mb(pid: u32, file: &str, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn rss_mb(pid: u32) -> Option<f64> {
    proc_mb(pid, "status", "VmRSS:")
}

/// QEMU's proportional share of memory.
fn pss_mb(pid: u32) -> Option<f64> {
    proc_mb(pid, "smaps_rollup", "Pss:")
}

/// A process's CPU time (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// QEMU's CPU use over `over`, in percent of one core.
fn cpu_percent(pid: u32, over: Duration) -> Option<f64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let a = cpu_ticks(pid)?;
    std::thread::sleep(over);
    let b = cpu_ticks(pid)?;
    Some((b - a) as f64 / hz / over.as_secs_f64() * 100.0)
}

/// Whether the supervisor has paused the idle VM (its state file; `berth vm
/// status` would ping the engine, which counts as activity).
fn paused(vm: &BerthVm) -> bool {
    std::fs::read_to_string(vm.dir.join("home/vm/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|s| s["pausedSince"].is_u64())
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// What the VM keeps and costs when idle, in rows.
struct Footprint {
    rss_idle: Samples,
    pss_idle: Samples,
    rss_peak: Samples,
    rss_after: Samples,
    pss_after: Samples,
    cpu_awake: Samples,
    cpu_paused: Samples,
    wake_ms: Samples,
    disk_full: Samples,
    disk_after: Samples,
}

const WAKES: usize = 5;

fn footprint(vm: &BerthVm, image: &str) -> anyhow::Result<Footprint> {
    let pid = vm.qemu_pid().context("no QEMU pid")?;
    let one = |v: Option<f64>, what: &str| v.map(|v| vec![v]).ok_or_else(|| what.to_string());
    let rss_idle = one(rss_mb(pid), "no RSS");
    let pss_idle = one(pss_mb(pid), "no PSS");
    // Awake and idle: right after a request, inside the idle window.
    vm.docker(&["version"]).map_err(anyhow::Error::msg)?;
    let cpu_awake = one(cpu_percent(pid, Duration::from_secs(4)), "no CPU time");

    println!("  600 MB workload in the guest");
    vm.docker(&[
        "run",
        "--name",
        "big",
        image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1M count=600 2>/dev/null && sync && cat /big >/dev/null",
    ])
    .map_err(anyhow::Error::msg)?;
    let rss_peak = one(rss_mb(pid), "no RSS");
    vm.docker(&["rm", "big"]).map_err(anyhow::Error::msg)?;
    std::thread::sleep(Duration::from_secs(60));
    let rss_after = one(rss_mb(pid), "no RSS");
    let pss_after = one(pss_mb(pid), "no PSS");

    println!("  500 MB written into a volume and removed");
    let disk = vm.dir.join("home/vm/data.qcow2");
    let allocated = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&disk).map(|m| m.blocks() as f64 * 512.0 / 1e6)
    };
    vm.docker(&[
        "run",
        "--rm",
        "-v",
        "big:/data",
        image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/big bs=1M count=500 2>/dev/null && sync",
    ])
    .map_err(anyhow::Error::msg)?;
    let disk_full = allocated().map(|v| vec![v]).map_err(|e| e.to_string());
    vm.docker(&["volume", "rm", "big"])
        .map_err(anyhow::Error::msg)?;
    // The idle engine trims within half a minute or so; then the VM pauses.
    let mut wake_ms = Vec::new();
    let never = "the VM did not pause within 60 s".to_string();
    let mut cpu_paused = Err(never.clone());
    for i in 0..WAKES {
        check_interrupted()?;
        if !wait_until(Duration::from_secs(60), || paused(vm)) {
            break;
        }
        if i == 0 {
            cpu_paused = one(cpu_percent(pid, Duration::from_secs(4)), "no CPU time");
        }
        let t = time_pings(&vm.socket(), 1);
        match t {
            Ok(v) => wake_ms.extend(v),
            Err(e) => bail!("waking the VM: {e}"),
        }
    }
    let disk_after = allocated().map(|v| vec![v]).map_err(|e| e.to_string());
    let wake_ms = if wake_ms.is_empty() {
        Err(never)
    } else {
        Ok(wake_ms)
    };
    Ok(Footprint {
        rss_idle,
        pss_idle,
        rss_peak,
        rss_after,
        pss_after,
        cpu_awake,
        cpu_paused,
        wake_ms,
        disk_full,
        disk_after,
    })
}

fn time_runs(
    name: &str,
    runs: usize,
    mut docker: impl FnMut(&[&str]) -> Result<(), String>,
    image: &str,
) -> anyhow::Result<Samples> {
    let args = ["run", "--rm", "--network", "none", image, "true"];
    let mut samples = Vec::new();
    for i in 0..=runs {
        check_interrupted()?;
        let t = Instant::now();
        if let Err(e) = docker(&args) {
            return Ok(Err(format!("{name}: {e}")));
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  {name} run {i}/{runs}: {took:.3}s{}",
            if i == 0 { " (warm-up)" } else { "" }
        );
        if i > 0 {
            samples.push(took);
        }
    }
    Ok(Ok(samples))
}

/// `GET /_ping` round trips on fresh connections, in milliseconds.
fn time_pings(socket: &Path, n: usize) -> Samples {
    use std::io::{Read, Write};
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        if !buf.starts_with(b"HTTP/1.1 200") {
            return Err("ping failed".into());
        }
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(samples)
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let target = crate::proc::target_dir();
    let image_dir = target.join("vm-image/x86_64");
    let image_mb = ["vmlinux.zst", "initramfs.img"]
        .iter()
        .map(|f| std::fs::metadata(image_dir.join(f)).map(|m| m.len()))
        .sum::<Result<u64, _>>()
        .context("no VM image (cargo xtask vm-image)")? as f64
        / 1e6;
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let guest_reg = registry.addr.replace("127.0.0.1", "10.0.2.2");
    let guest_image = image.replace("127.0.0.1", "10.0.2.2");

    let vm = BerthVm::new(
        "vm",
        serde_json::json!({ "insecureRegistries": [guest_reg] }),
    )?;

    let boots = if opts.quick { QUICK_BOOTS } else { BOOTS };
    let mut boot = Vec::new();
    for i in 0..boots {
        check_interrupted()?;
        let t = Instant::now();
        vm.run(&["vm", "start", "--timeout", "300"])?;
        let took = t.elapsed().as_secs_f64();
        println!("  cold boot {}/{boots}: {took:.2}s", i + 1);
        boot.push(took);
        if i + 1 < boots {
            vm.run(&["vm", "stop"])?;
        }
    }
    // Idle: let the guest settle, then read QEMU's resident memory.
    std::thread::sleep(Duration::from_secs(5));
    let rss = vm
        .qemu_pid()
        .and_then(rss_mb)
        .map(|v| vec![v])
        .ok_or_else(|| "no QEMU pid".to_string());
    let pings = time_pings(&vm.socket(), PINGS);
    let runs = if opts.quick { QUICK_RUNS } else { RUNS };
    vm.docker(&["pull", "-q", &guest_image])
        .map_err(|e| anyhow::anyhow!("pull in the VM: {e}"))?;
    let through_vm = time_runs("VM", runs, |a| vm.docker(a), &guest_image)?;
    drop(vm);
    // Idle pause is off with hybrid vsock (its link stalls after repeated
    // stop/cont), so the footprint is measured on a VM with the serial mux.
    let idle_vm = BerthVm::new(
        "vm-idle",
        serde_json::json!({
            "transport": "serial", "insecureRegistries": [guest_reg], "idlePauseSeconds": 10,
        }),
    )?;
    idle_vm.start()?;
    idle_vm
        .docker(&["pull", "-q", &guest_image])
        .map_err(|e| anyhow::anyhow!("pull in the VM: {e}"))?;
    // A run before measuring, as on the first VM.
    time_runs("VM (serial)", 1, |a| idle_vm.docker(a), &guest_image)?
        .map_err(anyhow::Error::msg)?;
    let fp = footprint(&idle_vm, &guest_image)?;
    drop(idle_vm);

    let native = Engine::berth(&opts.berth_bin)?;
    native
        .docker(&["pull", "-q", &image])
        .map_err(|e| anyhow::anyhow!("pull natively: {e}"))?;
    let native_runs = time_runs("native", runs, |a| native.docker(a), &image)?;
    drop(native);

    let median = |s: &Samples| {
        s.as_ref()
            .ok()
            .and_then(|v| super::report::percentile(v, 0.5))
    };
    if let (Some(v), Some(n)) = (median(&through_vm), median(&native_runs)) {
        report.notes.push(format!(
            "vm: under TCG the VM's `docker run` is {:.0} ms slower than native; nearly all \
             of it is emulated guest CPU, not forwarding: each API call crosses the \
             forwarder once, and a `_ping` round trip through it costs the median below \
             (a `docker run --rm` makes about 6 calls)",
            (v - n) * 1000.0
        ));
    }
    report.notes.push(format!(
        "vm: QEMU TCG, 2 vCPUs, 1 GiB, hybrid vsock through vhost-device-vsock; {boots} cold \
         boot(s) (`berth vm start` until `_ping` answers on the host socket); {PINGS} pings; \
         {runs} timed runs after a warm-up on each path. Targets: boot ≤ 6 s (TCG), image ≤ 40 MB, \
         forwarding ≤ 5 ms per `docker run`"
    ));
    report.notes.push(format!(
        "vm: footprint on a second VM with the serial transport (idle pause is off with \
         hybrid vsock) and idlePauseSeconds = 10: QEMU's memory idle, at the peak of a \
         container that wrote and read 600 MB, and 60 s after it was removed (free-page \
         reporting and the idle cache drop); QEMU's CPU while idle-awake and while paused \
         (4 s each); {WAKES} wakes from an idle pause, each a `_ping` on a fresh connection \
         (QMP `cont`, clock step, then the request; target ≤ 100 ms, Docker Desktop's \
         Resource Saver takes 3–10 s); the data disk's file after 500 MB written into a \
         volume and after it was removed and the idle engine trimmed"
    ));
    let none = || Ok(Vec::new());
    let rows = [
        ("VM cold boot → engine ready (TCG)", "s", 2, Ok(boot)),
        (
            "`docker run --rm … true` through the VM",
            "s",
            3,
            through_vm,
        ),
        (
            "`docker run --rm … true` on native Berth",
            "s",
            3,
            native_runs,
        ),
        (
            "`GET /_ping` through the host socket into the VM",
            "ms",
            2,
            pings,
        ),
        ("QEMU RSS, idle", "MB", 0, rss),
        (
            "QEMU RSS, idle after a pull and a run (serial)",
            "MB",
            0,
            fp.rss_idle,
        ),
        (
            "QEMU PSS, idle after a pull and a run (serial)",
            "MB",
            0,
            fp.pss_idle,
        ),
        ("QEMU RSS at a 600 MB workload's peak", "MB", 0, fp.rss_peak),
        ("QEMU RSS 60 s after it was removed", "MB", 0, fp.rss_after),
        ("QEMU PSS 60 s after it was removed", "MB", 0, fp.pss_after),
        ("QEMU CPU, idle and awake", "% core", 1, fp.cpu_awake),
        ("QEMU CPU, paused while idle", "% core", 1, fp.cpu_paused),
        (
            "wake from idle pause → `_ping` answered",
            "ms",
            1,
            fp.wake_ms,
        ),
        ("data disk file after 500 MB written", "MB", 0, fp.disk_full),
        (
            "data disk file after it was removed",
            "MB",
            0,
            fp.disk_after,
        ),
        (
            "guest image (kernel + initramfs)",
            "MB",
            1,
            Ok(vec![image_mb]),
        ),
    ];
    for (metric, unit, decimals, berth) in rows {
        report.rows.push(Row {
            metric: metric.into(),
            unit,
            decimals,
            better: Better::Lower,
            berth,
            dockerd: none(),
        });
    }
    Ok(())
}
