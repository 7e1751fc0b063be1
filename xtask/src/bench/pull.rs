//! Pull + unpack of fresh images from one local registry, and each engine's idle RSS.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_tests::engine::Engine;
use berth_tests::images;
use berth_tests::registry::{Registry, RegistryAuth};

use super::dockerd::{tree_rss_mb, Dockerd};
use super::{Options, Report, Row};

const IMAGE_MB: usize = 48;

fn docker(socket: &Path, config: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .env("DOCKER_CONFIG", config)
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn timed_pulls(socket: &Path, config: &Path, names: &[String]) -> Result<Vec<f64>, String> {
    let mut samples = Vec::new();
    for name in names {
        let t = Instant::now();
        docker(socket, config, &["pull", "-q", name]).map_err(|e| e.to_string())?;
        samples.push(t.elapsed().as_secs_f64());
        docker(socket, config, &["rmi", name]).map_err(|e| e.to_string())?;
    }
    Ok(samples)
}

pub fn bench(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let registry = Registry::start(RegistryAuth::None)?;
    println!(
        "pushing {} test images of {IMAGE_MB} MB to {}",
        opts.iterations,
        registry.addr()
    );
    let mut names = Vec::new();
    for i in 0..opts.iterations {
        let img = images::random_image_seeded(IMAGE_MB, 1000 + i as u64)?;
        let tag = format!("bench/pull:{i}");
        img.push(&registry, &tag)?;
        names.push(format!("{}/{tag}", registry.addr()));
    }

    let berth = Engine::start();
    let dockerd = Dockerd::start(&registry.addr());
    std::thread::sleep(Duration::from_secs(2)); // let both settle before reading RSS
    let berth_rss = berth
        .as_ref()
        .map(|e| vec![tree_rss_mb(e.pid().unwrap_or(0))])
        .map_err(|e| e.to_string());
    let dockerd_rss = dockerd
        .as_ref()
        .map(|d| vec![tree_rss_mb(d.pid())])
        .map_err(|e| e.to_string());

    let berth_cfg = tempfile::tempdir()?;
    let berth_pulls = match &berth {
        Ok(e) => timed_pulls(e.socket(), berth_cfg.path(), &names),
        Err(e) => Err(e.to_string()),
    };
    let dockerd_pulls = match &dockerd {
        Ok(d) => timed_pulls(&d.socket, d.config_dir(), &names),
        Err(e) => Err(e.to_string()),
    };
    let throughput = |r: &Result<Vec<f64>, String>| {
        r.as_ref()
            .map(|s| s.iter().map(|t| t / IMAGE_MB as f64 * 1000.0).collect())
            .map_err(Clone::clone)
    };
    report.rows.push(Row {
        metric: format!("docker pull of a fresh {IMAGE_MB} MB image, 3 gzip layers"),
        unit: "s",
        berth: berth_pulls.clone(),
        dockerd: dockerd_pulls.clone(),
    });
    report.rows.push(Row {
        metric: "pull time per MB".into(),
        unit: "ms/MB",
        berth: throughput(&berth_pulls),
        dockerd: throughput(&dockerd_pulls),
    });
    report.rows.push(Row {
        metric: "idle RSS after start (dockerd: + containerd)".into(),
        unit: "MB",
        berth: berth_rss,
        dockerd: dockerd_rss,
    });
    if opts.quick {
        println!("(quick mode: {} iterations)", opts.iterations);
    }
    Ok(())
}
