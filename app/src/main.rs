//! The `berth` command: `berth vm start|stop|status|logs`, and host integration.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context};
use berth::paths::{DockerEndpoint, Paths};
use berth::settings::Settings;
use berth::vm::{self, VmPaths, VmState};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth: containers on your desktop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the Linux VM the engine runs in.
    Vm {
        #[command(subcommand)]
        command: VmCommand,
    },
    /// Print where the docker CLI finds Berth's engine.
    DockerHost,
    /// Show what the VM runs with on this host, and why (accelerator,
    /// transport, image, helper programs, shared folders).
    Doctor,
    /// Make the docker CLI keep logins in the OS keychain (`credsStore: "berth"`).
    DockerConfig {
        #[command(subcommand)]
        command: DockerConfigCommand,
    },
    /// Log in to a registry: the engine checks the credentials, the keychain keeps them.
    Login {
        /// The registry (`host[:port]`; Docker Hub when omitted).
        server: Option<String>,
        #[arg(short, long)]
        username: String,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget a registry login.
    Logout { server: Option<String> },
    /// Hook Berth into this user's docker CLI: a `berth` context (made current
    /// if no other context was), the credential helper, and the commands on PATH.
    Install {
        /// What the context points at (default: Berth's socket).
        #[arg(long)]
        host: Option<String>,
        /// Where to link `berth` and `docker-credential-berth` (default:
        /// ~/.local/bin; nothing is linked when they are already on PATH).
        #[arg(long)]
        bin_dir: Option<std::path::PathBuf>,
        /// Also link /var/run/docker.sock to Berth's socket, for tools that
        /// ignore docker contexts (never replaces another engine's socket).
        /// Asked when neither this nor --no-docker-sock is given on a terminal.
        #[arg(long, conflicts_with = "no_docker_sock")]
        docker_sock: bool,
        #[arg(long)]
        no_docker_sock: bool,
        /// Where the docker.sock link goes (tests use a scratch path).
        #[arg(long, hide = true, default_value = berth::integration::docker_sock::WELL_KNOWN)]
        docker_sock_path: std::path::PathBuf,
        /// Start the desktop app at login.
        #[arg(long)]
        autostart: bool,
    },
    /// Undo exactly what `berth install` changed.
    Uninstall,
    /// Serve Berth's docker endpoint in front of an engine that already runs
    /// on TCP loopback, without the VM (diagnostics; the Windows pipe tests).
    #[command(hide = true)]
    Serve {
        /// The engine: `tcp://127.0.0.1:PORT`.
        #[arg(long)]
        engine: String,
        /// Where to serve, as a `DOCKER_HOST` value (default: Berth's own endpoint).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Put a folder on Windows' `Path`, or take it off: what the Windows
    /// installers run (elevated, with `--machine`) for `berth.exe` and
    /// `docker-credential-berth.exe`, which the docker CLI looks up on PATH.
    #[command(hide = true)]
    PathEntry {
        #[command(subcommand)]
        action: PathAction,
    },
    /// Run the getting-started tutorial (offline) and open it in the browser: the
    /// `docker run` it takes is printed, then run with your docker CLI.
    Tutorial {
        /// Print the address instead of opening a browser.
        #[arg(long)]
        no_open: bool,
    },
}

#[derive(Subcommand)]
enum PathAction {
    Add {
        /// Every user's `Path` rather than this user's.
        #[arg(long)]
        machine: bool,
        dir: std::path::PathBuf,
    },
    Remove {
        #[arg(long)]
        machine: bool,
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum DockerConfigCommand {
    /// Set `credsStore: "berth"` in the docker CLI's config.json.
    Install,
    /// Put back the credsStore that `install` replaced.
    Uninstall,
}

#[derive(Subcommand)]
enum VmCommand {
    /// Boot the VM; returns once the engine answers on the docker socket.
    Start {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Shut the VM down cleanly.
    Stop,
    /// Show whether the VM runs, and how to reach it.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print the guest's console log.
    Logs {
        /// Keep printing as the log grows.
        #[arg(short, long)]
        follow: bool,
    },
    /// Rewrite the stopped VM's data disk without the space its guest freed.
    Compact,
    /// Run the supervisor in the foreground (what `start` launches).
    Run,
}

fn path_entry(action: PathAction) -> anyhow::Result<()> {
    use berth::os::PathScope;
    let scope = |machine| {
        if machine {
            PathScope::Machine
        } else {
            PathScope::User
        }
    };
    let (changed, dir, what) = match action {
        PathAction::Add { machine, dir } => (
            berth::os::add_path_entry(scope(machine), &dir),
            dir,
            ["is on PATH now", "was on PATH already"],
        ),
        PathAction::Remove { machine, dir } => (
            berth::os::remove_path_entry(scope(machine), &dir),
            dir,
            ["is off PATH now", "was not on PATH"],
        ),
    };
    let changed = changed.with_context(|| format!("changing PATH for {}", dir.display()))?;
    println!("{} {}", dir.display(), what[usize::from(!changed)]);
    Ok(())
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let paths = Paths::for_user();
    match cli.command {
        Command::DockerHost => {
            println!("{}", endpoint_for(&paths).docker_host());
        }
        Command::Doctor => {
            let settings = Settings::load(&paths.settings_file())?;
            let mut checks = berth::doctor::run(&paths, &settings.vm);
            let docker_dir = layout(&paths, None)?.docker_dir;
            checks.extend(berth::doctor::integration(&paths, &docker_dir));
            for c in &checks {
                println!(
                    "{} {:<20} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                );
                if let Some(fix) = &c.fix {
                    println!("     {:<20} → {fix}", "");
                }
            }
            if checks.iter().any(|c| !c.ok) {
                std::process::exit(1);
            }
        }
        Command::DockerConfig { command } => {
            let path = berth::creds::docker_config::config_path();
            match command {
                DockerConfigCommand::Install => berth::creds::docker_config::install(&path)?,
                DockerConfigCommand::Uninstall => berth::creds::docker_config::uninstall(&path)?,
            }
            println!("updated {}", path.display());
        }
        Command::Login {
            server,
            username,
            password_stdin,
        } => login(&paths, server, username, password_stdin)?,
        Command::Logout { server } => {
            let server = server.unwrap_or_else(|| berth::creds::DOCKER_HUB.to_string());
            let store = berth::creds::Keychain::open();
            match berth::creds::erase(&store, &server) {
                Ok(()) | Err(berth::creds::CredsError::NotFound) => {
                    println!(
                        "Removing login credentials for {}",
                        berth::creds::normalize(&server)
                    )
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Install {
            host,
            bin_dir,
            docker_sock,
            no_docker_sock,
            docker_sock_path,
            autostart,
        } => {
            let mut l = layout(&paths, bin_dir)?;
            let host = host.unwrap_or_else(|| endpoint_for(&paths).docker_host());
            if docker_sock || (!no_docker_sock && ask_docker_sock(&docker_sock_path)) {
                let target = host
                    .strip_prefix("unix://")
                    .context("the docker.sock link needs a unix:// host")?;
                l.docker_sock = Some(berth::integration::docker_sock::Link {
                    link: docker_sock_path,
                    target: target.into(),
                });
            }
            if autostart {
                let exe = std::env::current_exe().context("locating the berth binary")?;
                let app =
                    exe.with_file_name(format!("berth-desktop{}", std::env::consts::EXE_SUFFIX));
                if !app.is_file() {
                    bail!("the desktop app is not installed beside {}", exe.display());
                }
                l.autostart = Some(berth::autostart::for_user(&app));
            }
            let done = berth::integration::install(&l, &host)?;
            let r = done.record;
            println!("docker context \"berth\" → {host}");
            if r.made_current.is_some() {
                println!("it is now the docker CLI's current context");
            } else {
                println!("your current context is unchanged (`docker context use berth` switches)");
            }
            println!(
                "credential helper: credsStore \"berth\" in {}",
                l.docker_dir.join("config.json").display()
            );
            for link in &r.links {
                println!("linked {}", link.display());
            }
            use berth::integration::docker_sock::Outcome;
            match (done.docker_sock, &l.docker_sock) {
                (Some(Outcome::Created | Outcome::AlreadyBerths), Some(s)) => {
                    println!("{} → {}", s.link.display(), s.target.display())
                }
                (Some(Outcome::LeftAlone(why)), _) => println!("docker.sock: {why}"),
                _ => {}
            }
            if let Some(path) = &r.autostart {
                println!("starts at login: {}", path.display());
            }
        }
        Command::Tutorial { no_open } => tutorial(&paths, no_open)?,
        Command::Serve { engine, endpoint } => serve(&paths, &engine, endpoint)?,
        Command::PathEntry { action } => path_entry(action)?,
        Command::Uninstall => {
            let l = layout(&paths, None)?;
            match berth::integration::uninstall(&l)? {
                Some(_) => {
                    println!("Berth's docker context, credential helper and links are removed.")
                }
                None => println!("Nothing to undo: Berth was not installed for this user."),
            }
        }
        Command::Vm { command } => {
            let vmp = VmPaths::new(paths.vm_dir());
            match command {
                VmCommand::Run => {
                    init_tracing();
                    let settings = Settings::load(&paths.settings_file())?;
                    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
                    rt.block_on(vm::supervise(vm::SuperviseOptions {
                        paths,
                        settings: settings.vm,
                    }))?;
                }
                VmCommand::Start { timeout } => start(&paths, timeout)?,
                VmCommand::Stop => stop(&paths)?,
                VmCommand::Status { json } => status(&paths, &vmp, json)?,
                VmCommand::Logs { follow } => logs(&vmp, follow)?,
                VmCommand::Compact => {
                    let mib = |b: u64| b / (1024 * 1024);
                    let done = vm::compact::compact(&vmp).map_err(|e| match e {
                        vm::VmError::AlreadyRunning(_) => anyhow::anyhow!(
                            "the VM is running; stop it first (berth vm stop), then compact"
                        ),
                        e => e.into(),
                    })?;
                    println!(
                        "The data disk took {} MiB; it now takes {} MiB.",
                        mib(done.before_bytes),
                        mib(done.after_bytes)
                    );
                }
            }
        }
    }
    Ok(())
}

/// `berth serve`: the docker endpoint in front of an engine on TCP loopback,
/// until Ctrl-C (or the stop request `berth vm stop` would send).
fn serve(paths: &Paths, engine: &str, endpoint: Option<String>) -> anyhow::Result<()> {
    use std::io::Write;
    init_tracing();
    let addr: std::net::SocketAddr = engine
        .strip_prefix("tcp://")
        .context("--engine must be tcp://HOST:PORT")?
        .parse()
        .context("--engine must be tcp://HOST:PORT")?;
    let transport = std::sync::Arc::new(berth::transport::Tcp::loopback(addr)?);
    let ep = match endpoint {
        Some(h) => DockerEndpoint::from_docker_host(&h)
            .with_context(|| format!("{h} is neither unix:// nor npipe://"))?,
        None => endpoint_for(paths),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        let listener = berth::forward::DockerListener::bind(&ep)?;
        let mut stop = berth::os::StopRequests::install()?;
        // The line a caller waits for: the endpoint accepts connections now.
        println!("serving {} → {engine}", ep.docker_host());
        std::io::stdout().flush()?;
        tokio::select! {
            _ = listener.serve(transport) => {}
            _ = stop.recv() => {}
        }
        if let DockerEndpoint::Unix(p) = &ep {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    })
}

/// `DOCKER_HOST` when it names a local socket or pipe, else Berth's own endpoint.
fn engine_endpoint(paths: &Paths) -> DockerEndpoint {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| DockerEndpoint::from_docker_host(&h))
        .unwrap_or_else(|| endpoint_for(paths))
}

/// `docker …` against the engine `berth` uses; its stdout, or why it failed.
fn docker(engine: &DockerEndpoint, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker")
        .arg("--host")
        .arg(engine.docker_host())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running the docker CLI (is it installed? `berth doctor` checks)")?;
    if !out.status.success() {
        bail!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The tutorial's engine as the stock docker CLI sees it, so what is printed
/// is exactly what ran.
struct DockerCli<'a> {
    engine: &'a DockerEndpoint,
}

impl berth::tutorial::Engine for DockerCli<'_> {
    type Error = anyhow::Error;

    async fn container_running(&mut self) -> Option<bool> {
        let state = docker(
            self.engine,
            &[
                "inspect",
                "-f",
                "{{.State.Running}}",
                berth::tutorial::CONTAINER,
            ],
        )
        .ok()?;
        Some(state.trim() == "true")
    }

    async fn has_image(&mut self) -> bool {
        docker(
            self.engine,
            &["image", "inspect", "-f", "{{.Id}}", berth::tutorial::IMAGE],
        )
        .is_ok()
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        docker(self.engine, &["start", berth::tutorial::CONTAINER]).map(drop)
    }

    async fn run(&mut self, port: u16) -> anyhow::Result<()> {
        let args = berth::tutorial::run_args(port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(self.engine, &args).map(drop)
    }

    async fn published_port(&mut self) -> anyhow::Result<Option<u16>> {
        let port = format!("{}/tcp", berth::tutorial::CONTAINER_PORT);
        let published = docker(self.engine, &["port", berth::tutorial::CONTAINER, &port])?;
        Ok(berth::tutorial::port_from_docker_port(&published))
    }

    fn note(&mut self, step: &berth::tutorial::Step) {
        use berth::tutorial::Step;
        match step {
            Step::AlreadyRunning => println!("The tutorial is already running."),
            Step::Start => println!("$ docker start {}", berth::tutorial::CONTAINER),
            Step::Run { port } => println!("$ {}", berth::tutorial::command(*port)),
        }
    }
}

/// Starts (or finds) the tutorial container with the stock docker CLI and
/// opens its page.
fn tutorial(paths: &Paths, no_open: bool) -> anyhow::Result<()> {
    let engine = engine_endpoint(paths);
    if !vm::ping(&engine) {
        bail!(
            "the engine does not answer on {}: start it first (`berth vm start`, or the app)",
            engine.docker_host()
        );
    }
    let started = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the runtime")?
        .block_on(berth::tutorial::start(&mut DockerCli { engine: &engine }))
        .map_err(|e| match e {
            berth::tutorial::StartError::Engine(e) => e,
            other => anyhow::anyhow!(other.to_string()),
        })?;
    let url = started.url();
    println!("The tutorial is at {url}");
    if !no_open {
        let (opener, args): (&str, &[&str]) = if cfg!(target_os = "macos") {
            ("open", &[])
        } else if cfg!(windows) {
            // `start`'s first quoted argument is a window title.
            ("cmd", &["/c", "start", ""])
        } else {
            ("xdg-open", &[])
        };
        if std::process::Command::new(opener)
            .args(args)
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            println!("(no browser could be opened here: open the address yourself)");
        }
    }
    Ok(())
}

fn login(
    paths: &Paths,
    server: Option<String>,
    username: String,
    password_stdin: bool,
) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    if !password_stdin {
        bail!("pass the password on stdin with --password-stdin");
    }
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    let server = server.unwrap_or_else(|| berth::creds::DOCKER_HUB.to_string());
    // The engine checks the login against the registry, as for `docker login`.
    let body = serde_json::json!({
        "username": username, "password": password, "serveraddress": server,
    })
    .to_string();
    let engine = engine_endpoint(paths);
    let mut s = engine
        .connect()
        .with_context(|| format!("connecting to the engine at {}", engine.docker_host()))?;
    write!(
        s,
        "POST /auth HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, payload) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    if !head.starts_with("HTTP/1.1 200") {
        let message = payload
            .lines()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| head.lines().next().unwrap_or_default().to_string());
        bail!("login failed: {message}");
    }
    let store = berth::creds::Keychain::open();
    berth::creds::store(
        &store,
        &berth::creds::Credentials {
            server_url: server,
            username,
            secret: password,
        },
    )?;
    println!("Login Succeeded");
    Ok(())
}

/// On a terminal, asks whether to link docker.sock (default no).
fn ask_docker_sock(link: &std::path::Path) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return false;
    }
    print!(
        "Also link {} to Berth's socket, for tools that ignore docker contexts? [y/N] ",
        link.display()
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

fn layout(
    paths: &Paths,
    bin_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<berth::integration::Layout> {
    let exe = std::env::current_exe().context("locating the berth binary")?;
    let dir = exe.parent().context("the berth binary's directory")?;
    Ok(berth::integration::Layout::for_user(paths, dir, bin_dir))
}

fn endpoint_for(paths: &Paths) -> DockerEndpoint {
    paths.user_docker_endpoint()
}

fn start(paths: &Paths, timeout: u64) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the berth binary")?;
    let s = vm::lifecycle::start(paths, &exe, Duration::from_secs(timeout))?;
    if s.already {
        println!(
            "The VM is already running.\nexport DOCKER_HOST={}",
            s.docker_host
        );
        return Ok(());
    }
    println!(
        "Berth VM running ({}, {}), engine ready in {:.1}s.",
        s.state.as_ref().map(|s| s.accel.as_str()).unwrap_or("?"),
        s.state
            .as_ref()
            .map(|s| s.transport.as_str())
            .unwrap_or("?"),
        s.took.as_secs_f64(),
    );
    // What was chosen and why, with the way to a faster path where one exists.
    if let Some(st) = &s.state {
        if !st.transport_why.is_empty() {
            println!("transport:    {}: {}", st.transport, st.transport_why);
        }
        if !st.file_sharing.is_empty() {
            println!("file sharing: {}", st.file_sharing);
        }
    }
    println!("export DOCKER_HOST={}", s.docker_host);
    Ok(())
}

fn stop(paths: &Paths) -> anyhow::Result<()> {
    if vm::lifecycle::stop(paths)? {
        println!("The VM is stopped.");
    } else {
        println!("The VM is not running.");
    }
    Ok(())
}

fn status(paths: &Paths, vmp: &VmPaths, json: bool) -> anyhow::Result<()> {
    let running = vm::running_supervisor(vmp).is_some();
    let state = VmState::read(vmp).filter(|_| running);
    // A ping would wake a VM that idles paused; say so instead.
    let paused_since = state.as_ref().and_then(|s| s.paused_since);
    let engine = running && paused_since.is_none() && vm::ping(&endpoint_for(paths));
    let qemu = if running {
        vm::qmp::status(&vmp.qmp_endpoint()).ok()
    } else {
        None
    };
    let usage = vm::usage::usage(vmp, state.as_ref());
    if json {
        let v = serde_json::json!({
            "running": running,
            "engine": engine,
            "qemu": qemu,
            "state": state,
            "memory": { "guest": usage.guest, "qemuRssBytes": usage.qemu_rss_bytes },
            "usage": usage,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let Some(s) = state else {
        println!("The VM is not running.");
        return Ok(());
    };
    println!("phase:      {:?}", s.phase);
    println!(
        "qemu:       {} (pid {})",
        qemu.as_deref().unwrap_or("unknown"),
        s.qemu_pid.unwrap_or(0)
    );
    println!("accel:      {}", s.accel);
    let mib = |b: u64| b / (1024 * 1024);
    match (usage.guest, usage.qemu_rss_bytes) {
        (Some(m), rss) => println!(
            "memory:     guest {} MiB used, {} MiB cache, {} MiB free of {} MiB{}",
            mib(m.used_bytes),
            mib(m.cached_bytes),
            mib(m.free_bytes),
            mib(m.total_bytes),
            rss.map(|r| format!("; QEMU holds {} MiB", mib(r)))
                .unwrap_or_default()
        ),
        (None, Some(r)) => println!("memory:     QEMU holds {} MiB", mib(r)),
        (None, None) => {}
    }
    if let Some(b) = usage.disk_bytes {
        println!(
            "disk:       {} MiB on the host{}",
            mib(b),
            usage
                .disk_limit_bytes
                .map(|l| format!(" (grows to at most {} GiB)", l >> 30))
                .unwrap_or_default()
        );
    }
    println!("transport:  {}", s.transport);
    if !s.transport_why.is_empty() {
        println!("            {}", s.transport_why);
    }
    println!("sharing:    {}", s.file_sharing);
    for f in &s.shared_folders {
        println!("  shared:   {f}");
    }
    match paused_since {
        Some(since) => println!(
            "engine:     paused while idle ({}s); the next docker command resumes it",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().saturating_sub(since))
                .unwrap_or_default()
        ),
        None => println!(
            "engine:     {}",
            if engine { "ready" } else { "not answering" }
        ),
    }
    println!("DOCKER_HOST={}", s.docker_host);
    if let Some(ms) = s.boot_ms {
        println!("boot:       {:.1}s", ms as f64 / 1000.0);
    }
    if s.restarts > 0 {
        println!(
            "restarts:   {} (last: {})",
            s.restarts,
            s.last_crash.unwrap_or_default()
        );
    }
    Ok(())
}

fn logs(vmp: &VmPaths, follow: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let path = vmp.console_log();
    let mut f =
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = std::io::stdout();
    loop {
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        out.write_all(&buf)?;
        out.flush()?;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
