//! Attacks on the master through its public surfaces: secrets in responses and logs, files
//! planted in checkpoints.

use std::time::Duration;

use baton_cluster_tests::{TestCluster, TestStorage, wait_until};
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

/// A completed single-trial experiment on shared_fs; returns its final checkpoint's uuid.
fn completed_checkpoint(cluster: &TestCluster) -> String {
    let config =
        baton_cluster_tests::example_config("linreg", "single.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(
        &config,
        &baton_cluster_tests::repo_root().join("examples/linreg"),
    );
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    cluster.trial(cluster.first_trial(id))["latest_checkpoint"]
        .as_str()
        .expect("a checkpoint")
        .to_string()
}

#[test]
fn a_download_through_the_master_never_follows_a_planted_link_or_serves_changed_bytes() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let host_secret = cluster.dir.path().join("host-secret");
    std::fs::write(
        &host_secret,
        "root:$6$planted-host-secret:19000:0:99999:7:::\n",
    )
    .unwrap();
    let uuid = completed_checkpoint(&cluster);
    let checkpoint_dir = cluster.storage().join(&uuid);

    let good = cluster.dir.path().join("good");
    cluster.cli_ok(&[
        "checkpoint",
        "download",
        &uuid,
        "--via-master",
        "-o",
        good.to_str().unwrap(),
    ]);
    assert!(good.join("weights.json").is_file());

    // The trial (which owns its directory on shared_fs) swaps a file for a link to a host file
    // and rewrites metadata.json to match the host file.
    plant_link_with_matching_metadata(&checkpoint_dir, &host_secret);
    let weights = checkpoint_dir.join("weights.json");
    let direct = cluster.dir.path().join("direct");
    let output = cluster.cli(&[
        "checkpoint",
        "download",
        &uuid,
        "-o",
        direct.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_no_secret_under(&direct, "planted-host-secret");

    let target = cluster.dir.path().join("attacked");
    let output = download_via_master(&cluster, &uuid, &target);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("symbolic link"),
        "the error names the cause: {stderr}"
    );
    assert_no_secret_under(&target, "planted-host-secret");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("planted-host-secret"));

    // Same size, other bytes: the stream ends with an error, and nothing is written.
    std::fs::remove_file(&weights).unwrap();
    let original = std::fs::read(good.join("weights.json")).unwrap();
    let mut changed = original.clone();
    changed[1] ^= 1;
    std::fs::write(&weights, &changed).unwrap();
    let target = cluster.dir.path().join("changed");
    let output = download_via_master(&cluster, &uuid, &target);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
    assert!(
        !target.join("weights.json").exists(),
        "no unverified file is kept"
    );
}

/// Swaps the checkpoint's `weights.json` for a link to `host_file` and rewrites its
/// `metadata.json` to match, as a trial owning its shared_fs directory could; returns the
/// original bytes.
fn plant_link_with_matching_metadata(
    checkpoint_dir: &std::path::Path,
    host_file: &std::path::Path,
) -> Vec<u8> {
    let weights = checkpoint_dir.join("weights.json");
    let original = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();
    std::os::unix::fs::symlink(host_file, &weights).unwrap();
    let manifest_path = checkpoint_dir.join("metadata.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let host_bytes = std::fs::read(host_file).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["path"] == "weights.json" {
            file["size"] = host_bytes.len().into();
            file["blake3"] = blake3::hash(&host_bytes).to_hex().to_string().into();
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    original
}

#[test]
fn a_restore_follows_no_planted_link_and_trusts_only_the_master_s_record() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let host_secret = cluster.dir.path().join("host-secret");
    std::fs::write(&host_secret, "planted-host-secret\n").unwrap();
    let config = baton_cluster_tests::linreg::slow_single(
        &cluster,
        "0.03",
        &[("max_restarts: 3", "max_restarts: 50")],
    );
    let id = cluster.create_experiment(
        &config,
        &baton_cluster_tests::repo_root().join("examples/linreg"),
    );
    let id_text = id.to_string();
    let trial_id = cluster.first_trial(id);
    let minute = Duration::from_secs(60);
    cluster.wait_for_trial(trial_id, "training", minute, |t| {
        t["steps_completed"].as_u64() > Some(5)
    });
    cluster.cli_ok(&["experiment", "pause", &id_text]);
    let trial = cluster.wait_for_trial(trial_id, "suspend on pause", minute, |t| {
        t["state"] == "PAUSED"
    });
    let uuid = trial["latest_checkpoint"].as_str().unwrap().to_string();
    let checkpoint_dir = cluster.storage().join(&uuid);
    let original = plant_link_with_matching_metadata(&checkpoint_dir, &host_secret);

    cluster.cli_ok(&["experiment", "activate", &id_text]);
    let logs_of_trial = || cluster.cli_ok(&["trial", "logs", &trial_id.to_string()]);
    wait_until("the restore to be refused", minute, || {
        logs_of_trial().contains("cannot restore checkpoint")
    });
    cluster.cli_ok(&["experiment", "pause", &id_text]);
    let logs = logs_of_trial();
    let refusal = logs
        .lines()
        .find(|l| l.contains("cannot restore checkpoint"))
        .unwrap();
    assert!(refusal.contains("symbolic link"), "{refusal}");
    assert_no_secret_under(&cluster.dir.path().join("agents"), "planted-host-secret");

    // The file is back, metadata.json still lies about it: the restore goes by the master's
    // record and the trial completes with the same weights as an uninterrupted run.
    cluster.wait_for_trial(trial_id, "paused again", minute, |t| t["state"] == "PAUSED");
    std::fs::remove_file(checkpoint_dir.join("weights.json")).unwrap();
    std::fs::write(checkpoint_dir.join("weights.json"), original).unwrap();
    cluster.cli_ok(&["experiment", "activate", &id_text]);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let (reference, _) = baton_cluster_tests::linreg::reference_run(&cluster);
    assert_eq!(cluster.final_weights(id, 200), reference);
}

/// `baton checkpoint download UUID --via-master -o TARGET`.
fn download_via_master(
    cluster: &TestCluster,
    uuid: &str,
    target: &std::path::Path,
) -> std::process::Output {
    cluster.cli(&[
        "checkpoint",
        "download",
        uuid,
        "--via-master",
        "-o",
        target.to_str().unwrap(),
    ])
}

fn assert_no_secret_under(dir: &std::path::Path, secret: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            assert_no_secret_under(&path, secret);
        } else {
            let content = std::fs::read(&path).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&content).contains(secret),
                "{} holds the host's secret",
                path.display()
            );
        }
    }
}

#[test]
fn a_second_agent_with_a_live_agent_s_id_is_refused_and_the_first_keeps_its_session() {
    let mut cluster = TestCluster::start(&["a1"], &[]);
    cluster.start_agent_named("impostor", "a1", &[]);
    std::thread::sleep(Duration::from_secs(4));
    let master_log = std::fs::read_to_string(cluster.dir.path().join("logs/master.log")).unwrap();
    let refusals: Vec<&str> = master_log
        .lines()
        .filter(|l| l.contains("agent refused"))
        .collect();
    assert_eq!(
        refusals.len(),
        1,
        "the impostor retried but is logged once a minute:\n{master_log}"
    );
    assert!(
        refusals[0].contains("already has a live session") && refusals[0].contains("a1"),
        "{}",
        refusals[0]
    );
    let connected = master_log
        .lines()
        .filter(|l| l.contains("agent connected") && l.contains("a1"))
        .count();
    assert_eq!(
        connected, 1,
        "the first agent's session never flapped:\n{master_log}"
    );
    let impostor_log =
        std::fs::read_to_string(cluster.dir.path().join("logs/agent-impostor.log")).unwrap();
    assert!(
        impostor_log.contains("agent id \\\"a1\\\" already has a live session")
            || impostor_log.contains("agent id \"a1\" already has a live session"),
        "the impostor is told why:\n{impostor_log}"
    );
    let agents = cluster.json(&["agent", "list"]);
    assert_eq!(agents.as_array().unwrap().len(), 1, "{agents:#}");
    assert_eq!(agents[0]["connected"], true);
}

#[test]
fn an_agent_with_its_own_token_cannot_be_impersonated_with_the_cluster_token_or_another_s() {
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.yaml");
    std::fs::write(
        &auth_file,
        format!(
            "tokens:\n  - {{name: alice, role: admin, sha256: {}}}\nagents:\n  - {{id: gpu-1, sha256: {}}}\n",
            sha256_hex("alice-admin-token"),
            sha256_hex("gpu-1-secret")
        ),
    )
    .unwrap();
    let auth = auth_file.to_str().unwrap();
    let mut cluster = TestCluster::start(&[], &["--auth-file", auth, "--cluster-token", "shared"]);
    cluster.token = Some("alice-admin-token".into());
    let url = cluster.url.clone();
    cluster.start_agent_with("gpu-1", 1, &url, &["--cluster-token", "gpu-1-secret"]);
    cluster.start_agent_with("gpu-3", 1, &url, &["--cluster-token", "shared"]);
    cluster.wait_for_agents(2);
    // A host that holds only the cluster token, and one that stole gpu-1's token.
    cluster.start_agent_named("shared-as-gpu-1", "gpu-1", &["--cluster-token", "shared"]);
    cluster.start_agent_named(
        "stolen-as-gpu-2",
        "gpu-2",
        &["--cluster-token", "gpu-1-secret"],
    );
    let log_of = |name: &str| {
        std::fs::read_to_string(cluster.dir.path().join(format!("logs/agent-{name}.log"))).unwrap()
    };
    wait_until(
        "both impostors to be told why",
        Duration::from_secs(20),
        || {
            log_of("shared-as-gpu-1").contains("not its own")
                && log_of("stolen-as-gpu-2").contains("wrong cluster token")
        },
    );
    let agents = cluster.json(&["agent", "list"]);
    let ids: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpu-1", "gpu-3"], "{agents:#}");
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["connected"] == true)
    );
    let master_log = std::fs::read_to_string(cluster.dir.path().join("logs/master.log")).unwrap();
    let refusals = master_log
        .lines()
        .filter(|l| l.contains("agent refused"))
        .count();
    assert_eq!(
        refusals, 1,
        "both impostors retry from one host, which is logged once a minute:\n{master_log}"
    );
}

#[test]
fn hostile_configs_are_refused_with_their_limit_and_never_stall_the_cluster() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let context = baton_cluster_tests::repo_root().join("examples/linreg");
    let write = |name: &str, text: String| {
        let path = cluster.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let nested = write(
        "nested.yaml",
        format!(
            "name: x\nentrypoint: python3 train.py\nhyperparameters:\n  a: {{type: categorical, vals: {}{}}}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let huge = write(
        "huge.yaml",
        format!("name: {}\n", "x".repeat(2 * 1024 * 1024)),
    );
    let values: Vec<String> = (0..120_000).map(|i| i.to_string()).collect();
    let wide = write(
        "wide.yaml",
        format!(
            "name: wide\nentrypoint: python3 train.py\nhyperparameters:\n  a: {{type: categorical, vals: [{}]}}\n\
             searcher: {{name: grid, metric: loss, max_length: 10}}\ncheckpoint_storage: {{type: shared_fs, host_path: {}}}\n",
            values.join(", "),
            cluster.storage().display()
        ),
    );
    for (path, expected) in [
        (&nested, "nests collections"),
        (&huge, "the limit is 1048576 bytes (1 MiB)"),
        (&wide, "the grid has 120000 combinations"),
    ] {
        let output = cluster.cli(&[
            "experiment",
            "create",
            path.to_str().unwrap(),
            context.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }

    // Several hostile requests at once: other calls keep their normal pace, sessions stay up.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let slowest = std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for path in [&nested, &wide] {
                        let _ = cluster.cli(&[
                            "experiment",
                            "create",
                            path.to_str().unwrap(),
                            context.to_str().unwrap(),
                        ]);
                    }
                }
            });
        }
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let begun = std::time::Instant::now();
            let agents = cluster.json(&["agent", "list"]);
            slowest = slowest.max(begun.elapsed());
            assert_eq!(agents[0]["connected"], true, "the agent's session stays up");
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        slowest
    });
    eprintln!("slowest agent list during hostile configs: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(3),
        "agent list stalled for {slowest:?} behind hostile configs"
    );
    let listed = cluster.json(&["experiment", "list"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "nothing was created: {listed:#}"
    );
    let master_log = std::fs::read_to_string(cluster.dir.path().join("logs/master.log")).unwrap();
    assert!(!master_log.contains("agent disconnected"), "{master_log}");
}

const PLANTING_TRIAL: &str = r#"
import os
import baton

with baton.init() as ctx:
    for kind in ["hardlink", "symlink", "fifo"]:
        try:
            with ctx.checkpoint(1) as path:
                planted = os.path.join(path, "planted")
                if kind == "hardlink":
                    os.link(ctx.hparams["target"], planted)
                elif kind == "symlink":
                    os.symlink(ctx.hparams["target"], planted)
                else:
                    os.mkfifo(planted)
            print(f"{kind}: accepted", flush=True)
        except baton.HarnessError as e:
            print(f"{kind}: refused: {e}", flush=True)
"#;

#[test]
fn a_trial_cannot_commit_links_or_special_files_in_its_checkpoint() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let target = cluster.dir.path().join("host-file");
    std::fs::write(&target, "host data").unwrap();
    let context = cluster.dir.path().join("planting");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("plant.py"), PLANTING_TRIAL).unwrap();
    let config = baton_cluster_tests::example_config(
        "linreg",
        "single.yaml",
        &cluster.storage(),
        &[
            ("python3 train.py", "python3 plant.py"),
            (
                "  learning_rate: 0.05\n",
                &format!("  target: {}\n", target.display()),
            ),
        ],
    );
    let id = cluster.create_experiment(&config, &context);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let logs = cluster.cli_ok(&["trial", "logs", &cluster.first_trial(id).to_string()]);
    for (kind, reason) in [
        ("hardlink", "is a hard link"),
        ("symlink", "is a symlink"),
        ("fifo", "is not a regular file"),
    ] {
        let line = logs
            .lines()
            .find(|l| l.starts_with(&format!("{kind}:")))
            .unwrap_or_else(|| panic!("no outcome for {kind}:\n{logs}"));
        assert!(line.contains("refused") && line.contains(reason), "{line}");
    }
    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    assert_eq!(listed, serde_json::json!([]), "nothing was committed");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "host data");
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_admin_api_needs_a_token_and_a_viewer_changes_nothing() {
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.yaml");
    std::fs::write(
        &auth_file,
        format!(
            "tokens:\n  - {{name: alice, role: admin, sha256: {}}}\n  - {{name: bob, role: viewer, sha256: {}}}\n",
            sha256_hex("alice-admin-token"),
            sha256_hex("bob-viewer-token")
        ),
    )
    .unwrap();
    let mut cluster = TestCluster::start(&[], &["--auth-file", auth_file.to_str().unwrap()]);
    cluster.token = Some("alice-admin-token".into());
    cluster.start_agent("a1", 1);
    cluster.wait_for_agents(1);
    let config =
        baton_cluster_tests::example_config("linreg", "single.yaml", &cluster.storage(), &[]);
    let id = cluster.create_experiment(
        &config,
        &baton_cluster_tests::repo_root().join("examples/linreg"),
    );
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let id_text = id.to_string();
    let checkpoint = cluster.json(&["experiment", "list-checkpoints", &id_text])[0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();

    let refuse = |token: Option<&str>, args: &[&str], expected: &str| {
        let mut caller = TestCluster::cli_as(&cluster, token);
        let output = caller(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refuse(None, &["experiment", "list"], "this master needs a token");
    refuse(
        Some("guessed"),
        &["agent", "list"],
        "the token is not known",
    );
    for args in [
        vec!["experiment", "kill", &id_text],
        vec!["agent", "disable", "a1"],
        vec!["checkpoint", "pin", &checkpoint],
        vec!["checkpoint", "unpin", &checkpoint],
        vec![
            "experiment",
            "set",
            "gc-policy",
            &id_text,
            "--save-experiment-best",
            "0",
            "--save-trial-best",
            "0",
            "--save-trial-latest",
            "0",
            "--yes",
        ],
    ] {
        refuse(Some("bob-viewer-token"), &args, "is a viewer");
    }
    let mut bob = TestCluster::cli_as(&cluster, Some("bob-viewer-token"));
    for args in [
        vec!["experiment", "list"],
        vec!["experiment", "describe", &id_text],
        vec!["agent", "list"],
        vec![
            "experiment",
            "set",
            "gc-policy",
            &id_text,
            "--save-experiment-best",
            "0",
            "--save-trial-best",
            "0",
            "--save-trial-latest",
            "0",
            "--dry-run",
        ],
    ] {
        let output = bob(&args);
        assert!(
            output.status.success(),
            "a viewer reads: {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Nothing a refused call asked for happened.
    assert_eq!(cluster.json(&["agent", "list"])[0]["state"], "enabled");
    let described = cluster.json(&["checkpoint", "describe", &checkpoint]);
    assert_eq!(described["pinned"], false);
    assert!(
        !cluster
            .json(&["experiment", "list-checkpoints", &id_text])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The token file under the user's config directory is used when no token is given.
    let config_dir = cluster.dir.path().join("config/baton");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("token"), "alice-admin-token\n").unwrap();
    let mut from_file = TestCluster::cli_as(&cluster, None);
    assert!(
        from_file(&["agent", "disable", "a1", "--drain"])
            .status
            .success()
    );
    let master_log = without_colors(
        &std::fs::read_to_string(cluster.dir.path().join("logs/master.log")).unwrap(),
    );
    assert!(
        master_log.lines().any(|l| l.contains("admin call")
            && l.contains("caller=alice")
            && l.contains("rpc=\"DisableAgent\"")
            && l.contains("peer=127.0.0.1")),
        "the master logs who changed what:\n{master_log}"
    );

    // Health stays open.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let serving = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(cluster.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status)
    });
    assert_eq!(serving.unwrap(), 1, "health answers without a token");
}

#[test]
fn an_open_admin_api_beyond_loopback_needs_insecure_and_then_warns() {
    let dir = tempfile::tempdir().unwrap();
    let refused = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton-master"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("refusing to serve an open admin API on 0.0.0.0:0")
            && stderr.contains("--auth-file"),
        "{stderr}"
    );

    let address_file = dir.path().join("addr");
    let mut master =
        std::process::Command::new(baton_cluster_tests::bin_dir().join("baton-master"))
            .args(["--listen", "0.0.0.0:0", "--insecure", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--address-file")
            .arg(&address_file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    wait_until(
        "the insecure master to listen",
        Duration::from_secs(20),
        || address_file.is_file(),
    );
    let port = std::fs::read_to_string(&address_file)
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let listed = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton"))
        .args([
            "--master",
            &format!("http://127.0.0.1:{port}"),
            "agent",
            "list",
        ])
        .env_remove("BATON_TOKEN")
        .output()
        .unwrap();
    let _ = master.kill();
    let _ = master.wait();
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the master serves an open admin API"),
        "{stderr}"
    );
}

/// Log text without terminal colour codes.
fn without_colors(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
