//! The slow linreg trial that cluster tests move around, and predicates on its progress.

use std::time::Duration;

use serde_json::Value;

use crate::{TestCluster, TestStorage, repo_root};

/// linreg single, 200 steps, `step_seconds` per step (slow enough to be moved mid-training).
pub fn slow_single(cluster: &TestCluster, step_seconds: &str, extra: &[(&str, &str)]) -> String {
    slow_single_in(
        &TestStorage::SharedFs(cluster.storage()),
        step_seconds,
        extra,
    )
}

/// linreg single, 200 steps, checkpoints in `storage`.
pub fn slow_single_in(storage: &TestStorage, step_seconds: &str, extra: &[(&str, &str)]) -> String {
    let slow = format!("  batch_size: 16\n  step_seconds: {step_seconds}\n");
    let mut overrides = vec![
        ("  batch_size: 16\n", slow.as_str()),
        ("max_length: 100", "max_length: 200"),
    ];
    overrides.extend_from_slice(extra);
    storage.config("linreg", "single.yaml", &overrides)
}

/// The final weights and validation of the same trial trained without interruption (fast: the
/// sleep does not change results).
pub fn reference_run(cluster: &TestCluster) -> (Value, Value) {
    reference_run_in(cluster, &TestStorage::SharedFs(cluster.storage()))
}

/// The same trial trained without interruption with checkpoints in `storage`.
pub fn reference_run_in(cluster: &TestCluster, storage: &TestStorage) -> (Value, Value) {
    let config = slow_single_in(storage, "0.0", &[]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(60));
    let trial = cluster.trial(cluster.first_trial(id));
    (
        cluster.final_weights_in(storage, id, 200),
        trial["latest_validation"].clone(),
    )
}

/// Whether a trial runs on an agent other than `previous`, past step `beyond`.
pub fn running_on_other_agent(trial: &Value, previous: &str, beyond: u64) -> bool {
    trial["state"] == "RUNNING"
        && trial["agent_id"]
            .as_str()
            .is_some_and(|a| !a.is_empty() && a != previous)
        && trial["steps_completed"].as_u64().unwrap_or(0) > beyond
}

/// Whether a trial has a committed checkpoint and has trained a few steps past the first one (25).
pub fn checkpointed_and_past_step_28(trial: &Value) -> bool {
    trial["latest_checkpoint"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
        && trial["steps_completed"].as_u64() > Some(28)
}

/// The agent a trial runs on ("" when none).
pub fn agent_of(trial: &Value) -> String {
    trial["agent_id"].as_str().unwrap_or_default().to_string()
}

/// The exit reasons of a trial's allocations, oldest first.
pub fn exit_reasons(trial: &Value) -> Vec<String> {
    trial["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .map(|a| a["exit_reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A slow linreg trial trained past its first checkpoint, with its uninterrupted result.
pub struct SlowTrial {
    /// Final weights of the same trial trained without interruption.
    pub reference: Value,
    /// Its experiment.
    pub experiment: u64,
    /// The trial.
    pub trial: u64,
    /// Its allocation's describe output when it had passed its first checkpoint.
    pub described: Value,
    /// Its process.
    pub pid: i32,
}

/// Runs the uninterrupted reference, then starts the slow trial and waits past its first checkpoint.
pub fn start_slow_trial(cluster: &TestCluster, step_seconds: &str) -> SlowTrial {
    let (reference, _) = reference_run(cluster);
    let experiment = cluster.create_experiment(
        &slow_single(cluster, step_seconds, &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial = cluster.first_trial(experiment);
    let described = cluster.wait_for_trial(
        trial,
        "a checkpoint",
        Duration::from_secs(60),
        checkpointed_and_past_step_28,
    );
    let pid = cluster
        .trial_process(trial)
        .expect("the trial process runs");
    SlowTrial {
        reference,
        experiment,
        trial,
        described,
        pid,
    }
}

impl SlowTrial {
    /// Waits for the experiment to complete and asserts the trial ran undisturbed: one allocation
    /// (the one it had), never restarted, the reference weights.
    pub fn assert_completed_in_one_allocation(&self, cluster: &TestCluster) {
        cluster.wait_for_experiment(self.experiment, "COMPLETED", Duration::from_secs(120));
        let done = cluster.trial(self.trial);
        assert_eq!(
            exit_reasons(&done),
            ["completed"],
            "one allocation, never restarted: {done:#}"
        );
        assert_eq!(
            done["allocations"][0]["id"],
            self.described["allocations"][0]["id"]
        );
        assert_eq!(done["restarts"], 0);
        assert_eq!(cluster.final_weights(self.experiment, 200), self.reference);
    }

    /// How many times the output of every tenth step was stored, by step.
    pub fn step_lines_stored(&self, cluster: &TestCluster) -> Vec<(u64, usize)> {
        let logs = cluster.cli_ok(&["trial", "logs", &self.trial.to_string()]);
        (10..=200)
            .step_by(10)
            .map(|step| (step, logs.matches(&format!("step {step}: loss")).count()))
            .collect()
    }
}

/// Asserts that no checkpoint of the fenced allocation past `end_step` (its last step the master
/// accepted) counts: any such checkpoint is being deleted or deleted, never COMPLETED.
pub fn assert_no_checkpoint_after_fence(
    cluster: &TestCluster,
    experiment: u64,
    fenced_allocation: &str,
    end_step: u64,
) {
    let listed = cluster.json(&[
        "experiment",
        "list-checkpoints",
        &experiment.to_string(),
        "--all",
    ]);
    for checkpoint in listed.as_array().expect("checkpoint list") {
        let described = cluster.json(&[
            "checkpoint",
            "describe",
            checkpoint["uuid"].as_str().expect("uuid"),
        ]);
        if described["metadata"]["allocation_id"] == fenced_allocation
            && checkpoint["step"].as_u64() > Some(end_step)
        {
            assert_ne!(
                checkpoint["state"], "COMPLETED",
                "a checkpoint written after the fence counts: {described:#}"
            );
        }
    }
}
