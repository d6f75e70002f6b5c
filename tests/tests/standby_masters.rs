//! Two masters on one PostgreSQL database: the leader is killed or frozen mid-experiment; the
//! standby takes the lease, agents and the CLI follow it, and trials run on untouched.

use std::time::{Duration, Instant};

use baton_cluster_tests::linreg::start_slow_trial;
use baton_cluster_tests::{TestCluster, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// The trial as the CLI describes it through the masters' list, None while no master leads.
fn described(cluster: &TestCluster, trial: u64) -> Option<Value> {
    let output = cluster.cli(&["trial", "describe", &trial.to_string(), "--json"]);
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("trial JSON"))
}

#[test]
fn a_standby_takes_over_from_a_killed_leader_and_no_trial_restarts() {
    let mut cluster = TestCluster::start_on_postgres(&["--lease-seconds", "3"]);
    let leader = cluster.url.clone();
    let standby = cluster.start_standby();
    let refused = cluster.cli_via(&standby, &["agent", "list"]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a standby serves nothing");
    assert!(
        message.contains(&format!("standby master: the leader is at {leader}")),
        "{message}"
    );
    cluster.start_agent("a1", 1);
    cluster.wait_for_agents(1);
    let slow = start_slow_trial(&cluster, "0.1");
    let (trial, pid) = (slow.trial, slow.pid);

    cluster.kill_master();
    let killed = Instant::now();
    let steps_at_kill = slow.described["steps_completed"].as_u64().unwrap();
    let mut progressed = None;
    wait_until("progress through the new leader", MINUTE, || {
        progressed = described(&cluster, trial)
            .filter(|t| t["steps_completed"].as_u64() > Some(steps_at_kill + 3));
        progressed.is_some()
    });
    eprintln!(
        "leader killed to progress read through the new leader: {:?}",
        killed.elapsed()
    );
    assert!(
        cluster
            .cli_via(&standby, &["agent", "list"])
            .status
            .success(),
        "the standby leads"
    );
    assert_eq!(cluster.trial_process(trial), Some(pid), "the same process");

    slow.assert_completed_in_one_allocation(&cluster);
    for (step, stored) in slow.step_lines_stored(&cluster) {
        assert_eq!(
            stored, 1,
            "the output of step {step} is stored once, across the takeover"
        );
    }
}

#[test]
fn a_frozen_leader_loses_the_lease_and_stops_at_once_when_it_wakes() {
    let mut cluster = TestCluster::start_on_postgres(&["--lease-seconds", "2"]);
    let standby = cluster.start_standby();
    cluster.start_agent("a1", 1);
    cluster.wait_for_agents(1);
    let slow = start_slow_trial(&cluster, "0.1");
    let (trial, pid) = (slow.trial, slow.pid);
    let leader = Pid::from_raw(cluster.master_pid(0));

    kill(leader, Signal::SIGSTOP).expect("freeze the leader");
    let frozen = Instant::now();
    let steps_at_freeze = slow.described["steps_completed"].as_u64().unwrap();
    wait_until("the standby to lead", Duration::from_secs(20), || {
        cluster
            .cli_via(&standby, &["agent", "list"])
            .status
            .success()
    });
    eprintln!(
        "leader frozen to the standby leading: {:?}",
        frozen.elapsed()
    );
    wait_until("progress through the new leader", MINUTE, || {
        described(&cluster, trial)
            .is_some_and(|t| t["steps_completed"].as_u64() > Some(steps_at_freeze + 3))
    });
    eprintln!(
        "leader frozen to progress read through the new leader: {:?}",
        frozen.elapsed()
    );
    assert_eq!(cluster.trial_process(trial), Some(pid), "the same process");

    kill(leader, Signal::SIGCONT).expect("wake the leader");
    let woken = Instant::now();
    let status = cluster.wait_for_master_exit(0, Duration::from_secs(10));
    eprintln!("woken leader exited after {:?}", woken.elapsed());
    assert_eq!(
        status.code(),
        Some(75),
        "a master without its lease exits 75"
    );
    assert!(
        cluster.logs().contains("this master no longer leads"),
        "{}",
        cluster.logs()
    );

    slow.assert_completed_in_one_allocation(&cluster);
    // Output lines the agent handed to the frozen leader's connection are sent again after the
    // reconnect, numbered, and the new leader stores each once.
    for (step, stored) in slow.step_lines_stored(&cluster) {
        assert_eq!(
            stored, 1,
            "the output of step {step} is stored once, across the freeze"
        );
    }
}

#[test]
fn masters_stopped_with_sigterm_exit_at_once_and_the_leader_hands_its_lease_on() {
    let prompt = Duration::from_secs(5);
    let mut cluster = TestCluster::start_on_postgres(&["--lease-seconds", "3"]);
    let next_leader = cluster.start_standby();
    cluster.start_standby();
    cluster.start_agent("a1", 1);
    cluster.wait_for_agents(1);

    let standby = cluster.terminate_master(2, prompt);
    assert!(standby.cleanly(), "a standby exits 0 at once: {standby:?}");
    let leader = cluster.terminate_master(0, prompt);
    let stopped = Instant::now();
    assert!(
        leader.cleanly(),
        "the leader exits 0 at once with an agent connected: {leader:?}\n{}",
        cluster.logs()
    );
    wait_until("the other standby to lead", MINUTE, || {
        cluster
            .cli_via(&next_leader, &["agent", "list"])
            .status
            .success()
    });
    let took_over = stopped.elapsed();
    eprintln!(
        "SIGTERM to exit: standby {:?}, leader {:?}; leader's exit to the next one leading: {took_over:?}",
        standby.took, leader.took
    );
    assert!(
        took_over < Duration::from_secs(2),
        "the lease was released, not left to expire (3 s): {took_over:?}"
    );
    cluster.wait_for_agents(1);
    let last = cluster.terminate_master(1, prompt);
    assert!(last.cleanly(), "the new leader exits 0 at once: {last:?}");
}
