//! What the containers are doing, for the host's idle pause: how many run, the
//! CPU time they have used, and whether any holds a connection out of the VM.
//! The host pauses the VM only when the containers used next to no CPU over
//! the idle window and none talks to the outside: a paused guest would leave
//! such a peer unanswered, while a connection from the host through a
//! published port (the one way in) resumes it.

use berth_proto::control::Activity;

use crate::engine::Engine;

/// Every container's cgroup lives under this one (`runtime`'s `/berth/<id>`).
const CONTAINERS_CGROUP: &str = "/sys/fs/cgroup/berth/cpu.stat";
/// Netfilter's connection table (the engine's NAT loads conntrack).
const CONNTRACK: &str = "/proc/net/nf_conntrack";

pub fn sample(engine: &Engine) -> Activity {
    let (running, _paused, _stopped) = engine.containers.counts();
    Activity {
        running: running.max(0) as u32,
        container_cpu_usec: std::fs::read_to_string(CONTAINERS_CGROUP)
            .ok()
            .and_then(|t| usage_usec(&t))
            .unwrap_or(0),
        external_flows: std::fs::read_to_string(CONNTRACK)
            .ok()
            .map(|t| external_flows(&t, &berth_proto::GUEST_NET_ADDR.to_string())),
    }
}

/// `usage_usec` of a cgroup v2 `cpu.stat`.
fn usage_usec(cpu_stat: &str) -> Option<u64> {
    cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// Established TCP connections that the engine masquerades out of the VM:
/// their reply comes back to the guest's own address on QEMU's network, while
/// the container (the original source) has another.
fn external_flows(conntrack: &str, guest_addr: &str) -> u32 {
    let mine = format!("dst={guest_addr}");
    let from_guest = format!("src={guest_addr}");
    conntrack
        .lines()
        .filter(|l| l.contains(" tcp ") && l.contains(" ESTABLISHED "))
        .filter(|l| {
            let mut srcs = l.split_whitespace().filter(|w| w.starts_with("src="));
            let mut dsts = l.split_whitespace().filter(|w| w.starts_with("dst="));
            let orig_src = srcs.next();
            let _orig_dst = dsts.next();
            let reply_dst = dsts.next();
            reply_dst == Some(mine.as_str()) && orig_src != Some(from_guest.as_str())
        })
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_usage() {
        let t = "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n";
        assert_eq!(usage_usec(t), Some(123_456));
        assert_eq!(usage_usec("user_usec 5\n"), None);
    }

    #[test]
    fn only_masqueraded_established_tcp_counts() {
        let t = "\
ipv4     2 tcp      6 431999 ESTABLISHED src=172.17.0.2 dst=93.184.216.34 sport=40000 dport=443 src=93.184.216.34 dst=10.0.2.15 sport=443 dport=40000 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431999 ESTABLISHED src=172.17.0.2 dst=10.0.2.2 sport=40001 dport=5432 src=10.0.2.2 dst=10.0.2.15 sport=5432 dport=40001 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.15 dst=10.0.2.2 sport=40002 dport=5000 src=10.0.2.2 dst=10.0.2.15 sport=5000 dport=40002 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 431999 ESTABLISHED src=172.17.0.2 dst=172.18.0.3 sport=40003 dport=80 src=172.18.0.3 dst=172.18.0.1 sport=80 dport=40003 [ASSURED] mark=0 use=1
ipv4     2 tcp      6 110 TIME_WAIT src=172.17.0.2 dst=93.184.216.34 sport=40004 dport=80 src=93.184.216.34 dst=10.0.2.15 sport=80 dport=40004 [ASSURED] mark=0 use=1
ipv4     2 udp      17 20 src=172.17.0.2 dst=10.0.2.3 sport=5353 dport=53 src=10.0.2.3 dst=10.0.2.15 sport=53 dport=5353 mark=0 use=1
";
        // Out to the internet and to the host count; the engine's own pull,
        // container to container, a closing connection and DNS do not.
        assert_eq!(external_flows(t, "10.0.2.15"), 2);
        assert_eq!(external_flows("", "10.0.2.15"), 0);
    }
}
