//! The `compose` group: `docker compose up -d --wait` and `docker compose down` of a
//! five-service project whose services gate each other on healthchecks (Compose v2,
//! the 2.26 CLI plugin), on Berth and on dockerd.

use std::time::Instant;

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, Options};

const PROJECT: &str = "benchcompose";

/// Five services, three levels of `service_healthy` gates. Probes every 200 ms, so
/// the gates cost the engines' speed more than the probes' schedule; each service
/// exits on SIGTERM, so `down` measures the engine rather than a stop timeout.
const COMPOSE: &str = "x-svc: &svc
  image: {image}
  command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]
  healthcheck:
    test: [\"CMD\", \"true\"]
    interval: 200ms
    timeout: 2s
    retries: 5
services:
  db:
    <<: *svc
  cache:
    <<: *svc
  api:
    <<: *svc
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_healthy}
  worker:
    <<: *svc
    depends_on:
      api: {condition: service_healthy}
  web:
    <<: *svc
    depends_on:
      api: {condition: service_healthy}
";

struct Measured {
    up: Samples,
    down: Samples,
}

fn measure(
    engine: anyhow::Result<Engine>,
    image: &str,
    project: &Scratch,
    n: usize,
    plugins: &std::path::Path,
) -> anyhow::Result<Measured> {
    let failed = |why: String| Measured {
        up: Err(why.clone()),
        down: Err(why),
    };
    let engine = match Engine::prepared(engine, image, plugins)? {
        Ok(e) => e,
        Err(why) => return Ok(failed(why)),
    };
    let dir = project.join("");
    let dir = dir.to_string_lossy();
    let compose = |verb: &[&str]| {
        let mut args = vec!["compose", "--project-directory", &dir, "-p", PROJECT];
        args.extend_from_slice(verb);
        engine.docker(&args)
    };
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..=n {
        check_interrupted()?;
        let t = Instant::now();
        if let Err(e) = compose(&["up", "-d", "--wait", "--quiet-pull"]) {
            println!(
                "  {} compose up failed: {e}{}",
                engine.name,
                engine.log_tail()
            );
            let _ = compose(&["down"]);
            return Ok(failed(e));
        }
        let took_up = t.elapsed().as_secs_f64();
        let t = Instant::now();
        if let Err(e) = compose(&["down"]) {
            println!("  {} compose down failed: {e}", engine.name);
            return Ok(Measured {
                up: Ok(up),
                down: Err(e),
            });
        }
        let took_down = t.elapsed().as_secs_f64();
        println!(
            "  {} compose up --wait {i}/{n}: {took_up:.3}s, down: {took_down:.3}s",
            engine.name
        );
        // The first round warms up (network creation paths, page cache).
        if i > 0 {
            up.push(took_up);
            down.push(took_down);
        }
    }
    Ok(Measured {
        up: Ok(up),
        down: Ok(down),
    })
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let (image, _) = super::run::push_image(&registry)?;
    let project = Scratch::new("compose")?;
    std::fs::write(
        project.join("compose.yaml"),
        COMPOSE.replace("{image}", &image),
    )?;
    let n = opts.iterations;
    let plugins = crate::plugins::ensure()?;
    let berth = measure(
        Engine::berth(&opts.berth_bin),
        &image,
        &project,
        n,
        &plugins,
    )?;
    let dockerd = measure(
        Engine::dockerd(&registry.addr),
        &image,
        &project,
        n,
        &plugins,
    )?;
    report.notes.push(format!(
        "compose: a 5-service project (busybox; `db` and `cache` gate `api`, which gates \
         `worker` and `web`, all on `service_healthy`; probes every 200 ms), `docker compose \
         up -d --wait` then `docker compose down` with the Compose 2.26 plugin, {n} timed \
         rounds after a warm-up"
    ));
    report.rows.push(Row {
        metric: "`docker compose up -d --wait` of 5 health-gated services".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.up,
        dockerd: dockerd.up,
    });
    report.rows.push(Row {
        metric: "`docker compose down` of the same".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.down,
        dockerd: dockerd.down,
    });
    Ok(())
}
