//! Why a Dockerfile cannot be planned: the front end's errors, with the wording of
//! Docker's builders (shared by the ARG rules in `args` and the planner in `stages`).

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("no build stage in current context")]
    NoStage,
    #[error("line {line}: no build stage in current context")]
    BeforeFrom { line: usize },
    #[error("line {line}: FROM requires either one or three arguments")]
    FromArguments { line: usize },
    #[error("line {line}: FROM: unknown flag: {flag}")]
    FromFlag { line: usize, flag: String },
    #[error("line {line}: base name ({written}) should not be blank")]
    BlankBase { line: usize, written: String },
    #[error("line {line}: invalid name for build stage: {name:?}, name can't start with a number or contain symbols")]
    StageName { line: usize, name: String },
    #[error("line {line}: duplicate name for build stage: {name:?}")]
    DuplicateStage { line: usize, name: String },
    #[error("line {line}: ARG requires at least one argument")]
    EmptyArg { line: usize },
    #[error("failed to reach build target {0} in Dockerfile")]
    UnknownTarget(String),
}
