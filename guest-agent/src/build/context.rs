//! The classic builder's context as dockerd leaves it: clients apply `.dockerignore`
//! before sending, but always send the Dockerfile and `.dockerignore` themselves;
//! when `.dockerignore` names them, dockerd reads them and then removes them from the
//! context, so `COPY . …` does not copy them.

use std::path::{Path, PathBuf};

/// `.dockerignore` lines as fsutil's exclude patterns.
pub fn ignore_patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (neg, p) = match l.strip_prefix('!') {
                Some(p) => ("!", p.trim()),
                None => ("", l),
            };
            let p = p.trim_start_matches('/');
            format!("{neg}{}", if p.is_empty() { "." } else { p })
        })
        .collect()
}

/// Whether `.dockerignore`'s patterns (as `ignore_patterns` gives them) exclude the
/// context path `path`: a pattern matches the path or a directory above it, and the
/// last matching line wins (`!` lines re-include).
pub fn ignored(patterns: &[String], path: &str) -> bool {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    let mut out = false;
    for p in patterns {
        let (include, pat) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        let pat = pat.trim_end_matches('/');
        let hit = std::iter::successors(Some(path), |p| p.rsplit_once('/').map(|(d, _)| d))
            .any(|prefix| crate::images::reference::pattern_matches(pat, prefix));
        if hit {
            out = !include;
        }
    }
    out
}

/// Removes `.dockerignore` and the Dockerfile from the unpacked context `dir` when
/// `.dockerignore` excludes them; the Dockerfile is moved to `aside` first, and the
/// path the build should read it from is returned (relative to `dir`, or `aside`).
pub fn drop_ignored(dir: &Path, dockerfile: &str, aside: &Path) -> std::io::Result<String> {
    let Ok(text) = std::fs::read_to_string(dir.join(".dockerignore")) else {
        return Ok(dockerfile.to_string());
    };
    let patterns = ignore_patterns(&text);
    let mut dockerfile = dockerfile.to_string();
    let df = dir.join(&dockerfile);
    if ignored(&patterns, &dockerfile) && df.is_file() && df.starts_with(dir) {
        std::fs::rename(&df, aside)?;
        dockerfile = aside.display().to_string();
    }
    if ignored(&patterns, ".dockerignore") {
        std::fs::remove_file(dir.join(".dockerignore"))?;
    }
    Ok(dockerfile)
}

/// Where `drop_ignored` puts a context's Dockerfile aside (removed with the context).
pub fn aside(dir: &Path) -> PathBuf {
    dir.with_extension("dockerfile")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(text: &str) -> Vec<String> {
        ignore_patterns(text)
    }

    #[test]
    fn last_matching_line_wins_and_directories_cover_their_files() {
        let p = pats("ignored\nDockerfile\n.dockerignore\n!ignored/keep\n#*\n");
        assert!(ignored(&p, "Dockerfile"));
        assert!(ignored(&p, ".dockerignore"));
        assert!(ignored(&p, "ignored/subdir/file"));
        assert!(!ignored(&p, "ignored/keep"));
        assert!(!ignored(&p, "#file.txt"));
        assert!(!ignored(&p, "not-ignored"));
    }

    #[test]
    fn ignored_build_files_leave_the_context() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "Dockerfile\n.dockerignore\n").unwrap();
        let side = aside(&ctx);
        let df = drop_ignored(&ctx, "Dockerfile", &side).unwrap();
        assert_eq!(std::fs::read_to_string(&df).unwrap(), "FROM scratch\n");
        assert!(!ctx.join("Dockerfile").exists());
        assert!(!ctx.join(".dockerignore").exists());
    }
}
