//! The default seccomp filter. Docker's profile is an allow-list of ~350 syscalls whose
//! effect, for a container with Docker's default capabilities, is to refuse a known set
//! of dangerous calls; we express that effect directly as a deny-list (EPERM) over a
//! default of ALLOW, with the same capability-gated exceptions Docker makes (e.g.
//! `--cap-add SYS_ADMIN` re-enables mount/unshare/setns). `--privileged` and
//! `--security-opt seccomp=unconfined` get no filter. The kernel reports the mode as
//! `Seccomp: 2` either way.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};

/// Refused unless a capability says otherwise: (syscalls, capability that allows them).
const GATED: &[(&[&str], Option<Capability>)] = &[
    (
        &[
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "quotactl",
            "quotactl_fd",
            "name_to_handle_at",
            "lookup_dcookie",
            "bpf",
            "perf_event_open",
            "fanotify_init",
            "clone3",
        ],
        Some(Capability::SysAdmin),
    ),
    (
        &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"],
        Some(Capability::SysPtrace),
    ),
    (
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
        ],
        Some(Capability::SysModule),
    ),
    (
        &["reboot", "kexec_load", "kexec_file_load"],
        Some(Capability::SysBoot),
    ),
    (
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
            "adjtimex",
        ],
        Some(Capability::SysTime),
    ),
    (&["ioperm", "iopl"], Some(Capability::SysRawio)),
    (&["acct"], Some(Capability::SysPacct)),
    (&["open_by_handle_at"], Some(Capability::DacReadSearch)),
    (&["syslog"], Some(Capability::Syslog)),
    (
        &["mbind", "set_mempolicy", "move_pages", "get_mempolicy"],
        Some(Capability::SysNice),
    ),
    (
        &[
            "add_key",
            "keyctl",
            "request_key",
            "nfsservctl",
            "swapon",
            "swapoff",
            "sysfs",
            "_sysctl",
            "uselib",
            "userfaultfd",
            "ustat",
            "vm86",
            "vm86old",
        ],
        None,
    ),
];

/// The filter for a container holding `caps`.
pub fn default_profile(caps: &HashSet<Capability>) -> Option<LinuxSeccomp> {
    let mut denied: Vec<String> = Vec::new();
    for (names, cap) in GATED {
        if cap.is_some_and(|c| caps.contains(&c)) {
            continue;
        }
        denied.extend(names.iter().map(|s| s.to_string()));
    }
    // clone3 with namespace flags cannot be filtered by argument; Docker answers ENOSYS
    // so libc falls back to clone, which the kernel checks against capabilities.
    let enosys = denied.iter().any(|n| n == "clone3");
    denied.retain(|n| n != "clone3");
    let mut rules = vec![LinuxSyscallBuilder::default()
        .names(denied)
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()
        .ok()?];
    if enosys {
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(libc::ENOSYS as u32)
                .build()
                .ok()?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(rules)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn capabilities_lift_their_syscalls() {
        let base: HashSet<Capability> =
            crate::runtime::spec::DEFAULT_CAPS.iter().copied().collect();
        let p = default_profile(&base).unwrap();
        let n = names(&p);
        assert!(n.contains(&"mount".to_string()) && n.contains(&"ptrace".to_string()));
        assert!(n.contains(&"keyctl".to_string()));
        let mut admin = base.clone();
        admin.insert(Capability::SysAdmin);
        let n = names(&default_profile(&admin).unwrap());
        assert!(!n.contains(&"mount".to_string()) && n.contains(&"ptrace".to_string()));
    }
}
