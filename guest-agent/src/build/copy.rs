//! COPY and ADD: sources from the build context, from another stage or image
//! (`--from`, extracted into a scratch directory first) or, for ADD, from a URL;
//! Docker's per-segment glob rules for sources; `--chown`; ADD's unpacking of local
//! tar archives; the cache key over the sources' contents; and the commit of the
//! copied files as a layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::dockerfile::{self, Instruction};
use super::exec::{commit, create_container};
use super::sources::{copy_tree, extract_from_image, origin, NamedContext, ScratchDir};
use super::{cache, config_json, hit, short, BuildError, BuildRequest, Output, State};
use crate::containers::{ContainerError, ContainerService};
use crate::images::ImageService;

/// One COPY or ADD instruction, from its sources to a committed layer (or a cache hit).
pub(super) async fn copy_step(
    images: &Arc<ImageService>,
    containers: &Arc<ContainerService>,
    st: &mut State,
    step: &Instruction,
    req: &BuildRequest,
    stages: &[(Option<String>, String)],
    out: &mpsc::Sender<Output>,
) -> Result<(), BuildError> {
    let t0 = std::time::Instant::now();
    let rest = dockerfile::expand(&step.rest, &st.vars);
    let mut parts: Vec<String> = match dockerfile::json_form(&rest) {
        Some(v) => v,
        None => rest.split_whitespace().map(str::to_string).collect(),
    };
    let from = parts
        .iter()
        .find_map(|p| p.strip_prefix("--from="))
        .map(str::to_string);
    let chown = parts
        .iter()
        .find_map(|p| p.strip_prefix("--chown="))
        .map(str::to_string);
    let add = step.keyword == "ADD";
    parts.retain(|p| !p.starts_with("--"));
    if parts.len() < 2 {
        return Err(BuildError::Invalid(format!(
            "line {}: {} requires at least two arguments",
            step.line, step.keyword
        )));
    }
    let dest = parts.pop().unwrap_or_default();
    let workdir = st.config.working_dir.clone().unwrap_or_else(|| "/".into());
    let dest_abs = if dest.starts_with('/') {
        dest.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest)
    };
    // COPY --from: the files come out of another stage's (or image's) filesystem into a
    // scratch directory, which then plays the build context's part; a named context's
    // directory plays it as it is.
    let _from_dir;
    let origin = match &from {
        None => None,
        Some(f) => Some(origin(images, req, stages, f, step.line)?),
    };
    let context: &Path = match &origin {
        None => &req.context,
        Some(NamedContext::Dir(dir)) => dir,
        Some(NamedContext::Image(image)) => {
            let dir = req
                .context
                .with_extension(format!("from-{:08x}", rand::random::<u32>()));
            extract_from_image(images, containers, image, &parts, &dir).await?;
            _from_dir = ScratchDir(dir);
            &_from_dir.0
        }
    };
    let mut sources = Vec::new();
    // ADD of a URL: fetched into a scratch dir, named after the URL's last segment.
    let _downloads;
    if add
        && parts
            .iter()
            .any(|p| p.starts_with("http://") || p.starts_with("https://"))
    {
        let dir = req
            .context
            .with_extension(format!("url-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            BuildError::Invalid(format!("line {}: preparing the download: {e}", step.line))
        })?;
        _downloads = ScratchDir(dir.clone());
        for url in parts.iter().filter(|p| p.starts_with("http")) {
            sources.push(
                fetch(url, &dir).await.map_err(|e| {
                    BuildError::Invalid(format!("line {}: ADD {url}: {e}", step.line))
                })?,
            );
        }
        parts.retain(|p| !p.starts_with("http://") && !p.starts_with("https://"));
    }
    for s in &parts {
        if s.contains(['*', '?', '[']) {
            let matched = glob(context, s);
            if matched.is_empty() {
                return Err(BuildError::Invalid(format!(
                    "COPY failed: no source files were specified (no match for {s})"
                )));
            }
            sources.extend(matched);
            continue;
        }
        let p = crate::containers::archive::resolve(context, s, true)
            .map_err(|e| BuildError::Invalid(format!("line {}: {e}", step.line)))?;
        if !p.exists() {
            return Err(BuildError::Invalid(format!(
                "COPY failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
            )));
        }
        sources.push(p);
    }
    let inputs = cache::hash_sources(&sources).map_err(|e| {
        BuildError::Invalid(format!(
            "line {}: reading the build context: {e}",
            step.line
        ))
    })?;
    let key = req.key(&[
        &st.image,
        &step.keyword,
        &rest,
        &config_json(&st.config),
        &inputs,
    ]);
    if hit(images, req, &key, st, out).await {
        return Ok(());
    }
    let sourced = t0.elapsed();
    let cid = create_container(images, containers, st, None, None)?;
    let created = t0.elapsed();
    let many = sources.len() > 1 || dest.ends_with('/');
    let copied = containers
        .with_rootfs(&cid, move |root| {
            let target = crate::containers::archive::resolve(root, &dest_abs, true)?;
            let owner = match &chown {
                Some(spec) => {
                    let owner =
                        crate::containers::config::chown_owner(spec, root).map_err(|e| {
                            ContainerError::InvalidArgument(format!("--chown={spec}: {e}"))
                        })?;
                    Some(owner)
                }
                None => None,
            };
            for src in &sources {
                // ADD unpacks a local tar archive (plain or gzip) into the destination.
                if add && src.is_file() && is_tar(src) {
                    std::fs::create_dir_all(&target).map_err(|e| ContainerError::Io {
                        context: "creating the ADD destination".into(),
                        source: e,
                    })?;
                    let f = std::fs::File::open(src).map_err(|e| ContainerError::Io {
                        context: format!("reading {}", src.display()),
                        source: e,
                    })?;
                    let mut r = std::io::BufReader::new(f);
                    let gz = {
                        use std::io::BufRead;
                        r.fill_buf()
                            .map(|b| b.starts_with(&[0x1f, 0x8b]))
                            .unwrap_or(false)
                    };
                    let unpacked = if gz {
                        crate::images::unpack::unpack_plain(
                            flate2::read::GzDecoder::new(r),
                            &target,
                        )
                    } else {
                        crate::images::unpack::unpack_plain(r, &target)
                    };
                    unpacked.map_err(|e| ContainerError::InvalidArgument(format!("ADD: {e}")))?;
                    continue;
                }
                let into_dir = many || target.is_dir();
                let to = if src.is_dir() {
                    target.clone()
                } else if into_dir {
                    target.join(src.file_name().unwrap_or_default())
                } else {
                    target.clone()
                };
                copy_tree(src, &to).map_err(|e| ContainerError::Io {
                    context: format!("copying {}", src.display()),
                    source: e,
                })?;
                if let Some((uid, gid)) = owner {
                    chown_tree(&to, uid, gid).map_err(|e| ContainerError::Io {
                        context: "applying --chown".into(),
                        source: e,
                    })?;
                }
            }
            Ok(())
        })
        .await;
    if let Err(e) = copied {
        let _ = containers.remove(&cid, true, true).await;
        return Err(e.into());
    }
    let copied = t0.elapsed();
    let created_by = req.style().copy(step);
    let committed = commit(images, containers, &cid, st, req.style(), &created_by).await;
    let ms = crate::clock::ms;
    tracing::debug!(
        sourced = ms(sourced),
        created = ms(created),
        copied = ms(copied),
        committed = ms(t0.elapsed()),
        "copy step phases"
    );
    req.removals.remove(containers, cid);
    st.image = committed?;
    st.dirty = false;
    req.cache.put(&key, &st.image);
    let _ = out
        .send(Output::Stream(format!(" ---> {}\n", short(&st.image))))
        .await;
    Ok(())
}

/// Whether a file is a tar archive ADD unpacks: gzip-compressed, or a plain tar (the
/// `ustar` magic at offset 257).
fn is_tar(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 263];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n.min(2)] == [0x1f, 0x8b] || (n >= 262 && &head[257..262] == b"ustar")
}

/// `--chown`: the copied tree, links themselves included.
fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Downloads `url` into `dir`; the file is named after the URL's last path segment.
async fn fetch(url: &str, dir: &Path) -> Result<PathBuf, String> {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty() && *n != ".." && *n != ".")
        .unwrap_or("download")
        .to_string();
    let resp = reqwest::get(url).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("got HTTP status code >= 400: {}", resp.status()));
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let path = dir.join(name);
    std::fs::write(&path, &bytes).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Paths under `root` matching `pattern` segment by segment, with Go's
/// `filepath.Match` rules for each (`*`, `?`, `[…]`), as Docker matches COPY sources.
fn glob(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for seg in pattern.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let mut next = Vec::new();
        for dir in &current {
            if !seg.contains(['*', '?', '[']) {
                let p = dir.join(seg);
                if std::fs::symlink_metadata(&p).is_ok() {
                    next.push(p);
                }
                continue;
            }
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for n in names {
                if segment_matches(seg, &n.to_string_lossy()) {
                    next.push(dir.join(n));
                }
            }
        }
        current = next;
    }
    current.retain(|p| p != root);
    current
}

/// One element of a COPY source segment pattern.
enum Tok {
    Star,
    Any,
    Lit(char),
    /// `[…]`: negated, then single chars and inclusive ranges.
    Class(bool, Vec<(char, char)>),
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Star => false,
            Tok::Any => true,
            Tok::Lit(l) => *l == c,
            Tok::Class(negate, ranges) => {
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
            }
        }
    }
}

/// `None` for a pattern Go would reject as malformed (an unclosed `[`): it matches nothing.
fn tokens(pattern: &str) -> Option<Vec<Tok>> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '[' => {
                let end = i + p[i..].iter().position(|&c| c == ']')?;
                let mut class = &p[i + 1..end];
                let negate = matches!(class.first(), Some('^') | Some('!'));
                if negate {
                    class = &class[1..];
                }
                let mut ranges = Vec::new();
                let mut j = 0;
                while j < class.len() {
                    if j + 2 < class.len() && class[j + 1] == '-' {
                        ranges.push((class[j], class[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((class[j], class[j]));
                        j += 1;
                    }
                }
                out.push(Tok::Class(negate, ranges));
                i = end;
            }
            c => out.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Some(out)
}

/// Matches one path segment. Backtracks only to the last `*` seen, so the work is at
/// most pattern × name steps: a Dockerfile's `COPY *a*a*a*a*b` against long names
/// cannot stall the build (a recursive matcher is exponential in the number of `*`).
fn segment_matches(pattern: &str, name: &str) -> bool {
    let Some(p) = tokens(pattern) else {
        return false;
    };
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` is in the pattern and how much of the name it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(t) if t.matches(n[ni]) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| matches!(t, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(segment_matches("*.txt", "a.txt"));
        assert!(!segment_matches("*.txt", "a.md"));
        assert!(segment_matches("f?[0-9]", "fa7"));
        assert!(!segment_matches("f[!a]", "fa"));
        assert!(segment_matches("f[^a]", "fb"));
        assert!(segment_matches("*", ""));
        assert!(segment_matches("a*b*c", "aXbYbZc"));
        assert!(!segment_matches("a*b*c", "aXbYbZ"));
        assert!(segment_matches("*.tar.*", "x.tar.gz"));
        assert!(!segment_matches("[a", "a"));
        // Many stars against a long name that almost matches: instant, not exponential.
        let name = "a".repeat(255);
        assert!(!segment_matches(&format!("{}b", "*a".repeat(30)), &name));
        assert!(segment_matches(&format!("{}a", "*a".repeat(30)), &name));
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/x")).unwrap();
        for f in ["src/a.rs", "src/b.rs", "src/c.md", "src/x/d.rs"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let got: Vec<String> = glob(d.path(), "src/*.rs")
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(got, vec!["src/a.rs", "src/b.rs"]);
    }
}
