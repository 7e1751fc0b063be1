//! The engine's one way of writing "now": RFC 3339 in UTC with nanoseconds, as dockerd
//! writes `Created`, `StartedAt`, log line times and event times.

/// The current time as dockerd formats timestamps in the API and on disk.
pub fn now() -> String {
    rfc3339(chrono::Utc::now())
}

/// A duration in milliseconds, as the debug logs that time the engine's work print it.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A time as dockerd formats it.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nanoseconds_and_zulu() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 5).unwrap();
        assert_eq!(super::rfc3339(t), "2023-11-14T22:13:20.000000005Z");
        assert!(super::now().ends_with('Z'));
    }
}
