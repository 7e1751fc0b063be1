//! What a build shows of its steps: the classic `Step n/total : …` lines, numbered
//! over the whole Dockerfile as dockerd's are, and BuildKit's view of the same
//! steps — one vertex for each step that makes a layer, named `[stage i/n] …` as
//! BuildKit's Dockerfile frontend names them. Classic clients read the lines, BuildKit
//! clients the step events; each ignores the other.

use tokio::sync::mpsc;

use super::dockerfile::Instruction;
use super::stages::Stage;
use super::{Output, StepEvent};

/// Instructions BuildKit runs as a step of their own; the others only change the
/// image's config and show no step.
fn is_vertex(keyword: &str) -> bool {
    matches!(keyword, "FROM" | "RUN" | "COPY" | "ADD" | "WORKDIR")
}

/// The name BuildKit gives a step: `[stage i/n] INSTR args`, without the stage when
/// the Dockerfile has one stage. `i` is padded to `n`'s width, as BuildKit pads it.
pub fn vertex_name(stage: Option<&str>, i: usize, n: usize, text: &str) -> String {
    let width = n.to_string().len();
    match stage {
        Some(s) => format!("[{s} {i:>width$}/{n}] {text}"),
        None => format!("[{i:>width$}/{n}] {text}"),
    }
}

pub(super) struct Steps<'a> {
    done: usize,
    total: usize,
    out: &'a mpsc::Sender<Output>,
    /// Whether the Dockerfile has more than one stage (stage names then prefix steps).
    multi: bool,
    /// The stage being built: its index, label, the vertex steps so far and in all.
    stage: usize,
    label: Option<String>,
    index: usize,
    count: usize,
    from_image: bool,
    open: bool,
}

impl<'a> Steps<'a> {
    pub fn new(total: usize, stages: usize, out: &'a mpsc::Sender<Output>) -> Steps<'a> {
        Steps {
            done: 0,
            total,
            out,
            multi: stages > 1,
            stage: 0,
            label: None,
            index: 0,
            count: 0,
            from_image: false,
            open: false,
        }
    }

    async fn event(&self, e: StepEvent) {
        let _ = self.out.send(Output::Step(e)).await;
    }

    /// The stage about to be built; its FROM is shown next.
    pub fn stage(&mut self, stage: &Stage) {
        self.stage = stage.index;
        self.label = self.multi.then(|| {
            stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{}", stage.index))
        });
        self.index = 0;
        // FROM is a step only when it names an image (not scratch, not a stage).
        self.from_image = stage.image().is_some();
        self.count = usize::from(self.from_image)
            + stage.steps.iter().filter(|s| is_vertex(&s.keyword)).count();
    }

    /// Shows an instruction about to run; `shown` is its text as BuildKit names it
    /// (FROM with the image's full name, the rest as written).
    pub async fn show(&mut self, ins: &Instruction, shown: Option<&str>) {
        self.done += 1;
        let line = format!(
            "Step {}/{} : {} {}\n",
            self.done, self.total, ins.keyword, ins.rest
        );
        let _ = self.out.send(Output::Stream(line)).await;
        self.end().await;
        let step = match ins.keyword.as_str() {
            "FROM" => self.from_image,
            k => is_vertex(k),
        };
        if self.count > 0 && step {
            self.index += 1;
            let text = match shown {
                Some(s) => s.to_string(),
                None => format!("{} {}", ins.keyword, ins.rest),
            };
            let name = vertex_name(self.label.as_deref(), self.index, self.count, &text);
            self.event(StepEvent::Begin(self.stage, name)).await;
            self.open = true;
        }
    }

    /// Ends the step shown last, if it was a vertex.
    pub async fn end(&mut self) {
        if std::mem::take(&mut self.open) {
            self.event(StepEvent::End(self.stage)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pad_the_index_and_carry_the_stage_when_there_are_several() {
        assert_eq!(vertex_name(None, 2, 3, "RUN echo hi"), "[2/3] RUN echo hi");
        assert_eq!(
            vertex_name(Some("stage-1"), 3, 12, "COPY a b"),
            "[stage-1  3/12] COPY a b"
        );
        assert_eq!(
            vertex_name(Some("build"), 1, 1, "FROM x"),
            "[build 1/1] FROM x"
        );
    }
}
