//! Adaptive ASHA on a real cluster: `examples/linreg/adaptive.yaml` (16 trials, 3 brackets, rungs
//! of 4 to 64 steps, divisor 2) on three one-slot agents, with the master killed and restarted
//! mid-search. Trials wait PAUSED at their rungs; promoted trials resume on other agents and end
//! with exactly the weights of an uninterrupted run to the same length; the promotions are the
//! rule's over each rung's results in arrival order, from the metrics the trials reported; the
//! restart loses no promotion and no step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use baton_cluster_tests::{TestCluster, example_config, repo_root, wait_until};
use serde_json::Value;

#[path = "../../master/src/cluster/simulation/promotion_rule.rs"]
mod promotion_rule;

use promotion_rule::promoted_by_rule;

const MINUTE: Duration = Duration::from_secs(60);
const DIVISOR: usize = 2;

/// The validation loss a trial reported at `step`, if it validated there.
fn loss_at(trial: &Value, step: u64) -> Option<f64> {
    trial["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .find(|v| v["step"] == step)
        .and_then(|v| v["metrics"]["validation_loss"].as_f64())
}

/// How many trials of an experiment were promoted from some rung so far.
fn promotions(described: &Value) -> usize {
    described["brackets"]
        .as_array()
        .expect("brackets")
        .iter()
        .flat_map(|b| b["rungs"].as_array().expect("rungs"))
        .map(|r| r["promoted"].as_u64().unwrap_or(0) as usize)
        .sum()
}

/// A trial of an experiment PAUSED at its rung, as `experiment describe --json` lists it.
fn paused_trial(described: &Value) -> Option<Value> {
    described["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .find(|t| t["state"] == "PAUSED")
        .cloned()
}

#[test]
fn an_adaptive_search_promotes_by_the_rule_across_agents_and_a_master_restart() {
    let mut cluster = TestCluster::start(&["a1", "a2", "a3"], &[]);
    let slow = [(
        "  batch_size: 16\n",
        "  batch_size: 16\n  step_seconds: 0.02\n",
    )];
    let config = example_config("linreg", "adaptive.yaml", &cluster.storage(), &slow);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    let exp = id.to_string();

    // Users see a trial that trained to its rung waiting PAUSED, with why and its length.
    let mut paused = None;
    wait_until("a trial PAUSED at its rung", MINUTE, || {
        paused = paused_trial(&cluster.json(&["experiment", "describe", &exp]));
        paused.is_some()
    });
    let paused = paused.expect("a paused trial");
    let reason = paused["state_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("waits to be promoted to"), "{paused:#}");
    assert_eq!(
        paused["target_length"], paused["steps_completed"],
        "{paused:#}"
    );
    let listed = cluster.json(&["trial", "list", &exp, "--state", "paused"]);
    assert!(!listed.as_array().expect("trials").is_empty(), "{listed:#}");

    // The master dies once some trial was promoted and the search still runs, then comes back.
    wait_until("a promotion", MINUTE, || {
        let described = cluster.json(&["experiment", "describe", &exp]);
        described["state"] == "ACTIVE" && promotions(&described) >= 1
    });
    cluster.kill_master();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.start_master();
    let described = cluster.wait_for_experiment(id, "COMPLETED", 3 * MINUTE);
    let text = cluster.cli_ok(&["experiment", "describe", &exp]);
    assert!(
        text.contains("BRACKET") && text.contains("PROMOTED"),
        "{text}"
    );

    let trials: BTreeMap<u64, Value> = described["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .map(|t| {
            let trial_id = t["id"].as_u64().expect("trial id");
            (trial_id, cluster.trial(trial_id))
        })
        .collect();
    assert_eq!(trials.len(), 16);
    let brackets = described["brackets"].as_array().expect("brackets");
    let lengths: Vec<Vec<u64>> = brackets
        .iter()
        .map(|b| {
            b["rungs"]
                .as_array()
                .expect("rungs")
                .iter()
                .map(|r| r["length"].as_u64().expect("length"))
                .collect()
        })
        .collect();
    assert_eq!(
        lengths,
        [
            vec![4, 8, 16, 32, 64],
            vec![8, 16, 32, 64],
            vec![16, 32, 64]
        ]
    );

    // (c) Promotions follow the rule over each rung's arrivals, from the trials' own validations;
    // every trial reports once per rung it reaches, and a rung holds what the one below promoted.
    let mut last_length = BTreeMap::new();
    let mut bracket_of = BTreeMap::new();
    for (b, bracket) in brackets.iter().enumerate() {
        let rungs = bracket["rungs"].as_array().expect("rungs");
        let mut promoted: BTreeSet<u64> = BTreeSet::new();
        for (r, rung) in rungs.iter().enumerate() {
            assert_eq!(
                (rung["training"].as_u64(), rung["waiting"].as_u64()),
                (Some(0), Some(0))
            );
            let length = rung["length"].as_u64().expect("length");
            let results = rung["results"].as_array().expect("results");
            let ids: Vec<u64> = results
                .iter()
                .map(|x| x["trial_id"].as_u64().unwrap())
                .collect();
            let reached: BTreeSet<u64> = ids.iter().copied().collect();
            assert_eq!(
                reached.len(),
                ids.len(),
                "a trial reported twice at a rung: {rung:#}"
            );
            if r == 0 {
                assert_eq!(
                    Some(ids.len() as u64),
                    bracket["trials"].as_u64(),
                    "{bracket:#}"
                );
            } else {
                assert_eq!(reached, promoted, "bracket {b} rung {r}: {bracket:#}");
            }
            let metrics: Vec<Option<f64>> =
                ids.iter().map(|t| loss_at(&trials[t], length)).collect();
            promoted.clear();
            for (position, result) in results.iter().enumerate() {
                let trial_id = ids[position];
                assert_eq!(
                    result["metric"].as_f64(),
                    metrics[position],
                    "the rung's metric is trial {trial_id}'s validation at {length} steps"
                );
                assert!(
                    metrics[position].is_some(),
                    "trial {trial_id} validated at {length}"
                );
                let expected = r + 1 < rungs.len() && promoted_by_rule(&metrics, position, DIVISOR);
                assert_eq!(
                    result["promoted"].as_bool(),
                    Some(expected),
                    "trial {trial_id} at rung {length} of {metrics:?}"
                );
                if expected {
                    promoted.insert(trial_id);
                }
                last_length.insert(trial_id, length);
                bracket_of.insert(trial_id, b);
            }
        }
    }
    assert_eq!(last_length.len(), 16, "every trial reported at a rung");

    // (d) No step lost: every trial COMPLETED at its last rung, its allocations chained end to
    // start, each ending at a rung of its bracket.
    let mut moved = Vec::new();
    for (trial_id, trial) in &trials {
        let length = last_length[trial_id];
        assert_eq!(trial["state"], "COMPLETED", "{trial:#}");
        assert_eq!(trial["steps_completed"], length, "{trial:#}");
        let allocations = trial["allocations"].as_array().expect("allocations");
        let mut step = 0;
        for allocation in allocations {
            assert_eq!(
                allocation["start_step"], step,
                "trial {trial_id}: {trial:#}"
            );
            step = allocation["end_step"].as_u64().expect("end step");
            assert!(
                lengths[bracket_of[trial_id]].contains(&step),
                "trial {trial_id} stopped off its rungs: {trial:#}"
            );
        }
        assert_eq!(step, length, "{trial:#}");
        let agents: BTreeSet<&str> = allocations
            .iter()
            .filter_map(|a| a["agent_id"].as_str())
            .collect();
        if agents.len() > 1 {
            moved.push(*trial_id);
        }
    }
    // (a) Some promoted trial resumed on another agent than the one it paused on.
    assert!(!moved.is_empty(), "no promoted trial changed agents");

    // (b) Each promoted trial ends with the weights of an uninterrupted run of its
    // hyperparameters to its length.
    let checkpoints = cluster.json(&["experiment", "list-checkpoints", &exp]);
    let checkpoints = checkpoints.as_array().expect("checkpoints");
    let storage = baton_cluster_tests::TestStorage::SharedFs(cluster.storage());
    let mut references = Vec::new();
    for (trial_id, trial) in &trials {
        let length = last_length[trial_id];
        if length == lengths[bracket_of[trial_id]][0] {
            continue;
        }
        let hparams = &trial["hparams"];
        let reference = example_config(
            "linreg",
            "single.yaml",
            &cluster.storage(),
            &[
                (
                    "learning_rate: 0.05",
                    &format!("learning_rate: {}", hparams["learning_rate"]),
                ),
                (
                    "momentum: 0.9",
                    &format!("momentum: {}", hparams["momentum"]),
                ),
                ("max_length: 100", &format!("max_length: {length}")),
            ],
        );
        let reference_id =
            cluster.create_experiment(&reference, &repo_root().join("examples/linreg"));
        references.push((*trial_id, length, reference_id));
    }
    assert!(references.len() >= 4, "few promoted trials: {references:?}");
    for (trial_id, length, reference_id) in references {
        cluster.wait_for_experiment(reference_id, "COMPLETED", MINUTE);
        let uuid = checkpoints
            .iter()
            .find(|c| c["trial_id"] == trial_id && c["step"] == length)
            .and_then(|c| c["uuid"].as_str())
            .unwrap_or_else(|| panic!("trial {trial_id} has no checkpoint at {length}"));
        assert_eq!(
            storage.weights(uuid),
            cluster.final_weights(reference_id, length),
            "trial {trial_id} at {length} steps"
        );
    }
}
