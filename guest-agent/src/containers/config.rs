//! Turning a create request plus the image's config into what runs, with Docker's rules:
//! entrypoint/cmd overrides, environment merging, the healthcheck, working dir and user defaults, and
//! `user[:group]` resolved against the container's own /etc/passwd and /etc/group.

use std::path::Path;

use bollard_stubs::models::{ContainerConfig, HealthConfig};

use crate::images::ConfigFile;

/// Docker's PATH when neither the image nor the request sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The container's config after applying the image's defaults (what inspect shows as
/// `Config`).
pub fn merge(req: &ContainerConfig, image: &ConfigFile) -> ContainerConfig {
    let img = image.config.clone().unwrap_or_default();
    let mut out = req.clone();
    // Entrypoint given: the image's Cmd no longer applies.
    if req.entrypoint.as_ref().is_some_and(|e| !e.is_empty()) {
        out.cmd = req.cmd.clone();
    } else {
        out.entrypoint = img.entrypoint.clone();
        if req.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            out.cmd = img.cmd.clone();
        }
    }
    // An explicit empty entrypoint (`--entrypoint ""`) clears the image's.
    if req
        .entrypoint
        .as_ref()
        .is_some_and(|e| e.len() == 1 && e[0].is_empty())
    {
        out.entrypoint = None;
    }
    out.env = Some(merge_env(
        img.env.as_deref().unwrap_or_default(),
        req.env.as_deref().unwrap_or_default(),
    ));
    if req.working_dir.as_deref().is_none_or(str::is_empty) {
        out.working_dir = img.working_dir.clone().filter(|w| !w.is_empty());
    }
    if req.user.as_deref().is_none_or(str::is_empty) {
        out.user = img.user.clone().filter(|u| !u.is_empty());
    }
    let mut labels = img.labels.clone().unwrap_or_default();
    labels.extend(req.labels.clone().unwrap_or_default());
    out.labels = Some(labels);
    if req.stop_signal.is_none() {
        out.stop_signal = img.stop_signal.clone();
    }
    if req.exposed_ports.is_none() {
        out.exposed_ports = img.exposed_ports.clone();
    }
    // The image's VOLUMEs and the request's (`-v /path`) together, as dockerd merges them.
    let mut volumes = img.volumes.clone().unwrap_or_default();
    for v in req.volumes.clone().unwrap_or_default() {
        if !volumes.contains(&v) {
            volumes.push(v);
        }
    }
    out.volumes = (!volumes.is_empty()).then_some(volumes);
    out.healthcheck = merge_healthcheck(req.healthcheck.as_ref(), img.healthcheck.as_ref());
    out
}

/// The request's healthcheck over the image's, field by field as dockerd merges them:
/// a missing test or a zero duration/retry count inherits the image's.
pub fn merge_healthcheck(
    req: Option<&HealthConfig>,
    image: Option<&HealthConfig>,
) -> Option<HealthConfig> {
    let Some(req) = req else {
        return image.cloned();
    };
    let Some(img) = image else {
        return Some(req.clone());
    };
    let mut out = req.clone();
    if out.test.as_ref().is_none_or(|t| t.is_empty()) {
        out.test = img.test.clone();
    }
    fn inherit(mine: &mut Option<i64>, theirs: Option<i64>) {
        if mine.unwrap_or(0) == 0 {
            *mine = theirs;
        }
    }
    inherit(&mut out.interval, img.interval);
    inherit(&mut out.timeout, img.timeout);
    inherit(&mut out.start_period, img.start_period);
    inherit(&mut out.start_interval, img.start_interval);
    inherit(&mut out.retries, img.retries);
    Some(out)
}

/// Image env first, request env overriding by key; a PATH is always present.
pub fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |s: &String| s.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::new();
    for e in image.iter().chain(request) {
        let k = key(e);
        if let Some(slot) = out.iter_mut().find(|x| key(x) == k) {
            *slot = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    out
}

/// The command line: entrypoint + cmd.
pub fn command(c: &ContainerConfig) -> Vec<String> {
    let mut v = c.entrypoint.clone().unwrap_or_default();
    v.extend(c.cmd.clone().unwrap_or_default());
    v
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// Resolves `user[:group]` (names or numbers) inside the rootfs at `root` the
/// way dockerd does for a container's process: a uid with no passwd entry runs
/// with gid 0, and the supplementary groups start with the primary gid.
pub fn resolve_user(spec: &str, root: &Path) -> Result<ResolvedUser, UserError> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    resolve_user_in(spec, &passwd, &group)
}

pub fn resolve_user_in(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let found = entries
        .iter()
        .find(|f| f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user));
    let (uid, mut gid, home, name) = match (found, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        // dockerd leaves the gid at 0 here; images built for arbitrary uids
        // (OpenShift style) rely on it to reach group-0 writable paths.
        (None, Ok(n)) => (n, 0, "/".to_string(), String::new()),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_string())),
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = grp.filter(|g| !g.is_empty()) {
        gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| UserError::NoGroup(g.to_string()))?,
        };
    }
    // dockerd sets the primary gid as the first supplementary group too, so a
    // process never keeps groups it was not given (CVE-2023-25173).
    let mut additional_gids = vec![gid];
    if !name.is_empty() && grp.is_none() {
        for g in groups
            .iter()
            .filter(|f| f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse::<u32>().ok())
        {
            if !additional_gids.contains(&g) {
                additional_gids.push(g);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// The owner `COPY --chown=user[:group]` gives, as BuildKit reads it: a
/// numeric user without a group also takes its uid as gid, whatever passwd says.
pub fn chown_owner(spec: &str, root: &Path) -> Result<(u32, u32), UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    let uid_only = user.parse::<u32>().ok();
    let r = resolve_user(spec, root)?;
    let gid = match (uid_only, grp) {
        (Some(n), None) => n,
        _ => r.gid,
    };
    Ok((r.uid, gid))
}

/// `--group-add` entries (group names or numbers) as gids, names looked up in the
/// rootfs's `/etc/group` as dockerd does.
pub fn group_add(entries: &[String], root: &Path) -> Result<Vec<u32>, UserError> {
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    group_add_in(entries, &group)
}

pub fn group_add_in(entries: &[String], group: &str) -> Result<Vec<u32>, UserError> {
    entries
        .iter()
        .map(|e| {
            if let Ok(n) = e.parse::<u32>() {
                return Ok(n);
            }
            group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == e)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| UserError::NoGroup(e.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_add_takes_numbers_and_names() {
        let group = "root:x:0:root\nwheel:x:10:root\n";
        assert_eq!(
            group_add_in(&["1000".into(), "wheel".into()], group),
            Ok(vec![1000, 10])
        );
        assert_eq!(
            group_add_in(&["nosuch".into()], group),
            Err(UserError::NoGroup("nosuch".into()))
        );
    }

    fn image(entry: Option<&[&str]>, cmd: Option<&[&str]>) -> ConfigFile {
        ConfigFile {
            config: Some(bollard_stubs::models::ImageConfig {
                entrypoint: entry.map(|e| e.iter().map(|s| s.to_string()).collect()),
                cmd: cmd.map(|e| e.iter().map(|s| s.to_string()).collect()),
                env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
                working_dir: Some("/w".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn req(entry: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        ContainerConfig {
            entrypoint: entry.map(|e| e.iter().map(|s| s.to_string()).collect()),
            cmd: cmd.map(|e| e.iter().map(|s| s.to_string()).collect()),
            env: Some(vec!["A=2".into(), "B=3".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_rules() {
        let img = image(Some(&["/ep"]), Some(&["default"]));
        assert_eq!(
            command(&merge(&req(None, None), &img)),
            vec!["/ep", "default"]
        );
        assert_eq!(
            command(&merge(&req(None, Some(&["x"])), &img)),
            vec!["/ep", "x"]
        );
        // --entrypoint drops the image's Cmd.
        assert_eq!(command(&merge(&req(Some(&["sh"]), None), &img)), vec!["sh"]);
        assert_eq!(
            command(&merge(&req(Some(&[""]), Some(&["ls"])), &img)),
            vec!["ls"]
        );
        let m = merge(&req(None, None), &img);
        assert_eq!(m.env.unwrap(), vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(m.working_dir.as_deref(), Some("/w"));
    }

    #[test]
    fn users() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
        let group = "root:x:0:\nnogroup:x:65534:\nstaff:x:50:app\napp:x:1000:\n";
        let r = resolve_user_in("app", passwd, group).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone()),
            (1000, 1000, vec![1000, 50])
        );
        let r = resolve_user_in("nobody:staff", passwd, group).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (65534, 50, vec![50]));
        let r = resolve_user_in("4242:4343", passwd, group).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (4242, 4343, vec![4343]));
        // A uid passwd does not know runs in group 0, as with dockerd.
        let r = resolve_user_in("4242", passwd, group).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (4242, 0, vec![0]));
        assert!(resolve_user_in("ghost", passwd, group).is_err());
        assert_eq!(resolve_user_in("", passwd, group).unwrap().uid, 0);
    }
}
