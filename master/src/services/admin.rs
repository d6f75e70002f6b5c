//! The admin service used by the CLI.

use std::pin::Pin;

use baton_common::config::{GcSettings, StorageBackend};
use baton_common::proto::admin_service_server::AdminService;
use baton_common::proto::*;
use baton_common::storage::{CheckpointStore, Manifest};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::auth::{Access, Authority, Caller};
use crate::cluster::{ClusterEvent, ClusterHandle};
use crate::error::{MasterError, MasterResult};
use crate::prepare::prepare_experiment;
use crate::stopping::Stopping;

/// Serves the admin API.
pub struct AdminApi {
    cluster: ClusterHandle,
    preparing: tokio::sync::Semaphore,
    auth: Authority,
    stopping: Stopping,
}

/// How many experiment configs are parsed and expanded at once.
const CONCURRENT_PREPARATIONS: usize = 2;

impl AdminApi {
    /// A service forwarding to the cluster task, admitting callers by `auth`; log followers
    /// are cut off when `stopping` fires.
    pub fn new(cluster: ClusterHandle, auth: Authority, stopping: Stopping) -> Self {
        Self {
            cluster,
            preparing: tokio::sync::Semaphore::new(CONCURRENT_PREPARATIONS),
            auth,
            stopping,
        }
    }
}

/// Records who changed what.
fn log_mutation(caller: &Caller, rpc: &str) {
    tracing::info!(caller = %caller.name, peer = %caller.peer, rpc, "admin call");
}

/// A cluster answer as a gRPC response.
fn respond<R>(answer: MasterResult<R>) -> Result<Response<R>, Status> {
    Ok(Response::new(answer?))
}

/// How long experiment creation waits for checkpoint storage to answer.
const STORAGE_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type ChunkStream = Pin<Box<dyn Stream<Item = Result<CheckpointChunk, Status>> + Send>>;
type LogStream = Pin<Box<dyn Stream<Item = Result<TrialLogLine, Status>> + Send>>;

#[tonic::async_trait]
impl AdminService for AdminApi {
    type TrialLogsStream = LogStream;
    type DownloadCheckpointStream = ChunkStream;

    async fn create_experiment(
        &self,
        request: Request<CreateExperimentRequest>,
    ) -> Result<Response<CreateExperimentResponse>, Status> {
        let caller = self
            .auth
            .check(&request, Access::Mutate, "CreateExperiment")?;
        log_mutation(&caller, "CreateExperiment");
        let request = request.into_inner();
        let context = request.context.unwrap_or_default();
        // Parsing and expansion cost what the request makes them cost: never on the cluster
        // task, and only a few at a time.
        let _permit = self
            .preparing
            .acquire()
            .await
            .map_err(|_| MasterError::ShuttingDown)?;
        let prepared =
            tokio::task::spawn_blocking(move || prepare_experiment(request.config_yaml, context))
                .await
                .map_err(|e| Status::internal(format!("experiment preparation failed: {e}")))??;
        check_storage(&prepared.config.checkpoint_storage.backend).await?;
        respond(self.cluster.create_experiment(prepared).await)
    }

    async fn list_experiments(
        &self,
        request: Request<ListExperimentsRequest>,
    ) -> Result<Response<ListExperimentsResponse>, Status> {
        self.auth.check(&request, Access::Read, "ListExperiments")?;
        respond(self.cluster.list_experiments().await)
    }

    async fn describe_experiment(
        &self,
        request: Request<ExperimentRef>,
    ) -> Result<Response<Experiment>, Status> {
        self.auth
            .check(&request, Access::Read, "DescribeExperiment")?;
        let id = request.into_inner().id;
        respond(self.cluster.describe_experiment(id).await)
    }

    async fn kill_experiment(
        &self,
        request: Request<ExperimentRef>,
    ) -> Result<Response<Experiment>, Status> {
        let caller = self
            .auth
            .check(&request, Access::Mutate, "KillExperiment")?;
        log_mutation(&caller, "KillExperiment");
        let id = request.into_inner().id;
        respond(self.cluster.kill_experiment(id).await)
    }

    async fn delete_experiment(
        &self,
        request: Request<ExperimentRef>,
    ) -> Result<Response<Experiment>, Status> {
        let caller = self
            .auth
            .check(&request, Access::Mutate, "DeleteExperiment")?;
        log_mutation(&caller, "DeleteExperiment");
        let id = request.into_inner().id;
        respond(self.cluster.delete_experiment(id).await)
    }

    async fn pause_experiment(
        &self,
        request: Request<ExperimentRef>,
    ) -> Result<Response<Experiment>, Status> {
        let caller = self
            .auth
            .check(&request, Access::Mutate, "PauseExperiment")?;
        log_mutation(&caller, "PauseExperiment");
        let id = request.into_inner().id;
        respond(self.cluster.pause_experiment(id).await)
    }

    async fn activate_experiment(
        &self,
        request: Request<ExperimentRef>,
    ) -> Result<Response<Experiment>, Status> {
        let caller = self
            .auth
            .check(&request, Access::Mutate, "ActivateExperiment")?;
        log_mutation(&caller, "ActivateExperiment");
        let id = request.into_inner().id;
        respond(self.cluster.activate_experiment(id).await)
    }

    async fn list_checkpoints(
        &self,
        request: Request<ListCheckpointsRequest>,
    ) -> Result<Response<ListCheckpointsResponse>, Status> {
        self.auth.check(&request, Access::Read, "ListCheckpoints")?;
        let request = request.into_inner();
        respond(
            self.cluster
                .list_checkpoints(request.experiment_id, request.all)
                .await,
        )
    }

    async fn set_gc_policy(
        &self,
        request: Request<SetGcPolicyRequest>,
    ) -> Result<Response<SetGcPolicyResponse>, Status> {
        // A preview only reads; applying a policy deletes checkpoints.
        let access = if request.get_ref().dry_run {
            Access::Read
        } else {
            Access::Mutate
        };
        let caller = self.auth.check(&request, access, "SetGcPolicy")?;
        if access == Access::Mutate {
            log_mutation(&caller, "SetGcPolicy");
        }
        let request = request.into_inner();
        let policy = GcSettings {
            save_experiment_best: non_negative(
                "save_experiment_best",
                request.save_experiment_best,
            )?,
            save_trial_best: non_negative("save_trial_best", request.save_trial_best)?,
            save_trial_latest: non_negative("save_trial_latest", request.save_trial_latest)?,
            gc_while_running: false,
        };
        let (id, while_running) = (request.experiment_id, request.gc_while_running);
        respond(
            self.cluster
                .set_gc_policy(id, policy, while_running, request.dry_run)
                .await,
        )
    }

    async fn pin_checkpoint(
        &self,
        request: Request<PinCheckpointRequest>,
    ) -> Result<Response<Checkpoint>, Status> {
        let caller = self.auth.check(&request, Access::Mutate, "PinCheckpoint")?;
        log_mutation(&caller, "PinCheckpoint");
        let request = request.into_inner();
        respond(
            self.cluster
                .pin_checkpoint(request.uuid, request.note)
                .await,
        )
    }

    async fn unpin_checkpoint(
        &self,
        request: Request<UnpinCheckpointRequest>,
    ) -> Result<Response<Checkpoint>, Status> {
        let caller = self
            .auth
            .check(&request, Access::Mutate, "UnpinCheckpoint")?;
        log_mutation(&caller, "UnpinCheckpoint");
        respond(
            self.cluster
                .unpin_checkpoint(request.into_inner().uuid)
                .await,
        )
    }

    async fn list_trials(
        &self,
        request: Request<ExperimentRef>,
    ) -> Result<Response<ListTrialsResponse>, Status> {
        self.auth.check(&request, Access::Read, "ListTrials")?;
        let id = request.into_inner().id;
        respond(self.cluster.list_trials(id).await)
    }

    async fn describe_trial(
        &self,
        request: Request<TrialRef>,
    ) -> Result<Response<TrialDetail>, Status> {
        self.auth.check(&request, Access::Read, "DescribeTrial")?;
        let id = request.into_inner().id;
        respond(self.cluster.describe_trial(id).await)
    }

    async fn trial_logs(
        &self,
        request: Request<TrialLogsRequest>,
    ) -> Result<Response<Self::TrialLogsStream>, Status> {
        self.auth.check(&request, Access::Read, "TrialLogs")?;
        let request = request.into_inner();
        let trial_id = request.trial_id;
        let (backlog, mut events, ended) = self.cluster.follow_logs(trial_id).await?;
        let follow = request.follow && !ended;
        let kept = request
            .tail
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let skipped = kept.map_or(0, |n| backlog.len().saturating_sub(n));
        let stream = async_stream::stream! {
            let mut last_id = backlog.last().map_or(0, |row| row.id);
            for row in backlog.into_iter().skip(skipped) {
                yield Ok(TrialLogLine::from(row));
            }
            if follow {
                loop {
                    match events.recv().await {
                        Ok(ClusterEvent::Log(row)) if row.trial_id == trial_id && row.id > last_id => {
                            last_id = row.id;
                            yield Ok(TrialLogLine::from(row));
                        }
                        Ok(ClusterEvent::TrialEnded(id)) if id == trial_id => break,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
        };
        Ok(Response::new(Box::pin(self.stopping.clone().cut(stream))))
    }

    async fn move_trial(
        &self,
        request: Request<MoveTrialRequest>,
    ) -> Result<Response<TrialDetail>, Status> {
        let caller = self.auth.check(&request, Access::Mutate, "MoveTrial")?;
        log_mutation(&caller, "MoveTrial");
        let request = request.into_inner();
        let to = Some(request.to_agent).filter(|a| !a.is_empty());
        respond(self.cluster.move_trial(request.trial_id, to).await)
    }

    async fn describe_checkpoint(
        &self,
        request: Request<CheckpointRef>,
    ) -> Result<Response<Checkpoint>, Status> {
        self.auth
            .check(&request, Access::Read, "DescribeCheckpoint")?;
        let reference = request.into_inner();
        respond(self.cluster.describe_checkpoint(reference).await)
    }

    async fn download_checkpoint(
        &self,
        request: Request<CheckpointRef>,
    ) -> Result<Response<Self::DownloadCheckpointStream>, Status> {
        self.auth
            .check(&request, Access::Read, "DownloadCheckpoint")?;
        let reference = request.into_inner();
        let (row, backend) = self.cluster.checkpoint_source(reference).await?;
        if row.state != baton_common::gc::CheckpointState::Completed {
            return Err(Status::failed_precondition(format!(
                "checkpoint {} is {}",
                row.uuid, row.state
            )));
        }
        let store = CheckpointStore::new(&backend).map_err(|e| Status::internal(e.to_string()))?;
        // The master's own record says which files there are: never a metadata.json read back
        // from storage, which a trial writing in place could have changed.
        let manifest: Manifest = serde_json::from_str(&row.metadata_json)
            .ok()
            .filter(|m: &Manifest| m.uuid == row.uuid)
            .ok_or_else(|| {
                Status::internal(format!(
                    "the record of checkpoint {} is unreadable",
                    row.uuid
                ))
            })?;
        let manifest_json = serde_json::to_string(&manifest).expect("manifest serializes");
        let stream = async_stream::try_stream! {
            yield CheckpointChunk { manifest_json, ..Default::default() };
            for file in &manifest.files {
                let mut chunks = store.verified_chunks(&manifest.uuid, file).await.map_err(|e| Status::data_loss(e.to_string()))?;
                let mut offset = 0u64;
                while let Some(chunk) = futures::StreamExt::next(&mut chunks).await {
                    let data = chunk.map_err(|e| Status::data_loss(e.to_string()))?;
                    let length = data.len() as u64;
                    yield CheckpointChunk { manifest_json: String::new(), path: file.path.clone(), offset, data: data.to_vec() };
                    offset += length;
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        self.auth.check(&request, Access::Read, "ListAgents")?;
        let mut listed = self.cluster.list_agents().await?;
        listed.warning = self.auth.warning().to_string();
        respond(Ok(listed))
    }

    async fn disable_agent(
        &self,
        request: Request<DisableAgentRequest>,
    ) -> Result<Response<Agent>, Status> {
        let caller = self.auth.check(&request, Access::Mutate, "DisableAgent")?;
        log_mutation(&caller, "DisableAgent");
        let request = request.into_inner();
        respond(self.cluster.disable_agent(request.id, request.drain).await)
    }

    async fn enable_agent(&self, request: Request<AgentRef>) -> Result<Response<Agent>, Status> {
        let caller = self.auth.check(&request, Access::Mutate, "EnableAgent")?;
        log_mutation(&caller, "EnableAgent");
        let id = request.into_inner().id;
        respond(self.cluster.enable_agent(id).await)
    }
}

/// Fails early when a config's checkpoint storage cannot be reached or written.
async fn check_storage(backend: &StorageBackend) -> Result<(), MasterError> {
    let store = CheckpointStore::new(backend)
        .map_err(|e| MasterError::InvalidArgument(format!("invalid experiment config: {e}")))?;
    store
        .check_access(STORAGE_CHECK_TIMEOUT)
        .await
        .map_err(|e| MasterError::InvalidArgument(format!("invalid experiment config: {e}")))
}

fn non_negative(field: &str, value: i64) -> Result<u64, MasterError> {
    u64::try_from(value).map_err(|_| {
        MasterError::InvalidArgument(format!(
            "{field}: must be a non-negative integer (got {value})"
        ))
    })
}
