//! Healthchecks as dockerd runs them. This module is the pure part: the settings a
//! probe runs with
//! (dockerd's defaults for every zero field), and the state machine that turns probe
//! results into `State.Health` (status, failing streak, the last five results). The
//! task that schedules probes and runs them as execs is [`monitor`].

pub mod monitor;

use std::time::Duration;

use bollard_stubs::models::{Health, HealthConfig, HealthStatusEnum, HealthcheckResult};

/// dockerd's defaults for a zero field.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: i64 = 3;
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// Results kept in `State.Health.Log`.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Probe output kept per result; more is cut and marked with "...".
pub const MAX_OUTPUT: usize = 4096;

/// What a probe runs and how often: the container's healthcheck with the defaults
/// applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: i64,
    pub start_period: Duration,
    pub start_interval: Duration,
}

impl Settings {
    /// The probe of a container's config: `None` without a healthcheck, for `NONE`,
    /// or for a test type dockerd does not know (it only logs those). `CMD-SHELL` runs
    /// through the container's `SHELL` (`/bin/sh -c` by default).
    pub fn of(hc: Option<&HealthConfig>, shell: Option<&[String]>) -> Option<Settings> {
        let hc = hc?;
        let test = hc.test.as_deref()?;
        let (kind, rest) = test.split_first()?;
        let cmd = match kind.as_str() {
            "CMD" => rest.to_vec(),
            "CMD-SHELL" => {
                let mut cmd = match shell.filter(|s| !s.is_empty()) {
                    Some(s) => s.to_vec(),
                    None => vec!["/bin/sh".into(), "-c".into()],
                };
                cmd.extend(rest.iter().cloned());
                cmd
            }
            _ => return None,
        };
        if cmd.is_empty() {
            return None;
        }
        let dur = |ns: Option<i64>, default: Duration| match ns {
            Some(n) if n > 0 => Duration::from_nanos(n as u64),
            _ => default,
        };
        Some(Settings {
            cmd,
            interval: dur(hc.interval, DEFAULT_INTERVAL),
            timeout: dur(hc.timeout, DEFAULT_TIMEOUT),
            retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
            start_period: dur(hc.start_period, Duration::ZERO),
            start_interval: dur(hc.start_interval, DEFAULT_START_INTERVAL),
        })
    }

    /// How long to wait before the next probe, `since_start` after the container
    /// started: the start interval while it is still starting within the start period,
    /// never past the period's end (the first regular probe runs as it ends).
    pub fn next_delay(&self, since_start: Duration, status: Option<HealthStatusEnum>) -> Duration {
        if since_start >= self.start_period {
            return self.interval;
        }
        let left = self.start_period - since_start;
        if left < self.interval {
            return left;
        }
        if status == Some(HealthStatusEnum::STARTING) {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// One probe's outcome, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    /// 0 healthy; anything else (-1 for a probe that timed out or could not run) fails.
    pub exit_code: i64,
    pub output: String,
}

/// The health of a container that was just started (or restarted): starting, no
/// failures, the earlier log kept.
pub fn reset(previous: Option<Health>) -> Health {
    let mut h = previous.unwrap_or_default();
    h.status = Some(HealthStatusEnum::STARTING);
    h.failing_streak = Some(0);
    h.log.get_or_insert_with(Vec::new);
    h
}

/// The monitor stopped (exit, pause): dockerd reports such a container unhealthy.
pub fn stopped(h: &mut Health) {
    h.status = Some(HealthStatusEnum::UNHEALTHY);
}

/// Adds a probe's result to the health and returns the new status when it changed.
/// `in_start_period`: the probe began within the start period, where a failure of a
/// container still starting does not count.
pub fn record(
    h: &mut Health,
    result: ProbeResult,
    retries: i64,
    in_start_period: bool,
) -> Option<HealthStatusEnum> {
    let old = h.status;
    let log = h.log.get_or_insert_with(Vec::new);
    log.push(HealthcheckResult {
        start: Some(result.start),
        end: Some(result.end),
        exit_code: Some(result.exit_code),
        output: Some(result.output),
    });
    if log.len() > MAX_LOG_ENTRIES {
        log.drain(..log.len() - MAX_LOG_ENTRIES);
    }
    let streak = h.failing_streak.get_or_insert(0);
    if result.exit_code == 0 {
        *streak = 0;
        h.status = Some(HealthStatusEnum::HEALTHY);
    } else if !(old == Some(HealthStatusEnum::STARTING) && in_start_period) {
        *streak += 1;
        if *streak >= retries {
            h.status = Some(HealthStatusEnum::UNHEALTHY);
        }
    }
    (h.status != old).then_some(h.status).flatten()
}

/// Probe output as dockerd keeps it: at most [`MAX_OUTPUT`] bytes, "..." when cut.
pub fn limit_output(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_OUTPUT {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    format!("{}...", String::from_utf8_lossy(&bytes[..MAX_OUTPUT]))
}

/// dockerd's result for a probe killed at its timeout.
pub fn timeout_message(timeout: Duration, output: &str) -> String {
    if output.is_empty() {
        format!("Health check exceeded timeout ({})", go_duration(timeout))
    } else {
        format!(
            "Health check exceeded timeout ({}): {output}",
            go_duration(timeout)
        )
    }
}

/// A duration as Go's `time.Duration.String` prints it (`30s`, `1.5s`, `500ms`,
/// `1m30s`, `2h0m0s`), which dockerd's messages use.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(ns, div));
    }
    let secs = ns / 1_000_000_000;
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    let s = fraction(ns % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// `n / div` with its decimal fraction, trailing zeros dropped.
fn fraction(n: u128, div: u128) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The `(…)` suffix `docker ps` shows after "Up …".
pub fn ps_suffix(h: Option<&Health>) -> &'static str {
    match h.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => " (health: starting)",
        Some(HealthStatusEnum::HEALTHY) => " (healthy)",
        Some(HealthStatusEnum::UNHEALTHY) => " (unhealthy)",
        _ => "",
    }
}

/// The value the `health=` filter of `docker ps` compares with.
pub fn filter_value(h: Option<&Health>) -> &'static str {
    match h.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => "starting",
        Some(HealthStatusEnum::HEALTHY) => "healthy",
        Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::config::merge_healthcheck;

    fn secs(n: u64) -> i64 {
        Duration::from_secs(n).as_nanos() as i64
    }

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: format!("out {code}"),
        }
    }

    #[test]
    fn merge_inherits_zero_fields_from_the_image() {
        let img = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "img".into()]),
            interval: Some(secs(10)),
            timeout: Some(secs(3)),
            retries: Some(5),
            ..Default::default()
        };
        let req = HealthConfig {
            interval: Some(secs(1)),
            retries: Some(0),
            ..Default::default()
        };
        let m = merge_healthcheck(Some(&req), Some(&img)).unwrap();
        assert_eq!(m.test, img.test);
        assert_eq!(
            (m.interval, m.timeout, m.retries),
            (Some(secs(1)), Some(secs(3)), Some(5))
        );
        assert_eq!(merge_healthcheck(None, Some(&img)), Some(img.clone()));
        assert_eq!(merge_healthcheck(None, None), None);
        let none = HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        let m = merge_healthcheck(Some(&none), Some(&img)).unwrap();
        assert_eq!(Settings::of(Some(&m), None), None);
    }

    #[test]
    fn settings_apply_defaults_and_the_shell() {
        let hc = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "test -f /x".into()]),
            ..Default::default()
        };
        let s = Settings::of(Some(&hc), None).unwrap();
        assert_eq!(s.cmd, ["/bin/sh", "-c", "test -f /x"]);
        assert_eq!(
            (
                s.interval,
                s.timeout,
                s.retries,
                s.start_period,
                s.start_interval
            ),
            (
                DEFAULT_INTERVAL,
                DEFAULT_TIMEOUT,
                3,
                Duration::ZERO,
                DEFAULT_START_INTERVAL
            )
        );
        let shell = vec!["/bin/bash".to_string(), "-ec".to_string()];
        assert_eq!(
            Settings::of(Some(&hc), Some(&shell)).unwrap().cmd,
            ["/bin/bash", "-ec", "test -f /x"]
        );
        let argv = HealthConfig {
            test: Some(vec!["CMD".into(), "true".into(), "x".into()]),
            ..Default::default()
        };
        assert_eq!(Settings::of(Some(&argv), None).unwrap().cmd, ["true", "x"]);
        for bad in [vec![], vec!["CMD".into()], vec!["WHAT".into(), "x".into()]] {
            let hc = HealthConfig {
                test: Some(bad),
                ..Default::default()
            };
            assert_eq!(Settings::of(Some(&hc), None), None);
        }
        assert_eq!(Settings::of(None, None), None);
    }

    #[test]
    fn failures_count_up_to_retries_and_a_success_resets() {
        let mut h = reset(None);
        assert_eq!(record(&mut h, result(1), 2, false), None);
        assert_eq!(h.failing_streak, Some(1));
        assert_eq!(
            record(&mut h, result(2), 2, false),
            Some(HealthStatusEnum::UNHEALTHY)
        );
        assert_eq!(record(&mut h, result(1), 2, false), None);
        assert_eq!(h.failing_streak, Some(3));
        assert_eq!(
            record(&mut h, result(0), 2, false),
            Some(HealthStatusEnum::HEALTHY)
        );
        assert_eq!(h.failing_streak, Some(0));
        // A healthy container needs `retries` failures again.
        assert_eq!(record(&mut h, result(1), 2, false), None);
        assert_eq!(h.status, Some(HealthStatusEnum::HEALTHY));
    }

    #[test]
    fn the_start_period_forgives_failures_but_not_successes() {
        let mut h = reset(None);
        for _ in 0..5 {
            assert_eq!(record(&mut h, result(1), 1, true), None);
        }
        assert_eq!(h.failing_streak, Some(0));
        assert_eq!(h.status, Some(HealthStatusEnum::STARTING));
        assert_eq!(
            record(&mut h, result(0), 1, true),
            Some(HealthStatusEnum::HEALTHY)
        );
        // Once healthy, the start period no longer forgives.
        assert_eq!(
            record(&mut h, result(1), 1, true),
            Some(HealthStatusEnum::UNHEALTHY)
        );
    }

    #[test]
    fn the_log_keeps_the_last_five() {
        let mut h = reset(None);
        for code in 0..8 {
            record(&mut h, result(code), 3, false);
        }
        let codes: Vec<i64> = h.log.unwrap().iter().filter_map(|r| r.exit_code).collect();
        assert_eq!(codes, [3, 4, 5, 6, 7]);
        // A restart keeps the log, starts over otherwise.
        let mut h = reset(None);
        record(&mut h, result(1), 1, false);
        let again = reset(Some(h));
        assert_eq!(again.status, Some(HealthStatusEnum::STARTING));
        assert_eq!(
            (again.failing_streak, again.log.unwrap().len()),
            (Some(0), 1)
        );
    }

    #[test]
    fn delays_follow_the_start_period() {
        let hc = HealthConfig {
            test: Some(vec!["CMD".into(), "x".into()]),
            interval: Some(secs(30)),
            start_period: Some(secs(60)),
            start_interval: Some(secs(2)),
            ..Default::default()
        };
        let s = Settings::of(Some(&hc), None).unwrap();
        let starting = Some(HealthStatusEnum::STARTING);
        assert_eq!(
            s.next_delay(Duration::ZERO, starting),
            Duration::from_secs(2)
        );
        assert_eq!(
            s.next_delay(Duration::ZERO, Some(HealthStatusEnum::HEALTHY)),
            Duration::from_secs(30)
        );
        assert_eq!(
            s.next_delay(Duration::from_secs(50), starting),
            Duration::from_secs(10)
        );
        assert_eq!(
            s.next_delay(Duration::from_secs(70), starting),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn output_and_messages_as_dockerd() {
        assert_eq!(limit_output(b"ok\n"), "ok\n");
        let long = vec![b'a'; MAX_OUTPUT + 10];
        let cut = limit_output(&long);
        assert_eq!(cut.len(), MAX_OUTPUT + 3);
        assert!(cut.ends_with("a..."));
        assert_eq!(
            timeout_message(Duration::from_secs(1), ""),
            "Health check exceeded timeout (1s)"
        );
        assert_eq!(
            timeout_message(Duration::from_millis(1500), "x"),
            "Health check exceeded timeout (1.5s): x"
        );
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn ps_words() {
        let mut h = reset(None);
        assert_eq!(ps_suffix(Some(&h)), " (health: starting)");
        assert_eq!(filter_value(Some(&h)), "starting");
        stopped(&mut h);
        assert_eq!(ps_suffix(Some(&h)), " (unhealthy)");
        assert_eq!(filter_value(None), "none");
        assert_eq!(ps_suffix(None), "");
    }
}
