//! The `berth-agent` binary: `berth-agent daemon [flags]` runs the engine.

use anyhow::Context;
use berth_agent::config::{Config, USAGE};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("daemon") => {}
        // Must stay before any thread is started: libcontainer clones this process.
        Some("shim") => {
            use berth_agent::runtime::shim;
            let parsed = shim::ShimArgs::parse(args);
            if let Ok(a) = &parsed {
                // libcontainer reports the failing step through tracing. Never to stderr:
                // the container's init is forked from us and would write into the
                // container's own stderr.
                if let Ok(f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(a.bundle.join("shim.log"))
                {
                    tracing_subscriber::fmt()
                        .with_env_filter(
                            tracing_subscriber::EnvFilter::try_from_env("BERTH_SHIM_LOG")
                                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
                        )
                        .with_writer(std::sync::Mutex::new(f))
                        .with_ansi(false)
                        .init();
                }
            }
            let code = match parsed.and_then(shim::run) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("berth-agent shim: {e}");
                    e.exit_code()
                }
            };
            std::process::exit(code);
        }
        Some("--version") | Some("version") => {
            println!("berth-agent {}", berth_agent::VERSION);
            return Ok(());
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    let config = Config::from_args(args).context("parsing arguments")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Two workers: the engine's work is I/O and short bursts; blocking work (layer
    // unpacking) runs on tokio's blocking pool.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(berth_agent::daemon::run(config))
        .context("engine failed")?;
    Ok(())
}
