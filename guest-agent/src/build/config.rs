//! Instructions that only change the image config the stage's next commit writes:
//! ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE, VOLUME, STOPSIGNAL, ONBUILD
//! (through the same parser as `docker commit --change`), SHELL, HEALTHCHECK with its
//! Go-style durations, and MAINTAINER (accepted, deprecated).

use tokio::sync::mpsc;

use super::dockerfile::{self, Instruction};
use super::history::Style;
use super::{BuildError, Output, State};

/// Applies one config-only instruction to the stage; the change is written by the
/// stage's next commit. `seen`: an earlier build made this same change at this same
/// point, which is reported as dockerd reports its cached step ("Using cache").
pub(super) async fn apply(
    st: &mut State,
    step: &Instruction,
    style: Style,
    seen: bool,
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    let expanded = match step.keyword.as_str() {
        // CMD, ENTRYPOINT and ONBUILD keep their variables for run time; SHELL and
        // HEALTHCHECK are taken as written.
        "CMD" | "ENTRYPOINT" | "ONBUILD" | "SHELL" | "HEALTHCHECK" | "MAINTAINER" => {
            step.rest.clone()
        }
        _ => dockerfile::expand(&step.rest, &st.vars),
    };
    apply_change(st, step, &expanded, seen, out).await?;
    st.pending
        .push(style.metadata(&step.keyword, &expanded, &st.config));
    Ok(())
}

async fn apply_change(
    st: &mut State,
    step: &Instruction,
    expanded: &str,
    seen: bool,
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    let say = |s: String| async move {
        let _ = out.send(Output::Stream(s)).await;
    };
    match step.keyword.as_str() {
        "SHELL" => {
            let shell = dockerfile::json_form(&step.rest).ok_or_else(|| {
                BuildError::Invalid(format!(
                    "line {}: SHELL requires the arguments to be in JSON form",
                    step.line
                ))
            })?;
            st.config.shell = Some(shell);
            st.dirty = true;
        }
        "HEALTHCHECK" => {
            st.config.healthcheck = Some(healthcheck(&step.rest).map_err(|e| {
                BuildError::Invalid(format!("line {}: HEALTHCHECK: {e}", step.line))
            })?);
            st.dirty = true;
        }
        "MAINTAINER" => {
            say(" ---> MAINTAINER is deprecated; use a LABEL\n".to_string()).await;
        }
        _ => {
            let line = format!("{} {}", step.keyword, expanded);
            crate::containers::apply_change(&mut st.config, &line)
                .map_err(|e| BuildError::Invalid(format!("line {}: {e}", step.line)))?;
            if step.keyword == "ENV" {
                for e in st.config.env.clone().unwrap_or_default() {
                    if let Some((k, v)) = e.split_once('=') {
                        st.vars.insert(k.to_string(), v.to_string());
                    }
                }
            }
            st.dirty = true;
            say(match seen {
                true => " ---> Using cache\n".to_string(),
                false => format!(" ---> Recorded {}\n", step.keyword),
            })
            .await;
        }
    }
    Ok(())
}

/// Go's duration syntax as Docker's flags take it (`30s`, `1m30s`, `500ms`), in ns.
fn duration_ns(s: &str) -> Result<i64, String> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) {
            unit.push(chars.next().unwrap_or_default());
        }
        let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        total += v * match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("invalid duration {s:?}")),
        };
    }
    if !num.is_empty() {
        return Err(format!("invalid duration {s:?}: missing unit"));
    }
    Ok(total as i64)
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=… --timeout=… --start-period=…
/// --retries=…] CMD command`.
fn healthcheck(rest: &str) -> Result<bollard_stubs::models::HealthConfig, String> {
    let mut h = bollard_stubs::models::HealthConfig::default();
    let mut words = rest.trim();
    if words.eq_ignore_ascii_case("NONE") {
        h.test = Some(vec!["NONE".into()]);
        return Ok(h);
    }
    while let Some(flag) = words.strip_prefix("--") {
        let (f, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (k, v) = f.split_once('=').ok_or_else(|| format!("bad flag --{f}"))?;
        match k {
            "interval" => h.interval = Some(duration_ns(v)?),
            "timeout" => h.timeout = Some(duration_ns(v)?),
            "start-period" => h.start_period = Some(duration_ns(v)?),
            "start-interval" => h.start_interval = Some(duration_ns(v)?),
            "retries" => h.retries = Some(v.parse().map_err(|_| format!("bad retries {v}"))?),
            _ => return Err(format!("unknown flag: --{k}")),
        }
        words = tail.trim_start();
    }
    let cmd = words
        .strip_prefix("CMD")
        .or_else(|| words.strip_prefix("cmd"))
        .ok_or("missing CMD")?
        .trim();
    h.test = Some(match dockerfile::json_form(cmd) {
        Some(mut v) => {
            v.insert(0, "CMD".into());
            v
        }
        None => vec!["CMD-SHELL".into(), cmd.to_string()],
    });
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthchecks_and_durations() {
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert!(duration_ns("5").is_err());
        let h = healthcheck("--interval=5s --retries=2 CMD wget -q localhost").unwrap();
        assert_eq!(h.interval, Some(5_000_000_000));
        assert_eq!(h.retries, Some(2));
        assert_eq!(
            h.test,
            Some(vec!["CMD-SHELL".into(), "wget -q localhost".into()])
        );
        let j = healthcheck(r#"CMD ["true"]"#).unwrap();
        assert_eq!(j.test, Some(vec!["CMD".into(), "true".into()]));
        assert_eq!(healthcheck("NONE").unwrap().test, Some(vec!["NONE".into()]));
    }
}
