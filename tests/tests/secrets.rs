//! No RPC response, CLI output or log line hands out a storage secret.

use std::time::Duration;

use baton_cluster_tests::{TestCluster, TestStorage};
use baton_common::proto::admin_service_client::AdminServiceClient;
use baton_common::proto::{
    CheckpointRef, ExperimentRef, ListAgentsRequest, ListCheckpointsRequest,
    ListExperimentsRequest, TrialRef,
};
use prost::Message;

const ACCESS_KEY: &str = "AKIA-planted-access-4711";
const SECRET_KEY: &str = "planted-s3cr3t-value-4711";

#[test]
fn storage_secrets_appear_in_no_response_output_or_log() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let storage = TestStorage::s3("secrets");
    let config = storage
        .config("linreg", "single.yaml", &[])
        .replace("access_key: testing", &format!("access_key: {ACCESS_KEY}"))
        .replace("secret_key: testing", &format!("secret_key: {SECRET_KEY}"));
    assert!(config.contains(SECRET_KEY), "the secret is planted");
    let id = cluster.create_experiment(
        &config,
        &baton_cluster_tests::repo_root().join("examples/linreg"),
    );
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let trial = cluster.first_trial(id);

    let mut seen = Vec::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut admin = AdminServiceClient::connect(cluster.url.clone())
            .await
            .unwrap();
        let mut keep = |bytes: Vec<u8>| seen.push(bytes);
        keep(
            admin
                .describe_experiment(ExperimentRef { id })
                .await
                .unwrap()
                .into_inner()
                .encode_to_vec(),
        );
        keep(
            admin
                .list_experiments(ListExperimentsRequest {})
                .await
                .unwrap()
                .into_inner()
                .encode_to_vec(),
        );
        keep(
            admin
                .list_trials(ExperimentRef { id })
                .await
                .unwrap()
                .into_inner()
                .encode_to_vec(),
        );
        keep(
            admin
                .describe_trial(TrialRef { id: trial })
                .await
                .unwrap()
                .into_inner()
                .encode_to_vec(),
        );
        keep(
            admin
                .list_agents(ListAgentsRequest {})
                .await
                .unwrap()
                .into_inner()
                .encode_to_vec(),
        );
        let checkpoints = admin
            .list_checkpoints(ListCheckpointsRequest {
                experiment_id: id,
                all: true,
            })
            .await
            .unwrap()
            .into_inner();
        keep(checkpoints.encode_to_vec());
        for checkpoint in &checkpoints.checkpoints {
            let reference = CheckpointRef {
                uuid: checkpoint.uuid.clone(),
                ..Default::default()
            };
            keep(
                admin
                    .describe_checkpoint(reference)
                    .await
                    .unwrap()
                    .into_inner()
                    .encode_to_vec(),
            );
        }
        let described = admin
            .describe_experiment(ExperimentRef { id })
            .await
            .unwrap()
            .into_inner();
        assert!(
            described.config_yaml.contains("secret_key: <redacted>"),
            "the config is returned with its secrets redacted:\n{}",
            described.config_yaml
        );
    });
    for args in [
        vec!["experiment", "describe", &id.to_string()],
        vec!["experiment", "list"],
        vec!["experiment", "list-checkpoints", &id.to_string(), "--all"],
        vec!["trial", "describe", &trial.to_string()],
        vec!["trial", "logs", &trial.to_string()],
        vec!["agent", "list"],
    ] {
        seen.push(cluster.cli_ok(&args).into_bytes());
        let mut json = args.clone();
        json.push("--json");
        seen.push(cluster.cli_ok(&json).into_bytes());
    }
    seen.push(cluster.logs().into_bytes());
    for entry in std::fs::read_dir(cluster.dir.path().join("logs"))
        .unwrap()
        .flatten()
    {
        seen.push(std::fs::read(entry.path()).unwrap());
    }
    for bytes in &seen {
        for secret in [ACCESS_KEY, SECRET_KEY] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} leaked in: {}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
