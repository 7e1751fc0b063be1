//! Image references as Docker spells them: parsing (via `oci-spec`'s distribution grammar),
//! normalisation (`busybox` → `docker.io/library/busybox:latest`) and the "familiar"
//! form the CLI prints (`busybox:latest`, `127.0.0.1:5000/app:1`).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use oci_client::Reference;

use super::ImageError;

const HUB: &str = "docker.io";
const OFFICIAL: &str = "library/";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses `s` as a reference; a missing tag becomes `latest` unless a digest is given.
    ///
    /// The grammar is distribution's `reference` package. We do not call `oci-spec`'s
    /// parser: it compiles a large regex whose automata stay resident (~15 MB), three
    /// times the idle engine's whole footprint.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let invalid = || ImageError::InvalidReference("invalid reference format".into());
        if s.is_empty() || s.len() > 4096 {
            return Err(invalid());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        // The last ':' after the last '/' starts a tag.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid());
            }
        }
        if let Some(d) = digest {
            let ok = match d.split_once(':') {
                Some(("sha256", h)) => h.len() == 64,
                Some(("sha384", h)) => h.len() == 96,
                Some(("sha512", h)) => h.len() == 128,
                _ => false,
            } && d.split_once(':').is_some_and(|(_, h)| {
                h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
            if !ok {
                return Err(ImageError::InvalidReference(
                    "invalid reference format: invalid checksum digest format".into(),
                ));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_domain(first) {
                    return Err(invalid());
                }
                (first.to_string(), remainder.to_string())
            }
            _ => (HUB.to_string(), name.to_string()),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageError::InvalidReference(format!(
                "invalid reference format: repository name ({name}) must be lowercase"
            )));
        }
        if path.is_empty() || path.len() > 255 || !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        let registry = if registry == "index.docker.io" {
            HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == HUB && !path.contains('/') {
            format!("{OFFICIAL}{path}")
        } else {
            path
        };
        let inner = match digest {
            // Docker drops the tag when both are given: the digest decides.
            Some(d) => Reference::with_digest(registry, repository, d.to_string()),
            None => Reference::with_tag(registry, repository, tag.unwrap_or("latest").to_string()),
        };
        Ok(ImageRef { inner })
    }

    /// Builds `repo:tag` from the two query parameters of `POST /images/{name}/tag`.
    pub fn from_repo_tag(repo: &str, tag: Option<&str>) -> Result<Self, ImageError> {
        if repo.contains('@') {
            return Err(ImageError::InvalidReference(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let tag = tag.filter(|t| !t.is_empty()).unwrap_or("latest");
        if !valid_tag(tag) {
            return Err(ImageError::InvalidReference(format!(
                "invalid tag format: {tag}"
            )));
        }
        let r = Self::parse(&format!("{repo}:{tag}"))?;
        Ok(r)
    }

    /// The reference as sent to its registry. In Berth's VM a registry on the
    /// host's loopback (`localhost:5000`, `127.0.0.1:5000`) is reached through
    /// the address QEMU gives the host (see [`route_loopback_via`]), so users
    /// type the same name as with a native engine; the image keeps that name.
    pub fn wire(&self) -> Cow<'_, Reference> {
        self.routed(LOOPBACK_VIA.get().map(String::as_str))
    }

    fn routed(&self, loopback_via: Option<&str>) -> Cow<'_, Reference> {
        match loopback_via {
            Some(host) if is_loopback_host(self.registry()) => {
                let port = port_of(self.registry());
                let registry = match port {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                let (repo, tag, digest) = (
                    self.repository().to_string(),
                    self.tag().map(str::to_string),
                    self.digest().map(str::to_string),
                );
                Cow::Owned(match (tag, digest) {
                    (_, Some(d)) => Reference::with_digest(registry, repo, d),
                    (Some(t), None) => Reference::with_tag(registry, repo, t),
                    (None, None) => Reference::with_tag(registry, repo, "latest".into()),
                })
            }
            _ => Cow::Borrowed(&self.inner),
        }
    }
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The repository as the CLI shows it: `busybox`, `me/app`, `127.0.0.1:5000/app`.
    pub fn familiar_name(&self) -> String {
        familiar_name(self.registry(), self.repository())
    }

    /// The fully qualified name without tag or digest: `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The same repository pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef {
            inner: Reference::with_digest(
                self.registry().to_string(),
                self.repository().to_string(),
                digest.to_string(),
            ),
        }
    }

    /// Tag or digest as `docker pull` shows it on its first line.
    pub fn tag_or_digest(&self) -> &str {
        self.tag().or(self.digest()).unwrap_or("latest")
    }

    /// True for references that live on the engine itself (127.0.0.0/8, localhost, ::1).
    pub fn is_loopback_registry(&self) -> bool {
        is_loopback_host(self.registry())
    }
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A host name or `[ipv6]`, with an optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (
                    None,
                    tail.strip_prefix(':')
                        .map(Some)
                        .unwrap_or(if tail.is_empty() { None } else { Some("x") }),
                )
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    let b = label.as_bytes();
                    !b.is_empty()
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                })
        }
    }
}

/// The familiar (short) spelling of a repository. As distribution's
/// `familiarizeName`, `library/` goes only when one component remains after it:
/// `docker.io/library/a/b` is not `a/b` (that is `docker.io/a/b`).
pub fn familiar_name(registry: &str, repository: &str) -> String {
    if registry == HUB {
        match repository.strip_prefix(OFFICIAL) {
            Some(official) if !official.contains('/') => official.to_string(),
            _ => repository.to_string(),
        }
    } else {
        format!("{registry}/{repository}")
    }
}

/// Whether `host[:port]` names this machine.
/// Where loopback registries are reached instead; set once, in Berth's VM.
static LOOPBACK_VIA: OnceLock<String> = OnceLock::new();

/// Sends registry traffic for `localhost`/`127.0.0.0/8`/`::1` names to `host`
/// (the VM's way to the host's loopback). Process-wide: the engine sets it
/// once at start; a second call is ignored.
pub fn route_loopback_via(host: &str) {
    let _ = LOOPBACK_VIA.set(host.to_string());
}

/// The port of `host:port` or `[v6]:port`.
fn port_of(registry: &str) -> Option<&str> {
    let port = match registry.strip_prefix('[') {
        Some(rest) => rest.split_once("]:")?.1,
        None => registry.split_once(':')?.1,
    };
    (!port.is_empty()).then_some(port)
}

pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    if host == "localhost" {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

impl fmt::Display for ImageRef {
    /// The familiar form: `busybox:latest`, `app@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.familiar_name())?;
        if let Some(t) = self.tag() {
            write!(f, ":{t}")?;
        }
        if let Some(d) = self.digest() {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Matches `name` against a Docker `reference` filter pattern (path.Match semantics:
/// `*` and `?` never cross a `/`).
///
/// Since nothing but a `/` matches a `/`, the slashes pair up and each segment is a
/// glob of its own, matched greedily with one backtrack point: time is
/// O(pattern × name), where trying every split per `*` was exponential in the stars.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    fn segment(p: &[u8], n: &[u8]) -> bool {
        let (mut pi, mut ni) = (0, 0);
        // After the latest `*`: where the pattern resumes and how much it swallowed.
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            match p.get(pi) {
                Some(b'*') => {
                    pi += 1;
                    star = Some((pi, ni));
                }
                Some(&c) if c == b'?' || c == n[ni] => {
                    pi += 1;
                    ni += 1;
                }
                _ => match star {
                    Some((resume, taken)) => {
                        pi = resume;
                        ni = taken + 1;
                        star = Some((resume, taken + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
    let mut ps = pattern.as_bytes().split(|&b| b == b'/');
    let mut ns = name.as_bytes().split(|&b| b == b'/');
    loop {
        match (ps.next(), ns.next()) {
            (None, None) => return true,
            (Some(p), Some(n)) if segment(p, n) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_routed_and_keep_their_name() {
        let via = Some("10.0.2.2");
        let r = ImageRef::parse("localhost:5000/app:1").unwrap();
        assert_eq!(r.routed(via).whole(), "10.0.2.2:5000/app:1");
        assert_eq!(r.to_string(), "localhost:5000/app:1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("127.0.0.1:5055/x/y@{d}")).unwrap();
        assert_eq!(r.routed(via).whole(), format!("10.0.2.2:5055/x/y@{d}"));
        let r = ImageRef::parse("[::1]:6000/app").unwrap();
        assert_eq!(r.routed(via).whole(), "10.0.2.2:6000/app:latest");
        // Elsewhere, and without a route (a native engine), nothing changes.
        let r = ImageRef::parse("reg.example:5000/app").unwrap();
        assert_eq!(r.routed(via).whole(), "reg.example:5000/app:latest");
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(r.routed(None).whole(), "localhost:5000/app:latest");
    }

    #[test]
    fn normalises_like_docker() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.to_string(), "busybox:latest");
        let r = ImageRef::parse("127.0.0.1:5000/test/app:v1").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/test/app:v1");
        assert!(r.is_loopback_registry());
        assert!(!ImageRef::parse("example.com/a")
            .unwrap()
            .is_loopback_registry());
    }

    /// Found by the `image_reference` fuzz target: the familiar form of a nested
    /// official path dropped `library/` and so named another repository.
    #[test]
    fn nested_library_paths_keep_their_prefix() {
        let r = ImageRef::parse("docker.io/library/a/b:1").unwrap();
        assert_eq!(r.to_string(), "library/a/b:1");
        assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
        assert_eq!(
            ImageRef::parse("library/busybox").unwrap().to_string(),
            "busybox:latest"
        );
    }

    #[test]
    fn uppercase_is_refused_with_dockers_message() {
        let e = ImageRef::parse("UPPER/case").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid reference format: repository name (UPPER/case) must be lowercase"
        );
        assert!(ImageRef::parse("lower:UpperTagOk").is_ok());
        assert!(ImageRef::parse("bad name").is_err());
        assert!(ImageRef::parse("a//b").is_err());
        assert!(ImageRef::parse("a/-b").is_err());
        assert!(ImageRef::parse("a@sha256:abc").is_err());
        assert!(ImageRef::parse("[::1]:5000/app:v1")
            .unwrap()
            .is_loopback_registry());
        assert_eq!(
            ImageRef::parse("index.docker.io/x").unwrap().to_string(),
            "x:latest"
        );
        assert_eq!(
            ImageRef::parse("my_app__x-y/q.z").unwrap().repository(),
            "my_app__x-y/q.z"
        );
    }

    #[test]
    fn tag_validation() {
        assert!(ImageRef::from_repo_tag("app", Some("v1.0")).is_ok());
        assert!(ImageRef::from_repo_tag("app", Some("-bad")).is_err());
        assert_eq!(
            ImageRef::from_repo_tag("app", None).unwrap().to_string(),
            "app:latest"
        );
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("busy*", "busybox"));
        assert!(pattern_matches("*/app", "127.0.0.1:5000/app"));
        assert!(!pattern_matches("*", "a/b"));
        assert!(pattern_matches("a?c:*", "abc:latest"));
        assert!(pattern_matches("*b*", "abc"));
        assert!(pattern_matches("a/*/c*", "a/b/cd"));
        assert!(!pattern_matches("a/*", "a/b/c"));
        assert!(!pattern_matches("a?", "a/"));
        assert!(!pattern_matches("ab", "abc"));
        assert!(pattern_matches("", ""));
        assert!(pattern_matches("**", ""));
    }

    /// Found by the `image_reference` fuzz target: every `*` tried every split, so
    /// 30 stars against a name that fails late took minutes (`docker images
    /// --filter reference=…` held an engine thread that long).
    #[test]
    fn many_stars_match_in_polynomial_time() {
        let pattern = format!("b{}us", "*".repeat(30));
        let name = format!("b{}", "u".repeat(4000));
        let t = std::time::Instant::now();
        assert!(!pattern_matches(&pattern, &name));
        assert!(pattern_matches(&pattern, &format!("{name}s")));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }
}
