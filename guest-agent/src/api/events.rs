//! `GET /events`: past events from `since`, then live ones until `until` (or forever).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{ApiError, ApiResult, Query};
use crate::engine::Engine;
use crate::events::EventFilters;

/// `1700000000`, `1700000000.123456789`, an RFC 3339 time, or a Go duration like `10m`
/// (that long ago) → Unix nanoseconds.
pub fn parse_time(v: &str) -> Result<i64, ApiError> {
    const NANOS: i64 = 1_000_000_000;
    let bad = || ApiError::bad_request(format!("invalid timestamp: {v}"));
    if let Some((s, frac)) = v.split_once('.') {
        let secs: i64 = s.parse().map_err(|_| bad())?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // ASCII digits: any byte index is a char boundary.
        let digits = &frac[..frac.len().min(9)];
        let nanos: i64 = format!("{digits:0<9}").parse().map_err(|_| bad())?;
        return secs
            .checked_mul(NANOS)
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(bad);
    }
    if let Ok(s) = v.parse::<i64>() {
        return s.checked_mul(NANOS).ok_or_else(bad);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    let (num, unit) = v.split_at(v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => return Err(bad()),
    };
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    secs.and_then(|s| s.checked_mul(NANOS))
        .and_then(|ago| now.checked_sub(ago))
        .ok_or_else(bad)
}

/// `busybox` for `docker.io/library/busybox:latest`; anything that is no
/// reference stays as it is.
fn familiar_repository(image: &str) -> String {
    crate::images::reference::ImageRef::parse(image)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| image.to_string())
}

pub fn events(engine: &Engine, q: &Query) -> ApiResult {
    let filters = EventFilters {
        fields: q.any_filters()?,
        familiar: familiar_repository,
    };
    let since = q.get("since").map(parse_time).transpose()?;
    let until = q.get("until").map(parse_time).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::bad_request(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.get("since").unwrap_or_default(),
                q.get("until").unwrap_or_default()
            )));
        }
    }
    let (past, rx) = engine.events.subscribe(since);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let f = filters.clone();
    let past = futures_util::stream::iter(
        past.into_iter()
            .filter(move |m| f.matches(m) && until.is_none_or(|u| m.time_nano.unwrap_or(0) <= u)),
    );
    let live_until = until.map(|u| Duration::from_nanos((u - now).max(0) as u64));
    let live = tokio_stream_from(rx)
        .filter(move |m| {
            let ok = filters.matches(m) && until.is_none_or(|u| m.time_nano.unwrap_or(0) <= u);
            async move { ok }
        })
        .take_until(async move {
            match live_until {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
        });
    let body = past.chain(live).map(|m| {
        let mut line = serde_json::to_vec(&m).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(line)))
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// A broadcast receiver as a stream; lagging listeners skip what they missed.
fn tokio_stream_from(
    rx: tokio::sync::broadcast::Receiver<bollard_stubs::models::EventMessage>,
) -> impl futures_util::Stream<Item = bollard_stubs::models::EventMessage> + Send + Sync {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(m) => return Some((m, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_time("12.5").unwrap(), 12_500_000_000);
        assert!(parse_time("2024-01-01T00:00:00Z").unwrap() > 0);
        assert!(parse_time("10m").unwrap() > 0);
        assert!(parse_time("soon").is_err());
    }

    /// Found by the `api_request` fuzz target: these overflowed i64 (a panic in debug
    /// builds) or cut a UTF-8 character in half.
    #[test]
    fn out_of_range_and_non_ascii_times_are_refused() {
        for v in [
            "9223372036854775807",
            "9223372036854775807.5",
            "-9223372036854775807.5",
            "9223372036854775807h",
            "153722867280912931m",
            "1.12345678\u{e9}",
            "1.5e3",
        ] {
            assert!(parse_time(v).is_err(), "{v}");
        }
        assert_eq!(parse_time("1.1234567891").unwrap(), 1_123_456_789);
    }
}
