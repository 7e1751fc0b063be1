//! The image history a build writes: one entry per instruction, as each builder
//! writes it. dockerd's classic builder: `/bin/sh -c #(nop)  ENV A=b` for metadata and
//! the command for RUN. BuildKit's Dockerfile frontend: `ENV A=b`, `RUN /bin/sh -c …
//! # buildkit` (the suffix marks an entry with a layer), every entry commented
//! `buildkit.dockerfile.v0`. Metadata-only instructions are `empty_layer` entries.

use bollard_stubs::models::ImageConfig;

use super::dockerfile::Instruction;

/// The comment on every history entry a BuildKit build writes.
pub const BUILDKIT_COMMENT: &str = "buildkit.dockerfile.v0";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    Classic,
    BuildKit,
}

impl Style {
    pub fn comment(self) -> Option<String> {
        match self {
            Style::Classic => None,
            Style::BuildKit => Some(BUILDKIT_COMMENT.to_string()),
        }
    }

    /// A RUN step's entry; `cmd` is what ran (the shell form already wrapped), `args`
    /// the stage's ARGs so far with their values, `env` the image's ENV. Both builders
    /// put the build args in front as `|N NAME=value …`, each its own way: BuildKit
    /// every ARG in declaration order (once, with its latest value, ENV's value if ENV
    /// sets it, empty if none); the classic builder the ARGs that have a value and no
    /// ENV of that name, sorted.
    pub fn run(
        self,
        args: &[(String, Option<String>)],
        env: &[(&str, &str)],
        cmd: &[String],
    ) -> String {
        let env_value = |k: &str| env.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let mut listed: Vec<(String, String)> = Vec::new();
        for (name, value) in args {
            let value = match (self, env_value(name)) {
                (Style::Classic, Some(_)) => continue,
                (Style::BuildKit, Some(v)) => v.to_string(),
                (Style::Classic, None) => match value {
                    Some(v) => v.clone(),
                    None => continue,
                },
                (Style::BuildKit, None) => value.clone().unwrap_or_default(),
            };
            match listed.iter_mut().find(|(n, _)| n == name) {
                Some(e) => e.1 = value,
                None => listed.push((name.clone(), value)),
            }
        }
        let mut words: Vec<String> = listed
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if self == Style::Classic {
            words.sort();
        }
        if !words.is_empty() {
            words.insert(0, format!("|{}", words.len()));
        }
        words.extend(cmd.iter().cloned());
        match self {
            Style::Classic => words.join(" "),
            Style::BuildKit => format!("RUN {} # buildkit", words.join(" ")),
        }
    }

    /// A COPY or ADD step's entry.
    pub fn copy(self, step: &Instruction) -> String {
        match self {
            Style::Classic => format!("#(nop) {} {}", step.keyword, step.rest),
            Style::BuildKit => format!("{} {} # buildkit", step.keyword, step.rest),
        }
    }

    /// A metadata-only instruction's entry, from the instruction as expanded and the
    /// config it produced (CMD and ENTRYPOINT show the command as stored, Go-quoted,
    /// as both builders print it).
    pub fn metadata(self, keyword: &str, expanded: &str, config: &ImageConfig) -> String {
        let quoted = |v: &Option<Vec<String>>| {
            let parts: Vec<String> = v
                .iter()
                .flatten()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .collect();
            format!("[{}]", parts.join(" "))
        };
        let body = match keyword {
            "CMD" => quoted(&config.cmd),
            "ENTRYPOINT" => quoted(&config.entrypoint),
            _ => expanded.trim().to_string(),
        };
        match self {
            Style::Classic => format!("/bin/sh -c #(nop)  {keyword} {body}"),
            Style::BuildKit => format!("{keyword} {body}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_each_builders_words() {
        let cfg = ImageConfig {
            cmd: Some(vec!["cat".into(), "/a b".into()]),
            ..Default::default()
        };
        let run = ["/bin/sh".to_string(), "-c".into(), "echo hi".into()];
        assert_eq!(
            Style::BuildKit.run(&[], &[], &run),
            "RUN /bin/sh -c echo hi # buildkit"
        );
        assert_eq!(Style::Classic.run(&[], &[], &run), "/bin/sh -c echo hi");
        // Build args in front: BuildKit's in declaration order, empty when unset,
        // ENV's value when ENV sets one; the classic builder's sorted, without those.
        let args = [
            ("Z".to_string(), Some("1".to_string())),
            ("A".to_string(), None),
            ("E".to_string(), Some("arg".to_string())),
            ("Z".to_string(), Some("2".to_string())),
        ];
        let env = [("E", "env"), ("PATH", "/bin")];
        assert_eq!(
            Style::BuildKit.run(&args, &env, &run),
            "RUN |3 Z=2 A= E=env /bin/sh -c echo hi # buildkit"
        );
        assert_eq!(
            Style::Classic.run(&args, &env, &run),
            "|1 Z=2 /bin/sh -c echo hi"
        );
        assert_eq!(
            Style::BuildKit.metadata("CMD", "[\"cat\", \"/a b\"]", &cfg),
            "CMD [\"cat\" \"/a b\"]"
        );
        assert_eq!(
            Style::Classic.metadata("ENV", "A=b ", &cfg),
            "/bin/sh -c #(nop)  ENV A=b"
        );
        let copy = Instruction {
            keyword: "COPY".into(),
            rest: "a.txt ./".into(),
            line: 3,
        };
        assert_eq!(Style::BuildKit.copy(&copy), "COPY a.txt ./ # buildkit");
        assert_eq!(Style::BuildKit.comment().as_deref(), Some(BUILDKIT_COMMENT));
    }
}
