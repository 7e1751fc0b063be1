//! The `build` group: a 10-step Dockerfile on the busybox image, built with
//! `--no-cache` (cold) and again unchanged (every step cached), through the stock CLI
//! with the classic builder (`DOCKER_BUILDKIT=0`), on Berth and on dockerd.

use std::time::Instant;

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, Options};

const STEPS: &str = "ENV APP=/app MODE=bench
WORKDIR /app
COPY a.txt ./
COPY dir/ ./dir/
RUN echo one > one.txt
RUN cat a.txt one.txt > both.txt
LABEL bench=build
EXPOSE 8080
CMD [\"cat\", \"/app/both.txt\"]
";

fn context(image: &str) -> anyhow::Result<Scratch> {
    let dir = Scratch::new("build-ctx")?;
    std::fs::write(dir.join("Dockerfile"), format!("FROM {image}\n{STEPS}"))?;
    std::fs::write(dir.join("a.txt"), "a\n")?;
    std::fs::create_dir_all(dir.join("dir"))?;
    for i in 0..20 {
        std::fs::write(dir.join(format!("dir/f{i}")), format!("{i}\n"))?;
    }
    Ok(dir)
}

fn time_builds(
    engine: &Engine,
    ctx: &Scratch,
    n: usize,
    no_cache: bool,
) -> anyhow::Result<Samples> {
    let path = ctx.join("");
    let dir = path.to_string_lossy().to_string();
    let mut args = vec!["build", "-q", "-t", "bench-build:1"];
    if no_cache {
        args.push("--no-cache");
    }
    args.push(&dir);
    let mut out = Vec::new();
    for i in 0..=n {
        check_interrupted()?;
        let t = Instant::now();
        if let Err(e) = engine.docker_env(&args, &[("DOCKER_BUILDKIT", "0")]) {
            println!("  {} build failed: {e}{}", engine.name, engine.log_tail());
            return Ok(Err(e));
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  {} build{} {i}/{n}: {took:.3}s",
            engine.name,
            if no_cache { " --no-cache" } else { " (cached)" }
        );
        // The first cached build may still fill the cache; the first cold one warms up.
        if i > 0 {
            out.push(took);
        }
    }
    Ok(Ok(out))
}

struct Measured {
    cold: Samples,
    cached: Samples,
}

fn measure(
    engine: anyhow::Result<Engine>,
    image: &str,
    ctx: &Scratch,
    n: usize,
) -> anyhow::Result<Measured> {
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            let why = format!("could not start: {e:#}");
            return Ok(Measured {
                cold: Err(why.clone()),
                cached: Err(why),
            });
        }
    };
    if let Err(e) = engine.docker(&["pull", "-q", image]) {
        return Ok(Measured {
            cold: Err(e.clone()),
            cached: Err(e),
        });
    }
    let cold = time_builds(&engine, ctx, n, true)?;
    let cached = time_builds(&engine, ctx, n, false)?;
    Ok(Measured { cold, cached })
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let ctx = context(&image)?;
    let n = opts.iterations;
    let berth = measure(Engine::berth(&opts.berth_bin), &image, &ctx, n)?;
    let dockerd = measure(Engine::dockerd(&registry.addr), &image, &ctx, n)?;
    report.notes.push(format!(
        "build: FROM the busybox image plus 9 steps (ENV, WORKDIR, 2 COPY with 21 files, 2 RUN, \
         LABEL, EXPOSE, CMD), `docker build -q` with DOCKER_BUILDKIT=0 (the classic builder \
         on both), {n} timed builds after a warm-up each: with `--no-cache`, then unchanged \
         (every step cached)"
    ));
    report.rows.push(Row {
        metric: "`docker build --no-cache` of a 10-step Dockerfile".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.cold,
        dockerd: dockerd.cold,
    });
    report.rows.push(Row {
        metric: "`docker build` of the same, all steps cached".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.cached,
        dockerd: dockerd.cached,
    });
    Ok(())
}
