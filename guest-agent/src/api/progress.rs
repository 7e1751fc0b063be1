//! Docker's JSON progress messages (`jsonmessage`), which `docker pull` renders as bars.

use serde::Serialize;

use crate::images::Progress;

#[derive(Serialize)]
struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
}

#[derive(Serialize)]
struct Message<'a> {
    status: &'a str,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    progress_detail: Option<Detail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// One progress line, newline-terminated.
pub fn encode(p: &Progress) -> Vec<u8> {
    let msg = Message {
        status: &p.status,
        progress_detail: p.id.as_ref().map(|_| Detail {
            current: p.current,
            total: p.total,
        }),
        progress: p.current.map(|c| bar(c, p.total)),
        id: p.id.as_deref(),
    };
    let mut out = serde_json::to_vec(&msg).unwrap_or_default();
    out.push(b'\n');
    out
}

/// An error after the stream has started: the CLI prints it and exits non-zero.
pub fn encode_error(message: &str) -> Vec<u8> {
    // A struct, not `json!`: key order must not depend on whether some other
    // crate in the build turned on serde_json's `preserve_order`. dockerd's
    // JSONMessage puts errorDetail before error.
    #[derive(serde::Serialize)]
    struct Detail<'a> {
        message: &'a str,
    }
    #[derive(serde::Serialize)]
    struct ErrorLine<'a> {
        #[serde(rename = "errorDetail")]
        error_detail: Detail<'a>,
        error: &'a str,
    }
    let mut out = serde_json::to_vec(&ErrorLine {
        error_detail: Detail { message },
        error: message,
    })
    .unwrap_or_default();
    out.push(b'\n');
    out
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        // Four significant digits, as Go's units.HumanSize.
        let decimals = if v >= 100.0 {
            1
        } else if v >= 10.0 {
            2
        } else {
            3
        };
        format!("{v:.decimals$}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[i]
    }
}

fn bar(current: u64, total: Option<u64>) -> String {
    const WIDTH: u64 = 50;
    match total.filter(|t| *t > 0) {
        Some(t) => {
            let filled = (current.min(t) * WIDTH / t) as usize;
            let arrow = if filled < WIDTH as usize { ">" } else { "" };
            let pad = (WIDTH as usize).saturating_sub(filled + arrow.len());
            format!(
                "[{}{}{}] {}/{}",
                "=".repeat(filled),
                arrow,
                " ".repeat(pad),
                human(current),
                human(t)
            )
        }
        None => human(current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_dockerd() {
        let p = Progress {
            id: Some("abc".into()),
            status: "Downloading".into(),
            current: Some(500),
            total: Some(1000),
        };
        let s = String::from_utf8(encode(&p)).unwrap();
        assert!(s.starts_with(r#"{"status":"Downloading","progressDetail":{"current":500,"total":1000},"progress":"[=========================>"#), "{s}");
        assert!(s.ends_with("500B/1kB\",\"id\":\"abc\"}\n"), "{s}");
        assert_eq!(human(1_234_567), "1.235MB");
        assert_eq!(human(32_000_000), "32MB");
        let e = String::from_utf8(encode_error("boom")).unwrap();
        assert_eq!(
            e,
            "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\n"
        );
    }
}
