//! BuildKit's `moby.buildkit.v1.Control` service over Berth's builder: thin, as the
//! Docker API handlers are. `ListWorkers` and `Info` describe the one build worker
//! (`build::worker`); `DiskUsage` and `Prune` report BuildKit build records, of
//! which there are none yet (the classic builder's cache is images, which `image
//! prune` removes). `Solve` and `Status` answer `Unimplemented` naming what to use
//! instead, so `docker buildx build` stops with that message rather than falling
//! back to a builder container that needs the internet.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_buildkit_proto::moby::buildkit::v1 as pb;
use bollard_buildkit_proto::moby::buildkit::v1::control_server::{Control, ControlServer};
use bollard_buildkit_proto::moby::buildkit::v1::types::{BuildkitVersion, GcPolicy, WorkerRecord};
use bollard_buildkit_proto::pb::Platform;
use tonic::{Request, Response, Status};

use crate::build::worker;
use crate::engine::Engine;

pub struct ControlService {
    engine: Arc<Engine>,
}

pub fn control(engine: Arc<Engine>) -> ControlServer<ControlService> {
    ControlServer::new(ControlService { engine })
}

type Stream<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} with BuildKit is not supported by Berth yet: set DOCKER_BUILDKIT=0 to build with Berth's classic builder"
    ))
}

fn version() -> BuildkitVersion {
    let v = worker::version();
    BuildkitVersion {
        package: v.package.into(),
        version: v.version.into(),
        revision: v.revision.into(),
    }
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
        Ok(Response::new(pb::DiskUsageResponse { record: vec![] }))
    }

    type PruneStream = Stream<pb::UsageRecord>;

    async fn prune(
        &self,
        _req: Request<pb::PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        Ok(Response::new(Box::pin(futures_util::stream::empty())))
    }

    async fn solve(
        &self,
        _req: Request<pb::SolveRequest>,
    ) -> Result<Response<pb::SolveResponse>, Status> {
        Err(unimplemented("building"))
    }

    type StatusStream = Stream<pb::StatusResponse>;

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        Err(unimplemented("building"))
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
        let e = &self.engine;
        let w = worker::worker(
            &e.id,
            e.images.platform(),
            &e.hostname(),
            e.network.gateway_of("bridge"),
        );
        Ok(Response::new(pb::ListWorkersResponse {
            record: vec![record(&w)],
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
            &crate::images::Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into()),
            },
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
