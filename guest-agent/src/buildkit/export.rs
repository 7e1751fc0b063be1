//! Exporters: where a solved build's image goes. `moby` (the `docker` driver's
//! default: `docker build -t`, `--load`) and `image` put it in Berth's store under the
//! requested names; with `push=true` buildx pushes those names itself through the
//! Engine API afterwards. `local` and `tar` send the image's files back to the client
//! ([`super::filesend`]). The response carries the keys buildx and Compose read.

use std::collections::HashMap;
use std::sync::Arc;

use super::filesend;
use super::progress::Reporter;
use super::BuildKitError;
use crate::engine::Engine;
use crate::images::reference::ImageRef;
use crate::sessions::jobs::Built;

/// One exporter of a Solve request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exporter {
    pub kind: String,
    pub attrs: HashMap<String, String>,
}

/// The names an image exporter's `name` attribute lists (comma-separated).
pub fn names(attrs: &HashMap<String, String>) -> Vec<String> {
    attrs
        .get("name")
        .map(|n| {
            n.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Exports the built image; returns the Solve's exporter response. `session` is the
/// Solve's session, which file outputs are sent through.
pub async fn export(
    engine: &Arc<Engine>,
    session: &str,
    reporter: &mut Reporter<'_>,
    built: &Built,
    exporters: &[Exporter],
) -> Result<HashMap<String, String>, BuildKitError> {
    let mut response = HashMap::new();
    for (index, ex) in exporters.iter().enumerate() {
        match ex.kind.as_str() {
            kind @ ("local" | "tar") => {
                let (name, status) = if kind == "tar" {
                    ("exporting to client tarball", "sending tarball")
                } else {
                    ("exporting to client directory", "copying files")
                };
                let step = reporter.start(name);
                reporter.status(&step, status);
                let sent = send_files(engine, session, kind, index, &built.image).await;
                let err = sent.as_ref().err().map(ToString::to_string);
                reporter.complete(step, err.as_deref());
                sent?;
            }
            kind @ ("docker" | "oci") => {
                // buildx sends these only with a file (or stdout) to write: loading
                // into the store is the `moby` exporter.
                let step = reporter.start(&format!("exporting to {kind} image format"));
                reporter.status(&step, "exporting layers");
                reporter.status(&step, "sending tarball");
                let sent =
                    send_archive(engine, session, index, &built.image, &names(&ex.attrs)).await;
                let err = sent.as_ref().err().map(ToString::to_string);
                reporter.complete(step, err.as_deref());
                sent?;
                response.insert("containerimage.digest".into(), built.image.clone());
                response.insert("containerimage.config.digest".into(), built.image.clone());
            }
            "moby" | "image" => {
                let step = reporter.start("exporting to image");
                reporter.status(&step, "exporting layers");
                reporter.status(&step, &format!("writing image {}", built.image));
                let tagged = tag_all(engine, reporter, &step, built, &names(&ex.attrs));
                match &tagged {
                    Ok(names) => {
                        reporter.complete(step, None);
                        if !names.is_empty() {
                            response.insert("image.name".to_string(), names.join(","));
                        }
                    }
                    Err(e) => {
                        reporter.complete(step, Some(&e.to_string()));
                    }
                }
                let names = tagged?;
                // `push=true`: newer buildx leaves the push to the exporter when the
                // driver has the containerd store (0.13 pushes through the API).
                if matches!(ex.attrs.get("push").map(String::as_str), Some("true")) {
                    push_all(engine, session, reporter, &names).await?;
                }
                response.insert("containerimage.digest".into(), built.image.clone());
                response.insert("containerimage.config.digest".into(), built.image.clone());
            }
            other => {
                return Err(BuildKitError::Unsupported(format!(
                    "exporter {other:?} is not supported by Berth yet: use --load (the image store) or --push"
                )));
            }
        }
    }
    Ok(response)
}

/// A fresh scratch directory for an output on its way to the client.
fn out_scratch(engine: &Engine) -> Result<std::path::PathBuf, BuildKitError> {
    let scratch = engine
        .config
        .root
        .join("build-tmp")
        .join(format!("out-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&scratch).map_err(BuildKitError::io("creating a scratch directory"))?;
    Ok(scratch)
}

/// The image's files to the client's output `index`, as a tar or a directory.
async fn send_files(
    engine: &Arc<Engine>,
    session: &str,
    kind: &str,
    index: usize,
    image: &str,
) -> Result<(), BuildKitError> {
    let session = engine.buildkit.sessions.get(session).await?;
    let scratch = out_scratch(engine)?;
    let result = async {
        let tar = scratch.join("rootfs.tar");
        filesend::image_tar(engine, image, &tar).await?;
        if kind == "tar" {
            return filesend::send_tar(&session, index, &tar).await;
        }
        let dir = scratch.join("rootfs");
        let unpack_to = dir.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&unpack_to)?;
            let f = std::fs::File::open(&tar)?;
            crate::images::unpack::unpack_plain(std::io::BufReader::new(f), &unpack_to)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
        .await
        .map_err(|e| BuildKitError::Transfer(e.to_string()))?
        .map_err(BuildKitError::io("unpacking the image's files"))?;
        filesend::send_dir(&session, index, &dir).await
    }
    .await;
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(scratch)).await;
    result
}

/// The image as one archive (OCI layout and `docker save`'s manifest in one, which
/// `docker load`, skopeo and other OCI tools all read) to the client's output `index`.
async fn send_archive(
    engine: &Arc<Engine>,
    session: &str,
    index: usize,
    image: &str,
    names: &[String],
) -> Result<(), BuildKitError> {
    let session = engine.buildkit.sessions.get(session).await?;
    let scratch = out_scratch(engine)?;
    let tar = scratch.join("image.tar");
    let written = {
        let (engine, image, names, tar) = (
            engine.clone(),
            image.to_string(),
            names.to_vec(),
            tar.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let f = std::fs::File::create(&tar)
                .map_err(|e| BuildKitError::Transfer(format!("writing the archive: {e}")))?;
            let mut w = std::io::BufWriter::new(f);
            engine.images.save_as(&image, &names, &mut w)?;
            Ok::<_, BuildKitError>(())
        })
        .await
        .map_err(|e| BuildKitError::Transfer(e.to_string()))
        .and_then(|r| r)
    };
    let result = match written {
        Ok(()) => filesend::send_tar(&session, index, &tar).await,
        Err(e) => Err(e),
    };
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(scratch)).await;
    result
}

/// Pushes each name, with the session's credentials for its registry.
async fn push_all(
    engine: &Arc<Engine>,
    session: &str,
    reporter: &mut Reporter<'_>,
    names: &[String],
) -> Result<(), BuildKitError> {
    let session = engine.buildkit.sessions.get(session).await?;
    for n in names {
        let r = ImageRef::parse(n)?;
        let push = async {
            let creds = super::frontend::credentials(&session, r.registry()).await;
            engine.images.push_quietly(&r, &creds).await
        };
        reporter
            .step(&format!("pushing {n} with docker"), push)
            .await?;
    }
    Ok(())
}

fn tag_all(
    engine: &Arc<Engine>,
    reporter: &Reporter<'_>,
    step: &super::progress::Step,
    built: &Built,
    names: &[String],
) -> Result<Vec<String>, BuildKitError> {
    let mut done = Vec::new();
    for n in names {
        let r = ImageRef::parse(n)?;
        engine.images.tag(&built.image, &r.full_name(), r.tag())?;
        let full = format!("{}:{}", r.full_name(), r.tag().unwrap_or("latest"));
        reporter.status(step, &format!("naming to {full}"));
        done.push(full);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_comma_separated() {
        let attrs = HashMap::from([("name".to_string(), "a:1, b ,".to_string())]);
        assert_eq!(names(&attrs), ["a:1", "b"]);
        assert!(names(&HashMap::new()).is_empty());
    }
}
