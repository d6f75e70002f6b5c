//! Work that cannot run says why, and crash loops slow down.

use std::time::{Duration, Instant};

use baton_cluster_tests::{TestCluster, example_config, repo_root};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

fn config(cluster: &TestCluster, overrides: &[(&str, &str)]) -> String {
    example_config("linreg", "single.yaml", &cluster.storage(), overrides)
}

fn state_reason(trial: &Value) -> String {
    trial["state_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_trial_that_cannot_be_placed_says_why_in_describe_and_at_creation() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let path = cluster.dir.path().join("huge.yaml");
    std::fs::write(
        &path,
        config(&cluster, &[("slots_per_trial: 1", "slots_per_trial: 64")]),
    )
    .unwrap();
    let context = repo_root().join("examples/linreg");
    let created = cluster.cli(&[
        "experiment",
        "create",
        path.to_str().unwrap(),
        context.to_str().unwrap(),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(
        created.status.success(),
        "a warning, not an error: {stderr}"
    );
    assert!(
        stderr.contains("warning:") && stderr.contains("needs 64 slots"),
        "{stderr}"
    );
    let huge: Value = serde_json::from_slice(&created.stdout).unwrap();
    let huge = huge["id"].as_u64().unwrap();
    let trial = cluster.first_trial(huge);
    let expected = "needs 64 slots; the largest enabled agent has 1";
    let described =
        cluster.wait_for_trial(trial, "a reason", MINUTE, |t| !state_reason(t).is_empty());
    assert_eq!(described["state"], "QUEUED");
    assert_eq!(state_reason(&described), expected);
    let experiment = cluster.json(&["experiment", "describe", &huge.to_string()]);
    assert_eq!(state_reason(&experiment["trials"][0]), expected);
    let text = cluster.cli_ok(&["trial", "describe", &trial.to_string()]);
    assert!(text.contains(expected), "{text}");
    let text = cluster.cli_ok(&["experiment", "describe", &huge.to_string()]);
    assert!(
        text.contains(&format!("Trial {trial} (QUEUED): {expected}")),
        "{text}"
    );

    cluster.cli_ok(&["experiment", "kill", &huge.to_string()]);
    cluster.cli_ok(&["agent", "disable", "a1"]);
    let small = cluster.create_experiment(&config(&cluster, &[]), &context);
    let trial = cluster.first_trial(small);
    let described =
        cluster.wait_for_trial(trial, "a reason", MINUTE, |t| !state_reason(t).is_empty());
    assert_eq!(
        state_reason(&described),
        "waiting for an agent: all connected agents are disabled or draining"
    );
    cluster.cli_ok(&["experiment", "pause", &small.to_string()]);
    cluster.wait_for_trial(trial, "the paused reason", MINUTE, |t| {
        state_reason(t) == "its experiment is PAUSED"
    });
}

#[test]
fn a_missing_entrypoint_is_named_and_restarts_back_off() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let entrypoint = "no-such-trainer --epochs 3";
    let id = cluster.create_experiment(
        &config(
            &cluster,
            &[
                ("python3 train.py", entrypoint),
                (
                    "max_restarts: 3",
                    "max_restarts: 2\nrestart_backoff: {initial_seconds: 1, max_seconds: 10}",
                ),
            ],
        ),
        &repo_root().join("examples/linreg"),
    );
    let trial = cluster.first_trial(id);
    let started = Instant::now();
    let mut reasons = Vec::new();
    let done = loop {
        let described = cluster.trial(trial);
        if described["state"] == "ERRORED" {
            break described;
        }
        reasons.push(state_reason(&described));
        assert!(started.elapsed() < MINUTE, "{described:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        reasons.iter().any(|r| r.starts_with("restarts in")),
        "describe shows the backoff: {reasons:?}"
    );
    let message = format!("cannot start the entrypoint {entrypoint:?}: command not found");
    let allocations = done["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 3, "{done:#}");
    for allocation in allocations {
        let text = allocation["message"].as_str().unwrap_or_default();
        assert!(text.contains(&message), "{done:#}");
    }
    assert!(
        done["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&message),
        "{done:#}"
    );
    let gaps: Vec<i64> = allocations
        .windows(2)
        .map(|pair| pair[1]["started_ms"].as_i64().unwrap() - pair[0]["ended_ms"].as_i64().unwrap())
        .collect();
    assert!(
        gaps[0] >= 1000 && gaps[1] >= 2000,
        "restarts wait 1 s, then 2 s: gaps {gaps:?} ms"
    );
}

#[test]
fn a_trial_whose_process_vanishes_at_start_backs_off_and_errors_after_max_restarts() {
    let cluster = TestCluster::start(&["a1"], &[]);
    // The trial kills its own supervisor at once: it vanishes without an exit status, before
    // its first step, every time it starts.
    let id = cluster.create_experiment(
        &config(
            &cluster,
            &[
                ("python3 train.py", "sh -c 'kill -9 $PPID'"),
                (
                    "max_restarts: 3",
                    "max_restarts: 2\nrestart_backoff: {initial_seconds: 1, max_seconds: 10}",
                ),
            ],
        ),
        &repo_root().join("examples/linreg"),
    );
    cluster.wait_for_experiment(id, "ERRORED", MINUTE);
    let done = cluster.trial(cluster.first_trial(id));
    let allocations = done["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 3, "{done:#}");
    assert_eq!(done["restarts"], 3, "{done:#}");
    for allocation in allocations {
        assert_eq!(allocation["exit_reason"], "killed", "{done:#}");
    }
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("failed 3 times (max_restarts is 2)")
            && error.contains("vanished without an exit status"),
        "{done:#}"
    );
    let gaps: Vec<i64> = allocations
        .windows(2)
        .map(|pair| pair[1]["started_ms"].as_i64().unwrap() - pair[0]["ended_ms"].as_i64().unwrap())
        .collect();
    eprintln!("gaps between allocations: {gaps:?} ms");
    assert!(
        gaps[0] >= 1000 && gaps[1] >= 2000,
        "restarts wait 1 s, then 2 s: gaps {gaps:?} ms"
    );
}
