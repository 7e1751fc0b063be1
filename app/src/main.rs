//! The `berth` command: `berth vm start|stop|status|logs`, and host integration.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth: containers on your desktop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print where the docker CLI finds Berth's engine.
    DockerHost,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::DockerHost => {
            let paths = berth::paths::Paths::for_user();
            let user = std::env::var("USER").unwrap_or_default();
            println!(
                "{}",
                paths
                    .docker_endpoint(berth::paths::HostOs::current(), &user)
                    .docker_host()
            );
        }
    }
    Ok(())
}
