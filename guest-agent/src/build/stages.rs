//! The Dockerfile front end after parsing: turns instructions into a build plan —
//! global ARGs and build-arg overrides, stages with their bases and names, ARG scoping
//! as Docker has it, `--target` selection and the images a build must pull. No I/O and
//! no HTTP: `/build` executes the plan, `--pull` pre-pulls from it, and a BuildKit
//! Solve can take the same plan.

use std::collections::{BTreeSet, HashMap};

use super::args::{arg_decls, word, words, ArgDecl};
use super::dockerfile::Instruction;
pub use super::error::PlanError;

/// Where a stage's filesystem (its FROM) or a `COPY --from` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An earlier stage, by index.
    Stage(usize),
    /// `FROM scratch`: the empty image.
    Scratch,
    /// An image reference, as written after ARG expansion.
    Image(String),
    /// A named build context (`--build-context NAME=…`), by its name.
    Context(String),
}

/// A global ARG (declared before the first FROM) with its value: the build-arg
/// override, else its default; `None` when it has neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArg {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lower-cased as Docker compares them.
    pub name: Option<String>,
    /// The FROM instruction as written.
    pub from: Instruction,
    /// The base after expansion with the global ARGs, as the user would see it.
    pub reference: String,
    pub base: Source,
    /// `FROM --platform=…`, expanded.
    pub platform: Option<String>,
    /// The instructions after FROM, up to the next FROM.
    pub steps: Vec<Instruction>,
    /// Every `COPY --from=` and `RUN --mount=from=` of this stage, resolved against the
    /// stages before it.
    pub copy_from: Vec<Source>,
}

impl Stage {
    /// The image this stage's FROM names, when it is one (not a stage, not `scratch`).
    pub fn image(&self) -> Option<&str> {
        match &self.base {
            Source::Image(r) => Some(r),
            _ => None,
        }
    }

    /// The earlier stages this one reads: its FROM, its `COPY --from`s and its RUN
    /// mounts' `from=`s.
    pub fn depends_on(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(&self.base)
            .chain(&self.copy_from)
            .filter_map(|s| match s {
                Source::Stage(i) => Some(*i),
                _ => None,
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    /// The ARG instructions before the first FROM, as written.
    pub preamble: Vec<Instruction>,
    pub global_args: Vec<GlobalArg>,
    /// `--build-arg`s: they override the default of an ARG of the same name, global or
    /// in a stage, and are visible only where such an ARG is declared.
    pub overrides: HashMap<String, String>,
    pub stages: Vec<Stage>,
    /// The stage the build ends with: `--target`'s, else the last.
    pub target: usize,
}

impl BuildPlan {
    /// The stages the classic builder runs: every stage up to the target, in order, as
    /// dockerd's does (BuildKit runs only [`BuildPlan::needed`]).
    pub fn classic_stages(&self) -> &[Stage] {
        &self.stages[..=self.target]
    }

    /// The target and every stage it reads, directly or not, in file order.
    pub fn needed(&self) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.target];
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(self.stages[i].depends_on());
            }
        }
        seen.into_iter().collect()
    }

    /// The images the classic build's FROM lines name (not stages, not `scratch`), each
    /// once: what `--pull` refreshes.
    pub fn bases(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self.classic_stages().iter().filter_map(Stage::image) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    /// Applies named build contexts, as BuildKit's Dockerfile frontend does: a stage
    /// whose name is a context's is replaced by it (its steps never run), and a FROM or
    /// `--from` image whose familiar name (without `:latest`) is a context's reads the
    /// context instead of the image.
    pub fn use_contexts(&mut self, has: impl Fn(&str) -> bool) {
        let replaced: Vec<usize> = (0..self.stages.len())
            .filter(|&i| self.stages[i].name.as_deref().is_some_and(&has))
            .collect();
        let swap = |s: &mut Source| {
            if let Source::Image(r) = s {
                let key = context_key(r);
                if has(&key) {
                    *s = Source::Context(key);
                }
            }
        };
        for stage in &mut self.stages {
            if replaced.contains(&stage.index) {
                stage.base = Source::Context(stage.name.clone().unwrap_or_default());
                stage.steps.clear();
                stage.copy_from.clear();
                continue;
            }
            swap(&mut stage.base);
            stage.copy_from.iter_mut().for_each(swap);
        }
    }

    /// The global ARG values, for expanding FROM lines.
    fn globals(&self) -> HashMap<String, String> {
        self.global_args
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
            .collect()
    }

    /// The value an ARG declared inside a stage takes: the build-arg override, else its
    /// default expanded with `scope` (what is in effect where the ARG stands), else the
    /// global ARG of the same name's value — re-declaring `ARG NAME` is how a stage
    /// sees a global ARG at all.
    pub fn arg_value(&self, decl: &ArgDecl, scope: &HashMap<String, String>) -> Option<String> {
        if let Some(v) = self.overrides.get(&decl.name) {
            return Some(v.clone());
        }
        match &decl.default {
            Some(d) => Some(word(d, scope)),
            None => self
                .global_args
                .iter()
                .rev()
                .find(|a| a.name == decl.name)
                .and_then(|a| a.value.clone()),
        }
    }
}

/// Turns parsed instructions into the plan; `target` is `--target`'s stage name.
pub fn plan(
    instructions: &[Instruction],
    build_args: &HashMap<String, String>,
    target: Option<&str>,
) -> Result<BuildPlan, PlanError> {
    let mut plan = BuildPlan {
        preamble: Vec::new(),
        global_args: Vec::new(),
        overrides: build_args.clone(),
        stages: Vec::new(),
        target: 0,
    };
    // The ARGs in scope in the current stage, for resolving `COPY --from=$X`.
    let mut scope: HashMap<String, String> = HashMap::new();
    for ins in instructions {
        let in_stage = !plan.stages.is_empty();
        match (ins.keyword.as_str(), in_stage) {
            ("FROM", _) => {
                let stage = from(ins, &plan)?;
                plan.stages.push(stage);
                scope.clear();
                continue;
            }
            ("ARG", false) => {
                for d in arg_decls(ins)? {
                    let value = match build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => d.default.as_deref().map(|w| word(w, &plan.globals())),
                    };
                    plan.global_args.push(GlobalArg {
                        name: d.name,
                        value,
                    });
                }
                plan.preamble.push(ins.clone());
                continue;
            }
            (_, false) => return Err(PlanError::BeforeFrom { line: ins.line }),
            ("ARG", true) => {
                for d in arg_decls(ins)? {
                    match plan.arg_value(&d, &scope) {
                        Some(v) => scope.insert(d.name, v),
                        None => scope.remove(&d.name),
                    };
                }
            }
            ("COPY" | "ADD" | "RUN", true) => {
                let froms = match ins.keyword.as_str() {
                    "RUN" => run_mount_froms(&ins.rest, &scope),
                    _ => copy_from(&ins.rest)
                        .map(|f| word(&f, &scope))
                        .into_iter()
                        .collect(),
                };
                for f in froms {
                    let index = plan.stages.len() - 1;
                    let source = match stage_named(&plan.stages[..index], &f) {
                        Some(i) => Source::Stage(i),
                        None => Source::Image(f),
                    };
                    plan.stages[index].copy_from.push(source);
                }
            }
            _ => {}
        }
        if let Some(s) = plan.stages.last_mut() {
            s.steps.push(ins.clone());
        }
    }
    if plan.stages.is_empty() {
        return Err(PlanError::NoStage);
    }
    plan.target = match target {
        None => plan.stages.len() - 1,
        Some(t) => plan
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
            .ok_or_else(|| PlanError::UnknownTarget(t.to_string()))?,
    };
    Ok(plan)
}

/// `FROM [--platform=…] base [AS name]`, the base and platform expanded with the
/// global ARGs (the only ones a FROM sees).
fn from(ins: &Instruction, plan: &BuildPlan) -> Result<Stage, PlanError> {
    let line = ins.line;
    let mut words = words(&ins.rest);
    let mut platform = None;
    let globals = plan.globals();
    while words.first().is_some_and(|w| w.starts_with("--")) {
        let flag = words.remove(0);
        match flag.strip_prefix("--platform=") {
            Some(p) => platform = Some(word(p, &globals)),
            None => return Err(PlanError::FromFlag { line, flag }),
        }
    }
    let (written, name) = match words.as_slice() {
        [base] => (base.clone(), None),
        [base, kw, name] if kw.eq_ignore_ascii_case("as") => {
            (base.clone(), Some(name.to_lowercase()))
        }
        _ => return Err(PlanError::FromArguments { line }),
    };
    if let Some(n) = &name {
        if !valid_stage_name(n) {
            return Err(PlanError::StageName {
                line,
                name: n.clone(),
            });
        }
        if plan.stages.iter().any(|s| s.name.as_ref() == Some(n)) {
            return Err(PlanError::DuplicateStage {
                line,
                name: n.clone(),
            });
        }
    }
    let reference = word(&written, &globals);
    if reference.is_empty() {
        return Err(PlanError::BlankBase { line, written });
    }
    // A name of an earlier stage wins over an image of that name, as in Docker.
    let base = match stage_by_name(&plan.stages, &reference) {
        Some(i) => Source::Stage(i),
        None if reference == "scratch" => Source::Scratch,
        None => Source::Image(reference.clone()),
    };
    Ok(Stage {
        index: plan.stages.len(),
        name,
        from: ins.clone(),
        reference,
        base,
        platform,
        steps: Vec::new(),
        copy_from: Vec::new(),
    })
}

/// The name a named context must have to stand for an image reference: its familiar
/// form without `:latest` (`busybox`, `me/app:1`), as BuildKit looks them up.
pub fn context_key(reference: &str) -> String {
    match crate::images::reference::ImageRef::parse(reference) {
        Ok(r) => {
            let s = r.to_string();
            s.strip_suffix(":latest").map(str::to_string).unwrap_or(s)
        }
        Err(_) => reference.to_string(),
    }
}

/// Docker's rule for `AS` names: a letter, then letters, digits, `-`, `_` and `.`.
fn valid_stage_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The earlier stage named `r` (any case): what a FROM can refer to.
fn stage_by_name(stages: &[Stage], r: &str) -> Option<usize> {
    let lower = r.to_lowercase();
    stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// The earlier stage `r` refers to by name or by index: what a `COPY --from` can.
fn stage_named(stages: &[Stage], r: &str) -> Option<usize> {
    stage_by_name(stages, r).or_else(|| r.parse::<usize>().ok().filter(|&i| i < stages.len()))
}

/// The `from=` of each `RUN --mount`, expanded; a malformed flag is the build's error
/// to report when the step runs.
fn run_mount_froms(rest: &str, scope: &HashMap<String, String>) -> Vec<String> {
    super::mounts::parse(rest, |v| word(v, scope))
        .map(|f| {
            f.mounts
                .into_iter()
                .filter_map(|m| match m.kind {
                    super::mounts::MountKind::Bind { from, .. } => from,
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The raw `--from=` value of a COPY/ADD line, among its leading flags.
fn copy_from(rest: &str) -> Option<String> {
    words(rest)
        .into_iter()
        .take_while(|w| w.starts_with("--"))
        .find_map(|w| w.strip_prefix("--from=").map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::super::dockerfile;
    use super::*;

    fn plan_of(text: &str, args: &[(&str, &str)], target: Option<&str>) -> BuildPlan {
        try_plan(text, args, target).unwrap()
    }

    fn try_plan(
        text: &str,
        args: &[(&str, &str)],
        target: Option<&str>,
    ) -> Result<BuildPlan, PlanError> {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        plan(&dockerfile::parse(text).unwrap(), &args, target)
    }

    fn global(p: &BuildPlan, name: &str) -> Option<String> {
        p.global_args
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.clone())
    }

    /// The values a stage's ARG lines give, in order, with nothing else in scope.
    fn stage_args(p: &BuildPlan, stage: usize) -> Vec<(String, Option<String>)> {
        let mut scope = HashMap::new();
        let mut out = Vec::new();
        for ins in p.stages[stage].steps.iter().filter(|i| i.keyword == "ARG") {
            for d in arg_decls(ins).unwrap() {
                let v = p.arg_value(&d, &scope);
                if let Some(v) = &v {
                    scope.insert(d.name.clone(), v.clone());
                }
                out.push((d.name, v));
            }
        }
        out
    }

    #[test]
    fn global_args_expand_from_lines_and_quotes_follow_shell_rules() {
        let p = plan_of(
            "ARG A=\"x y\"\nARG B='z'\nARG C=${B}-c\nARG D='$B'\nARG E\nARG REPO=alpine\nFROM $REPO:${TAG:-3}\n",
            &[],
            None,
        );
        assert_eq!(global(&p, "A").as_deref(), Some("x y"));
        assert_eq!(global(&p, "B").as_deref(), Some("z"));
        assert_eq!(global(&p, "C").as_deref(), Some("z-c"));
        assert_eq!(global(&p, "D").as_deref(), Some("$B"));
        assert_eq!(global(&p, "E"), None);
        assert_eq!(p.preamble.len(), 6);
        assert_eq!(p.stages[0].reference, "alpine:3");
        assert_eq!(p.stages[0].base, Source::Image("alpine:3".into()));
        // A build-arg overrides a declared global ARG's default.
        let p = plan_of("ARG REPO=alpine\nFROM $REPO\n", &[("REPO", "debian")], None);
        assert_eq!(p.bases(), vec!["debian"]);
        // An undeclared build-arg is not seen by FROM.
        let p = plan_of("FROM x${REPO}\n", &[("REPO", "debian")], None);
        assert_eq!(p.bases(), vec!["x"]);
        let p = plan_of("ARG A=1 B=\"two words\" C\nFROM x\n", &[], None);
        let names: Vec<_> = p.global_args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(global(&p, "B").as_deref(), Some("two words"));
    }

    #[test]
    fn stages_see_global_args_only_after_declaring_them() {
        let text = "ARG V=global\nARG W=w\nFROM x\nARG V\nARG OWN=\"o p\"\nARG W=local\nFROM y\nARG NONE\n";
        let p = plan_of(text, &[], None);
        assert_eq!(
            stage_args(&p, 0),
            vec![
                ("V".into(), Some("global".into())),
                ("OWN".into(), Some("o p".into())),
                ("W".into(), Some("local".into())),
            ]
        );
        assert_eq!(stage_args(&p, 1), vec![("NONE".into(), None)]);
        // Build-args override the global and the stage's own default alike.
        let p = plan_of(text, &[("V", "b1"), ("W", "b2"), ("OWN", "b3")], None);
        let vals: Vec<_> = stage_args(&p, 0).into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            vals,
            [Some("b1".into()), Some("b3".into()), Some("b2".into())]
        );
        // A default expands with what is in scope where the ARG stands.
        let d = ArgDecl {
            name: "P".into(),
            default: Some("${HOME}/bin".into()),
        };
        let scope = HashMap::from([("HOME".to_string(), "/root".to_string())]);
        assert_eq!(p.arg_value(&d, &scope).as_deref(), Some("/root/bin"));
    }

    #[test]
    fn stages_names_and_target_pruning() {
        let text = "FROM golang AS Build\nRUN make\nFROM build AS test\nRUN test\nFROM alpine AS unused\nFROM scratch AS final\nCOPY --from=build /out /out\nCOPY --from=0 /a /a\n";
        let p = plan_of(text, &[], None);
        assert_eq!(p.stages.len(), 4);
        assert_eq!(p.stages[0].name.as_deref(), Some("build"));
        assert_eq!(p.stages[1].base, Source::Stage(0));
        assert_eq!(p.stages[3].base, Source::Scratch);
        assert_eq!(
            p.stages[3].copy_from,
            vec![Source::Stage(0), Source::Stage(0)]
        );
        assert_eq!(p.stages[3].steps.len(), 2);
        assert_eq!(p.target, 3);
        assert_eq!(p.needed(), vec![0, 3]);
        assert_eq!(p.classic_stages().len(), 4);
        // Stage names and scratch are not pulled; each image once.
        assert_eq!(p.bases(), vec!["golang", "alpine"]);
        let t = plan_of(text, &[], Some("TEST"));
        assert_eq!(t.target, 1);
        assert_eq!(t.needed(), vec![0, 1]);
        assert_eq!(t.classic_stages().len(), 2);
        assert_eq!(t.bases(), vec!["golang"]);
    }

    #[test]
    fn copy_from_by_name_index_image_and_arg() {
        let text = "ARG SRC=one\nFROM a AS one\nFROM b\nARG SRC\nCOPY --from=$SRC /x /x\nCOPY --chown=1 --from=1 /y /y\nCOPY --from=nginx:1 /z /z\nCOPY --from=2 /w /w\nCOPY a --from=one\nFROM c\n";
        let p = plan_of(text, &[], Some("one"));
        assert_eq!(p.needed(), vec![0]);
        let p = plan_of(text, &[], None);
        assert_eq!(
            p.stages[1].copy_from,
            vec![
                Source::Stage(0),
                // Index 1 is this stage itself and 2 a later one: not stages it can read.
                Source::Image("1".into()),
                Source::Image("nginx:1".into()),
                Source::Image("2".into()),
            ]
        );
        assert_eq!(p.stages[2].copy_from, vec![]);
        assert_eq!(p.needed(), vec![2]);
        let p = plan_of("FROM a\nFROM b\nCOPY --from=0 /x /x\n", &[], None);
        assert_eq!(p.needed(), vec![0, 1]);
    }

    #[test]
    fn platform_on_from() {
        let p = plan_of(
            "ARG P=linux/arm64\nFROM --platform=$P alpine AS a\nFROM --platform=linux/amd64 a\n",
            &[],
            None,
        );
        assert_eq!(p.stages[0].platform.as_deref(), Some("linux/arm64"));
        assert_eq!(p.stages[0].base, Source::Image("alpine".into()));
        assert_eq!(p.stages[1].platform.as_deref(), Some("linux/amd64"));
        assert_eq!(p.stages[1].base, Source::Stage(0));
        assert_eq!(p.bases(), vec!["alpine"]);
        // FROM reads an earlier stage by name only; a number is an image reference.
        let p = plan_of("FROM a AS x\nFROM 0\n", &[], None);
        assert_eq!(p.stages[1].base, Source::Image("0".into()));
    }

    #[test]
    fn errors() {
        assert_eq!(
            try_plan("FROM a AS x\n", &[], Some("nope")),
            Err(PlanError::UnknownTarget("nope".into()))
        );
        assert_eq!(
            try_plan("FROM a b\n", &[], None),
            Err(PlanError::FromArguments { line: 1 })
        );
        assert_eq!(
            try_plan("FROM a AS b c\n", &[], None),
            Err(PlanError::FromArguments { line: 1 })
        );
        assert_eq!(
            try_plan("FROM\n", &[], None),
            Err(PlanError::FromArguments { line: 1 })
        );
        assert_eq!(
            try_plan("FROM --os=linux a\n", &[], None),
            Err(PlanError::FromFlag {
                line: 1,
                flag: "--os=linux".into()
            })
        );
        assert_eq!(
            try_plan("FROM $NOPE\n", &[], None),
            Err(PlanError::BlankBase {
                line: 1,
                written: "$NOPE".into()
            })
        );
        assert_eq!(
            try_plan("FROM a AS 1st\n", &[], None),
            Err(PlanError::StageName {
                line: 1,
                name: "1st".into()
            })
        );
        assert_eq!(
            try_plan("FROM a AS x\nFROM b AS X\n", &[], None),
            Err(PlanError::DuplicateStage {
                line: 2,
                name: "x".into()
            })
        );
        assert_eq!(
            try_plan("ARG A\nRUN true\nFROM a\n", &[], None),
            Err(PlanError::BeforeFrom { line: 2 })
        );
        assert_eq!(try_plan("ARG A\n", &[], None), Err(PlanError::NoStage));
        assert_eq!(
            try_plan("FROM a\nARG\n", &[], None),
            Err(PlanError::EmptyArg { line: 2 })
        );
        // The target is matched by name only, never by index.
        assert_eq!(
            try_plan("FROM a\n", &[], Some("0")),
            Err(PlanError::UnknownTarget("0".into()))
        );
    }

    #[test]
    fn named_contexts_replace_stages_and_images() {
        let mut p = plan_of(
            "FROM busybox:latest AS base\nRUN a\nFROM deps AS tools\nCOPY --from=base / /\nFROM alpine:3\nCOPY --from=tools /t /\nRUN --mount=from=me/app:1,target=/x b\n",
            &[],
            None,
        );
        let names = ["tools", "deps", "alpine:3", "me/app:1", "busybox"];
        p.use_contexts(|n| names.contains(&n));
        // `busybox:latest` is looked up as `busybox`.
        assert_eq!(p.stages[0].base, Source::Context("busybox".into()));
        assert_eq!(p.stages[0].steps.len(), 1);
        // A replaced stage keeps none of its own steps or sources.
        assert_eq!(p.stages[1].base, Source::Context("tools".into()));
        assert!(p.stages[1].steps.is_empty() && p.stages[1].copy_from.is_empty());
        assert_eq!(p.stages[2].base, Source::Context("alpine:3".into()));
        assert_eq!(
            p.stages[2].copy_from,
            [Source::Stage(1), Source::Context("me/app:1".into())]
        );
        // The target needs the replacing stage only, not what it was built from.
        assert_eq!(p.needed(), [1, 2]);
        assert_eq!(context_key("docker.io/library/busybox:latest"), "busybox");
    }
}
