//! The OCI runtime spec for a container, as data: Docker's defaults (namespaces, mounts,
//! capability set, masked and read-only paths, device rules) plus what the container
//! asks for. Pure: no syscalls, so every rule is unit-tested.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths Docker hides from containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the process inside the container is.
#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub terminal: bool,
}

/// Container-level choices.
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub cap_add: Vec<Capability>,
    pub cap_drop: Vec<Capability>,
    pub no_new_privileges: bool,
    /// `cgroupsPath`, e.g. `/berth/<id>`.
    pub cgroups_path: PathBuf,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `--tmpfs PATH[:OPTIONS]`.
    pub tmpfs: Vec<(String, String)>,
    /// `--init`: this binary is mounted at /sbin/docker-init and runs the command.
    pub init: Option<PathBuf>,
    pub resources: Resources,
    /// Mounts beyond Docker's defaults, in order: volumes, bind mounts and the
    /// container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`. A mount on a
    /// path replaces a default mount there.
    pub mounts: Vec<UserMount>,
    /// Which network namespace the container gets.
    pub network: NetworkNamespace,
    /// `--ulimit`: (OCI name such as `RLIMIT_NOFILE`, soft, hard).
    pub rlimits: Vec<(String, u64, u64)>,
    /// Kernel parameters set in the container's namespaces, already checked.
    pub sysctl: std::collections::HashMap<String, String>,
    /// A cgroup namespace of its own (dockerd's default on cgroup v2), so the
    /// container sees its own cgroup as `/` and no one else's.
    pub cgroupns: bool,
}

/// The OCI name of a `--ulimit` resource, for the names Docker takes.
pub fn rlimit_name(docker: &str) -> Option<&'static str> {
    Some(match docker {
        "as" => "RLIMIT_AS",
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        _ => return None,
    })
}

/// A mount the user (or the engine, for `/etc` files) asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMount {
    /// A host path (a volume's data directory or a bind source) at `target`.
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs at `target` with mount options such as `size=64m,mode=1777`.
    Tmpfs { target: String, options: String },
}

/// The container's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A new, empty one (loopback only): `--network none`.
    #[default]
    New,
    /// The engine's own (`--network host`).
    Host,
    /// One the engine prepared (bind-mounted at this path) and wired to networks.
    Path(PathBuf),
}

/// cgroup limits from HostConfig (`-m`, `--memory-swap`, `--cpus`, `--cpu-shares`,
/// `--cpu-quota/--cpu-period`, `--cpuset-cpus/-mems`, `--pids-limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// Reads Docker's HostConfig fields; zero means "not set", as in the API.
    pub fn from_host_config(hc: &bollard_stubs::models::HostConfig) -> Resources {
        let pos = |v: Option<i64>| v.filter(|x| *x > 0);
        let (mut quota, mut period) = (pos(hc.cpu_quota), pos(hc.cpu_period).map(|p| p as u64));
        if let Some(n) = pos(hc.nano_cpus) {
            // --cpus: a quota over Docker's default 100 ms period (µs per 10^9
            // nano-CPUs: n × 100_000 / 10^9, without the product that overflows).
            period = Some(100_000);
            quota = Some(n / 10_000);
        }
        Resources {
            memory: pos(hc.memory),
            memory_swap: hc.memory_swap.filter(|x| *x != 0),
            cpu_shares: pos(hc.cpu_shares).map(|x| x as u64),
            cpu_quota: quota,
            cpu_period: period,
            cpuset_cpus: hc.cpuset_cpus.clone().filter(|s| !s.is_empty()),
            cpuset_mems: hc.cpuset_mems.clone().filter(|s| !s.is_empty()),
            pids_limit: pos(hc.pids_limit),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("building the OCI spec: {0}")]
pub struct SpecError(String);

fn err(e: impl std::fmt::Display) -> SpecError {
    SpecError(e.to_string())
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(err)
}

/// Docker's default mounts.
fn default_mounts(privileged: bool) -> Result<Vec<Mount>, SpecError> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        )?,
    ])
}

/// The cgroup part of the spec; also what `docker update` applies to a running
/// container.
pub fn linux_resources(
    r: &Resources,
    devices: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    let mut resources = LinuxResourcesBuilder::default().devices(devices);
    if r.memory.is_some() || r.memory_swap.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(l) = r.memory {
            m = m.limit(l);
        }
        if let Some(s) = r.memory_swap {
            m = m.swap(s);
        } else if let Some(l) = r.memory {
            // Docker's default: as much swap as memory.
            m = m.swap(l.saturating_mul(2));
        }
        resources = resources.memory(m.build().map_err(err)?);
    }
    if r.cpu_shares.is_some()
        || r.cpu_quota.is_some()
        || r.cpuset_cpus.is_some()
        || r.cpuset_mems.is_some()
    {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(v) = r.cpu_shares {
            cpu = cpu.shares(v);
        }
        if let Some(v) = r.cpu_quota {
            cpu = cpu.quota(v);
        }
        if let Some(v) = r.cpu_period {
            cpu = cpu.period(v);
        }
        if let Some(v) = &r.cpuset_cpus {
            cpu = cpu.cpus(v.clone());
        }
        if let Some(v) = &r.cpuset_mems {
            cpu = cpu.mems(v.clone());
        }
        resources = resources.cpu(cpu.build().map_err(err)?);
    }
    if let Some(p) = r.pids_limit {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build().map_err(err)?);
    }
    resources.build().map_err(err)
}

/// Docker's mounts plus `--tmpfs` and the `--init` binary.
fn mounts(c: &ContainerConfig) -> Result<Vec<Mount>, SpecError> {
    let mut all = default_mounts(c.privileged)?;
    for (path, opts) in &c.tmpfs {
        // Docker's defaults for --tmpfs, then the user's options (later ones win).
        let mut o: Vec<&str> = vec!["noexec", "nosuid", "nodev"];
        o.extend(opts.split(',').filter(|x| !x.is_empty()));
        all.retain(|m| m.destination() != Path::new(path));
        // `--shm-size` keeps the source name dockerd gives /dev/shm (`df` shows it).
        let source = if path == "/dev/shm" { "shm" } else { "tmpfs" };
        all.push(mount(path, "tmpfs", source, &o)?);
    }
    for m in &c.mounts {
        let (target, built) = match m {
            UserMount::Bind {
                source,
                target,
                readonly,
            } => {
                let mut o = vec!["rbind"];
                o.push(if *readonly { "ro" } else { "rw" });
                (
                    target,
                    mount(target, "bind", &source.display().to_string(), &o)?,
                )
            }
            UserMount::Tmpfs { target, options } => {
                let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
                o.extend(options.split(',').filter(|x| !x.is_empty()));
                (target, mount(target, "tmpfs", "tmpfs", &o)?)
            }
        };
        all.retain(|x| x.destination() != Path::new(target));
        all.push(built);
    }
    if let Some(init) = &c.init {
        all.push(mount(
            INIT_PATH,
            "bind",
            &init.display().to_string(),
            &["bind", "ro", "nosuid", "nodev"],
        )?);
    }
    Ok(all)
}

/// Where `--init`'s binary appears in the container, as with Docker.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The effective capability set: Docker's defaults, `--cap-add`, `--cap-drop`
/// (`ALL` is expressed by the caller expanding it), or everything when privileged.
pub fn capabilities(c: &ContainerConfig) -> HashSet<Capability> {
    if c.privileged {
        return all_capabilities();
    }
    let mut set: HashSet<Capability> = DEFAULT_CAPS.iter().copied().collect();
    set.extend(c.cap_add.iter().copied());
    for d in &c.cap_drop {
        set.remove(d);
    }
    set
}

/// Every capability this engine itself holds in its bounding set, which is what
/// `--privileged` grants (as moby does): a capability the engine lacks cannot be given,
/// and asking for it makes `capset` fail.
fn all_capabilities() -> HashSet<Capability> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    (0..64)
        .filter(|i| bounding & (1u64 << i) != 0)
        .filter_map(|i| caps_name(i).and_then(parse_capability))
        .collect()
}

/// `SYS_ADMIN`, `CAP_SYS_ADMIN` or `sys_admin` → the capability.
pub fn parse_capability(name: &str) -> Option<Capability> {
    use std::str::FromStr;
    let upper = name.to_ascii_uppercase();
    Capability::from_str(upper.strip_prefix("CAP_").unwrap_or(&upper)).ok()
}

/// Capability names by number, as the kernel numbers them (up to CAP_CHECKPOINT_RESTORE).
fn caps_name(i: u32) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES.get(i as usize).copied()
}

/// The OCI process: what runs, as whom, with which capabilities. Also used alone for
/// `docker exec`.
pub fn process(
    p: &ProcessConfig,
    c: &ContainerConfig,
) -> Result<oci_spec::runtime::Process, SpecError> {
    let caps = capabilities(c);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(err)?;
    let user = UserBuilder::default()
        .uid(p.uid)
        .gid(p.gid)
        .additional_gids(p.additional_gids.clone())
        .build()
        .map_err(err)?;
    let b = ProcessBuilder::default()
        .terminal(p.terminal)
        .user(user)
        .args(p.args.clone())
        .env(p.env.clone())
        .cwd(if p.cwd.is_empty() {
            "/"
        } else {
            p.cwd.as_str()
        })
        .capabilities(capabilities);
    let mut process = b.build().map_err(err)?;
    if !c.rlimits.is_empty() {
        let mut limits = Vec::new();
        for (name, soft, hard) in &c.rlimits {
            // oci-spec's type names are its serde names (`RLIMIT_NOFILE`).
            let typ: oci_spec::runtime::PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| err(format!("unknown rlimit {name}")))?;
            limits.push(
                oci_spec::runtime::PosixRlimitBuilder::default()
                    .typ(typ)
                    .soft(*soft)
                    .hard(*hard)
                    .build()
                    .map_err(err)?,
            );
        }
        process.set_rlimits(Some(limits));
    }
    // `Some(true)` or absent, never `Some(false)`: libcontainer loads the seccomp filter
    // before dropping capabilities only when the field is absent, and later, without
    // CAP_SYS_ADMIN, the load fails. (oci-spec's default is `Some(true)`, stricter than
    // Docker, so it is cleared explicitly.)
    process.set_no_new_privileges(c.no_new_privileges.then_some(true));
    Ok(process)
}

/// Builds the whole spec.
pub fn build(p: &ProcessConfig, c: &ContainerConfig) -> Result<Spec, SpecError> {
    let process = if c.init.is_some() {
        let mut wrapped = p.clone();
        wrapped.args = [INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(p.args.iter().cloned())
            .collect();
        process(&wrapped, c)?
    } else {
        process(p, c)?
    };
    let mut namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|t| LinuxNamespaceBuilder::default().typ(t).build().map_err(err))
    .collect::<Result<Vec<_>, _>>()?;
    if c.cgroupns {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()
                .map_err(err)?,
        );
    }
    let net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    match &c.network {
        NetworkNamespace::New => namespaces.push(net.build().map_err(err)?),
        NetworkNamespace::Host => {}
        NetworkNamespace::Path(p) => namespaces.push(net.path(p.clone()).build().map_err(err)?),
    }
    let devices = if c.privileged {
        vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()
            .map_err(err)?]
    } else {
        vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(err)?]
    };
    let resources = linux_resources(&c.resources, devices)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(c.cgroups_path.clone());
    let (masked, readonly): (&[&str], &[&str]) = if c.privileged {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    linux = linux
        .masked_paths(masked.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(readonly.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    if !c.privileged && !c.seccomp_unconfined {
        if let Some(profile) = super::seccomp::default_profile(&capabilities(c)) {
            linux = linux.seccomp(profile);
        }
    }
    if !c.sysctl.is_empty() {
        linux = linux.sysctl(c.sysctl.clone());
    }
    let linux = linux.build().map_err(err)?;
    let root = RootBuilder::default()
        .path(c.rootfs.clone())
        .readonly(c.readonly_rootfs)
        .build()
        .map_err(err)?;
    SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(root)
        .hostname(c.hostname.clone())
        .mounts(mounts(c)?)
        .linux(linux)
        .build()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> (ProcessConfig, ContainerConfig) {
        (
            ProcessConfig {
                args: vec!["sh".into()],
                ..Default::default()
            },
            ContainerConfig {
                hostname: "abc".into(),
                rootfs: "/r".into(),
                cgroups_path: "/berth/abc".into(),
                ..Default::default()
            },
        )
    }

    /// Found while writing the `api_request` fuzz target (by reading): a create body's
    /// NanoCpus above 9.2e13 and Memory above 4.6e18 overflowed i64, a panic in debug
    /// builds.
    #[test]
    fn huge_cpu_and_memory_limits_do_not_overflow() {
        let hc = bollard_stubs::models::HostConfig {
            nano_cpus: Some(i64::MAX),
            memory: Some(i64::MAX),
            ..Default::default()
        };
        let r = Resources::from_host_config(&hc);
        assert_eq!(r.cpu_quota, Some(i64::MAX / 10_000));
        let l = linux_resources(&r, vec![]).unwrap();
        assert_eq!(l.memory().as_ref().and_then(|m| m.swap()), Some(i64::MAX));
    }

    #[test]
    fn user_mounts_and_network_namespace() {
        let (p, mut c) = base();
        c.mounts = vec![
            UserMount::Bind {
                source: "/v/data".into(),
                target: "/data".into(),
                readonly: true,
            },
            UserMount::Tmpfs {
                target: "/dev/shm".into(),
                options: "size=1m".into(),
            },
        ];
        c.network = NetworkNamespace::Path("/run/netns/x".into());
        let spec = build(&p, &c).unwrap();
        let mounts = spec.mounts().as_ref().unwrap();
        let data = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        assert_eq!(data.source().as_deref(), Some(Path::new("/v/data")));
        assert!(data.options().as_ref().unwrap().contains(&"ro".to_string()));
        let shm: Vec<_> = mounts
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1, "the user's /dev/shm replaces the default");
        assert!(shm[0]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"size=1m".to_string()));
        let ns = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap();
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/x")));
        c.network = NetworkNamespace::Host;
        let spec = build(&p, &c).unwrap();
        let ns = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap();
        assert!(ns.iter().all(|n| n.typ() != LinuxNamespaceType::Network));
    }

    #[test]
    fn docker_defaults() {
        let (p, c) = base();
        let spec = build(&p, &c).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains(&Capability::SysAdmin));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        assert_eq!(spec.process().as_ref().unwrap().cwd(), &PathBuf::from("/"));
    }

    #[test]
    fn resources_from_host_config() {
        let hc = bollard_stubs::models::HostConfig {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(50),
            ..Default::default()
        };
        let r = Resources::from_host_config(&hc);
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(150_000), Some(100_000)));
        assert_eq!(r.pids_limit, Some(50));
        let (p, mut c) = base();
        c.resources = r;
        let spec = build(&p, &c).unwrap();
        let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 50);
    }

    #[test]
    fn cap_add_drop_and_privileged() {
        let (p, mut c) = base();
        c.cap_add = vec![Capability::SysAdmin];
        c.cap_drop = vec![Capability::NetRaw];
        let caps = capabilities(&c);
        assert!(caps.contains(&Capability::SysAdmin) && !caps.contains(&Capability::NetRaw));
        c.privileged = true;
        assert!(capabilities(&c).len() >= 30, "{}", capabilities(&c).len());
        assert_eq!(
            parse_capability("cap_net_admin"),
            Some(Capability::NetAdmin)
        );
        assert_eq!(parse_capability("NET_ADMIN"), Some(Capability::NetAdmin));
        let spec = build(&p, &c).unwrap();
        assert!(spec
            .linux()
            .as_ref()
            .unwrap()
            .masked_paths()
            .as_ref()
            .is_none_or(|m| m.is_empty()));
    }
}
