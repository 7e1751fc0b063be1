//! `berth-bollard-client SOCKET TAG CONTEXT_DIR`: builds CONTEXT_DIR with bollard's
//! BuildKit client (`build_image` with `BuilderVersion::BuilderBuildKit` and a
//! session) on the engine at SOCKET, and prints what came back as one JSON object:
//! the vertex names and log output of BuildKit's status messages, the image ids and
//! any error. Exits non-zero when the build failed.

use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, tag, context] = args.as_slice() else {
        anyhow::bail!("usage: berth-bollard-client SOCKET TAG CONTEXT_DIR");
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", context)?;
    let body = tar.into_inner()?;

    let docker = bollard::Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION)?;
    let options = BuildImageOptionsBuilder::default()
        .t(tag)
        .dockerfile("Dockerfile")
        .version(BuilderVersion::BuilderBuildKit)
        .session(&format!("bollard-{}", std::process::id()))
        .build();
    let mut stream = docker.build_image(
        options,
        None,
        Some(http_body_util::Either::Left(http_body_util::Full::new(
            body.into(),
        ))),
    );
    let (mut vertexes, mut logs, mut ids, mut error) = (Vec::new(), Vec::new(), Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(BuildInfo {
                aux: Some(BuildInfoAux::BuildKit(status)),
                ..
            }) => {
                for v in status.vertexes {
                    if !vertexes.contains(&v.name) {
                        vertexes.push(v.name);
                    }
                }
                logs.extend(status.logs.into_iter().flat_map(|l| l.msg));
            }
            Ok(BuildInfo {
                aux: Some(BuildInfoAux::Default(id)),
                ..
            }) => ids.extend(id.id),
            Ok(_) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let out = serde_json::json!({
        "vertexes": vertexes,
        "logs": String::from_utf8_lossy(&logs),
        "ids": ids,
        "error": error,
    });
    println!("{out}");
    if error.is_some() {
        std::process::exit(1);
    }
    Ok(())
}
