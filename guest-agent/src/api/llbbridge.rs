//! BuildKit's gateway (`moby.buildkit.v1.frontend.LLBBridge`): how buildx and Compose
//! drive a build. The client names its build in the `buildkit-controlapi-buildid`
//! metadata, asks for the `dockerfile.v0` frontend to be solved, and returns the
//! result for `Control.Solve` to export. Thin, over `crate::buildkit`; the calls a
//! frontend running in the client would make (raw LLB, reading files of results,
//! containers) are refused by name.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_buildkit_proto::moby::buildkit::v1::apicaps::ApiCap;
use bollard_buildkit_proto::moby::buildkit::v1::frontend as fpb;
use bollard_buildkit_proto::moby::buildkit::v1::frontend::llb_bridge_server::{
    LlbBridge, LlbBridgeServer,
};
use tonic::{Request, Response, Status};

use super::buildkit::{engine_worker, status_of, Stream};
use crate::buildkit::frontend;
use crate::engine::Engine;
use crate::sessions::jobs::{Built, Job};

pub struct BridgeService {
    engine: Arc<Engine>,
}

pub fn bridge(engine: Arc<Engine>) -> LlbBridgeServer<BridgeService> {
    LlbBridgeServer::new(BridgeService { engine })
}

/// The gateway capabilities Berth serves (BuildKit's `frontend/gateway/pb/caps.go`
/// ids): solving a frontend and returning its result as a ref with metadata.
const CAPS: &[&str] = &[
    "solve.base",
    "solve.inlinereturn",
    "readfile",
    "return",
    "returnmap",
    "proto.refarray",
    "frontend.inputs",
    "gateway.solve.metadata",
    "frontend.caps",
];

/// The metadata key naming the build a gateway call belongs to.
const BUILD_ID: &str = "buildkit-controlapi-buildid";

impl BridgeService {
    fn job<T>(&self, req: &Request<T>) -> Result<Arc<Job>, Status> {
        let id = req
            .metadata()
            .get(BUILD_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Status::invalid_argument(format!("no {BUILD_ID} in the request")))?;
        Ok(self.engine.buildkit.jobs.get(id))
    }
}

fn refused(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} is not supported by Berth's gateway: it solves the dockerfile.v0 frontend"
    ))
}

/// The metadata of a Dockerfile build's result, as BuildKit's frontend sets it.
fn metadata(built: &Built) -> HashMap<String, Vec<u8>> {
    HashMap::from([("containerimage.config".to_string(), built.config.clone())])
}

#[tonic::async_trait]
impl LlbBridge for BridgeService {
    async fn resolve_image_config(
        &self,
        _req: Request<fpb::ResolveImageConfigRequest>,
    ) -> Result<Response<fpb::ResolveImageConfigResponse>, Status> {
        Err(refused("ResolveImageConfig"))
    }

    async fn resolve_source_meta(
        &self,
        _req: Request<fpb::ResolveSourceMetaRequest>,
    ) -> Result<Response<fpb::ResolveSourceMetaResponse>, Status> {
        Err(refused("ResolveSourceMeta"))
    }

    async fn solve(
        &self,
        req: Request<fpb::SolveRequest>,
    ) -> Result<Response<fpb::SolveResponse>, Status> {
        let job = self.job(&req)?;
        let req = req.into_inner();
        if req.definition.is_some() && req.frontend.is_empty() {
            return Err(refused("solving an LLB definition"));
        }
        let built = frontend::solve(&self.engine, &job, &req.frontend, &req.frontend_opt)
            .await
            .map_err(status_of)?;
        let id = format!("{:032x}", rand::random::<u128>());
        let result = fpb::Result {
            metadata: metadata(&built),
            result: Some(fpb::result::Result::Ref(fpb::Ref {
                id: id.clone(),
                def: None,
            })),
            ..Default::default()
        };
        job.add_ref(&id, built);
        Ok(Response::new(fpb::SolveResponse {
            r#ref: String::new(),
            result: Some(result),
        }))
    }

    async fn read_file(
        &self,
        _req: Request<fpb::ReadFileRequest>,
    ) -> Result<Response<fpb::ReadFileResponse>, Status> {
        Err(refused("ReadFile"))
    }

    async fn read_dir(
        &self,
        _req: Request<fpb::ReadDirRequest>,
    ) -> Result<Response<fpb::ReadDirResponse>, Status> {
        Err(refused("ReadDir"))
    }

    async fn stat_file(
        &self,
        _req: Request<fpb::StatFileRequest>,
    ) -> Result<Response<fpb::StatFileResponse>, Status> {
        Err(refused("StatFile"))
    }

    async fn evaluate(
        &self,
        _req: Request<fpb::EvaluateRequest>,
    ) -> Result<Response<fpb::EvaluateResponse>, Status> {
        // Every result Berth returns is already built.
        Ok(Response::new(fpb::EvaluateResponse {}))
    }

    async fn ping(
        &self,
        _req: Request<fpb::PingRequest>,
    ) -> Result<Response<fpb::PongResponse>, Status> {
        let cap = |id: &&str| ApiCap {
            id: id.to_string(),
            enabled: true,
            ..Default::default()
        };
        Ok(Response::new(fpb::PongResponse {
            frontend_api_caps: CAPS.iter().map(cap).collect(),
            llb_caps: vec![],
            workers: vec![engine_worker(&self.engine)],
        }))
    }

    async fn r#return(
        &self,
        req: Request<fpb::ReturnRequest>,
    ) -> Result<Response<fpb::ReturnResponse>, Status> {
        let job = self.job(&req)?;
        let req = req.into_inner();
        let returned = match (req.error, req.result) {
            (Some(e), _) if e.code != 0 => Err(e.message),
            (_, None) => Ok(None),
            (_, Some(r)) => {
                let id = match r.result {
                    Some(fpb::result::Result::Ref(r)) => Some(r.id),
                    Some(fpb::result::Result::RefDeprecated(id)) => Some(id),
                    Some(fpb::result::Result::Refs(_))
                    | Some(fpb::result::Result::RefsDeprecated(_)) => {
                        return Err(refused("a multi-platform result"));
                    }
                    None => None,
                };
                match id.filter(|i| !i.is_empty()) {
                    None => Ok(None),
                    Some(id) => match job.get_ref(&id) {
                        Some(b) => Ok(Some(b)),
                        None => return Err(Status::not_found(format!("no result {id}"))),
                    },
                }
            }
        };
        job.set_returned(returned);
        Ok(Response::new(fpb::ReturnResponse {}))
    }

    async fn inputs(
        &self,
        _req: Request<fpb::InputsRequest>,
    ) -> Result<Response<fpb::InputsResponse>, Status> {
        Ok(Response::new(fpb::InputsResponse::default()))
    }

    async fn new_container(
        &self,
        _req: Request<fpb::NewContainerRequest>,
    ) -> Result<Response<fpb::NewContainerResponse>, Status> {
        Err(refused("NewContainer"))
    }

    async fn release_container(
        &self,
        _req: Request<fpb::ReleaseContainerRequest>,
    ) -> Result<Response<fpb::ReleaseContainerResponse>, Status> {
        Err(refused("ReleaseContainer"))
    }

    type ExecProcessStream = Stream<fpb::ExecMessage>;

    async fn exec_process(
        &self,
        _req: Request<tonic::Streaming<fpb::ExecMessage>>,
    ) -> Result<Response<Self::ExecProcessStream>, Status> {
        Err(refused("ExecProcess"))
    }

    async fn read_file_container(
        &self,
        _req: Request<fpb::ReadFileRequest>,
    ) -> Result<Response<fpb::ReadFileResponse>, Status> {
        Err(refused("ReadFileContainer"))
    }

    async fn read_dir_container(
        &self,
        _req: Request<fpb::ReadDirRequest>,
    ) -> Result<Response<fpb::ReadDirResponse>, Status> {
        Err(refused("ReadDirContainer"))
    }

    async fn stat_file_container(
        &self,
        _req: Request<fpb::StatFileRequest>,
    ) -> Result<Response<fpb::StatFileResponse>, Status> {
        Err(refused("StatFileContainer"))
    }

    async fn warn(
        &self,
        _req: Request<fpb::WarnRequest>,
    ) -> Result<Response<fpb::WarnResponse>, Status> {
        Ok(Response::new(fpb::WarnResponse {}))
    }
}
