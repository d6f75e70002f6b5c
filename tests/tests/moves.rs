//! Suspend, move and resume: every trigger and failure path, with real processes.

use std::time::Duration;

use baton_cluster_tests::linreg::{
    agent_of, assert_no_checkpoint_after_fence, checkpointed_and_past_step_28, reference_run,
    reference_run_in, running_on_other_agent, slow_single, slow_single_in,
};
use baton_cluster_tests::moving::move_three_ways;
use baton_cluster_tests::{TestCluster, TestStorage, example_config, repo_root, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_trial_moved_by_disable_move_and_pause_ends_exactly_like_an_uninterrupted_run() {
    let cluster = TestCluster::start(&["a1", "a2", "a3"], &[]);
    move_across_three_agents(&cluster, &TestStorage::SharedFs(cluster.storage()));
}

#[test]
fn a_trial_moves_across_agents_with_s3_checkpoint_storage() {
    let cluster = TestCluster::start(&["a1", "a2", "a3"], &[]);
    move_across_three_agents(&cluster, &TestStorage::s3("moves"));
}

/// Moves the linreg trial by disable, move and pause/activate; checks it ends like an uninterrupted run.
fn move_across_three_agents(cluster: &TestCluster, storage: &TestStorage) {
    let (reference_weights, reference_validation) = reference_run_in(cluster, storage);
    let id = cluster.create_experiment(
        &slow_single_in(storage, "0.03", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial = move_three_ways(cluster, id, cluster.first_trial(id));
    assert_eq!(
        cluster.final_weights_in(storage, id, 200),
        reference_weights
    );
    assert_eq!(trial["latest_validation"], reference_validation);
}

#[test]
fn a_killed_agent_s_trial_resumes_elsewhere_and_the_restarted_agent_runs_nothing_stale() {
    let mut cluster = TestCluster::start(&["a1", "a2"], &["--agent-timeout", "3"]);
    let (reference_weights, _) = reference_run(&cluster);
    let id = cluster.create_experiment(
        &slow_single(&cluster, "0.03", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial_id = cluster.first_trial(id);
    let trial = cluster.wait_for_trial(
        trial_id,
        "a checkpoint",
        MINUTE,
        checkpointed_and_past_step_28,
    );
    let victim = agent_of(&trial);
    cluster.kill_agent(&victim);

    let trial = cluster.wait_for_trial(trial_id, "resume elsewhere", MINUTE, |t| {
        running_on_other_agent(t, &victim, 0)
    });
    let lost = &trial["allocations"].as_array().unwrap()[0];
    assert_eq!(lost["exit_reason"], "agent-lost");
    assert_eq!(
        trial["allocations"][1]["start_step"], 25,
        "resumed from the latest checkpoint"
    );

    cluster.start_agent(&victim, 1);
    cluster.wait_for_agents(2);
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(trial_id);
    assert_eq!(
        trial["restarts"], 0,
        "agent loss does not count against max_restarts"
    );
    assert_eq!(
        trial["allocations"].as_array().unwrap().len(),
        2,
        "{trial:#}"
    );
    assert_eq!(cluster.final_weights(id, 200), reference_weights);
}

#[test]
fn a_partitioned_agent_is_fenced_when_it_comes_back() {
    let cluster = TestCluster::start(&["a1", "a2"], &["--agent-timeout", "3"]);
    let id = cluster.create_experiment(
        &slow_single(&cluster, "0.03", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial_id = cluster.first_trial(id);
    let trial = cluster.wait_for_trial(trial_id, "running", MINUTE, |t| {
        t["steps_completed"].as_u64() > Some(5)
    });
    let stale_agent = agent_of(&trial);
    let stale_allocation = trial["allocations"][0]["id"].as_str().unwrap().to_string();
    let agent = Pid::from_raw(cluster.agent_pid(&stale_agent));

    kill(agent, Signal::SIGSTOP).unwrap();
    let moved = cluster.wait_for_trial(trial_id, "resume elsewhere", MINUTE, |t| {
        running_on_other_agent(t, &stale_agent, 0)
    });
    kill(agent, Signal::SIGCONT).unwrap();
    assert_eq!(moved["allocations"][0]["exit_reason"], "agent-lost");

    let marker = format!("BATON_ALLOCATION_ID={stale_allocation}");
    wait_until("the stale trial process to be killed", MINUTE, || {
        cluster.processes_with_env(&marker).is_empty()
    });
    cluster.wait_for_agents(2);
    let master_log = std::fs::read_to_string(cluster.dir.path().join("logs/master.log")).unwrap();
    assert!(
        master_log.contains("killing stale allocation") && master_log.contains(&stale_allocation),
        "the returning agent was told to kill its stale allocation:\n{master_log}"
    );
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(trial_id);
    assert_eq!(
        trial["allocations"][0]["exit_reason"], "agent-lost",
        "a fenced allocation's later exit is not recorded"
    );
    let latest = cluster.json(&[
        "checkpoint",
        "describe",
        trial["latest_checkpoint"].as_str().unwrap(),
    ]);
    assert_ne!(
        latest["metadata"]["allocation_id"],
        stale_allocation.as_str()
    );
    let end_step = moved["allocations"][0]["end_step"].as_u64().unwrap();
    assert_no_checkpoint_after_fence(&cluster, id, &stale_allocation, end_step);
}

#[test]
fn a_more_important_experiment_preempts_a_less_important_one_on_a_one_slot_cluster() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let context = repo_root().join("examples/linreg");
    let low = cluster.create_experiment(
        &slow_single(
            &cluster,
            "0.02",
            &[("slots_per_trial: 1", "slots_per_trial: 1\n  priority: 60")],
        ),
        &context,
    );
    let low_trial = cluster.first_trial(low);
    cluster.wait_for_trial(low_trial, "running", MINUTE, |t| {
        t["steps_completed"].as_u64() > Some(5)
    });
    let high_config = example_config(
        "linreg",
        "single.yaml",
        &cluster.storage(),
        &[
            ("name: linreg-single", "name: urgent"),
            ("slots_per_trial: 1", "slots_per_trial: 1\n  priority: 10"),
        ],
    );
    let high = cluster.create_experiment(&high_config, &context);
    cluster.wait_for_experiment(high, "COMPLETED", MINUTE);
    cluster.wait_for_experiment(low, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(low_trial);
    assert_eq!(
        trial["allocations"][0]["exit_reason"], "preempted",
        "{trial:#}"
    );
    assert_eq!(trial["allocations"].as_array().unwrap().len(), 2);
    let high_trial = cluster.trial(cluster.first_trial(high));
    assert_eq!(
        high_trial["allocations"].as_array().unwrap().len(),
        1,
        "the urgent trial ran once, uninterrupted"
    );
}

#[test]
fn a_trial_that_ignores_suspend_is_killed_after_the_preemption_timeout_and_resumes() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let config = slow_single(
        &cluster,
        "0.03",
        &[
            (
                "  batch_size: 16\n",
                "  batch_size: 16\n  ignore_stop: true\n",
            ),
            ("max_restarts: 3", "max_restarts: 3\npreemption_timeout: 2"),
        ],
    );
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    let trial_id = cluster.first_trial(id);
    let trial = cluster.wait_for_trial(
        trial_id,
        "a checkpoint",
        MINUTE,
        checkpointed_and_past_step_28,
    );
    let first = agent_of(&trial);
    cluster.cli_ok(&["trial", "move", &trial_id.to_string()]);
    let trial = cluster.wait_for_trial(trial_id, "resume elsewhere", MINUTE, |t| {
        running_on_other_agent(t, &first, 0)
    });
    let allocation = &trial["allocations"][0];
    assert_eq!(
        allocation["exit_reason"], "killed-after-timeout",
        "{trial:#}"
    );
    let resumed_from = trial["allocations"][1]["start_step"].as_u64().unwrap();
    assert!(
        resumed_from >= 25 && resumed_from.is_multiple_of(25),
        "resumed from a periodic checkpoint: {trial:#}"
    );
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
}

#[test]
fn a_draining_agent_finishes_its_trial_but_takes_no_new_work() {
    let cluster = TestCluster::start(&["a1", "a2"], &[]);
    let context = repo_root().join("examples/linreg");
    let first = cluster.create_experiment(&slow_single(&cluster, "0.02", &[]), &context);
    let trial_id = cluster.first_trial(first);
    let trial = cluster.wait_for_trial(trial_id, "running", MINUTE, |t| {
        t["steps_completed"].as_u64() > Some(5)
    });
    let draining = agent_of(&trial);
    cluster.cli_ok(&["agent", "disable", &draining, "--drain"]);
    let agents = cluster.json(&["agent", "list"]);
    let entry = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == draining.as_str())
        .unwrap();
    assert_eq!(entry["state"], "draining");
    assert_eq!(entry["trial_ids"], serde_json::json!([trial_id]));

    let second = cluster.create_experiment(&slow_single(&cluster, "0.0", &[]), &context);
    cluster.wait_for_experiment(second, "COMPLETED", MINUTE);
    let other = cluster.trial(cluster.first_trial(second));
    assert_ne!(
        other["allocations"][0]["agent_id"],
        draining.as_str(),
        "no new work on a draining agent"
    );
    cluster.wait_for_experiment(first, "COMPLETED", Duration::from_secs(120));
    let trial = cluster.trial(trial_id);
    assert_eq!(
        trial["allocations"].as_array().unwrap().len(),
        1,
        "the running trial finished in place: {trial:#}"
    );
}

#[test]
fn a_corrupt_checkpoint_is_reported_and_never_used() {
    let cluster = TestCluster::start(&["a1"], &[]);
    let config = slow_single(&cluster, "0.03", &[("max_restarts: 3", "max_restarts: 1")]);
    let id = cluster.create_experiment(&config, &repo_root().join("examples/linreg"));
    let trial_id = cluster.first_trial(id);
    let trial = cluster.wait_for_trial(
        trial_id,
        "a checkpoint",
        MINUTE,
        checkpointed_and_past_step_28,
    );
    let uuid = trial["latest_checkpoint"].as_str().unwrap().to_string();
    let weights = cluster.storage().join(&uuid).join("weights.json");
    let mut content = std::fs::read(&weights).unwrap();
    content[5] ^= 1;
    std::fs::write(&weights, content).unwrap();
    let pid = cluster.trial_process(trial_id).expect("trial process");
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();

    cluster.wait_for_experiment(id, "ERRORED", MINUTE);
    let trial = cluster.trial(trial_id);
    let allocations = trial["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 2, "{trial:#}");
    let message = allocations[1]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&uuid) && message.contains("weights.json does not match metadata.json"),
        "the restore failure names the checkpoint and file: {trial:#}"
    );
    assert_eq!(
        allocations[1]["end_step"], 25,
        "no step ran from the corrupt checkpoint"
    );
}
