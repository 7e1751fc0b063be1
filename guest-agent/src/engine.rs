//! The engine's shared state: configuration, the image service, and facts about the
//! host that `/info` and `/version` report.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bollard_stubs::models::{PluginsInfo, RegistryServiceConfig, SystemInfo};

use crate::config::Config;
use crate::containers::{ContainerError, ContainerService};
use crate::images::{ImageError, ImageService};
use crate::volumes::VolumeService;

/// Facts about the machine, read once at start.
pub struct HostFacts {
    pub arch: String,
    pub kernel: String,
    pub os_name: String,
    pub hostname: String,
    pub ncpu: i64,
    pub mem_total: i64,
    pub cgroup_version: &'static str,
}

impl HostFacts {
    fn read() -> HostFacts {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let os_name = fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        let mem_total = crate::containers::stats::host_memory() as i64;
        let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "2"
        } else {
            "1"
        };
        HostFacts {
            arch: crate::images::Platform::host().architecture,
            kernel: field(|u| u.release()),
            os_name,
            hostname: field(|u| u.nodename()),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total,
            cgroup_version,
        }
    }
}

pub struct Engine {
    pub config: Config,
    pub images: std::sync::Arc<ImageService>,
    pub containers: std::sync::Arc<ContainerService>,
    pub network: std::sync::Arc<crate::network::NetworkService>,
    pub volumes: std::sync::Arc<VolumeService>,
    pub events: std::sync::Arc<crate::events::Events>,
    /// BuildKit's client sessions and builds in flight.
    pub buildkit: crate::sessions::BuildState,
    /// BuildKit builds past and present (`/berth/builds`, the app's Builds view).
    pub build_history: crate::build_history::History,
    pub id: String,
    pub started: Instant,
    host: HostFacts,
}

impl Engine {
    /// The machine's name, as `/info` reports it.
    pub fn hostname(&self) -> String {
        self.host.hostname.clone()
    }

    pub fn open(config: Config) -> Result<Engine, ContainerError> {
        let t = Instant::now();
        fs::create_dir_all(&config.root).map_err(ImageError::io(format!(
            "creating {}",
            config.root.display()
        )))?;
        let images = ImageService::open(
            &config.root.join("image"),
            config.insecure_registries.clone(),
        )?;
        if config.host_link.is_some() {
            // In Berth's VM the user's `localhost:5000` is the host's.
            crate::images::reference::route_loopback_via(&berth_proto::HOST_NET_ADDR.to_string());
        }
        let id = engine_id(&config.root.join("engine-id"))?;
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "image store open");
        // Build contexts of builds a crash interrupted.
        let _ = crate::fsutil::reset_dir(&config.root.join("build-tmp"));
        let events = std::sync::Arc::new(crate::events::Events::default());
        let network = tokio::runtime::Handle::current()
            .block_on(crate::network::NetworkService::open(
                &config.root,
                &config.bridge,
            ))
            .map_err(|e| ContainerError::Io {
                context: "setting up networks".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "networks set up");
        let volumes = std::sync::Arc::new(VolumeService::open(
            config.root.join("volumes"),
            events.clone(),
        )?);
        let containers = ContainerService::open(
            config.root.join("containers"),
            config.init_binary.clone(),
            events.clone(),
            network.clone(),
            volumes.clone(),
            config
                .host_os
                .map(|os| crate::volumes::hostpaths::HostPaths::new(os, &config.shares)),
            Arc::new(crate::runtime::linux::LinuxRuntime),
        )?;
        images.set_events(events.clone());
        tracing::info!(ms = t.elapsed().as_millis() as u64, "engine state opened");
        Ok(Engine {
            images: std::sync::Arc::new(images),
            containers,
            network,
            volumes,
            events,
            buildkit: Default::default(),
            build_history: crate::build_history::History::open(
                &config.root.join("buildkit-history"),
            ),
            id,
            started: Instant::now(),
            host: HostFacts::read(),
            config,
        })
    }

    pub fn host(&self) -> &HostFacts {
        &self.host
    }

    /// The build cache's index and cache mounts, which both builders share.
    pub fn build_cache(&self) -> crate::build::cache::Cache {
        crate::build::cache::Cache::new(self.config.root.join("image").join("build-cache.json"))
    }

    /// Whether a container uses the image.
    pub fn image_in_use(&self, image_id: &str) -> bool {
        self.containers.image_in_use(image_id)
    }

    pub fn info(&self) -> SystemInfo {
        let h = &self.host;
        let (running, paused, stopped) = self.containers.counts();
        let mut insecure = vec!["127.0.0.0/8".to_string(), "::1/128".to_string()];
        insecure.extend(self.config.insecure_registries.iter().cloned());
        SystemInfo {
            id: Some(self.id.clone()),
            containers: Some(running + paused + stopped),
            containers_running: Some(running),
            containers_paused: Some(paused),
            containers_stopped: Some(stopped),
            images: Some(self.images.count() as i64),
            driver: Some("overlay2".into()),
            driver_status: Some(vec![vec![
                "Backing Filesystem".into(),
                backing_fs(&self.config.root),
            ]]),
            docker_root_dir: Some(self.config.root.display().to_string()),
            plugins: Some(PluginsInfo {
                volume: Some(vec![]),
                network: Some(vec![]),
                authorization: None,
                log: Some(vec![]),
            }),
            memory_limit: Some(true),
            swap_limit: Some(false),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            ipv4_forwarding: Some(true),
            debug: Some(false),
            nfd: Some(count_dir("/proc/self/fd")),
            n_goroutines: Some(0),
            system_time: Some(crate::clock::now()),
            logging_driver: Some("json-file".into()),
            cgroup_driver: Some(bollard_stubs::models::SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(if h.cgroup_version == "2" {
                bollard_stubs::models::SystemInfoCgroupVersionEnum::_2
            } else {
                bollard_stubs::models::SystemInfoCgroupVersionEnum::_1
            }),
            n_events_listener: Some(0),
            kernel_version: Some(h.kernel.clone()),
            operating_system: Some(h.os_name.clone()),
            os_version: Some(String::new()),
            os_type: Some("linux".into()),
            architecture: Some(std::env::consts::ARCH.into()),
            index_server_address: Some("https://index.docker.io/v1/".into()),
            registry_config: Some(RegistryServiceConfig {
                insecure_registry_cidrs: Some(insecure),
                index_configs: None,
                mirrors: Some(vec![]),
            }),
            ncpu: Some(h.ncpu),
            mem_total: Some(h.mem_total),
            name: Some(h.hostname.clone()),
            labels: Some(vec![]),
            experimental_build: Some(false),
            server_version: Some(crate::VERSION.into()),
            live_restore_enabled: Some(false),
            // What every container gets, in dockerd's words (tools such as
            // testcontainers read these).
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            // Berth runs containers with libcontainer, runc's behaviour; clients
            // that name a runtime name this one.
            default_runtime: Some("runc".into()),
            runtimes: Some(
                [(
                    "runc".to_string(),
                    bollard_stubs::models::Runtime {
                        path: Some("runc".into()),
                        ..Default::default()
                    },
                )]
                .into(),
            ),
            init_binary: Some("docker-init".into()),
            warnings: Some(vec![]),
            swarm: Some(bollard_stubs::models::SwarmInfo {
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                local_node_state: Some(bollard_stubs::models::LocalNodeState::INACTIVE),
                control_available: Some(false),
                error: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn count_dir(p: &str) -> i64 {
    fs::read_dir(p).map(|d| d.count() as i64).unwrap_or(0)
}

fn backing_fs(root: &std::path::Path) -> String {
    match nix::sys::statfs::statfs(root) {
        Ok(s) => match s.filesystem_type() {
            nix::sys::statfs::EXT4_SUPER_MAGIC => "extfs".into(),
            nix::sys::statfs::XFS_SUPER_MAGIC => "xfs".into(),
            nix::sys::statfs::BTRFS_SUPER_MAGIC => "btrfs".into(),
            nix::sys::statfs::TMPFS_MAGIC => "tmpfs".into(),
            other => format!("{:#x}", other.0),
        },
        Err(_) => "unknown".into(),
    }
}

/// A stable engine ID, created on first start.
fn engine_id(path: &PathBuf) -> Result<String, ImageError> {
    if let Ok(s) = fs::read_to_string(path) {
        let s = s.trim();
        if !s.is_empty() {
            return Ok(s.to_string());
        }
    }
    let bytes: [u8; 16] = rand::random();
    let h = hex::encode(bytes);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    crate::fsutil::atomic_write(path, id.as_bytes())
        .map_err(ImageError::io("writing engine id"))?;
    Ok(id)
}
