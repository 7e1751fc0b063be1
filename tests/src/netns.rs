//! A scratch network namespace (`ip netns add`) for suites that must not share the
//! host's: another engine's firewall, or fixed subnets the host may already route. It
//! is deleted, with everything still running in it, when dropped, pass or fail.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Netns {
    pub name: String,
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

impl Netns {
    /// A new namespace named after `prefix`, with loopback up.
    pub fn new(prefix: &str) -> Netns {
        let name = crate::unique(prefix);
        let made = run(Command::new("ip").args(["netns", "add", &name]));
        assert!(made.status.success(), "{}", crate::output_text(&made));
        let ns = Netns { name };
        let lo = run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        assert!(lo.status.success(), "{}", crate::output_text(&lo));
        ns
    }

    /// A command run inside the namespace (its network only).
    pub fn exec(&self, program: &str) -> Command {
        crate::engine::in_netns(&self.name, program)
    }

    pub fn pids(&self) -> Vec<i32> {
        let out = run(Command::new("ip").args(["netns", "pids", &self.name]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in it: another engine, shims, containers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                // SAFETY: kill(2) on processes of the namespace this test made.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = run(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}
