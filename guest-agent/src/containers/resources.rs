//! Resource limits checked as dockerd checks them before it creates or updates
//! a container (moby's `verifyPlatformContainerResources`), with its messages, so
//! a limit the kernel would refuse, or one that cannot mean anything, is a 400
//! rather than a container that fails to start.

use bollard_stubs::models::{ContainerUpdateBody, HostConfig};

/// dockerd's floor for `--memory` and `--memory-reservation`.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The limits a create or an update asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Limits {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub memory_swappiness: Option<i64>,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub blkio_weight: i64,
}

/// A create's HostConfig and an update's body name these fields alike.
macro_rules! limits_from {
    ($t:ty) => {
        impl From<&$t> for Limits {
            fn from(h: &$t) -> Self {
                Limits {
                    memory: h.memory.unwrap_or(0),
                    memory_swap: h.memory_swap.unwrap_or(0),
                    memory_reservation: h.memory_reservation.unwrap_or(0),
                    memory_swappiness: h.memory_swappiness,
                    nano_cpus: h.nano_cpus.unwrap_or(0),
                    cpu_period: h.cpu_period.unwrap_or(0),
                    cpu_quota: h.cpu_quota.unwrap_or(0),
                    blkio_weight: h.blkio_weight.map(i64::from).unwrap_or(0),
                }
            }
        }
    };
}
limits_from!(HostConfig);
limits_from!(ContainerUpdateBody);

/// dockerd's checks, in its order; `ncpu` is the CPUs this engine may use and
/// `update` says whether this is `docker update` (which may set swap alone).
pub fn check(l: &Limits, ncpu: usize, update: bool) -> Result<(), String> {
    let fail = |m: &str| Err(m.to_string());
    if l.memory != 0 && l.memory < MIN_MEMORY {
        return fail("Minimum memory limit allowed is 6MB");
    }
    if l.memory > 0 && l.memory_swap > 0 && l.memory_swap < l.memory {
        return fail("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    if l.memory == 0 && l.memory_swap > 0 && !update {
        return fail(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        );
    }
    if let Some(s) = l.memory_swappiness.filter(|s| *s != -1) {
        if !(0..=100).contains(&s) {
            return Err(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ));
        }
    }
    if l.memory_reservation > 0 && l.memory_reservation < MIN_MEMORY {
        return fail("Minimum memory reservation allowed is 6MB");
    }
    if l.memory > 0 && l.memory_reservation > 0 && l.memory < l.memory_reservation {
        return fail(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        );
    }
    if l.nano_cpus > 0 && l.cpu_period > 0 {
        return fail("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    }
    if l.nano_cpus > 0 && l.cpu_quota > 0 {
        return fail("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    }
    let n = ncpu as i64;
    if l.nano_cpus < 0 || l.nano_cpus > n.saturating_mul(1_000_000_000) {
        return Err(format!(
            "range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        ));
    }
    if l.cpu_period != 0 && !(1000..=1_000_000).contains(&l.cpu_period) {
        return fail(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        );
    }
    if l.cpu_quota > 0 && l.cpu_quota < 1000 {
        return fail("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    if l.blkio_weight > 0 && !(10..=1000).contains(&l.blkio_weight) {
        return fail("Range of blkio weight is from 10 to 1000");
    }
    Ok(())
}

/// The CPUs this engine may use, as Go's `runtime.NumCPU` counts them.
pub fn ncpu() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_refuses_what_it_refuses() {
        let ok = |l: Limits| check(&l, 2, false);
        let mib = 1024 * 1024;
        assert!(ok(Limits::default()).is_ok());
        assert!(ok(Limits {
            memory: 64 * mib,
            memory_swap: -1,
            nano_cpus: 2_000_000_000,
            ..Default::default()
        })
        .is_ok());
        let says = |l: Limits, what: &str| {
            let e = ok(l).unwrap_err();
            assert!(e.contains(what), "{e}");
        };
        says(
            Limits {
                memory: 1024,
                ..Default::default()
            },
            "Minimum memory limit allowed is 6MB",
        );
        says(
            Limits {
                memory: 64 * mib,
                memory_swap: 32 * mib,
                ..Default::default()
            },
            "memoryswap limit should be larger",
        );
        says(
            Limits {
                memory_swap: 32 * mib,
                ..Default::default()
            },
            "always set the Memory limit",
        );
        says(
            Limits {
                nano_cpus: 3_000_000_000,
                ..Default::default()
            },
            "from 0.01 to 2.00, as there are only 2 CPUs",
        );
        says(
            Limits {
                nano_cpus: 1,
                cpu_quota: 5000,
                ..Default::default()
            },
            "Nano CPUs and CPU Quota",
        );
        says(
            Limits {
                cpu_period: 10,
                ..Default::default()
            },
            "cfs period",
        );
        says(
            Limits {
                memory_swappiness: Some(101),
                ..Default::default()
            },
            "swappiness range is 0-100",
        );
        // docker update may set swap alone.
        assert!(check(
            &Limits {
                memory_swap: 32 * mib,
                ..Default::default()
            },
            2,
            true
        )
        .is_ok());
    }
}
