//! A real master and agents run the linreg example: completion, storage, download, restarts.

use std::collections::BTreeSet;
use std::time::Duration;

use baton_cluster_tests::{
    TestCluster, TestStorage, example_config, read_weights, repo_root, wait_until,
};
use serde_json::Value;

const SLOW_STEPS: (&str, &str) = (
    "  batch_size: 16\n",
    "  batch_size: 16\n  step_seconds: 0.04\n",
);

#[test]
fn grid_experiment_completes_with_verified_checkpoints_and_survives_a_master_restart() {
    let mut cluster = TestCluster::start(&["a1", "a2"], &[]);
    let storage = TestStorage::SharedFs(cluster.storage());
    run_grid_and_check_storage(&cluster, &storage);
    let id = 1;
    let before = cluster.json(&["experiment", "describe", &id.to_string()]);
    let checkpoints_before = cluster.json(&["experiment", "list-checkpoints", &id.to_string()]);
    cluster.kill_master();
    cluster.start_master();
    assert_eq!(
        cluster.json(&["experiment", "describe", &id.to_string()]),
        before
    );
    assert_eq!(
        cluster.json(&["experiment", "list-checkpoints", &id.to_string()]),
        checkpoints_before
    );
}

#[test]
fn grid_experiment_completes_with_s3_checkpoint_storage_then_gc_and_sweep_clean_it() {
    grid_then_gc_and_sweep(&TestStorage::s3("grid"));
}

#[test]
fn grid_experiment_completes_with_azure_checkpoint_storage_then_gc_and_sweep_clean_it() {
    grid_then_gc_and_sweep(&TestStorage::azure("grid"));
}

/// Runs the grid on object storage, then checks that GC (on a tightened policy) and the sweep of
/// an abandoned upload leave only the best checkpoint.
fn grid_then_gc_and_sweep(storage: &TestStorage) {
    let cluster = TestCluster::start(
        &["a1", "a2"],
        &["--sweep-interval-secs", "1", "--upload-grace-secs", "2"],
    );
    run_grid_and_check_storage(&cluster, storage);

    let leftover = uuid::Uuid::new_v4().to_string();
    storage.write(&leftover, "partial.bin", vec![1; 1024]);
    let listed = cluster.json(&["experiment", "list-checkpoints", "1", "--best", "1"]);
    let best = listed[0]["uuid"].as_str().unwrap().to_string();
    cluster.cli_ok(&[
        "experiment",
        "set",
        "gc-policy",
        "1",
        "--save-experiment-best",
        "1",
        "--save-trial-best",
        "0",
        "--save-trial-latest",
        "0",
        "--yes",
    ]);
    wait_until(
        "GC and the sweep to empty storage of everything but the best checkpoint",
        Duration::from_secs(60),
        || storage.checkpoint_uuids() == BTreeSet::from([best.clone()]),
    );
    storage.verify(&best);
    let all = cluster.json(&["experiment", "list-checkpoints", "1", "--all"]);
    let deleted = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "DELETED")
        .count();
    assert_eq!(deleted, 11, "{all:#}");
}

/// Runs the linreg grid to completion and checks every checkpoint against storage and a download.
fn run_grid_and_check_storage(cluster: &TestCluster, storage: &TestStorage) {
    let config = storage.config(
        "linreg",
        "grid.yaml",
        &[("save_trial_latest: 1", "save_trial_latest: 100")],
    );
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    let described = cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let trials = described["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    for trial in trials {
        assert_eq!(trial["state"], "COMPLETED", "{trial}");
        assert_eq!(trial["steps_completed"], 60);
    }

    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string()]);
    let listed = listed.as_array().unwrap();
    assert_eq!(
        listed.len(),
        4 * 3,
        "checkpoints at steps 20, 40 and 60 of each trial: {listed:#?}"
    );
    let mut listed_uuids = BTreeSet::new();
    for checkpoint in listed {
        let uuid = checkpoint["uuid"].as_str().unwrap();
        let manifest = storage.verify(uuid);
        let size: u64 = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["size"].as_u64().unwrap())
            .sum();
        assert_eq!(checkpoint["size_bytes"], size);
        assert_eq!(checkpoint["step"], manifest["step"]);
        assert_eq!(checkpoint["trial_id"], manifest["trial_id"]);
        assert_eq!(checkpoint["state"], "COMPLETED");
        assert!(
            checkpoint["metric"].is_number(),
            "validation at every checkpoint step: {checkpoint}"
        );
        listed_uuids.insert(uuid.to_string());
    }
    assert_eq!(
        storage.checkpoint_uuids(),
        listed_uuids,
        "storage holds exactly the listed checkpoints"
    );

    let uuid = listed[0]["uuid"].as_str().unwrap();
    let out = cluster.dir.path().join(format!("download-{uuid}"));
    cluster.cli_ok(&["checkpoint", "download", uuid, "-o", out.to_str().unwrap()]);
    let manifest = storage.verify(uuid);
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(out.join(path)).unwrap(),
            storage.read(uuid, path),
            "{path} differs"
        );
    }
    let through_master = cluster.dir.path().join(format!("via-master-{uuid}"));
    cluster.cli_ok(&[
        "checkpoint",
        "download",
        uuid,
        "--via-master",
        "-o",
        through_master.to_str().unwrap(),
    ]);
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(through_master.join(path)).unwrap(),
            storage.read(uuid, path),
            "{path} differs via the master"
        );
    }
    let trial_id = listed[0]["trial_id"].as_u64().unwrap().to_string();
    let step = listed[0]["step"].as_u64().unwrap().to_string();
    let by_step = cluster
        .dir
        .path()
        .join(format!("download-{trial_id}-{step}"));
    cluster.cli_ok(&[
        "checkpoint",
        "download",
        "--trial",
        &trial_id,
        "--step",
        &step,
        "-o",
        by_step.to_str().unwrap(),
    ]);
    assert_eq!(read_weights(&by_step), storage.weights(uuid));
}

#[test]
fn killed_trial_process_resumes_from_its_latest_checkpoint_with_identical_results() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let config = example_config("linreg", "single.yaml", &cluster.storage(), &[SLOW_STEPS]);
    let context = repo_root().join("examples/linreg");
    let interrupted = cluster.create_experiment(&config, &context);
    let reference = cluster.create_experiment(&config, &context);
    let trial_id = cluster.first_trial(interrupted);

    let mut checkpoint_step = 0;
    wait_until(
        "a checkpoint and two more steps",
        Duration::from_secs(60),
        || {
            let trial = cluster.trial(trial_id);
            let latest = trial["latest_checkpoint"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            checkpoint_step = latest_checkpoint_step(&cluster, interrupted, &latest);
            checkpoint_step > 0 && trial["steps_completed"].as_u64().unwrap() > checkpoint_step + 2
        },
    );
    let pid = cluster
        .trial_process(trial_id)
        .expect("trial process is running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    cluster.wait_for_experiment(interrupted, "COMPLETED", Duration::from_secs(120));
    cluster.wait_for_experiment(reference, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(trial_id);
    assert_eq!(trial["restarts"], 1, "{trial:#}");
    let allocations = trial["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 2, "{trial:#}");
    assert_eq!(allocations[0]["exit_reason"], "failed");
    assert_eq!(
        allocations[1]["start_step"], checkpoint_step,
        "resumed from the latest checkpoint"
    );
    assert_eq!(allocations[1]["exit_reason"], "completed");

    let reference_trial = cluster.trial(cluster.first_trial(reference));
    assert_eq!(
        trial["latest_validation"],
        reference_trial["latest_validation"]
    );
    assert_eq!(
        cluster.final_weights(interrupted, 100),
        cluster.final_weights(reference, 100)
    );
}

#[test]
fn a_trial_that_keeps_crashing_errors_after_max_restarts_with_its_logs_kept() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let config = example_config(
        "linreg",
        "single.yaml",
        &cluster.storage(),
        &[
            (
                "  batch_size: 16\n",
                "  batch_size: 16\n  fail_at_step: 3\n",
            ),
            ("max_restarts: 3", "max_restarts: 1"),
        ],
    );
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(id, "ERRORED", Duration::from_secs(60));
    let trial_id = cluster.first_trial(id);
    let trial = cluster.trial(trial_id);
    assert_eq!(trial["state"], "ERRORED");
    assert_eq!(trial["restarts"], 2);
    assert_eq!(trial["allocations"].as_array().unwrap().len(), 2);
    let logs = cluster.cli_ok(&["trial", "logs", &trial_id.to_string()]);
    assert_eq!(logs.matches("starting fresh").count(), 2, "{logs}");
}

#[test]
fn bad_input_is_refused_with_the_field_named_and_nothing_created() {
    let cluster = TestCluster::start(&[], &[]);
    let context = repo_root().join("examples/linreg");
    let cases = [
        (
            "unknown field",
            example_config(
                "linreg",
                "single.yaml",
                &cluster.storage(),
                &[("max_restarts: 3", "max_restarts: 3\nmax_retries: 2")],
            ),
            "max_retries",
        ),
        (
            "negative period",
            example_config(
                "linreg",
                "single.yaml",
                &cluster.storage(),
                &[("min_checkpoint_period: 25", "min_checkpoint_period: -5")],
            ),
            "min_checkpoint_period",
        ),
        (
            "missing entrypoint",
            example_config(
                "linreg",
                "single.yaml",
                &cluster.storage(),
                &[("python3 train.py", "python3 missing.py")],
            ),
            "missing.py",
        ),
        (
            "empty grid",
            example_config(
                "linreg",
                "grid.yaml",
                &cluster.storage(),
                &[("vals: [0.02, 0.05]", "vals: []")],
            ),
            "learning_rate",
        ),
        (
            "negative gc",
            example_config(
                "linreg",
                "single.yaml",
                &cluster.storage(),
                &[("save_trial_best: 1", "save_trial_best: -1")],
            ),
            "save_trial_best",
        ),
        (
            "invalid yaml",
            "name: [unclosed".to_string(),
            "experiment config",
        ),
        (
            "s3 without bucket",
            s3_config("  endpoint_url: http://127.0.0.1:9\n"),
            "checkpoint_storage.bucket",
        ),
        (
            "unreachable s3 endpoint",
            s3_config(
                "  bucket: ckpts\n  endpoint_url: http://127.0.0.1:9\n  access_key: AKIAEXAMPLE\n  secret_key: s3cr3t-value\n",
            ),
            "cannot write to checkpoint storage",
        ),
    ];
    for (what, config, expected) in cases {
        let path = cluster.dir.path().join("bad.yaml");
        std::fs::write(&path, config).unwrap();
        let output = cluster.cli(&[
            "experiment",
            "create",
            path.to_str().unwrap(),
            context.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            !stderr.contains("s3cr3t-value"),
            "{what}: a secret was printed: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{what}: {stderr:?} does not name {expected:?}"
        );
    }
    assert_eq!(
        cluster.json(&["experiment", "list"]),
        Value::Array(vec![]),
        "nothing was created"
    );

    for (args, expected) in [
        (
            vec!["experiment", "describe", "999"],
            "experiment 999 does not exist",
        ),
        (vec!["trial", "describe", "999"], "trial 999 does not exist"),
        (
            vec![
                "checkpoint",
                "describe",
                "00000000-0000-0000-0000-000000000000",
            ],
            "does not exist",
        ),
        (
            vec!["agent", "disable", "nobody"],
            "agent \"nobody\" is not known",
        ),
    ] {
        let output = cluster.cli(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr:?}");
    }
    let unreachable = std::process::Command::new(baton_cluster_tests::bin_dir().join("baton"))
        .args(["--master", "http://127.0.0.1:9", "experiment", "list"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the Baton master"));
}

fn latest_checkpoint_step(cluster: &TestCluster, experiment: u64, uuid: &str) -> u64 {
    if uuid.is_empty() {
        return 0;
    }
    let listed = cluster.json(&["experiment", "list-checkpoints", &experiment.to_string()]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uuid"] == uuid)
        .and_then(|c| c["step"].as_u64())
        .unwrap_or(0)
}

#[test]
fn trials_keep_running_through_a_master_restart_and_lose_no_reports() {
    let mut cluster = TestCluster::start(&["a1"], &[]);
    let config = example_config("linreg", "single.yaml", &cluster.storage(), &[SLOW_STEPS]);
    let context = repo_root().join("examples/linreg");
    let reference = cluster.create_experiment(
        &example_config("linreg", "single.yaml", &cluster.storage(), &[]),
        &context,
    );
    cluster.wait_for_experiment(reference, "COMPLETED", Duration::from_secs(60));
    let id = cluster.create_experiment(&config, &context);
    let trial_id = cluster.first_trial(id);
    cluster.wait_for_trial(trial_id, "progress", Duration::from_secs(60), |t| {
        t["steps_completed"].as_u64() > Some(20)
    });
    let pid = cluster.trial_process(trial_id).expect("trial process");
    cluster.kill_master();
    std::thread::sleep(Duration::from_secs(2));
    cluster.start_master();
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(trial_id);
    assert_eq!(
        trial["allocations"].as_array().unwrap().len(),
        1,
        "the trial kept running: {trial:#}"
    );
    assert_eq!(trial["restarts"], 0);
    assert_eq!(trial["steps_completed"], 100);
    assert!(cluster.trial_process(trial_id) != Some(pid));
    let checkpoints = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    let steps: Vec<u64> = checkpoints
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        [25, 50, 75, 100],
        "every checkpoint reported across the restart is recorded"
    );
    assert_eq!(
        cluster.final_weights(id, 100),
        cluster.final_weights(reference, 100)
    );
    assert_eq!(
        trial["latest_validation"],
        cluster.trial(cluster.first_trial(reference))["latest_validation"]
    );
}

/// The linreg single config with S3 storage described by `storage_lines`.
fn s3_config(storage_lines: &str) -> String {
    let text = example_config(
        "linreg",
        "single.yaml",
        std::path::Path::new("/unused"),
        &[],
    );
    text.replace(
        "  type: shared_fs\n  host_path: /unused\n",
        &format!("  type: s3\n{storage_lines}"),
    )
}
