//! `docker commit --change`: the Dockerfile instructions that only touch the image
//! config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
//! WORKDIR), applied to the config the new image gets, with dockerd's rules (shell form
//! runs under `/bin/sh -c`; a new ENTRYPOINT clears an inherited CMD).

use bollard_stubs::models::ImageConfig;

/// JSON form (`["a","b"]`) or shell form (`/bin/sh -c "…"`).
fn command(rest: &str) -> Vec<String> {
    let t = rest.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), t.to_string()]
}

/// Whitespace-separated words, or a JSON array.
fn words(rest: &str) -> Vec<String> {
    let t = rest.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    t.split_whitespace().map(str::to_string).collect()
}

/// `KEY=VALUE …` pairs (quotes stripped), or the legacy `KEY VALUE` form.
fn pairs(rest: &str) -> Vec<(String, String)> {
    let t = rest.trim();
    if !t.contains('=') {
        return match t.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => Vec::new(),
        };
    }
    let mut out = Vec::new();
    let mut chars = t.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            let mut quote = None;
            while let Some(&c) = chars.peek() {
                match (quote, c) {
                    (None, '"') | (None, '\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, c) if c.is_whitespace() => break,
                    (_, '\\') => {
                        chars.next();
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                        continue;
                    }
                    (_, c) => value.push(c),
                }
                chars.next();
            }
        }
        out.push((key, value));
    }
    out
}

/// Applies one `--change` line to `cfg`.
pub fn apply(cfg: &mut ImageConfig, change: &str) -> Result<(), String> {
    let line = change.trim();
    let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(command(rest)),
        "ENTRYPOINT" => {
            cfg.entrypoint = Some(command(rest));
            cfg.cmd = None;
        }
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs(rest) {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(Default::default);
            for (k, v) in pairs(rest) {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(Vec::new);
            for p in words(rest) {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(Vec::new);
            for v in words(rest) {
                if !vols.contains(&v) {
                    vols.push(v);
                }
            }
        }
        "USER" => cfg.user = Some(rest.trim().to_string()),
        "WORKDIR" => {
            let w = rest.trim();
            let base = cfg.working_dir.clone().unwrap_or_default();
            cfg.working_dir = Some(if w.starts_with('/') || base.is_empty() {
                w.to_string()
            } else {
                format!("{}/{w}", base.trim_end_matches('/'))
            });
        }
        "STOPSIGNAL" => cfg.stop_signal = Some(rest.trim().to_string()),
        "ONBUILD" => cfg
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.trim().to_string()),
        other => {
            return Err(format!(
                "{} is not a valid change command",
                other.to_ascii_lowercase()
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions() {
        let mut c = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["A=1".into()]),
            ..Default::default()
        };
        apply(&mut c, r#"CMD ["cat","/hello"]"#).unwrap();
        assert_eq!(c.cmd, Some(vec!["cat".into(), "/hello".into()]));
        apply(&mut c, "ENV A=2 B=\"two words\"").unwrap();
        assert_eq!(c.env, Some(vec!["A=2".into(), "B=two words".into()]));
        apply(&mut c, "ENV C legacy form").unwrap();
        assert!(c.env.as_ref().unwrap().contains(&"C=legacy form".into()));
        apply(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(
            c.exposed_ports,
            Some(vec!["80/tcp".into(), "53/udp".into()])
        );
        apply(&mut c, "WORKDIR /app").unwrap();
        apply(&mut c, "WORKDIR sub").unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/app/sub"));
        apply(&mut c, "ENTRYPOINT echo hi").unwrap();
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(c.cmd, None, "a new ENTRYPOINT clears CMD");
        apply(&mut c, "LABEL a=b").unwrap();
        assert_eq!(c.labels.unwrap()["a"], "b");
        assert!(apply(&mut ImageConfig::default(), "RUN true").is_err());
    }
}
