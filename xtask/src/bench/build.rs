//! The `build` group: a 10-step Dockerfile on the busybox image, built with
//! `--no-cache` (cold) and again unchanged (every step cached), through the stock CLI
//! with the classic builder (`DOCKER_BUILDKIT=0`); and a multi-stage Dockerfile the
//! same two ways through `docker buildx build` (BuildKit: Berth's BuildKit API, and
//! dockerd's built-in BuildKit), on Berth and on dockerd.

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

fn time_builds(
    engine: &Engine,
    ctx: &Scratch,
    n: usize,
    no_cache: bool,
    builder: Builder,
) -> anyhow::Result<Samples> {
    let path = ctx.join("");
    let dir = path.to_string_lossy().to_string();
    let (mut args, env): (Vec<&str>, &[(&str, &str)]) = match builder {
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
    args.push(&dir);
    let what = match builder {
        Builder::Classic => "build",
        Builder::BuildKit => "buildx build",
    };
    let mut out = Vec::new();
    for i in 0..=n {
        check_interrupted()?;
        let t = Instant::now();
        // buildx reads the Dockerfile path relative to where it runs.
        if let Err(e) = engine.docker_env_in(&args, env, &path) {
            println!("  {} {what} failed: {e}{}", engine.name, engine.log_tail());
            return Ok(Err(e));
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  {} {what}{} {i}/{n}: {took:.3}s",
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
    buildkit_cold: Samples,
    buildkit_cached: Samples,
}

fn measure(
    engine: anyhow::Result<Engine>,
    image: &str,
    ctx: &Scratch,
    n: usize,
    plugins: &std::path::Path,
) -> anyhow::Result<Measured> {
    let failed = |why: String| Measured {
        cold: Err(why.clone()),
        cached: Err(why.clone()),
        buildkit_cold: Err(why.clone()),
        buildkit_cached: Err(why),
    };
    let engine = match Engine::prepared(engine, image, plugins)? {
        Ok(e) => e,
        Err(why) => return Ok(failed(why)),
    };
    Ok(Measured {
        cold: time_builds(&engine, ctx, n, true, Builder::Classic)?,
        cached: time_builds(&engine, ctx, n, false, Builder::Classic)?,
        buildkit_cold: time_builds(&engine, ctx, n, true, Builder::BuildKit)?,
        buildkit_cached: time_builds(&engine, ctx, n, false, Builder::BuildKit)?,
    })
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let ctx = context(&image)?;
    let n = opts.iterations;
    let plugins = crate::plugins::ensure()?;
    let berth = measure(Engine::berth(&opts.berth_bin), &image, &ctx, n, &plugins)?;
    let dockerd = measure(Engine::dockerd(&registry.addr), &image, &ctx, n, &plugins)?;
    report.notes.push(format!(
        "build: FROM the busybox image plus 9 steps (ENV, WORKDIR, 2 COPY with 21 files, 2 RUN, \
         LABEL, EXPOSE, CMD), `docker build -q` with DOCKER_BUILDKIT=0 (the classic builder \
         on both), {n} timed builds after a warm-up each: with `--no-cache`, then unchanged \
         (every step cached). BuildKit: a 3-stage Dockerfile (2 stages feeding the last \
         through COPY --from, 5 COPY, 3 RUN), `docker buildx build -q --load --network=none` with buildx \
         0.13 (Berth's BuildKit API; dockerd's built-in BuildKit), the same way"
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
        berth: berth.buildkit_cold,
        dockerd: dockerd.buildkit_cold,
    });
    report.rows.push(Row {
        metric: "`docker buildx build` of the same, all steps cached (BuildKit)".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.buildkit_cached,
        dockerd: dockerd.buildkit_cached,
    });
    Ok(())
}
