//! The `build` group: a 10-step Dockerfile on the busybox image, built with
//! `--no-cache` (cold) and again unchanged (every step cached), through the stock CLI
//! with the classic builder (`DOCKER_BUILDKIT=0`); and a multi-stage Dockerfile the
//! same two ways through `docker buildx build` (BuildKit: Berth's BuildKit API, and
//! dockerd's built-in BuildKit), on Berth and on dockerd.

use std::time::Instant;

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::rounds::interleaved;
use super::scratch::Scratch;
use super::Options;

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

/// Two stages feeding a third: what `docker buildx build` users write.
const MULTI_STAGE: &str = "FROM {image} AS deps
WORKDIR /deps
COPY dir/ ./dir/
RUN cat dir/* > all.txt
FROM {image} AS build
ARG MODE=release
WORKDIR /src
COPY a.txt ./
RUN echo $MODE > mode.txt && cat a.txt mode.txt > out.txt
FROM {image}
ENV APP=/app
WORKDIR /app
COPY --from=deps /deps/all.txt ./
COPY --from=build /src/out.txt ./
RUN cat all.txt out.txt > both.txt
LABEL bench=buildkit
CMD [\"cat\", \"/app/both.txt\"]
";

fn context(image: &str) -> anyhow::Result<Scratch> {
    let dir = Scratch::new("build-ctx")?;
    std::fs::write(dir.join("Dockerfile"), format!("FROM {image}\n{STEPS}"))?;
    std::fs::write(
        dir.join("Dockerfile.multi"),
        MULTI_STAGE.replace("{image}", image),
    )?;
    std::fs::write(dir.join("a.txt"), "a\n")?;
    std::fs::create_dir_all(dir.join("dir"))?;
    for i in 0..20 {
        std::fs::write(dir.join(format!("dir/f{i}")), format!("{i}\n"))?;
    }
    Ok(dir)
}

/// How a build is run: the classic builder, or BuildKit through buildx.
#[derive(Clone, Copy, PartialEq)]
enum Builder {
    Classic,
    BuildKit,
}

/// The CLI arguments (and environment) of one build of the bench's context.
fn build_args(
    dir: &str,
    no_cache: bool,
    builder: Builder,
) -> (Vec<&str>, &'static [(&'static str, &'static str)]) {
    let (mut args, env): (Vec<&str>, &'static [(&'static str, &'static str)]) = match builder {
        Builder::Classic => (
            vec!["build", "-q", "-t", "bench-build:1"],
            &[("DOCKER_BUILDKIT", "0")],
        ),
        Builder::BuildKit => (
            vec![
                "buildx",
                "build",
                "-q",
                "--load",
                // The bench's dockerd has no bridge network (`-b none`); RUN
                // steps need none, on either engine.
                "--network=none",
                "-f",
                "Dockerfile.multi",
                "-t",
                "bench-build:2",
            ],
            &[],
        ),
    };
    if no_cache {
        args.push("--no-cache");
    }
    args.push(dir);
    (args, env)
}

/// Times `n` builds (after a warm-up) on each engine, the engines taking turns.
fn time_builds(
    engines: &[&Result<Engine, String>],
    ctx: &Scratch,
    n: usize,
    no_cache: bool,
    builder: Builder,
) -> anyhow::Result<Vec<Samples>> {
    let path = ctx.join("");
    let dir = path.to_string_lossy().to_string();
    let (args, env) = build_args(&dir, no_cache, builder);
    let what = match builder {
        Builder::Classic => "build",
        Builder::BuildKit => "buildx build",
    };
    // The first cached build may still fill the cache; the first cold one warms up.
    interleaved(engines, n, |engine, i| {
        let t = Instant::now();
        // buildx reads the Dockerfile path relative to where it runs.
        if let Err(e) = engine.docker_env_in(&args, env, &path) {
            println!("  {} {what} failed: {e}{}", engine.name, engine.log_tail());
            return Err(e);
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  {} {what}{} {i}/{n}: {took:.3}s",
            engine.name,
            if no_cache { " --no-cache" } else { " (cached)" }
        );
        Ok(took)
    })
}

struct Measured {
    cold: Samples,
    cached: Samples,
    buildkit_cold: Samples,
    buildkit_cached: Samples,
    /// `docker buildx version`: the CLI and the buildx plugin starting, with no
    /// engine involved.
    buildx_start: Samples,
}

/// How long the buildx client takes to start and stop on its own, as every build
/// through it does before and after the engine's part (no engine is involved).
fn time_buildx_start(
    engines: &[&Result<Engine, String>],
    n: usize,
) -> anyhow::Result<Vec<Samples>> {
    interleaved(engines, n, |engine, _| {
        let t = Instant::now();
        engine.docker_env_in(&["buildx", "version"], &[], std::path::Path::new("/"))?;
        Ok(t.elapsed().as_secs_f64())
    })
}

/// `samples` less the median of `floor`: the part of each build the engine decides.
fn less_median(samples: &Samples, floor: &Samples) -> Samples {
    let floor = floor.clone()?;
    let median = super::report::percentile(&floor, 0.5)
        .ok_or_else(|| "no buildx start times".to_string())?;
    super::report::less(samples, median)
}

/// Every series of the group on both engines (Berth's first), the engines running side
/// by side and taking turns.
fn measure(
    berth: anyhow::Result<Engine>,
    dockerd: anyhow::Result<Engine>,
    image: &str,
    ctx: &Scratch,
    n: usize,
    plugins: &std::path::Path,
) -> anyhow::Result<[Measured; 2]> {
    let berth = Engine::prepared(berth, image, plugins)?;
    let dockerd = Engine::prepared(dockerd, image, plugins)?;
    let engines = [&berth, &dockerd];
    let [cold, cached, buildkit_cold, buildkit_cached, buildx_start] = [
        time_builds(&engines, ctx, n, true, Builder::Classic)?,
        time_builds(&engines, ctx, n, false, Builder::Classic)?,
        time_builds(&engines, ctx, n, true, Builder::BuildKit)?,
        time_builds(&engines, ctx, n, false, Builder::BuildKit)?,
        time_buildx_start(&engines, n)?,
    ];
    let side = |k: usize| {
        let pick = |v: &[Samples]| {
            v.get(k)
                .cloned()
                .unwrap_or_else(|| Err("not measured".into()))
        };
        Measured {
            cold: pick(&cold),
            cached: pick(&cached),
            buildkit_cold: pick(&buildkit_cold),
            buildkit_cached: pick(&buildkit_cached),
            buildx_start: pick(&buildx_start),
        }
    };
    Ok([side(0), side(1)])
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let ctx = context(&image)?;
    let n = opts.iterations;
    let plugins = crate::plugins::ensure()?;
    let [berth, dockerd] = measure(
        Engine::berth(&opts.berth_bin),
        Engine::dockerd(&registry.addr),
        &image,
        &ctx,
        n,
        &plugins,
    )?;
    report.notes.push(format!(
        "build: FROM the busybox image plus 9 steps (ENV, WORKDIR, 2 COPY with 21 files, 2 RUN, \
         LABEL, EXPOSE, CMD), `docker build -q` with DOCKER_BUILDKIT=0 (the classic builder \
         on both), {n} timed builds after a warm-up each: with `--no-cache`, then unchanged \
         (every step cached). BuildKit: a 3-stage Dockerfile (2 stages feeding the last \
         through COPY --from, 5 COPY, 3 RUN), `docker buildx build -q --load --network=none` with buildx \
         0.13 (Berth's BuildKit API; dockerd's built-in BuildKit), the same way; both \
         engines run side by side and take turns, build by build"
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
    report.rows.push(Row {
        metric: "`docker buildx build --no-cache` of a 3-stage Dockerfile (BuildKit)".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.buildkit_cold.clone(),
        dockerd: dockerd.buildkit_cold.clone(),
    });
    report.rows.push(Row {
        metric: "`docker buildx build` of the same, all steps cached (BuildKit)".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.buildkit_cached.clone(),
        dockerd: dockerd.buildkit_cached.clone(),
    });
    // The buildx client's own start is in both engines' times and no engine can cut
    // it; these rows leave it out (each engine's run measures it for itself).
    report.rows.push(Row {
        metric: "`docker buildx build --no-cache`, less the buildx client's own start \
                 (median `docker buildx version`)"
            .into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: less_median(&berth.buildkit_cold, &berth.buildx_start),
        dockerd: less_median(&dockerd.buildkit_cold, &dockerd.buildx_start),
    });
    report.rows.push(Row {
        metric: "`docker buildx build` all cached, less the same".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: less_median(&berth.buildkit_cached, &berth.buildx_start),
        dockerd: less_median(&dockerd.buildkit_cached, &dockerd.buildx_start),
    });
    report.rows.push(Row {
        metric: "`docker buildx version` (the CLI and the buildx plugin starting; no engine)"
            .into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.buildx_start,
        dockerd: dockerd.buildx_start,
    });
    Ok(())
}
