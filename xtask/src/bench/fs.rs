//! The `fs` group: a host folder bind-mounted through the VM, per sharing
//! backend (virtio-fs, 9p), next to a named volume inside the VM and the same
//! workload on the host directly. Workloads: sequential write and read of one
//! file, and many small files (create, `ls -l`, read back) — the pattern of a
//! source tree, where shared folders are slowest.
//!
//! Each phase runs as one `docker exec` in a long-lived container and is timed
//! on the host; the median of empty `docker exec … true` round trips is
//! subtracted, so what remains is the work itself.

use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use super::registry::Registry;
use super::report::{percentile, Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::vm::BerthVm;
use super::{check_interrupted, Options};

struct Sizes {
    files: usize,
    mb: usize,
    rounds: usize,
}

/// The phases, as busybox `sh` scripts over `$D`.
fn phases(s: &Sizes) -> [(&'static str, String); 3] {
    [
        (
            "write",
            format!("dd if=/dev/zero of=\"$D/big\" bs=1048576 count={} conv=fsync 2>/dev/null", s.mb),
        ),
        ("read", "cat \"$D/big\" > /dev/null && rm \"$D/big\"".into()),
        (
            "small",
            format!(
                "mkdir \"$D/many\" && cd \"$D/many\" && i=0 && while [ $i -lt {} ]; do echo $i > f$i; i=$((i+1)); done \
                 && ls -l > /dev/null && cat * > /dev/null && cd / && rm -rf \"$D/many\"",
                s.files
            ),
        ),
    ]
}

/// Seconds per phase, `rounds` times: (write, read, small).
type Timings = [Vec<f64>; 3];

fn measure(
    s: &Sizes,
    baseline: f64,
    mut run: impl FnMut(&str) -> Result<(), String>,
) -> Result<Timings, String> {
    let mut out: Timings = Default::default();
    for _ in 0..s.rounds {
        for (i, (_, script)) in phases(s).iter().enumerate() {
            let t = Instant::now();
            run(script)?;
            out[i].push((t.elapsed().as_secs_f64() - baseline).max(0.0));
        }
    }
    Ok(out)
}

fn on_host(s: &Sizes) -> anyhow::Result<Timings> {
    let dir = Scratch::new("fs-host")?;
    measure(s, 0.0, |script| {
        let out = Command::new("sh")
            .args(["-c", script])
            .env("D", dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .map_err(|e| anyhow::anyhow!("on the host: {e}"))
}

/// One VM with `fs` sharing `folder`; the workload in a volume and in the bind mount.
fn in_vm(s: &Sizes, fs: &str, image: &str, guest_reg: &str) -> anyhow::Result<(Timings, Timings)> {
    let folder = Scratch::new(&format!("fs-share-{fs}"))?;
    let vm = BerthVm::new(
        &format!("fs-{fs}"),
        serde_json::json!({
            "insecureRegistries": [guest_reg],
            "fileSharing": fs,
            "sharedFolders": [{"path": folder.path()}],
        }),
    )?;
    vm.start()?;
    vm.docker(&["pull", "-q", image])
        .map_err(|e| anyhow::anyhow!("pull in the VM: {e}"))?;
    let bind = format!("{}:/bind", folder.path().display());
    vm.docker(&[
        "run",
        "-d",
        "--name",
        "fsbench",
        "-v",
        "fsbench-vol:/vol",
        "-v",
        &bind,
        image,
        "sleep",
        "100000",
    ])
    .map_err(|e| anyhow::anyhow!("starting the bench container: {e}"))?;
    let mut empty = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        vm.docker(&["exec", "fsbench", "true"])
            .map_err(|e| anyhow::anyhow!("docker exec: {e}"))?;
        empty.push(t.elapsed().as_secs_f64());
    }
    let baseline = percentile(&empty, 0.5).unwrap_or(0.0);
    let vm = &vm;
    let exec = |dir: &'static str| {
        move |script: &str| {
            vm.docker(&[
                "exec",
                "-e",
                &format!("D={dir}"),
                "fsbench",
                "sh",
                "-c",
                script,
            ])
        }
    };
    check_interrupted()?;
    let volume = measure(s, baseline, exec("/vol")).map_err(|e| anyhow::anyhow!("volume: {e}"))?;
    check_interrupted()?;
    let bind =
        measure(s, baseline, exec("/bind")).map_err(|e| anyhow::anyhow!("{fs} bind: {e}"))?;
    let _ = vm.docker(&["rm", "-f", "fsbench"]);
    Ok((volume, bind))
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let s = if opts.quick {
        // 500 files: under TCG the two bind mounts took 1.5 of the quick run's ~7
        // minutes with 2,000, and --quick has to fit in 5.
        Sizes {
            files: 500,
            mb: 32,
            rounds: 1,
        }
    } else {
        Sizes {
            files: 10_000,
            mb: 128,
            rounds: 3,
        }
    };
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let guest_reg = registry.addr.replace("127.0.0.1", "10.0.2.2");
    let guest_image = image.replace("127.0.0.1", "10.0.2.2");

    let host = on_host(&s)?;
    let mut targets: Vec<(String, Result<Timings, String>)> =
        vec![("host directory (no VM)".into(), Ok(host))];
    let mut volume_done = false;
    for fs in ["virtiofs", "9p"] {
        check_interrupted()?;
        match in_vm(&s, fs, &guest_image, &guest_reg).with_context(|| format!("{fs} VM")) {
            Ok((volume, bind)) => {
                if !volume_done {
                    targets.push(("named volume in the VM".into(), Ok(volume)));
                    volume_done = true;
                }
                targets.push((format!("{fs} bind mount"), Ok(bind)));
            }
            Err(e) => targets.push((format!("{fs} bind mount"), Err(format!("{e:#}")))),
        }
    }

    let median = |t: &Result<Timings, String>, i: usize| {
        t.as_ref().ok().and_then(|t| percentile(&t[i], 0.5))
    };
    let host_small = median(&targets[0].1, 2);
    let volume_small = targets
        .iter()
        .find(|(n, _)| n.starts_with("named volume"))
        .and_then(|(_, t)| median(t, 2));
    for (name, t) in &targets {
        if let (Some(b), Some(h), Some(v)) = (median(t, 2), host_small, volume_small) {
            if name.ends_with("bind mount") {
                report.notes.push(format!(
                    "fs: {name}, small files: {:.1}× the host, {:.1}× the VM's own volume \
                     (target: within 3× of the host; under TCG every guest instruction is \
                     emulated, so the volume ratio is the one that isolates the sharing device)",
                    b / h,
                    b / v
                ));
            }
        }
    }
    report.notes.push(format!(
        "fs: {} file(s) of {} MB written with dd conv=fsync and read back, and {} small files \
         created, listed with `ls -l` and read back, {} round(s) per target; each phase is one \
         `docker exec`, timed on the host minus an empty exec's median",
        1, s.mb, s.files, s.rounds
    ));
    for (name, t) in targets {
        let rate = |i: usize| -> Samples {
            t.clone().map(|t| {
                t[i].iter()
                    .map(|secs| s.mb as f64 / secs.max(1e-6))
                    .collect()
            })
        };
        let secs = |i: usize| -> Samples { t.clone().map(|t| t[i].clone()) };
        for (metric, unit, better, samples) in [
            ("sequential write", "MB/s", Better::Higher, rate(0)),
            ("sequential read", "MB/s", Better::Higher, rate(1)),
            ("small files", "s", Better::Lower, secs(2)),
        ] {
            report.rows.push(Row {
                metric: format!("fs {metric}: {name}"),
                unit,
                decimals: if unit == "s" { 2 } else { 0 },
                better,
                berth: samples,
                dockerd: Ok(Vec::new()),
            });
        }
    }
    Ok(())
}
