//! `cargo xtask bench [GROUP…] [--quick]`: Berth next to Debian's dockerd, measured in the
//! same run on the same inputs through the stock `docker` CLI, reported as one Markdown
//! table in `target/bench/report.md`. Each issue adds its group to `GROUPS`.

mod app;
mod build;
mod compose;
pub(crate) mod engine;
mod fs;
mod net;
mod oci;
mod pull;
mod registry;
mod report;
mod rounds;
mod run;
pub(crate) mod scratch;
mod vm;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::bail;

use crate::deps;
use crate::proc::{cargo, human, run, step, target_dir, workspace_root};
use report::Report;

pub struct Options {
    pub iterations: usize,
    /// `--quick`: groups that size their own inputs pick the smaller ones.
    pub quick: bool,
    pub berth_bin: PathBuf,
}

struct Group {
    name: &'static str,
    about: &'static str,
    run: fn(&Options, &mut Report) -> anyhow::Result<()>,
}

/// Every bench group, in the order `cargo xtask bench` runs them.
const GROUPS: &[Group] = &[
    Group {
        name: "pull",
        about: "`docker pull` of fresh 56 MB images from a local registry; idle RSS",
        run: pull::bench,
    },
    Group {
        name: "run",
        about: "`docker run --rm` of a busybox `true`; `docker ps` with 500 created containers",
        run: run::bench,
    },
    Group {
        name: "net",
        about: "throughput and latency through a published port, next to direct loopback",
        run: net::bench,
    },
    Group {
        name: "build",
        about:
            "`docker build` (classic) and `docker buildx build` (BuildKit), cold and fully cached",
        run: build::bench,
    },
    Group {
        name: "compose",
        about: "`docker compose up -d --wait` and `down` of 5 health-gated services (Compose v2)",
        run: compose::bench,
    },
    Group {
        name: "vm",
        about:
            "the VM path: cold boot, `docker run` through the VM vs native, forwarding, QEMU RSS",
        run: vm::bench,
    },
    Group {
        name: "app",
        about: "the desktop app: binary size, cold start to first paint, RSS with 100 containers",
        run: app::bench,
    },
    Group {
        name: "fs",
        about: "host folders through the VM (virtio-fs, 9p) vs a volume in the VM and the host",
        run: fs::bench,
    },
];

const ITERATIONS: usize = 10;
const QUICK_ITERATIONS: usize = 3;

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask bench [GROUP…] [--quick]\n\ngroups:\n");
    for g in GROUPS {
        s.push_str(&format!("  {:<8} {}\n", g.name, g.about));
    }
    s.push_str(&format!(
        "\n--quick runs {QUICK_ITERATIONS} iterations instead of {ITERATIONS}, and groups \
         with their own counts use smaller ones (see the notes in the report)."
    ));
    s
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From here on Ctrl-C / SIGTERM only set a flag that the groups check between steps,
/// so every guard still runs and nothing is left behind.
fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// Whether the user asked us to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once the user asked us to stop.
pub fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn bench(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut wanted: Vec<&str> = Vec::new();
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag:?}\n\n{}", usage()),
            name if GROUPS.iter().any(|g| g.name == name) => wanted.push(name),
            name => {
                let known: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
                bail!(
                    "unknown bench group {name:?}; known groups: {}",
                    known.join(", ")
                );
            }
        }
    }
    let started = Instant::now();
    std::env::set_current_dir(workspace_root())?;

    step("tools");
    deps::ensure_packages(deps::PACKAGES)?;
    deps::ensure_packages(deps::REFERENCE_PACKAGES)?;
    deps::ensure_docker_cli()?;

    step("build berth-agent and berth (release)");
    run(cargo().args(["build", "--release", "-p", "berth-agent", "-p", "berth"]))?;
    if wanted.is_empty() || wanted.contains(&"app") {
        deps::ensure_packages(deps::DESKTOP_PACKAGES)?;
        // The blank-page reference: WebKitGTK through PyGObject.
        deps::ensure_packages(&["python3-gi", "gir1.2-webkit2-4.1"])?;
        step("desktop app (release)");
        deps::build_frontend(false)?;
        run(cargo().args(["build", "--release", "-p", "berth-desktop"]))?;
    }
    if wanted.is_empty() || wanted.contains(&"vm") || wanted.contains(&"fs") {
        deps::ensure_vhost_device_vsock()?;
        deps::ensure_virtiofsd()?;
        step("vm image");
        run(Command::new(std::env::current_exe()?).arg("vm-image"))?;
    }

    catch_interrupts();
    let opts = Options {
        iterations: if quick { QUICK_ITERATIONS } else { ITERATIONS },
        quick,
        berth_bin: target_dir().join("release/berth-agent"),
    };
    let mut report = Report::default();
    report.notes.push(format!(
        "{} iterations{}; {}",
        opts.iterations,
        if quick { " (--quick)" } else { "" },
        machine()
    ));
    for g in GROUPS {
        if !wanted.is_empty() && !wanted.contains(&g.name) {
            continue;
        }
        step(&format!("bench {}", g.name));
        if let Err(e) = (g.run)(&opts, &mut report) {
            report.failures.push(format!("group {}: {e:#}", g.name));
            if INTERRUPTED.load(Ordering::SeqCst) {
                break;
            }
        }
    }

    let out = target_dir().join("bench/report.md");
    report.write(&out)?;
    step("report");
    println!("{}", report.markdown());
    println!(
        "written to {} in {}",
        out.display(),
        human(started.elapsed())
    );
    check_interrupted()?;
    let errors = report.error_count();
    if errors > 0 {
        bail!("the report has {errors} error(s); see the list under the table");
    }
    Ok(())
}

/// CPUs, kernel, and the versions of what is compared.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| format!("{cmd} ?"))
    };
    // Every first move of a process into a cgroup waits for an RCU grace period
    // (10–40 ms here) unless some cgroup hierarchy is mounted with `favordynmods` (as
    // Berth's VM mounts cgroup2, and kernels built with CONFIG_CGROUP_FAVOR_DYNMODS
    // do): it decides much of what a container start costs on either engine, so the
    // report says which way the host is.
    let favordynmods = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" cgroup") && l.contains("favordynmods"));
    format!(
        "{cpus} CPUs, Linux {} (cgroup `favordynmods` {}); {}; {}",
        kernel.trim(),
        if favordynmods { "on" } else { "off" },
        version(engine::DOCKERD, "--version").replace("Docker version", "dockerd"),
        version("docker", "--version").replace("Docker version", "docker CLI"),
    )
}
