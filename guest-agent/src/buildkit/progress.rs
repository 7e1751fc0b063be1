//! BuildKit's progress model over a job's log: vertexes (one per step, named as
//! BuildKit's Dockerfile frontend names them), each started, maybe cached, completed
//! or failed, and the output of its command as vertex logs. Every change resends the
//! whole vertex; clients merge updates by digest.

use std::time::SystemTime;

use bollard_buildkit_proto::google::protobuf::Timestamp;
use bollard_buildkit_proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog, VertexStatus};
use sha2::{Digest, Sha256};

use crate::build::StepEvent;
use crate::sessions::jobs::Job;

fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn now() -> Option<Timestamp> {
    Some(timestamp(SystemTime::now()))
}

/// One vertex of a job's progress.
pub struct Step {
    vertex: Vertex,
}

impl Step {
    pub fn digest(&self) -> &str {
        &self.vertex.digest
    }
}

/// Writes a build's progress: into a job's log (what `Control.Status` streams), or to
/// any other sink (`POST /build?version=2` sends it as JSON trace lines).
pub struct Reporter<'a> {
    /// Seeds the vertexes' digests, which must be unique within a build.
    id: String,
    sink: Box<dyn Fn(StatusResponse) + Send + Sync + 'a>,
    count: u64,
}

impl<'a> Reporter<'a> {
    pub fn new(job: &'a Job) -> Reporter<'a> {
        Reporter::to(&job.id, move |r| job.report(r))
    }

    pub fn to(id: &str, sink: impl Fn(StatusResponse) + Send + Sync + 'a) -> Reporter<'a> {
        Reporter {
            id: id.to_string(),
            sink: Box::new(sink),
            count: 0,
        }
    }

    fn send(&self, r: StatusResponse) {
        (self.sink)(r)
    }

    fn send_vertex(&self, v: &Vertex) {
        self.send(StatusResponse {
            vertexes: vec![v.clone()],
            ..Default::default()
        });
    }

    /// A vertex named `name` starts now.
    pub fn start(&mut self, name: &str) -> Step {
        self.count += 1;
        let mut h = Sha256::new();
        h.update(self.id.as_bytes());
        h.update(self.count.to_le_bytes());
        h.update(name.as_bytes());
        let vertex = Vertex {
            digest: format!("sha256:{}", hex::encode(h.finalize())),
            name: name.to_string(),
            started: now(),
            ..Default::default()
        };
        self.send_vertex(&vertex);
        Step { vertex }
    }

    /// The step's result came from the cache.
    pub fn cached(&self, step: &mut Step) {
        step.vertex.cached = true;
        self.send_vertex(&step.vertex);
    }

    /// Output of the step's command: stream 1 is stdout, 2 stderr.
    pub fn log(&self, step: &Step, stream: i64, msg: &[u8]) {
        if msg.is_empty() {
            return;
        }
        self.send(StatusResponse {
            logs: vec![VertexLog {
                vertex: step.vertex.digest.clone(),
                timestamp: now(),
                stream,
                msg: msg.to_vec(),
            }],
            ..Default::default()
        });
    }

    /// A named sub-status of a step, finished at once (`naming to docker.io/…`).
    pub fn status(&self, step: &Step, name: &str) {
        let t = now();
        self.send(StatusResponse {
            statuses: vec![VertexStatus {
                id: name.to_string(),
                vertex: step.vertex.digest.clone(),
                name: name.to_string(),
                timestamp: t,
                started: t,
                completed: t,
                ..Default::default()
            }],
            ..Default::default()
        });
    }

    /// Runs `work` as a step of its own: started, then completed, failed with its
    /// error if it fails.
    pub async fn step<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let step = self.start(name);
        let result = work.await;
        let error = result.as_ref().err().map(ToString::to_string);
        self.complete(step, error.as_deref());
        result
    }

    /// The step ends: done, or failed with `error`.
    pub fn complete(&self, mut step: Step, error: Option<&str>) {
        step.vertex.completed = now();
        if let Some(e) = error {
            step.vertex.error = e.to_string();
        }
        self.send_vertex(&step.vertex);
    }

    /// A step that starts and finishes at once.
    pub fn instant(&mut self, name: &str, cached: bool) {
        let mut s = self.start(name);
        if cached {
            s.vertex.cached = true;
        }
        self.complete(s, None);
    }
}

/// The builder's step events as vertexes: one step open per stage at a time, stages
/// at once.
#[derive(Default)]
pub struct StepVertexes {
    open: std::collections::BTreeMap<usize, Step>,
}

impl StepVertexes {
    pub fn on(&mut self, r: &mut Reporter<'_>, e: StepEvent) {
        match e {
            StepEvent::Begin(stage, name) => {
                if let Some(s) = self.open.remove(&stage) {
                    r.complete(s, None);
                }
                self.open.insert(stage, r.start(&name));
            }
            StepEvent::Cached(stage) => {
                if let Some(s) = self.open.get_mut(&stage) {
                    r.cached(s);
                }
            }
            StepEvent::Log(stage, data) => {
                if let Some(s) = self.open.get(&stage) {
                    r.log(s, 1, &data);
                }
            }
            StepEvent::End(stage) => {
                if let Some(s) = self.open.remove(&stage) {
                    r.complete(s, None);
                }
            }
            StepEvent::Cancelled(stage) => {
                if let Some(s) = self.open.remove(&stage) {
                    r.complete(s, Some("context canceled"));
                }
            }
        }
    }

    /// The build is over: steps still open end, failed with `error` if there is one
    /// (a step that was cancelled because another failed ends with it too).
    pub fn end(&mut self, r: &Reporter<'_>, error: Option<&str>) {
        for (_, s) in std::mem::take(&mut self.open) {
            r.complete(s, error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_step_is_one_vertex_updated_by_digest() {
        let jobs = std::sync::Arc::new(crate::sessions::jobs::Jobs::default());
        let job = jobs.get("p1");
        let mut r = Reporter::new(&job);
        let mut s = r.start("[1/2] FROM docker.io/library/busybox:latest");
        let digest = s.digest().to_string();
        r.cached(&mut s);
        r.log(&s, 1, b"hello\n");
        r.complete(s, Some("boom"));
        jobs.retire(&job);
        let log: Vec<StatusResponse> = job.watch().collect().await;
        assert_eq!(log.len(), 4);
        assert!(log.iter().all(|u| u
            .vertexes
            .iter()
            .chain(std::iter::empty())
            .all(|v| v.digest == digest)));
        let last = &log[3].vertexes[0];
        assert!(last.cached && last.completed.is_some());
        assert_eq!(last.error, "boom");
        assert_eq!(log[2].logs[0].msg, b"hello\n");
    }
}
