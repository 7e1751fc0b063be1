//! A container's OCI bundle: the root filesystem mounted through the runtime, the
//! mounts it gets (volumes filled from the image on first use, bind sources, tmpfs),
//! the process and container settings (also for execs) and `config.json`; and the
//! json-file log's rotation settings.

use std::path::{Path, PathBuf};

use bollard_stubs::models::HostConfig;

use super::net::BundleNet;
use super::{archive, config, io_err, ContainerError, ContainerRecord};
use crate::runtime::rootfs::RootfsDirs;
use crate::runtime::{spec, ContainerRuntime};
use crate::volumes::mounts::Kind;
use crate::volumes::VolumeService;

/// Berth caps every json-file log unless told otherwise (dockerd's default is
/// unbounded, which fills a VM's disk): 100 MiB in up to 3 files.
const DEFAULT_LOG_MAX_SIZE: u64 = 100 << 20;
const DEFAULT_LOG_MAX_FILES: u32 = 3;

/// `--log-opt max-size=…,max-file=…` → (bytes per file, files kept).
pub fn log_rotation(hc: &HostConfig) -> (u64, u32) {
    let opts = hc
        .log_config
        .as_ref()
        .and_then(|l| l.config.clone())
        .unwrap_or_default();
    let size = opts
        .get("max-size")
        .and_then(|s| crate::runtime::logfile::parse_size(s))
        .unwrap_or(DEFAULT_LOG_MAX_SIZE);
    let files = opts
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LOG_MAX_FILES);
    (size, files)
}

/// What `POST /containers/{id}/exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub privileged: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `DetachKeys` (`ctrl-p,ctrl-q` when empty), parsed by the API layer.
    pub detach_keys: Option<String>,
}

/// Mounts the rootfs and writes `config.json` for the runtime (blocking work).
pub(super) fn prepare_bundle(
    runtime: &dyn ContainerRuntime,
    dir: &Path,
    rec: &ContainerRecord,
    layers: &[PathBuf],
    init_binary: Option<PathBuf>,
    net: BundleNet,
    volumes: &VolumeService,
) -> Result<(), ContainerError> {
    let dirs = RootfsDirs::under(dir);
    let _ = runtime.unmount_rootfs(&dirs);
    runtime
        .mount_rootfs(layers, &dirs)
        .map_err(io_err("mounting the container's root filesystem"))?;
    let (mut p, mut c) = runtime_configs(rec, &dirs.merged, None)?;
    for e in net.env {
        let key = e.split('=').next().unwrap_or_default();
        if !p.env.iter().any(|x| x.split('=').next() == Some(key)) {
            p.env.push(e);
        }
    }
    // The /etc files first: a user's bind on the same path replaces them.
    c.mounts = net.mounts;
    c.mounts.extend(user_mounts(rec, &dirs.merged, volumes)?);
    c.network = net.namespace;
    if rec.host_config.init == Some(true) {
        c.init = Some(init_binary.ok_or_else(|| ContainerError::Start {
            message: "--init needs a static tini (apt-get install tini, or --init-path)".into(),
            exit_code: 126,
        })?);
    }
    if !c.rootfs.join(p.cwd.trim_start_matches('/')).exists() {
        let _ = std::fs::create_dir_all(c.rootfs.join(p.cwd.trim_start_matches('/')));
    }
    let spec = spec::build(&p, &c).map_err(|e| ContainerError::Start {
        message: e.to_string(),
        exit_code: 126,
    })?;
    spec.save(dir.join("config.json"))
        .map_err(|e| ContainerError::Io {
            context: "writing config.json".into(),
            source: std::io::Error::other(e.to_string()),
        })
}

/// Readies each of the container's mounts for the runtime: volumes are mounted (their
/// device, if any) and filled from the image on first use, missing `-v` bind sources
/// are created as dockerd does.
fn user_mounts(
    rec: &ContainerRecord,
    rootfs: &Path,
    volumes: &VolumeService,
) -> Result<Vec<spec::UserMount>, ContainerError> {
    let mut out = Vec::new();
    for m in &rec.mounts {
        let target = m.destination.clone();
        match m.kind {
            Kind::Volume => {
                let data = volumes.mount(&m.name, &rec.id, &m.destination, m.rw)?;
                if m.copy_data {
                    // Resolved inside the rootfs: an image symlink cannot point the copy
                    // at the host.
                    let src = archive::resolve(rootfs, &m.destination, true)?;
                    crate::volumes::copyup::copy_if_empty(&src, &data).map_err(io_err(format!(
                        "copying image content into volume {}",
                        m.name
                    )))?;
                }
                let source = if m.subpath.is_empty() {
                    data
                } else {
                    let p = archive::resolve(&data, &m.subpath, true)?;
                    if !p.exists() {
                        return Err(ContainerError::InvalidArgument(format!(
                            "cannot access path {}: no such file or directory",
                            p.display()
                        )));
                    }
                    p
                };
                out.push(spec::UserMount::Bind {
                    source,
                    target,
                    readonly: !m.rw,
                });
            }
            Kind::Bind => {
                let source = PathBuf::from(&m.source);
                if !source.exists() {
                    if !m.create_source {
                        return Err(ContainerError::InvalidArgument(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    std::fs::create_dir_all(&source).map_err(io_err(format!(
                        "error while creating mount source path '{}'",
                        m.source
                    )))?;
                }
                out.push(spec::UserMount::Bind {
                    source,
                    target,
                    readonly: !m.rw,
                });
            }
            Kind::Tmpfs => out.push(spec::UserMount::Tmpfs {
                target,
                options: m.tmpfs_options.clone(),
            }),
        }
    }
    Ok(out)
}

/// The process and container settings for the container's own process, or for an
/// `exec` in it (which overrides command, env, user, working dir and TTY).
pub(super) fn runtime_configs(
    rec: &ContainerRecord,
    rootfs: &Path,
    exec: Option<&ExecRequest>,
) -> Result<(spec::ProcessConfig, spec::ContainerConfig), ContainerError> {
    let user_spec = exec
        .and_then(|e| e.user.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| rec.config.user.clone())
        .unwrap_or_default();
    let start_err = |e: config::UserError| ContainerError::Start {
        message: e.to_string(),
        exit_code: 126,
    };
    let mut user = config::resolve_user(&user_spec, rootfs).map_err(start_err)?;
    let added = config::group_add(
        &rec.host_config.group_add.clone().unwrap_or_default(),
        rootfs,
    )
    .map_err(start_err)?;
    for g in added {
        if !user.additional_gids.contains(&g) {
            user.additional_gids.push(g);
        }
    }
    let mut env = rec.config.env.clone().unwrap_or_default();
    if let Some(e) = exec {
        env = config::merge_env(&env, &e.env);
    }
    // A bare name (`-e NAME` the client did not have) stays in Config.Env, as
    // dockerd keeps it, and unsets NAME (dockerd's ReplaceOrAppendEnvValues).
    env.retain(|e| e.contains('='));
    let tty = match exec {
        Some(e) => e.tty,
        None => rec.config.tty == Some(true),
    };
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!(
            "HOSTNAME={}",
            rec.config.hostname.clone().unwrap_or_default()
        ));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = if user.home.is_empty() {
            "/"
        } else {
            &user.home
        };
        env.push(format!("HOME={home}"));
    }
    let hc = &rec.host_config;
    let caps = |v: &Option<Vec<String>>| -> Vec<oci_spec::runtime::Capability> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| spec::parse_capability(c))
            .collect()
    };
    let drop_all = hc
        .cap_drop
        .as_ref()
        .is_some_and(|d| d.iter().any(|c| c.eq_ignore_ascii_case("all")));
    let mut cap_drop = caps(&hc.cap_drop);
    if drop_all {
        cap_drop = spec::DEFAULT_CAPS.to_vec();
    }
    let cwd = exec
        .and_then(|e| e.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| rec.config.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    let p = spec::ProcessConfig {
        args: match exec {
            Some(e) => e.cmd.clone(),
            None => config::command(&rec.config),
        },
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        terminal: match exec {
            Some(e) => e.tty,
            None => rec.config.tty == Some(true),
        },
    };
    let c = spec::ContainerConfig {
        hostname: rec.config.hostname.clone().unwrap_or_default(),
        rootfs: rootfs.to_path_buf(),
        readonly_rootfs: hc.readonly_rootfs == Some(true),
        privileged: hc.privileged == Some(true) || exec.is_some_and(|e| e.privileged),
        cap_add: caps(&hc.cap_add),
        cap_drop,
        no_new_privileges: hc.security_opt.as_ref().is_some_and(|o| {
            o.iter()
                .any(|s| s.starts_with("no-new-privileges") && !s.ends_with("false"))
        }),
        cgroups_path: PathBuf::from(format!("/berth/{}", rec.id)),
        seccomp_unconfined: hc.security_opt.as_ref().is_some_and(|o| {
            o.iter()
                .any(|s| s == "seccomp=unconfined" || s == "seccomp:unconfined")
        }),
        resources: spec::Resources::from_host_config(hc),
        tmpfs: tmpfs(hc),
        init: None,
        mounts: vec![],
        network: spec::NetworkNamespace::New,
        rlimits: hc
            .ulimits
            .iter()
            .flatten()
            .filter_map(|u| {
                let name = spec::rlimit_name(u.name.as_deref()?)?;
                let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
                Some((name.to_string(), n(u.soft)?, n(u.hard)?))
            })
            .collect(),
        // Records from before create recorded the mode take dockerd's default.
        cgroupns: cgroupns_mode(hc) == bollard_stubs::models::HostConfigCgroupnsModeEnum::PRIVATE,
        // Kernel parameters belong to the container's namespaces, set when it
        // starts; an exec joins them as they are.
        sysctl: match exec {
            Some(_) => Default::default(),
            None => super::sysctl::for_container(&rec.config, hc, super::sysctl::exists).map_err(
                |message| ContainerError::Start {
                    message,
                    exit_code: 126,
                },
            )?,
        },
    };
    Ok((p, c))
}

/// `--cgroupns` as dockerd records it at create: a private namespace by default
/// on cgroup v2, the host's on v1.
pub(super) fn cgroupns_mode(
    hc: &bollard_stubs::models::HostConfig,
) -> bollard_stubs::models::HostConfigCgroupnsModeEnum {
    use bollard_stubs::models::HostConfigCgroupnsModeEnum as Mode;
    match hc.cgroupns_mode {
        Some(Mode::PRIVATE) => Mode::PRIVATE,
        Some(Mode::HOST) => Mode::HOST,
        Some(Mode::EMPTY) | None if cgroup_v2() => Mode::PRIVATE,
        Some(Mode::EMPTY) | None => Mode::HOST,
    }
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `--tmpfs` mounts, and `--shm-size` as the size of `/dev/shm` (Docker's 64 MiB
/// otherwise).
fn tmpfs(hc: &bollard_stubs::models::HostConfig) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = hc.tmpfs.clone().unwrap_or_default().into_iter().collect();
    if let Some(n) = hc.shm_size.filter(|n| *n > 0) {
        if !t.iter().any(|(p, _)| p == "/dev/shm") {
            t.push(("/dev/shm".into(), format!("mode=1777,size={n}")));
        }
    }
    t
}
