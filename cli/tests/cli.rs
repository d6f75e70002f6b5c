//! The `baton` binary against an in-process fake master: output shapes and exit statuses.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use baton_common::proto::admin_service_server::{AdminService, AdminServiceServer};
use baton_common::proto::*;
use serde_json::{Value, json};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

/// A master that answers from fixed data and records the requests it gets.
#[derive(Default, Clone)]
struct FakeMaster {
    calls: Arc<Mutex<Vec<String>>>,
    created: Arc<Mutex<Option<CreateExperimentRequest>>>,
}

impl FakeMaster {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

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
    }
}

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
        Ok(Response::new(CreateExperimentResponse { id: 42 }))
    }
    async fn list_experiments(
        &self,
        _: Request<ListExperimentsRequest>,
    ) -> Reply<ListExperimentsResponse> {
        Ok(Response::new(ListExperimentsResponse {
            experiments: vec![experiment()],
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
    async fn describe_checkpoint(&self, _: Request<CheckpointRef>) -> Reply<Checkpoint> {
        Ok(Response::new(checkpoint("c10", 10, Some(0.5))))
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
async fn start() -> (String, FakeMaster) {
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
async fn baton(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .arg("--master")
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("BATON_MASTER");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_out(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_sends_config_and_context() {
    let (url, master) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "name: linreg\n").unwrap();
    let context = dir.path().join("ctx");
    std::fs::create_dir_all(context.join("__pycache__")).unwrap();
    std::fs::write(context.join("train.py"), "print('hi')").unwrap();
    std::fs::write(context.join("__pycache__/x.pyc"), "junk").unwrap();

    let out = baton(
        &url,
        &[
            "experiment",
            "create",
            config.to_str().unwrap(),
            context.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(json_out(&out), json!({"id": 42}));
    let request = master.created.lock().unwrap().clone().unwrap();
    assert_eq!(request.config_yaml, "name: linreg\n");
    let files: Vec<_> = request
        .context
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(files, ["train.py"]);

    let out = baton(
        &url,
        &[
            "experiment",
            "create",
            config.to_str().unwrap(),
            context.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(stdout(&out), "Created experiment 42\n");

    let missing = dir.path().join("missing.yaml");
    let out = baton(
        &url,
        &[
            "experiment",
            "create",
            missing.to_str().unwrap(),
            context.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.yaml"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_and_list_shapes() {
    let (url, _) = start().await;
    let value = json_out(&baton(&url, &["experiment", "describe", "1", "--json"]).await);
    assert_eq!(value["id"], 1);
    assert_eq!(value["state"], "ACTIVE");
    assert_eq!(value["trials"][0]["hparams"], json!({"lr": 0.1}));
    assert_eq!(value["trials"][0]["agent_id"], "a1");

    let out = baton(&url, &["experiment", "describe", "9"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: experiment 9 not found\n");

    let value = json_out(&baton(&url, &["agent", "list", "--json"]).await);
    assert_eq!(value[0]["id"], "a1");
    assert_eq!(value[0]["slots"], 2);
    let out = baton(&url, &["agent", "disable", "a1", "--drain"]).await;
    assert_eq!(stdout(&out), "Agent a1 is draining\n");
    let out = baton(&url, &["experiment", "pause", "1"]).await;
    assert_eq!(stdout(&out), "Experiment 1 is PAUSED\n");
    let out = baton(&url, &["trial", "logs", "5"]).await;
    assert_eq!(stdout(&out), "epoch 1\nepoch 2\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_checkpoints_best_respects_direction() {
    let (url, _) = start().await;
    let value = json_out(
        &baton(
            &url,
            &[
                "experiment",
                "list-checkpoints",
                "1",
                "--best",
                "2",
                "--json",
            ],
        )
        .await,
    );
    let uuids: Vec<_> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids, ["c30", "c10"]);
    let out = baton(&url, &["experiment", "list-checkpoints", "1", "--csv"]).await;
    assert!(stdout(&out).starts_with(
        "uuid,trial_id,step,state,metric,size_bytes\nc10,5,10,COMPLETED,0.5,1048576\n"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_policy_previews_confirms_and_applies() {
    let (url, master) = start().await;
    let policy = [
        "experiment",
        "set",
        "gc-policy",
        "1",
        "--save-experiment-best",
        "1",
    ];
    let counts = ["--save-trial-best", "0", "--save-trial-latest", "1"];
    let args = |extra: &[&'static str]| [&policy[..], &counts[..], extra].concat();

    let value = json_out(&baton(&url, &args(&["--dry-run", "--json"])).await);
    assert_eq!(value, json!({"keep": ["c10"], "delete": ["c20", "c30"]}));

    let out = baton(&url, &args(&[])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing to delete without confirmation: pass --yes"));
    assert!(
        stdout(&out).contains("2 checkpoints to delete, 2.0 MiB in total"),
        "{}",
        stdout(&out)
    );

    let out = baton(&url, &args(&["--yes"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("Deleted 2 checkpoints\n"));

    let calls = master.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "gc 1 0 1 dry_run=true",
            "gc 1 0 1 dry_run=true",
            "gc 1 0 1 dry_run=true",
            "gc 1 0 1 dry_run=false"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_come_before_contacting_the_master() {
    let unreachable = "http://127.0.0.1:1";
    let args = [
        "experiment",
        "set",
        "gc-policy",
        "1",
        "--save-experiment-best",
        "1",
        "--save-trial-best",
        "-1",
        "--save-trial-latest",
        "1",
    ];
    let out = baton(unreachable, &args).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: --save-trial-best: must be a non-negative integer (got -1)\n"
    );

    let out = baton(unreachable, &["experiment", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));

    let out = baton(unreachable, &["agent", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the Baton master at http://127.0.0.1:1: "),
        "{err}"
    );
    assert!(err.contains("(set --master or BATON_MASTER)"), "{err}");
}
