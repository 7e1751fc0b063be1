//! The Builds page: the engine's BuildKit build history (Berth's
//! `/berth/builds` endpoints; the Docker API has none), each build with its
//! steps, their times, cached flags and output.

use super::Res;
use crate::build_record::Build;
use crate::engine;
use crate::rerun;

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Res<T> {
    serde_json::from_slice(body).map_err(|e| format!("the engine's build history: {e}"))
}

/// A ref as one path segment: refs are the client's, so anything else is
/// refused rather than sent.
fn path_of(id: &str) -> Res<String> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("{id:?} is not a build id"));
    }
    Ok(format!("/berth/builds/{id}"))
}

#[tauri::command]
pub async fn list_builds() -> Res<Vec<Build>> {
    parse(&engine::request("GET", "/berth/builds").await?)
}

#[tauri::command]
pub async fn build_detail(id: String) -> Res<Build> {
    let mut b: Build = parse(&engine::request("GET", &path_of(&id)?).await?)?;
    // `id`, checked by `path_of`, names buildx's file too.
    b.source = rerun::source(&rerun::docker_config_dir(), &id);
    Ok(b)
}

/// Runs build `id` again with the docker CLI, from the files buildx says it
/// was given, and waits for it to end.
#[tauri::command]
pub async fn rerun_build(id: String) -> Res<()> {
    let b = build_detail(id).await?;
    let source = b.source.as_ref().ok_or(
        "buildx did not record where this build's files came from on this machine \
         (it ran elsewhere, or with another client); run it again from the command line",
    )?;
    let args = rerun::args(source, &b.request, &b.tags)?;
    let host = engine::docker_host().map_err(|e| e.to_string())?;
    rerun::run(&args, &host).await
}

#[tauri::command]
pub async fn remove_build(id: String) -> Res<()> {
    engine::request("DELETE", &path_of(&id)?).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_record_reads_as_a_build() {
        let b: Build = parse(
            br#"{"id":"abc","name":"app:1","status":"completed","created":1000,"completed":2500,
                "request":{"dockerfile":"Dockerfile","buildArgs":["A"],"noCache":false},
                "image":"sha256:1","tags":["app:1"],"totalSteps":1,"cachedSteps":1,
                "steps":[{"name":"[1/1] FROM x","started":1000,"completed":1200,"cached":true,"log":""}]}"#,
        )
        .unwrap();
        assert_eq!(b.steps[0].name, "[1/1] FROM x");
        assert_eq!(b.request.build_args, ["A"]);
        assert!(path_of("abc-1_x").is_ok());
        assert!(path_of("../x").is_err() && path_of("").is_err());
    }
}
