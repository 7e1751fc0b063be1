//! The supervisor: one long-lived process per user that owns the running VM.
//! It boots QEMU (and the vsock backend it needs), waits for the engine, serves
//! the docker socket and the port mirror, restarts the VM when it crashes, and
//! shuts it down cleanly on SIGTERM.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::argv::{self, Arch, MachineSpec, ShareDevice, TransportDevice};
use super::idle::{IdleGate, Sleep};
pub(crate) use super::link::{resolve_transport, transport_reason};
use super::link::{transport_for, ReadySignal};
use super::{control, image, io_err, qmp, shares, Phase, VmError, VmPaths, VmState};
use crate::forward::ports::PortMirror;
use crate::os::{Guard, Reaper, StopRequests};
use crate::paths::{DockerEndpoint, HostOs, Paths};
use crate::settings::{Accel, VmSettings};
use crate::transport::{self, Transport};

pub struct SuperviseOptions {
    pub paths: Paths,
    pub settings: VmSettings,
}

/// How long a boot may take before the manager gives up on it (TCG is slow).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a boot may go without the guest's ready signal before the
/// supervisor pings the engine anyway (a TCG boot signals within ~10 s).
const READY_GRACE: Duration = Duration::from_secs(30);
/// Crash restarts before the supervisor gives up.
const MAX_RESTARTS: u32 = 5;

/// A launched machine: QEMU and its vhost-user backends (`vhost-device-vsock`
/// for hybrid vsock, one `virtiofsd` per virtio-fs share).
struct Machine {
    qemu: Child,
    backends: Vec<Child>,
    /// What ends each child with the supervisor (see [`Reaper`]).
    _guards: Vec<Guard>,
}

impl Machine {
    async fn kill(&mut self) {
        let _ = self.qemu.kill().await;
        self.kill_backends().await;
    }

    /// Each backend leads its own process group (`virtiofsd --sandbox
    /// namespace` forks a worker that holds the share's pid-file lock), so the
    /// whole group goes, not just the process we spawned.
    async fn kill_backends(&mut self) {
        for b in self.backends.iter_mut() {
            if let Some(pid) = b.id() {
                crate::os::kill_tree(pid);
            }
            let _ = b.kill().await;
        }
    }
}

/// The shares this boot mounts, and the devices that carry them.
struct Sharing {
    mounts: Vec<berth_proto::shares::ShareMount>,
    devices: Vec<ShareDevice>,
    /// virtio-fs shares: (host folder, socket, read-only) for `virtiofsd`.
    daemons: Vec<(std::path::PathBuf, std::path::PathBuf, bool)>,
    summary: String,
}

fn plan_sharing(settings: &VmSettings, os: HostOs, vm: &VmPaths) -> Result<Sharing, VmError> {
    let (fs, why) = shares::resolve_backend(
        settings.file_sharing,
        os,
        image::find_program("virtiofsd").is_some(),
    )
    .map_err(VmError::Boot)?;
    let Some(fs) = fs else {
        tracing::warn!("no shared folders: {why}");
        return Ok(Sharing {
            mounts: Vec::new(),
            devices: Vec::new(),
            daemons: Vec::new(),
            summary: format!("off ({why})"),
        });
    };
    let (planned, warnings) = shares::plan(os, &settings.shared_folders, fs, |p| p.exists());
    for w in warnings {
        tracing::warn!("{w}");
    }
    let mut s = Sharing {
        mounts: Vec::new(),
        devices: Vec::new(),
        daemons: Vec::new(),
        summary: format!("{} ({why})", fs.name()),
    };
    for (i, p) in planned.into_iter().enumerate() {
        tracing::info!(folder = %p.host_path.display(), guest = %p.mount.guest_path, fs = fs.name(), "sharing");
        s.devices.push(match fs {
            berth_proto::shares::ShareFs::Virtiofs => {
                let socket = vm.dir.join(format!("fs{i}.sock"));
                s.daemons
                    .push((p.host_path.clone(), socket.clone(), p.mount.read_only));
                ShareDevice::Virtiofs {
                    tag: p.mount.tag.clone(),
                    socket,
                }
            }
            berth_proto::shares::ShareFs::NineP => ShareDevice::NineP {
                tag: p.mount.tag.clone(),
                path: p.host_path.clone(),
                read_only: p.mount.read_only,
            },
        });
        s.mounts.push(p.mount);
    }
    Ok(s)
}

pub(crate) fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

pub async fn supervise(opts: SuperviseOptions) -> Result<(), VmError> {
    let vm = VmPaths::new(opts.paths.vm_dir());
    std::fs::create_dir_all(&vm.dir).map_err(io_err("creating the VM directory"))?;
    let _ = crate::os::set_mode(&vm.dir, 0o700);
    if let Some(pid) = super::running_supervisor(&vm) {
        if pid != std::process::id() {
            return Err(VmError::AlreadyRunning(pid));
        }
    }
    std::fs::write(vm.supervisor_pid(), std::process::id().to_string())
        .map_err(io_err("writing the supervisor pid"))?;
    let result = run(&opts, &vm).await;
    for f in [vm.supervisor_pid(), vm.state(), vm.qemu_pid()] {
        let _ = std::fs::remove_file(f);
    }
    result
}

async fn run(opts: &SuperviseOptions, vm: &VmPaths) -> Result<(), VmError> {
    let settings = &opts.settings;
    let os = HostOs::current();
    let arch = Arch::current();
    let img = image::find(settings.image_dir.as_deref(), arch).map_err(|tried| {
        VmError::NoImage(
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    if super::ensure_disk(&vm.data_disk(), settings.disk_gib)? {
        tracing::info!(disk = %vm.data_disk().display(), "created the data disk");
    }
    let kernel = img
        .kernel_file(&vm.dir.join("kernel"))
        .map_err(io_err("unpacking the guest kernel"))?;
    let sharing = plan_sharing(settings, os, vm)?;
    let kind = resolve_transport(settings.transport);
    let (bare, device) = transport_for(kind, vm);
    // Every way into the guest goes through the gate, which resumes a paused VM.
    let gate = Arc::new(IdleGate::new(bare, vm.qmp_endpoint()));
    let transport: Arc<dyn Transport> = gate.clone();
    let mut sleep = gate.watch();
    let mut accel = argv::resolve_accel(settings.accel, os, kvm_usable());
    if accel == Accel::Tcg {
        tracing::warn!("no hardware acceleration: the VM runs under TCG emulation and is slow");
    }

    let endpoint = opts.paths.user_docker_endpoint();
    let listener = crate::forward::DockerListener::bind(&endpoint)?.with_default_endpoint();
    let socket_task = tokio::spawn(listener.serve(transport.clone()));
    let mirror = Arc::new(Mutex::new(PortMirror::new(transport.clone())));
    let ready_signal = ReadySignal::bind(kind, vm);
    let reaper = Reaper::new().map_err(io_err("setting up the VM's process guard"))?;

    let mut stop = StopRequests::install().map_err(io_err("installing stop handlers"))?;

    let mut state = VmState {
        phase: Phase::Starting,
        supervisor_pid: std::process::id(),
        qemu_pid: None,
        accel: format!("{accel:?}").to_lowercase(),
        transport: transport.name().to_string(),
        transport_why: transport_reason(settings.transport, kind),
        docker_host: endpoint.docker_host(),
        restarts: 0,
        last_crash: None,
        boot_ms: None,
        file_sharing: sharing.summary.clone(),
        shared_folders: sharing
            .mounts
            .iter()
            .map(|m| m.guest_path.clone())
            .collect(),
        paused_since: None,
    };
    let result = loop {
        let spec = MachineSpec {
            os,
            arch,
            accel,
            cpus: settings.cpus,
            memory_mib: settings.memory_mib,
            kernel: kernel.clone(),
            initrd: img.initrd.clone(),
            cmdline: argv::cmdline(
                os,
                arch,
                &device,
                &settings.insecure_registries,
                &sharing.mounts,
                settings.debug,
            ),
            data_disk: vm.data_disk(),
            qmp: vm.qmp_endpoint(),
            console_log: vm.console_log(),
            pidfile: vm.qemu_pid(),
            transport: device.clone(),
            firmware: qboot(os, arch),
            shares: sharing.devices.clone(),
        };
        state.accel = format!("{accel:?}").to_lowercase();
        ready_signal.drain();
        let mut machine = match launch(&spec, vm, &sharing, &reaper).await {
            Ok(m) => m,
            Err(e) => break Err(e),
        };
        state.qemu_pid = machine.qemu.id();
        state.write(vm)?;
        let booted = Instant::now();
        tracing::info!(accel = %state.accel, transport = transport.name(), "VM booting");

        // Wait for the engine, a dead QEMU, or a stop request. With a ready
        // signal, the first CONNECT waits for it (see berth_proto::READY_PORT).
        let deadline = tokio::time::Instant::now() + BOOT_TIMEOUT;
        let mut signaled = ready_signal.polls();
        let mut warned_unsignaled = false;
        let ready = loop {
            tokio::select! {
                status = machine.qemu.wait() => break Err(status),
                _ = stop.recv() => break Ok(false),
                _ = ready_signal.wait(), if !signaled => {
                    tracing::info!(after_ms = booted.elapsed().as_millis() as u64, "the guest says it is ready");
                    signaled = true;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    machine.kill().await;
                    break Ok(false);
                }
                _ = tokio::time::sleep(Duration::from_millis(50)), if signaled => {
                    if transport::ping(transport.as_ref()).await {
                        break Ok(true);
                    }
                }
                // A ready signal lost on its way (the guest gives up after a
                // while): ask the engine itself, bounded, as the poll does.
                _ = tokio::time::sleep(Duration::from_secs(2)), if !signaled && booted.elapsed() > READY_GRACE => {
                    if !warned_unsignaled {
                        tracing::warn!("no ready signal from the guest yet; asking the engine directly");
                        warned_unsignaled = true;
                    }
                    let ping = transport::ping(transport.as_ref());
                    if tokio::time::timeout(Duration::from_secs(10), ping).await == Ok(true) {
                        break Ok(true);
                    }
                }
            }
        };
        match ready {
            Ok(true) => {}
            Ok(false) if tokio::time::Instant::now() >= deadline => {
                break Err(VmError::Boot(format!(
                    "the engine did not answer within {}s; see {}",
                    BOOT_TIMEOUT.as_secs(),
                    vm.console_log().display()
                )));
            }
            Ok(false) => {
                shutdown(&mut machine, transport.as_ref(), vm, false).await;
                break Ok(());
            }
            Err(status) => {
                // KVM that is there but cannot run this guest: fall back once.
                if accel == Accel::Kvm && settings.accel == Accel::Auto {
                    tracing::warn!(status = ?status.ok(), "the VM failed under KVM; retrying under TCG");
                    accel = Accel::Tcg;
                    machine.kill_backends().await;
                    continue;
                }
                machine.kill().await;
                break Err(VmError::Boot(format!(
                    "QEMU exited during boot ({}); see {}",
                    describe(status.ok()),
                    vm.console_log().display()
                )));
            }
        }
        let boot_ms = booted.elapsed().as_millis() as u64;
        tracing::info!(boot_ms, "engine ready");
        state.phase = Phase::Running;
        state.boot_ms = Some(boot_ms);
        state.paused_since = None;
        state.write(vm)?;
        let control_task = tokio::spawn(control::run(
            transport.clone(),
            mirror.clone(),
            gate.watch(),
        ));
        gate.arm();
        // vhost-device-vsock has been seen to lose its rings across a QMP
        // stop/cont (the link never answers again, about one pause in 25
        // here); kernel vhost-vsock and the serial mux come back intact.
        let pausable = kind != crate::settings::TransportKind::Hybrid;
        if settings.idle_pause_seconds > 0 && !pausable {
            tracing::warn!(
                "idle pause is off with hybrid vsock (vhost-device-vsock does not survive a pause); \
                 load vhost_vsock (sudo modprobe vhost_vsock) or set \"transport\": \"serial\" to have it"
            );
        }
        let idle_task = (settings.idle_pause_seconds > 0 && pausable).then(|| {
            let gate = gate.clone();
            let after = Duration::from_secs(settings.idle_pause_seconds.into());
            tokio::spawn(async move { gate.pause_when_idle(after).await })
        });
        // `berth vm status` reads the guest's memory from the balloon's statistics.
        let q = vm.qmp_endpoint();
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || qmp::enable_memory_stats(&q, 5)).await
        {
            tracing::warn!(error = %e, "no guest memory statistics");
        }

        let exited = loop {
            tokio::select! {
                status = machine.qemu.wait() => break Some(status),
                _ = stop.recv() => break None,
                Ok(()) = sleep.changed() => {
                    state.paused_since = match *sleep.borrow_and_update() {
                        Sleep::Paused(since) => Some(since),
                        Sleep::Awake => None,
                    };
                    state.write(vm)?;
                }
            }
        };
        gate.disarm();
        if let Some(t) = idle_task {
            t.abort();
        }
        state.paused_since = None;
        control_task.abort();
        mirror.lock().await.clear();
        match exited {
            None => {
                state.phase = Phase::Stopping;
                state.write(vm)?;
                // The agent's shutdown, and ACPI's, need a running guest.
                if let Err(e) = gate.wake().await {
                    tracing::warn!(error = %e, "could not resume the VM to shut it down");
                }
                shutdown(&mut machine, transport.as_ref(), vm, true).await;
                break Ok(());
            }
            Some(status) => {
                machine.kill_backends().await;
                let why = format!("QEMU exited unexpectedly ({})", describe(status.ok()));
                tracing::error!("{why}");
                state.last_crash = Some(why.clone());
                if !settings.restart_on_crash || state.restarts >= MAX_RESTARTS {
                    break Err(VmError::Boot(why));
                }
                state.restarts += 1;
                state.phase = Phase::Restarting;
                state.write(vm)?;
                tracing::info!(restart = state.restarts, "restarting the VM");
            }
        }
    };
    socket_task.abort();
    if let DockerEndpoint::Unix(sock_path) = &endpoint {
        let _ = std::fs::remove_file(sock_path);
    }
    ready_signal.cleanup(vm);
    result
}

/// qboot where QEMU ships it (Debian's qemu-system-data); SeaBIOS otherwise.
fn qboot(os: HostOs, arch: Arch) -> Option<std::path::PathBuf> {
    if arch != Arch::X86_64 || os == HostOs::Windows {
        return None;
    }
    [
        "/usr/share/qemu/qboot.rom",
        "/opt/homebrew/share/qemu/qboot.rom",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file())
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "status unknown".into(), crate::os::describe_exit)
}

/// Waits for a vhost-user backend's socket: QEMU must find it when it starts.
async fn wait_for_socket(socket: &std::path::Path, who: &str) -> Result<(), VmError> {
    let t = Instant::now();
    while !socket.exists() {
        if t.elapsed() > Duration::from_secs(10) {
            return Err(VmError::Boot(format!("{who} did not create its socket")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits (a few seconds at most) until nobody holds `virtiofsd`'s pid-file
/// lock; a missing file is free.
async fn wait_for_unlocked(pid_file: &std::path::Path) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let Ok(f) = std::fs::File::open(pid_file) else {
            return;
        };
        // flock(2), as virtiofsd takes it; released when `f` closes.
        if f.try_lock().is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `virtiofsd` for one share. Unprivileged, it runs in a user namespace where
/// the user is root, and every guest uid is squashed onto that root: whatever a
/// container creates lands on the host owned by the user, as with Docker
/// Desktop. `--cache auto` keeps metadata for a second, which bounds how late
/// a change on one side is seen on the other.
fn virtiofsd_command(
    prog: &std::path::Path,
    folder: &std::path::Path,
    socket: &std::path::Path,
    read_only: bool,
    log: std::fs::File,
) -> Command {
    let mut cmd = Command::new(prog);
    cmd.arg("--socket-path")
        .arg(socket)
        .arg("--shared-dir")
        .arg(folder)
        .args([
            "--cache",
            "auto",
            "--sandbox",
            "namespace",
            "--log-level",
            "warn",
        ]);
    if read_only {
        cmd.arg("--readonly");
    }
    if !crate::os::is_root() {
        let all = "squash-guest:0:0:4294967295";
        cmd.args(["--translate-uid", all, "--translate-gid", all]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    cmd
}

async fn launch(
    spec: &MachineSpec,
    vm: &VmPaths,
    sharing: &Sharing,
    reaper: &Reaper,
) -> Result<Machine, VmError> {
    let mut guards = Vec::new();
    // Each child is tied to the supervisor right after it starts.
    let mut spawn = |cmd: &mut Command, what: &str| -> Result<Child, VmError> {
        reaper.prepare(cmd);
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if what == "QEMU" => {
                VmError::MissingProgram("qemu-system")
            }
            _ => VmError::Io {
                what: format!("starting {what}"),
                source: e,
            },
        })?;
        guards.push(
            reaper
                .adopt(&child)
                .map_err(io_err(format!("tying {what} to the supervisor")))?,
        );
        Ok(child)
    };
    for f in [vm.qmp(), vm.mux(), vm.vhost_user(), vm.vsock_uds()] {
        let _ = std::fs::remove_file(f);
    }
    let mut backends = Vec::new();
    for (i, (folder, socket, read_only)) in sharing.daemons.iter().enumerate() {
        let _ = std::fs::remove_file(socket);
        // A killed predecessor's worker may still be exiting; virtiofsd refuses
        // to start while it holds the pid-file lock.
        wait_for_unlocked(&socket.with_extension("sock.pid")).await;
        let prog = image::find_program("virtiofsd").ok_or(VmError::MissingProgram("virtiofsd"))?;
        let log = std::fs::File::create(vm.dir.join(format!("virtiofsd-{i}.log")))
            .map_err(io_err("creating the virtiofsd log"))?;
        let mut cmd = virtiofsd_command(&prog, folder, socket, *read_only, log);
        crate::os::own_group(&mut cmd);
        backends.push(spawn(&mut cmd, "virtiofsd")?);
        wait_for_socket(socket, "virtiofsd").await?;
    }
    if let TransportDevice::Hybrid { socket } = &spec.transport {
        let prog = image::find_program("vhost-device-vsock")
            .ok_or(VmError::MissingProgram("vhost-device-vsock"))?;
        let mut cmd = Command::new(prog);
        cmd.arg("--guest-cid")
            .arg("3")
            .arg("--socket")
            .arg(socket)
            .arg("--uds-path")
            .arg(vm.vsock_uds())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        crate::os::own_group(&mut cmd);
        backends.push(spawn(&mut cmd, "vhost-device-vsock")?);
        wait_for_socket(socket, "vhost-device-vsock").await?;
    }
    let mut cmd = Command::new(spec.binary());
    cmd.args(spec.argv())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let qemu = spawn(&mut cmd, "QEMU")?;
    Ok(Machine {
        qemu,
        backends,
        _guards: guards,
    })
}

async fn wait_exit(m: &mut Machine, within: Duration) -> bool {
    tokio::time::timeout(within, m.qemu.wait()).await.is_ok()
}

/// The clean way down, escalating: the agent's shutdown RPC, the ACPI button,
/// QMP `quit`, SIGKILL.
async fn shutdown(m: &mut Machine, transport: &dyn Transport, vm: &VmPaths, engine_up: bool) {
    let mut done = false;
    if engine_up && control::request_shutdown(transport).await {
        done = wait_exit(m, Duration::from_secs(30)).await;
    }
    if !done {
        let q = vm.qmp_endpoint();
        if tokio::task::spawn_blocking(move || qmp::system_powerdown(&q))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            done = wait_exit(m, Duration::from_secs(15)).await;
        }
    }
    if !done {
        tracing::warn!("the guest ignored the shutdown request; quitting QEMU");
        let q = vm.qmp_endpoint();
        let _ = tokio::task::spawn_blocking(move || qmp::quit(&q)).await;
        done = wait_exit(m, Duration::from_secs(5)).await;
    }
    if !done {
        let _ = m.qemu.kill().await;
    }
    m.kill_backends().await;
}
