//! Resource usage for `docker stats`, read from the container's cgroup (v1
//! controllers or the v2 unified tree) and from /proc; and the cgroup's processes.

use std::path::{Path, PathBuf};

use bollard_stubs::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
    ContainerMemoryStats, ContainerPidsStats,
};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where a container's cgroup files live, for cgroup v2 or per v1 controller.
pub struct CgroupFiles {
    v2: bool,
    rel: PathBuf,
}

impl CgroupFiles {
    /// `rel` is the spec's cgroupsPath without its leading '/'.
    pub fn new(rel: impl Into<PathBuf>) -> CgroupFiles {
        CgroupFiles {
            v2: Path::new(CGROUP_ROOT).join("cgroup.controllers").exists(),
            rel: rel.into(),
        }
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        let path = if self.v2 {
            Path::new(CGROUP_ROOT).join(&self.rel).join(file)
        } else {
            Path::new(CGROUP_ROOT)
                .join(controller)
                .join(&self.rel)
                .join(file)
        };
        std::fs::read_to_string(path).ok()
    }

    fn num(&self, controller: &str, file: &str) -> Option<u64> {
        self.read(controller, file)?.trim().parse().ok()
    }

    /// Total CPU time used, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        if self.v2 {
            self.read("", "cpu.stat")
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("usage_usec "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .map(|us| us * 1000)
                .unwrap_or(0)
        } else {
            self.num("cpuacct", "cpuacct.usage").unwrap_or(0)
        }
    }

    pub fn memory(&self) -> ContainerMemoryStats {
        let (usage, limit, stat_file) = if self.v2 {
            (
                self.num("", "memory.current"),
                self.read("", "memory.max")
                    .and_then(|s| s.trim().parse().ok()),
                "memory.stat",
            )
        } else {
            (
                self.num("memory", "memory.usage_in_bytes"),
                self.num("memory", "memory.limit_in_bytes"),
                "memory.stat",
            )
        };
        let stats = self
            .read("memory", stat_file)
            .map(|s| {
                s.lines()
                    .filter_map(|l| {
                        let (k, v) = l.split_once(' ')?;
                        Some((k.to_string(), v.trim().parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // An unlimited v1 cgroup reports a huge number: show the machine's memory.
        let host = host_memory();
        ContainerMemoryStats {
            usage,
            limit: Some(limit.filter(|l| *l < host).unwrap_or(host)),
            stats: Some(stats),
            ..Default::default()
        }
    }

    pub fn pids(&self) -> ContainerPidsStats {
        ContainerPidsStats {
            current: self.num("pids", "pids.current"),
            limit: self
                .read("pids", "pids.max")
                .and_then(|s| s.trim().parse().ok()),
        }
    }

    /// Block I/O (`docker stats`' BLOCK I/O): bytes and operations per device, from
    /// `io.stat` (v2) or the throttle files (v1), as dockerd reports them.
    pub fn blkio(&self) -> ContainerBlkioStats {
        if self.v2 {
            let stat = self.read("", "io.stat").unwrap_or_default();
            let (bytes, ops) = parse_io_stat(&stat);
            return ContainerBlkioStats {
                io_service_bytes_recursive: Some(bytes),
                io_serviced_recursive: Some(ops),
                ..Default::default()
            };
        }
        let read = |f: &str| parse_blkio_v1(&self.read("blkio", f).unwrap_or_default());
        ContainerBlkioStats {
            io_service_bytes_recursive: Some(read("blkio.throttle.io_service_bytes")),
            io_serviced_recursive: Some(read("blkio.throttle.io_serviced")),
            ..Default::default()
        }
    }

    /// PIDs (in the engine's namespace) of every process in the container.
    pub fn procs(&self) -> Vec<u32> {
        self.read("pids", "cgroup.procs")
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// The machine's memory in bytes (MemTotal).
fn entry(dev: &str, op: &str, value: u64) -> Option<ContainerBlkioStatEntry> {
    let (major, minor) = dev.split_once(':')?;
    Some(ContainerBlkioStatEntry {
        major: major.parse().ok(),
        minor: minor.parse().ok(),
        op: Some(op.to_string()),
        value: Some(value),
    })
}

/// cgroup v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 …`) → (bytes, operations),
/// with dockerd's lower-case `read`/`write` ops.
fn parse_io_stat(s: &str) -> (Vec<ContainerBlkioStatEntry>, Vec<ContainerBlkioStatEntry>) {
    let (mut bytes, mut ops) = (Vec::new(), Vec::new());
    for line in s.lines() {
        let mut fields = line.split_whitespace();
        let Some(dev) = fields.next() else { continue };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ops, "read"),
                "wios" => (&mut ops, "write"),
                _ => continue,
            };
            list.extend(entry(dev, op, v));
        }
    }
    (bytes, ops)
}

/// cgroup v1 `blkio.throttle.*` (`8:0 Read 4096`, and a `Total` line) → entries.
fn parse_blkio_v1(s: &str) -> Vec<ContainerBlkioStatEntry> {
    s.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, v) = (f.next()?, f.next()?, f.next()?);
            entry(dev, op, v.parse().ok()?)
        })
        .collect()
}

pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo_kib(&s, "MemTotal"))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// `/proc/meminfo`'s field `name`, in KiB.
pub fn meminfo_kib(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The machine's CPU time so far in nanoseconds, as dockerd's `system_cpu_usage`.
pub fn system_cpu_ns() -> u64 {
    let ticks: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

pub fn cpu_stats(cg: &CgroupFiles) -> ContainerCpuStats {
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(cg.cpu_ns()),
            ..Default::default()
        }),
        system_cpu_usage: Some(system_cpu_ns()),
        online_cpus: std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u32),
        throttling_data: None,
    }
}

/// Per-interface counters of the container's network namespace, from
/// `/proc/<pid>/net/dev` (loopback left out, as dockerd reports).
pub fn network(
    pid: i64,
) -> std::collections::HashMap<String, bollard_stubs::models::ContainerNetworkStats> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|s| parse_net_dev(&s))
        .unwrap_or_default()
}

fn parse_net_dev(
    s: &str,
) -> std::collections::HashMap<String, bollard_stubs::models::ContainerNetworkStats> {
    s.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let v: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if v.len() < 12 {
                return None;
            }
            Some((
                name.to_string(),
                bollard_stubs::models::ContainerNetworkStats {
                    rx_bytes: Some(v[0]),
                    rx_packets: Some(v[1]),
                    rx_errors: Some(v[2]),
                    rx_dropped: Some(v[3]),
                    tx_bytes: Some(v[8]),
                    tx_packets: Some(v[9]),
                    tx_errors: Some(v[10]),
                    tx_dropped: Some(v[11]),
                    ..Default::default()
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod net_tests {
    #[test]
    fn net_dev() {
        let s = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1500      10    1    2    0     0          0         0      700       5    0    3    0     0       0          0
";
        let m = super::parse_net_dev(s);
        assert_eq!(m.len(), 1);
        let e = &m["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.tx_bytes, e.tx_dropped),
            (Some(1500), Some(10), Some(700), Some(3))
        );
    }
}

#[cfg(test)]
mod blkio_tests {
    use super::*;

    #[test]
    fn io_stat_and_v1_throttle_files_parse_as_dockerd_reports_them() {
        let (bytes, ops) = parse_io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0\n");
        assert_eq!(bytes.len(), 2);
        assert_eq!(bytes[1].op.as_deref(), Some("write"));
        assert_eq!(bytes[1].value, Some(8192));
        assert_eq!((ops[0].major, ops[0].minor), (Some(8), Some(0)));
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[0].op.as_deref(), Some("Read"));
    }
}
