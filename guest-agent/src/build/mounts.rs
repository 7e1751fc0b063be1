//! BuildKit's flags on RUN — `--mount=…`, `--network=…`, `--security=…` — as data:
//! parsed from the words before the command, each mount with BuildKit's defaults
//! filled in. What a mount becomes for the step's container is in `run_mounts.rs`.

use std::collections::HashMap;

use super::BuildError;

/// A RUN instruction's flags and the command after them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunFlags {
    pub mounts: Vec<RunMount>,
    /// `--network=none`: the step runs without a network.
    pub no_network: bool,
    /// The command as written after the flags (shell or JSON form).
    pub command: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunMount {
    /// Absolute path inside the step's container (empty for a secret given only as env).
    pub target: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MountKind {
    /// Files of the context, of a stage or of an image; writes (`rw`) are discarded.
    Bind {
        from: Option<String>,
        source: String,
        rw: bool,
    },
    /// A directory kept between builds under `id`.
    Cache {
        id: String,
        readonly: bool,
        owner: Owner,
    },
    Tmpfs {
        size: Option<u64>,
    },
    /// A secret from the client's session, as a file at `target` and/or the
    /// variable `env`.
    Secret {
        id: String,
        required: bool,
        owner: Owner,
        env: Option<String>,
    },
    /// A socket to one of the client's SSH agents (`--ssh id=…`); `SSH_AUTH_SOCK`
    /// points at the first.
    Ssh {
        id: String,
        required: bool,
        owner: Owner,
    },
}

/// Who owns a mount's file or directory, and its mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Splits the leading `--flag=value` words off a RUN line. `expand` substitutes build
/// variables in the flag values (BuildKit expands them there; the command itself is
/// left to the shell).
pub fn parse(rest: &str, expand: impl Fn(&str) -> String) -> Result<RunFlags, BuildError> {
    let mut flags = RunFlags::default();
    let mut s = rest.trim_start();
    while let Some(body) = s.strip_prefix("--") {
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        let word = &body[..end];
        s = body[end..].trim_start();
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        let value = expand(value);
        match name {
            "mount" => flags.mounts.push(mount(&value)?),
            "network" => match value.as_str() {
                "default" | "" => {}
                "none" => flags.no_network = true,
                "host" => {
                    return Err(BuildError::Invalid(
                        "RUN --network=host: network.host is not allowed by this builder".into(),
                    ))
                }
                other => {
                    return Err(BuildError::Invalid(format!(
                        "RUN --network={other}: unsupported network mode"
                    )))
                }
            },
            "security" => match value.as_str() {
                "sandbox" => {}
                _ => {
                    return Err(BuildError::Invalid(format!(
                        "RUN --security={value}: security.insecure is not allowed by this builder"
                    )))
                }
            },
            _ => {
                return Err(BuildError::Invalid(format!(
                    "unknown flag: --{name} on RUN"
                )))
            }
        }
    }
    flags.command = s.to_string();
    let ssh = flags
        .mounts
        .iter_mut()
        .filter(|m| matches!(m.kind, MountKind::Ssh { .. }));
    for (n, m) in ssh.enumerate() {
        if m.target.is_empty() {
            m.target = format!("/run/buildkit/ssh_agent.{n}");
        }
    }
    Ok(flags)
}

/// One `--mount=` value: comma-separated `key=value` fields, as BuildKit reads them
/// (quotes around a whole field or a value are dropped).
fn mount(spec: &str) -> Result<RunMount, BuildError> {
    let bad = |why: String| BuildError::Invalid(format!("--mount={spec}: {why}"));
    let mut f: HashMap<String, String> = HashMap::new();
    for field in spec.split(',').filter(|x| !x.is_empty()) {
        let field = field.trim_matches('"');
        let (k, v) = field.split_once('=').unwrap_or((field, "true"));
        let k = match k.to_ascii_lowercase().as_str() {
            "dst" | "destination" => "target".to_string(),
            "src" => "source".to_string(),
            "ro" | "readonly" => "readonly".to_string(),
            "rw" | "readwrite" => "rw".to_string(),
            other => other.to_string(),
        };
        f.insert(k, v.trim_matches('"').to_string());
    }
    let flag = |k: &str| -> Result<bool, BuildError> {
        match f.get(k).map(String::as_str) {
            None => Ok(false),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(bad(format!("invalid value {v} for {k}"))),
        }
    };
    let number = |k: &str, radix: u32, default: u32| -> Result<u32, BuildError> {
        match f.get(k) {
            None => Ok(default),
            Some(v) => {
                u32::from_str_radix(v, radix).map_err(|_| bad(format!("invalid value {v} for {k}")))
            }
        }
    };
    let target = f.get("target").map(|t| clean(t)).unwrap_or_default();
    let typ = f.get("type").map(String::as_str).unwrap_or("bind");
    let need_target = || {
        if target.starts_with('/') {
            Ok(())
        } else if target.is_empty() {
            Err(bad("mount target is required".into()))
        } else {
            Err(bad(format!("mount target {target} must be absolute")))
        }
    };
    let kind = match typ {
        "bind" => {
            need_target()?;
            MountKind::Bind {
                from: f.get("from").cloned(),
                source: f.get("source").cloned().unwrap_or_else(|| "/".into()),
                rw: flag("rw")?,
            }
        }
        "cache" => {
            need_target()?;
            if f.contains_key("from") || f.contains_key("source") {
                return Err(bad(
                    "cache mounts seeded from another stage are not supported yet".into(),
                ));
            }
            MountKind::Cache {
                id: f.get("id").cloned().unwrap_or_else(|| target.clone()),
                readonly: flag("readonly")?,
                owner: Owner {
                    uid: number("uid", 10, 0)?,
                    gid: number("gid", 10, 0)?,
                    mode: number("mode", 8, 0o755)?,
                },
            }
        }
        "tmpfs" => {
            need_target()?;
            MountKind::Tmpfs {
                size: f
                    .get("size")
                    .map(|v| size(v).ok_or_else(|| bad(format!("invalid size {v}"))))
                    .transpose()?,
            }
        }
        "secret" => {
            let env = f.get("env").cloned().filter(|e| !e.is_empty());
            let id = match (f.get("id"), target.rsplit('/').next()) {
                (Some(id), _) => id.clone(),
                (None, Some(base)) if !base.is_empty() => base.to_string(),
                _ => return Err(bad("a secret mount needs an id or a target".into())),
            };
            let target = if target.is_empty() && env.is_none() {
                clean(&format!("/run/secrets/{id}"))
            } else {
                target.clone()
            };
            if !target.is_empty() && !target.starts_with('/') {
                return Err(bad(format!("mount target {target} must be absolute")));
            }
            return Ok(RunMount {
                target,
                kind: MountKind::Secret {
                    id,
                    required: flag("required")?,
                    owner: Owner {
                        uid: number("uid", 10, 0)?,
                        gid: number("gid", 10, 0)?,
                        mode: number("mode", 8, 0o400)?,
                    },
                    env,
                },
            });
        }
        "ssh" => {
            // An empty target is filled in by `parse`: BuildKit numbers them.
            if !target.is_empty() && !target.starts_with('/') {
                return Err(bad(format!("mount target {target} must be absolute")));
            }
            MountKind::Ssh {
                id: f.get("id").cloned().unwrap_or_else(|| "default".into()),
                required: flag("required")?,
                owner: Owner {
                    uid: number("uid", 10, 0)?,
                    gid: number("gid", 10, 0)?,
                    mode: number("mode", 8, 0o600)?,
                },
            }
        }
        other => return Err(bad(format!("unsupported mount type {other}"))),
    };
    Ok(RunMount { target, kind })
}

/// An absolute path cleaned lexically, as Go's `filepath.Clean` (`..` stops at the
/// root): what the mountpoint bookkeeping may join onto a layer directory. A relative
/// path is left for the caller to refuse.
fn clean(path: &str) -> String {
    if !path.starts_with('/') {
        return path.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A tmpfs size: bytes, or with a k/m/g suffix (binary units, as Docker reads them).
fn size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let v = v.strip_suffix('b').unwrap_or(&v);
    let (num, mul) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// The secrets a build's RUN lines ask for, each once, with whether one is required;
/// variables in ids are expanded with `vars`.
pub fn secret_ids<'a>(
    runs: impl Iterator<Item = &'a str>,
    vars: &HashMap<String, String>,
) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for rest in runs {
        let Ok(flags) = parse(rest, |v| super::dockerfile::expand(v, vars)) else {
            continue;
        };
        for m in flags.mounts {
            if let MountKind::Secret { id, required, .. } = m.kind {
                match out.iter_mut().find(|(i, _)| *i == id) {
                    Some(e) => e.1 |= required,
                    None => out.push((id, required)),
                }
            }
        }
    }
    out
}

/// The SSH agent ids the RUN lines mount (`RUN --mount=type=ssh,id=…`), each once.
pub fn ssh_ids<'a>(
    runs: impl Iterator<Item = &'a str>,
    vars: &HashMap<String, String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for rest in runs {
        let Ok(flags) = parse(rest, |v| super::dockerfile::expand(v, vars)) else {
            continue;
        };
        for m in flags.mounts {
            if let MountKind::Ssh { id, .. } = m.kind {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rest: &str) -> RunFlags {
        parse(rest, str::to_string).unwrap()
    }

    #[test]
    fn command_after_flags() {
        let f = p("--network=none   echo hi --mount=x");
        assert!(f.no_network);
        assert!(f.mounts.is_empty());
        assert_eq!(f.command, "echo hi --mount=x");
        assert_eq!(p("echo --network=none").command, "echo --network=none");
        let j = p("--mount=type=tmpfs,target=/t [\"sh\", \"-c\", \"ls\"]");
        assert_eq!(j.command, "[\"sh\", \"-c\", \"ls\"]");
        assert_eq!(j.mounts[0].kind, MountKind::Tmpfs { size: None });
    }

    #[test]
    fn ssh_mounts_are_numbered_and_default_to_a_private_socket() {
        let f = p(
            "--mount=type=ssh --mount=type=ssh,id=work,target=/s,required,mode=0640,uid=5 git pull",
        );
        assert_eq!(f.mounts[0].target, "/run/buildkit/ssh_agent.0");
        assert_eq!(
            f.mounts[0].kind,
            MountKind::Ssh {
                id: "default".into(),
                required: false,
                owner: Owner {
                    uid: 0,
                    gid: 0,
                    mode: 0o600
                },
            }
        );
        assert_eq!(f.mounts[1].target, "/s");
        assert_eq!(
            f.mounts[1].kind,
            MountKind::Ssh {
                id: "work".into(),
                required: true,
                owner: Owner {
                    uid: 5,
                    gid: 0,
                    mode: 0o640
                },
            }
        );
        let runs = [
            "--mount=type=ssh a",
            "--mount=type=ssh,id=$K b",
            "--mount=type=ssh c",
        ];
        let vars = HashMap::from([("K".to_string(), "k".to_string())]);
        assert_eq!(ssh_ids(runs.into_iter(), &vars), ["default", "k"]);
    }

    #[test]
    fn secret_defaults() {
        let f = p("--mount=type=secret,id=tok cat /run/secrets/tok");
        assert_eq!(f.mounts[0].target, "/run/secrets/tok");
        let MountKind::Secret {
            id,
            required,
            owner,
            env,
        } = &f.mounts[0].kind
        else {
            panic!("not a secret: {:?}", f.mounts[0]);
        };
        assert_eq!(
            (id.as_str(), *required, owner.mode, env),
            ("tok", false, 0o400, &None)
        );
        // The id defaults to the target's name; env alone mounts no file.
        let f = p("--mount=type=secret,target=/etc/key,required,mode=0440,uid=5 true");
        assert!(
            matches!(&f.mounts[0].kind, MountKind::Secret { id, required: true, owner: Owner { uid: 5, mode: 0o440, .. }, .. } if id == "key")
        );
        let f = p("--mount=type=secret,id=a,env=A true");
        assert_eq!(f.mounts[0].target, "");
    }

    #[test]
    fn cache_bind_and_expansion() {
        let f = parse(
            "--mount=type=cache,target=/root/.cache,uid=$U --mount=from=build,src=/out,dst=/in,rw make",
            |v| v.replace("$U", "1000"),
        )
        .unwrap();
        assert_eq!(
            f.mounts[0].kind,
            MountKind::Cache {
                id: "/root/.cache".into(),
                readonly: false,
                owner: Owner {
                    uid: 1000,
                    gid: 0,
                    mode: 0o755
                }
            }
        );
        assert_eq!(
            f.mounts[1],
            RunMount {
                target: "/in".into(),
                kind: MountKind::Bind {
                    from: Some("build".into()),
                    source: "/out".into(),
                    rw: true
                }
            }
        );
        assert_eq!(size("64m"), Some(64 << 20));
        let up = p("--mount=type=tmpfs,target=/../../a/./b/../c/ true");
        assert_eq!(up.mounts[0].target, "/a/c");
        assert_eq!(size("100"), Some(100));
    }

    #[test]
    fn bad_flags_are_named() {
        for (rest, says) in [
            ("--mount=type=bind echo", "mount target is required"),
            ("--mount=type=cache,target=rel echo", "must be absolute"),
            (
                "--mount=type=nfs,target=/x echo",
                "unsupported mount type nfs",
            ),
            ("--network=host echo", "network.host"),
            ("--security=insecure echo", "security.insecure"),
            ("--frobnicate echo", "unknown flag: --frobnicate"),
            (
                "--mount=type=secret,required=maybe,id=x echo",
                "invalid value maybe",
            ),
        ] {
            let e = parse(rest, str::to_string).unwrap_err().to_string();
            assert!(e.contains(says), "{rest}: {e}");
        }
    }

    #[test]
    fn secrets_listed_once() {
        let vars = HashMap::from([("S".to_string(), "tok".to_string())]);
        let runs = [
            "--mount=type=secret,id=$S true",
            "--mount=type=secret,id=tok,required true",
            "--mount=type=secret,id=other true",
            "echo no mounts",
        ];
        assert_eq!(
            secret_ids(runs.into_iter(), &vars),
            vec![("tok".to_string(), true), ("other".to_string(), false)]
        );
    }
}
