//! Trials outlive their agent daemon: a restarted daemon adopts them; one that stays away has them
//! stopped by their lease, and the master resumes them elsewhere.

use std::time::{Duration, Instant};

use baton_cluster_tests::linreg::{
    agent_of, checkpointed_and_past_step_28, exit_reasons, reference_run, running_on_other_agent,
    slow_single,
};
use baton_cluster_tests::{TestCluster, repo_root, wait_until};

const MINUTE: Duration = Duration::from_secs(60);

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_trial_runs_through_an_agent_daemon_kill_and_is_adopted_by_the_restarted_daemon() {
    let mut cluster = TestCluster::start(&["a1"], &[]);
    let (reference, _) = reference_run(&cluster);
    let id = cluster.create_experiment(
        &slow_single(&cluster, "0.05", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial = cluster.first_trial(id);
    let before =
        cluster.wait_for_trial(trial, "a checkpoint", MINUTE, checkpointed_and_past_step_28);
    let pid = cluster
        .trial_process(trial)
        .expect("the trial process runs");

    cluster.kill_agent("a1");
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert!(alive(pid), "the trial outlives its daemon");
    let url = cluster.url.clone();
    cluster.start_agent_with("a1", 1, &url, &[]);
    let steps_at_restart = cluster.trial(trial)["steps_completed"].as_u64().unwrap();
    cluster.wait_for_trial(trial, "progress after the restart", MINUTE, |t| {
        t["steps_completed"].as_u64() > Some(steps_at_restart)
    });
    eprintln!(
        "daemon killed to first step reported by the adopted trial: {:?}",
        killed.elapsed()
    );
    assert_eq!(
        cluster.trial_process(trial),
        Some(pid),
        "the same process, adopted"
    );

    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    let done = cluster.trial(trial);
    assert_eq!(
        exit_reasons(&done),
        ["completed"],
        "one allocation, never restarted: {done:#}"
    );
    assert_eq!(done["allocations"][0]["id"], before["allocations"][0]["id"]);
    assert_eq!(done["restarts"], 0);
    assert_eq!(cluster.final_weights(id, 200), reference);
    let logs = cluster.cli_ok(&["trial", "logs", &trial.to_string()]);
    for step in (10..=200).step_by(10) {
        let line = format!("step {step}: loss");
        assert_eq!(
            logs.matches(&line).count(),
            1,
            "the output of step {step} is shipped once, across the restart:\n{logs}"
        );
    }
}

#[test]
fn a_daemon_that_stays_away_has_its_trial_stopped_by_the_lease_and_resumed_elsewhere() {
    let mut cluster = TestCluster::start(&[], &["--agent-timeout", "4"]);
    let url = cluster.url.clone();
    cluster.start_agent_with("a1", 1, &url, &["--trial-lease", "2"]);
    cluster.wait_for_agents(1);
    let (reference, _) = reference_run(&cluster);
    let id = cluster.create_experiment(
        &slow_single(&cluster, "0.05", &[]),
        &repo_root().join("examples/linreg"),
    );
    let trial = cluster.first_trial(id);
    cluster.wait_for_trial(trial, "a checkpoint", MINUTE, checkpointed_and_past_step_28);
    let pid = cluster
        .trial_process(trial)
        .expect("the trial process runs");
    cluster.start_agent("a2", 1);
    cluster.wait_for_agents(2);

    cluster.kill_agent("a1");
    let killed = Instant::now();
    wait_until("the lease to stop the orphaned trial", MINUTE, || {
        !alive(pid)
    });
    let stopped = killed.elapsed();
    let stopped_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let moved = cluster.wait_for_trial(trial, "resume elsewhere", MINUTE, |t| {
        running_on_other_agent(t, "a1", 0)
    });
    let resumed = killed.elapsed();
    eprintln!("daemon killed to orphan stopped: {stopped:?}; to trial resumed on a2: {resumed:?}");
    assert!(
        stopped < Duration::from_secs(2 + 10 + 2),
        "stopped within the lease and the kill grace: {stopped:?}"
    );
    assert_eq!(agent_of(&moved), "a2");
    let restarted_ms = moved["allocations"][1]["started_ms"].as_i64().unwrap();
    assert!(
        stopped_ms <= restarted_ms + 100,
        "the orphan was gone before the trial started on a2 (stopped {stopped_ms}, started {restarted_ms})"
    );
    assert_eq!(exit_reasons(&moved)[0], "agent-lost", "{moved:#}");
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    assert_eq!(cluster.final_weights(id, 200), reference);
}
