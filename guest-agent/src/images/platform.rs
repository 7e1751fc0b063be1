//! Platforms (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`): parsing `--platform`,
//! normalising architecture aliases, and choosing an entry from an image index.

use std::fmt;

use oci_client::manifest::ImageIndexEntry;

use super::{ConfigFile, ImageError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

fn normalise_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase);
    match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), None),
        "aarch64" | "arm64" => (
            "arm64".into(),
            match variant.as_deref() {
                None | Some("8") | Some("v8") => None, // v8 is arm64's default
                Some(v) => Some(v.to_string()),
            },
        ),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "i386" | "386" | "i686" => ("386".into(), None),
        other => (other.to_string(), variant),
    }
}

impl Platform {
    /// The platform this engine runs containers for.
    pub fn host() -> Platform {
        let (architecture, variant) = normalise_arch(std::env::consts::ARCH, None);
        Platform {
            os: "linux".into(),
            architecture,
            variant,
        }
    }

    /// What an image's config says it runs on (nothing for configs without an OS).
    pub fn of_config(cfg: &ConfigFile) -> Option<Platform> {
        if cfg.os.is_empty() {
            return None;
        }
        let (architecture, variant) = normalise_arch(&cfg.architecture, cfg.variant.as_deref());
        Some(Platform {
            os: cfg.os.to_ascii_lowercase(),
            architecture,
            variant,
        })
    }

    /// Parses `os[/arch[/variant]]`.
    pub fn parse(s: &str) -> Result<Platform, ImageError> {
        let bad = || {
            ImageError::InvalidArgument(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        let host = Platform::host();
        let (os, arch, variant) = match parts.as_slice() {
            [os] if !os.is_empty() => (*os, host.architecture.as_str(), None),
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, None),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                (*os, *arch, Some(*v))
            }
            _ => return Err(bad()),
        };
        let os = os.to_ascii_lowercase();
        if os != "linux" {
            return Err(ImageError::Platform(format!(
                "operating system \"{os}\" is not supported by this engine"
            )));
        }
        let (architecture, variant) = normalise_arch(arch, variant);
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// Whether an image for (`os`, `arch`, `variant`) runs as this platform.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let (a, v) = normalise_arch(arch, variant);
        os.eq_ignore_ascii_case(&self.os)
            && a == self.architecture
            && (self.variant.is_none() || v == self.variant)
    }

    /// Picks the entry of an index for this platform.
    pub fn select<'a>(&self, entries: &'a [ImageIndexEntry]) -> Option<&'a ImageIndexEntry> {
        entries.iter().find(|e| {
            e.platform.as_ref().is_some_and(|p| {
                self.matches(
                    &p.os.to_string(),
                    &p.architecture.to_string(),
                    p.variant.as_deref(),
                )
            })
        })
    }
}

impl super::ImageService {
    /// `docker create --platform`'s check of the local image `name`: dockerd's
    /// 404 when it is for another platform (the CLI then pulls the one asked
    /// for); without `--platform`, dockerd's warning when it is not for the
    /// engine's own platform. An unknown image passes: create says so itself.
    pub fn check_platform(
        &self,
        name: &str,
        requested: Option<&Platform>,
    ) -> Result<Option<String>, ImageError> {
        let Ok((_, cfg)) = self.config(name) else {
            return Ok(None);
        };
        let Some(actual) = Platform::of_config(&cfg) else {
            return Ok(None);
        };
        let variant = actual.variant.as_deref();
        match requested {
            Some(want) if !want.matches(&actual.os, &actual.architecture, variant) => {
                Err(ImageError::OtherPlatform(format!(
                    "image with reference {name} was found but does not match the specified platform: wanted {want}, actual: {actual}"
                )))
            }
            None if !self.platform.matches(&actual.os, &actual.architecture, variant) => {
                Ok(Some(format!(
                    "The requested image's platform ({actual}) does not match the detected host platform ({}) and no specific platform was requested",
                    self.platform
                )))
            }
            _ => Ok(None),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.matches("linux", "aarch64", None));
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert!(p.matches("linux", "arm", Some("v7")));
        assert!(!p.matches("linux", "arm", Some("v6")));
        assert!(Platform::parse("windows/amd64").is_err());
        assert!(Platform::parse("linux//").is_err());
    }
}
