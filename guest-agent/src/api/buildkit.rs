//! BuildKit's `moby.buildkit.v1.Control` service over Berth's builder: thin, as the
//! Docker API handlers are. `ListWorkers` and `Info` describe the one build worker
//! (`build::worker`); `Solve` and `Status` are a build (`crate::buildkit`): Solve
//! waits for the client's gateway to return the result (or solves `dockerfile.v0`
//! itself when the client asks for it directly) and exports it; Status streams the
//! build's progress. `DiskUsage` and `Prune` are the build cache's records
//! (`build::records`).

use std::collections::HashMap;
use std::sync::Arc;

use bollard_buildkit_proto::moby::buildkit::v1 as pb;
use bollard_buildkit_proto::moby::buildkit::v1::control_server::{Control, ControlServer};
use bollard_buildkit_proto::moby::buildkit::v1::types::{BuildkitVersion, GcPolicy, WorkerRecord};
use bollard_buildkit_proto::pb::Platform;
use tonic::{Request, Response, Status};

use crate::build::{records, worker};
use crate::buildkit::export::{self, Exporter};
use crate::buildkit::progress::Reporter;
use crate::buildkit::{frontend, BuildKitError};
use crate::engine::Engine;
use crate::sessions::jobs::Job;
use futures_util::StreamExt;

pub struct ControlService {
    engine: Arc<Engine>,
}

pub fn control(engine: Arc<Engine>) -> ControlServer<ControlService> {
    ControlServer::new(ControlService { engine })
}

pub(super) type Stream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

fn usage_record(r: &records::Record) -> pb::UsageRecord {
    let at = Some(bollard_buildkit_proto::google::protobuf::Timestamp {
        seconds: r.created,
        nanos: 0,
    });
    pb::UsageRecord {
        id: r.id.clone(),
        mutable: r.kind == records::Kind::CacheMount,
        in_use: false,
        size: i64::try_from(r.size).unwrap_or(i64::MAX),
        created_at: at,
        last_used_at: at,
        usage_count: 1,
        description: r.description.clone(),
        record_type: r.kind.name().to_string(),
        shared: r.shared,
        ..Default::default()
    }
}

/// buildx sends `--filter until=…` as a filter string and `--keep-duration`/
/// `--keep-storage` as numbers (nanoseconds, bytes).
fn prune_filter(req: &pb::PruneRequest) -> Result<records::PruneFilter, Status> {
    let mut f = records::PruneFilter {
        keep_bytes: u64::try_from(req.reserved_space).unwrap_or(0),
        ..Default::default()
    };
    if req.keep_duration > 0 {
        f.before = Some(chrono::Utc::now().timestamp() - req.keep_duration / 1_000_000_000);
    }
    for raw in req.filter.iter().filter(|f| !f.is_empty()) {
        let (k, v) = raw
            .split_once("==")
            .or_else(|| raw.split_once('='))
            .ok_or_else(|| Status::invalid_argument(format!("invalid filter {raw}")))?;
        match k {
            "until" => {
                let t = super::images::parse_until(v)
                    .map_err(|_| Status::invalid_argument(format!("invalid filter {raw}")))?;
                f.before = Some(f.before.map_or(t, |b| b.min(t)));
            }
            _ => {
                return Err(Status::invalid_argument(format!(
                    "unsupported prune filter {k}"
                )))
            }
        }
    }
    Ok(f)
}

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not supported by Berth yet"))
}

/// A build's error as gRPC reports it. buildx prints the message after `ERROR:
/// failed to solve:`, prefixed with the code's name unless it is `Unknown`, which is
/// what BuildKit's own build failures carry.
pub(super) fn status_of(e: BuildKitError) -> Status {
    match e {
        BuildKitError::Session(_) => Status::failed_precondition(e.to_string()),
        other => Status::unknown(other.to_string()),
    }
}

/// The exporters of a Solve: the list, or the single one older clients send.
fn exporters(req: &pb::SolveRequest) -> Vec<Exporter> {
    let mut v: Vec<Exporter> = req
        .exporters
        .iter()
        .map(|e| Exporter {
            kind: e.r#type.clone(),
            attrs: e.attrs.clone(),
        })
        .collect();
    if v.is_empty() && !req.exporter_deprecated.is_empty() {
        v.push(Exporter {
            kind: req.exporter_deprecated.clone(),
            attrs: req.exporter_attrs_deprecated.clone(),
        });
    }
    v
}

async fn solve_job(
    engine: &Arc<Engine>,
    job: &Job,
    req: &pb::SolveRequest,
) -> Result<HashMap<String, String>, BuildKitError> {
    // `--cache-to`: Berth's cache stays in the engine. `inline` only marks the image
    // for later `--cache-from` use, which Berth does not need, so it is let through.
    if let Some(e) = req
        .cache
        .iter()
        .flat_map(|c| &c.exports)
        .find(|e| e.r#type != "inline")
    {
        return Err(BuildKitError::Unsupported(format!(
            "cache export (--cache-to type={}) is not supported by Berth: its build cache stays in the engine (docker buildx du)",
            e.r#type
        )));
    }
    let built = if req.definition.is_some() {
        return Err(BuildKitError::Unsupported(
            "LLB definitions are not supported by Berth: it builds Dockerfiles (the dockerfile.v0 frontend)".into(),
        ));
    } else if req.frontend.is_empty() {
        // The client's gateway drives the build and returns its result.
        job.returned().await.map_err(BuildKitError::Invalid)?
    } else {
        Some(frontend::solve(engine, job, &req.frontend, &req.frontend_attrs).await?)
    };
    match built {
        Some(b) => {
            let mut reporter = Reporter::new(job);
            let t = std::time::Instant::now();
            let out =
                export::export(engine, &req.session, &mut reporter, &b, &exporters(req)).await;
            tracing::debug!(ms = crate::clock::ms(t.elapsed()), "build exported");
            // The build's step images, kept in memory, are saved with the export's
            // tag; without one (an untagged or a local export) here.
            let saved = tokio::task::block_in_place(|| engine.images.flush());
            let out = out?;
            saved?;
            Ok(out)
        }
        None => {
            tokio::task::block_in_place(|| engine.images.flush())?;
            Ok(HashMap::new())
        }
    }
}

pub(super) fn version() -> BuildkitVersion {
    let v = worker::version();
    BuildkitVersion {
        package: v.package.into(),
        version: v.version.into(),
        revision: v.revision.into(),
    }
}

/// The engine's one build worker, as ListWorkers and the gateway's Ping list it.
pub(super) fn engine_worker(e: &Engine) -> WorkerRecord {
    let w = worker::worker(
        &e.id,
        &crate::emulators::platforms(e.images.platform()),
        &e.hostname(),
        e.network.gateway_of("bridge"),
    );
    record(&w)
}

fn record(w: &worker::Worker) -> WorkerRecord {
    WorkerRecord {
        id: w.id.clone(),
        labels: w.labels.iter().cloned().collect::<HashMap<_, _>>(),
        platforms: w
            .platforms
            .iter()
            .map(|p| Platform {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                variant: p.variant.clone().unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        gc_policy: vec![GcPolicy {
            all: true,
            max_used_space: w.gc_keep_bytes,
            ..Default::default()
        }],
        buildkit_version: Some(version()),
        cdi_devices: vec![],
    }
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn disk_usage(
        &self,
        _req: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        let record = super::build_cache::records(&self.engine)
            .iter()
            .map(usage_record)
            .collect();
        Ok(Response::new(pb::DiskUsageResponse { record }))
    }

    type PruneStream = Stream<pb::UsageRecord>;

    async fn prune(
        &self,
        req: Request<pb::PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        let req = req.into_inner();
        tracing::debug!(?req, "build cache prune");
        let filter = prune_filter(&req)?;
        let removed = super::build_cache::prune_records(&self.engine, &filter);
        let out: Vec<Result<pb::UsageRecord, Status>> =
            removed.iter().map(|r| Ok(usage_record(r))).collect();
        Ok(Response::new(Box::pin(futures_util::stream::iter(out))))
    }

    async fn solve(
        &self,
        req: Request<pb::SolveRequest>,
    ) -> Result<Response<pb::SolveResponse>, Status> {
        let req = req.into_inner();
        let bk = &self.engine.buildkit;
        let job = bk.jobs.get(&req.r#ref);
        job.set_session(&req.session);
        let history = &self.engine.build_history;
        let tags = exporters(&req)
            .iter()
            .filter(|e| e.kind != "local" && e.kind != "tar")
            .flat_map(|e| export::names(&e.attrs))
            .collect();
        history.started(&req.r#ref, tags);
        let outcome = solve_job(&self.engine, &job, &req).await;
        history.finished(
            &req.r#ref,
            &job.log(),
            outcome.as_ref().map_err(ToString::to_string),
        );
        bk.jobs.retire(&job);
        match outcome {
            Ok(exporter_response) => Ok(Response::new(pb::SolveResponse { exporter_response })),
            Err(e) => Err(status_of(e)),
        }
    }

    type StatusStream = Stream<pb::StatusResponse>;

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        let job = self.engine.buildkit.jobs.get(&req.into_inner().r#ref);
        Ok(Response::new(Box::pin(job.watch().map(Ok))))
    }

    type SessionStream = Stream<pb::BytesMessage>;

    async fn session(
        &self,
        _req: Request<tonic::Streaming<pb::BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        Err(unimplemented("a session over Control.Session"))
    }

    async fn list_workers(
        &self,
        _req: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        Ok(Response::new(pb::ListWorkersResponse {
            record: vec![engine_worker(&self.engine)],
        }))
    }

    async fn info(
        &self,
        _req: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        Ok(Response::new(pb::InfoResponse {
            buildkit_version: Some(version()),
        }))
    }

    type ListenBuildHistoryStream = Stream<pb::BuildHistoryEvent>;

    async fn listen_build_history(
        &self,
        _req: Request<pb::BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        // No BuildKit builds have run: the history is empty and, for a live
        // listener, stays open until the client leaves.
        Ok(Response::new(Box::pin(futures_util::stream::empty())))
    }

    async fn update_build_history(
        &self,
        _req: Request<pb::UpdateBuildHistoryRequest>,
    ) -> Result<Response<pb::UpdateBuildHistoryResponse>, Status> {
        Err(unimplemented("build history"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_record_carries_platforms_labels_and_version() {
        let w = worker::worker(
            "E1",
            &[crate::images::Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into()),
            }],
            "h",
            None,
        );
        let r = record(&w);
        assert_eq!(r.id, "E1");
        assert_eq!(r.platforms[0].architecture, "arm64");
        assert_eq!(r.platforms[0].variant, "v8");
        assert_eq!(
            r.labels.get(worker::LABEL_HOSTNAME).map(String::as_str),
            Some("h")
        );
        assert_eq!(
            r.buildkit_version.map(|v| v.version),
            Some(crate::VERSION.to_string())
        );
    }
}
