//! The getting-started tutorial as the app and `berth tutorial` start it: the
//! `berth/getting-started` image (preloaded into every fresh engine) run as one
//! named container with its port published, and the one command a user would type
//! for it, shown so they learn it. The start flow (find, start or run, then read
//! the published port) lives here once, over an [`Engine`] that the CLI drives
//! with the docker CLI and the app with the Docker API.

use std::future::Future;
use std::net::TcpListener;

pub const IMAGE: &str = "berth/getting-started";
pub const CONTAINER: &str = "getting-started";
/// The port the tutorial's pages assume (`-p 8080:80`).
pub const DEFAULT_PORT: u16 = 8080;
/// The web server's port inside the container.
pub const CONTAINER_PORT: u16 = 80;

/// 8080 when it is free, else the next free one up to 8099, else any free port.
pub fn pick_port() -> u16 {
    (DEFAULT_PORT..DEFAULT_PORT + 20)
        .find(|p| TcpListener::bind(("0.0.0.0", *p)).is_ok())
        .or_else(|| {
            TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .ok()
        })
        .unwrap_or(DEFAULT_PORT)
}

/// `docker run`'s arguments (after `docker`) for the tutorial on `port`.
pub fn run_args(port: u16) -> Vec<String> {
    [
        "run".to_string(),
        "-d".into(),
        "-p".into(),
        format!("{port}:{CONTAINER_PORT}"),
        "--name".into(),
        CONTAINER.into(),
        IMAGE.into(),
    ]
    .to_vec()
}

/// The command as the user would type it.
pub fn command(port: u16) -> String {
    format!("docker {}", run_args(port).join(" "))
}

/// Where the tutorial is served (the form the app's port links take).
pub fn url(port: u16) -> String {
    format!("http://localhost:{port}")
}

/// The host port in `docker port`'s output for the container port (`0.0.0.0:8080`,
/// `[::]:8080`, one per line).
pub fn port_from_docker_port(output: &str) -> Option<u16> {
    output
        .lines()
        .filter_map(|l| l.trim().rsplit_once(':'))
        .find_map(|(_, p)| p.parse().ok())
}

/// What the start flow does next, told to the engine before it happens (the
/// CLI prints each, so what it shows is what ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The container runs already: nothing to do but read its port.
    AlreadyRunning,
    /// The container exists, stopped: `docker start getting-started`.
    Start,
    /// There is none: `docker run …` on this host port.
    Run { port: u16 },
}

/// The few engine operations the start flow needs. Queries that fail read as
/// "no" (an engine that cannot inspect the container has none to start).
pub trait Engine: Send {
    type Error: std::fmt::Display;

    /// `Some(running)` when the tutorial container exists, else `None`.
    fn container_running(&mut self) -> impl Future<Output = Option<bool>> + Send;
    /// Whether the engine has the tutorial image (it is never pulled).
    fn has_image(&mut self) -> impl Future<Output = bool> + Send;
    /// Starts the existing, stopped container.
    fn start(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Creates and starts the container as [`run_args`] says, on `port`.
    fn run(&mut self, port: u16) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// The host port published for the container's port 80.
    fn published_port(&mut self) -> impl Future<Output = Result<Option<u16>, Self::Error>> + Send;
    /// Told each step before it is taken.
    fn note(&mut self, _step: &Step) {}
    /// The host port a new container gets.
    fn pick_port(&mut self) -> u16 {
        pick_port()
    }
}

/// The tutorial runs: where, and whether it had been started before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub port: u16,
    /// The container existed (running, or only needing a start).
    pub already: bool,
}

impl Started {
    /// The `docker run` a user would type for it.
    pub fn command(&self) -> String {
        command(self.port)
    }

    pub fn url(&self) -> String {
        url(self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError<E> {
    #[error(
        "{IMAGE} is not in this engine: it is loaded on an engine's first start from \
         Berth's VM image or package"
    )]
    NoImage,
    #[error("the tutorial container publishes no port for {CONTAINER_PORT}/tcp")]
    NoPort,
    #[error("{0}")]
    Engine(E),
}

/// Runs the tutorial: found running, started again if stopped, else run from
/// the preloaded image on a free port; then its published port is read back.
pub async fn start<E: Engine>(engine: &mut E) -> Result<Started, StartError<E::Error>> {
    let already = match engine.container_running().await {
        Some(true) => {
            engine.note(&Step::AlreadyRunning);
            true
        }
        Some(false) => {
            engine.note(&Step::Start);
            engine.start().await.map_err(StartError::Engine)?;
            true
        }
        None => {
            if !engine.has_image().await {
                return Err(StartError::NoImage);
            }
            let port = engine.pick_port();
            engine.note(&Step::Run { port });
            engine.run(port).await.map_err(StartError::Engine)?;
            false
        }
    };
    let port = engine
        .published_port()
        .await
        .map_err(StartError::Engine)?
        .ok_or(StartError::NoPort)?;
    Ok(Started { port, already })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_the_one_the_pages_teach() {
        assert_eq!(
            command(8080),
            "docker run -d -p 8080:80 --name getting-started berth/getting-started"
        );
        assert_eq!(url(8081), "http://localhost:8081");
    }

    #[test]
    fn docker_port_output_gives_the_host_port() {
        assert_eq!(
            port_from_docker_port("0.0.0.0:8080\n[::]:8080\n"),
            Some(8080)
        );
        assert_eq!(port_from_docker_port("[::]:18080\n"), Some(18080));
        assert_eq!(port_from_docker_port(""), None);
    }

    #[test]
    fn a_taken_port_is_skipped() {
        let held = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let p = pick_port();
        assert_ne!(p, held.local_addr().unwrap().port());
        assert!(TcpListener::bind(("0.0.0.0", p)).is_ok());
    }

    /// An engine in memory: the container's state, the image, and every
    /// call the flow made.
    struct Fake {
        running: Option<bool>,
        image: bool,
        published: Option<u16>,
        fail_start: bool,
        calls: Vec<String>,
    }

    impl Fake {
        fn new(running: Option<bool>, image: bool) -> Self {
            Fake {
                running,
                image,
                published: running.map(|_| 8085),
                fail_start: false,
                calls: Vec::new(),
            }
        }
    }

    impl Engine for Fake {
        type Error = String;

        async fn container_running(&mut self) -> Option<bool> {
            self.running
        }
        async fn has_image(&mut self) -> bool {
            self.image
        }
        async fn start(&mut self) -> Result<(), String> {
            self.calls.push("start".into());
            if self.fail_start {
                return Err("cannot start".into());
            }
            self.running = Some(true);
            Ok(())
        }
        async fn run(&mut self, port: u16) -> Result<(), String> {
            self.calls.push(format!("run {port}"));
            self.running = Some(true);
            self.published = Some(port);
            Ok(())
        }
        async fn published_port(&mut self) -> Result<Option<u16>, String> {
            Ok(self.published)
        }
        fn note(&mut self, step: &Step) {
            self.calls.push(format!("note {step:?}"));
        }
        fn pick_port(&mut self) -> u16 {
            8081
        }
    }

    fn run<E: Engine>(engine: &mut E) -> Result<Started, StartError<E::Error>> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(start(engine))
    }

    #[test]
    fn a_fresh_engine_runs_the_tutorial_on_the_picked_port() {
        let mut e = Fake::new(None, true);
        let s = run(&mut e).unwrap();
        assert_eq!(
            s,
            Started {
                port: 8081,
                already: false
            }
        );
        assert_eq!(e.calls, ["note Run { port: 8081 }", "run 8081"]);
        assert_eq!(
            s.command(),
            "docker run -d -p 8081:80 --name getting-started berth/getting-started"
        );
    }

    #[test]
    fn a_running_tutorial_is_found_again_and_a_stopped_one_started() {
        let mut e = Fake::new(Some(true), true);
        assert_eq!(run(&mut e).unwrap().port, 8085);
        assert_eq!(e.calls, ["note AlreadyRunning"]);

        let mut e = Fake::new(Some(false), false);
        let s = run(&mut e).unwrap();
        assert!(s.already);
        assert_eq!(s.url(), "http://localhost:8085");
        assert_eq!(e.calls, ["note Start", "start"]);
    }

    #[test]
    fn failures_say_why() {
        let mut e = Fake::new(None, false);
        let err = run(&mut e).unwrap_err();
        assert!(matches!(err, StartError::NoImage));
        assert_eq!(
            err.to_string(),
            "berth/getting-started is not in this engine: it is loaded on an engine's \
             first start from Berth's VM image or package"
        );
        assert!(e.calls.is_empty(), "{:?}", e.calls);

        let mut e = Fake::new(Some(false), true);
        e.fail_start = true;
        assert_eq!(run(&mut e).unwrap_err().to_string(), "cannot start");

        let mut e = Fake::new(Some(true), true);
        e.published = None;
        assert!(matches!(run(&mut e).unwrap_err(), StartError::NoPort));
    }
}
