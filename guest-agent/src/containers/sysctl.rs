//! The kernel parameters a container starts with: dockerd's defaults for a
//! private network namespace, `--domainname`, and `--sysctl`, checked as runc
//! checks them so none reaches a namespace the container shares with the host.

use std::collections::HashMap;

use bollard_stubs::models::{ContainerConfig, HostConfig};

/// IPC parameters that live in the IPC namespace (runc's `validSysctlMap`).
const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// dockerd's defaults in a private network namespace: ping without CAP_NET_RAW,
/// and any port without CAP_NET_BIND_SERVICE (so a non-root server can listen on
/// 80). `exists` says whether this kernel has the parameter.
pub fn for_container(
    config: &ContainerConfig,
    hc: &HostConfig,
    exists: impl Fn(&str) -> bool,
) -> Result<HashMap<String, String>, String> {
    let mode = hc.network_mode.as_deref().unwrap_or("default");
    let host_net = mode == "host";
    let private_net = !host_net && !mode.starts_with("container:");
    let mut out = HashMap::new();
    if private_net {
        for (k, v) in [
            ("net.ipv4.ping_group_range", "0 2147483647"),
            ("net.ipv4.ip_unprivileged_port_start", "0"),
        ] {
            if exists(k) {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    if let Some(d) = config.domainname.as_deref().filter(|d| !d.is_empty()) {
        out.insert("kernel.domainname".into(), d.to_string());
    }
    for (k, v) in hc.sysctls.iter().flatten() {
        let name = k.replace('/', ".");
        let ok = IPC.contains(&name.as_str())
            || name.starts_with("fs.mqueue.")
            || name == "kernel.domainname"
            || (name.starts_with("net.") && !host_net);
        if !ok {
            return Err(if name.starts_with("net.") {
                format!("sysctl {name:?} not allowed in host network namespace")
            } else if name == "kernel.hostname" {
                format!("sysctl {name:?} is not allowed as it conflicts with the OCI \"hostname\" field")
            } else {
                format!("sysctl {name:?} is not in a separate kernel namespace")
            });
        }
        out.insert(name, v.clone());
    }
    Ok(out)
}

/// Whether the kernel has the parameter (dockerd's `sysctlExists`).
pub fn exists(name: &str) -> bool {
    std::path::Path::new("/proc/sys")
        .join(name.replace('.', "/"))
        .exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(mode: &str, sysctls: &[(&str, &str)]) -> HostConfig {
        HostConfig {
            network_mode: Some(mode.into()),
            sysctls: Some(
                sysctls
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_only_in_a_private_network_namespace() {
        let cfg = ContainerConfig::default();
        let s = for_container(&cfg, &hc("bridge", &[]), |_| true).unwrap();
        assert_eq!(s["net.ipv4.ip_unprivileged_port_start"], "0");
        assert_eq!(s["net.ipv4.ping_group_range"], "0 2147483647");
        for mode in ["host", "container:abc"] {
            assert!(for_container(&cfg, &hc(mode, &[]), |_| true)
                .unwrap()
                .is_empty());
        }
        // A kernel without the parameter gets none.
        assert!(for_container(&cfg, &hc("none", &[]), |_| false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn user_sysctls_win_and_must_be_namespaced() {
        let cfg = ContainerConfig {
            domainname: Some("example.com".into()),
            ..Default::default()
        };
        let s = for_container(
            &cfg,
            &hc(
                "bridge",
                &[
                    ("net.ipv4.ip_unprivileged_port_start", "1024"),
                    ("net/core/somaxconn", "1024"),
                    ("kernel.shmmax", "1"),
                    ("fs.mqueue.msg_max", "20"),
                ],
            ),
            |_| true,
        )
        .unwrap();
        assert_eq!(s["net.ipv4.ip_unprivileged_port_start"], "1024");
        assert_eq!(s["net.core.somaxconn"], "1024");
        assert_eq!(s["kernel.domainname"], "example.com");
        assert_eq!(s.len(), 6);
        let refused = |mode: &str, k: &str| {
            for_container(&cfg, &hc(mode, &[(k, "1")]), |_| true).unwrap_err()
        };
        assert!(refused("host", "net.ipv4.ip_forward").contains("host network namespace"));
        assert!(refused("bridge", "vm.swappiness").contains("not in a separate kernel namespace"));
        assert!(refused("bridge", "kernel.hostname").contains("conflicts"));
    }
}
