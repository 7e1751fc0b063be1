//! Running a build again as the user ran it. The engine's record has what the
//! build asked for (target, arguments, labels, tags, `--no-cache`); the
//! client's files never reach the engine's history. buildx keeps those
//! itself: for each build it starts, the directory it sent and the
//! Dockerfile's path, under `$DOCKER_CONFIG/buildx/refs/<builder>/<node>/<ref>`
//! (what `docker buildx history` reads). So the docker CLI runs the build
//! again, on today's files, against the engine the app uses, and the new
//! build is listed like any other.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::build_record::{BuildRequest, BuildSource};

/// buildx's record of one build (its Go field names).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LocalState {
    #[serde(default)]
    local_path: String,
    #[serde(default)]
    dockerfile_path: String,
}

/// The docker CLI's config directory: `DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    let config = berth::creds::docker_config::config_path();
    config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// buildx's record of build `id`, whichever builder and node ran it. `id` is
/// one path segment (the caller checked it).
pub fn source(config_dir: &Path, id: &str) -> Option<BuildSource> {
    let refs = config_dir.join("buildx").join("refs");
    for builder in std::fs::read_dir(refs).ok()?.flatten() {
        for node in std::fs::read_dir(builder.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = std::fs::read(node.path().join(id)) else {
                continue;
            };
            let state: LocalState = serde_json::from_slice(&text).ok()?;
            if state.local_path.is_empty() {
                return None;
            }
            // Without `-f`, buildx may leave the path out: the context's Dockerfile.
            let dockerfile = if state.dockerfile_path.is_empty() {
                Path::new(&state.local_path)
                    .join("Dockerfile")
                    .to_string_lossy()
                    .into_owned()
            } else {
                state.dockerfile_path
            };
            return Some(BuildSource {
                context: state.local_path,
                dockerfile,
            });
        }
    }
    None
}

/// The `docker` arguments that run the build again, or why it cannot be.
pub fn args(
    source: &BuildSource,
    request: &BuildRequest,
    tags: &[String],
) -> Result<Vec<String>, String> {
    if source.context == "-" || source.dockerfile == "-" {
        return Err("this build read its Dockerfile or context from standard input; run it again from the command line".into());
    }
    if !Path::new(&source.context).is_dir() {
        return Err(format!(
            "the build's context {} is no longer a directory",
            source.context
        ));
    }
    if let Some(missing) = request
        .build_args
        .iter()
        .find(|n| !request.build_arg_values.contains_key(*n))
    {
        return Err(format!(
            "the engine kept only the names of this build's arguments ({missing}, …); run it again from the command line"
        ));
    }
    // The default builder is the engine `DOCKER_HOST` names, whichever
    // builder the user has selected for their own builds.
    let mut a: Vec<String> = [
        "buildx",
        "build",
        "--builder",
        "default",
        "--progress",
        "plain",
    ]
    .map(String::from)
    .to_vec();
    a.extend(["--file".into(), source.dockerfile.clone()]);
    for t in tags {
        a.extend(["--tag".into(), t.clone()]);
    }
    if let Some(t) = &request.target {
        a.extend(["--target".into(), t.clone()]);
    }
    if request.no_cache {
        a.push("--no-cache".into());
    }
    for (k, v) in &request.build_arg_values {
        a.extend(["--build-arg".into(), format!("{k}={v}")]);
    }
    for (k, v) in &request.labels {
        a.extend(["--label".into(), format!("{k}={v}")]);
    }
    a.push(source.context.clone());
    Ok(a)
}

/// Runs `docker` with `args` against `docker_host` until the build ends: its
/// last lines of output when it fails.
pub async fn run(args: &[String], docker_host: &str) -> Result<(), String> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", docker_host)
        // The CLI refuses both at once; `DOCKER_HOST` is the engine the app shows.
        .env_remove("DOCKER_CONTEXT")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "running a build again needs the docker CLI with buildx, and `docker` is not on PATH".to_string()
            }
            _ => format!("starting docker: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    Err(lines[lines.len().saturating_sub(8)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> BuildRequest {
        BuildRequest {
            dockerfile: "Dockerfile.dev".into(),
            target: Some("app".into()),
            build_args: vec!["A".into()],
            build_arg_values: [("A".to_string(), "1 2".to_string())].into(),
            labels: [("team".to_string(), "x".to_string())].into(),
            no_cache: true,
        }
    }

    #[test]
    fn buildx_records_are_found_under_any_builder_and_node() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("buildx/refs/default/default");
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(
            node.join("abc"),
            r#"{"Target":"default","LocalPath":"/src/app","DockerfilePath":"/src/app/Dockerfile.dev"}"#,
        )
        .unwrap();
        std::fs::write(node.join("nodf"), r#"{"LocalPath":"/src/b"}"#).unwrap();
        let s = source(dir.path(), "abc").unwrap();
        assert_eq!(
            (s.context.as_str(), s.dockerfile.as_str()),
            ("/src/app", "/src/app/Dockerfile.dev")
        );
        assert_eq!(
            source(dir.path(), "nodf").unwrap().dockerfile,
            "/src/b/Dockerfile"
        );
        assert!(source(dir.path(), "other").is_none());
        assert!(source(&dir.path().join("none"), "abc").is_none());
    }

    #[test]
    fn the_command_repeats_what_the_build_asked_for() {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path().to_string_lossy().into_owned();
        let s = BuildSource {
            context: c.clone(),
            dockerfile: format!("{c}/Dockerfile.dev"),
        };
        let a = args(&s, &request(), &["app:1".into(), "app:latest".into()]).unwrap();
        let want: Vec<String> = [
            "buildx",
            "build",
            "--builder",
            "default",
            "--progress",
            "plain",
            "--file",
            &format!("{c}/Dockerfile.dev"),
            "--tag",
            "app:1",
            "--tag",
            "app:latest",
            "--target",
            "app",
            "--no-cache",
            "--build-arg",
            "A=1 2",
            "--label",
            "team=x",
            &c,
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(a, want);
    }

    #[test]
    fn what_cannot_be_repeated_says_why() {
        let ctx = tempfile::tempdir().unwrap();
        let s = BuildSource {
            context: ctx.path().to_string_lossy().into_owned(),
            dockerfile: "x".into(),
        };
        let mut names_only = request();
        names_only.build_arg_values.clear();
        assert!(args(&s, &names_only, &[])
            .unwrap_err()
            .contains("only the names"));
        let gone = BuildSource {
            context: "/nonexistent/berth-ctx".into(),
            ..s.clone()
        };
        assert!(args(&gone, &request(), &[])
            .unwrap_err()
            .contains("no longer"));
        let stdin = BuildSource {
            dockerfile: "-".into(),
            ..s
        };
        assert!(args(&stdin, &request(), &[])
            .unwrap_err()
            .contains("standard input"));
    }
}
