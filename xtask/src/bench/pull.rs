//! The `pull` group: `docker pull` of fresh images from one local registry on each
//! engine in turn, plus each engine's idle RSS before and after the pulls.

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::oci;
use super::registry::Registry;
use super::report::{Better, Report, Row, Samples};
use super::scratch::Scratch;
use super::{check_interrupted, Options};

/// Layer sizes of every bench image: incompressible, so gzip keeps them this size.
const LAYER_MB: [u64; 3] = [8, 16, 32];
/// Quiet time before reading RSS, so start-up (or pull) work has settled.
const SETTLE: Duration = Duration::from_secs(3);

fn image_mb() -> u64 {
    LAYER_MB.iter().sum()
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let images = push_images(&registry, opts.iterations)?;
    let berth = measure(|| Engine::berth(&opts.berth_bin), &images)?;
    let dockerd = measure(|| Engine::dockerd(&registry.addr), &images)?;

    report.notes.push(format!(
        "pull: {} distinct images of {} MB ({} MB gzip layers of random bytes) from a local \
         docker-registry; each engine pulls each image once (`docker pull`), then `docker rmi`",
        images.len(),
        image_mb(),
        LAYER_MB.map(|m| m.to_string()).join(" + "),
    ));
    report.rows.push(Row {
        metric: format!(
            "`docker pull` of a fresh {} MB image, 3 gzip layers",
            image_mb()
        ),
        unit: "s",
        decimals: 3,
        better: Better::Lower,
        berth: berth.pulls,
        dockerd: dockerd.pulls,
    });
    report.rows.push(Row {
        metric: "idle RSS after start (dockerd: + containerd)".into(),
        unit: "MB",
        decimals: 1,
        better: Better::Lower,
        berth: berth.idle_rss,
        dockerd: dockerd.idle_rss,
    });
    report.rows.push(Row {
        metric: "idle RSS after the pulls (dockerd: + containerd)".into(),
        unit: "MB",
        decimals: 1,
        better: Better::Lower,
        berth: berth.settled_rss,
        dockerd: dockerd.settled_rss,
    });
    Ok(())
}

/// Writes and pushes `n` images with distinct content; returns their references.
fn push_images(registry: &Registry, n: usize) -> anyhow::Result<Vec<String>> {
    println!(
        "pushing {n} images of {} MB to {} …",
        image_mb(),
        registry.addr
    );
    let work = Scratch::new("images")?;
    let sizes = LAYER_MB.map(|mb| mb << 20);
    let mut names = Vec::new();
    for i in 0..n {
        check_interrupted()?;
        let t = Instant::now();
        let layout = work.join(format!("img{i}"));
        oci::write_layout(&layout, "latest", 1 + i as u64, &sizes)?;
        let name = format!("{}/bench/img{i}:latest", registry.addr);
        oci::push(&layout, "latest", &name)?;
        std::fs::remove_dir_all(&layout)?;
        println!("  {name} ({:.1}s)", t.elapsed().as_secs_f64());
        names.push(name);
    }
    Ok(names)
}

struct Measured {
    pulls: Samples,
    idle_rss: Samples,
    settled_rss: Samples,
}

impl Measured {
    fn failed(why: String) -> Measured {
        Measured {
            pulls: Err(why.clone()),
            idle_rss: Err(why.clone()),
            settled_rss: Err(why),
        }
    }
}

/// Starts one engine and measures it. An engine that fails to start or pull becomes an
/// error in its column; only an interruption fails the whole group.
fn measure(
    start: impl FnOnce() -> anyhow::Result<Engine>,
    images: &[String],
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
    println!("{} is up; letting it settle", engine.name);
    std::thread::sleep(SETTLE);
    let idle_rss = Ok(vec![engine.rss_mb()]);

    let mut pulls = Vec::new();
    let mut failure = None;
    for (i, name) in images.iter().enumerate() {
        check_interrupted()?;
        let t = Instant::now();
        if let Err(e) = engine.docker(&["pull", "-q", name]) {
            println!("  {} pull failed: {e}{}", engine.name, engine.log_tail());
            failure = Some(e);
            break;
        }
        let took = t.elapsed().as_secs_f64();
        println!(
            "  {} pull {}/{}: {took:.3}s",
            engine.name,
            i + 1,
            images.len()
        );
        pulls.push(took);
        if let Err(e) = engine.docker(&["rmi", name]) {
            println!("  {} rmi failed: {e}", engine.name);
            failure = Some(e);
            break;
        }
    }
    check_interrupted()?;
    let settled_rss = match &failure {
        Some(_) => Err("no complete pull run".to_string()),
        None => {
            std::thread::sleep(SETTLE);
            Ok(vec![engine.rss_mb()])
        }
    };
    Ok(Measured {
        pulls: failure.map_or(Ok(pulls), Err),
        idle_rss,
        settled_rss,
    })
}
