//! Distributed trials on real agents: one trial's ranks on several agents (gang placement, one
//! checkpoint from every rank), moved and restarted as a whole.

use std::time::Duration;

use baton_cluster_tests::ml::{COMPARE_TORCH, ml_python, run_isolated};
use baton_cluster_tests::{TestCluster, example_config, repo_root, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// The torch_ddp example with the framework Python, slowed down by `step_seconds`.
fn ddp_config(cluster: &TestCluster, step_seconds: &str) -> String {
    example_config(
        "torch_ddp",
        "single.yaml",
        &cluster.storage(),
        &[
            ("python3 train.py", &format!("{} train.py", ml_python())),
            (
                "  seed: 7\n",
                &format!("  seed: 7\n  step_seconds: {step_seconds}\n"),
            ),
        ],
    )
}

/// The agents of a trial's current allocation, the chief's first.
fn agents_of(trial: &Value) -> Vec<String> {
    let current = trial["allocations"]
        .as_array()
        .and_then(|a| a.last())
        .filter(|a| a["exit_reason"].is_null());
    current
        .map(|a| {
            a["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["agent_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn running_on(trial: &Value, agents: &[&str], beyond: u64) -> bool {
    let mut on = agents_of(trial);
    on.sort();
    trial["state"] == "RUNNING"
        && on == agents
        && trial["steps_completed"].as_u64().unwrap_or(0) > beyond
}

#[test]
fn a_two_rank_trial_spans_agents_moves_rides_out_a_master_restart_survives_a_killed_rank_and_ends_like_an_undisturbed_run()
 {
    let mut cluster = TestCluster::start(&["a1", "a2"], &[]);
    let context = repo_root().join("examples/torch_ddp");
    let latest = |cluster: &TestCluster, id: u64| -> String {
        cluster.trial(cluster.first_trial(id))["latest_checkpoint"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let reference = cluster.create_experiment(&ddp_config(&cluster, "0.0"), &context);
    cluster.wait_for_experiment(reference, "COMPLETED", Duration::from_secs(180));
    let trial = cluster.trial(cluster.first_trial(reference));
    let allocation = &trial["allocations"][0];
    assert_eq!(
        allocation["parts"].as_array().unwrap().len(),
        2,
        "{trial:#}"
    );
    assert_eq!(allocation["exit_reason"], "completed");

    let id = cluster.create_experiment(&ddp_config(&cluster, "0.05"), &context);
    let trial_id = cluster.first_trial(id);
    cluster.wait_for_trial(trial_id, "both ranks running", MINUTE, |t| {
        running_on(t, &["a1", "a2"], 25)
    });
    cluster.start_agent("a3", 1);
    cluster.wait_for_agents(3);
    cluster.cli_ok(&["agent", "disable", "a1"]);
    let trial = cluster.wait_for_trial(trial_id, "the gang on a2 and a3", MINUTE, |t| {
        running_on(t, &["a2", "a3"], 45)
    });
    let suspended = &trial["allocations"][0];
    assert_eq!(
        suspended["exit_reason"], "suspended-by-disable",
        "{trial:#}"
    );
    let resumed_at = trial["allocations"][1]["start_step"].as_u64().unwrap();
    assert!(
        resumed_at > 25,
        "resumed from the suspend checkpoint: {trial:#}"
    );

    // The master restarts under the running gang: the parts keep running and are adopted.
    cluster.kill_master();
    cluster.start_master();
    let trial = cluster.wait_for_trial(trial_id, "the gang after a master restart", MINUTE, |t| {
        running_on(t, &["a2", "a3"], 60)
    });
    assert_eq!(
        trial["allocations"].as_array().unwrap().len(),
        2,
        "{trial:#}"
    );

    let rank1 = cluster.processes_with_env("BATON_RANK=1");
    assert_eq!(rank1.len(), 1, "one process is rank 1: {rank1:?}");
    kill(Pid::from_raw(rank1[0]), Signal::SIGKILL).unwrap();
    let trial = cluster.wait_for_trial(trial_id, "a restart after the killed rank", MINUTE, |t| {
        t["restarts"] == 1 && t["state"] == "RUNNING"
    });
    let failed = &trial["allocations"][1];
    assert_eq!(failed["exit_reason"], "failed", "{trial:#}");
    let reasons: Vec<&str> = failed["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["exit_reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"failed"), "{reasons:?}");
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(180));

    let storage = cluster.storage();
    let (reference_dir, moved_dir) = (
        storage.join(latest(&cluster, reference)),
        storage.join(latest(&cluster, id)),
    );
    let compared = run_isolated(COMPARE_TORCH, &[&reference_dir, &moved_dir]);
    assert!(compared.starts_with("identical: "), "{compared}");
    for rank in 0..2 {
        assert!(
            moved_dir
                .join(format!("rank-{rank}/progress.json"))
                .is_file(),
            "rank {rank} wrote its part"
        );
    }
    let described = cluster.json(&["checkpoint", "describe", &latest(&cluster, id)]);
    let files: Vec<&str> = described["metadata"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "rank-0/progress.json",
            "rank-1/progress.json",
            "state_dict.pth"
        ],
        "one manifest lists every rank's files"
    );
}

#[test]
fn a_checkpoint_missing_a_rank_s_part_is_never_used() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let marker = cluster.dir.path().join("failed-once");
    let config = ranks_config(
        &cluster,
        &[("FAIL_AT", "40"), ("MARKER", marker.to_str().unwrap())],
    );
    let id = cluster.create_experiment(&config, &repo_root().join("tests/trials"));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    assert!(marker.is_file(), "rank 1 abandoned a checkpoint");

    let trial = cluster.trial(cluster.first_trial(id));
    assert_eq!(trial["restarts"], 1, "{trial:#}");
    let allocations = trial["allocations"].as_array().unwrap();
    assert_eq!(allocations[0]["exit_reason"], "failed", "{trial:#}");
    assert_eq!(
        allocations[1]["start_step"], 20,
        "the restart resumed from step 20, not from the half-written step 40"
    );

    let listed = cluster.json(&["experiment", "list-checkpoints", &id.to_string(), "--all"]);
    let steps: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps.iter().filter(|s| **s == 40).count(), 1, "{listed:#}");
    let recorded: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap())
        .collect();
    let unfinished: Vec<String> = std::fs::read_dir(cluster.storage())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| !recorded.contains(&name.as_str()))
        .collect();
    assert_eq!(
        unfinished.len(),
        1,
        "only rank 0's part of step 40: {unfinished:?}"
    );
    let part = cluster.storage().join(&unfinished[0]);
    assert!(part.join("rank-0.json").is_file());
    assert!(!part.join("metadata.json").exists(), "never committed");

    assert_summed_every_step_once(&cluster, id, 60);
    wait_until("nothing left running", MINUTE, || {
        cluster
            .processes_with_env(&format!("BATON_EXPERIMENT_ID={id}"))
            .is_empty()
    });
}

/// tests/trials/ranks.yaml with its placeholders set (`overrides` first, then defaults: no
/// failure, no sleep, priority 42).
fn ranks_config(cluster: &TestCluster, overrides: &[(&str, &str)]) -> String {
    let defaults = [
        ("FAIL_AT", "0"),
        ("MARKER", ""),
        ("STEP_SECONDS", "0"),
        ("PRIORITY", "42"),
    ];
    let mut text = std::fs::read_to_string(repo_root().join("tests/trials/ranks.yaml"))
        .unwrap()
        .replace("STORAGE", cluster.storage().to_str().unwrap());
    for (placeholder, value) in overrides.iter().chain(defaults.iter()) {
        text = text.replace(placeholder, value);
    }
    text
}

/// Every rank of the ranks trial of experiment `id` counted each of its `steps` steps once.
fn assert_summed_every_step_once(cluster: &TestCluster, id: u64, steps: u64) {
    let latest = cluster.trial(cluster.first_trial(id))["latest_checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let expected: u64 = (1..=steps).sum();
    for rank in 0..2u64 {
        let file = cluster
            .storage()
            .join(&latest)
            .join(format!("rank-{rank}.json"));
        let state: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(
            state["sum"],
            (rank + 1) * expected,
            "rank {rank} summed every step once"
        );
    }
}

#[test]
fn a_more_important_trial_preempts_a_whole_gang_which_resumes_after_it() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let low = cluster.create_experiment(
        &ranks_config(
            &cluster,
            &[
                ("STEP_SECONDS", "0.02"),
                ("PRIORITY", "60"),
                ("max_length: 60", "max_length: 200"),
            ],
        ),
        &repo_root().join("tests/trials"),
    );
    let low_trial = cluster.first_trial(low);
    cluster.wait_for_trial(low_trial, "the gang running", MINUTE, |t| {
        agents_of(t).len() == 2 && t["steps_completed"].as_u64() > Some(30)
    });
    let urgent = example_config(
        "linreg",
        "single.yaml",
        &cluster.storage(),
        &[("slots_per_trial: 1", "slots_per_trial: 1\n  priority: 10")],
    );
    let high = cluster.create_experiment(&urgent, &repo_root().join("examples/linreg"));
    cluster.wait_for_experiment(high, "COMPLETED", MINUTE);
    cluster.wait_for_experiment(low, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(low_trial);
    let allocations = trial["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 2, "{trial:#}");
    assert_eq!(allocations[0]["exit_reason"], "preempted", "{trial:#}");
    assert_eq!(allocations[0]["parts"].as_array().unwrap().len(), 2);
    assert_eq!(trial["restarts"], 0);
    let high_trial = cluster.trial(cluster.first_trial(high));
    assert_eq!(high_trial["allocations"].as_array().unwrap().len(), 1);
    assert_summed_every_step_once(&cluster, low, 200);
}

#[test]
fn two_ranks_on_one_agent_share_its_part_and_move_to_another_agent_together() {
    let mut cluster = TestCluster::start(&[], &[]);
    cluster.start_agent("big-1", 2);
    cluster.wait_for_agents(1);
    let id = cluster.create_experiment(
        &ranks_config(
            &cluster,
            &[
                ("STEP_SECONDS", "0.02"),
                ("max_length: 60", "max_length: 150"),
            ],
        ),
        &repo_root().join("tests/trials"),
    );
    let trial_id = cluster.first_trial(id);
    cluster.wait_for_trial(trial_id, "both ranks on big-1", MINUTE, |t| {
        agents_of(t) == ["big-1"] && t["steps_completed"].as_u64() > Some(30)
    });
    assert_eq!(
        cluster.processes_with_env("BATON_WORLD_SIZE=2").len(),
        2,
        "two rank processes"
    );
    cluster.start_agent("big-2", 2);
    cluster.wait_for_agents(2);
    cluster.cli_ok(&["agent", "disable", "big-1"]);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(trial_id);
    let allocations = trial["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 2, "{trial:#}");
    assert_eq!(allocations[0]["exit_reason"], "suspended-by-disable");
    assert_eq!(allocations[1]["agent_id"], "big-2");
    assert_eq!(
        allocations[1]["parts"].as_array().unwrap().len(),
        1,
        "one part, two ranks"
    );
    assert_summed_every_step_once(&cluster, id, 150);
}
