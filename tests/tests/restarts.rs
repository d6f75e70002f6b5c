//! Trials outlive their agent daemon: a restarted daemon adopts them; one that stays away has them
//! stopped by their lease, and the master resumes them elsewhere.

use std::time::{Duration, Instant};

use baton_cluster_tests::linreg::{
    SlowTrial, agent_of, exit_reasons, running_on_other_agent, start_slow_trial,
};
use baton_cluster_tests::{TestCluster, wait_until};

const MINUTE: Duration = Duration::from_secs(60);

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_trial_runs_through_an_agent_daemon_kill_and_is_adopted_by_the_restarted_daemon() {
    let mut cluster = TestCluster::start(&["a1"], &[]);
    let slow = start_slow_trial(&cluster, "0.05");
    let (trial, pid) = (slow.trial, slow.pid);

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

    slow.assert_completed_in_one_allocation(&cluster);
    for (step, stored) in slow.step_lines_stored(&cluster) {
        assert_eq!(
            stored, 1,
            "the output of step {step} is shipped once, across the restart"
        );
    }
}

#[test]
fn a_daemon_that_stays_away_has_its_trial_stopped_by_the_lease_and_resumed_elsewhere() {
    let mut cluster = TestCluster::start(&[], &["--agent-timeout", "4"]);
    let url = cluster.url.clone();
    cluster.start_agent_with("a1", 1, &url, &["--trial-lease", "2"]);
    cluster.wait_for_agents(1);
    let SlowTrial {
        reference,
        experiment: id,
        trial,
        pid,
        ..
    } = start_slow_trial(&cluster, "0.05");
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

#[test]
fn a_master_down_longer_than_the_fence_window_loses_no_work() {
    let mut cluster = TestCluster::start(&[], &[]);
    let url = cluster.url.clone();
    cluster.start_agent_with("a1", 1, &url, &["--fence-window", "4"]);
    cluster.wait_for_agents(1);
    let SlowTrial {
        reference,
        experiment: id,
        trial,
        pid,
        ..
    } = start_slow_trial(&cluster, "0.05");

    cluster.kill_master();
    let down = Instant::now();
    wait_until("the agent to suspend its trial itself", MINUTE, || {
        !alive(pid)
    });
    eprintln!(
        "master down to trial suspended by its agent: {:?}",
        down.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    cluster.start_master();
    let resumed = cluster.wait_for_trial(trial, "the trial to resume", MINUTE, |t| {
        t["state"] == "RUNNING" && t["allocations"].as_array().is_some_and(|a| a.len() == 2)
    });
    eprintln!("master down to trial resumed: {:?}", down.elapsed());
    let first = &resumed["allocations"][0];
    assert_eq!(first["exit_reason"], "suspended", "{resumed:#}");
    assert!(
        first["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no contact with the master"),
        "{resumed:#}"
    );
    assert_eq!(
        resumed["allocations"][1]["start_step"], first["end_step"],
        "resumed from the checkpoint written when the agent fenced itself: {resumed:#}"
    );
    assert!(first["end_step"].as_u64() > Some(28));
    cluster.wait_for_experiment(id, "COMPLETED", Duration::from_secs(120));
    assert_eq!(cluster.final_weights(id, 200), reference);
    assert_eq!(cluster.trial(trial)["restarts"], 0);
}
