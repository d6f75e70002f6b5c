//! Bad and hostile requests through every public surface (harness socket, raw gRPC, CLI): each
//! gets its clear error and changes nothing.

use std::time::Duration;

use baton_cluster_tests::{TestCluster, example_config};
use baton_common::proto::admin_service_client::AdminServiceClient;
use baton_common::proto::agent_service_client::AgentServiceClient;
use baton_common::proto::{
    AgentMessage, AgentRef, CheckpointRef, Context, ContextFile, CreateExperimentRequest,
    DisableAgentRequest, ExperimentRef, Hello, ListCheckpointsRequest, LogLines, MoveTrialRequest,
    PROTOCOL_VERSION, PinCheckpointRequest, SetGcPolicyRequest, TrialLogsRequest, TrialRef,
    UnpinCheckpointRequest, agent_message,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tonic::{Code, Status};

/// A trial that speaks the harness protocol by hand: sends `init`, then each line of
/// `requests.json` as it is (some of them built here to a size), printing each reply; then one
/// good report, then a flood of output.
const RAW_TRIAL: &str = r#"
import json, os, socket, sys

sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["BATON_HARNESS_SOCKET"])
reader = sock.makefile("rb")

def send(raw: bytes) -> str:
    sock.sendall(raw + b"\n")
    return reader.readline().decode().strip()

print("init:", send(b'{"op":"init"}'), flush=True)
for index, entry in enumerate(json.load(open("requests.json"))):
    if isinstance(entry, dict):
        raw = (entry["prefix"] + entry["fill"] * entry["times"] + entry["suffix"]).encode()
    elif entry == "INVALID_UTF8":
        raw = b'{"op":"init","x":"\xff\xfe"}'
    else:
        raw = entry.encode()
    print(f"reply {index}:", send(raw), flush=True)
print("good:", send(b'{"op":"report_training","step":1,"metrics":{"loss":1.0}}'), flush=True)
extra = [socket.socket(socket.AF_UNIX) for _ in range(9)]
for s in extra:
    s.connect(os.environ["BATON_HARNESS_SOCKET"])
print("ninth extra connection:", extra[-1].makefile("rb").readline().decode().strip(), flush=True)
for line in range(50000):
    sys.stdout.write(f"flood {line}\n")
sys.stdout.flush()
"#;

/// A request line of `prefix`, `fill` repeated `times`, `suffix`.
fn built(prefix: &str, fill: &str, times: usize, suffix: &str) -> Value {
    json!({"prefix": prefix, "fill": fill, "times": times, "suffix": suffix})
}

/// Harness requests and the error each must get.
fn harness_table() -> Vec<(Value, &'static str)> {
    let many_metrics = format!(
        "{{\"op\":\"report_training\",\"step\":1,\"metrics\":{{{}}}}}",
        (0..1001)
            .map(|i| format!("\"m{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let line = |text: &str| Value::from(text);
    vec![
        (line("not json"), "not valid JSON"),
        (line("[1, 2]"), "must be a JSON object"),
        (line("{}"), "no string field \\\"op\\\""),
        (line(r#"{"op": 7}"#), "no string field \\\"op\\\""),
        (line(r#"{"op":"fly"}"#), "unknown op \\\"fly\\\""),
        (line(r#"{"op":"report_training"}"#), "\\\"step\\\" must be"),
        (
            line(r#"{"op":"report_training","step":-1,"metrics":{}}"#),
            "non-negative integer",
        ),
        (
            line(r#"{"op":"report_training","step":1.5,"metrics":{}}"#),
            "non-negative integer",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":[]}"#),
            "\\\"metrics\\\" must be a JSON object",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":{"loss":"low"}}"#),
            "metric \\\"loss\\\" must be a number",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":{"loss":null}}"#),
            "must be a number",
        ),
        (
            line(r#"{"op":"report_training","step":1,"metrics":{"loss":{"a":1}}}"#),
            "must be a number",
        ),
        (line(&many_metrics), "at most 1000 metrics per report"),
        (
            built(
                r#"{"op":"report_training","step":1,"metrics":{""#,
                "n",
                300,
                r#"":1}}"#,
            ),
            "must be 1 to 256 bytes long",
        ),
        (
            line(r#"{"op":"report_training","step":0,"metrics":{}}"#),
            "report steps in increasing order",
        ),
        (
            line(r#"{"op":"report_validation","step":1}"#),
            "\\\"metrics\\\" must be",
        ),
        (line(r#"{"op":"checkpoint_start"}"#), "\\\"step\\\" must be"),
        (
            line(r#"{"op":"checkpoint_start","step":"1"}"#),
            "\\\"step\\\" must be",
        ),
        (
            line(r#"{"op":"checkpoint_end"}"#),
            "\\\"uuid\\\" must be a string",
        ),
        (
            line(r#"{"op":"checkpoint_end","uuid":"not-open"}"#),
            "is not open in this allocation",
        ),
        (
            line(r#"{"op":"checkpoint_end","uuid":"../../../etc","step":1}"#),
            "is not open in this allocation",
        ),
        (
            line(
                r#"{"op":"checkpoint_end","uuid":"0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11","step":1}"#,
            ),
            "is not open in this allocation",
        ),
        (
            line(r#"{"op":"checkpoint_end","uuid":"x","metadata":[]}"#),
            "\\\"metadata\\\" must be a JSON object",
        ),
        (
            built(
                r#"{"op":"checkpoint_end","uuid":"x","metadata":{"a":""#,
                "x",
                70_000,
                r#""}}"#,
            ),
            "at most 65536",
        ),
        (
            line(r#"{"op":"checkpoint_abort"}"#),
            "\\\"uuid\\\" must be a string",
        ),
        (
            built("", "x", 2 * 1024 * 1024, ""),
            "longer than 1048576 bytes",
        ),
        (line("INVALID_UTF8"), "not valid UTF-8"),
    ]
}

#[test]
fn hostile_harness_requests_get_their_error_and_a_flood_of_output_is_cut_to_the_budget() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let context = cluster.dir.path().join("raw-trial");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("raw.py"), RAW_TRIAL).unwrap();
    let table = harness_table();
    let requests: Vec<&Value> = table.iter().map(|(request, _)| request).collect();
    std::fs::write(
        context.join("requests.json"),
        serde_json::to_vec(&requests).unwrap(),
    )
    .unwrap();
    let config = example_config(
        "linreg",
        "single.yaml",
        &cluster.storage(),
        &[("python3 train.py", "python3 raw.py")],
    );
    let id = cluster.create_experiment(&config, &context);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let logs = cluster.cli_ok(&["trial", "logs", &cluster.first_trial(id).to_string()]);
    for (index, (request, expected)) in table.iter().enumerate() {
        let prefix = format!("reply {index}: ");
        let reply = logs
            .lines()
            .find_map(|l| l.split_once(&prefix).map(|(_, reply)| reply))
            .unwrap_or_else(|| panic!("no reply to request {index}:\n{logs}"));
        assert!(
            reply.contains("\"ok\":false") && reply.contains(expected),
            "request {index} ({request}) got {reply}, not {expected:?}"
        );
    }
    assert!(
        logs.lines()
            .any(|l| l.contains("good:") && l.contains("\"ok\":true")),
        "the connection stays usable after every refusal:\n{logs}"
    );
    assert!(
        logs.lines().any(|l| l.contains("ninth extra connection:")
            && l.contains("more than 8 harness connections")),
        "{logs}"
    );
    let shipped = logs.lines().filter(|l| l.contains("flood ")).count() as u64;
    let dropped: u64 = logs
        .lines()
        .filter_map(|l| {
            l.split_once(" lines of output dropped")?
                .0
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!("flood of 50000 lines: {shipped} shipped, {dropped} dropped");
    assert!(
        shipped < 50_000 && dropped > 0,
        "shipped {shipped}, dropped {dropped}:\n{}",
        &logs[logs.len().saturating_sub(2000)..]
    );
    assert_eq!(
        shipped + dropped,
        50_000,
        "every line is shipped or counted as dropped"
    );
    // Nothing the refused requests named was created.
    let checkpoints = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    assert_eq!(checkpoints, json!([]));
}

/// A config that is valid but for `change` applied to the linreg example.
fn linreg_config_with(cluster: &TestCluster, from: &str, to: &str) -> String {
    example_config("linreg", "single.yaml", &cluster.storage(), &[(from, to)])
}

/// A context holding one file at `path`.
fn context_with(path: &str) -> Option<Context> {
    Some(Context {
        files: vec![ContextFile {
            path: path.into(),
            content: b"print(1)\n".to_vec(),
            mode: 0o644,
        }],
    })
}

/// What the cluster looks like to a reader, without what changes by itself (times, heartbeats).
fn cluster_state(cluster: &TestCluster) -> Value {
    let experiments = cluster.json(&["experiment", "list"]);
    let agents: Vec<Value> = cluster
        .json(&["agent", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!({"id": a["id"], "state": a["state"]}))
        .collect();
    json!({"experiments": experiments, "agents": agents})
}

#[test]
fn hostile_grpc_requests_get_their_code_and_change_nothing() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let url = cluster.url.clone();
    let done = cluster.create_experiment(
        &linreg_config_with(&cluster, "max_length: 100", "max_length: 20"),
        &baton_cluster_tests::repo_root().join("examples/linreg"),
    );
    cluster.wait_for_experiment(done, "COMPLETED", Duration::from_secs(60));
    let trial = cluster.first_trial(done);
    let checkpoint =
        cluster.json(&["experiment", "list-checkpoints", &done.to_string()])[0]["uuid"]
            .as_str()
            .unwrap()
            .to_string();
    let before = cluster_state(&cluster);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let create = |config: String, context: Option<Context>| CreateExperimentRequest {
        config_yaml: config,
        context,
    };
    let good_context = context_with("train.py");
    let admin_path = |rpc: &str| format!("/baton.v1.AdminService/{rpc}");
    let mut raw: Vec<(String, Vec<u8>, Code, &str)> = vec![
        (
            admin_path("KillExperiment"),
            vec![0xff, 0xff, 0xff],
            Code::InvalidArgument,
            "failed to decode",
        ),
        (
            admin_path("CreateExperiment"),
            vec![0x0a, 0x10, b'a'],
            Code::InvalidArgument,
            "failed to decode",
        ),
        (
            admin_path("DescribeCheckpoint"),
            vec![0x0f],
            Code::InvalidArgument,
            "failed to decode",
        ),
        (
            admin_path("DescribeCheckpoint"),
            vec![0x0a, 0x02, 0xff, 0xfe],
            Code::InvalidArgument,
            "failed to decode",
        ),
        (
            admin_path("DisableAgent"),
            vec![
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            Code::InvalidArgument,
            "failed to decode",
        ),
        (
            admin_path("CreateExperiment"),
            vec![0u8; 65 * 1024 * 1024],
            Code::ResourceExhausted,
            "message length too large",
        ),
        (admin_path("NoSuchCall"), vec![], Code::Unimplemented, ""),
        (
            "/baton.v1.AgentService/Session".into(),
            vec![0xff, 0x01],
            Code::InvalidArgument,
            "failed to decode",
        ),
    ];
    let mut outcomes = Vec::new();
    for (path, body, code, expected) in raw.drain(..) {
        let path: &'static str = Box::leak(path.into_boxed_str());
        let status = runtime.block_on(baton_cluster_tests::raw_unary(&url, path, body));
        outcomes.push((path.to_string(), status, code, expected));
    }

    let typed: Vec<(&str, Code, &str)> = vec![
        ("create: empty config", Code::InvalidArgument, ""),
        ("create: broken YAML", Code::InvalidArgument, "config"),
        ("create: no entrypoint", Code::InvalidArgument, "entrypoint"),
        (
            "create: unknown searcher",
            Code::InvalidArgument,
            "searcher",
        ),
        (
            "create: negative max_length",
            Code::InvalidArgument,
            "max_length",
        ),
        ("create: unknown storage", Code::InvalidArgument, "ftp"),
        ("create: context escaping", Code::InvalidArgument, ".."),
        (
            "create: absolute context path",
            Code::InvalidArgument,
            "/etc/cron.d/x",
        ),
        ("create: unknown field", Code::InvalidArgument, "entrypont"),
        ("describe experiment 999", Code::NotFound, "experiment 999"),
        ("kill experiment 999", Code::NotFound, "experiment 999"),
        (
            "kill a completed experiment",
            Code::FailedPrecondition,
            "already COMPLETED",
        ),
        ("pause experiment 999", Code::NotFound, "experiment 999"),
        (
            "pause a completed experiment",
            Code::FailedPrecondition,
            "COMPLETED",
        ),
        (
            "activate a completed experiment",
            Code::FailedPrecondition,
            "COMPLETED",
        ),
        ("delete experiment 999", Code::NotFound, "experiment 999"),
        ("list checkpoints of 999", Code::NotFound, "experiment 999"),
        ("gc policy of 999", Code::NotFound, "experiment 999"),
        (
            "gc policy with negative counts",
            Code::InvalidArgument,
            "save_trial_best",
        ),
        ("list trials of 999", Code::NotFound, "experiment 999"),
        ("describe trial 999", Code::NotFound, "trial 999"),
        ("logs of trial 999", Code::NotFound, "trial 999"),
        ("move trial 999", Code::NotFound, "trial 999"),
        (
            "move a completed trial",
            Code::FailedPrecondition,
            "COMPLETED",
        ),
        ("move to an unknown agent", Code::NotFound, "nowhere"),
        (
            "describe checkpoint not-a-uuid",
            Code::NotFound,
            "not-a-uuid",
        ),
        (
            "describe checkpoint without a reference",
            Code::InvalidArgument,
            "uuid",
        ),
        ("download an unknown checkpoint", Code::NotFound, "0e5f7c1e"),
        (
            "pin an unknown checkpoint",
            Code::NotFound,
            "checkpoint 0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11 does not exist",
        ),
        (
            "pin a path as a checkpoint",
            Code::InvalidArgument,
            "\"../../etc\" is not a checkpoint uuid",
        ),
        (
            "pin a huge uuid",
            Code::InvalidArgument,
            "is not a checkpoint uuid",
        ),
        (
            "pin with a huge note",
            Code::InvalidArgument,
            "note: at most 1024 bytes (got 1048576)",
        ),
        (
            "unpin an unknown checkpoint",
            Code::NotFound,
            "checkpoint 0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11 does not exist",
        ),
        (
            "unpin without a uuid",
            Code::InvalidArgument,
            "\"\" is not a checkpoint uuid",
        ),
        ("disable an unknown agent", Code::NotFound, "nowhere"),
        ("enable an unknown agent", Code::NotFound, "nowhere"),
        (
            "agent session without hello",
            Code::InvalidArgument,
            "must be Hello",
        ),
        (
            "agent of another protocol",
            Code::FailedPrecondition,
            "protocol version",
        ),
        (
            "agent without an id",
            Code::InvalidArgument,
            "agent id must not be empty",
        ),
    ];
    let statuses = runtime.block_on(async {
        let mut admin = AdminServiceClient::connect(url.clone()).await.unwrap();
        let mut statuses = Vec::new();
        let refs = |id: u64| ExperimentRef { id };
        for (name, _, _) in &typed {
            let status = match *name {
                "create: empty config" => admin
                    .create_experiment(create(String::new(), good_context.clone()))
                    .await
                    .err(),
                "create: broken YAML" => admin
                    .create_experiment(create("name: [unclosed".into(), good_context.clone()))
                    .await
                    .err(),
                "create: no entrypoint" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "entrypoint: python3 train.py\n", ""),
                        good_context.clone(),
                    ))
                    .await
                    .err(),
                "create: unknown searcher" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "name: single", "name: clairvoyant"),
                        good_context.clone(),
                    ))
                    .await
                    .err(),
                "create: negative max_length" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "max_length: 100", "max_length: -5"),
                        good_context.clone(),
                    ))
                    .await
                    .err(),
                "create: unknown storage" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "type: shared_fs", "type: ftp"),
                        good_context.clone(),
                    ))
                    .await
                    .err(),
                "create: context escaping" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "", ""),
                        context_with("../escape.py"),
                    ))
                    .await
                    .err(),
                "create: absolute context path" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "", ""),
                        context_with("/etc/cron.d/x"),
                    ))
                    .await
                    .err(),
                "create: unknown field" => admin
                    .create_experiment(create(
                        linreg_config_with(&cluster, "entrypoint:", "entrypont:"),
                        good_context.clone(),
                    ))
                    .await
                    .err(),
                "describe experiment 999" => admin.describe_experiment(refs(999)).await.err(),
                "kill experiment 999" => admin.kill_experiment(refs(999)).await.err(),
                "kill a completed experiment" => admin.kill_experiment(refs(done)).await.err(),
                "pause experiment 999" => admin.pause_experiment(refs(999)).await.err(),
                "pause a completed experiment" => admin.pause_experiment(refs(done)).await.err(),
                "activate a completed experiment" => {
                    admin.activate_experiment(refs(done)).await.err()
                }
                "delete experiment 999" => admin.delete_experiment(refs(999)).await.err(),
                "list checkpoints of 999" => admin
                    .list_checkpoints(ListCheckpointsRequest {
                        experiment_id: 999,
                        all: true,
                    })
                    .await
                    .err(),
                "gc policy of 999" => admin
                    .set_gc_policy(SetGcPolicyRequest {
                        experiment_id: 999,
                        dry_run: true,
                        ..Default::default()
                    })
                    .await
                    .err(),
                "gc policy with negative counts" => admin
                    .set_gc_policy(SetGcPolicyRequest {
                        experiment_id: done,
                        save_trial_best: -1,
                        dry_run: false,
                        ..Default::default()
                    })
                    .await
                    .err(),
                "list trials of 999" => admin.list_trials(refs(999)).await.err(),
                "describe trial 999" => admin.describe_trial(TrialRef { id: 999 }).await.err(),
                "logs of trial 999" => admin
                    .trial_logs(TrialLogsRequest {
                        trial_id: 999,
                        follow: false,
                        tail: None,
                    })
                    .await
                    .err(),
                "move trial 999" => admin
                    .move_trial(MoveTrialRequest {
                        trial_id: 999,
                        to_agent: String::new(),
                    })
                    .await
                    .err(),
                "move a completed trial" => admin
                    .move_trial(MoveTrialRequest {
                        trial_id: trial,
                        to_agent: String::new(),
                    })
                    .await
                    .err(),
                "move to an unknown agent" => admin
                    .move_trial(MoveTrialRequest {
                        trial_id: trial,
                        to_agent: "nowhere".into(),
                    })
                    .await
                    .err(),
                "describe checkpoint not-a-uuid" => admin
                    .describe_checkpoint(CheckpointRef {
                        uuid: "not-a-uuid".into(),
                        ..Default::default()
                    })
                    .await
                    .err(),
                "describe checkpoint without a reference" => admin
                    .describe_checkpoint(CheckpointRef::default())
                    .await
                    .err(),
                "download an unknown checkpoint" => admin
                    .download_checkpoint(CheckpointRef {
                        uuid: "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11".into(),
                        ..Default::default()
                    })
                    .await
                    .err(),
                "pin an unknown checkpoint" => admin
                    .pin_checkpoint(PinCheckpointRequest {
                        uuid: "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11".into(),
                        note: String::new(),
                    })
                    .await
                    .err(),
                "pin a path as a checkpoint" => admin
                    .pin_checkpoint(PinCheckpointRequest {
                        uuid: "../../etc".into(),
                        note: String::new(),
                    })
                    .await
                    .err(),
                "pin a huge uuid" => admin
                    .pin_checkpoint(PinCheckpointRequest {
                        uuid: "x".repeat(1 << 20),
                        note: String::new(),
                    })
                    .await
                    .err(),
                "pin with a huge note" => admin
                    .pin_checkpoint(PinCheckpointRequest {
                        uuid: checkpoint.clone(),
                        note: "n".repeat(1 << 20),
                    })
                    .await
                    .err(),
                "unpin an unknown checkpoint" => admin
                    .unpin_checkpoint(UnpinCheckpointRequest {
                        uuid: "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11".into(),
                    })
                    .await
                    .err(),
                "unpin without a uuid" => admin
                    .unpin_checkpoint(UnpinCheckpointRequest::default())
                    .await
                    .err(),
                "disable an unknown agent" => admin
                    .disable_agent(DisableAgentRequest {
                        id: "nowhere".into(),
                        drain: false,
                    })
                    .await
                    .err(),
                "enable an unknown agent" => admin
                    .enable_agent(AgentRef {
                        id: "nowhere".into(),
                    })
                    .await
                    .err(),
                "agent session without hello" => {
                    agent_session(
                        &url,
                        AgentMessage {
                            body: Some(agent_message::Body::Logs(LogLines::default())),
                        },
                    )
                    .await
                }
                "agent of another protocol" => agent_session(&url, hello(99, "intruder")).await,
                "agent without an id" => agent_session(&url, hello(PROTOCOL_VERSION, "")).await,
                other => panic!("no request for {other}"),
            };
            statuses.push(status);
        }
        statuses
    });
    for ((name, code, expected), status) in typed.iter().zip(statuses) {
        let status = status.unwrap_or_else(|| Status::ok(""));
        outcomes.push((name.to_string(), status, *code, expected));
    }

    let mut wrong = Vec::new();
    for (name, status, code, expected) in &outcomes {
        if status.code() != *code || !status.message().contains(expected) {
            wrong.push(format!(
                "{name}: got {:?} {:?}, expected {code:?} with {expected:?}",
                status.code(),
                status.message()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} requests answered wrongly:\n{}",
        wrong.len(),
        outcomes.len(),
        wrong.join("\n")
    );
    assert_eq!(
        cluster_state(&cluster),
        before,
        "no request changed anything"
    );
    let listed = cluster.json(&["experiment", "list-checkpoints", &done.to_string()]);
    assert_eq!(listed[0]["pinned"], false, "no checkpoint was pinned");
    let agents = cluster.json(&["agent", "list"]);
    assert_eq!(
        agents[0]["connected"], true,
        "the real agent kept its session"
    );
}

/// Opens an agent session whose first message is `first`; the master's refusal, if any.
async fn agent_session(url: &str, first: AgentMessage) -> Option<Status> {
    let mut client = AgentServiceClient::connect(url.to_string()).await.unwrap();
    let outbound = futures::stream::iter(vec![first]).chain(futures::stream::pending());
    match client.session(outbound).await {
        Err(status) => Some(status),
        Ok(response) => {
            let mut inbound = response.into_inner();
            match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
                Ok(Err(status)) => Some(status),
                _ => None,
            }
        }
    }
}

/// A hello from `agent_id` speaking protocol `version`.
fn hello(version: u32, agent_id: &str) -> AgentMessage {
    AgentMessage {
        body: Some(agent_message::Body::Hello(Hello {
            protocol_version: version,
            agent_id: agent_id.into(),
            instance_id: "hostile-test".into(),
            ..Default::default()
        })),
    }
}

#[test]
fn hostile_cli_invocations_exit_with_their_error_and_change_nothing() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let linreg = baton_cluster_tests::repo_root().join("examples/linreg");
    let done = cluster.create_experiment(
        &linreg_config_with(&cluster, "max_length: 100", "max_length: 20"),
        &linreg,
    );
    cluster.wait_for_experiment(done, "COMPLETED", Duration::from_secs(60));
    let uuid = cluster.trial(cluster.first_trial(done))["latest_checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let before = cluster_state(&cluster);
    let dir = cluster.dir.path();
    let good_config = dir.join("good.yaml");
    std::fs::write(&good_config, linreg_config_with(&cluster, "", "")).unwrap();
    let huge_config = dir.join("huge.yaml");
    std::fs::write(
        &huge_config,
        format!("name: {}\n", "x".repeat(2 * 1024 * 1024)),
    )
    .unwrap();
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let (good, huge, file) = (
        good_config.to_str().unwrap(),
        huge_config.to_str().unwrap(),
        a_file.to_str().unwrap(),
    );
    let linreg = linreg.to_str().unwrap();
    let done = done.to_string();
    let table: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["experiment", "create", "/nonexistent.yaml", linreg],
            1,
            "/nonexistent.yaml",
        ),
        (vec!["experiment", "create", linreg, linreg], 1, linreg),
        (
            vec!["experiment", "create", good, "/nonexistent-context"],
            1,
            "/nonexistent-context",
        ),
        (vec!["experiment", "create", huge, linreg], 1, "1 MiB"),
        (vec!["experiment", "kill", "abc"], 2, "invalid value 'abc'"),
        (
            vec!["experiment", "describe", "-1"],
            2,
            "unexpected argument '-1'",
        ),
        (
            vec![
                "experiment",
                "set",
                "gc-policy",
                &done,
                "--save-experiment-best",
                "0",
                "--save-trial-best",
                "-1",
                "--save-trial-latest",
                "0",
                "--yes",
            ],
            2,
            "--save-trial-best",
        ),
        (
            vec!["experiment", "delete", "999", "--yes"],
            1,
            "experiment 999 does not exist",
        ),
        (vec!["experiment", "delete", &done], 1, "pass --yes"),
        (vec!["trial", "move", "999"], 1, "trial 999"),
        (
            vec!["trial", "move", "999", "--to", "nowhere"],
            1,
            "agent \"nowhere\" is not known",
        ),
        (
            vec!["checkpoint", "download", "not-a-uuid"],
            1,
            "not-a-uuid",
        ),
        (
            vec!["checkpoint", "download", &uuid, "-o", file],
            1,
            "already exists and is not a directory",
        ),
        (vec!["agent", "disable", "nowhere"], 1, "nowhere"),
        (
            vec!["experiment", "fly"],
            2,
            "unrecognized subcommand 'fly'",
        ),
    ];
    let mut wrong = Vec::new();
    for (args, code, expected) in &table {
        let output = cluster.cli(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(*code) || !stderr.contains(expected) {
            wrong.push(format!(
                "{args:?}: exit {:?}, {stderr}",
                output.status.code()
            ));
        }
    }
    for (master, expected) in [
        ("ftp://127.0.0.1:1", "must start with http:// or https://"),
        ("http://127.0.0.1:1", "127.0.0.1:1"),
    ] {
        let output = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton"))
            .args(["--master", master, "experiment", "list"])
            .env_remove("BATON_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || !stderr.contains(expected) {
            wrong.push(format!(
                "--master {master}: exit {:?}, {stderr}",
                output.status.code()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} invocations answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        cluster_state(&cluster),
        before,
        "no invocation changed anything"
    );
    assert!(!a_file.with_extension("partial").exists());
    assert_eq!(std::fs::read_to_string(&a_file).unwrap(), "x");
}
