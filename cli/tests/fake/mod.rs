//! A fake master serving the admin API from fixed data, and a runner for the `baton` binary.

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};

use baton_common::proto::admin_service_server::{AdminService, AdminServiceServer};
use baton_common::proto::*;
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// A unary reply.
type Reply<T> = Result<Response<T>, Status>;

/// A master that answers from fixed data and records the requests it gets.
#[derive(Default, Clone)]
pub struct FakeMaster {
    /// The GC policy and delete calls, in order.
    pub calls: Arc<Mutex<Vec<String>>>,
    /// The last create request.
    pub created: Arc<Mutex<Option<CreateExperimentRequest>>>,
    /// What describe_checkpoint answers as storage_json.
    pub storage_json: Arc<Mutex<String>>,
    /// What describe_checkpoint answers as metadata_json (the master's record), if set.
    pub metadata_json: Arc<Mutex<Option<String>>>,
}

impl FakeMaster {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

/// The one experiment the fake master knows.
fn experiment() -> Experiment {
    Experiment {
        id: 1,
        name: "linreg".into(),
        state: "ACTIVE".into(),
        config_yaml: "searcher:\n  metric: acc\n  smaller_is_better: false\n".into(),
        trials: vec![Trial {
            id: 5,
            experiment_id: 1,
            state: "RUNNING".into(),
            hparams_json: r#"{"lr":0.1}"#.into(),
            steps_completed: 10,
            agent_id: "a1".into(),
            ..Default::default()
        }],
        created_ms: 1_700_000_000_000,
        searcher: "single".into(),
        trial_count: 1,
        trial_states: [("RUNNING".to_string(), 1)].into(),
        steps_completed: 10,
        max_length: 100,
        brackets: Vec::new(),
    }
}

/// A completed checkpoint of trial 5.
fn checkpoint(uuid: &str, step: u64, metric: Option<f64>) -> Checkpoint {
    Checkpoint {
        uuid: uuid.into(),
        experiment_id: 1,
        trial_id: 5,
        step,
        state: "COMPLETED".into(),
        metric,
        size_bytes: 1 << 20,
        ..Default::default()
    }
}

/// The checkpoints of experiment 1.
fn checkpoints() -> Vec<Checkpoint> {
    vec![
        checkpoint("c10", 10, Some(0.5)),
        checkpoint("c20", 20, None),
        checkpoint("c30", 30, Some(0.9)),
    ]
}

#[tonic::async_trait]
impl AdminService for FakeMaster {
    async fn create_experiment(
        &self,
        r: Request<CreateExperimentRequest>,
    ) -> Reply<CreateExperimentResponse> {
        *self.created.lock().unwrap() = Some(r.into_inner());
        Ok(Response::new(CreateExperimentResponse {
            id: 42,
            warnings: Vec::new(),
        }))
    }
    async fn list_experiments(
        &self,
        _: Request<ListExperimentsRequest>,
    ) -> Reply<ListExperimentsResponse> {
        Ok(Response::new(ListExperimentsResponse {
            experiments: vec![Experiment {
                trials: Vec::new(),
                ..experiment()
            }],
        }))
    }
    async fn describe_experiment(&self, r: Request<ExperimentRef>) -> Reply<Experiment> {
        match r.into_inner().id {
            1 => Ok(Response::new(experiment())),
            id => Err(Status::not_found(format!("experiment {id} not found"))),
        }
    }
    async fn kill_experiment(&self, _: Request<ExperimentRef>) -> Reply<Experiment> {
        Ok(Response::new(Experiment {
            state: "CANCELED".into(),
            ..experiment()
        }))
    }
    async fn delete_experiment(&self, _: Request<ExperimentRef>) -> Reply<Experiment> {
        self.record("delete_experiment".into());
        Ok(Response::new(Experiment {
            state: "DELETING".into(),
            ..experiment()
        }))
    }
    async fn pause_experiment(&self, _: Request<ExperimentRef>) -> Reply<Experiment> {
        Ok(Response::new(Experiment {
            state: "PAUSED".into(),
            ..experiment()
        }))
    }
    async fn activate_experiment(&self, _: Request<ExperimentRef>) -> Reply<Experiment> {
        Ok(Response::new(experiment()))
    }
    async fn list_checkpoints(
        &self,
        _: Request<ListCheckpointsRequest>,
    ) -> Reply<ListCheckpointsResponse> {
        Ok(Response::new(ListCheckpointsResponse {
            checkpoints: checkpoints(),
        }))
    }
    async fn set_gc_policy(&self, r: Request<SetGcPolicyRequest>) -> Reply<SetGcPolicyResponse> {
        let r = r.into_inner();
        self.record(format!(
            "gc {} {} {} dry_run={}",
            r.save_experiment_best, r.save_trial_best, r.save_trial_latest, r.dry_run
        ));
        let mut list = checkpoints();
        let delete = list.split_off(1);
        Ok(Response::new(SetGcPolicyResponse { keep: list, delete }))
    }
    async fn list_trials(&self, _: Request<ExperimentRef>) -> Reply<ListTrialsResponse> {
        Ok(Response::new(ListTrialsResponse {
            trials: experiment().trials,
        }))
    }
    async fn describe_trial(&self, _: Request<TrialRef>) -> Reply<TrialDetail> {
        Ok(Response::new(TrialDetail {
            trial: experiment().trials.pop(),
            ..Default::default()
        }))
    }
    type TrialLogsStream = tokio_stream::Iter<std::vec::IntoIter<Result<TrialLogLine, Status>>>;
    type DownloadCheckpointStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<CheckpointChunk, Status>>>;
    async fn download_checkpoint(
        &self,
        _: Request<CheckpointRef>,
    ) -> Reply<Self::DownloadCheckpointStream> {
        Err(Status::unimplemented("not served by the fake master"))
    }
    async fn trial_logs(&self, _: Request<TrialLogsRequest>) -> Reply<Self::TrialLogsStream> {
        let line = |id, text: &str| {
            Ok(TrialLogLine {
                id,
                text: text.into(),
                ..Default::default()
            })
        };
        Ok(Response::new(tokio_stream::iter(vec![
            line(1, "epoch 1"),
            line(2, "epoch 2\n"),
        ])))
    }
    async fn move_trial(&self, _: Request<MoveTrialRequest>) -> Reply<TrialDetail> {
        Ok(Response::new(TrialDetail::default()))
    }
    async fn describe_checkpoint(&self, r: Request<CheckpointRef>) -> Reply<Checkpoint> {
        let r = r.into_inner();
        let uuid = if r.uuid.is_empty() {
            format!("t{}s{}", r.trial_id, r.step)
        } else {
            r.uuid
        };
        let storage_json = self.storage_json.lock().unwrap().clone();
        let described = checkpoint(&uuid, 10, Some(0.5));
        let metadata_json = self.metadata_json.lock().unwrap().clone();
        Ok(Response::new(Checkpoint {
            storage_json,
            metadata_json: metadata_json.unwrap_or(described.metadata_json.clone()),
            ..described
        }))
    }
    async fn list_agents(&self, _: Request<ListAgentsRequest>) -> Reply<ListAgentsResponse> {
        let agent = Agent {
            id: "a1".into(),
            state: "enabled".into(),
            connected: true,
            slots: 2,
            ..Default::default()
        };
        Ok(Response::new(ListAgentsResponse {
            agents: vec![agent],
            warning: String::new(),
        }))
    }
    async fn disable_agent(&self, r: Request<DisableAgentRequest>) -> Reply<Agent> {
        let state = if r.get_ref().drain {
            "draining"
        } else {
            "disabled"
        };
        Ok(Response::new(Agent {
            id: r.into_inner().id,
            state: state.into(),
            ..Default::default()
        }))
    }
    async fn enable_agent(&self, r: Request<AgentRef>) -> Reply<Agent> {
        Ok(Response::new(Agent {
            id: r.into_inner().id,
            state: "enabled".into(),
            ..Default::default()
        }))
    }
}

/// Serves a fake master on a free port bound before serving; returns its URL.
pub async fn start() -> (String, FakeMaster) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let master = FakeMaster::default();
    let service = AdminServiceServer::new(master.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (url, master)
}

/// Runs `baton --master URL ARGS...` with stdin closed.
pub async fn baton(url: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .arg("--master")
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("BATON_MASTER");
    command.output().await.unwrap()
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output parsed as JSON, after checking the exit status is 0.
pub fn json_out(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(output));
    serde_json::from_slice(&output.stdout).unwrap()
}
