//! A container's mounts as data: what `-v` (`HostConfig.Binds`), `--mount`
//! (`HostConfig.Mounts`), `--volumes-from` and anonymous volumes (`Config.Volumes`,
//! the image's `VOLUME`s included) ask for, with dockerd's precedence, defaults and
//! error texts. Nothing here touches the system: whether a bind source exists is a
//! question the caller answers.

use std::collections::HashMap;
use std::path::{Component, Path};

use bollard_stubs::models::{
    Mount, MountBindOptionsPropagationEnum, MountPoint, MountType, VolumeCreateRequest,
};
use serde::{Deserialize, Serialize};

use super::{validate_name, ANONYMOUS_LABEL};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Volume,
    Bind,
    Tmpfs,
}

/// One mount of a container, as its record keeps it; `point()` is what inspect shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMount {
    pub kind: Kind,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path: the bind source, or the volume's `_data` once it is known.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// `Mode` as dockerd reports it (`z` for named volumes, `ro`, or empty).
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub propagation: String,
    /// Copy the image's content at `destination` into the volume when it is empty.
    #[serde(default)]
    pub copy_data: bool,
    /// The volume was created for this container (no name was given): `rm -v` and
    /// `--rm` remove it.
    #[serde(default)]
    pub anonymous: bool,
    /// `-v /host:/path` creates a missing host directory, `--mount` does not.
    #[serde(default)]
    pub create_source: bool,
    /// tmpfs mount options (`size=…,mode=…`).
    #[serde(default)]
    pub tmpfs_options: String,
    /// `--mount …,volume-subpath=…`: a directory inside the volume.
    #[serde(default)]
    pub subpath: String,
}

impl ContainerMount {
    pub fn point(&self) -> MountPoint {
        let volume = self.kind == Kind::Volume;
        MountPoint {
            typ: Some(
                match self.kind {
                    Kind::Volume => "volume",
                    Kind::Bind => "bind",
                    Kind::Tmpfs => "tmpfs",
                }
                .into(),
            ),
            name: volume.then(|| self.name.clone()),
            source: Some(self.source.clone()),
            destination: Some(self.destination.clone()),
            driver: volume.then(|| "local".to_string()),
            mode: Some(self.mode.clone()),
            rw: Some(self.rw),
            propagation: Some(self.propagation.clone()),
        }
    }
}

/// A planned mount, and for a volume that may not exist yet, how to create it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub mount: ContainerMount,
    pub create: Option<VolumeCreateRequest>,
}

/// Everything a container asks to have mounted.
pub struct Request<'a> {
    pub binds: &'a [String],
    pub mounts: &'a [Mount],
    /// `Config.Volumes` merged with the image's: each key becomes an anonymous volume
    /// unless something else is mounted there.
    pub anonymous: &'a [String],
    /// The mounts of each `--volumes-from` container and the mode given with it.
    pub volumes_from: &'a [(Vec<ContainerMount>, String)],
}

/// dockerd's order: `--volumes-from`, then `-v`, then `--mount` (a later one replaces
/// an earlier one at the same destination, but `-v` and `--mount` may not both name
/// one), then anonymous volumes where nothing else is mounted. Parents are mounted
/// before their children.
pub fn plan(
    req: &Request<'_>,
    bind_source_exists: &dyn Fn(&Path) -> bool,
) -> Result<Vec<Planned>, String> {
    let mut out: Vec<Planned> = Vec::new();
    let put = |out: &mut Vec<Planned>, p: Planned| {
        out.retain(|x| x.mount.destination != p.mount.destination);
        out.push(p);
    };
    for (mounts, mode) in req.volumes_from {
        let ro = match mode.as_str() {
            "" | "rw" => false,
            "ro" => true,
            other => return Err(format!("invalid mode: {other}")),
        };
        for m in mounts {
            let mut m = m.clone();
            m.rw = m.rw && !ro;
            m.copy_data = false;
            m.mode = String::new();
            put(
                &mut out,
                Planned {
                    mount: m,
                    create: None,
                },
            );
        }
    }
    let mut explicit: Vec<String> = Vec::new();
    for spec in req.binds {
        let p = parse_bind(spec)?;
        if explicit.contains(&p.mount.destination) {
            return Err(format!("Duplicate mount point: {}", p.mount.destination));
        }
        explicit.push(p.mount.destination.clone());
        put(&mut out, p);
    }
    for m in req.mounts {
        let p = parse_mount(m, bind_source_exists)?;
        if explicit.contains(&p.mount.destination) {
            return Err(format!("Duplicate mount point: {}", p.mount.destination));
        }
        explicit.push(p.mount.destination.clone());
        put(&mut out, p);
    }
    for dest in req.anonymous {
        let dest = clean_target(dest)
            .map_err(|e| format!("invalid volume specification: '{dest}': {e}"))?;
        if out.iter().any(|p| p.mount.destination == dest) {
            continue;
        }
        out.push(anonymous_volume(&dest, true, "", true, HashMap::new()));
    }
    out.sort_by_key(|p| Path::new(&p.mount.destination).components().count());
    Ok(out)
}

fn anonymous_volume(
    dest: &str,
    rw: bool,
    mode: &str,
    copy_data: bool,
    labels: HashMap<String, String>,
) -> Planned {
    let name = hex::encode(rand::random::<[u8; 32]>());
    volume(
        &name,
        dest,
        rw,
        mode,
        copy_data,
        true,
        labels,
        HashMap::new(),
    )
}

#[allow(clippy::too_many_arguments)]
fn volume(
    name: &str,
    dest: &str,
    rw: bool,
    mode: &str,
    copy_data: bool,
    anonymous: bool,
    mut labels: HashMap<String, String>,
    opts: HashMap<String, String>,
) -> Planned {
    if anonymous {
        labels.insert(ANONYMOUS_LABEL.into(), String::new());
    }
    Planned {
        mount: ContainerMount {
            kind: Kind::Volume,
            name: name.to_string(),
            source: String::new(),
            destination: dest.to_string(),
            rw,
            mode: mode.to_string(),
            propagation: String::new(),
            copy_data,
            anonymous,
            create_source: false,
            tmpfs_options: String::new(),
            subpath: String::new(),
        },
        create: Some(VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            driver_opts: Some(opts),
            labels: Some(labels),
            cluster_volume_spec: None,
        }),
    }
}

/// A mount target: absolute, never `/`, `..` resolved lexically (the runtime resolves
/// symlinks inside the rootfs).
pub fn clean_target(t: &str) -> Result<String, String> {
    if !t.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{t}' mount path must be absolute"
        ));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(t).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// `-v SRC:DST[:MODE]`: an absolute source is a bind mount, anything else names a
/// volume.
pub fn parse_bind(spec: &str) -> Result<Planned, String> {
    let invalid = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(invalid());
    }
    let mut ro = false;
    let mut nocopy = false;
    let mut propagation = String::new();
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => ro = true,
            "rw" => ro = false,
            "nocopy" => nocopy = true,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            other => return Err(format!("invalid mode: {other}")),
        }
    }
    let bind = src.starts_with('/');
    let kind = if bind { "bind" } else { "volume" };
    let dest = clean_target(dst).map_err(|e| {
        format!(
            "{}: invalid mount config for type \"{kind}\": {e}",
            invalid()
        )
    })?;
    if bind {
        let source = clean_target(src).unwrap_or_else(|_| "/".into());
        return Ok(Planned {
            mount: ContainerMount {
                kind: Kind::Bind,
                name: String::new(),
                source,
                destination: dest,
                rw: !ro,
                mode: mode.to_string(),
                propagation: if propagation.is_empty() {
                    "rprivate".into()
                } else {
                    propagation
                },
                copy_data: false,
                anonymous: false,
                create_source: true,
                tmpfs_options: String::new(),
                subpath: String::new(),
            },
            create: None,
        });
    }
    validate_name(src)?;
    let shown = if mode.is_empty() { "z" } else { mode };
    Ok(volume(
        src,
        &dest,
        !ro,
        shown,
        !nocopy,
        false,
        HashMap::new(),
        HashMap::new(),
    ))
}

/// `--mount type=…,source=…,target=…` (the API's `Mount`).
pub fn parse_mount(m: &Mount, exists: &dyn Fn(&Path) -> bool) -> Result<Planned, String> {
    let typ = m.typ.unwrap_or_default();
    let cfg = |e: String| format!("invalid mount config for type \"{typ}\": {e}");
    let target = m.target.as_deref().unwrap_or("");
    if target.is_empty() {
        return Err(cfg("field Target must not be empty".into()));
    }
    let dest = clean_target(target).map_err(cfg)?;
    let source = m.source.clone().unwrap_or_default();
    let rw = m.read_only != Some(true);
    match typ {
        MountType::BIND => {
            if source.is_empty() {
                return Err(cfg("field Source must not be empty".into()));
            }
            if !source.starts_with('/') {
                return Err(cfg(format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            if m.volume_options.is_some() {
                return Err(cfg("field VolumeOptions must not be specified".into()));
            }
            let opts = m.bind_options.clone().unwrap_or_default();
            let create = opts.create_mountpoint == Some(true);
            if !create && !exists(Path::new(&source)) {
                return Err(cfg(format!("bind source path does not exist: {source}")));
            }
            let propagation = match opts.propagation {
                None | Some(MountBindOptionsPropagationEnum::EMPTY) => "rprivate".to_string(),
                Some(p) => p.to_string(),
            };
            Ok(Planned {
                mount: ContainerMount {
                    kind: Kind::Bind,
                    name: String::new(),
                    source: clean_target(&source).unwrap_or_else(|_| "/".into()),
                    destination: dest,
                    rw,
                    mode: String::new(),
                    propagation,
                    copy_data: false,
                    anonymous: false,
                    create_source: create,
                    tmpfs_options: String::new(),
                    subpath: String::new(),
                },
                create: None,
            })
        }
        MountType::VOLUME => {
            if m.bind_options.is_some() {
                return Err(cfg("field BindOptions must not be specified".into()));
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            let dc = vo.driver_config.clone().unwrap_or_default();
            if dc
                .name
                .as_deref()
                .is_some_and(|d| !d.is_empty() && d != "local")
            {
                return Err(format!(
                    "error looking up volume plugin {}: plugin not found",
                    dc.name.unwrap_or_default()
                ));
            }
            let subpath = vo.subpath.clone().unwrap_or_default();
            if !subpath.is_empty() {
                let p = Path::new(&subpath);
                if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
                    return Err(cfg(format!(
                        "subpath must be a relative path within the volume: {subpath}"
                    )));
                }
            }
            let copy = vo.no_copy != Some(true) && subpath.is_empty();
            let labels = vo.labels.clone().unwrap_or_default();
            let opts = dc.options.clone().unwrap_or_default();
            let mut p = if source.is_empty() {
                let mut p = anonymous_volume(&dest, rw, "z", copy, labels);
                if let Some(c) = p.create.as_mut() {
                    c.driver_opts = Some(opts);
                }
                p
            } else {
                validate_name(&source)?;
                volume(&source, &dest, rw, "z", copy, false, labels, opts)
            };
            p.mount.subpath = subpath;
            Ok(p)
        }
        MountType::TMPFS => {
            if !source.is_empty() {
                return Err(cfg("field Source must not be specified".into()));
            }
            let to = m.tmpfs_options.clone().unwrap_or_default();
            let mut opts: Vec<String> = Vec::new();
            if let Some(size) = to.size_bytes.filter(|s| *s > 0) {
                opts.push(format!("size={size}"));
            }
            if let Some(mode) = to.mode.filter(|m| *m > 0) {
                opts.push(format!("mode={mode:o}"));
            }
            for kv in to.options.unwrap_or_default() {
                opts.push(kv.join("="));
            }
            if !rw {
                opts.push("ro".into());
            }
            Ok(Planned {
                mount: ContainerMount {
                    kind: Kind::Tmpfs,
                    name: String::new(),
                    source: String::new(),
                    destination: dest,
                    rw,
                    mode: String::new(),
                    propagation: String::new(),
                    copy_data: false,
                    anonymous: false,
                    create_source: false,
                    tmpfs_options: opts.join(","),
                    subpath: String::new(),
                },
                create: None,
            })
        }
        other => Err(format!("mount type \"{other}\" is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(_: &Path) -> bool {
        true
    }
    fn no(_: &Path) -> bool {
        false
    }

    #[test]
    fn binds_and_named_volumes_as_dockerd_shows_them() {
        let v = parse_bind("data:/var/lib/x").unwrap();
        assert_eq!(v.mount.kind, Kind::Volume);
        assert_eq!(v.mount.name, "data");
        assert_eq!(v.mount.mode, "z");
        assert!(v.mount.rw && v.mount.copy_data && !v.mount.anonymous);
        let ro = parse_bind("data:/x:ro,nocopy").unwrap();
        assert!(!ro.mount.rw && !ro.mount.copy_data);
        let b = parse_bind("/srv:/srv:ro").unwrap();
        assert_eq!(b.mount.kind, Kind::Bind);
        assert_eq!((b.mount.mode.as_str(), b.mount.rw), ("ro", false));
        assert_eq!(b.mount.propagation, "rprivate");
        assert!(b.mount.create_source && b.create.is_none());
        assert_eq!(
            parse_bind("a!:/x").unwrap_err(),
            "create a!: \"a!\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert_eq!(
            parse_bind("/a:/b:bogus").unwrap_err(),
            "invalid mode: bogus"
        );
        assert!(parse_bind("data:rel")
            .unwrap_err()
            .contains("must be absolute"));
        assert!(parse_bind("justone").is_err());
        assert!(parse_bind("/a:/").unwrap_err().contains("can't be '/'"));
    }

    #[test]
    fn mount_flags() {
        let bind = Mount {
            typ: Some(MountType::BIND),
            source: Some("/nonexistent".into()),
            target: Some("/x".into()),
            ..Default::default()
        };
        assert_eq!(
            parse_mount(&bind, &no).unwrap_err(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent"
        );
        let p = parse_mount(&bind, &yes).unwrap();
        assert_eq!(
            (p.mount.mode.as_str(), p.mount.propagation.as_str()),
            ("", "rprivate")
        );
        let anon = Mount {
            typ: Some(MountType::VOLUME),
            target: Some("/v".into()),
            read_only: Some(true),
            ..Default::default()
        };
        let p = parse_mount(&anon, &yes).unwrap();
        assert!(p.mount.anonymous && !p.mount.rw && p.mount.name.len() == 64);
        let labels = p.create.unwrap().labels.unwrap();
        assert!(labels.contains_key(ANONYMOUS_LABEL));
        let tmpfs = Mount {
            typ: Some(MountType::TMPFS),
            target: Some("/t".into()),
            tmpfs_options: Some(bollard_stubs::models::MountTmpfsOptions {
                size_bytes: Some(1 << 20),
                mode: Some(0o1777),
                options: None,
            }),
            ..Default::default()
        };
        let p = parse_mount(&tmpfs, &yes).unwrap();
        assert_eq!(p.mount.tmpfs_options, "size=1048576,mode=1777");
        let sub = Mount {
            typ: Some(MountType::VOLUME),
            source: Some("v1".into()),
            target: Some("/s".into()),
            volume_options: Some(bollard_stubs::models::MountVolumeOptions {
                subpath: Some("../etc".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(parse_mount(&sub, &yes)
            .unwrap_err()
            .contains("relative path"));
    }

    #[test]
    fn precedence_and_anonymous_volumes() {
        let from = vec![(
            vec![parse_bind("shared:/shared").unwrap().mount],
            "ro".to_string(),
        )];
        let binds = vec!["/host:/data".to_string()];
        let anon = vec![
            "/data".to_string(),
            "/cache".to_string(),
            "/data/sub".to_string(),
        ];
        let plan = plan(
            &Request {
                binds: &binds,
                mounts: &[],
                anonymous: &anon,
                volumes_from: &from,
            },
            &yes,
        )
        .unwrap();
        let dests: Vec<&str> = plan.iter().map(|p| p.mount.destination.as_str()).collect();
        assert_eq!(dests, ["/shared", "/data", "/cache", "/data/sub"]);
        assert!(!plan[0].mount.rw, "--volumes-from c:ro");
        assert!(!plan[0].mount.copy_data);
        assert_eq!(
            plan[1].mount.kind,
            Kind::Bind,
            "-v wins over the image's VOLUME"
        );
        assert!(plan[2].mount.anonymous && plan[2].mount.mode.is_empty());
        let dup = vec!["aa:/x".to_string(), "bb:/x".to_string()];
        let err = super::plan(
            &Request {
                binds: &dup,
                mounts: &[],
                anonymous: &[],
                volumes_from: &[],
            },
            &yes,
        )
        .unwrap_err();
        assert_eq!(err, "Duplicate mount point: /x");
    }
}
