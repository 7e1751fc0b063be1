//! The `compose` group: `docker compose up -d --wait` and `docker compose down` of a
//! five-service project whose services gate each other on healthchecks (Compose v2,
//! the 2.26 CLI plugin), on Berth and on dockerd.

use std::time::Instant;

use super::engine::Engine;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::rounds::{interleaved, unzip};
use super::scratch::Scratch;
use super::Options;

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

/// What Compose itself waits in `up --wait` whatever the engine: every wait on a
/// dependency (and `--wait` itself) polls on a 500 ms ticker whose first tick comes
/// 500 ms after the wait begins, and this project has three waits in a row (`api` on
/// `db` and `cache`; `worker` and `web` on `api`; `--wait` on all five).
const COMPOSE_POLL_FLOOR_S: f64 = 1.5;

struct Measured {
    up: Samples,
    down: Samples,
}

/// Rounds of `up --wait` then `down` on both engines (Berth's first), the engines
/// running side by side and taking turns, round by round.
fn measure(
    berth: anyhow::Result<Engine>,
    dockerd: anyhow::Result<Engine>,
    image: &str,
    project: &Scratch,
    n: usize,
    plugins: &std::path::Path,
) -> anyhow::Result<[Measured; 2]> {
    let berth = Engine::prepared(berth, image, plugins)?;
    let dockerd = Engine::prepared(dockerd, image, plugins)?;
    let dir = project.join("");
    let dir = dir.to_string_lossy();
    // The first round warms up (network creation paths, page cache).
    let rounds = interleaved(&[&berth, &dockerd], n, |engine, i| {
        let compose = |verb: &[&str]| {
            let mut args = vec!["compose", "--project-directory", &dir, "-p", PROJECT];
            args.extend_from_slice(verb);
            engine.docker(&args)
        };
        let t = Instant::now();
        if let Err(e) = compose(&["up", "-d", "--wait", "--quiet-pull"]) {
            println!(
                "  {} compose up failed: {e}{}",
                engine.name,
                engine.log_tail()
            );
            let _ = compose(&["down"]);
            return Err(e);
        }
        let took_up = t.elapsed().as_secs_f64();
        let t = Instant::now();
        if let Err(e) = compose(&["down"]) {
            println!("  {} compose down failed: {e}", engine.name);
            return Err(e);
        }
        let took_down = t.elapsed().as_secs_f64();
        println!(
            "  {} compose up --wait {i}/{n}: {took_up:.3}s, down: {took_down:.3}s",
            engine.name
        );
        Ok((took_up, took_down))
    })?;
    let mut sides = rounds.into_iter().map(|r| {
        let (up, down) = unzip(r);
        Measured { up, down }
    });
    let mut next = || {
        sides.next().unwrap_or_else(|| Measured {
            up: Err("not measured".into()),
            down: Err("not measured".into()),
        })
    };
    Ok([next(), next()])
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
    let [berth, dockerd] = measure(
        Engine::berth(&opts.berth_bin),
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
         rounds after a warm-up, both engines side by side taking turns round by round"
    ));
    report.rows.push(Row {
        metric: "`docker compose up -d --wait` of 5 health-gated services".into(),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.up.clone(),
        dockerd: dockerd.up.clone(),
    });
    report.rows.push(Row {
        metric: format!(
            "the same, less the {COMPOSE_POLL_FLOOR_S} s Compose waits on its own \
             500 ms polls"
        ),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: super::report::less(&berth.up, COMPOSE_POLL_FLOOR_S),
        dockerd: super::report::less(&dockerd.up, COMPOSE_POLL_FLOOR_S),
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
