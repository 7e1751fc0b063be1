//! The `run` group: `docker run --rm` of a tiny busybox image running `true`, and
//! `docker ps` / `docker ps -a` with many created (never started) containers present, on
//! each engine in turn, from one image pushed to a local registry.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::engine::Engine;
use super::oci;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, Options};

/// The static busybox (Debian's busybox-static) the image is made of.
const BUSYBOX: &str = "/bin/busybox";
const REPOSITORY: &str = "bench/busybox";
const TAG: &str = "1";
/// Timed `docker run`s per engine, after one warm-up.
const RUNS: usize = 20;
const QUICK_RUNS: usize = 5;
/// Containers present while `docker ps` is timed (the 500).
const CONTAINERS: usize = 500;
/// `docker create`s in flight at once while populating.
const CREATORS: usize = 8;
const QUICK_CONTAINERS: usize = 30;
/// Names per `docker rm` when cleaning up.
const RM_BATCH: usize = 25;
const NAME_PREFIX: &str = "berth-bench-ps-";
/// dockerd runs with `--bridge=none`, so its default network does not exist; both
/// engines get the same flag for a fair comparison.
const NETWORK: [&str; 2] = ["--network", "none"];

struct Plan {
    image: String,
    runs: usize,
    containers: usize,
    ps_iterations: usize,
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let (image, compressed) = push_image(&registry)?;
    let plan = Plan {
        image,
        runs: if opts.quick { QUICK_RUNS } else { RUNS },
        containers: if opts.quick {
            QUICK_CONTAINERS
        } else {
            CONTAINERS
        },
        ps_iterations: opts.iterations,
    };
    let berth = measure(|| Engine::berth(&opts.berth_bin), &plan)?;
    let dockerd = measure(|| Engine::dockerd(&registry.addr), &plan)?;
    for (who, m) in [("Berth", &berth), ("dockerd", &dockerd)] {
        if let Some(e) = &m.cleanup {
            report.failures.push(format!("run: {who}: cleanup: {e}"));
        }
    }

    report.notes.push(format!(
        "run: {REPOSITORY}:{TAG} is one {:.0} kB gzip layer ({BUSYBOX} with bin/sh and \
         bin/true symlinks to it), `docker pull`ed from the local registry first; \
         {} timed `docker run --rm --network none IMG true` after one warm-up; then \
         {} containers from `docker create --network none IMG true` ({CREATORS} at a \
         time, never started), `docker ps` and `docker ps -a` timed {} times each, and \
         the containers removed with `docker rm`",
        compressed as f64 / 1000.0,
        plan.runs,
        plan.containers,
        plan.ps_iterations,
    ));
    report.rows.push(Row {
        metric: "`docker run --rm --network none` busybox `true`".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.run,
        dockerd: dockerd.run,
    });
    report.rows.push(Row {
        metric: format!(
            "`docker ps` with {} created containers (none running)",
            plan.containers
        ),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.ps,
        dockerd: dockerd.ps,
    });
    report.rows.push(Row {
        metric: format!(
            "`docker ps -a` listing {} created containers",
            plan.containers
        ),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.ps_all,
        dockerd: dockerd.ps_all,
    });
    Ok(())
}

/// Writes the busybox image and pushes it; returns its reference and compressed size.
pub(super) fn push_image(registry: &Registry) -> anyhow::Result<(String, u64)> {
    anyhow::ensure!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing (apt-get install busybox-static)"
    );
    let work = Scratch::new("busybox")?;
    let layout = work.join("layout");
    let compressed = oci::write_busybox_layout(&layout, TAG, Path::new(BUSYBOX))?;
    let name = format!("{}/{REPOSITORY}:{TAG}", registry.addr);
    oci::push(&layout, TAG, &name).context("pushing the busybox image")?;
    println!("pushed {name} ({compressed} bytes compressed)");
    Ok((name, compressed))
}

struct Measured {
    run: Samples,
    ps: Samples,
    ps_all: Samples,
    /// Why the created containers could not all be removed, if so.
    cleanup: Option<String>,
}

impl Measured {
    fn failed(why: String) -> Measured {
        Measured {
            run: Err(why.clone()),
            ps: Err(why.clone()),
            ps_all: Err(why),
            cleanup: None,
        }
    }
}

/// Starts one engine and measures it. An engine that fails to start, pull, run or list
/// becomes an error in its column; only an interruption fails the whole group.
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

    let run = time_runs(&engine, plan)?;
    let (ps, ps_all, cleanup) = match create_containers(&engine, plan)? {
        Err(e) => (Err(e.clone()), Err(e), remove_containers(&engine, plan)?),
        Ok(()) => {
            let ps = time_ps(&engine, &["ps"], plan.ps_iterations)?;
            let ps_all = time_ps(&engine, &["ps", "-a"], plan.ps_iterations)?;
            (ps, ps_all, remove_containers(&engine, plan)?)
        }
    };
    Ok(Measured {
        run,
        ps,
        ps_all,
        cleanup,
    })
}

/// One warm-up `docker run --rm`, then `plan.runs` timed ones.
fn time_runs(engine: &Engine, plan: &Plan) -> anyhow::Result<Samples> {
    let mut args = vec!["run", "--rm"];
    args.extend(NETWORK);
    args.extend([plan.image.as_str(), "true"]);
    let mut samples = Vec::new();
    for i in 0..=plan.runs {
        check_interrupted()?;
        let t = Instant::now();
        if let Err(e) = engine.docker(&args) {
            println!("  {} run failed: {e}{}", engine.name, engine.log_tail());
            return Ok(Err(e));
        }
        let took = t.elapsed().as_secs_f64();
        if i == 0 {
            println!("  {} run (warm-up): {took:.3}s", engine.name);
        } else {
            println!("  {} run {i}/{}: {took:.3}s", engine.name, plan.runs);
            samples.push(took);
        }
    }
    Ok(Ok(samples))
}

fn container_names(plan: &Plan) -> Vec<String> {
    (0..plan.containers)
        .map(|i| format!("{NAME_PREFIX}{i}"))
        .collect()
}

/// `docker create`s `plan.containers` containers, then checks `docker ps -aq` lists
/// exactly that many.
fn create_containers(engine: &Engine, plan: &Plan) -> anyhow::Result<Result<(), String>> {
    let t = Instant::now();
    let names = container_names(plan);
    let per = names.len().div_ceil(CREATORS).max(1);
    let failed = std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || -> anyhow::Result<Option<String>> {
                    for name in chunk {
                        check_interrupted()?;
                        let mut args = vec!["create", "--name", name.as_str()];
                        args.extend(NETWORK);
                        args.extend([plan.image.as_str(), "true"]);
                        if let Err(e) = engine.docker(&args) {
                            return Ok(Some(e));
                        }
                    }
                    Ok(None)
                })
            })
            .collect();
        let mut first = None;
        for w in workers {
            let r = w
                .join()
                .map_err(|_| anyhow::anyhow!("a create worker panicked"))?;
            if let (None, Some(e)) = (&first, r?) {
                first = Some(e);
            }
        }
        anyhow::Ok(first)
    })?;
    if let Some(e) = failed {
        println!("  {} create failed: {e}{}", engine.name, engine.log_tail());
        return Ok(Err(e));
    }
    println!(
        "  {} created {} containers in {:.1}s",
        engine.name,
        plan.containers,
        t.elapsed().as_secs_f64()
    );
    let listed = match engine.docker_stdout(&["ps", "-aq"]) {
        Ok(out) => out.lines().filter(|l| !l.trim().is_empty()).count(),
        Err(e) => return Ok(Err(e)),
    };
    if listed != plan.containers {
        let e = format!(
            "`docker ps -aq` lists {listed} containers after creating {}",
            plan.containers
        );
        println!("  {}: {e}", engine.name);
        return Ok(Err(e));
    }
    Ok(Ok(()))
}

/// One warm-up `docker ARGS…`, then `n` timed ones.
fn time_ps(engine: &Engine, args: &[&str], n: usize) -> anyhow::Result<Samples> {
    let mut samples = Vec::new();
    for i in 0..=n {
        check_interrupted()?;
        let t = Instant::now();
        if let Err(e) = engine.docker(args) {
            println!("  {} {} failed: {e}", engine.name, args.join(" "));
            return Ok(Err(e));
        }
        let took = t.elapsed().as_secs_f64();
        if i > 0 {
            println!("  {} {} {i}/{n}: {took:.3}s", engine.name, args.join(" "));
            samples.push(took);
        }
    }
    Ok(Ok(samples))
}

/// `docker rm` of the created containers in batches (those never created are skipped),
/// then checks nothing is left. Returns why not, if something is.
fn remove_containers(engine: &Engine, plan: &Plan) -> anyhow::Result<Option<String>> {
    let present = match engine.docker_stdout(&["ps", "-a", "--format", "{{.Names}}"]) {
        Ok(out) => out,
        Err(e) => return Ok(Some(e)),
    };
    let present: Vec<&str> = present.lines().map(str::trim).collect();
    let names: Vec<String> = container_names(plan)
        .into_iter()
        .filter(|n| present.contains(&n.as_str()))
        .collect();
    for batch in names.chunks(RM_BATCH) {
        check_interrupted()?;
        let mut args = vec!["rm"];
        args.extend(batch.iter().map(String::as_str));
        if let Err(e) = engine.docker(&args) {
            println!("  {} rm failed: {e}", engine.name);
            return Ok(Some(e));
        }
    }
    match engine.docker_stdout(&["ps", "-aq"]) {
        Ok(out) if out.trim().is_empty() => {
            println!("  {} removed {} containers", engine.name, names.len());
            Ok(None)
        }
        Ok(out) => {
            let e = format!(
                "{} containers left after `docker rm`",
                out.lines().filter(|l| !l.trim().is_empty()).count()
            );
            println!("  {}: {e}", engine.name);
            Ok(Some(e))
        }
        Err(e) => Ok(Some(e)),
    }
}
