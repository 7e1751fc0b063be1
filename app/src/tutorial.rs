//! The getting-started tutorial as the app and `berth tutorial` start it: the
//! `berth/getting-started` image (preloaded into every fresh engine) run as one
//! named container with its port published, and the one command a user would type
//! for it, shown so they learn it.

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
}
