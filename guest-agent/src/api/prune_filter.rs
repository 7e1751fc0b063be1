//! The filters `docker container prune` and `docker network prune` send (and
//! `docker system prune --filter` passes on to both): `until`, `label` and
//! `label!`, with dockerd's meanings. Something is pruned only if every filter
//! lets it go.

use std::collections::HashMap;

use super::{ApiError, Query};
use crate::images::labels_match;

pub const ALLOWED: &[&str] = &["until", "label", "label!"];

#[derive(Debug, Default)]
pub struct PruneFilter {
    /// Only what was created at or before this time (Unix seconds).
    until: Option<i64>,
    /// Only what has every one of these labels (`key` or `key=value`).
    labels: Vec<String>,
    /// Not what has every one of these.
    not_labels: Vec<String>,
}

impl PruneFilter {
    pub fn parse(q: &Query) -> Result<PruneFilter, ApiError> {
        let mut raw = q.filters(ALLOWED)?;
        let until = match raw.remove("until").unwrap_or_default().as_slice() {
            [] => None,
            [one] => Some(super::images::parse_until(one)?),
            _ => {
                return Err(ApiError::bad_request(
                    "more than one until filter specified",
                ))
            }
        };
        Ok(PruneFilter {
            until,
            labels: raw.remove("label").unwrap_or_default(),
            not_labels: raw.remove("label!").unwrap_or_default(),
        })
    }

    /// Whether something created at `created` (RFC 3339, as records keep it) with
    /// `labels` may be pruned. A creation time that does not parse passes `until`
    /// only when no `until` was given.
    pub fn lets_go(&self, created: &str, labels: &HashMap<String, String>) -> bool {
        if let Some(until) = self.until {
            match chrono::DateTime::parse_from_rfc3339(created) {
                Ok(t) if t.timestamp() <= until => {}
                _ => return false,
            }
        }
        if !labels_match(&self.labels, labels) {
            return false;
        }
        self.not_labels.is_empty() || !labels_match(&self.not_labels, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(json: &str) -> Result<PruneFilter, ApiError> {
        let q = Query::parse(Some(&format!(
            "filters={}",
            percent_encoding::utf8_percent_encode(json, percent_encoding::NON_ALPHANUMERIC)
        )));
        PruneFilter::parse(&q)
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_not_labels_as_dockerd() {
        let keep = labels(&[("keep", "yes"), ("team", "a")]);
        let plain = labels(&[]);
        let f = filter(r#"{"label!":["keep"]}"#).unwrap();
        assert!(!f.lets_go("2026-01-01T00:00:00Z", &keep));
        assert!(f.lets_go("2026-01-01T00:00:00Z", &plain));
        let f = filter(r#"{"label":["team=a"]}"#).unwrap();
        assert!(f.lets_go("2026-01-01T00:00:00Z", &keep));
        assert!(!f.lets_go("2026-01-01T00:00:00Z", &plain));
        // `label!` spares only what has all of its labels.
        let f = filter(r#"{"label!":["keep","other"]}"#).unwrap();
        assert!(f.lets_go("2026-01-01T00:00:00Z", &keep));
    }

    #[test]
    fn until_takes_what_is_older() {
        let f = filter(r#"{"until":["1767225600"]}"#).unwrap(); // 2026-01-01
        assert!(f.lets_go("2025-12-31T23:59:59Z", &HashMap::new()));
        assert!(f.lets_go("2026-01-01T00:00:00Z", &HashMap::new()));
        assert!(!f.lets_go("2026-01-01T00:00:01Z", &HashMap::new()));
        assert!(!f.lets_go("not a time", &HashMap::new()));
        assert!(filter(r#"{"until":["1h"]}"#).is_ok());
        assert!(filter(r#"{"until":["soon"]}"#).is_err());
        assert!(filter(r#"{"until":["1h","2h"]}"#).is_err());
        assert!(filter(r#"{"bogus":["x"]}"#).is_err());
        assert!(PruneFilter::parse(&Query::parse(None))
            .unwrap()
            .lets_go("", &HashMap::new()));
    }
}
